// Package prompts reads the class names and prompt templates of CLIP zero-shot
// classification: a class's text embedding is the mean of the embeddings of every
// template applied to every name of that class (Radford et al. 2021, sec. 3.1.4).
//
// Sources:
//   - OpenAI's prompts.md (CLIP repository, data/prompts.md): per-dataset
//     "## Name" sections holding python lists `classes = [...]` and
//     `templates = [...]`, read by ReadOpenAI. It has 26 datasets, not ImageNet.
//   - Template files, read by ReadTemplates: one template a line (CLIP_benchmark's
//     zeroshot_classification_templates.txt), a JSON list of strings, or a JSON
//     object with "templates" (and "classes"; ReadJSON returns both), the form in
//     which the 80-template ImageNet ensemble of OpenAI's notebook is commonly saved.
//   - OpenAI's notebook Prompt_Engineering_for_ImageNet.ipynb (CLIP repository,
//     notebooks/), whose code cells assign the python lists imagenet_classes (1000)
//     and imagenet_templates (80): ParseImageNetNotebook extracts them and WriteJSON
//     saves them in the JSON form above.
//   - Built-in sets (Builtin): the bare label and single-sentence prompts.
//
// Templates mark the class name with "{}" (OpenAI, python str.format) or "{c}"
// (CLIP_benchmark); Apply fills either.
package prompts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Set is one dataset's zero-shot prompts.
type Set struct {
	// Name is the dataset's name, e.g. "CIFAR10" (the prompts.md heading).
	Name string
	// Classes holds, in label order, each class's names: one for most datasets,
	// several synonyms for some (FacialEmotionRecognition2013's "happy", "smiling").
	// Nil when the source gives templates only.
	Classes [][]string
	// Templates are the prompt templates, each with a "{}" or "{c}" placeholder.
	Templates []string
}

// ClassNames returns each class's first name.
func (s Set) ClassNames() []string {
	names := make([]string, len(s.Classes))
	for i, c := range s.Classes {
		names[i] = c[0]
	}
	return names
}

// Prompts returns the texts whose embeddings are averaged into class i's zero-shot
// weight: every template applied to every name of the class, templates outermost.
// It panics if i is out of range, like indexing Classes.
func (s Set) Prompts(i int) []string {
	return Expand(s.Templates, s.Classes[i]...)
}

// Expand applies every template to every name, templates outermost.
func Expand(templates []string, names ...string) []string {
	out := make([]string, 0, len(templates)*len(names))
	for _, t := range templates {
		for _, n := range names {
			out = append(out, Apply(t, n))
		}
	}
	return out
}

// Apply fills a template's placeholders, "{}" and "{c}", with name.
func Apply(template, name string) string {
	return strings.NewReplacer("{}", name, "{c}", name).Replace(template)
}

// HasPlaceholder reports whether a template has "{}" or "{c}". A template without
// one would give the same text for every class.
func HasPlaceholder(template string) bool {
	return strings.Contains(template, "{}") || strings.Contains(template, "{c}")
}

// builtins are the template sets that need no file.
var builtins = map[string][]string{
	// The class name alone: CLIP's weakest baseline prompt.
	"bare": {"{}"},
	// The single sentence of the CLIP paper's prompt-engineering discussion.
	"photo": {"a photo of a {}."},
	// The prompt of the article reproduced here (no final period).
	"article": {"a photo of a {}"},
}

// BuiltinNames lists the names Builtin accepts, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Builtin returns a copy of the built-in template set name: "bare" ("{}"),
// "photo" ("a photo of a {}.") or "article" ("a photo of a {}").
func Builtin(name string) ([]string, bool) {
	t, ok := builtins[name]
	return slices.Clone(t), ok
}

