// Package regfile opens files that are about to be parsed as untrusted input, and
// refuses anything but a regular file before a byte is read: a FIFO named x.jpg
// would block the reader forever, and /dev/zero (or a symlink to it) would feed it
// endless bytes.
package regfile

import (
	"fmt"
	"os"
	"syscall"
)

// Open opens path for reading and returns it with its FileInfo. The file is opened
// non-blocking, so that opening a FIFO with no writer returns at once, and checked
// with fstat on the opened descriptor, so that nothing can be swapped in between the
// check and the read. Anything but a regular file (FIFO, socket, device, directory)
// is closed and refused with an error naming path and what it is. Reads from a
// regular file are unaffected by the non-blocking flag.
func Open(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", path, kind(fi.Mode()))
	}
	return f, fi, nil
}

// ReadFile reads the regular file at path whole, refusing one larger than limit
// bytes (or not regular) before reading it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d-byte limit", path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, err
	}
	return b, nil
}

// kind names the type of a non-regular file.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeIrregular != 0:
		return "an irregular file"
	}
	return m.Type().String()
}
