// Package testfix locates the shared reference fixtures for tests.
//
// Fixtures live outside the repository, in $GORGOCLIP_SHARED or ../shared beside the
// checkout. Where neither exists a test skips saying why, except under CI=true, where
// a missing fixture is a failure: CI always has them, so a skip there would hide a bug.
package testfix

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedDir returns the shared directory or "" when it cannot be found.
func SharedDir() string {
	if d := os.Getenv("GORGOCLIP_SHARED"); d != "" {
		return d
	}
	// ../shared relative to the module root, found from this source file's location
	// so that tests in any package agree.
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	d := filepath.Join(root, "..", "shared")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		abs, _ := filepath.Abs(d)
		return abs
	}
	return ""
}

// Shared returns the path of rel (slash-separated) under the shared directory,
// skipping the test (or failing it under CI=true) when it does not exist.
func Shared(tb testing.TB, rel string) string {
	tb.Helper()
	dir := SharedDir()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if dir != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "fixture " + rel + " not found: set GORGOCLIP_SHARED or place shared/ beside the checkout"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs its idx files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNIST returns FashionMNISTDir, skipping (failing under CI=true) when the
// package is not installed.
func FashionMNIST(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(FashionMNISTDir); err == nil {
		return FashionMNISTDir
	}
	msg := "Fashion-MNIST not found at " + FashionMNISTDir + ": apt-get install dataset-fashion-mnist"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
