package datasets

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWDS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "classnames.txt", []byte("cat\ndog\nbird\n"))
	writeFile(t, dir, "zeroshot_classification_templates.txt", []byte("a photo of a {c}.\n"))
	// Shards sort naturally: 2.tar before 10.tar.
	writeFile(t, dir, "test/10.tar", tarBytes(t,
		"s30.jpg", string(jpegBytes(t, 130)), "s30.cls", "0"))
	writeFile(t, dir, "test/2.tar", tarBytes(t,
		"s20.cls", "2\n", "s20.png", string(pngBytes(t, 120)), // cls before the image
		"s21.json", "{}", // ignored member
		"sub/s21.png", string(pngBytes(t, 121)), "sub/s21.cls", "1"))
	writeFile(t, dir, "test/1.tar", tarBytes(t,
		"s10.webp.bak", "x", // not an image extension
		"s10.png", string(pngBytes(t, 110)), "s10.cls", " 1 \n",
		"s11.png", string(pngBytes(t, 111)), "s11.cls", "0"))
	writeFile(t, dir, "train/0.tar", tarBytes(t, "t.png", string(pngBytes(t, 1)), "t.cls", "2"))

	ds, err := Open("wds:"+dir, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cat", "dog", "bird"}; !slices.Equal(ds.ClassNames(), want) {
		t.Errorf("got classes %q want %q", ds.ClassNames(), want)
	}
	want := []struct {
		name  string
		label int
		red   uint8
	}{
		{"1.tar:s10", 1, 110}, {"1.tar:s11", 0, 111},
		{"2.tar:s20", 2, 120}, {"2.tar:sub/s21", 1, 121},
		{"10.tar:s30", 0, 130},
	}
	items := readAll(t, ds)
	if len(items) != len(want) {
		t.Fatalf("got %d items want %d", len(items), len(want))
	}
	for i, it := range items {
		if !strings.HasSuffix(it.Name, string(filepath.Separator)+want[i].name) || it.Label != want[i].label {
			t.Errorf("item %d: got %s label %d want %s label %d", i, it.Name, it.Label, want[i].name, want[i].label)
		}
		if r := redOf(t, it); !near(r, want[i].red) {
			t.Errorf("item %d: got red %d want %d", i, r, want[i].red)
		}
	}
	train, err := Open("wds:"+dir, "train", Options{})
	if err != nil || train.Len() != 1 {
		t.Errorf("train split: got %v, %v", train, err)
	}
}

func TestWDSErrors(t *testing.T) {
	t.Parallel()
	good := tarBytes(t, "a.png", string(pngBytes(t, 1)), "a.cls", "0")
	for i, test := range []struct {
		tar        []byte // test/0.tar; nil for none
		classnames string
		opts       Options
		want       []string
	}{
		{nil, "x\n", Options{}, []string{"no .tar shards"}},
		{[]byte(strings.Repeat("garbage!", 100)), "x\n", Options{}, []string{"0.tar", "reading tar headers"}},
		{good[:550], "x\n", Options{}, []string{"0.tar", "a.png", "truncated"}},
		{tarBytes(t, "a.png", "x"), "x\n", Options{}, []string{"0.tar", `"a"`, "no .cls"}},
		{tarBytes(t, "a.cls", "0"), "x\n", Options{}, []string{"0.tar", `"a"`, "no image"}},
		{tarBytes(t, "a.png", "x", "a.cls", "zero"), "x\n", Options{}, []string{"0.tar:a.cls", "not an integer"}},
		{tarBytes(t, "a.png", "x", "a.cls", "1", "a.cls", "1"), "x\n", Options{}, []string{"0.tar", "two .cls"}},
		{tarBytes(t, "a.png", "x", "a.cls", "1"), "x\n", Options{}, []string{"0.tar:a.cls", "label 1 out of range [0, 1)"}},
		{tarBytes(t, "readme.txt", "hi"), "x\n", Options{}, []string{"0.tar", "no samples"}},
		{good, "", Options{}, []string{"no class names", "Options.ClassNames"}},
		{tarBytes(t, "a.png", "x", "a.cls", "3"), "", Options{ClassNames: []string{"x", "y"}}, []string{"0.tar:a.cls", "label 3 out of range", "Options.ClassNames has 2 names"}},
	} {
		dir := t.TempDir()
		if test.tar != nil {
			writeFile(t, dir, "test/0.tar", test.tar)
		} else {
			writeFile(t, dir, "test/readme", nil)
		}
		if test.classnames != "" {
			writeFile(t, dir, "classnames.txt", []byte(test.classnames))
		}
		_, err := Open("wds:"+dir, "test", test.opts)
		wantErr(t, i, err, test.want...)
	}
}

