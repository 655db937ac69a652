package datasets_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/datasets"
)

// An Imagenette-style folder: WordNet-id folders get the article's class names.
func ExampleOpen() {
	root, err := os.MkdirTemp("", "imagenette")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 6)))
	for _, f := range []string{"val/n03445777/a.png", "val/n03888257/b.png"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), b.Bytes(), 0o644)
	}

	ds, err := datasets.Open("imagefolder:"+root, "test", datasets.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ds.Name(), ds.Len(), ds.ClassNames())
	for i := 0; i < ds.Len(); i++ {
		it, err := ds.Item(i)
		if err != nil {
			log.Fatal(err)
		}
		img, err := it.Decode()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(it.Index, ds.ClassNames()[it.Label], filepath.Base(it.Name), img.Bounds().Size())
	}
	// Output:
	// imagefolder/test 2 [golf ball parachute]
	// 0 golf ball a.png (8,6)
	// 1 parachute b.png (8,6)
}
