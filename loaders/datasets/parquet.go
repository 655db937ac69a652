package datasets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
)

// Hugging Face parquet exports (the "refs/convert/parquet" branch of a dataset,
// e.g. frgfm/imagenette's {config}/{split}/0000.parquet) hold an Image feature as a
// struct column {bytes binary, path string} and a ClassLabel feature as an int64
// column. The feature descriptions, with the class names, are JSON in the schema's
// key-value metadata under "huggingface":
//
//	{"info": {"features": {"image": {"_type": "Image"},
//	                       "label": {"names": ["tench", ...], "_type": "ClassLabel"}}}}

// pqImageColumns and pqLabelColumns are the column names tried first (HF's cifar10
// calls its image "img" and cifar100 has "fine_label" beside "coarse_label");
// failing those, the first (by name) feature of type Image or ClassLabel is used.
var (
	pqImageColumns = []string{"image", "img"}
	pqLabelColumns = []string{"label", "fine_label", "labels"}
)

// pqCachedGroups is how many row groups' image bytes a parquet dataset keeps, so
// that reading a row group's items in turn (or a few workers reading neighbouring
// items) decompresses it once. HF exports have row groups of ~100 images.
const pqCachedGroups = 4

// hfFeature is one entry of the "huggingface" metadata's info.features.
type hfFeature struct {
	Type  string   `json:"_type"`
	Names []string `json:"names"`
}

// pqFile is one parquet file of a dataset.
type pqFile struct {
	path     string
	first    int     // dataset index of its first row
	groups   []int64 // row group g holds rows [groups[g], groups[g+1])
	imageCol int     // leaf column index of the image bytes
}

type pqGroupKey struct{ file, group int }

// pqDataset reads image bytes a row group at a time.
type pqDataset struct {
	files []pqFile

	mu    sync.Mutex
	cache []pqCached // most recently used last
}

type pqCached struct {
	key    pqGroupKey
	images [][]byte
}

// openParquet opens a parquet file, or the files of split sp under a folder: those
// below a folder named after the split (train/, test/, validation/) or whose file
// name has the split as a word (train-00000-of-00002.parquet). A file given
// directly is read whatever the split. Files are read in natural name order.
func openParquet(root string, sp split) (*base, error) {
	files, err := parquetFiles(root, sp)
	if err != nil {
		return nil, err
	}
	pd := &pqDataset{}
	ds := &base{files: files}
	for _, path := range files {
		f, labels, classes, err := scanParquet(path)
		if err != nil {
			return nil, err
		}
		f.first = len(ds.labels)
		pd.files = append(pd.files, f)
		ds.labels = append(ds.labels, labels...)
		switch {
		case len(pd.files) == 1:
			ds.classes = classes
		case !slices.Equal(classes, ds.classes):
			return nil, fmt.Errorf("loaders: datasets: %s: class names differ from %s's", path, pd.files[0].path)
		}
	}
	if ds.classes != nil {
		ds.numClasses = len(ds.classes)
		if err := checkLabels(ds.labels, ds.numClasses, pd.itemName); err != nil {
			return nil, err
		}
	}
	ds.read, ds.where = pd.read, pd.itemName
	return ds, nil
}

func parquetFiles(root string, sp split) ([]string, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	if !st.IsDir() {
		return []string{root}, nil
	}
	var all []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".parquet") {
			all = append(all, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no .parquet files", root)
	}
	for _, c := range sp.candidates {
		var files []string
		for _, path := range all {
			rel, _ := filepath.Rel(root, path)
			words := strings.FieldsFunc(strings.ToLower(rel), func(r rune) bool {
				return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
			})
			if slices.Contains(words, c) {
				files = append(files, path)
			}
		}
		if len(files) > 0 {
			slices.SortStableFunc(files, naturalCompare)
			return files, nil
		}
	}
	return nil, fmt.Errorf("loaders: datasets: %s: no .parquet files for split %s (looked for %s in folder or file names)", root, sp.name, strings.Join(sp.candidates, ", "))
}