func TestNaturalCompare(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		a, b string
		want int // sign
	}{
		{"2.tar", "10.tar", -1},
		{"10.tar", "2.tar", 1},
		{"a.tar", "a.tar", 0},
		{"shard-009.tar", "shard-10.tar", -1},
		{"b", "a10", 1},
		{"a", "ab", -1},
	} {
		got := naturalCompare(test.a, test.b)
		if (got < 0) != (test.want < 0) || (got > 0) != (test.want > 0) {
			t.Errorf("test %d: got %d want sign %d", i, got, test.want)
		}
	}
}

// TestWDSStream: streaming each shard gives the samples Open lists, in the same order,
// and never looks at the other shards.
func TestWDSStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "classnames.txt", []byte("cat\ndog\nbird\n"))
	writeFile(t, dir, "test/10.tar", tarBytes(t, "s30.jpg", string(jpegBytes(t, 130)), "s30.cls", "0"))
	writeFile(t, dir, "test/2.tar", tarBytes(t,
		"s20.cls", "2\n", "s20.jpg", "not preferred", "s20.png", string(pngBytes(t, 120)),
		"s21.json", "{}", "sub/s21.png", string(pngBytes(t, 121)), "sub/s21.cls", "1"))
	ds, err := Open("wds:"+dir, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := WDSShards(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 || filepath.Base(shards[0]) != "2.tar" || filepath.Base(shards[1]) != "10.tar" {
		t.Fatalf("shards %q, want 2.tar then 10.tar", shards)
	}
	want := readAll(t, ds)
	var got []Item
	for _, s := range shards {
		first := len(got)
		if err := StreamWDSShard(s, func(it Item) error {
			if it.Index != len(got)-first {
				t.Errorf("%s: item %d has Index %d", s, len(got)-first, it.Index)
			}
			got = append(got, it)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("streamed %d samples, Open lists %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Label != want[i].Label || !bytes.Equal(got[i].Encoded, want[i].Encoded) {
			t.Errorf("sample %d: streamed %s label %d (%d bytes), Open gives %s label %d (%d bytes)", i,
				got[i].Name, got[i].Label, len(got[i].Encoded), want[i].Name, want[i].Label, len(want[i].Encoded))
		}
		if src := ds.(Sourcer).Sources(i); len(src) != 1 || !strings.HasPrefix(want[i].Name, src[0]+":") {
			t.Errorf("sample %d: Sources %q, want the shard of %s", i, src, want[i].Name)
		}
	}
	// The callback's error comes back as it is and stops the reading.
	stop := errors.New("stop")
	calls := 0
	if err := StreamWDSShard(shards[0], func(Item) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("got %v after %d calls, want the callback's error after 1", err, calls)
	}
	// Another shard being garbage does not matter to a stream of this one.
	writeFile(t, dir, "test/10.tar", []byte("garbage"))
	if err := StreamWDSShard(shards[0], func(Item) error { return nil }); err != nil {
		t.Errorf("streaming 2.tar with 10.tar broken: %v", err)
	}
}

// TestWDSAdjacency: a sample's members must be adjacent, as webdataset reads them;
// Open and streaming refuse the same shard with the same message.
func TestWDSAdjacency(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "classnames.txt", []byte("x\ny\n"))
	shard := writeFile(t, dir, "test/0.tar", tarBytes(t, "a.png", "x", "b.png", "y", "b.cls", "1", "a.cls", "0"))
	_, err := Open("wds:"+dir, "test", Options{})
	wantErr(t, 0, err, "0.tar", `sample "a"`, "no .cls member among its adjacent members")
	err = StreamWDSShard(shard, func(Item) error { return nil })
	wantErr(t, 1, err, "0.tar", `sample "a"`, "no .cls member among its adjacent members")
	writeFile(t, dir, "test/0.tar", tarBytes(t, "a.png", "x", "a.cls", "0", "b.png", "y", "b.cls", "1", "a.jpg", "z"))
	_, err = Open("wds:"+dir, "test", Options{})
	wantErr(t, 2, err, "0.tar:a.jpg", `sample "a"`, "not adjacent")
	err = StreamWDSShard(shard, func(Item) error { return nil })
	wantErr(t, 3, err, "0.tar:a.jpg", `sample "a"`, "not adjacent")
}

func TestTemplatesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, ok := TemplatesFile("wds:" + dir); ok {
		t.Error("a webdataset without templates has some")
	}
	writeFile(t, dir, WDSTemplatesFile, []byte("a photo of a {c}.\n"))
	if p, ok := TemplatesFile("wds:" + dir); !ok || p != filepath.Join(dir, WDSTemplatesFile) {
		t.Errorf("got %q, %v", p, ok)
	}
	if _, ok := TemplatesFile("imagefolder:" + dir); ok {
		t.Error("an image folder has templates")
	}
}
