package results

import "bytes"

// indentJSON formats compact JSON as json.Marshal writes it (no whitespace outside
// strings) for reading: one object member a line, and arrays of scalars kept on one
// line, so that a confusion matrix prints as one row a line instead of one number a
// line, as json.MarshalIndent would.
func indentJSON(src []byte) []byte {
	var dst bytes.Buffer
	dst.Grow(len(src) + len(src)/4)
	formatValue(&dst, src, 0, 0)
	dst.WriteByte('\n')
	return dst.Bytes()
}

// formatValue writes the value starting at src[i] and returns the index after it.
func formatValue(dst *bytes.Buffer, src []byte, i, depth int) int {
	switch src[i] {
	case '{':
		if src[i+1] == '}' {
			dst.WriteString("{}")
			return i + 2
		}
		dst.WriteByte('{')
		i++
		for {
			newline(dst, depth+1)
			j := skipValue(src, i) // the key
			dst.Write(src[i:j])
			dst.WriteString(": ")
			i = formatValue(dst, src, j+1, depth+1) // j is the ':'
			if src[i] == ',' {
				dst.WriteByte(',')
				i++
				continue
			}
			newline(dst, depth)
			dst.WriteByte('}')
			return i + 1
		}
	case '[':
		end := skipValue(src, i)
		if src[i+1] == ']' || flatArray(src, i+1) {
			// Scalars: copy with a space after each comma outside strings.
			for k := i; k < end; {
				if src[k] == '"' {
					e := skipValue(src, k)
					dst.Write(src[k:e])
					k = e
					continue
				}
				dst.WriteByte(src[k])
				if src[k] == ',' {
					dst.WriteByte(' ')
				}
				k++
			}
			return end
		}
		dst.WriteByte('[')
		i++
		for {
			newline(dst, depth+1)
			i = formatValue(dst, src, i, depth+1)
			if src[i] == ',' {
				dst.WriteByte(',')
				i++
				continue
			}
			newline(dst, depth)
			dst.WriteByte(']')
			return i + 1
		}
	}
	j := skipValue(src, i)
	dst.Write(src[i:j])
	return j
}

// flatArray reports whether the array whose first element starts at src[i] holds
// no object or array.
func flatArray(src []byte, i int) bool {
	for {
		if src[i] == '{' || src[i] == '[' {
			return false
		}
		i = skipValue(src, i)
		if src[i] == ']' {
			return true
		}
		i++ // the comma
	}
}

// skipValue returns the index just after the compact JSON value at src[i].
func skipValue(src []byte, i int) int {
	depth := 0
	for inString := false; i < len(src); i++ {
		c := src[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return i + 1
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i // the end of the enclosing container
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case c == ',' && depth == 0:
			return i
		}
	}
	return i
}

func newline(dst *bytes.Buffer, depth int) {
	dst.WriteByte('\n')
	for range depth {
		dst.WriteString("  ")
	}
}
