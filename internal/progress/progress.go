// Package progress prints throttled progress lines (done/total, items/s, ETA) for long
// work, to stderr or any writer. A nil *Bar is valid and prints nothing.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Bar reports progress of a counted task.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	unit    string
	total   int
	done    int
	start   time.Time
	last    time.Time
	every   time.Duration
	printed bool
}

// New returns a Bar writing to w that prints at most every 500ms. total may be 0 when
// unknown. unit names the items ("img", "prompts").
func New(w io.Writer, label string, total int, unit string) *Bar {
	if w == nil {
		return nil
	}
	now := time.Now()
	return &Bar{w: w, label: label, unit: unit, total: total, start: now, every: 500 * time.Millisecond}
}

// Add records n more items done, printing a line when enough time has passed.
func (b *Bar) Add(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	now := time.Now()
	if now.Sub(b.last) >= b.every {
		b.last = now
		b.print(now, false)
	}
}

// Done prints the final line with the overall rate.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.print(time.Now(), true)
}

func (b *Bar) print(now time.Time, final bool) {
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
	} else if b.total > 0 && rate > 0 {
		line += ", ETA " + (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintln(b.w, line)
	b.printed = true
}
