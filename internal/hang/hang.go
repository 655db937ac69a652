// Package hang lets a test fail, instead of blocking the whole test binary, when
// the code under test waits forever (on a FIFO, a stalled server, a quadratic loop).
package hang

import (
	"testing"
	"time"
)

// Within runs f and returns its error, failing tb if f has not returned after d;
// what names the call in that failure. f's goroutine is left behind then: the test
// has failed and the binary ends soon.
func Within(tb testing.TB, d time.Duration, what string, f func() error) error {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		tb.Fatalf("%s: still running after %v", what, d)
		return nil
	}
}
