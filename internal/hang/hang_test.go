package hang

import (
	"errors"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
}

func TestWithin(t *testing.T) {
	want := errors.New("done")
	if err := Within(t, time.Second, "quick", func() error { return want }); err != want {
		t.Fatalf("got %v want %v", err, want)
	}
	r := &recorder{TB: t}
	block := make(chan struct{})
	defer close(block)
	Within(r, 10*time.Millisecond, "blocked", func() error { <-block; return nil })
	if !r.failed {
		t.Fatal("a call still blocked after the deadline did not fail the test")
	}
}
