package prompts

import (
	"fmt"
	"os"
	"strings"
)

// ReadOpenAI reads OpenAI's prompts.md: each "## NAME" section has a fenced code
// block assigning python lists to classes (names, or lists of synonyms) and
// templates. Sets come in file order. Errors name the file and line.
func ReadOpenAI(path string) ([]Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loaders: prompts: %w", err)
	}
	sets, err := ParseOpenAI(string(data))
	if err != nil {
		return nil, fmt.Errorf("loaders: prompts: %s:%w", path, err)
	}
	return sets, nil
}

// ParseOpenAI parses the text of a prompts.md (see ReadOpenAI). Errors start
// with the line number and a colon, for the caller to prefix with the file name.
func ParseOpenAI(text string) ([]Set, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var sets []Set
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(lines[i], "## ")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		head := i + 1
		// The section runs to the next heading; its first fenced block is the code.
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "## ") {
			end++
		}
		open := -1
		for j := i + 1; j < end; j++ {
			if strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
				open = j
				break
			}
		}
		if open < 0 {
			return nil, fmt.Errorf("%d: section %s has no code block", head, name)
		}
		closing := -1
		for j := open + 1; j < end; j++ {
			if strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
				closing = j
				break
			}
		}
		if closing < 0 {
			return nil, fmt.Errorf("%d: section %s: code block not closed", open+1, name)
		}
		s, err := parseSection(name, head, lines[open+1:closing], open+2)
		if err != nil {
			return nil, err
		}
		sets = append(sets, s)
		i = end - 1
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("1: no \"## NAME\" sections")
	}
	return sets, nil
}

// parseSection reads the assignments of one code block whose first line is
// line number first; the section's heading is on line head.
func parseSection(name string, head int, code []string, first int) (Set, error) {
	p := &pyParser{src: strings.Join(code, "\n"), line: first}
	s := Set{Name: name}
	var haveClasses, haveTemplates bool
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		line := p.line
		ident := p.ident()
		if ident == "" {
			return Set{}, p.errorf("section %s: want NAME = [...]", name)
		}
		p.skipSpace()
		if !p.consume('=') {
			return Set{}, p.errorf("section %s: want = after %s", name, ident)
		}
		v, err := p.value()
		if err != nil {
			return Set{}, fmt.Errorf("%w (section %s, %s)", err, name, ident)
		}
		list, ok := v.([]any)
		if !ok {
			return Set{}, fmt.Errorf("%d: section %s: %s is not a list", line, name, ident)
		}
		switch ident {
		case "classes":
			haveClasses = true
			for k, c := range list {
				names, err := classNames(c)
				if err != nil {
					return Set{}, fmt.Errorf("%d: section %s: class %d: %w", lineOf(c, line), name, k, err)
				}
				s.Classes = append(s.Classes, names)
			}
		case "templates":
			haveTemplates = true
			for k, t := range list {
				str, ok := t.(pyString)
				if !ok {
					return Set{}, fmt.Errorf("%d: section %s: template %d is not a string", lineOf(t, line), name, k)
				}
				if !HasPlaceholder(str.s) {
					return Set{}, fmt.Errorf("%d: section %s: template %d %q has no {} or {c} placeholder", str.line, name, k, str.s)
				}
				s.Templates = append(s.Templates, str.s)
			}
		}
	}
	switch {
	case !haveClasses:
		return Set{}, fmt.Errorf("%d: section %s has no classes", head, name)
	case !haveTemplates || len(s.Templates) == 0:
		return Set{}, fmt.Errorf("%d: section %s has no templates", head, name)
	}
	return s, nil
}

// lineOf returns the line of a parsed string, or def for a list.
func lineOf(v any, def int) int {
	if s, ok := v.(pyString); ok {
		return s.line
	}
	return def
}

// classNames turns a classes entry, a string or a list of strings, into names.
func classNames(v any) ([]string, error) {
	switch c := v.(type) {
	case pyString:
		if c.s == "" {
			return nil, fmt.Errorf("empty name")
		}
		return []string{c.s}, nil
	case []any:
		if len(c) == 0 {
			return nil, fmt.Errorf("empty list of names")
		}
		names := make([]string, len(c))
		for i, n := range c {
			s, ok := n.(pyString)
			if !ok {
				return nil, fmt.Errorf("name %d is not a string", i)
			}
			if s.s == "" {
				return nil, fmt.Errorf("name %d is empty", i)
			}
			names[i] = s.s
		}
		return names, nil
	}
	return nil, fmt.Errorf("neither a string nor a list of strings")
}

// pyString is a parsed string literal and the line it starts on.
type pyString struct {
	s    string
	line int
}

// pyParser reads the python literals of prompts.md: lists (nested, trailing comma
// allowed) of single- or double-quoted strings, with # comments.
type pyParser struct {
	src  string
	pos  int
	line int // line number at pos
}

func (p *pyParser) eof() bool { return p.pos >= len(p.src) }

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%d: "+format, append([]any{p.line}, args...)...)
}

// skipSpace skips blanks, newlines and comments.
func (p *pyParser) skipSpace() {
	for !p.eof() {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *pyParser) consume(c byte) bool {
	if !p.eof() && p.src[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *pyParser) ident() string {
	start := p.pos
	for !p.eof() {
		c := p.src[p.pos]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || p.pos > start && '0' <= c && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

// value reads a string (a pyString) or a list ([]any).
func (p *pyParser) value() (any, error) {
	p.skipSpace()
	if p.eof() {
		return nil, p.errorf("unexpected end of code block")
	}
	switch c := p.src[p.pos]; c {
	case '\'', '"':
		return p.str()
	case '[':
		p.pos++
		var list []any
		for {
			p.skipSpace()
			if p.consume(']') {
				return list, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			p.skipSpace()
			if p.consume(',') {
				continue
			}
			if p.consume(']') {
				return list, nil
			}
			if p.eof() {
				return nil, p.errorf("unexpected end of code block: list not closed")
			}
			return nil, p.errorf("want , or ] in list, found %q", p.src[p.pos])
		}
	default:
		return nil, p.errorf("want a string or a list, found %q", c)
	}
}

// str reads a quoted string with python's simple escapes.
func (p *pyParser) str() (pyString, error) {
	quote := p.src[p.pos]
	line := p.line
	p.pos++
	var b strings.Builder
	for !p.eof() {
		c := p.src[p.pos]
		p.pos++
		switch c {
		case quote:
			return pyString{b.String(), line}, nil
		case '\n':
			return pyString{}, fmt.Errorf("%d: string not closed on its line", line)
		case '\\':
			if p.eof() {
				return pyString{}, fmt.Errorf("%d: string not closed", line)
			}
			e := p.src[p.pos]
			p.pos++
			switch e {
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				return pyString{}, fmt.Errorf("%d: unsupported escape \\%c", line, e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return pyString{}, fmt.Errorf("%d: string not closed", line)
}
