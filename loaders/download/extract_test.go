package download

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one tar entry for tgz.
type entry struct {
	name string
	typ  byte
	body string
	link string
}

// tgz builds a gzip-compressed tar holding entries.
func tgz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.body))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func TestExtractRefusesEscapes(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		entries []entry
		bad     string // the entry name the error must quote
	}{
		{[]entry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, "../evil"},
		{[]entry{{name: "ok/../../evil", typ: tar.TypeReg, body: "x"}}, "ok/../../evil"},
		{[]entry{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, "/etc/evil"},
		{[]entry{{name: "link", typ: tar.TypeSymlink, link: "/etc"}}, "link"},
		{[]entry{{name: "a/link", typ: tar.TypeSymlink, link: "../../outside"}}, "a/link"},
		{[]entry{{name: "hard", typ: tar.TypeLink, link: "../outside"}}, "hard"},
		{[]entry{{name: "hard", typ: tar.TypeLink, link: "/etc/passwd"}}, "hard"},
		// Writing through an (inside-pointing) symlink is refused too: chains of
		// symlinks are how lexical checks get fooled.
		{[]entry{
			{name: "d", typ: tar.TypeDir},
			{name: "l", typ: tar.TypeSymlink, link: "d"},
			{name: "l/f", typ: tar.TypeReg, body: "x"},
		}, "l/f"},
	} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		err := ExtractTarGz(bytes.NewReader(tgz(t, test.entries...)), dir)
		if err == nil {
			t.Errorf("test %d: extraction of %q succeeded, want refusal", i, test.bad)
			continue
		}
		if !strings.Contains(err.Error(), `refusing entry "`+test.bad+`"`) || !strings.HasPrefix(err.Error(), "loaders: download:") {
			t.Errorf("test %d: error does not name the entry %q: %v", i, test.bad, err)
		}
		checkContained(t, parent, dir)
	}
}

// checkContained fails if anything but dir exists in parent, or if a symlink in dir
// resolves outside dir.
func checkContained(t testing.TB, parent, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if filepath.Join(parent, e.Name()) != dir {
			t.Fatalf("extraction wrote %s outside %s", e.Name(), dir)
		}
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling: harmless
		}
		if rel, err := filepath.Rel(realDir, target); err != nil || !filepath.IsLocal(rel) && rel != "." {
			t.Fatalf("symlink %s resolves outside: %s", p, target)
		}
		return nil
	})
}

func TestExtractNormal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := tgz(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "imagenette2-160/", typ: tar.TypeDir},
		entry{name: "imagenette2-160/train/n01440764/a.JPEG", typ: tar.TypeReg, body: "jpeg-a"},
		entry{name: "imagenette2-160/val/n01440764/b.JPEG", typ: tar.TypeReg, body: "jpeg-b"},
		entry{name: "imagenette2-160/noisy.csv", typ: tar.TypeReg, body: "path,label\n"},
		entry{name: "imagenette2-160/latest", typ: tar.TypeSymlink, link: "noisy.csv"},
		entry{name: "imagenette2-160/copy.csv", typ: tar.TypeLink, link: "imagenette2-160/noisy.csv"},
		entry{name: "imagenette2-160/fifo", typ: tar.TypeFifo},
		entry{name: "imagenette2-160/dev", typ: tar.TypeChar},
	)
	if err := ExtractTarGz(bytes.NewReader(data), dir); err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct{ path, want string }{
		{"imagenette2-160/train/n01440764/a.JPEG", "jpeg-a"},
		{"imagenette2-160/val/n01440764/b.JPEG", "jpeg-b"},
		{"imagenette2-160/latest", "path,label\n"},
		{"imagenette2-160/copy.csv", "path,label\n"},
	} {
		got, err := os.ReadFile(filepath.Join(dir, test.path))
		if err != nil || string(got) != test.want {
			t.Errorf("test %d: %s: got %q, %v want %q", i, test.path, got, err, test.want)
		}
	}
	for _, skipped := range []string{"fifo", "dev"} {
		if _, err := os.Lstat(filepath.Join(dir, "imagenette2-160", skipped)); err == nil {
			t.Errorf("special file %s was created", skipped)
		}
	}
}

func TestExtractArchive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	archive := filepath.Join(dir, "x.tgz")
	os.WriteFile(archive, tgz(t,
		entry{name: "top/", typ: tar.TypeDir},
		entry{name: "top/train/a.JPEG", typ: tar.TypeReg, body: "a"},
	), 0o644)
	dest := filepath.Join(dir, "data", "top")
	if err := ExtractArchive(archive, dest, nil); err != nil {
		t.Fatal(err)
	}
	if !Extracted(dest) {
		t.Fatal("no completion marker")
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "train", "a.JPEG")); string(b) != "a" {
		t.Errorf("top-level directory not lifted: %q", b)
	}
	// Done once: a second call with a broken archive is a no-op.
	os.WriteFile(archive, []byte("garbage"), 0o644)
	if err := ExtractArchive(archive, dest, nil); err != nil {
		t.Errorf("completed extraction redone: %v", err)
	}
	// A bad archive leaves neither dest nor scratch directories.
	bad := filepath.Join(dir, "bad.tgz")
	os.WriteFile(bad, tgz(t, entry{name: "x/ok", typ: tar.TypeReg}, entry{name: "../evil", typ: tar.TypeReg}), 0o644)
	err := ExtractArchive(bad, filepath.Join(dir, "data", "bad"), nil)
	if err == nil || !strings.Contains(err.Error(), `"../evil"`) || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad archive: got %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "data"))
	if len(ents) != 1 {
		t.Errorf("bad archive left %d entries in data/, want only top/", len(ents))
	}
	// An unmarked existing destination is not mixed into.
	os.MkdirAll(filepath.Join(dir, "data", "half"), 0o755)
	if err := ExtractArchive(archive, filepath.Join(dir, "data", "half"), nil); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("unmarked destination: got %v", err)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(tgz(f,
		entry{name: "a/", typ: tar.TypeDir},
		entry{name: "a/b.txt", typ: tar.TypeReg, body: "hello"},
		entry{name: "a/l", typ: tar.TypeSymlink, link: "b.txt"},
		entry{name: "a/h", typ: tar.TypeLink, link: "a/b.txt"},
	))
	f.Add(tgz(f, entry{name: "../x", typ: tar.TypeReg, body: "x"}))
	f.Add(tgz(f, entry{name: "s", typ: tar.TypeSymlink, link: "."}, entry{name: "s/t", typ: tar.TypeSymlink, link: ".."}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		err := ExtractTarGz(bytes.NewReader(data), dir)
		if err != nil && !strings.HasPrefix(err.Error(), "loaders: download: extract:") {
			t.Fatalf("error without the package prefix: %v", err)
		}
		checkContained(t, parent, dir)
	})
}
