package download

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SourceOptions configures a download from a fixed public source (FetchImagenette,
// FetchTemplates). The zero value uses the default URL and checks nothing beyond what
// the server reports.
type SourceOptions struct {
	Options
	// URL replaces the default source (a mirror, or a test server).
	URL string
	// Expect is checked on the downloaded file when set.
	Expect Expect
	// KeepArchive keeps FetchImagenette's .tgz after extraction (default: removed).
	KeepArchive bool
}

// ImagenetteVariants are the fast.ai archives FetchImagenette knows: full size, and
// shortest side resized to 320 and 160 pixels.
var ImagenetteVariants = []string{"imagenette2", "imagenette2-320", "imagenette2-160"}

// ImagenetteExpect holds known sizes and digests of the archives. It is empty: fast.ai
// publishes no SHA-256 for them, and the extraction checks the tar structure instead.
var ImagenetteExpect = map[string]Expect{}

// ImagenetteVariant maps the names the command line accepts ("imagenette",
// "imagenette-320", "imagenette-160", or the archive names themselves) to a variant.
func ImagenetteVariant(name string) (string, error) {
	switch name {
	case "imagenette", "imagenette2":
		return "imagenette2", nil
	case "imagenette-320", "imagenette2-320":
		return "imagenette2-320", nil
	case "imagenette-160", "imagenette2-160":
		return "imagenette2-160", nil
	}
	return "", fmt.Errorf("loaders: download: unknown Imagenette variant %q (want one of %s)", name, strings.Join(ImagenetteVariants, ", "))
}

// ImagenetteURL returns the fast.ai archive URL of variant:
// https://s3.amazonaws.com/fast-ai-imageclas/{variant}.tgz.
func ImagenetteURL(variant string) (string, error) {
	v, err := ImagenetteVariant(variant)
	if err != nil {
		return "", err
	}
	return "https://s3.amazonaws.com/fast-ai-imageclas/" + v + ".tgz", nil
}

// FetchImagenette downloads and extracts an Imagenette archive and returns the
// directory holding train/ and val/: dest/{variant}, where dest "" means DatasetsDir().
// The archive is fetched with File (resumable) as dest/{variant}.tgz, and kept only
// if it is an intact gzip'd tar holding train/ and val/ within the extraction
// limits (a cached one that is not is fetched again); it is extracted with
// ExtractArchive, and removed unless opts.KeepArchive. A completed extraction (its
// CompleteMarker present, with train/ and val/) is not redone and needs no network.
func FetchImagenette(ctx context.Context, variant, dest string, opts SourceOptions) (string, error) {
	v, err := ImagenetteVariant(variant)
	if err != nil {
		return "", err
	}
	if dest == "" {
		if dest, err = DatasetsDir(); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dest, v)
	if Extracted(out) {
		err := checkSplitDirs(out)
		if err == nil {
			return out, nil
		}
		note(opts.Progress, "%s is marked complete but has %v; extracting it again", out, err)
		if err := os.RemoveAll(out); err != nil {
			return "", fmt.Errorf("loaders: download: %w", err)
		}
	}
	src := opts.URL
	if src == "" {
		src, _ = ImagenetteURL(v)
	}
	want := opts.Expect
	if !want.known() {
		want = ImagenetteExpect[v]
	}
	want.Check = checkImagenetteArchive
	archive := filepath.Join(dest, v+".tgz")
	if err := File(ctx, src, archive, want, opts.Options); err != nil {
		var off *OfflineError
		if errors.As(err, &off) {
			off.Hint = fmt.Sprintf("download %s elsewhere and save it as %s (gorgoclip extracts it to %s), then rerun", src, archive, out)
		}
		return "", err
	}
	note(opts.Progress, "extracting %s to %s", archive, out)
	if err := ExtractArchive(archive, out, checkSplitDirs); err != nil {
		return "", err
	}
	if !opts.KeepArchive {
		os.Remove(archive)
	}
	return out, nil
}
