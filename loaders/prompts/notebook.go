package prompts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// The python lists of OpenAI's notebook Prompt_Engineering_for_ImageNet.ipynb (CLIP
// repository, notebooks/): the 1000 cleaned ImageNet class names and the 80 templates
// of the paper's ImageNet ensemble.
const (
	NotebookClassesVar   = "imagenet_classes"
	NotebookTemplatesVar = "imagenet_templates"
)

// ErrNoList is matched (errors.Is) when a python source or notebook assigns no list
// to the name asked for.
var ErrNoList = errors.New("no such list")

// ParsePythonList finds the first top-level assignment `name = [...]` in python
// source and returns the list, whose items must be string literals (single or double
// quoted, simple escapes, # comments and a trailing comma allowed). Code after the
// list is not read. Errors start with the line number in source and a colon; an
// absent assignment gives an error matching ErrNoList.
func ParsePythonList(source, name string) ([]string, error) {
	line := 1
	for pos := 0; pos <= len(source); {
		p := &pyParser{src: source, pos: pos, line: line}
		for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
			p.pos++
		}
		if p.ident() == name {
			for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
				p.pos++
			}
			if p.consume('=') && !p.consume('=') {
				return p.stringList(name)
			}
		}
		next := strings.IndexByte(source[pos:], '\n')
		if next < 0 {
			break
		}
		pos += next + 1
		line++
	}
	return nil, fmt.Errorf("1: %s = [...]: %w", name, ErrNoList)
}

// stringList reads a list value whose items are all strings.
func (p *pyParser) stringList(name string) ([]string, error) {
	p.skipSpace()
	line := p.line
	v, err := p.value()
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, name)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%d: %s is not a list", line, name)
	}
	out := make([]string, len(list))
	for i, item := range list {
		s, ok := item.(pyString)
		if !ok {
			return nil, fmt.Errorf("%d: %s item %d is not a string", line, name, i)
		}
		out[i] = s.s
	}
	return out, nil
}

// notebook is the part of a Jupyter notebook (nbformat 4) that holds code.
type notebook struct {
	Cells []struct {
		CellType string          `json:"cell_type"`
		Source   json.RawMessage `json:"source"`
	} `json:"cells"`
}

// NotebookCode returns the source of each code cell of a Jupyter notebook (nbformat
// 4, where a cell's source is a string or a list of lines), in notebook order.
func NotebookCode(data []byte) ([]string, error) {
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return nil, fmt.Errorf("not a Jupyter notebook: %w", err)
	}
	var code []string
	for i, c := range nb.Cells {
		if c.CellType != "code" || len(c.Source) == 0 {
			continue
		}
		var one string
		if err := json.Unmarshal(c.Source, &one); err == nil {
			code = append(code, one)
			continue
		}
		var lines []string
		if err := json.Unmarshal(c.Source, &lines); err != nil {
			return nil, fmt.Errorf("cell %d (counting from 1): source is neither a string nor a list of strings", i+1)
		}
		code = append(code, strings.Join(lines, ""))
	}
	if len(code) == 0 {
		return nil, fmt.Errorf("not a Jupyter notebook: no code cells")
	}
	return code, nil
}

// ExtractNotebookLists returns, for each name, the python list of strings assigned to
// it in the first code cell of the notebook that assigns it (see ParsePythonList).
// Errors name the cell and the line within it.
func ExtractNotebookLists(data []byte, names ...string) (map[string][]string, error) {
	cells, err := NotebookCode(data)
	if err != nil {
		return nil, fmt.Errorf("loaders: prompts: %w", err)
	}
	out := make(map[string][]string, len(names))
	for _, name := range names {
		for i, src := range cells {
			list, err := ParsePythonList(src, name)
			if errors.Is(err, ErrNoList) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("loaders: prompts: code cell %d (counting from 1), line %w", i+1, err)
			}
			out[name] = list
			break
		}
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("loaders: prompts: no code cell assigns %s = [...]", name)
		}
	}
	return out, nil
}

// ParseImageNetNotebook extracts the ImageNet prompt set from OpenAI's notebook
// Prompt_Engineering_for_ImageNet.ipynb: classes from NotebookClassesVar, templates
// from NotebookTemplatesVar. The set is named "ImageNet".
func ParseImageNetNotebook(data []byte) (Set, error) {
	lists, err := ExtractNotebookLists(data, NotebookClassesVar, NotebookTemplatesVar)
	if err != nil {
		return Set{}, err
	}
	s := Set{Name: "ImageNet", Templates: lists[NotebookTemplatesVar]}
	for _, c := range lists[NotebookClassesVar] {
		s.Classes = append(s.Classes, []string{c})
	}
	switch {
	case len(s.Templates) == 0:
		return Set{}, fmt.Errorf("loaders: prompts: %s is empty", NotebookTemplatesVar)
	case len(s.Classes) == 0:
		return Set{}, fmt.Errorf("loaders: prompts: %s is empty", NotebookClassesVar)
	}
	if err := s.validate(); err != nil {
		return Set{}, fmt.Errorf("loaders: prompts: %w", err)
	}
	return s, nil
}

// ReadImageNetNotebook reads the notebook at path (see ParseImageNetNotebook); errors
// name the file.
func ReadImageNetNotebook(path string) (Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Set{}, fmt.Errorf("loaders: prompts: %w", err)
	}
	s, err := ParseImageNetNotebook(data)
	if err != nil {
		return Set{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// WriteJSON saves s atomically as {"templates": [...], "classes": [...]}, the form
// ReadJSON and ReadTemplates read: a class with one name is a string, one with
// synonyms a list. Classes is omitted when s has none.
func WriteJSON(path string, s Set) error {
	if len(s.Templates) == 0 {
		return fmt.Errorf("loaders: prompts: %s: no templates to write", path)
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("loaders: prompts: %s: %w", path, err)
	}
	out := struct {
		Templates []string `json:"templates"`
		Classes   []any    `json:"classes,omitempty"`
	}{Templates: s.Templates}
	for _, c := range s.Classes {
		if len(c) == 1 {
			out.Classes = append(out.Classes, c[0])
		} else {
			out.Classes = append(out.Classes, c)
		}
	}
	err := atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	})
	if err != nil {
		return fmt.Errorf("loaders: prompts: %w", err)
	}
	return nil
}