// openParquetFile opens path for reading; close the returned file when done.
func openParquetFile(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("loaders: datasets: %s: %w", path, err)
	}
	return f, pf, nil
}

// scanParquet finds a file's image and label columns, reads its labels and, from
// the Hugging Face metadata, its class names (nil without metadata).
func scanParquet(path string) (pf pqFile, labels []int32, classes []string, err error) {
	defer recoverParquet(path, &err)
	osf, f, err := openParquetFile(path)
	if err != nil {
		return pqFile{}, nil, nil, err
	}
	defer osf.Close()

	features := map[string]hfFeature{}
	if meta, ok := f.Lookup("huggingface"); ok {
		var hf struct {
			Info struct {
				Features map[string]json.RawMessage `json:"features"`
			} `json:"info"`
		}
		if err := json.Unmarshal([]byte(meta), &hf); err != nil {
			return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: huggingface metadata: %w", path, err)
		}
		for name, raw := range hf.Info.Features {
			var ft hfFeature
			// Features that are not objects (lists of features) are not ours.
			if json.Unmarshal(raw, &ft) == nil {
				features[name] = ft
			}
		}
	}

	schema := f.Schema()
	imageName := pickColumn(pqImageColumns, features, "Image", schema)
	labelName := pickColumn(pqLabelColumns, features, "ClassLabel", schema)
	if imageName == "" || labelName == "" {
		var cols []string
		for _, c := range schema.Columns() {
			cols = append(cols, strings.Join(c, "."))
		}
		return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: no image column (%s) or no label column (%s) among %s",
			path, strings.Join(pqImageColumns, ", "), strings.Join(pqLabelColumns, ", "), strings.Join(cols, ", "))
	}
	imageLeaf, ok := schema.Lookup(imageName, "bytes")
	if !ok {
		imageLeaf, ok = schema.Lookup(imageName)
	}
	if !ok || imageLeaf.Node.Type().Kind() != parquet.ByteArray || imageLeaf.MaxRepetitionLevel > 0 {
		return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: column %q is neither binary nor a struct with binary \"bytes\"", path, imageName)
	}
	labelLeaf, ok := schema.Lookup(labelName)
	if !ok || !isIntColumn(labelLeaf.Node) || labelLeaf.MaxRepetitionLevel > 0 {
		return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: label column %q is not an integer column", path, labelName)
	}

	pf = pqFile{path: path, imageCol: imageLeaf.ColumnIndex, groups: []int64{0}}
	for g, rg := range f.RowGroups() {
		err := readColumn(rg.ColumnChunks()[labelLeaf.ColumnIndex], func(v parquet.Value) error {
			if v.IsNull() {
				return fmt.Errorf("row %d: null label", len(labels))
			}
			l := v.Int64()
			if v.Kind() == parquet.Int32 {
				l = int64(v.Int32())
			}
			if l < 0 || l > 1<<31-1 {
				return fmt.Errorf("row %d: label %d out of range", len(labels), l)
			}
			labels = append(labels, int32(l))
			return nil
		})
		if err != nil {
			return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: column %q: %w", path, labelName, err)
		}
		if want := pf.groups[g] + rg.NumRows(); int64(len(labels)) != want {
			return pqFile{}, nil, nil, fmt.Errorf("loaders: datasets: %s: row group %d: %d labels for %d rows", path, g, int64(len(labels))-pf.groups[g], rg.NumRows())
		}
		pf.groups = append(pf.groups, int64(len(labels)))
	}
	if ft, ok := features[labelName]; ok && len(ft.Names) > 0 {
		classes = ft.Names
	}
	return pf, labels, classes, nil
}

func isIntColumn(n parquet.Node) bool {
	k := n.Type().Kind()
	return k == parquet.Int64 || k == parquet.Int32
}

