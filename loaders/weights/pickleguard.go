package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// maxPickleOps bounds the opcodes of a pickle. A state dict takes about 25 per
// tensor (CLIP ViT-L/14: some 15,000 in all); each opcode may make the unpickler
// allocate an object of 50 to 150 bytes, so a pickle of millions of one-byte
// EMPTY_DICTs would cost a hundred times its size.
const maxPickleOps = 1 << 20

// checkPickleLengths walks the opcodes of a pickle up to its STOP and refuses one
// whose length-prefixed arguments (strings, bytes, long integers, frames) claim
// more bytes than remain, or that has more than maxPickleOps opcodes. gopickle
// allocates whatever such a length says before reading (up to 4 GB for BINUNICODE,
// any size for the 8-byte forms), so a few hostile bytes would otherwise allocate
// gigabytes or crash the process. Opcodes are those of pickle protocols 0 to 5; an
// unknown one ends the walk, since the unpickler refuses it too.
func checkPickleLengths(b []byte) error {
	le := binary.LittleEndian
	for i, ops := 0, 1; i < len(b); ops++ {
		if ops > maxPickleOps {
			return fmt.Errorf("pickle has more than %d opcodes (at byte %d), far more than any state dict", maxPickleOps, i)
		}
		op, at := b[i], i
		i++
		rest := len(b) - i
		// length-prefixed argument: the prefix's size and its value
		var prefix int
		switch op {
		case 'U', 'C', 0x8a, 0x8c: // SHORT_BINSTRING, SHORT_BINBYTES, LONG1, SHORT_BINUNICODE
			prefix = 1
		case 'T', 'X', 'B', 0x8b: // BINSTRING, BINUNICODE, BINBYTES, LONG4
			prefix = 4
		case 0x8d, 0x8e, 0x96, 0x95: // BINUNICODE8, BINBYTES8, BYTEARRAY8, FRAME
			prefix = 8
		}
		if prefix > 0 {
			if rest < prefix {
				return nil // truncated: the unpickler fails reading it
			}
			var n uint64
			switch prefix {
			case 1:
				n = uint64(b[i])
			case 4:
				n = uint64(le.Uint32(b[i:]))
				if op == 'T' || op == 0x8b {
					if v := int32(le.Uint32(b[i:])); v < 0 {
						return fmt.Errorf("pickle opcode 0x%02x at byte %d: negative length %d", op, at, v)
					}
				}
			case 8:
				n = le.Uint64(b[i:])
			}
			i += prefix
			if n > uint64(len(b)-i) {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d: length %d exceeds the %d bytes that remain", op, at, n, len(b)-i)
			}
			if op != 0x95 { // a frame's contents are opcodes, walked in turn
				i += int(n)
			}
			continue
		}
		switch op {
		case '.': // STOP
			return nil
		case '(', '0', '1', '2', 'N', 'R', 'b', 'a', 'e', 'd', '}', 'l', ']', 'o', 's', 'u',
			't', ')', 'Q', 0x88, 0x89, 0x85, 0x86, 0x87, 0x81, 0x92, 0x93, 0x94, 0x8f, 0x90,
			0x91, 0x97, 0x98:
			// no argument
		case 'K', 'h', 'q', 0x80, 0x82: // BININT1, BINGET, BINPUT, PROTO, EXT1
			i++
		case 'M', 0x83: // BININT2, EXT2
			i += 2
		case 'J', 'j', 'r', 0x84: // BININT, LONG_BINGET, LONG_BINPUT, EXT4
			i += 4
		case 'G': // BINFLOAT
			i += 8
		case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p': // one text line
			i = skipLine(b, i)
		case 'c', 'i': // GLOBAL, INST: module and name lines
			i = skipLine(b, skipLine(b, i))
		default:
			return nil // unknown opcode: the unpickler refuses it
		}
	}
	return nil
}

// skipLine returns the index after the newline that ends the line starting at i,
// or len(b) when there is none.
func skipLine(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}
