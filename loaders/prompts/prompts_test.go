package prompts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestApply(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		template, name, want string
	}{
		{"a photo of a {}.", "dog", "a photo of a dog."},
		{"a photo of a {c}.", "dog", "a photo of a dog."},
		{"{}", "golf ball", "golf ball"},
		{"a {} and a {}", "cat", "a cat and a cat"},
		{`a photo of the number: "{}".`, "7", `a photo of the number: "7".`},
		{"no placeholder", "cat", "no placeholder"},
		{"{c} in {}", "{}", "{} in {}"}, // names are not re-expanded
	} {
		if got := Apply(test.template, test.name); got != test.want {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		name string
		want []string
		ok   bool
	}{
		{"bare", []string{"{}"}, true},
		{"photo", []string{"a photo of a {}."}, true},
		{"article", []string{"a photo of a {}"}, true},
		{"imagenet", nil, false},
	} {
		got, ok := Builtin(test.name)
		if ok != test.ok || !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %q, %v want %q, %v", i, got, ok, test.want, test.ok)
		}
	}
	// Callers may modify what they get.
	a, _ := Builtin("photo")
	a[0] = "changed"
	if b, _ := Builtin("photo"); b[0] != "a photo of a {}." {
		t.Errorf("Builtin returned shared storage")
	}
	if got := BuiltinNames(); !slices.Equal(got, []string{"article", "bare", "photo"}) {
		t.Errorf("got builtin names %q", got)
	}
}

