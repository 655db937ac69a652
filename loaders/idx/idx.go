// Package idx reads the idx files of MNIST, Fashion-MNIST, KMNIST and EMNIST
// (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a type
// code, the number of dimensions and each dimension as a uint32, then the array.
// Only unsigned-byte arrays (type 0x08), the type all these datasets use, are read.
// Files may be gzip-compressed (detected from the content, not the name).
package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// typeUint8 is the idx type code of unsigned bytes.
const typeUint8 = 0x08

// maxDims bounds the declared rank; real files have 1 (labels) or 3 (images).
const maxDims = 8

// Array is an unsigned-byte idx array.
type Array struct {
	// Shape is the declared shape, outermost first.
	Shape []int
	// Data holds the elements in row-major order.
	Data []uint8
}

// Images is a stack of N grey images of Rows x Cols pixels.
type Images struct {
	N, Rows, Cols int
	// Pix holds N*Rows*Cols pixels, image by image, row by row.
	Pix []uint8
}

// Float32 returns the pixels divided by 255 as an [N, Rows*Cols] row-major matrix,
// the usual input of a raw-pixel classifier.
func (im *Images) Float32() []float32 {
	out := make([]float32, len(im.Pix))
	for i, p := range im.Pix {
		out[i] = float32(p) / 255
	}
	return out
}

// Decode reads an idx array (plain, not gzip) from r. Memory grows with the bytes
// actually present, so a header declaring a huge array costs nothing until its data
// arrives; a short or overlong body is an error.
func Decode(r io.Reader) (*Array, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("header: %w", noEOF(err))
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("bad magic %x: not an idx file", head[:])
	}
	if head[2] != typeUint8 {
		return nil, fmt.Errorf("element type 0x%02x is not unsigned byte (0x08)", head[2])
	}
	nd := int(head[3])
	if nd == 0 || nd > maxDims {
		return nil, fmt.Errorf("%d dimensions; want 1 to %d", nd, maxDims)
	}
	dims := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, dims); err != nil {
		return nil, fmt.Errorf("dimensions: %w", noEOF(err))
	}
	shape := make([]int, nd)
	size := int64(1)
	for i := range shape {
		d := int64(binary.BigEndian.Uint32(dims[4*i:]))
		shape[i] = int(d)
		if size *= d; size > 1<<40 {
			return nil, fmt.Errorf("shape %v too large", shape[:i+1])
		}
	}
	// Read one byte past the declared size to detect trailing data.
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if int64(len(data)) != size {
		if int64(len(data)) > size {
			return nil, fmt.Errorf("more data than shape %v declares", shape)
		}
		return nil, fmt.Errorf("shape %v needs %d bytes, file has %d", shape, size, len(data))
	}
	return &Array{Shape: shape, Data: data}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read reads the idx file at path, gzip-compressed or not. Errors name the file.
func Read(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("idx: %w", err)
	}
	defer f.Close()
	a, err := decodeMaybeGzip(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("idx: %s: %w", path, err)
	}
	return a, nil
}

// decodeMaybeGzip decodes r, decompressing it first when it starts with gzip's magic.
func decodeMaybeGzip(r *bufio.Reader) (*Array, error) {
	magic, _ := r.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return Decode(r)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	a, err := Decode(zr)
	if err != nil {
		return nil, err
	}
	// Reading to the end makes gzip verify its checksum.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return a, nil
}

// ReadImages reads an image file (shape [N, Rows, Cols]).
func ReadImages(path string) (*Images, error) {
	a, err := Read(path)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 3 {
		return nil, fmt.Errorf("idx: %s: shape %v is not [N, rows, cols]", path, a.Shape)
	}
	return &Images{N: a.Shape[0], Rows: a.Shape[1], Cols: a.Shape[2], Pix: a.Data}, nil
}

// ReadLabels reads a label file (shape [N]) as class indices.
func ReadLabels(path string) ([]int, error) {
	a, err := Read(path)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 1 {
		return nil, fmt.Errorf("idx: %s: shape %v is not [N]", path, a.Shape)
	}
	out := make([]int, len(a.Data))
	for i, v := range a.Data {
		out[i] = int(v)
	}
	return out, nil
}
