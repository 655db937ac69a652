package datasets

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/hang"
)

// TestImageFolderHostileFiles: a FIFO named x.jpg blocked the run (even with
// --skip-bad) and a symlink to /dev/zero read until memory ran out; each is now one
// bad item, refused by name at once, and the good items still read.
func TestImageFolderHostileFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train/cat/a.png", pngBytes(t, 10))
	if err := syscall.Mkfifo(filepath.Join(dir, "train/cat/x.jpg"), 0o644); err != nil {
		t.Skip("no FIFOs here: ", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "train/cat/z.png")); err != nil {
		t.Fatal(err)
	}
	ds, err := Open("imagefolder:"+dir, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	hang.Within(t, 10*time.Second, "reading the items", func() error {
		for i := range ds.Len() {
			msg := ""
			if _, err := ds.Item(i); err != nil {
				msg = err.Error()
			}
			errs = append(errs, msg)
		}
		return nil
	})
	want := []string{"", "x.jpg is not a regular file (a FIFO)", "z.png is not a regular file (a character device)"}
	for i, w := range want {
		if (w == "") != (errs[i] == "") || !strings.Contains(errs[i], w) {
			t.Errorf("item %d: got %q want %q", i, errs[i], w)
		}
	}
}
