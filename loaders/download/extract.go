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

	"github.com/gorgoclip/gorgoclip/internal/regfile"
	"github.com/gorgoclip/gorgoclip/internal/scratch"
)

// Limits on what an archive may expand to, checked as it is read, so that a
// decompression bomb stops at the limit instead of filling the disk.
const (
	// MaxExtractRatio bounds the tar bytes over the gzip bytes read (beyond the
	// first 64 MiB). JPEG datasets such as Imagenette inflate barely (1.05:1); a
	// bomb inflates 1000:1.
	MaxExtractRatio = 100
	// MaxExtractBytes bounds the tar bytes of one archive (Imagenette's largest
	// variant is 1.6 GB).
	MaxExtractBytes = 64 << 30
	// MaxExtractEntries bounds the entries of one archive (Imagenette has 13,394).
	MaxExtractEntries = 1 << 20
)

// ratioSlack is the tar bytes always allowed: small archives of text inflate more
// than MaxExtractRatio, harmlessly.
const ratioSlack = 64 << 20

// ExtractTarGz extracts the gzip-compressed tar stream r into dir, creating dir if
// needed. No entry may land outside dir: absolute names, names with a ".." element,
// symlinks that are absolute or use "..", hard links to anything but an earlier regular
// file, and entries below a symlink are refused with an error naming the entry.
// Device files, FIFOs and other special entries are skipped. Modes are reduced to
// 0644/0755 (no setuid). The archive may not expand past MaxExtractRatio,
// MaxExtractBytes or MaxExtractEntries, and must end with intact gzip checksums. On
// error dir may hold part of the archive: extract into a scratch directory, as
// ExtractArchive does.
func ExtractTarGz(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	return walkTarGz(r, func(h *tar.Header, body io.Reader) error { return extractEntry(body, h, dir) })
}

// walkTarGz calls visit for each entry of the gzip-compressed tar stream r, within
// the Max limits, then reads the stream to its end so that a truncated or corrupt
// archive fails its gzip checksum.
func walkTarGz(r io.Reader, visit func(h *tar.Header, body io.Reader) error) error {
	in := &countingReader{r: r}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("loaders: download: extract: not a gzip stream: %w", err)
	}
	defer zr.Close()
	out := &boundedReader{r: zr, in: in}
	tr := tar.NewReader(out)
	for entries := 1; ; entries++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("loaders: download: extract: reading tar: %w", err)
		}
		if entries > MaxExtractEntries {
			return fmt.Errorf("loaders: download: extract: more than %d entries (at %q)", MaxExtractEntries, h.Name)
		}
		if err := visit(h, tr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, out); err != nil {
		return fmt.Errorf("loaders: download: extract: after the tar's end: %w", err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// boundedReader reads the inflated stream, failing once it holds more than the
// Max limits allow for the compressed bytes in has read.
type boundedReader struct {
	r  io.Reader
	in *countingReader
	n  int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > MaxExtractBytes:
		return n, fmt.Errorf("archive expands past %d bytes, the limit for one archive", int64(MaxExtractBytes))
	case b.n > ratioSlack && b.n > MaxExtractRatio*b.in.n:
		return n, fmt.Errorf("archive expands more than %d times (%d bytes from %d read): a decompression bomb?", MaxExtractRatio, b.n, b.in.n)
	}
	return n, err
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

func extractEntry(body io.Reader, h *tar.Header, dir string) error {
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
		_, err = io.Copy(f, body)
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
// dest, atomically: it extracts into a scratch directory next to dest, runs check
// (when not nil) on what it extracted, writes CompleteMarker, and renames the
// result to dest. If the archive holds a single top-level directory, that
// directory becomes dest (imagenette2-320.tgz holds imagenette2-320/train/...). If
// dest already holds CompleteMarker nothing is done; if dest exists without it,
// ExtractArchive fails rather than mix old and new files. Scratch directories that
// killed runs left beside dest are removed first.
func ExtractArchive(archive, dest string, check func(root string) error) error {
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
	prefix := "." + filepath.Base(dest) + ".extract"
	if _, err := scratch.CleanStale(parent, prefix); err != nil {
		return fmt.Errorf("loaders: download: extract: removing what killed runs left: %w", err)
	}
	tmp, err := scratch.Dir(parent, prefix)
	if err != nil {
		return fmt.Errorf("loaders: download: extract: %w", err)
	}
	defer os.RemoveAll(tmp)
	f, _, err := regfile.Open(archive)
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
	if check != nil {
		if err := check(root); err != nil {
			return fmt.Errorf("loaders: download: extract: %s: %w", archive, err)
		}
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
