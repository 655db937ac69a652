package download

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/bomb"
	"github.com/gorgoclip/gorgoclip/internal/hang"
)

// TestFileServerCutsAndIgnoresRange: a server that cuts every answer after the same
// first bytes and ignores Range was retried forever, since any bytes reset the
// failure count; only new bytes count now. (Every hostile server here made File
// wait or retry forever: hang.Within fails the test instead of hanging.)
func TestFileServerCutsAndIgnoresRange(t *testing.T) {
	t.Parallel()
	data := testData(100_000)
	var reqs int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs++
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:1000])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	err := hang.Within(t, 20*time.Second, "File", func() error { return File(context.Background(), ts.URL, dest, Expect{}, fastOpts()) })
	if err == nil || !strings.Contains(err.Error(), "giving up after 7 attempts, the last 6 without a new byte") {
		t.Fatalf("got %v", err)
	}
	if reqs != 7 {
		t.Errorf("%d requests, want 7", reqs)
	}
}

// TestFileAttemptsCapped: a server that honours Range but cuts every answer after
// one new byte makes progress each time; the attempts are capped all the same.
func TestFileAttemptsCapped(t *testing.T) {
	t.Parallel()
	data := testData(10_000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		}
		w.Write(data[start : start+1])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	err := hang.Within(t, 20*time.Second, "File", func() error { return File(context.Background(), ts.URL, dest, Expect{}, fastOpts()) })
	want := fmt.Sprintf("giving up after %d attempts, the most for one file", DefaultMaxAttempts)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "partial kept") {
		t.Fatalf("got %v, want %q", err, want)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() != DefaultMaxAttempts {
		t.Errorf("partial: %v %v, want the %d bytes received kept for a rerun", fi, err, DefaultMaxAttempts)
	}
	// MaxTime cuts even a transfer that keeps making progress.
	opts := fastOpts()
	opts.MaxTime = 50 * time.Millisecond
	opts.Backoff = 20 * time.Millisecond
	err = hang.Within(t, 10*time.Second, "File", func() error {
		return File(context.Background(), ts.URL, filepath.Join(t.TempDir(), "w.bin"), Expect{}, opts)
	})
	if err == nil || !strings.Contains(err.Error(), "spent 50ms on it, the most for one file") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("MaxTime: got %v", err)
	}
}

// TestFileTimeouts: a server that accepts and never answers, and one that stalls
// mid-body, hung File forever; each wait is bounded now, by Options.Timeout or
// GORGOCLIP_HTTP_TIMEOUT.
func TestFileTimeouts(t *testing.T) {
	// A listener that accepts connections and never reads or answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	release := make(chan struct{})
	defer close(release)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stall.Close()

	t.Setenv(TimeoutEnv, "100ms")
	opts := fastOpts()
	opts.Retries = 1
	for i, test := range []struct {
		url, want string
	}{
		{"http://" + ln.Addr().String() + "/w.bin", "giving up after 2 attempts, the last 2 without a new byte: no answer within 100ms (GORGOCLIP_HTTP_TIMEOUT)"},
		{stall.URL + "/w.bin", "giving up after 3 attempts, the last 2 without a new byte: stalled: less than 1024 bytes in 100ms (GORGOCLIP_HTTP_TIMEOUT)"},
	} {
		dest := filepath.Join(t.TempDir(), "w.bin")
		err := hang.Within(t, 10*time.Second, "File", func() error { return File(context.Background(), test.url, dest, Expect{}, opts) })
		if err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want %q", i, err, test.want)
		}
	}
	// The hub's listing is bounded too.
	err = hang.Within(t, 10*time.Second, "File", func() error {
		_, err := ModelInfo(context.Background(), "openai/clip", HubOptions{Endpoint: "http://" + ln.Addr().String()})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("ModelInfo: got %v", err)
	}
	t.Setenv(TimeoutEnv, "soon")
	err = File(context.Background(), stall.URL, filepath.Join(t.TempDir(), "w.bin"), Expect{}, Options{})
	if err == nil || !strings.Contains(err.Error(), `GORGOCLIP_HTTP_TIMEOUT="soon" is not a positive Go duration`) {
		t.Errorf("bad variable: got %v", err)
	}
}

