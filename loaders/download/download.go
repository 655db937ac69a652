package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// Defaults used when the corresponding Options field is zero.
const (
	// DefaultRetries is how many consecutive failed attempts are retried.
	DefaultRetries = 5
	// DefaultBackoff is the wait before the first retry; it doubles each time.
	DefaultBackoff = time.Second
	// MaxBackoff caps the wait between retries.
	MaxBackoff = 30 * time.Second
	// DefaultProgressInterval is how often progress is reported.
	DefaultProgressInterval = 500 * time.Millisecond
)

// Options configures a download. The zero value works: the default HTTP client, no
// progress, DefaultRetries retries starting at DefaultBackoff.
type Options struct {
	// Client performs the requests; nil means http.DefaultClient. It should have no
	// overall Timeout, which would cut large files; use the context to bound a download.
	Client *http.Client
	// Progress receives human-readable progress lines (bytes, MB/s, ETA); nil is silent.
	// On a terminal the line is redrawn in place.
	Progress io.Writer
	// ProgressInterval throttles progress output; 0 means DefaultProgressInterval.
	ProgressInterval time.Duration
	// Retries is how many consecutive failed attempts are retried (an attempt that
	// received bytes resets the count); 0 means DefaultRetries, negative means none.
	Retries int
	// Backoff is the wait before the first retry, doubled after each failure up to
	// MaxBackoff; 0 means DefaultBackoff.
	Backoff time.Duration
	// Header holds extra request headers (for example Authorization).
	Header http.Header
}

func (o *Options) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o *Options) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return DefaultRetries
	}
	return o.Retries
}