func TestSetPrompts(t *testing.T) {
	t.Parallel()
	s := Set{
		Classes:   [][]string{{"angry"}, {"happy", "smiling"}},
		Templates: []string{"a {} face.", "they look {c}."},
	}
	if got, want := s.ClassNames(), []string{"angry", "happy"}; !slices.Equal(got, want) {
		t.Errorf("got names %q want %q", got, want)
	}
	for i, test := range []struct {
		class int
		want  []string
	}{
		{0, []string{"a angry face.", "they look angry."}},
		{1, []string{"a happy face.", "a smiling face.", "they look happy.", "they look smiling."}},
	} {
		if got := s.Prompts(test.class); !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

const miniPrompts = "# Prompts\n\nIntro text with `classes` and `templates`.\n\n" +
	"## Two\n\n```bash\nclasses = [\n    'cat',\n    \"dog's toy\",  # comment\n    'back\\\\slash \\'q\\''\n]\n\n" +
	"templates = [\n    'a photo of a {}.',\n    'a \"{}\" sign.',\n]\n```\n\n" +
	"## FER\n\n```bash\nclasses = [\n    ['angry'],\n    ['happy', 'smiling',],\n]\ntemplates = ['{}']\n```\n"

func TestParseOpenAI(t *testing.T) {
	t.Parallel()
	sets, err := ParseOpenAI(miniPrompts)
	if err != nil {
		t.Fatal(err)
	}
	want := []Set{
		{"Two", [][]string{{"cat"}, {"dog's toy"}, {`back\slash 'q'`}}, []string{"a photo of a {}.", `a "{}" sign.`}},
		{"FER", [][]string{{"angry"}, {"happy", "smiling"}}, []string{"{}"}},
	}
	if len(sets) != len(want) {
		t.Fatalf("got %d sets want %d", len(sets), len(want))
	}
	for i := range want {
		if sets[i].Name != want[i].Name || !slices.EqualFunc(sets[i].Classes, want[i].Classes, slices.Equal) ||
			!slices.Equal(sets[i].Templates, want[i].Templates) {
			t.Errorf("set %d: got %+v want %+v", i, sets[i], want[i])
		}
	}
	if s, err := Lookup(sets, "fer"); err != nil || s.Name != "FER" {
		t.Errorf("Lookup(fer): got %v, %v", s.Name, err)
	}
	if _, err := Lookup(sets, "ImageNet"); err == nil || !strings.Contains(err.Error(), "have Two, FER") {
		t.Errorf("Lookup(ImageNet): got %v", err)
	}
}

func TestParseOpenAIErrors(t *testing.T) {
	t.Parallel()
	block := func(code string) string { return "## X\n\n```bash\n" + code + "\n```\n" }
	for i, test := range []struct {
		text string
		want string // the error, line first
	}{
		{"# nothing\n", "1: no \"## NAME\" sections"},
		{"## X\n\nno code\n", "1: section X has no code block"},
		{"## X\n```bash\nclasses = []\n", "2: section X: code block not closed"},
		{block("classes = ['a']"), "1: section X has no templates"},
		{block("templates = ['{}']"), "1: section X has no classes"},
		{block("classes = ['a']\ntemplates = []"), "1: section X has no templates"},
		{block("classes = ['a',\n 'b'\ntemplates = ['{}']"), "6: want , or ] in list"},
		{block("classes = ['a', 'b]\ntemplates = ['{}']"), "4: string not closed on its line"},
		{block("classes = ['a']\ntemplates = ['{}',\n 'a photo']"), "6: section X: template 1 \"a photo\" has no {} or {c} placeholder"},
		{block("classes = ['a', ['b', 3]]\ntemplates = ['{}']"), "4: want a string or a list, found '3'"},
		{block("classes = ['a', []]\ntemplates = ['{}']"), "4: section X: class 1: empty list of names"},
		{block("classes = ['a',\n '']\ntemplates = ['{}']"), "5: section X: class 1: empty name"},
		{block("classes = [['a', '']]\ntemplates = ['{}']"), "4: section X: class 0: name 1 is empty"},
		{block("classes = 'a'\ntemplates = ['{}']"), "4: section X: classes is not a list"},
		{block("classes = ['a']\ntemplates = [['{}']]"), "5: section X: template 0 is not a string"},
		{block("classes ['a']"), "4: section X: want = after classes"},
		{block("= ['a']"), "4: section X: want NAME = [...]"},
		{block("classes = ['a\\x']"), "4: unsupported escape \\x"},
		{block("classes = ['a',"), "4: unexpected end of code block"},
	} {
		_, err := ParseOpenAI(test.text)
		if err == nil || !strings.HasPrefix(err.Error(), test.want) {
			t.Errorf("test %d: got error %v want %q", i, err, test.want)
		}
	}
}

// OpenAI's prompts.md: 26 datasets, none of them ImageNet.
func TestReadOpenAIShared(t *testing.T) {
	t.Parallel()
	path := testfix.Shared(t, "clip/prompts.md")
	sets, err := ReadOpenAI(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 26 {
		t.Errorf("got %d sets want 26", len(sets))
	}
	for i, test := range []struct {
		name               string
		classes, templates int
		firstClass         []string
		firstTemplate      string
	}{
		{"CIFAR10", 10, 18, []string{"airplane"}, "a photo of a {}."},
		{"CIFAR100", 100, 18, []string{"apple"}, "a photo of a {}."},
		{"Birdsnap", 500, 1, []string{"Acadian Flycatcher"}, "a photo of a {}, a type of bird."},
		{"FacialEmotionRecognition2013", 7, 6, []string{"angry"}, "a photo of a {} looking face."},
		{"Kinetics700", 700, 28, nil, ""},
		{"MNIST", 10, 1, []string{"0"}, `a photo of the number: "{}".`},
		{"STL10", 10, 2, nil, ""},
		{"UCF101", 101, 48, nil, ""},
	} {
		s, err := Lookup(sets, test.name)
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if len(s.Classes) != test.classes || len(s.Templates) != test.templates {
			t.Errorf("test %d (%s): got %d classes %d templates want %d %d", i, test.name, len(s.Classes), len(s.Templates), test.classes, test.templates)
		}
		if test.firstClass != nil && (!slices.Equal(s.Classes[0], test.firstClass) || s.Templates[0] != test.firstTemplate) {
			t.Errorf("test %d (%s): got first class %q template %q", i, test.name, s.Classes[0], s.Templates[0])
		}
	}
	fer, _ := Lookup(sets, "FacialEmotionRecognition2013")
	if got, want := fer.Classes[5], []string{"surprised", "shocked", "spooked"}; !slices.Equal(got, want) {
		t.Errorf("FER class 5: got %q want %q", got, want)
	}
	kin, _ := Lookup(sets, "Kinetics700")
	if last := kin.Classes[len(kin.Classes)-1]; !slices.Equal(last, []string{"zumba"}) { // no trailing comma in the file
		t.Errorf("Kinetics700 last class: got %q", last)
	}
	country, _ := Lookup(sets, "Country211")
	if !slices.ContainsFunc(country.Classes, func(c []string) bool { return c[0] == "Cote d'Ivoire" }) {
		t.Errorf("Country211: double-quoted name with an apostrophe missing")
	}
	if _, err := Lookup(sets, "ImageNet"); err == nil {
		t.Errorf("prompts.md unexpectedly has an ImageNet section")
	}

	templates, err := Load("openai:" + path + "#cifar10")
	if err != nil || len(templates) != 18 {
		t.Errorf("Load openai: got %d templates, %v", len(templates), err)
	}
	_, err = Load("openai:" + path + "#ImageNet")
	if want := `loaders: prompts: no prompt set "ImageNet" (have Birdsnap, CIFAR10,`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load openai ImageNet: got %v want %q...", err, want)
	}
}

// The ImageNet ensemble: 80 templates and 1000 classes, as saved beside the
// tokenizer fixtures.
func TestReadJSONImageNetShared(t *testing.T) {
	t.Parallel()
	path := testfix.Shared(t, "fixtures/tokenizer/imagenet_templates.json")
	s, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Templates) != 80 || len(s.Classes) != 1000 {
		t.Errorf("got %d templates %d classes want 80 1000", len(s.Templates), len(s.Classes))
	}
	if s.ClassNames()[0] != "tench" || !slices.Contains(s.Templates, "a photo of a {}.") {
		t.Errorf("got first class %q", s.ClassNames()[0])
	}
	templates, err := Load(path)
	if err != nil || !slices.Equal(templates, s.Templates) {
		t.Errorf("Load: got %d templates, %v", len(templates), err)
	}
}

func TestReadTemplates(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		content string
		want    []string
		wantErr string // "" for none; else a substring, "FILE" standing for the path
	}{
		{"a photo of a {c}.\n\na sketch of a {c}.\n", []string{"a photo of a {c}.", "a sketch of a {c}."}, ""},
		{"  {}  \r\n", []string{"{}"}, ""},
		{"{c} photo.\n", []string{"{c} photo."}, ""},
		{`["a {}.", "the {}."]`, []string{"a {}.", "the {}."}, ""},
		{`{"templates": ["a {}."], "classes": ["x", ["y", "z"]]}`, []string{"a {}."}, ""},
		{"a {c}.\nno placeholder\n", nil, "FILE:2: template \"no placeholder\" has no {} or {c} placeholder"},
		{"\n\n", nil, "FILE: no templates"},
		{`["a {}.", 3]`, nil, "FILE: want a JSON list"},
		{`{"templates": []}`, nil, "FILE: no templates"},
		{`["a photo"]`, nil, "FILE: template 0 \"a photo\" has no"},
		{`{"templates": ["{}"], "classes": [1]}`, nil, "FILE: class 0 is neither"},
		{`{"templates": ["{}"], "classes": [[]]}`, nil, "FILE: class 0 has an empty name"},
	} {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("t%d.txt", i))
		if err := os.WriteFile(path, []byte(test.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTemplates(path)
		if test.wantErr != "" {
			want := "loaders: prompts: " + strings.ReplaceAll(test.wantErr, "FILE", path)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("test %d: got error %v want %q", i, err, want)
			}
			continue
		}
		if err != nil || !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %q, %v want %q", i, got, err, test.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.txt")
	for i, test := range []struct {
		spec, want string
	}{
		{"openai:", "want openai:PATH#DATASET"},
		{"openai:prompts.md", "want openai:PATH#DATASET"},
		{"openai:" + missing + "#CIFAR10", "no such file"},
		{missing, "not a built-in set (article, bare, photo)"},
	} {
		_, err := Load(test.spec)
		if err == nil || !strings.HasPrefix(err.Error(), "loaders: prompts: ") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got error %v want %q", i, err, test.want)
		}
	}
}

func ExampleExpand() {
	fmt.Println(Expand([]string{"a photo of a {}.", "a drawing of a {c}."}, "tench", "golf ball"))
	// Output: [a photo of a tench. a photo of a golf ball. a drawing of a tench. a drawing of a golf ball.]
}
