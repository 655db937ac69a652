package datasets

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestImageNetClasses checks the embedded table: 1000 WordNet ids in class-index
// order (sorted, n01440764 first), OpenAI's names in the order of its notebook, and
// Imagenette's ten ids landing on the names of the article and fast.ai's Imagenette.
func TestImageNetClasses(t *testing.T) {
	classes := ImageNetClasses()
	if len(classes) != 1000 || classes[0] != (ImageNetClass{"n01440764", "tench"}) || classes[999].WNID != "n15075141" {
		t.Fatalf("got %d classes, first %v, last %v", len(classes), classes[0], classes[len(classes)-1])
	}
	wnids := make([]string, len(classes))
	for i, c := range classes {
		wnids[i] = c.WNID
		if len(c.WNID) != 9 || c.WNID[0] != 'n' || c.Name == "" {
			t.Errorf("class %d: %+v", i, c)
		}
	}
	if !slices.IsSorted(wnids) || len(slices.Compact(slices.Clone(wnids))) != 1000 {
		t.Error("WordNet ids are not sorted and unique: the class index order is the sorted ids")
	}
	// OpenAI's names, in its notebook's order (the fixture holds them as extracted).
	raw, err := os.ReadFile(testfix.Shared(t, "fixtures/tokenizer/imagenet_templates.json"))
	if err != nil {
		t.Fatal(err)
	}
	var nb struct{ Classes []string }
	if err := json.Unmarshal(raw, &nb); err != nil {
		t.Fatal(err)
	}
	for i, c := range classes {
		if i >= len(nb.Classes) || c.Name != nb.Classes[i] {
			t.Fatalf("class %d (%s): name %q, OpenAI's notebook has %q", i, c.WNID, c.Name, nb.Classes[min(i, len(nb.Classes)-1)])
		}
	}
	// Imagenette's label order and names, as the article and fast.ai give them.
	imagenette := []string{"tench", "English springer", "cassette player", "chain saw", "church", "French horn",
		"garbage truck", "gas pump", "golf ball", "parachute"}
	names, ok := wnidClassNames(imagenetteWNIDs)
	if !ok || !slices.Equal(names, imagenette) {
		t.Errorf("Imagenette: got %q want %q", names, imagenette)
	}
	// OpenAI's names of the same ids are the same classes, spelled its way.
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "") }
	for i, w := range imagenetteWNIDs {
		name, _ := ImageNetClassName(w)
		if !strings.HasPrefix(fold(name), fold(imagenette[i])) {
			t.Errorf("%s: OpenAI's %q is not Imagenette's %q", w, name, imagenette[i])
		}
	}
	// Outside Imagenette, OpenAI's names; a folder that is no ImageNet id: none.
	if names, ok := wnidClassNames([]string{"n01443537", "n02102040"}); !ok || !slices.Equal(names, []string{"goldfish", "English Springer Spaniel"}) {
		t.Errorf("ImageNet ids: got %q, %v", names, ok)
	}
	if _, ok := wnidClassNames([]string{"n01443537", "n99999999"}); ok {
		t.Error("an unknown id was named")
	}
}

func TestFlatImageFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "val/n01443537/ILSVRC2012_val_00000236.JPEG", jpegBytes(t, 10))
	writeFile(t, dir, "val/n01484850/ILSVRC2012_val_00002338.JPEG", jpegBytes(t, 20))
	writeFile(t, dir, "val/n01484850/ILSVRC2012_val_00004311.png", pngBytes(t, 30))
	for _, split := range []string{"test", "val"} {
		ds, err := Open("imagefolder:"+dir+"/val", split, Options{})
		if err != nil {
			t.Fatalf("%s: %v", split, err)
		}
		if got, want := ds.ClassNames(), []string{"goldfish", "great white shark"}; !slices.Equal(got, want) {
			t.Errorf("%s: got classes %q want %q", split, got, want)
		}
		items := readAll(t, ds)
		if len(items) != 3 || items[0].Label != 0 || items[2].Label != 1 || !near(redOf(t, items[2]), 30) {
			t.Errorf("%s: got %d items %+v", split, len(items), items)
		}
	}
	_, err := Open("imagefolder:"+dir+"/val", "train", Options{})
	if err == nil || !strings.Contains(err.Error(), "no train/ folder") || !strings.Contains(err.Error(), dir+"/val") {
		t.Errorf("train of a flat directory: got %v", err)
	}
}

func TestBalancedLimit(t *testing.T) {
	t.Parallel()
	// Classes of 10, 10 and 2 items, interleaved.
	var labels []int32
	for i := 0; i < 22; i++ {
		labels = append(labels, []int32{0, 1, 2}[i%3])
		if i >= 6 && labels[len(labels)-1] == 2 {
			labels[len(labels)-1] = int32(i % 2)
		}
	}
	counts := func(idx []int) [3]int {
		var c [3]int
		for _, i := range idx {
			c[labels[i]]++
		}
		return c
	}
	var prev []int
	for n := 1; n < len(labels); n++ {
		idx := balancedIndices(labels, n, 7)
		c := counts(idx)
		if len(idx) != n || !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != n {
			t.Fatalf("limit %d: got %v", n, idx)
		}
		// Every class within one of the others, except one that ran out.
		size := [3]int{10, 10, 2}
		for a := 0; a < 3; a++ {
			for b := 0; b < 3; b++ {
				if c[a]-c[b] > 1 && c[b] < size[b] {
					t.Errorf("limit %d: counts %v are not balanced", n, c)
				}
			}
		}
		for _, i := range prev {
			if !slices.Contains(idx, i) {
				t.Errorf("limit %d is not a superset of limit %d", n, n-1)
				break
			}
		}
		prev = idx
	}
	if c := counts(balancedIndices(labels, 12, 7)); c != [3]int{5, 5, 2} {
		t.Errorf("limit 12: counts %v want [5 5 2]", c)
	}
}
