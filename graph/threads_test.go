package graph

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunParts checks that every part of every op runs exactly once: ops of 1 to 5
// parts in turn (the crew grows), ops from several goroutines at once and parts
// that run ops themselves (both on fresh goroutines), ops after the crew has parked,
// and ops whose caller parks waiting for a slow part.
func TestRunParts(t *testing.T) {
	check := func(parts int, nested bool, slow ...time.Duration) {
		counts := make([]atomic.Int32, parts)
		runParts(parts, func(i int) {
			if i > 0 && len(slow) > 0 {
				time.Sleep(slow[0])
			}
			counts[i].Add(1)
			if nested {
				var inner atomic.Int32
				parallel(100, 1, func(lo, hi int) { inner.Add(int32(hi - lo)) })
				if inner.Load() != 100 {
					t.Errorf("a nested op covered %d of 100 items", inner.Load())
				}
			}
		})
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Errorf("%d parts: part %d ran %d times", parts, i, c)
			}
		}
	}
	for r := range 2000 {
		check(1+r%5, r%7 == 0)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 500 {
				check(2+r%3, false)
			}
		}()
	}
	wg.Wait()
	for range 3 {
		time.Sleep(3 * spinFor) // the crew parks
		check(3, false)
		check(2+rand.IntN(3), false, 2*joinSpin) // the caller parks
	}
}