func (o *Options) backoff(failures int) time.Duration {
	d := o.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for i := 1; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// Expect is what is known in advance about a file. Zero fields are not checked.
type Expect struct {
	// Size is the exact length in bytes; 0 means unknown.
	Size int64
	// SHA256 is the lower- or upper-case hex digest; "" means unknown.
	SHA256 string
}

// Matches reports whether the file at path has the expected size and digest. With
// nothing expected, any existing regular file matches.
func (e Expect) Matches(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("loaders: download: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	if e.Size > 0 && fi.Size() != e.Size {
		return false, nil
	}
	if e.SHA256 == "" {
		return true, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return false, err
	}
	return strings.EqualFold(sum, e.SHA256), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("loaders: download: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("loaders: download: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// File downloads url to dest. If dest already matches want it returns at once (with
// nothing expected, an existing dest counts as complete: only finished downloads are
// ever renamed to that name). Otherwise bytes go to dest+".partial", which a later call
// resumes; when the transfer ends the size and SHA-256 are checked against want and
// the file is renamed into place. See the package documentation for the policy on
// partial files and offline errors.
func File(ctx context.Context, url, dest string, want Expect, opts Options) error {
	if want.SHA256 != "" {
		if b, err := hex.DecodeString(want.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("loaders: download: %s: expected sha256 %q is not 64 hex digits", url, want.SHA256)
		}
	}
	if ok, err := want.Matches(dest); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("loaders: download: %w", err)
	}
	d := &transfer{ctx: ctx, url: url, dest: dest, partial: dest + ".partial", want: want, opts: opts}
	if err := d.run(); err != nil {
		return err
	}
	return d.finish()
}

// transfer is one File call in progress.
type transfer struct {
	ctx           context.Context
	url           string
	dest, partial string
	want          Expect
	opts          Options

	total     int64  // full size when known (want.Size or from the server), else 0
	validator string // ETag or Last-Modified of the bytes in partial, for If-Range
	received  bool   // some bytes arrived during this call
	prog      *progress
}

// partialMeta is stored next to the partial file so that a later process can resume
// with If-Range: a changed file on the server then answers 200 and restarts.
type partialMeta struct {
	URL       string `json:"url"`
	Validator string `json:"validator,omitempty"`
	Total     int64  `json:"total,omitempty"`
}

func (d *transfer) metaPath() string { return d.partial + ".meta" }

func (d *transfer) loadMeta() {
	b, err := os.ReadFile(d.metaPath())
	if err != nil {
		return
	}
	var m partialMeta
	if json.Unmarshal(b, &m) == nil && m.URL == d.url {
		d.validator = m.Validator
		if d.total == 0 {
			d.total = m.Total
		}
	}
}

func (d *transfer) saveMeta() {
	b, _ := json.Marshal(partialMeta{URL: d.url, Validator: d.validator, Total: d.total})
	_ = atomicfile.WriteBytes(d.metaPath(), b) // best effort: without it resume is unguarded
}

// run loops over attempts until the partial file holds the whole body.
func (d *transfer) run() error {
	d.total = d.want.Size
	d.loadMeta()
	d.prog = newProgress(d.opts.Progress, filepath.Base(d.dest), d.opts.ProgressInterval)
	defer d.prog.done()
	failures, restarts := 0, 0
	for {
		done, err := d.attempt()
		if done {
			return nil
		}
		if err == nil {
			// Restart requested (the server refused or garbled the range); a server
			// that keeps doing so is broken, not slow.
			if restarts++; restarts <= 3 {
				continue
			}
			return fmt.Errorf("loaders: download: %s: server keeps refusing the byte range; partial removed", d.url)
		}
		if d.ctx.Err() != nil {
			return fmt.Errorf("loaders: download: %s: %w (partial kept at %s)", d.url, d.ctx.Err(), d.partial)
		}
		var pe *permanentError
		if errors.As(err, &pe) {
			return pe.err
		}
		if isOffline(err) && !d.received {
			return &OfflineError{URL: d.url, Path: d.dest, Err: err}
		}
		var pr *progressError
		if errors.As(err, &pr) {
			failures = 0 // bytes arrived: only consecutive fruitless attempts count
		}
		failures++
		if failures > d.opts.retries() {
			return fmt.Errorf("loaders: download: %s: giving up after %d attempts: %w (partial kept at %s; rerun to resume)",
				d.url, failures, err, d.partial)
		}
		wait := d.opts.backoff(failures)
		d.prog.note(fmt.Sprintf("%s: %v; retrying in %v", filepath.Base(d.dest), err, wait))
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return fmt.Errorf("loaders: download: %s: %w (partial kept at %s)", d.url, d.ctx.Err(), d.partial)
		case <-t.C:
		}
	}
}

// permanentError is a failure that retrying cannot fix (404, 403, bad data).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// attempt makes one request. It returns done when the partial file is complete, a nil
// error with done false to restart at once, or the error of a failed attempt: a
// *permanentError is not retried, a *progressError received bytes before failing.
func (d *transfer) attempt() (done bool, err error) {
	offset := int64(0)
	if fi, err := os.Stat(d.partial); err == nil {
		offset = fi.Size()
	}
	if d.total > 0 && offset > d.total {
		// More bytes than the file has: corrupt; start over.
		if err := d.truncate(); err != nil {
			return false, err
		}
		offset = 0
	}
	if d.total > 0 && offset == d.total {
		return true, nil
	}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return false, &permanentError{fmt.Errorf("loaders: download: %s: %w", d.url, err)}
	}
	for k, vs := range d.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if d.validator != "" {
			req.Header.Set("If-Range", d.validator)
		}
	}
	resp, err := d.opts.client().Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			// A range we did not ask for: drop what we have and ask for everything.
			d.prog.note(fmt.Sprintf("%s: server sent range %q for offset %d; restarting", filepath.Base(d.dest), resp.Header.Get("Content-Range"), offset))
			return false, d.truncate()
		}
		if total > 0 {
			if d.total > 0 && total != d.total {
				return false, &permanentError{fmt.Errorf("loaders: download: %s: server reports %d bytes, expected %d", d.url, total, d.total)}
			}
			d.total = total
		}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent:
		// Full body: either a fresh download, or the server ignored Range / If-Range
		// failed because the file changed. Either way start from zero.
		if offset > 0 {
			d.prog.note(fmt.Sprintf("%s: server did not resume (status %d); restarting from 0", filepath.Base(d.dest), resp.StatusCode))
		}
		if err := d.truncate(); err != nil {
			return false, err
		}
		offset = 0
		if resp.ContentLength > 0 && resp.Header.Get("Content-Encoding") == "" {
			if d.total > 0 && resp.ContentLength != d.total {
				return false, &permanentError{fmt.Errorf("loaders: download: %s: server sends %d bytes, expected %d", d.url, resp.ContentLength, d.total)}
			}
			d.total = resp.ContentLength
		}
		d.validator = validator(resp.Header)
		d.saveMeta()
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		_, total, _ := parseContentRange(resp.Header.Get("Content-Range"))
		if offset > 0 && total == offset && (d.total == 0 || d.total == total) {
			d.total = total
			return true, nil // we already hold every byte
		}
		return false, d.truncate()
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return false, fmt.Errorf("server answered %s", resp.Status)
	default:
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = " (gated or private? set HF_TOKEN for the hub)"
		case http.StatusNotFound:
			hint = " (not found: check the name and revision)"
		}
		return false, &permanentError{fmt.Errorf("loaders: download: %s: server answered %s%s", d.url, resp.Status, hint)}
	}

	f, err := os.OpenFile(d.partial, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return false, &permanentError{fmt.Errorf("loaders: download: %w", err)}
	}
	d.prog.start(offset, d.total)
	n, copyErr := io.Copy(f, io.TeeReader(resp.Body, d.prog))
	syncErr := f.Sync()
	closeErr := f.Close()
	if n > 0 {
		d.received = true
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return false, &permanentError{fmt.Errorf("loaders: download: writing %s: %w", d.partial, err)}
	}
	if copyErr != nil {
		if n > 0 {
			// Progress was made: let the caller reset its failure count.
			return false, &progressError{copyErr}
		}
		return false, copyErr
	}
	if d.total > 0 && offset+n < d.total {
		return false, &progressError{fmt.Errorf("connection closed after %d of %d bytes", offset+n, d.total)}
	}
	if d.total == 0 {
		d.total = offset + n
	}
	return true, nil
}