// TestFilePartialFromAnotherURL: bytes a run took from one URL must not be resumed
// from another, which would splice two files.
func TestFilePartialFromAnotherURL(t *testing.T) {
	t.Parallel()
	data := testData(20_000)
	srv := &fileServer{data: data, etag: `"b"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	os.WriteFile(dest+".partial", bytes.Repeat([]byte{9}, 5000), 0o644)
	os.WriteFile(dest+".partial.meta", []byte(`{"url":"http://elsewhere/w.bin","validator":"\"a\""}`), 0o644)
	var prog bytes.Buffer
	opts := fastOpts()
	opts.Progress = &prog
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{}, opts); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	if r := srv.requests()[0].Get("Range"); r != "" {
		t.Errorf("resumed another URL's bytes with Range %q", r)
	}
	if !strings.Contains(prog.String(), "the partial download came from http://elsewhere/w.bin; starting over") {
		t.Errorf("restart not reported:\n%s", prog.String())
	}
}

// TestBadDownloadsNotKept: an HTML page saved as prompts.md or as the Imagenette
// archive, and a truncated archive, were kept and reused forever, even with a
// different --url. They are refused now, and a cached copy that fails the check is
// fetched again, saying so.
func TestBadDownloadsNotKept(t *testing.T) {
	t.Parallel()
	html := []byte("<!DOCTYPE html>\n<html><body>Please log in</body></html>\n")
	good := []byte("## CIFAR10\n\n```bash\nclasses = [\n    'airplane',\n]\n\ntemplates = [\n    'a photo of a {}.',\n]\n```\n")
	portal := httptest.NewServer(&fileServer{data: html})
	defer portal.Close()
	mirror := httptest.NewServer(&fileServer{data: good})
	defer mirror.Close()
	dest := filepath.Join(t.TempDir(), "prompts.md")
	_, err := FetchTemplates(context.Background(), dest, SourceOptions{Options: fastOpts(), URL: portal.URL + "/prompts.md"})
	if err == nil || !strings.Contains(err.Error(), "not kept as "+dest+": an HTML page") {
		t.Fatalf("HTML page: got %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("HTML page kept as %s", dest)
	}
	// What an earlier version kept: the HTML page at the destination.
	os.WriteFile(dest, html, 0o644)
	var prog bytes.Buffer
	opts := fastOpts()
	opts.Progress = &prog
	if _, err := FetchTemplates(context.Background(), dest, SourceOptions{Options: opts, URL: mirror.URL + "/prompts.md"}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, good)
	if !strings.Contains(prog.String(), "prompts.md: the copy at "+dest+" is not valid (an HTML page") || !strings.Contains(prog.String(), "fetching it again from "+mirror.URL) {
		t.Errorf("refetch not reported:\n%s", prog.String())
	}
}

// TestImagenetteArchivesChecked: an HTML page or a truncated archive is not kept,
// a cached truncated archive is fetched again, and an archive without train/ and
// val/ is not marked complete.
func TestImagenetteArchivesChecked(t *testing.T) {
	t.Parallel()
	archive := tgz(t,
		entry{name: "imagenette2-160/train/n01440764/a.JPEG", typ: tar.TypeReg, body: "a"},
		entry{name: "imagenette2-160/val/n03888257/b.JPEG", typ: tar.TypeReg, body: "b"},
	)
	noVal := tgz(t, entry{name: "imagenette2-160/train/n01440764/a.JPEG", typ: tar.TypeReg, body: "a"})
	serve := func(b []byte) *httptest.Server {
		ts := httptest.NewServer(&fileServer{data: b})
		t.Cleanup(ts.Close)
		return ts
	}
	for i, test := range []struct {
		body []byte
		want string
	}{
		{[]byte("<html><body>AccessDenied</body></html>"), "an HTML page"},
		{archive[:len(archive)-30], "unexpected EOF"},
		{noVal, "the archive has no val/ folder"},
	} {
		dest := t.TempDir()
		_, err := FetchImagenette(context.Background(), "imagenette-160", dest, SourceOptions{Options: fastOpts(), URL: serve(test.body).URL + "/x.tgz"})
		if err == nil || !strings.Contains(err.Error(), "not kept as "+filepath.Join(dest, "imagenette2-160.tgz")) || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want %q", i, err, test.want)
		}
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Errorf("test %d: left %v behind", i, ents)
		}
	}

	// A truncated archive in the cache (as an earlier version kept it) is fetched
	// again from whatever URL is given now.
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "imagenette2-160.tgz"), archive[:len(archive)/2], 0o644)
	var prog bytes.Buffer
	opts := fastOpts()
	opts.Progress = &prog
	dir, err := FetchImagenette(context.Background(), "imagenette-160", dest, SourceOptions{Options: opts, URL: serve(archive).URL + "/mirror.tgz"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(prog.String(), "imagenette2-160.tgz: the copy at") || !strings.Contains(prog.String(), "fetching it again") {
		t.Errorf("refetch not reported:\n%s", prog.String())
	}
	// An extraction marked complete without val/ (as an earlier version marked one)
	// is extracted again.
	os.RemoveAll(filepath.Join(dir, "val"))
	prog.Reset()
	if _, err := FetchImagenette(context.Background(), "imagenette-160", dest, SourceOptions{Options: opts, URL: serve(archive).URL + "/x.tgz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "val", "n03888257", "b.JPEG")); err != nil || !strings.Contains(prog.String(), "is marked complete but has no val/ folder") {
		t.Errorf("incomplete extraction not redone: %v\n%s", err, prog.String())
	}
	// ExtractArchive itself refuses to mark an archive complete that check refuses.
	p := filepath.Join(t.TempDir(), "noval.tgz")
	os.WriteFile(p, noVal, 0o644)
	out := filepath.Join(filepath.Dir(p), "out")
	if err := ExtractArchive(p, out, checkSplitDirs); err == nil || !strings.Contains(err.Error(), "no val/ folder") || Extracted(out) {
		t.Errorf("archive without val/: got %v, extracted %v", err, Extracted(out))
	}
}

// TestExtractBomb: a 1 MB .tar.gz expanded to 1 GiB; the extraction stops once the
// archive expands past MaxExtractRatio, and leaves nothing behind.
func TestExtractBomb(t *testing.T) {
	t.Parallel()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	tw.WriteHeader(&tar.Header{Name: "data/zeros.bin", Typeflag: tar.TypeReg, Size: 1 << 30, Mode: 0o644})
	tw.Flush()
	gz := bomb.Gzip(hdr.Bytes(), 1<<30+1024, nil) // the file, then the tar's end
	dir := t.TempDir()
	archive := filepath.Join(dir, "bomb.tgz")
	os.WriteFile(archive, gz, 0o644)
	dest := filepath.Join(dir, "out")
	err := ExtractArchive(archive, dest, nil)
	if err == nil || !strings.Contains(err.Error(), `refusing entry "data/zeros.bin"`) || !strings.Contains(err.Error(), "archive expands more than 100 times") {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left %v behind", ents)
	}
	// The check FetchImagenette runs before keeping a download refuses it too.
	if err := checkImagenetteArchive(archive); err == nil || !strings.Contains(err.Error(), "expands more than 100 times") {
		t.Errorf("check: got %v", err)
	}
}

// TestExtractCleansKilledRuns: the scratch directory of an extraction whose process
// was killed is removed by the next extraction.
func TestExtractCleansKilledRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.tgz")
	os.WriteFile(archive, tgz(t, entry{name: "x/f", typ: tar.TypeReg, body: "f"}), 0o644)
	host, _ := os.Hostname()
	// PID 2^22+1 is beyond Linux's pid_max, so no process has it.
	stale := filepath.Join(dir, ".out.extract-"+strings.NewReplacer("-", "_", "/", "_").Replace(host)+"-4194305-77")
	os.MkdirAll(filepath.Join(stale, "train"), 0o755)
	if err := ExtractArchive(archive, filepath.Join(dir, "out"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale scratch %s kept (%v)", stale, err)
	}
}
