package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/loaders/images"
)

// imageExts are the file extensions an image folder yields (compared in lower
// case): torchvision's IMG_EXTENSIONS less the ones Go cannot decode (ppm, pgm),
// plus gif.
var imageExts = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

// splitFolders are the split folders an image folder may hold.
var splitFolders = []string{"train", "val", "validation", "test"}

// openImageFolder reads root/<split>/<class>/<file>, or root/<class>/<file> when
// root holds class folders and no split folder (a flat class-folder directory, as
// ImageNet's validation set is usually laid out), which serves as the test split.
//
// Classes are the sorted union of the class folders of every split folder present
// (train, val, validation, test), so that labels agree between splits even when one
// lacks a class; with identical folders this is torchvision's ImageFolder order.
// Class names come from root/classnames.txt when present (one a line, in label
// order); else, when every folder is an ImageNet WordNet id, from OpenAI's ImageNet
// class names (ImageNetClassName; Imagenette's ten with its article's spelling);
// else from the folder names with underscores as spaces.
func openImageFolder(root string, sp split) (*base, error) {
	flat := hasSubfolder(root)
	for _, s := range splitFolders {
		if st, err := os.Stat(filepath.Join(root, s)); err == nil && st.IsDir() {
			flat = false
		}
	}
	var dir string
	var err error
	var parents []string // folders whose subfolders are classes
	if flat {
		if sp.name == "train" {
			return nil, fmt.Errorf("loaders: datasets: %s has class folders but no train/ folder: a flat class-folder directory is a test split only (give DIR with train/ and val/ for training)", root)
		}
		dir, parents = root, []string{root}
	} else {
		if dir, err = sp.folder(root); err != nil {
			return nil, err
		}
		for _, s := range splitFolders {
			parents = append(parents, filepath.Join(root, s))
		}
	}

	var folders []string
	for _, parent := range parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue // that split is absent
		}
		for _, e := range entries {
			if isDir(parent, e) && !strings.HasPrefix(e.Name(), ".") && !slices.Contains(folders, e.Name()) {
				folders = append(folders, e.Name())
			}
		}
	}
	slices.Sort(folders)
	if len(folders) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no class folders (want DIR/<class>/*.jpg, or DIR/train/<class>/ and DIR/val/<class>/)", dir)
	}

	classes, err := folderClassNames(root, folders)
	if err != nil {
		return nil, err
	}

	var files []string
	var labels []int32
	for label, f := range folders {
		entries, err := os.ReadDir(filepath.Join(dir, f))
		if os.IsNotExist(err) {
			continue // class missing from this split
		}
		if err != nil {
			return nil, fmt.Errorf("loaders: datasets: %w", err)
		}
		for _, e := range entries { // ReadDir sorts by name
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.IsDir() || !slices.Contains(imageExts, ext) {
				continue
			}
			files = append(files, filepath.Join(dir, f, e.Name()))
			labels = append(labels, int32(label))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no image files (%s) in its class folders", dir, strings.Join(imageExts, " "))
	}
	return &base{
		classes:    classes,
		numClasses: len(folders),
		labels:     labels,
		source:     func(i int) string { return files[i] },
		read: func(i int) (Item, error) {
			data, err := images.ReadFile(files[i]) // regular, size-capped image files only
			if err != nil {
				return Item{}, fmt.Errorf("loaders: datasets: %w", err)
			}
			return Item{Name: files[i], Encoded: data}, nil
		},
	}, nil
}

// hasSubfolder reports whether dir holds a folder not hidden by a leading dot.
func hasSubfolder(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if isDir(dir, e) && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// isDir reports whether e (in dir) is a directory, following symbolic links.
func isDir(dir string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink == 0 {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, e.Name()))
	return err == nil && st.IsDir()
}

// folderClassNames names the class folders (see openImageFolder).
func folderClassNames(root string, folders []string) ([]string, error) {
	path := filepath.Join(root, "classnames.txt")
	if _, err := os.Stat(path); err == nil {
		names, err := readNames(path)
		if err != nil {
			return nil, err
		}
		if len(names) != len(folders) {
			return nil, fmt.Errorf("loaders: datasets: %s: %d class names for %d class folders", path, len(names), len(folders))
		}
		return names, nil
	}
	if names, ok := wnidClassNames(folders); ok {
		return names, nil
	}
	names := make([]string, len(folders))
	for i, f := range folders {
		names[i] = strings.ReplaceAll(f, "_", " ")
	}
	return names, nil
}