// progressError is a failed attempt that nevertheless received bytes.
type progressError struct{ err error }

func (e *progressError) Error() string { return e.err.Error() }
func (e *progressError) Unwrap() error { return e.err }

func (d *transfer) truncate() error {
	os.Remove(d.metaPath())
	if err := os.Truncate(d.partial, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &permanentError{fmt.Errorf("loaders: download: %w", err)}
	}
	return nil
}

// finish checks the complete partial file and renames it into place.
func (d *transfer) finish() error {
	fi, err := os.Stat(d.partial)
	if err != nil {
		return fmt.Errorf("loaders: download: %w", err)
	}
	if d.want.Size > 0 && fi.Size() != d.want.Size {
		d.discard()
		return fmt.Errorf("loaders: download: %s: got %d bytes, expected %d (partial removed)", d.url, fi.Size(), d.want.Size)
	}
	if d.want.SHA256 != "" {
		sum, err := fileSHA256(d.partial)
		if err != nil {
			return err
		}
		if !strings.EqualFold(sum, d.want.SHA256) {
			d.discard()
			return fmt.Errorf("loaders: download: %s: sha256 mismatch for %s: got %s, expected %s (partial removed)",
				d.url, filepath.Base(d.dest), sum, strings.ToLower(d.want.SHA256))
		}
	}
	if err := os.Rename(d.partial, d.dest); err != nil {
		return fmt.Errorf("loaders: download: %w", err)
	}
	os.Remove(d.metaPath())
	if dir, err := os.Open(filepath.Dir(d.dest)); err == nil {
		dir.Sync() // make the rename durable; failure here is not worth an error
		dir.Close()
	}
	return nil
}

func (d *transfer) discard() {
	os.Remove(d.partial)
	os.Remove(d.metaPath())
}

// validator returns the header value usable in If-Range: a strong ETag, else
// Last-Modified, else "".
func validator(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// parseContentRange parses "bytes START-END/TOTAL" or "bytes */TOTAL"; total is 0 when
// it is "*".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t < 0 {
			return 0, 0, false
		}
		total = t
	}
	if rng == "*" {
		return 0, total, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	return start, total, true
}
