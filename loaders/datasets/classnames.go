package datasets

import (
	"fmt"
	"os"
	"strings"
)

// imagenetteClasses maps Imagenette's WordNet ids to the names of its article
// (label order is the sorted ids, as in ImageFolder).
var imagenetteClasses = map[string]string{
	"n01440764": "tench",
	"n02102040": "English springer",
	"n02979186": "cassette player",
	"n03000684": "chain saw",
	"n03028079": "church",
	"n03394916": "French horn",
	"n03417042": "garbage truck",
	"n03425413": "gas pump",
	"n03445777": "golf ball",
	"n03888257": "parachute",
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
