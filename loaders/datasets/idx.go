package datasets

import (
	"fmt"
	"image"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/idx"
)

// idxFile finds DIR/<prefix>-<kind>-idxN-ubyte, also spelt with a dot before idxN
// (as some MNIST mirrors do), gzipped or not.
func idxFile(dir, prefix, kind, idxN string) (string, error) {
	var tried []string
	for _, sep := range []string{"-", "."} {
		for _, gz := range []string{".gz", ""} {
			name := prefix + "-" + kind + sep + idxN + "-ubyte" + gz
			if p := filepath.Join(dir, name); fileExists(p) {
				return p, nil
			}
			tried = append(tried, name)
		}
	}
	return "", fmt.Errorf("loaders: datasets: %s: no %s file (looked for %v)", dir, kind, tried)
}

// openIdx reads MNIST-style idx files: train-* for "train", t10k-* for "test".
// Every image is held in memory (47 MB for a 60000-image train split).
func openIdx(dir string, sp split, classes []string) (*base, error) {
	prefix := "train"
	switch sp.name {
	case "test":
		prefix = "t10k"
	case "val":
		return nil, fmt.Errorf("loaders: datasets: %s: idx datasets have no validation split (use train or test)", dir)
	}
	imagesPath, err := idxFile(dir, prefix, "images", "idx3")
	if err != nil {
		return nil, err
	}
	labelsPath, err := idxFile(dir, prefix, "labels", "idx1")
	if err != nil {
		return nil, err
	}
	images, err := idx.ReadImages(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	labels, err := idx.ReadLabels(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	if len(labels) != images.N {
		return nil, fmt.Errorf("loaders: datasets: %s has %d labels but %s has %d images", labelsPath, len(labels), imagesPath, images.N)
	}
	ds := &base{classes: classes, numClasses: len(classes), labels: make([]int32, len(labels)),
		files: []string{imagesPath, labelsPath}}
	for i, l := range labels {
		ds.labels[i] = int32(l)
	}
	if err := checkLabels(ds.labels, len(classes), func(i int) string {
		return fmt.Sprintf("%s[item %d]", labelsPath, i)
	}); err != nil {
		return nil, err
	}
	size := images.Rows * images.Cols
	ds.read = func(i int) (Item, error) {
		img := image.NewGray(image.Rect(0, 0, images.Cols, images.Rows))
		copy(img.Pix, images.Pix[i*size:(i+1)*size])
		return Item{Name: fmt.Sprintf("%s[item %d]", imagesPath, i), Image: img}, nil
	}
	return ds, nil
}
