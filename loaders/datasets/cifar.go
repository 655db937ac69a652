package datasets

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
)

// CIFAR binary records (https://www.cs.toronto.edu/~kriz/cifar.html): label
// byte(s), then a 32x32 image as 1024 red, 1024 green and 1024 blue bytes, rows
// top to bottom.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide // 3072
)

// cifarLayout describes one of the two binary versions.
type cifarLayout struct {
	subdir      string   // folder the archive extracts to
	train, test []string // batch files of each split
	labelBytes  int      // bytes before the pixels
	labelAt     int      // which of them is the label used
	numClasses  int
	namesFile   string // class-name file, one a line
}

var (
	cifar10Layout = cifarLayout{
		subdir:     "cifar-10-batches-bin",
		train:      []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
		test:       []string{"test_batch.bin"},
		labelBytes: 1, labelAt: 0, numClasses: 10,
		namesFile: "batches.meta.txt",
	}
	// CIFAR-100 records carry the coarse (superclass) label, then the fine label:
	// the classification benchmarks use the 100 fine classes.
	cifar100Layout = cifarLayout{
		subdir:     "cifar-100-binary",
		train:      []string{"train.bin"},
		test:       []string{"test.bin"},
		labelBytes: 2, labelAt: 1, numClasses: 100,
		namesFile: "fine_label_names.txt",
	}
)

func openCIFAR10(dir string, sp split) (*base, error) {
	ds, err := openCIFAR(dir, sp, cifar10Layout, "cifar10")
	if err != nil {
		return nil, err
	}
	if ds.classes == nil {
		ds.classes = cifar10Classes
	}
	return ds, nil
}

// openCIFAR100 opens CIFAR-100; without fine_label_names.txt the class names must
// come from Options.ClassNames (namesGiven).
func openCIFAR100(dir string, sp split, namesGiven bool) (*base, error) {
	ds, err := openCIFAR(dir, sp, cifar100Layout, "cifar100")
	if err != nil {
		return nil, err
	}
	if ds.classes == nil && !namesGiven {
		return nil, fmt.Errorf("loaders: datasets: %s: no %s: set Options.ClassNames (e.g. the CIFAR100 classes of CLIP's prompts.md)", dir, cifar100Layout.namesFile)
	}
	return ds, nil
}

func openCIFAR(dir string, sp split, lay cifarLayout, kind string) (*base, error) {
	if sp.name == "val" {
		return nil, fmt.Errorf("loaders: datasets: %s: %s has no validation split (use train or test)", dir, kind)
	}
	if _, err := os.Stat(filepath.Join(dir, lay.train[0])); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, lay.subdir, lay.train[0])); err2 == nil {
			dir = filepath.Join(dir, lay.subdir)
		}
	}
	names := lay.train
	if sp.name == "test" {
		names = lay.test
	}
	record := lay.labelBytes + cifarPixels

	type span struct {
		path  string
		first int // index of the file's first item
	}
	var files []span
	var paths []string
	var labels []int32
	for _, n := range names {
		path := filepath.Join(dir, n)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("loaders: datasets: %s: %w", kind, err)
		}
		if len(data) == 0 || len(data)%record != 0 {
			return nil, fmt.Errorf("loaders: datasets: %s: %d bytes is not a whole number of %d-byte %s records", path, len(data), record, kind)
		}
		files = append(files, span{path, len(labels)})
		paths = append(paths, path)
		first := len(labels)
		for r := 0; r < len(data)/record; r++ {
			labels = append(labels, int32(data[r*record+lay.labelAt]))
		}
		if err := checkLabels(labels[first:], lay.numClasses, func(i int) string {
			return fmt.Sprintf("%s[record %d]", path, i)
		}); err != nil {
			return nil, err
		}
	}

	var classes []string
	if p := filepath.Join(dir, lay.namesFile); fileExists(p) {
		c, err := readNames(p)
		if err != nil {
			return nil, err
		}
		if len(c) != lay.numClasses {
			return nil, fmt.Errorf("loaders: datasets: %s: %d class names, want %d", p, len(c), lay.numClasses)
		}
		classes = c
	}

	return &base{
		classes:    classes,
		numClasses: lay.numClasses,
		labels:     labels,
		files:      paths,
		read: func(i int) (Item, error) {
			f := files[0]
			for _, s := range files[1:] {
				if s.first <= i {
					f = s
				}
			}
			r := i - f.first
			name := fmt.Sprintf("%s[record %d]", f.path, r)
			buf := make([]byte, cifarPixels)
			if err := readAt(f.path, buf, int64(r*record+lay.labelBytes)); err != nil {
				return Item{}, fmt.Errorf("loaders: datasets: %s: %w", name, err)
			}
			return Item{Name: name, Image: planarRGB(buf, cifarSide, cifarSide)}, nil
		},
	}, nil
}

// planarRGB turns w*h red, then green, then blue bytes into an opaque RGBA image.
func planarRGB(p []byte, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	n := w * h
	for i := 0; i < n; i++ {
		img.Pix[4*i+0] = p[i]
		img.Pix[4*i+1] = p[n+i]
		img.Pix[4*i+2] = p[2*n+i]
		img.Pix[4*i+3] = 0xff
	}
	return img
}

// readAt fills buf from path at off.
func readAt(path string, buf []byte, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(buf, off)
	return err
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
