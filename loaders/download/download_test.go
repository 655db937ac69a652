package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testData returns n deterministic pseudo-random bytes.
func testData(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fileServer serves data with the behaviours the tests need.
type fileServer struct {
	data        []byte
	etag        string
	ignoreRange bool // always answer 200 with the whole body
	dropAfter   int  // on the first request, abort the connection after this many bytes
	fail        int  // answer 503 to the first fail requests
	status      int  // if set, always answer this status

	mu     sync.Mutex
	reqs   []http.Header
	served int // body bytes written, all requests together
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Header.Clone())
	n := len(s.reqs)
	fail := s.fail > 0
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	switch {
	case s.status != 0:
		http.Error(w, "no", s.status)
		return
	case fail:
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	cw := &countingWriter{ResponseWriter: w, s: s, limit: -1}
	if n == 1 && s.dropAfter > 0 {
		cw.limit = s.dropAfter
	}
	if s.ignoreRange {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		cw.Write(s.data)
		return
	}
	if s.etag != "" {
		w.Header().Set("ETag", s.etag)
	}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(s.data))
}

func (s *fileServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

func (s *fileServer) bytesServed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// countingWriter counts body bytes and aborts the connection after limit bytes.
type countingWriter struct {
	http.ResponseWriter
	s       *fileServer
	limit   int
	written int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.limit >= 0 && c.written+len(b) > c.limit {
		b = b[:c.limit-c.written]
		n, _ := c.ResponseWriter.Write(b)
		c.add(n)
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
	n, err := c.ResponseWriter.Write(b)
	c.add(n)
	return n, err
}

func (c *countingWriter) add(n int) {
	c.written += n
	c.s.mu.Lock()
	c.s.served += n
	c.s.mu.Unlock()
}

func fastOpts() Options { return Options{Backoff: time.Millisecond} }

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs: got %d bytes want %d", path, len(got), len(want))
	}
	if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.partial left behind (err %v)", path, err)
	}
}

func TestFileFull(t *testing.T) {
	t.Parallel()
	data := testData(300_000)
	srv := &fileServer{data: data, etag: `"v1"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "sub", "w.bin")
	var prog bytes.Buffer
	opts := fastOpts()
	opts.Progress = &prog
	opts.ProgressInterval = time.Nanosecond
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{Size: int64(len(data)), SHA256: sha(data)}, opts); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	if got := prog.String(); !strings.Contains(got, "w.bin: ") || !strings.Contains(got, "MB/s") || !strings.Contains(got, "0.3 MB (100%)") {
		t.Errorf("progress output lacks name, rate or final state:\n%s", got)
	}
	// A second call finds the file complete and does not ask the server.
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{SHA256: sha(data)}, opts); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("complete file re-fetched: %d requests, want 1", n)
	}
}

func TestFileResumeAfterDrop(t *testing.T) {
	t.Parallel()
	data := testData(1 << 20)
	const cut = 400_000
	srv := &fileServer{data: data, etag: `"abc"`, dropAfter: cut}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{SHA256: sha(data)}, fastOpts()); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	if r := reqs[0].Get("Range"); r != "" {
		t.Errorf("first request carried Range %q", r)
	}
	if got, want := reqs[1].Get("Range"), "bytes=400000-"; got != want {
		t.Errorf("second request Range: got %q want %q", got, want)
	}
	if got := reqs[1].Get("If-Range"); got != `"abc"` {
		t.Errorf("second request If-Range: got %q want %q", got, `"abc"`)
	}
	if got := srv.bytesServed(); got != len(data) {
		t.Errorf("server sent %d bytes for a %d-byte file: bytes on disk were fetched again", got, len(data))
	}
}

func TestFileResumeAcrossRuns(t *testing.T) {
	t.Parallel()
	data := testData(500_000)
	srv := &fileServer{data: data, etag: `"e1"`, dropAfter: 123_456}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	opts := fastOpts()
	opts.Retries = -1 // fail on the first drop, as a killed process would
	err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{}, opts)
	if err == nil || !strings.Contains(err.Error(), "partial kept") {
		t.Fatalf("dropped transfer: got %v, want an error saying the partial is kept", err)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() != 123_456 {
		t.Fatalf("partial after drop: %v %v, want 123456 bytes", fi, err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("final file exists after a failed transfer")
	}
	// A new run (new transfer, same paths) resumes with the saved validator.
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{}, fastOpts()); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	reqs := srv.requests()
	if got := reqs[len(reqs)-1]; got.Get("Range") != "bytes=123456-" || got.Get("If-Range") != `"e1"` {
		t.Errorf("resume request: Range %q If-Range %q", got.Get("Range"), got.Get("If-Range"))
	}
	if got := srv.bytesServed(); got != len(data) {
		t.Errorf("server sent %d bytes for a %d-byte file", got, len(data))
	}
	if _, err := os.Stat(dest + ".partial.meta"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resume metadata left behind")
	}
}

func TestFileServerIgnoresRange(t *testing.T) {
	t.Parallel()
	data := testData(200_000)
	srv := &fileServer{data: data, ignoreRange: true}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	// Stale bytes from an earlier attempt: must not end up in the result.
	if err := os.WriteFile(dest+".partial", bytes.Repeat([]byte{0xEE}, 50_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{SHA256: sha(data)}, fastOpts()); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	if r := srv.requests()[0].Get("Range"); r != "bytes=50000-" {
		t.Errorf("resume not attempted: Range %q", r)
	}
}

func TestFileChangedOnServerRestarts(t *testing.T) {
	t.Parallel()
	data := testData(100_000)
	srv := &fileServer{data: data, etag: `"new"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	os.WriteFile(dest+".partial", bytes.Repeat([]byte{1}, 30_000), 0o644)
	os.WriteFile(dest+".partial.meta", []byte(`{"url":"`+ts.URL+`/w.bin","validator":"\"old\""}`), 0o644)
	if err := File(context.Background(), ts.URL+"/w.bin", dest, Expect{}, fastOpts()); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	if got := srv.requests()[0].Get("If-Range"); got != `"old"` {
		t.Errorf("If-Range: got %q want %q", got, `"old"`)
	}
}

func TestFileChecksumMismatch(t *testing.T) {
	t.Parallel()
	data := testData(10_000)
	ts := httptest.NewServer(&fileServer{data: data})
	defer ts.Close()
	for i, want := range []Expect{
		{SHA256: sha([]byte("something else"))},
		{Size: 9_999},
	} {
		dest := filepath.Join(t.TempDir(), "w.bin")
		err := File(context.Background(), ts.URL+"/w.bin", dest, want, fastOpts())
		if err == nil || !strings.Contains(err.Error(), "loaders: download:") || !strings.Contains(err.Error(), ts.URL) {
			t.Errorf("test %d: got %v, want an error naming the URL", i, err)
		}
		for _, p := range []string{dest, dest + ".partial", dest + ".partial.meta"} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("test %d: %s left behind after a bad checksum", i, filepath.Base(p))
			}
		}
	}
	if err := File(context.Background(), ts.URL, filepath.Join(t.TempDir(), "x"), Expect{SHA256: "zz"}, fastOpts()); err == nil {
		t.Errorf("malformed expected sha256 accepted")
	}
}

func TestFileRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	data := testData(5000)
	srv := &fileServer{data: data, fail: 2}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "w.bin")
	var prog bytes.Buffer
	opts := fastOpts()
	opts.Progress = &prog
	if err := File(context.Background(), ts.URL, dest, Expect{}, opts); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, data)
	if n := len(srv.requests()); n != 3 {
		t.Errorf("got %d requests, want 3 (two 503s, then success)", n)
	}
	if !strings.Contains(prog.String(), "retrying") {
		t.Errorf("retries not reported:\n%s", prog.String())
	}

	srv = &fileServer{data: data, fail: 100}
	ts2 := httptest.NewServer(srv)
	defer ts2.Close()
	opts.Retries = 2
	err := File(context.Background(), ts2.URL, filepath.Join(t.TempDir(), "w.bin"), Expect{}, opts)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("persistent 503: got %v", err)
	}
}

func TestFilePermanentErrors(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		status int
		want   string
	}{
		{http.StatusNotFound, "404"},
		{http.StatusUnauthorized, "HF_TOKEN"},
	} {
		srv := &fileServer{status: test.status}
		ts := httptest.NewServer(srv)
		err := File(context.Background(), ts.URL+"/f", filepath.Join(t.TempDir(), "f"), Expect{}, fastOpts())
		ts.Close()
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), ts.URL+"/f") {
			t.Errorf("test %d: got %v, want error with %q and the URL", i, err, test.want)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("test %d: %d requests for a permanent error, want 1", i, n)
		}
	}
}

func TestFileOffline(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL + "/w.bin"
	ts.Close() // nothing listens there now: connection refused
	dest := filepath.Join(t.TempDir(), "w.bin")
	start := time.Now()
	err := File(context.Background(), url, dest, Expect{}, Options{Backoff: time.Second})
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("got %v, want ErrOffline", err)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("offline failure took %v: it should not retry", time.Since(start))
	}
	if msg := err.Error(); !strings.Contains(msg, url) || !strings.Contains(msg, dest) {
		t.Errorf("offline error does not say what to download and where:\n%s", msg)
	}
}

func TestFileCancel(t *testing.T) {
	t.Parallel()
	data := testData(1 << 20)
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	dest := filepath.Join(t.TempDir(), "w.bin")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := File(ctx, ts.URL, dest, Expect{}, fastOpts())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() != 1000 {
		t.Errorf("partial after cancel: %v %v, want 1000 bytes kept", fi, err)
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, 0, true},
		{"bytes */1000", 0, 1000, true},
		{"bytes -5-10/20", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes 1-2/x", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, tot, ok := parseContentRange(test.in)
		if s != test.start || tot != test.total || ok != test.ok {
			t.Errorf("test %d (%q): got %d %d %v want %d %d %v", i, test.in, s, tot, ok, test.start, test.total, test.ok)
		}
	}
}
