package download

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress reports a transfer on w at most once per interval. It is an io.Writer so
// that it can sit in an io.TeeReader; it never fails the transfer.
type progress struct {
	w        io.Writer
	name     string
	interval time.Duration
	tty      bool // redraw one line with \r instead of printing lines

	mu       sync.Mutex
	began    time.Time // start of the current attempt
	base     int64     // bytes on disk when the attempt began
	n        int64     // bytes received in this attempt
	total    int64
	last     time.Time
	drawn    bool // a \r line is on screen and needs a newline
	reported bool // at least one line was printed
	now      func() time.Time
}

func newProgress(w io.Writer, name string, interval time.Duration) *progress {
	if interval <= 0 {
		interval = DefaultProgressInterval
	}
	p := &progress{w: w, name: name, interval: interval, now: time.Now}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// start begins an attempt that resumes at base bytes of total (0: unknown).
func (p *progress) start(base, total int64) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.began, p.base, p.n, p.total = p.now(), base, 0, total
	p.last = p.began
	if base > 0 {
		p.line(fmt.Sprintf("%s: resuming at %s", p.name, mb(base)))
	}
}

// Write counts bytes and prints a line when the interval has passed.
func (p *progress) Write(b []byte) (int, error) {
	if p == nil || p.w == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(len(b))
	if t := p.now(); t.Sub(p.last) >= p.interval {
		p.last = t
		p.draw(t)
	}
	return len(b), nil
}

// draw prints "name: 12.3 MB / 45.6 MB (27%) 5.1 MB/s ETA 6s".
func (p *progress) draw(t time.Time) {
	elapsed := t.Sub(p.began).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.n) / elapsed
	}
	have := p.base + p.n
	s := fmt.Sprintf("%s: %s", p.name, mb(have))
	if p.total > 0 {
		s += fmt.Sprintf(" / %s (%.0f%%)", mb(p.total), 100*float64(have)/float64(p.total))
	}
	s += fmt.Sprintf(" %.1f MB/s", rate/1e6)
	if p.total > 0 && rate > 0 {
		eta := time.Duration(float64(p.total-have) / rate * float64(time.Second))
		s += " ETA " + eta.Round(time.Second).String()
	}
	p.line(s)
}

func (p *progress) line(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, s)
	}
	p.reported = true
}

// note prints a message (a retry, a restart) on its own line.
func (p *progress) note(s string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	fmt.Fprintln(p.w, s)
}

// done prints the final state when anything was reported, and ends the line.
func (p *progress) done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reported {
		p.draw(p.now())
	}
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
