// Package bomb builds small compressed streams that inflate to long runs of zeros
// (decompression bombs), for tests that readers bound what they inflate: a 1 GiB
// run costs about 1 MB and no time to build.
//
// The trick: one 1 MiB run of zeros is compressed once and flushed, which ends the
// block on a byte boundary; copies of those bytes are valid deflate blocks wherever
// the 32 KiB before them are zeros, as they are after the first copy.
package bomb

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
)

// chunk is the run of zeros one repeated block inflates to.
const chunk = 1 << 20

// zeroBlock is the flushed deflate of chunk zeros.
var zeroBlock = func() []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(make([]byte, chunk))
	w.Flush()
	return b.Bytes()
}()

// Deflate returns a raw deflate stream inflating to prefix, then zeros zero bytes,
// then suffix.
func Deflate(prefix []byte, zeros int64, suffix []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(prefix)
	if zeros >= chunk {
		w.Write(make([]byte, 32<<10)) // the window the repeated blocks refer to
		w.Flush()
		zeros -= 32 << 10
		for ; zeros >= chunk; zeros -= chunk {
			b.Write(zeroBlock)
		}
		// A fresh writer's blocks refer only to what they themselves emit.
		w, _ = flate.NewWriter(&b, flate.BestCompression)
	}
	w.Write(make([]byte, zeros))
	w.Write(suffix)
	w.Close()
	return b.Bytes()
}

// Gzip is Deflate in a gzip member.
func Gzip(prefix []byte, zeros int64, suffix []byte) []byte {
	sum := crc32.Update(0, crc32.IEEETable, prefix)
	sum = zeroSum(sum, zeros, func(s uint32, p []byte) uint32 { return crc32.Update(s, crc32.IEEETable, p) })
	sum = crc32.Update(sum, crc32.IEEETable, suffix)
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, Deflate(prefix, zeros, suffix)...)
	out = binary.LittleEndian.AppendUint32(out, sum)
	return binary.LittleEndian.AppendUint32(out, uint32(int64(len(prefix)+len(suffix))+zeros))
}

// Zlib is Deflate in a zlib stream, as PNG's IDAT holds.
func Zlib(prefix []byte, zeros int64, suffix []byte) []byte {
	h := adler32.New()
	h.Write(prefix)
	sum := zeroSum(h.Sum32(), zeros, func(s uint32, p []byte) uint32 { return adlerUpdate(s, p) })
	sum = adlerUpdate(sum, suffix)
	out := append([]byte{0x78, 0xda}, Deflate(prefix, zeros, suffix)...)
	return binary.BigEndian.AppendUint32(out, sum)
}

// zeroSum feeds n zero bytes to a running checksum.
func zeroSum(sum uint32, n int64, update func(uint32, []byte) uint32) uint32 {
	z := make([]byte, chunk)
	for ; n > 0; n -= chunk {
		sum = update(sum, z[:min(n, chunk)])
	}
	return sum
}

// adlerUpdate continues an Adler-32 checksum (RFC 1950) over p.
func adlerUpdate(sum uint32, p []byte) uint32 {
	const mod = 65521
	a, b := sum&0xffff, sum>>16
	for len(p) > 0 {
		n := min(len(p), 5552) // the most bytes before the sums can overflow
		for _, c := range p[:n] {
			a += uint32(c)
			b += a
		}
		a, b = a%mod, b%mod
		p = p[n:]
	}
	return b<<16 | a
}
