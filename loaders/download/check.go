package download

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
	"github.com/gorgoclip/gorgoclip/loaders/prompts"
)

// maxTextFile bounds the text files the checks read whole (config.json,
// vocab.json, prompts.md, the notebook: all well under 10 MB).
const maxTextFile = 64 << 20

// readChecked reads a file for a check: regular, at most maxTextFile bytes, and not
// an HTML page (what a login wall, a captive portal or a wrong URL serves with 200).
func readChecked(p string) ([]byte, error) {
	b, err := regfile.ReadFile(p, maxTextFile)
	if err != nil {
		return nil, err
	}
	if err := notHTML(b); err != nil {
		return nil, err
	}
	return b, nil
}

// notHTML refuses content that starts like an HTML page.
func notHTML(head []byte) error {
	h := bytes.ToLower(bytes.TrimLeft(head[:min(len(head), 512)], " \t\r\n\ufeff"))
	for _, tag := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if bytes.HasPrefix(h, []byte(tag)) {
			return errors.New("an HTML page, not the file (a login, error or portal page?)")
		}
	}
	return nil
}

// head returns the first n bytes of the regular file at p (fewer if it is
// shorter), refusing an HTML page.
func head(p string, n int) ([]byte, error) {
	f, _, err := regfile.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, _ := f.ReadAt(b, 0)
	return b[:k], notHTML(b[:k])
}

// checkJSONObject accepts a file holding one JSON object (config.json, vocab.json).
func checkJSONObject(p string) error {
	b, err := readChecked(p)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	return nil
}

// checkMerges accepts a BPE merges file: "#version" on its first line, then pairs.
func checkMerges(p string) error {
	b, err := readChecked(p)
	if err != nil {
		return err
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("#version")) {
		return fmt.Errorf("not a BPE merges file (first line %q, want #version...)", truncate(string(first), 40))
	}
	return nil
}

// checkSafetensors accepts a file that starts like safetensors: a header length
// that fits the file, then a JSON object. The hub's SHA-256 checks the rest.
func checkSafetensors(p string) error {
	b, err := head(p, 512)
	if err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if len(b) < 9 || binary.LittleEndian.Uint64(b) > uint64(fi.Size()-8) || b[8] != '{' {
		return errors.New("not a safetensors file (no header length and JSON header at its start)")
	}
	return nil
}

// checkZip accepts a file that starts like a zip (pytorch_model.bin).
func checkZip(p string) error {
	b, err := head(p, 512)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return errors.New("not a zip archive, as torch.save writes")
	}
	return nil
}

// checkFor returns the content check of a hub file by name, or nil.
func checkFor(name string) func(string) error {
	switch path.Base(name) {
	case "config.json", "vocab.json", "model.safetensors.index.json":
		return checkJSONObject
	case "merges.txt":
		return checkMerges
	case "pytorch_model.bin":
		return checkZip
	}
	if strings.HasSuffix(name, ".safetensors") {
		return checkSafetensors
	}
	return nil
}

// checkPrompts accepts OpenAI's prompts.md: it must parse (with at least one set).
func checkPrompts(p string) error {
	b, err := readChecked(p)
	if err != nil {
		return err
	}
	if _, err := prompts.ParseOpenAI(string(b)); err != nil {
		return fmt.Errorf("not OpenAI's prompts.md: line %v", err)
	}
	return nil
}

// checkNotebook accepts OpenAI's ImageNet notebook: its lists must parse.
func checkNotebook(p string) error {
	b, err := readChecked(p)
	if err != nil {
		return err
	}
	_, err = prompts.ParseImageNetNotebook(b)
	return err
}

// imagenetteSplits are the folders an Imagenette archive must hold.
var imagenetteSplits = []string{"train", "val"}

// checkImagenetteArchive reads a whole .tgz within the extraction limits and
// accepts it if it is intact and holds train/ and val/ (at its top or in its one
// top-level folder), as ExtractArchive would lay it out.
func checkImagenetteArchive(p string) error {
	if _, err := head(p, 512); err != nil {
		return err
	}
	f, _, err := regfile.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	seen := map[string]bool{} // cleaned names of directories holding entries
	err = walkTarGz(f, func(hd *tar.Header, _ io.Reader) error {
		name, err := entryName(hd.Name)
		if err != nil {
			return fmt.Errorf("entry %q: %v", hd.Name, err)
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			seen[d] = true
		}
		if hd.Typeflag == tar.TypeDir && name != "" {
			seen[name] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	var tops []string
	for d := range seen {
		if !strings.Contains(d, "/") {
			tops = append(tops, d)
		}
	}
	prefix := ""
	if len(tops) == 1 {
		prefix = tops[0] + "/"
	}
	for _, s := range imagenetteSplits {
		if !seen[prefix+s] && !seen[s] {
			return fmt.Errorf("the archive has no %s/ folder (an Imagenette archive holds train/ and val/)", s)
		}
	}
	return nil
}

// checkSplitDirs accepts an extracted dataset root holding a non-empty folder for
// each of imagenetteSplits.
func checkSplitDirs(root string) error {
	for _, s := range imagenetteSplits {
		ents, err := os.ReadDir(filepath.Join(root, s))
		if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
			return fmt.Errorf("no %s/ folder with classes in it (an Imagenette archive holds train/ and val/)", s)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
