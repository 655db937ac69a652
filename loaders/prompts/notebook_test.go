package prompts

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// pyRepr quotes s as a python string literal with quote q.
func pyRepr(s string, q byte) string {
	r := strings.NewReplacer(`\`, `\\`, string(q), `\`+string(q), "\n", `\n`, "\t", `\t`)
	return string(q) + r.Replace(s) + string(q)
}

// fakeNotebook builds a notebook shaped like OpenAI's Prompt_Engineering_for_ImageNet:
// the classes on one source line in double quotes, then a markdown cell, then the
// templates one a line in single quotes with a trailing comma and a print after, and
// a later cell that only uses the names.
func fakeNotebook(t testing.TB, classes, templates []string) []byte {
	t.Helper()
	quoted := make([]string, len(classes))
	for i, c := range classes {
		quoted[i] = pyRepr(c, '"')
	}
	tmpl := []string{"imagenet_templates = [\n"}
	for _, s := range templates {
		tmpl = append(tmpl, "    "+pyRepr(s, '\'')+",\n")
	}
	tmpl = append(tmpl, "]\n", "\n", `print(f"{len(imagenet_classes)} classes, {len(imagenet_templates)} templates")`)
	type cell struct {
		CellType string         `json:"cell_type"`
		Metadata map[string]any `json:"metadata"`
		Source   any            `json:"source"`
		Outputs  []any          `json:"outputs,omitempty"`
	}
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 0, "metadata": map[string]any{"kernelspec": map[string]any{"name": "python3"}},
		"cells": []cell{
			{"markdown", map[string]any{}, []string{"# Preparing ImageNet labels and prompts\n", "imagenet_classes = ['not', 'code']"}, nil},
			{"code", map[string]any{}, "import numpy as np\nimport clip", []any{}},
			{"code", map[string]any{}, []string{"imagenet_classes = [" + strings.Join(quoted, ", ") + "]"}, []any{}},
			{"markdown", map[string]any{}, []string{"A subset of these class names are modified.\n"}, nil},
			{"code", map[string]any{}, tmpl, []any{map[string]any{"output_type": "stream", "text": []string{"n classes\n"}}}},
			{"code", map[string]any{}, []string{"zeroshot_weights = zeroshot_classifier(imagenet_classes, imagenet_templates)"}, []any{}},
		},
	}
	b, err := json.MarshalIndent(nb, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseImageNetNotebook(t *testing.T) {
	t.Parallel()
	classes := []string{"tench", "kite (bird of prey)", "yellow lady's slipper", `say "cheese"`, "back\\slash"}
	templates := []string{"a bad photo of a {}.", "itap of my {}.", "the {}'s toy.", "a {c} in a video game."}
	data := fakeNotebook(t, classes, templates)
	s, err := ParseImageNetNotebook(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ClassNames(), classes) || !slices.Equal(s.Templates, templates) || s.Name != "ImageNet" {
		t.Errorf("got %s classes %q templates %q", s.Name, s.ClassNames(), s.Templates)
	}

	// Saved and read back as JSON, templates first.
	path := filepath.Join(t.TempDir(), "sub", "imagenet.json")
	if err := WriteJSON(path, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "{\n  \"templates\": [\n    \"a bad photo of a {}.\",") || !strings.Contains(string(b), `"yellow lady's slipper"`) {
		t.Errorf("JSON layout:\n%s", b)
	}
	back, err := ReadJSON(path)
	if err != nil || !slices.EqualFunc(back.Classes, s.Classes, slices.Equal) || !slices.Equal(back.Templates, templates) {
		t.Errorf("ReadJSON: got %q %q, %v", back.Classes, back.Templates, err)
	}
	if got, err := ReadTemplates(path); err != nil || !slices.Equal(got, templates) {
		t.Errorf("ReadTemplates: got %q, %v", got, err)
	}
	if got, err := Load(path); err != nil || !slices.Equal(got, templates) {
		t.Errorf("Load: got %q, %v", got, err)
	}
	nb := filepath.Join(t.TempDir(), "nb.ipynb")
	os.WriteFile(nb, data, 0o644)
	if got, err := ReadImageNetNotebook(nb); err != nil || !slices.Equal(got.Templates, templates) {
		t.Errorf("ReadImageNetNotebook: got %q, %v", got.Templates, err)
	}
}

// The real 80 templates and 1000 classes, wrapped by the test in a notebook like
// OpenAI's, come back unchanged through the parser and through WriteJSON/ReadJSON.
func TestParseImageNetNotebookShared(t *testing.T) {
	t.Parallel()
	want, err := ReadJSON(testfix.Shared(t, "fixtures/tokenizer/imagenet_templates.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Templates) != 80 || len(want.Classes) != 1000 {
		t.Fatalf("fixture has %d templates %d classes", len(want.Templates), len(want.Classes))
	}
	got, err := ParseImageNetNotebook(fakeNotebook(t, want.ClassNames(), want.Templates))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Templates, want.Templates) || !slices.EqualFunc(got.Classes, want.Classes, slices.Equal) {
		t.Fatalf("round trip differs: %d templates %d classes", len(got.Templates), len(got.Classes))
	}
	path := filepath.Join(t.TempDir(), "imagenet_templates.json")
	if err := WriteJSON(path, got); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil || !slices.Equal(back.Templates, want.Templates) || !slices.EqualFunc(back.Classes, want.Classes, slices.Equal) {
		t.Errorf("WriteJSON/ReadJSON round trip differs: %v", err)
	}
}

func TestParsePythonList(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		src     string
		want    []string
		wantErr string // prefix; "" for none
	}{
		{"x = ['a', \"b\"]", []string{"a", "b"}, ""},
		{"import y\n\nx=[\n  'a',  # c\n  'b',\n]\nprint(x)\n", []string{"a", "b"}, ""},
		{"x = []", []string{}, ""},
		{"x_2 = ['no']\nx == ['no']\nif x: pass\n  x = ['yes']", []string{"yes"}, ""},
		{"y = ['a']", nil, "1: x = [...]: no such list"},
		{"", nil, "1: x = [...]: no such list"},
		{"\n\nx = 'a'", nil, "3: x is not a list"},
		{"\nx = ['a', ['b']]", nil, "2: x item 1 is not a string"},
		{"x = [\n'a',\n'b'", nil, "3: unexpected end of code block: list not closed (in x)"},
		{"x = ['a\\q']", nil, "1: unsupported escape \\q (in x)"},
	} {
		got, err := ParsePythonList(test.src, "x")
		if test.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), test.wantErr) {
				t.Errorf("test %d: got %q, %v want error %q", i, got, err, test.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %q, %v want %q", i, got, err, test.want)
		}
	}
	if _, err := ParsePythonList("y = []", "x"); !errors.Is(err, ErrNoList) {
		t.Errorf("absent list: %v does not match ErrNoList", err)
	}
}

func TestParseImageNetNotebookErrors(t *testing.T) {
	t.Parallel()
	good := fakeNotebook(t, []string{"tench"}, []string{"a {}."})
	for i, test := range []struct {
		data, want string
	}{
		{"not json", "not a Jupyter notebook"},
		{`{"cells": []}`, "no code cells"},
		{`{"cells": [{"cell_type": "code", "source": 3}]}`, "cell 1 (counting from 1): source is neither"},
		{`{"cells": [{"cell_type": "code", "source": "imagenet_templates = ['{}']"}]}`, "no code cell assigns imagenet_classes"},
		{strings.Replace(string(good), "imagenet_templates = [", "templates = [", 1), "no code cell assigns imagenet_templates"},
		{strings.Replace(string(good), "a {}.", "a photo", 1), `template 0 "a photo" has no {} or {c} placeholder`},
		{strings.Replace(string(good), `\"tench\"`, `\"\"`, 1), "class 0 has an empty name"},
		{strings.Replace(string(good), `\"tench\"]`, `\"tench\"`, 1), "code cell 2 (counting from 1), line 1: unexpected end of code block"},
		{`{"cells": [{"cell_type": "code", "source": "imagenet_classes = ['a']\nimagenet_templates = []"}]}`, "imagenet_templates is empty"},
	} {
		_, err := ParseImageNetNotebook([]byte(test.data))
		if err == nil || !strings.HasPrefix(err.Error(), "loaders: prompts: ") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got error %v want %q", i, err, test.want)
		}
	}
	if err := WriteJSON(filepath.Join(t.TempDir(), "x.json"), Set{}); err == nil {
		t.Errorf("WriteJSON of an empty set succeeded")
	}
	if _, err := ReadImageNetNotebook(filepath.Join(t.TempDir(), "missing.ipynb")); err == nil {
		t.Errorf("ReadImageNetNotebook of a missing file succeeded")
	}
}
