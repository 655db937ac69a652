package datasets

import (
	"archive/tar"
	"bufio"
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

// WDSShards returns the tar shards of split ("train", "test", ...) of the
// CLIP_benchmark webdataset in dir, in natural order (2.tar before 10.tar): the order
// in which a wds: dataset lists its samples.
func WDSShards(dir, split string) ([]string, error) {
	sp, err := parseSplit(split)
	if err != nil {
		return nil, err
	}
	return wdsShards(dir, sp)
}

func wdsShards(root string, sp split) ([]string, error) {
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
	return shards, nil
}

// openWDS reads a CLIP_benchmark webdataset: DIR/classnames.txt and
// DIR/<split>/*.tar, whose members KEY.<image ext> and KEY.cls (the label as
// decimal text) make one sample. Shards are read in natural order (2.tar before
// 10.tar), samples in the order they appear. The headers of every shard are scanned
// once here; Item then reads one member at its offset.
func openWDS(root string, sp split) (*base, error) {
	shards, err := wdsShards(root, sp)
	if err != nil {
		return nil, err
	}
	var samples []wdsSample
	var labels []int32
	for _, s := range shards {
		if err := scanShard(s, false, func(smp wdsSample, label int32, _ []byte) error {
			samples = append(samples, smp)
			labels = append(labels, label)
			return nil
		}); err != nil {
			return nil, err
		}
	}

	ds := &base{labels: labels, where: func(i int) string {
		return samples[i].shard + ":" + samples[i].key + ".cls"
	}, source: func(i int) string { return samples[i].shard }}
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

// StreamWDSShard reads one webdataset tar shard front to back, without seeking or
// extracting, and calls fn with each sample in order: Index is the sample's position
// in the shard, Name "SHARD.tar:KEY", Encoded its image and Label its .cls (not
// checked against classnames.txt, which Open does). This is how an array task reads
// whole shards of a large webdataset without scanning the others. An error from fn
// stops the reading and is returned as it is.
func StreamWDSShard(shard string, fn func(Item) error) error {
	i := 0
	return scanShard(shard, true, func(s wdsSample, label int32, data []byte) error {
		it := Item{Index: i, Label: int(label), Name: s.shard + ":" + s.key, Encoded: data}
		i++
		return fn(it)
	})
}

// scanShard reads one tar shard and calls emit with each sample once its members
// have been read: members of a sample are adjacent, as webdataset requires (it groups
// consecutive members by key). With stream set the shard is read front to back and
// emit gets the image's bytes; otherwise member data is skipped by seeking and
// emit gets the image's offset and size only. emit's errors are returned as they are.
func scanShard(shard string, stream bool, emit func(s wdsSample, label int32, data []byte) error) error {
	f, err := os.Open(shard)
	if err != nil {
		return fmt.Errorf("loaders: datasets: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("loaders: datasets: %w", err)
	}

	type partial struct {
		sample   wdsSample
		imageExt string // "" until an image member is seen
		data     []byte
		label    int32
		hasLabel bool
	}
	var cur *partial
	seen := map[string]bool{}
	n := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		switch {
		case cur.imageExt == "":
			return fmt.Errorf("loaders: datasets: %s: sample %q has no image member (%s) among its adjacent members", shard, cur.sample.key, strings.Join(wdsImageExts, ", "))
		case !cur.hasLabel:
			return fmt.Errorf("loaders: datasets: %s: sample %q has no .cls member among its adjacent members", shard, cur.sample.key)
		}
		n++
		return emit(cur.sample, cur.label, cur.data)
	}
	// Without stream, tar.Reader reads headers straight from f without buffering and
	// skips member data by seeking, so after Next the file offset is where the
	// member's data starts. With stream, reads are sequential and buffered.
	var r io.Reader = f
	if stream {
		r = bufio.NewReaderSize(f, 1<<20)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("loaders: datasets: %s: reading tar headers: %w", shard, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		key, ext := wdsSplitName(hdr.Name)
		isImage := slices.Contains(wdsImageExts, ext)
		if ext != "cls" && !isImage {
			continue
		}
		if cur == nil || cur.sample.key != key {
			if err := flush(); err != nil {
				return err
			}
			if seen[key] {
				return fmt.Errorf("loaders: datasets: %s:%s: members of sample %q are not adjacent (webdataset groups consecutive members by key)", shard, hdr.Name, key)
			}
			seen[key] = true
			cur = &partial{sample: wdsSample{shard: shard, key: key}}
		}
		switch {
		case ext == "cls":
			if cur.hasLabel {
				return fmt.Errorf("loaders: datasets: %s: sample %q has two .cls members", shard, key)
			}
			text, err := io.ReadAll(io.LimitReader(tr, 64))
			if err != nil {
				return fmt.Errorf("loaders: datasets: %s:%s: %w", shard, hdr.Name, err)
			}
			l, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 32)
			if err != nil {
				return fmt.Errorf("loaders: datasets: %s:%s: label %q is not an integer", shard, hdr.Name, text)
			}
			cur.label, cur.hasLabel = int32(l), true
		case cur.imageExt == "" ||
			slices.Index(wdsImageExts, ext) < slices.Index(wdsImageExts, cur.imageExt):
			if hdr.Size > st.Size() {
				return fmt.Errorf("loaders: datasets: %s:%s: member truncated (%d bytes, file has %d)", shard, hdr.Name, hdr.Size, st.Size())
			}
			cur.imageExt, cur.sample.size = ext, hdr.Size
			if stream {
				cur.data = make([]byte, hdr.Size)
				if _, err := io.ReadFull(tr, cur.data); err != nil {
					return fmt.Errorf("loaders: datasets: %s:%s: member truncated: %w", shard, hdr.Name, err)
				}
				continue
			}
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return fmt.Errorf("loaders: datasets: %s: %w", shard, err)
			}
			if off+hdr.Size > st.Size() {
				return fmt.Errorf("loaders: datasets: %s:%s: member truncated (%d bytes at offset %d, file has %d)", shard, hdr.Name, hdr.Size, off, st.Size())
			}
			cur.sample.off = off
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("loaders: datasets: %s: no samples (members KEY.cls with KEY.jpg/png/webp/...)", shard)
	}
	return nil
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
