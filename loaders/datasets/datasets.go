// Package datasets reads image-classification datasets as random-access lists of
// raw, undecoded items: the experiments encode them with CLIP's image tower (after
// loaders/images preprocessing) for zero-shot prompting and for linear probes.
//
// A dataset is opened from a spec "KIND:PATH" and a split:
//
//	imagefolder:DIR     DIR/{train,val,test}/<class>/*.{jpg,jpeg,png,gif,bmp,tif,tiff,webp}
//	                    (fast.ai Imagenette archives, torchvision ImageFolder layout),
//	                    or DIR/<class>/* alone: a flat class-folder directory, a test
//	                    split (ImageNet's val/ as usually laid out). WordNet-id
//	                    folders (n01440764) get OpenAI's ImageNet class names.
//	parquet:FILE|DIR    Hugging Face parquet exports (frgfm/imagenette, cifar10, ...)
//	mnist:DIR           idx files train-*/t10k-*, gzipped or not
//	fashion-mnist:DIR   the same, with Fashion-MNIST class names
//	cifar10:DIR         CIFAR-10 binary version (data_batch_{1..5}.bin, test_batch.bin)
//	cifar100:DIR        CIFAR-100 binary version (train.bin, test.bin; fine labels)
//	wds:DIR             LAION CLIP_benchmark webdataset (DIR/{split}/*.tar; its
//	                    zeroshot_classification_templates.txt: TemplatesFile)
//
// Splits are "train" and "test". "test" reads a dataset's held-out split: test/ or,
// where there is none, the validation split (Imagenette publishes only train and
// val). "val" and "validation" name the validation split alone.
//
// Every Dataset is safe for concurrent Item calls, so that workers can read in
// parallel and a feature cache can resume at any index. Items are not decoded:
// Item.Pixels turns one into the images.Image CLIP's preprocessing takes, Item.Decode
// into an image.Image (for figures); resizing and normalisation belong to
// loaders/images.
package datasets

import (
	"bytes"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/loaders/images"

	// Decoders for Item.Decode: the standard library's, plus the formats that
	// datasets in the wild also use (webdataset shards often hold webp).
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Item is one example of a dataset. Exactly one of Encoded and Image is set.
type Item struct {
	// Index is the item's position in the Dataset it came from (after any limit).
	Index int
	// Label is the class index, in [0, len(ClassNames())).
	Label int
	// Name identifies the item in error messages: a file path, "FILE[row N]",
	// "FILE[record N]" or "SHARD.tar:KEY".
	Name string
	// Encoded holds the bytes of an encoded image (JPEG, PNG, WebP, ...) for
	// datasets that store files; nil for raw-pixel datasets. The slice is the
	// caller's to keep.
	Encoded []byte
	// Image holds the pixels of raw-pixel datasets (idx, CIFAR): an *image.Gray or
	// an *image.RGBA. Nil when Encoded is set.
	Image image.Image
}

// Decode returns the item's image: Image as it is, or Encoded decoded by the
// registered decoders (gif, jpeg, png, bmp, tiff, webp). Errors name the item.
func (it Item) Decode() (img image.Image, err error) {
	if it.Image != nil {
		return it.Image, nil
	}
	if len(it.Encoded) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no image data", it.Name)
	}
	// A decoder that panics on malformed input must not take the run down.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("loaders: datasets: decode %s: decoder panicked: %v", it.Name, r)
		}
	}()
	img, _, err = image.Decode(bytes.NewReader(it.Encoded))
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: decode %s: %w", it.Name, err)
	}
	return img, nil
}

