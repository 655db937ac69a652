package regfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "f")
	os.WriteFile(reg, []byte("12345"), 0o644)
	fifo := filepath.Join(dir, "p")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here: ", err)
	}
	link := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", link)
	for i, test := range []struct {
		path, want string
	}{
		{reg, ""},
		{fifo, "p is not a regular file (a FIFO)"}, // returns at once: no writer is awaited
		{link, "zero is not a regular file (a character device)"},
		{dir, "is not a regular file (a directory)"},
		{filepath.Join(dir, "none"), "no such file"},
	} {
		f, fi, err := Open(test.path)
		if test.want == "" {
			if err != nil || fi.Size() != 5 {
				t.Errorf("test %d: %v %v", i, fi, err)
			}
			f.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want %q", i, err, test.want)
		}
	}
	if b, err := ReadFile(reg, 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadFile: %q %v", b, err)
	}
	if _, err := ReadFile(reg, 4); err == nil || !strings.Contains(err.Error(), "5 bytes, more than the 4-byte limit") {
		t.Errorf("ReadFile over the limit: %v", err)
	}
}
