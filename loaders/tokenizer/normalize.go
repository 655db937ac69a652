package tokenizer

//go:generate go run gen_entities.go

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Normalize applies OpenAI's text clean-up, minus ftfy: html.unescape twice,
// strip, collapse whitespace runs to one space, strip, lowercase (Python's
// str.lower, with its full mapping of U+0130 and its final-sigma rule).
func Normalize(text string) string {
	t := unescapeHTML(unescapeHTML(text))
	t = strings.TrimFunc(t, pyIsSpace)
	t = collapseSpace(t)
	return pyLower(t)
}

// isWhiteSpace reports the Unicode White_Space property, which is what the regex
// module's \s matches. Go's unicode.IsSpace is exactly that set.
func isWhiteSpace(r rune) bool { return unicode.IsSpace(r) }

// pyIsSpace is Python's str.isspace: White_Space plus the information separators
// U+001C..U+001F (bidi class B or S). str.strip uses it, the regex \s does not.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// collapseSpace is whitespace_clean: re.sub(r'\s+', ' ') then str.strip().
func collapseSpace(s string) string {
	if plainSpaced(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if isWhiteSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return strings.TrimFunc(b.String(), pyIsSpace)
}

// plainSpaced reports whether s is ASCII with single spaces between words and none
// at the ends, which collapseSpace leaves unchanged: the usual prompt.
func plainSpaced(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c <= ' ' && (c != ' ' || s[i+1] == ' ') {
			return false
		}
	}
	return true
}

// pyLower is Python's str.lower. It differs from strings.ToLower in two places:
// U+0130 (İ) becomes "i" + U+0307 (SpecialCasing), and a capital sigma at the end
// of a word becomes ς rather than σ (Final_Sigma).
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(s, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the Σ at byte offset i is in the Final_Sigma context:
// a cased letter before it (skipping case-ignorables) and none after it.
func finalSigma(s string, i int) bool {
	j := i
	before := false
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if !isCaseIgnorable(r) {
			before = isCased(r)
			break
		}
	}
	if !before {
		return false
	}
	for _, r := range s[i+len("Σ"):] {
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// isCased is the Unicode Cased property.
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// isCaseIgnorable is the Unicode Case_Ignorable property: marks, format characters,
// modifiers, and the Word_Break MidLetter, MidNumLet and Single_Quote characters.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// unescapeHTML is Python's html.unescape. Go's html.UnescapeString differs from it:
// it maps numeric references to C0/C1 controls and non-characters to themselves or
// U+FFFD where Python drops them, and it reads entity names differently.
//
// Python matches &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and
// replaces each match; text between matches is kept.
func unescapeHTML(s string) string {
	amp := strings.IndexByte(s, '&')
	if amp < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:amp])
	i := amp
	for i < len(s) {
		if s[i] != '&' {
			j := strings.IndexByte(s[i:], '&')
			if j < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		n, rep := charref(s[i+1:])
		if n == 0 {
			b.WriteByte('&')
			i++
			continue
		}
		b.WriteString(rep)
		i += 1 + n
	}
	return b.String()
}

// charref matches one reference at the start of s (just after '&') and returns the
// bytes it consumed (0 for no match) and its replacement.
func charref(s string) (int, string) {
	if len(s) > 1 && s[0] == '#' {
		hex := s[1] == 'x' || s[1] == 'X'
		start := 1
		if hex {
			start = 2
		}
		j := start
		for j < len(s) && (isDigit(s[j]) || hex && isHexLetter(s[j])) {
			j++
		}
		if j == start {
			return 0, ""
		}
		digits := s[start:j]
		if j < len(s) && s[j] == ';' {
			j++
		}
		return j, numericRef(digits, hex)
	}
	// Named: up to 32 code points that are not tab, newline, form feed, space, '<',
	// '&', '#' or ';', then an optional ';'.
	j, count := 0, 0
	for j < len(s) && count < 32 {
		r, n := utf8.DecodeRuneInString(s[j:])
		if r == '\t' || r == '\n' || r == '\f' || r == ' ' || r == '<' || r == '&' || r == '#' || r == ';' {
			break
		}
		j += n
		count++
	}
	if j == 0 {
		return 0, ""
	}
	if j < len(s) && s[j] == ';' {
		j++
	}
	name := s[:j]
	if v, ok := html5Entities[name]; ok {
		return j, v
	}
	// The longest prefix that is an entity (only the legacy names without ';' can
	// match here), as for x in range(len(s)-1, 1, -1) in Python: at least 2 code points.
	for k := len(name) - 1; k > 0; k-- {
		if !utf8.RuneStart(name[k]) || utf8.RuneCountInString(name[:k]) < 2 {
			continue
		}
		if v, ok := html5Entities[name[:k]]; ok {
			return j, v + name[k:]
		}
	}
	return j, "&" + name
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isHexLetter(c byte) bool { return c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// numericRef is Python's handling of &#NNN; and &#xHHH;.
func numericRef(digits string, hex bool) string {
	base := 10
	if hex {
		base = 16
	}
	// Leading zeros do not count against the range; anything longer than 8
	// significant digits is past U+10FFFF either way.
	d := strings.TrimLeft(digits, "0")
	var num uint64 = 0x110000
	if len(d) <= 8 {
		v, err := strconv.ParseUint("0"+d, base, 64)
		if err == nil {
			num = v
		}
	}
	if r, ok := invalidCharrefs[num]; ok {
		return r
	}
	if num >= 0xd800 && num <= 0xdfff || num > 0x10ffff {
		return "\ufffd"
	}
	if isInvalidCodepoint(num) {
		return ""
	}
	return string(rune(num))
}

// invalidCharrefs is Python's html._invalid_charrefs: NUL, CR and the C1 range
// read as Windows-1252, as HTML5 prescribes.
var invalidCharrefs = map[uint64]string{
	0x00: "\ufffd", 0x0d: "\r",
	0x80: "\u20ac", 0x81: "\u0081", 0x82: "\u201a", 0x83: "\u0192", 0x84: "\u201e",
	0x85: "\u2026", 0x86: "\u2020", 0x87: "\u2021", 0x88: "\u02c6", 0x89: "\u2030",
	0x8a: "\u0160", 0x8b: "\u2039", 0x8c: "\u0152", 0x8d: "\u008d", 0x8e: "\u017d",
	0x8f: "\u008f", 0x90: "\u0090", 0x91: "\u2018", 0x92: "\u2019", 0x93: "\u201c",
	0x94: "\u201d", 0x95: "\u2022", 0x96: "\u2013", 0x97: "\u2014", 0x98: "\u02dc",
	0x99: "\u2122", 0x9a: "\u0161", 0x9b: "\u203a", 0x9c: "\u0153", 0x9d: "\u009d",
	0x9e: "\u017e", 0x9f: "\u0178",
}

// isInvalidCodepoint is Python's html._invalid_codepoints: control characters and
// non-characters, which html.unescape drops.
func isInvalidCodepoint(n uint64) bool {
	switch {
	case n >= 0x1 && n <= 0x8, n == 0xb, n >= 0xe && n <= 0x1f, n >= 0x7f && n <= 0x9f,
		n >= 0xfdd0 && n <= 0xfdef:
		return true
	}
	return n&0xfffe == 0xfffe && n <= 0x10ffff
}