// pickColumn returns the first of names that the schema has, else the first
// feature (by name) of type typ that it has, else "".
func pickColumn(names []string, features map[string]hfFeature, typ string, schema *parquet.Schema) string {
	has := func(name string) bool {
		for _, f := range schema.Fields() {
			if f.Name() == name {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		if has(n) {
			return n
		}
	}
	var typed []string
	for n, f := range features {
		if f.Type == typ && has(n) {
			typed = append(typed, n)
		}
	}
	sort.Strings(typed)
	if len(typed) > 0 {
		return typed[0]
	}
	return ""
}

// readColumn calls fn for each value of a column chunk.
func readColumn(chunk parquet.ColumnChunk, fn func(parquet.Value) error) error {
	pages := chunk.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 256)
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		values := page.Values()
		for {
			n, err := values.ReadValues(buf)
			for _, v := range buf[:n] {
				if err := fn(v); err != nil {
					parquet.Release(page)
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(page)
				return err
			}
		}
		parquet.Release(page)
	}
}

// locate returns the file, row group and row within the group of item i.
func (d *pqDataset) locate(i int) (file, group, row int) {
	file = sort.Search(len(d.files), func(f int) bool { return d.files[f].first > i }) - 1
	r := int64(i - d.files[file].first)
	g := d.files[file].groups
	group = sort.Search(len(g), func(k int) bool { return g[k] > r }) - 1
	return file, group, int(r - g[group])
}

func (d *pqDataset) itemName(i int) string {
	file, group, row := d.locate(i)
	return fmt.Sprintf("%s[row %d]", d.files[file].path, d.files[file].groups[group]+int64(row))
}

func (d *pqDataset) read(i int) (Item, error) {
	file, group, row := d.locate(i)
	name := d.itemName(i)
	images, err := d.group(pqGroupKey{file, group})
	if err != nil {
		return Item{}, err
	}
	if images[row] == nil {
		return Item{}, fmt.Errorf("loaders: datasets: %s: no image bytes (null)", name)
	}
	return Item{Name: name, Encoded: slices.Clone(images[row])}, nil
}

// recoverParquet turns a panic of the parquet reader on a malformed file into an
// error naming the file.
func recoverParquet(path string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("loaders: datasets: %s: malformed parquet file: %v", path, r)
	}
}

// group returns the image bytes of one row group, from the cache or the file. Two
// workers missing the same group at once both read it: wasted work, not an error.
func (d *pqDataset) group(key pqGroupKey) (images [][]byte, err error) {
	d.mu.Lock()
	for k, c := range d.cache {
		if c.key == key {
			d.cache = append(slices.Delete(d.cache, k, k+1), c)
			d.mu.Unlock()
			return c.images, nil
		}
	}
	d.mu.Unlock()

	pf := d.files[key.file]
	defer recoverParquet(pf.path, &err)
	osf, f, err := openParquetFile(pf.path)
	if err != nil {
		return nil, err
	}
	defer osf.Close()
	if key.group >= len(f.RowGroups()) {
		return nil, fmt.Errorf("loaders: datasets: %s: row group %d missing: file changed since it was opened", pf.path, key.group)
	}
	rg := f.RowGroups()[key.group]
	images = make([][]byte, 0, rg.NumRows())
	err = readColumn(rg.ColumnChunks()[pf.imageCol], func(v parquet.Value) error {
		if v.IsNull() {
			images = append(images, nil)
		} else {
			images = append(images, slices.Clone(v.ByteArray()))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %s: row group %d: %w", pf.path, key.group, err)
	}
	if want := pf.groups[key.group+1] - pf.groups[key.group]; int64(len(images)) != want {
		return nil, fmt.Errorf("loaders: datasets: %s: row group %d: %d images for %d rows", pf.path, key.group, len(images), want)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) == pqCachedGroups {
		d.cache = slices.Delete(d.cache, 0, 1)
	}
	d.cache = append(d.cache, pqCached{key, images})
	return images, nil
}