// Pixels returns the item's image as loaders/images decodes it for CLIP's
// preprocessing, what images.Preprocess takes: an encoded file within the decode
// limits, with libjpeg-turbo as PIL decodes it in a build with the libjpeg tag (Decode
// uses Go's decoders, which differ slightly from PIL's on JPEGs), or raw pixels as
// they are. Errors name the item.
func (it Item) Pixels() (*images.Image, error) {
	switch {
	case len(it.Encoded) > 0:
		img, err := images.DecodeBytes(it.Encoded, it.Name)
		if err != nil {
			return nil, fmt.Errorf("loaders: datasets: %w", err) // images names the item
		}
		return img, nil
	case it.Image != nil:
		img, err := images.FromImage(it.Image)
		if err != nil {
			return nil, fmt.Errorf("loaders: datasets: %s: %w", it.Name, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("loaders: datasets: %s: no image data", it.Name)
}

// Dataset is a random-access list of labelled images. Implementations are safe
// for concurrent use.
type Dataset interface {
	// Name is "KIND/SPLIT", e.g. "cifar10/test".
	Name() string
	// ClassNames lists the class names in label order. Callers must not modify it.
	ClassNames() []string
	// Len is the number of items.
	Len() int
	// Item returns item i, 0 <= i < Len(). Reading errors name the file.
	Item(i int) (Item, error)
}

// Options adjust Open. The zero value reads the whole split with the dataset's own
// class names.
type Options struct {
	// Limit, when positive and below the split's size, keeps Limit items: the
	// first Limit of a permutation drawn from Seed, then put back in dataset order
	// (so that files are read sequentially). The subset is the same for the same
	// Seed, and a smaller limit gives a subset of a larger one. Without Balanced it
	// is not stratified: a small limit may miss rare classes. Zero keeps every item.
	Limit int
	// Balanced makes the Limit subset class-balanced: classes take turns, in an
	// order drawn from Seed, each adding its next item (of its own permutation drawn
	// from Seed) until Limit items are chosen, so that every class gets Limit/C
	// items, or all it has when it has fewer (the others then share the rest). A
	// smaller limit still gives a subset of a larger one.
	Balanced bool
	// Seed draws the permutation for Limit (PCG seeded with Seed, Seed).
	Seed uint64
	// ClassNames, when set, replaces the dataset's class names; its length must
	// match the dataset's number of classes. CIFAR-100 without
	// fine_label_names.txt and parquet files without Hugging Face metadata need it.
	ClassNames []string
}

// kinds lists the spec kinds Open accepts.
var kinds = []string{"imagefolder", "parquet", "mnist", "fashion-mnist", "cifar10", "cifar100", "wds"}

// Kinds returns the spec kinds Open accepts.
func Kinds() []string { return slices.Clone(kinds) }

// WDSTemplatesFile is where a CLIP_benchmark webdataset keeps its zero-shot
// templates, one a line with "{c}" for the class name.
const WDSTemplatesFile = "zeroshot_classification_templates.txt"

// TemplatesFile returns the zero-shot templates file the dataset of spec ships with,
// when it has one: a wds: dataset's WDSTemplatesFile.
func TemplatesFile(spec string) (string, bool) {
	kind, path, ok := strings.Cut(spec, ":")
	if !ok || kind != "wds" {
		return "", false
	}
	p := filepath.Join(path, WDSTemplatesFile)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", false
	}
	return p, true
}

// Open opens split ("train", "test", "val" or "validation") of the dataset that
// spec ("KIND:PATH") names. See the package documentation for the layouts.
func Open(spec, split string, opts Options) (Dataset, error) {
	kind, path, ok := strings.Cut(spec, ":")
	if !ok || path == "" {
		return nil, fmt.Errorf("loaders: datasets: spec %q: want KIND:PATH with KIND one of %s", spec, strings.Join(kinds, ", "))
	}
	sp, err := parseSplit(split)
	if err != nil {
		return nil, err
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("loaders: datasets: negative limit %d", opts.Limit)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("loaders: datasets: %s: %w", spec, err)
	}
	var ds *base
	switch kind {
	case "imagefolder":
		ds, err = openImageFolder(path, sp)
	case "parquet":
		ds, err = openParquet(path, sp)
	case "mnist":
		ds, err = openIdx(path, sp, mnistClasses)
	case "fashion-mnist":
		ds, err = openIdx(path, sp, fashionMNISTClasses)
	case "cifar10":
		ds, err = openCIFAR10(path, sp)
	case "cifar100":
		ds, err = openCIFAR100(path, sp, opts.ClassNames != nil)
	case "wds":
		ds, err = openWDS(path, sp)
	default:
		return nil, fmt.Errorf("loaders: datasets: spec %q: unknown kind %q (want one of %s)", spec, kind, strings.Join(kinds, ", "))
	}
	if err != nil {
		return nil, err
	}
	ds.name = kind + "/" + sp.name
	if opts.ClassNames != nil {
		switch {
		case ds.numClasses > 0 && len(opts.ClassNames) != ds.numClasses:
			return nil, fmt.Errorf("loaders: datasets: %s: Options.ClassNames has %d names, the dataset has %d classes", spec, len(opts.ClassNames), ds.numClasses)
		case ds.numClasses == 0:
			// The source does not say how many classes it has: the labels must fit.
			if err := checkLabels(ds.labels, len(opts.ClassNames), func(i int) string {
				where := fmt.Sprintf("%s item %d", spec, i)
				if ds.where != nil {
					where = ds.where(i)
				}
				return fmt.Sprintf("%s (Options.ClassNames has %d names)", where, len(opts.ClassNames))
			}); err != nil {
				return nil, err
			}
			ds.numClasses = len(opts.ClassNames)
		}
		ds.classes = slices.Clone(opts.ClassNames)
	}
	if ds.classes == nil {
		return nil, fmt.Errorf("loaders: datasets: %s: no class names found: set Options.ClassNames", spec)
	}
	if opts.Limit > 0 && opts.Limit < ds.Len() {
		idx := limitIndices(ds.Len(), opts.Limit, opts.Seed)
		if opts.Balanced {
			idx = balancedIndices(ds.labels, opts.Limit, opts.Seed)
		}
		return &subset{Dataset: ds, indices: idx}, nil
	}
	return ds, nil
}

// balancedIndices returns n indices of labels, classes taking turns (see
// Options.Balanced), sorted.
func balancedIndices(labels []int32, n int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, seed))
	var byClass [][]int
	for i, l := range labels {
		for int(l) >= len(byClass) {
			byClass = append(byClass, nil)
		}
		byClass[l] = append(byClass[l], i)
	}
	for _, items := range byClass {
		rng.Shuffle(len(items), func(a, b int) { items[a], items[b] = items[b], items[a] })
	}
	order := rng.Perm(len(byClass))
	out := make([]int, 0, n)
	for round := 0; len(out) < n; round++ {
		for _, c := range order {
			if round < len(byClass[c]) && len(out) < n {
				out = append(out, byClass[c][round])
			}
		}
	}
	slices.Sort(out)
	return out
}

