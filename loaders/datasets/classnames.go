package datasets

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// imagenetTable is the ImageNet-1k class table: per line a WordNet id, a tab and the
// class name of OpenAI's prompt-engineering notebook, in class-index order (the ids
// sorted, as torchvision's ImageFolder numbers them). OpenAI's names are MIT
// licensed (LICENSE-openai-clip beside the table).
//
//go:embed imagenet_classes.tsv
var imagenetTable string

// ImageNetClass is one ImageNet-1k class.
type ImageNetClass struct {
	// WNID is the WordNet id, the class folder's name ("n01440764").
	WNID string
	// Name is OpenAI's class name ("tench"), cleaned for prompts.
	Name string
}

var imagenet struct {
	once    sync.Once
	classes []ImageNetClass
	byWNID  map[string]string
}

func loadImageNet() {
	imagenet.byWNID = map[string]string{}
	for _, line := range strings.Split(imagenetTable, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		wnid, name, ok := strings.Cut(line, "\t")
		if !ok {
			panic("datasets: imagenet_classes.tsv: line without a tab: " + line) // embedded data
		}
		imagenet.classes = append(imagenet.classes, ImageNetClass{WNID: wnid, Name: name})
		imagenet.byWNID[wnid] = name
	}
}

// ImageNetClasses returns the 1000 ImageNet-1k classes in class-index order, named
// as in OpenAI's Prompt_Engineering_for_ImageNet.ipynb. The slice is a copy.
func ImageNetClasses() []ImageNetClass {
	imagenet.once.Do(loadImageNet)
	return append([]ImageNetClass(nil), imagenet.classes...)
}

// ImageNetClassName returns OpenAI's name of the ImageNet-1k class with WordNet id
// wnid, and whether it is one.
func ImageNetClassName(wnid string) (string, bool) {
	imagenet.once.Do(loadImageNet)
	name, ok := imagenet.byWNID[wnid]
	return name, ok
}

// imagenetteSpelling holds the two Imagenette classes whose names in the article
// reproduced here (and in fast.ai's and Hugging Face's Imagenette) differ from
// OpenAI's ("English Springer Spaniel", "chainsaw"); Imagenette's other eight names
// are OpenAI's.
var imagenetteSpelling = map[string]string{
	"n02102040": "English springer",
	"n03000684": "chain saw",
}

// imagenetteWNIDs are Imagenette's ten classes.
var imagenetteWNIDs = []string{"n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
	"n03394916", "n03417042", "n03425413", "n03445777", "n03888257"}

// wnidClassNames names class folders that are all ImageNet WordNet ids: with the
// article's spelling when they are all Imagenette classes, with OpenAI's names
// otherwise. ok is false when some folder is not an ImageNet id.
func wnidClassNames(folders []string) (names []string, ok bool) {
	names = make([]string, len(folders))
	imagenette := true
	for i, f := range folders {
		name, known := ImageNetClassName(f)
		if !known {
			return nil, false
		}
		names[i] = name
		imagenette = imagenette && slices.Contains(imagenetteWNIDs, f)
	}
	if imagenette {
		for i, f := range folders {
			if s, ok := imagenetteSpelling[f]; ok {
				names[i] = s
			}
		}
	}
	return names, true
}

// fashionMNISTClasses are Fashion-MNIST's labels 0..9 (Xiao et al. 2017).
var fashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// mnistClasses are the digits.
var mnistClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// cifar10Classes are CIFAR-10's labels, as in batches.meta.txt.
var cifar10Classes = []string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

// readNames reads a class-name file: one name a line, surrounding blanks trimmed,
// trailing empty lines ignored. An empty line between names is an error, since it
// would shift every later label.
func readNames(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loaders: datasets: %w", err)
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("loaders: datasets: %s: no class names", path)
	}
	names := make([]string, len(lines))
	for i, l := range lines {
		names[i] = strings.TrimSpace(l)
		if names[i] == "" {
			return nil, fmt.Errorf("loaders: datasets: %s:%d: empty class name", path, i+1)
		}
	}
	return names, nil
}

// checkLabels reports the first label outside [0, n), naming the item with where.
func checkLabels(labels []int32, n int, where func(i int) string) error {
	for i, l := range labels {
		if l < 0 || int(l) >= n {
			return fmt.Errorf("loaders: datasets: %s: label %d out of range [0, %d)", where(i), l, n)
		}
	}
	return nil
}
