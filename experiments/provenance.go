package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// weightExts are the extensions of the files that hold a checkpoint's tensors.
var weightExts = []string{".safetensors", ".bin", ".npy", ".pt", ".pth"}

// WeightsSHA256 fingerprints the weights in dir for results files: the SHA-256 of
// its weights file (what the Hugging Face hub lists as the file's LFS digest), or,
// for a directory of several (OpenAI's .npy layout), the SHA-256 of their sorted
// sha256sum listing, which `sha256sum *.npy | sha256sum` reproduces.
func WeightsSHA256(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("experiments: weights checksum: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && slices.Contains(weightExts, strings.ToLower(filepath.Ext(e.Name()))) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("experiments: weights checksum: no %s files in %s", strings.Join(weightExts, ", "), dir)
	}
	slices.Sort(names)
	var listing strings.Builder
	sums := make([]string, len(names))
	for i, n := range names {
		if sums[i], err = fileSHA256(filepath.Join(dir, n)); err != nil {
			return "", err
		}
		fmt.Fprintf(&listing, "%s  %s\n", sums[i], n)
	}
	if len(names) == 1 {
		return sums[0], nil
	}
	sum := sha256.Sum256([]byte(listing.String()))
	return hex.EncodeToString(sum[:]), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("experiments: weights checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("experiments: weights checksum: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
