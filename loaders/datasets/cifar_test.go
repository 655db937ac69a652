package datasets

import (
	"fmt"
	"image"
	"slices"
	"testing"
)

// cifarRecord returns one record: the label bytes, then planes whose every red
// byte is r, green r+1 and blue r+2.
func cifarRecord(r uint8, labels ...uint8) []byte {
	rec := slices.Clone(labels)
	for plane := uint8(0); plane < 3; plane++ {
		for i := 0; i < 1024; i++ {
			rec = append(rec, r+plane)
		}
	}
	return rec
}

// cifar10Tree writes data_batch_b with records labelled b-1 and b%10 (red 10*b and
// 10*b+1), and test_batch.bin with three records labelled 7, 8, 9 (red 100..102).
func cifar10Tree(t *testing.T, subdir string, meta bool) string {
	dir := t.TempDir()
	for b := 1; b <= 5; b++ {
		var data []byte
		data = append(data, cifarRecord(uint8(10*b), uint8(b-1))...)
		data = append(data, cifarRecord(uint8(10*b+1), uint8(b%10))...)
		writeFile(t, dir, fmt.Sprintf("%sdata_batch_%d.bin", subdir, b), data)
	}
	var test []byte
	for k := uint8(0); k < 3; k++ {
		test = append(test, cifarRecord(100+k, 7+k)...)
	}
	writeFile(t, dir, subdir+"test_batch.bin", test)
	if meta {
		writeFile(t, dir, subdir+"batches.meta.txt", []byte("a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n\n"))
	}
	return dir
}

func TestCIFAR10(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		subdir      string // "" or the archive's folder, found from its parent
		meta        bool
		split       string
		wantLabels  []int
		wantRed     []uint8
		wantClasses []string
	}{
		{"", false, "train", []int{0, 1, 1, 2, 2, 3, 3, 4, 4, 5}, []uint8{10, 11, 20, 21, 30, 31, 40, 41, 50, 51}, cifar10Classes},
		{"cifar-10-batches-bin/", true, "test", []int{7, 8, 9}, []uint8{100, 101, 102},
			[]string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"}},
	} {
		dir := cifar10Tree(t, test.subdir, test.meta)
		ds, err := Open("cifar10:"+dir, test.split, Options{})
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if !slices.Equal(ds.ClassNames(), test.wantClasses) {
			t.Errorf("test %d: got classes %q want %q", i, ds.ClassNames(), test.wantClasses)
		}
		items := readAll(t, ds)
		if len(items) != len(test.wantLabels) {
			t.Fatalf("test %d: got %d items want %d", i, len(items), len(test.wantLabels))
		}
		for j, it := range items {
			rgba, ok := it.Image.(*image.RGBA)
			if !ok || rgba.Bounds().Dx() != 32 || rgba.Bounds().Dy() != 32 {
				t.Fatalf("test %d item %d: got %T %v, want a 32x32 *image.RGBA", i, j, it.Image, it.Image.Bounds())
			}
			last := rgba.Pix[len(rgba.Pix)-4:]
			want := []uint8{test.wantRed[j], test.wantRed[j] + 1, test.wantRed[j] + 2, 255}
			if it.Label != test.wantLabels[j] || !slices.Equal(last, want) {
				t.Errorf("test %d item %d (%s): got label %d pixel %v want %d %v", i, j, it.Name, it.Label, last, test.wantLabels[j], want)
			}
		}
	}
}

func TestCIFAR100(t *testing.T) {
	t.Parallel()
	names := make([]string, 100)
	text := ""
	for k := range names {
		names[k] = fmt.Sprintf("fine%d", k)
		text += names[k] + "\n"
	}
	for i, test := range []struct {
		namesFile bool
		opts      Options
		want      []string
		wantErr   string
	}{
		{true, Options{}, names, ""},
		{false, Options{ClassNames: names}, names, ""},
		{false, Options{}, nil, "set Options.ClassNames"},
	} {
		dir := t.TempDir()
		// coarse label 3, fine labels 99 and 42
		writeFile(t, dir, "cifar-100-binary/train.bin", append(cifarRecord(5, 3, 99), cifarRecord(6, 3, 42)...))
		writeFile(t, dir, "cifar-100-binary/test.bin", cifarRecord(7, 1, 0))
		if test.namesFile {
			writeFile(t, dir, "cifar-100-binary/fine_label_names.txt", []byte(text))
		}
		ds, err := Open("cifar100:"+dir, "train", test.opts)
		if test.wantErr != "" {
			wantErr(t, i, err, test.wantErr)
			continue
		}
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if !slices.Equal(ds.ClassNames(), test.want) {
			t.Errorf("test %d: wrong class names", i)
		}
		items := readAll(t, ds)
		if len(items) != 2 || items[0].Label != 99 || items[1].Label != 42 || redOf(t, items[1]) != 6 {
			t.Errorf("test %d: got %d items, labels %d %d, want 99 42", i, len(items), items[0].Label, items[1].Label)
		}
	}
}

func TestCIFARErrors(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		spec  string
		files map[string][]byte
		split string
		want  []string
	}{
		{"cifar10", map[string][]byte{"test_batch.bin": cifarRecord(1, 0)[:3000]}, "test", []string{"test_batch.bin", "3000 bytes", "3073-byte"}},
		{"cifar10", map[string][]byte{"test_batch.bin": {}}, "test", []string{"test_batch.bin", "0 bytes"}},
		{"cifar10", map[string][]byte{"test_batch.bin": append(cifarRecord(1, 0), cifarRecord(1, 10)...)}, "test", []string{"test_batch.bin[record 1]", "label 10 out of range"}},
		{"cifar10", map[string][]byte{"test_batch.bin": cifarRecord(1, 0)}, "train", []string{"data_batch_1.bin", "no such file"}},
		{"cifar10", map[string][]byte{"test_batch.bin": cifarRecord(1, 0)}, "val", []string{"no validation split"}},
		{"cifar10", map[string][]byte{"test_batch.bin": cifarRecord(1, 0), "batches.meta.txt": []byte("a\nb\n")}, "test", []string{"batches.meta.txt", "2 class names, want 10"}},
		{"cifar100", map[string][]byte{"test.bin": cifarRecord(1, 0, 100)}, "test", []string{"test.bin[record 0]", "label 100 out of range"}},
		{"cifar100", map[string][]byte{"test.bin": cifarRecord(1, 0)}, "test", []string{"test.bin", "3074-byte"}},
	} {
		dir := t.TempDir()
		for name, data := range test.files {
			writeFile(t, dir, name, data)
		}
		_, err := Open(test.spec+":"+dir, test.split, Options{})
		wantErr(t, i, err, test.want...)
	}
}
