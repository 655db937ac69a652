package datasets

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// wdsImageExts are the member extensions that hold a sample's image, in the order
// of preference CLIP_benchmark uses ("webp", "png", "jpg", "jpeg") plus the other
// decodable ones.
var wdsImageExts = []string{"webp", "png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff"}

// wdsSample locates one sample's image inside a shard.
type wdsSample struct {
	shard     string
	key       string
	off, size int64
}

// openWDS reads a CLIP_benchmark webdataset: DIR/classnames.txt and
// DIR/<split>/*.tar, whose members KEY.<image ext> and KEY.cls (the label as
// decimal text) make one sample. Shards are read in natural order (2.tar before
// 10.tar), samples in the order their first member appears. The headers of every
// shard are scanned once here; Item then reads one member at its offset.
func openWDS(root string, sp split) (*base, error) {
	dir, err := sp.folder(root)
	if err != nil {
		return nil, err
	}
	shards, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %s: %w", dir, err)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no .tar shards", dir)
	}
	slices.SortStableFunc(shards, naturalCompare)

	var samples []wdsSample
	var labels []int32
	for _, s := range shards {
		ss, ls, err := scanShard(s)
		if err != nil {
			return nil, err
		}
		samples = append(samples, ss...)
		labels = append(labels, ls...)
	}

	ds := &base{labels: labels, where: func(i int) string {
		return samples[i].shard + ":" + samples[i].key + ".cls"
	}}
	if p := filepath.Join(root, "classnames.txt"); fileExists(p) {
		if ds.classes, err = readNames(p); err != nil {
			return nil, err
		}
		ds.numClasses = len(ds.classes)
		if err := checkLabels(labels, ds.numClasses, ds.where); err != nil {
			return nil, err
		}
	}
	ds.read = func(i int) (Item, error) {
		s := samples[i]
		name := s.shard + ":" + s.key
		buf := make([]byte, s.size)
		if err := readAt(s.shard, buf, s.off); err != nil {
			return Item{}, fmt.Errorf("loaders: datasets: %s: %w", name, err)
		}
		return Item{Name: name, Encoded: buf}, nil
	}
	return ds, nil
}

// scanShard lists the samples of one tar shard with their labels.
func scanShard(shard string) ([]wdsSample, []int32, error) {
	f, err := os.Open(shard)
	if err != nil {
		return nil, nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("loaders: datasets: %w", err)
	}

	type partial struct {
		sample   wdsSample
		imageExt string // "" until an image member is seen
		label    int32
		hasLabel bool
	}
	var order []string
	byKey := map[string]*partial{}
	// tar.Reader reads headers straight from f without buffering, so after Next
	// the file offset is where the member's data starts.
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("loaders: datasets: %s: reading tar headers: %w", shard, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		key, ext := wdsSplitName(hdr.Name)
		isImage := slices.Contains(wdsImageExts, ext)
		if ext != "cls" && !isImage {
			continue
		}
		p := byKey[key]
		if p == nil {
			p = &partial{sample: wdsSample{shard: shard, key: key}}
			byKey[key] = p
			order = append(order, key)
		}
		switch {
		case ext == "cls":
			if p.hasLabel {
				return nil, nil, fmt.Errorf("loaders: datasets: %s: sample %q has two .cls members", shard, key)
			}
			text, err := io.ReadAll(io.LimitReader(tr, 64))
			if err != nil {
				return nil, nil, fmt.Errorf("loaders: datasets: %s:%s: %w", shard, hdr.Name, err)
			}
			l, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("loaders: datasets: %s:%s: label %q is not an integer", shard, hdr.Name, text)
			}
			p.label, p.hasLabel = int32(l), true
		case p.imageExt == "" ||
			slices.Index(wdsImageExts, ext) < slices.Index(wdsImageExts, p.imageExt):
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, nil, fmt.Errorf("loaders: datasets: %s: %w", shard, err)
			}
			if off+hdr.Size > st.Size() {
				return nil, nil, fmt.Errorf("loaders: datasets: %s:%s: member truncated (%d bytes at offset %d, file has %d)", shard, hdr.Name, hdr.Size, off, st.Size())
			}
			p.imageExt, p.sample.off, p.sample.size = ext, off, hdr.Size
		}
	}
	if len(order) == 0 {
		return nil, nil, fmt.Errorf("loaders: datasets: %s: no samples (members KEY.cls with KEY.jpg/png/webp/...)", shard)
	}
	samples := make([]wdsSample, len(order))
	labels := make([]int32, len(order))
	for i, k := range order {
		p := byKey[k]
		switch {
		case p.imageExt == "":
			return nil, nil, fmt.Errorf("loaders: datasets: %s: sample %q has no image member (%s)", shard, k, strings.Join(wdsImageExts, ", "))
		case !p.hasLabel:
			return nil, nil, fmt.Errorf("loaders: datasets: %s: sample %q has no .cls member", shard, k)
		}
		samples[i], labels[i] = p.sample, p.label
	}
	return samples, labels, nil
}

// wdsSplitName splits a member name as webdataset does: the key is everything up
// to the first dot of the last path element, the extension (lower-cased) the rest.
func wdsSplitName(name string) (key, ext string) {
	dir, file := path.Split(name)
	k, e, _ := strings.Cut(file, ".")
	return dir + k, strings.ToLower(e)
}

// naturalCompare orders strings with runs of digits compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitPrefix(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