// Load resolves a template spec as the experiments take it: a built-in name,
// "openai:PATH#DATASET" for one section of OpenAI's prompts.md, or the path of a
// templates file (ReadTemplates).
func Load(spec string) ([]string, error) {
	if t, ok := Builtin(spec); ok {
		return t, nil
	}
	if rest, ok := strings.CutPrefix(spec, "openai:"); ok {
		path, dataset, ok := strings.Cut(rest, "#")
		if !ok || path == "" || dataset == "" {
			return nil, fmt.Errorf("loaders: prompts: spec %q: want openai:PATH#DATASET", spec)
		}
		sets, err := ReadOpenAI(path)
		if err != nil {
			return nil, err
		}
		s, err := Lookup(sets, dataset)
		if err != nil {
			return nil, fmt.Errorf("%w, in %s", err, path)
		}
		return s.Templates, nil
	}
	if _, err := os.Stat(spec); err != nil {
		return nil, fmt.Errorf("loaders: prompts: spec %q is not a built-in set (%s), openai:PATH#DATASET or a readable file: %w",
			spec, strings.Join(BuiltinNames(), ", "), err)
	}
	return ReadTemplates(spec)
}

// Lookup finds the set named name, ignoring case.
func Lookup(sets []Set, name string) (Set, error) {
	var names []string
	for _, s := range sets {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Set{}, fmt.Errorf("loaders: prompts: no prompt set %q (have %s)", name, strings.Join(names, ", "))
}

// ReadTemplates reads a templates file: a JSON list of strings, a JSON object
// with a "templates" list, or plain text with one template a line (blank lines
// skipped, surrounding blanks trimmed). Every template must have a placeholder;
// errors name the file and, for text, the line.
func ReadTemplates(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loaders: prompts: %w", err)
	}
	// JSON is a list or an object with a quoted key; "{}" or "{c} ..." starts a
	// text file whose first template is a bare placeholder.
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("[")) ||
		bytes.HasPrefix(trimmed, []byte("{")) && bytes.HasPrefix(bytes.TrimSpace(trimmed[1:]), []byte(`"`)) {
		s, err := parseJSON(trimmed, path)
		if err != nil {
			return nil, err
		}
		return s.Templates, nil
	}
	var templates []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !HasPlaceholder(line) {
			return nil, fmt.Errorf("loaders: prompts: %s:%d: template %q has no {} or {c} placeholder", path, i+1, line)
		}
		templates = append(templates, line)
	}
	if len(templates) == 0 {
		return nil, fmt.Errorf("loaders: prompts: %s: no templates", path)
	}
	return templates, nil
}

// ReadJSON reads a JSON prompt set: {"classes": [...], "templates": [...]}, where
// a class is a name or a list of synonyms, or a bare list of templates. The set's
// Name is the file's path.
func ReadJSON(path string) (Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Set{}, fmt.Errorf("loaders: prompts: %w", err)
	}
	return parseJSON(data, path)
}

func parseJSON(data []byte, path string) (Set, error) {
	s := Set{Name: path}
	var raw struct {
		Classes   []json.RawMessage `json:"classes"`
		Templates []string          `json:"templates"`
	}
	if err := json.Unmarshal(data, &s.Templates); err != nil {
		if err2 := json.Unmarshal(data, &raw); err2 != nil {
			return Set{}, fmt.Errorf("loaders: prompts: %s: want a JSON list of templates or an object with \"templates\": %w", path, err2)
		}
		s.Templates = raw.Templates
	}
	for i, c := range raw.Classes {
		var names []string
		var one string
		if err := json.Unmarshal(c, &one); err == nil {
			names = []string{one}
		} else if err := json.Unmarshal(c, &names); err != nil {
			return Set{}, fmt.Errorf("loaders: prompts: %s: class %d is neither a string nor a list of strings", path, i)
		}
		s.Classes = append(s.Classes, names)
	}
	if len(s.Templates) == 0 {
		return Set{}, fmt.Errorf("loaders: prompts: %s: no templates", path)
	}
	if err := s.validate(); err != nil {
		return Set{}, fmt.Errorf("loaders: prompts: %s: %w", path, err)
	}
	return s, nil
}

// validate checks that every template has a placeholder and every class a
// non-empty name.
func (s Set) validate() error {
	for i, t := range s.Templates {
		if !HasPlaceholder(t) {
			return fmt.Errorf("template %d %q has no {} or {c} placeholder", i, t)
		}
	}
	for i, c := range s.Classes {
		if len(c) == 0 || slices.Contains(c, "") {
			return fmt.Errorf("class %d has an empty name", i)
		}
	}
	return nil
}
