// Package progress reports long work on stderr: done/total, items/s and ETA.
//
// On a terminal a Bar is one status line redrawn in place; anywhere else (a log
// file, a pipe, CI) it prints a line at most every Every, which is about a line per
// batch. Write other messages through a Log wrapped around the same writer and they
// appear above the status line instead of through it. A nil *Bar is valid and prints
// nothing.
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Every is how often a Bar prints when its writer is not a terminal.
const Every = 500 * time.Millisecond

// redrawEvery is how often a Bar redraws its terminal status line.
const redrawEvery = 100 * time.Millisecond

// IsTerminal reports whether w is a character device such as a terminal (not a
// file, pipe or buffer).
func IsTerminal(w io.Writer) bool {
	if l, ok := w.(*Log); ok {
		return l.tty
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Log is a writer shared by messages and Bars. On a terminal it keeps the current
// status line at the bottom: a message clears it, is written, and the status line
// is drawn again below it. Elsewhere it passes writes through. It is safe for
// concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	status string // the status line shown, "" when none
}

// NewLog wraps w; a *Log is returned as it is.
func NewLog(w io.Writer) *Log {
	if l, ok := w.(*Log); ok {
		return l
	}
	return &Log{w: w, tty: IsTerminal(w)}
}

// Write writes p above the status line.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.tty || l.status == "" {
		return l.w.Write(p)
	}
	var b bytes.Buffer
	b.WriteString("\r\x1b[K")
	b.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(l.status)
	if _, err := l.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// statusWidth is the longest status line drawn: a longer one would wrap, and "\r"
// only returns to the start of its last row. $COLUMNS overrides it.
func statusWidth() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("COLUMNS"), &n); err == nil && n > 20 {
		return n - 1
	}
	return 99
}

// setStatus redraws the status line (terminal only), cut to the terminal's width.
func (l *Log) setStatus(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := []rune(s); len(r) > statusWidth() {
		s = string(r[:statusWidth()-1]) + "…"
	}
	l.status = s
	fmt.Fprint(l.w, "\r\x1b[K"+s)
}

// finish replaces the status line by s as an ordinary line.
func (l *Log) finish(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status = ""
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	fmt.Fprintln(l.w, s)
}

// Bar reports progress of a counted task.
type Bar struct {
	mu     sync.Mutex
	log    *Log
	label  string
	unit   string
	total  int
	done   int
	detail string
	start  time.Time
	last   time.Time
}

// New returns a Bar writing to w (wrapped in a Log; pass the Log the other messages
// go through so that they do not cut the status line). total may be 0 when unknown;
// unit names the items ("img", "prompts"). A nil w gives a nil Bar.
func New(w io.Writer, label string, total int, unit string) *Bar {
	if w == nil {
		return nil
	}
	return &Bar{log: NewLog(w), label: label, unit: unit, total: total, start: time.Now()}
}

// Add records n more items done and shows the progress when it is time to.
func (b *Bar) Add(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.show(time.Now())
}

// Set records that done items are done in all, for callers that count in totals.
func (b *Bar) Set(done int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.show(time.Now())
}

// Detail sets a note shown after the counts (the step within the current item,
// say), and shows it when it is time to.
func (b *Bar) Detail(format string, args ...any) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detail = fmt.Sprintf(format, args...)
	b.show(time.Now())
}

// show prints or redraws the line when enough time has passed since the last one
// (Every on a log, redrawEvery on a terminal); the first call always shows.
func (b *Bar) show(now time.Time) {
	every := Every
	if b.log.tty {
		every = redrawEvery
	}
	if !b.last.IsZero() && now.Sub(b.last) < every {
		return
	}
	b.last = now
	line := b.line(now, false)
	if b.log.tty {
		b.log.setStatus(line)
		return
	}
	b.log.finish(line)
}

// Done prints the final line with the overall rate.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log.finish(b.line(time.Now(), true))
}

func (b *Bar) line(now time.Time, final bool) string {
	el := now.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	line := fmt.Sprintf("%s: %d", b.label, b.done)
	if b.total > 0 {
		line += fmt.Sprintf("/%d (%.0f%%)", b.total, 100*float64(b.done)/float64(b.total))
	}
	line += fmt.Sprintf(" %s, %.1f %s/s", b.unit, rate, b.unit)
	if final {
		line += fmt.Sprintf(", %.1fs", el)
	} else {
		if b.total > 0 && rate > 0 {
			line += ", ETA " + (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second).String()
		}
		if b.detail != "" {
			line += "; " + b.detail
		}
	}
	return line
}
