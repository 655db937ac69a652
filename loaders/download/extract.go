package download

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ExtractTarGz extracts the gzip-compressed tar stream r into dir, creating dir if
// needed. No entry may land outside dir: absolute names, names with a ".." element,
// symlinks that are absolute or use "..", hard links to anything but an earlier regular
// file, and entries below a symlink are refused with an error naming the entry.
// Device files, FIFOs and other special entries are skipped. Modes are reduced to
// 0644/0755 (no setuid). On error dir may hold part of the archive: extract into a
// scratch directory, as ExtractArchive does.
func ExtractTarGz(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("loaders: download: extract: not a gzip stream: %w", err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("loaders: download: extract: reading tar: %w", err)
		}
		if err := extractEntry(tr, h, dir); err != nil {
			return err
		}
	}
}

// entryName validates an archive path and returns it cleaned, slash-separated and
// relative ("" for the archive root itself).
func entryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", errors.New("absolute path")
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("NUL in name")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New(`".." escapes the target directory`)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	if !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", errors.New("not a local path")
	}
	return clean, nil
}

// checkParents refuses to write below a symlink or a non-directory: every existing
// parent of rel inside dir must be a real directory.
func checkParents(dir, rel string) error {
	parts := strings.Split(rel, "/")
	p := dir
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil // MkdirAll creates the rest as plain directories
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("parent %s is a symlink", filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator))))
		}
		if !fi.IsDir() {
			return fmt.Errorf("parent %s is not a directory", filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator))))
		}
	}
	return nil
}

func extractEntry(tr *tar.Reader, h *tar.Header, dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("loaders: download: extract: refusing entry %q: %w", h.Name, err)
	}
	rel, err := entryName(h.Name)
	if err != nil {
		return fail(err)
	}
	if rel == "" {
		return nil // "./" itself
	}
	if err := checkParents(dir, rel); err != nil {
		return fail(err)
	}
	target := filepath.Join(dir, filepath.FromSlash(rel))
	switch h.Typeflag {
	case tar.TypeDir:
		if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
			return fail(errors.New("a non-directory of that name exists"))
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fail(err)
		}
	case tar.TypeReg, tar.TypeRegA:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fail(err)
		}
		if err := removeNonDir(target); err != nil {
			return fail(err)
		}
		mode := os.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return fail(err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
	case tar.TypeSymlink:
		ln := h.Linkname
		if ln == "" || strings.HasPrefix(ln, "/") || filepath.IsAbs(ln) || strings.ContainsRune(ln, 0) {
			return fail(fmt.Errorf("symlink to %q points outside the target directory", ln))
		}
		for _, part := range strings.Split(ln, "/") {
			if part == ".." {
				return fail(fmt.Errorf("symlink to %q points outside the target directory (\"..\" is not allowed in link targets)", ln))
			}
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fail(err)
		}
		if err := removeNonDir(target); err != nil {
			return fail(err)
		}
		if err := os.Symlink(ln, target); err != nil {
			return fail(err)
		}
	case tar.TypeLink:
		src, err := entryName(h.Linkname)
		if err != nil || src == "" {
			return fail(fmt.Errorf("hard link to %q points outside the target directory", h.Linkname))
		}
		if err := checkParents(dir, src); err != nil {
			return fail(fmt.Errorf("hard link to %q: %w", h.Linkname, err))
		}
		srcPath := filepath.Join(dir, filepath.FromSlash(src))
		fi, err := os.Lstat(srcPath)
		if err != nil || !fi.Mode().IsRegular() {
			return fail(fmt.Errorf("hard link to %q: not an extracted regular file", h.Linkname))
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fail(err)
		}
		if err := removeNonDir(target); err != nil {
			return fail(err)
		}
		if err := os.Link(srcPath, target); err != nil {
			return fail(err)
		}
	default:
		// Character and block devices, FIFOs, sparse or vendor entries: skipped, since
		// a dataset never needs them and creating them is a hazard.
	}
	return nil
}

// removeNonDir removes an existing file or symlink at p (a later tar entry replaces an
// earlier one) but refuses to replace a directory.
func removeNonDir(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("a directory of that name exists")
	}
	return os.Remove(p)
}

// CompleteMarker is the file ExtractArchive writes last into a finished extraction.
const CompleteMarker = ".gorgoclip-complete"

// ExtractArchive extracts the .tar.gz file archive so that its content ends up in
// dest, atomically: it extracts into a scratch directory next to dest, writes
// CompleteMarker, and renames the result to dest. If the archive holds a single
// top-level directory, that directory becomes dest (imagenette2-320.tgz holds
// imagenette2-320/train/...). If dest already holds CompleteMarker nothing is done;
// if dest exists without it, ExtractArchive fails rather than mix old and new files.
func ExtractArchive(archive, dest string) error {
	if Extracted(dest) {
		return nil
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("loaders: download: extract: %s exists but has no %s (an interrupted or manual extraction?); remove it and rerun", dest, CompleteMarker)
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".extract-*")
	if err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	err = ExtractTarGz(f, tmp)
	f.Close()
	if err != nil {
		return fmt.Errorf("%w (archive %s)", err, archive)
	}
	root := tmp
	if ents, err := os.ReadDir(tmp); err == nil && len(ents) == 1 && ents[0].IsDir() {
		root = filepath.Join(tmp, ents[0].Name())
	}
	if err := os.WriteFile(filepath.Join(root, CompleteMarker), []byte(filepath.Base(archive)+"\n"), 0o644); err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	if err := os.Rename(root, dest); err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	return nil
}

// Extracted reports whether dir holds a finished extraction (its CompleteMarker).
func Extracted(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, CompleteMarker))
	return err == nil && fi.Mode().IsRegular()
}
