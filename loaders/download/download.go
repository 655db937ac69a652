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
	// DefaultRetries is how many consecutive attempts that add no new byte to the
	// file are retried.
	DefaultRetries = 5
	// DefaultMaxAttempts bounds the attempts at one file, fruitful or not.
	DefaultMaxAttempts = 30
	// DefaultMaxTime bounds the time spent on one file, retries included; the
	// partial file is kept, so a rerun resumes where this one stopped.
	DefaultMaxTime = 4 * time.Hour
	// DefaultTimeout bounds each wait on the network (see Options.Timeout). A
	// server that never answers is thus given up after (DefaultRetries+1) times
	// this, two minutes.
	DefaultTimeout = 20 * time.Second
	// DefaultBackoff is the wait before the first retry; it doubles each time.
	DefaultBackoff = time.Second
	// MaxBackoff caps the wait between retries.
	MaxBackoff = 30 * time.Second
	// DefaultProgressInterval is how often progress is reported.
	DefaultProgressInterval = 500 * time.Millisecond
)

// TimeoutEnv names the environment variable that overrides DefaultTimeout: a Go
// duration such as 10s or 2m.
const TimeoutEnv = "GORGOCLIP_HTTP_TIMEOUT"

// minStallBytes is the least a transfer must receive in each Timeout window to be
// alive: a server that sends nothing, or a byte now and then, is cut.
const minStallBytes = 1024

// Options configures a download. The zero value works: the default HTTP client, no
// progress, the Default limits.
type Options struct {
	// Client performs the requests; nil means http.DefaultClient. It should have no
	// overall Timeout, which would cut large files: Timeout bounds each wait instead.
	Client *http.Client
	// Progress receives human-readable progress lines (bytes, MB/s, ETA); nil is silent.
	// On a terminal the line is redrawn in place.
	Progress io.Writer
	// ProgressInterval throttles progress output; 0 means DefaultProgressInterval.
	ProgressInterval time.Duration
	// Retries is how many consecutive failed attempts that brought no new byte
	// (the partial file grew no larger than it had ever been) are retried; 0 means
	// DefaultRetries, negative means none. A server that cuts every answer and
	// ignores Range thus fails after Retries+1 attempts.
	Retries int
	// MaxAttempts bounds all attempts at one file; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// MaxTime bounds the time spent on one file, retries included; 0 means
	// DefaultMaxTime.
	MaxTime time.Duration
	// Timeout bounds each wait on the network: connecting and the response
	// headers, and then every window of that length, which must bring at least
	// 1 KiB of the body. 0 means $GORGOCLIP_HTTP_TIMEOUT when set, else
	// DefaultTimeout.
	Timeout time.Duration
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

func (o *Options) maxAttempts() int {
	if o.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return o.MaxAttempts
}

func (o *Options) maxTime() time.Duration {
	if o.MaxTime <= 0 {
		return DefaultMaxTime
	}
	return o.MaxTime
}

// timeout returns Options.Timeout, else $GORGOCLIP_HTTP_TIMEOUT, else
// DefaultTimeout; a malformed variable is an error naming it.
func (o *Options) timeout() (time.Duration, error) {
	if o.Timeout > 0 {
		return o.Timeout, nil
	}
	return TimeoutFromEnv()
}

// TimeoutFromEnv returns the duration $GORGOCLIP_HTTP_TIMEOUT sets, or
// DefaultTimeout when it is unset; anything but a positive Go duration is an error
// naming the variable.
func TimeoutFromEnv() (time.Duration, error) {
	v := os.Getenv(TimeoutEnv)
	if v == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("loaders: download: %s=%q is not a positive Go duration (such as 30s or 2m)", TimeoutEnv, v)
	}
	return d, nil
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
	// Check, when set, validates the content (the format a URL should serve, not
	// an HTML error page or a truncated archive): a download failing it is not
	// kept, and a file already at the destination failing it is fetched again.
	Check func(path string) error
}