// split is a parsed split name with the directory or file names that may hold it,
// in order of preference.
type split struct {
	name       string   // as given by the caller, normalised: train, test, val
	candidates []string // e.g. test, val, validation
}

// folder returns the first of the split's candidate folders that exists under root,
// or an error naming root and the folders looked for.
func (sp split) folder(root string) (string, error) {
	for _, c := range sp.candidates {
		if st, err := os.Stat(filepath.Join(root, c)); err == nil && st.IsDir() {
			return filepath.Join(root, c), nil
		}
	}
	return "", fmt.Errorf("loaders: datasets: %s: no %s folder (looked for %s)", root, sp.name, strings.Join(sp.candidates, ", "))
}

func parseSplit(s string) (split, error) {
	switch s {
	case "train":
		return split{"train", []string{"train"}}, nil
	case "test":
		return split{"test", []string{"test", "val", "validation"}}, nil
	case "val", "validation":
		return split{"val", []string{"val", "validation"}}, nil
	}
	return split{}, fmt.Errorf("loaders: datasets: unknown split %q (want train, test, val or validation)", s)
}

// limitIndices returns the first n of a permutation of [0, total) drawn from seed,
// sorted.
func limitIndices(total, n int, seed uint64) []int {
	perm := rand.New(rand.NewPCG(seed, seed)).Perm(total)[:n]
	slices.Sort(perm)
	return perm
}

// Labeler is implemented by every Dataset Open returns: labels without reading images,
// for callers (such as a feature cache) that already hold the features.
type Labeler interface {
	Label(i int) int
}

// Sourcer is implemented by every Dataset Open returns: the files an item's image and
// label are read from, so that a feature cache can notice when they change (by size
// and modification time) without reading them.
type Sourcer interface {
	// Sources returns the files item i (0 <= i < Len()) is read from. Callers must
	// not modify the slice.
	Sources(i int) []string
}

// base is the Dataset every kind returns: a label per item and a function that
// reads item i's pixels or bytes.
type base struct {
	name       string
	classes    []string // nil when the source has no names
	numClasses int      // 0 when the source does not say; labels are checked against it
	labels     []int32
	// files lists what every item is read from (idx, CIFAR and parquet datasets read
	// their items out of a few shared files); source, when set, names item i's own
	// file instead (an image file, a tar shard).
	files  []string
	source func(i int) string
	// where names item i's label in errors: "FILE[row N]", "SHARD.tar:KEY.cls".
	where func(i int) string
	// read fills in Name and Encoded or Image for item i; Index and Label are set
	// by Item.
	read func(i int) (Item, error)
}

func (d *base) Name() string         { return d.name }
func (d *base) ClassNames() []string { return d.classes }
func (d *base) Len() int             { return len(d.labels) }

// Label returns item i's label without reading its image (0 <= i < Len()).
func (d *base) Label(i int) int { return int(d.labels[i]) }

// Sources returns the files item i is read from (0 <= i < Len()).
func (d *base) Sources(i int) []string {
	if d.source != nil {
		return []string{d.source(i)}
	}
	return d.files
}

func (d *base) Item(i int) (Item, error) {
	if i < 0 || i >= len(d.labels) {
		return Item{}, fmt.Errorf("loaders: datasets: %s: item %d out of range [0, %d)", d.name, i, len(d.labels))
	}
	it, err := d.read(i)
	if err != nil {
		return Item{}, err
	}
	it.Index, it.Label = i, int(d.labels[i])
	return it, nil
}

// subset is a Dataset limited to some indices of another.
type subset struct {
	Dataset
	indices []int
}

func (s *subset) Len() int { return len(s.indices) }

// Label returns item i's label without reading its image (0 <= i < Len()).
func (s *subset) Label(i int) int { return s.Dataset.(Labeler).Label(s.indices[i]) }

// Sources returns the files item i is read from (0 <= i < Len()).
func (s *subset) Sources(i int) []string { return s.Dataset.(Sourcer).Sources(s.indices[i]) }

func (s *subset) Item(i int) (Item, error) {
	if i < 0 || i >= len(s.indices) {
		return Item{}, fmt.Errorf("loaders: datasets: %s: item %d out of range [0, %d)", s.Name(), i, len(s.indices))
	}
	it, err := s.Dataset.Item(s.indices[i])
	it.Index = i
	return it, err
}

var (
	_ Dataset = (*base)(nil)
	_ Dataset = (*subset)(nil)
	_ Sourcer = (*base)(nil)
	_ Sourcer = (*subset)(nil)
)