// known reports whether e says anything about size or digest.
func (e Expect) known() bool { return e.Size > 0 || e.SHA256 != "" }

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
// ever renamed to that name), unless want.Check refuses it: it is then fetched again,
// saying so on opts.Progress. Otherwise bytes go to dest+".partial", which a later
// call resumes; when the transfer ends the size, SHA-256 and content are checked
// against want and the file is renamed into place. Retries, attempts, time and
// every network wait are bounded (see Options). See the package documentation for
// the policy on partial files and offline errors.
func File(ctx context.Context, url, dest string, want Expect, opts Options) error {
	if want.SHA256 != "" {
		if b, err := hex.DecodeString(want.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("loaders: download: %s: expected sha256 %q is not 64 hex digits", url, want.SHA256)
		}
	}
	timeout, err := opts.timeout()
	if err != nil {
		return err
	}
	if ok, err := want.Matches(dest); err != nil {
		return err
	} else if ok {
		if want.Check == nil {
			return nil
		}
		cerr := want.Check(dest)
		if cerr == nil {
			return nil
		}
		note(opts.Progress, "%s: the copy at %s is not valid (%v); fetching it again from %s", filepath.Base(dest), dest, cerr, url)
		if err := os.Remove(dest); err != nil {
			return fmt.Errorf("loaders: download: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("loaders: download: %w", err)
	}
	d := &transfer{ctx: ctx, url: url, dest: dest, partial: dest + ".partial", want: want, opts: opts, timeout: timeout}
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

	timeout time.Duration

	total     int64  // full size when known (want.Size or from the server), else 0
	validator string // ETag or Last-Modified of the bytes in partial, for If-Range
	received  bool   // some bytes arrived during this call
	best      int64  // the largest the partial file has been during this call
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
	if json.Unmarshal(b, &m) != nil {
		return
	}
	if m.URL != d.url {
		// Bytes from another source: resuming them from this one would splice
		// two files.
		d.prog.note(fmt.Sprintf("%s: the partial download came from %s; starting over from %s", filepath.Base(d.dest), m.URL, d.url))
		d.truncate()
		return
	}
	d.validator = m.Validator
	if d.total == 0 {
		d.total = m.Total
	}
}

func (d *transfer) saveMeta() {
	b, _ := json.Marshal(partialMeta{URL: d.url, Validator: d.validator, Total: d.total})
	_ = atomicfile.WriteBytes(d.metaPath(), b) // best effort: without it resume is unguarded
}

// run loops over attempts until the partial file holds the whole body, within the
// limits of Options: consecutive attempts that bring no new byte, all attempts,
// and the time spent on the file.
func (d *transfer) run() error {
	d.total = d.want.Size
	d.prog = newProgress(d.opts.Progress, filepath.Base(d.dest), d.opts.ProgressInterval)
	defer d.prog.done()
	d.loadMeta()
	maxTime := d.opts.maxTime()
	ctx, cancel := context.WithTimeoutCause(d.ctx, maxTime,
		fmt.Errorf("spent %v on it, the most for one file: %w", maxTime, context.DeadlineExceeded))
	defer cancel()
	d.ctx = ctx
	d.best = d.partialSize()
	fruitless, restarts := 0, 0
	for attempts := 1; ; attempts++ {
		done, err := d.attempt()
		if done {
			return nil
		}
		if d.ctx.Err() != nil {
			return fmt.Errorf("loaders: download: %s: %w (partial kept at %s; rerun to resume)", d.url, context.Cause(d.ctx), d.partial)
		}
		if err == nil {
			// Restart requested (the server refused or garbled the range); a server
			// that keeps doing so is broken, not slow.
			if restarts++; restarts > 3 {
				return fmt.Errorf("loaders: download: %s: server keeps refusing the byte range; partial removed", d.url)
			}
		} else {
			var pe *permanentError
			if errors.As(err, &pe) {
				return pe.err
			}
			if isOffline(err) && !d.received {
				return &OfflineError{URL: d.url, Path: d.dest, Err: err}
			}
			// Only new bytes count as progress: a server that cuts every answer
			// and ignores Range sends the same first bytes again and again.
			if size := d.partialSize(); size > d.best {
				d.best, fruitless = size, 0
			} else {
				fruitless++
			}
			if d.opts.Retries < 0 {
				return fmt.Errorf("loaders: download: %s: %w (retries off; partial kept at %s; rerun to resume)", d.url, err, d.partial)
			}
			if fruitless > d.opts.retries() {
				return fmt.Errorf("loaders: download: %s: giving up after %d attempts, the last %d without a new byte: %w (partial kept at %s; rerun to resume)",
					d.url, attempts, fruitless, err, d.partial)
			}
		}
		if attempts >= d.opts.maxAttempts() {
			last := err
			if last == nil {
				last = errors.New("the server refused the byte range")
			}
			return fmt.Errorf("loaders: download: %s: giving up after %d attempts, the most for one file: %w (partial kept at %s; rerun to resume)",
				d.url, attempts, last, d.partial)
		}
		var stalled *stallError
		if err == nil || errors.As(err, &stalled) {
			// A timed-out attempt has waited long enough already.
			if err != nil {
				d.prog.note(fmt.Sprintf("%s: %v; retrying", filepath.Base(d.dest), err))
			}
			continue
		}
		wait := d.opts.backoff(max(fruitless, 1))
		d.prog.note(fmt.Sprintf("%s: %v; retrying in %v", filepath.Base(d.dest), err, wait))
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return fmt.Errorf("loaders: download: %s: %w (partial kept at %s; rerun to resume)", d.url, context.Cause(d.ctx), d.partial)
		case <-t.C:
		}
	}
}

// partialSize returns the size of the partial file, 0 when there is none.
func (d *transfer) partialSize() int64 {
	fi, err := os.Stat(d.partial)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// permanentError is a failure that retrying cannot fix (404, 403, bad data).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

// attempt makes one request, watched by a watchdog. It returns done when the partial
// file is complete, a nil error with done false to restart at once, or the error of
// a failed attempt (a *permanentError is not retried).
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
	ctx, wd := watch(d.ctx, d.timeout)
	defer wd.done()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
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
		return false, cause(req.Context(), err)
	}
	defer resp.Body.Close()
	wd.gotAnswer()

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
	n, copyErr := io.Copy(f, io.TeeReader(resp.Body, io.MultiWriter(d.prog, wd)))
	copyErr = cause(ctx, copyErr)
	syncErr := f.Sync()
	closeErr := f.Close()
	if n > 0 {
		d.received = true
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return false, &permanentError{fmt.Errorf("loaders: download: writing %s: %w", d.partial, err)}
	}
	if copyErr != nil {
		return false, copyErr
	}
	if d.total > 0 && offset+n < d.total {
		return false, fmt.Errorf("connection closed after %d of %d bytes", offset+n, d.total)
	}
	if d.total == 0 {
		d.total = offset + n
	}
	return true, nil
}

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
	if d.want.Check != nil {
		if err := d.want.Check(d.partial); err != nil {
			d.discard()
			return fmt.Errorf("loaders: download: %s: not kept as %s: %v (check the URL)", d.url, d.dest, err)
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
