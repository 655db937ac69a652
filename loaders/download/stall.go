package download

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// stallError is why a watchdog cut an attempt. Like a dropped connection it is
// retried.
type stallError struct {
	timeout  time.Duration
	answered bool // the response headers had arrived
}

func (e *stallError) Error() string {
	if !e.answered {
		return fmt.Sprintf("no answer within %v (%s)", e.timeout, TimeoutEnv)
	}
	return fmt.Sprintf("stalled: less than %d bytes in %v (%s)", minStallBytes, e.timeout, TimeoutEnv)
}

// watchdog cancels an attempt whose server stalls: no response within the timeout,
// or less than minStallBytes of body in any window of that length. It is an
// io.Writer, fed the body as it arrives.
type watchdog struct {
	n        atomic.Int64 // bytes in the current window
	answered atomic.Bool
	stop     chan struct{}
	cancel   context.CancelCauseFunc
}

// watch starts a watchdog over an attempt made with the returned context; call
// done when the attempt is over.
func watch(ctx context.Context, timeout time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{stop: make(chan struct{}), cancel: cancel}
	go func() {
		t := time.NewTicker(timeout)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if w.n.Swap(0) < minStallBytes {
					cancel(&stallError{timeout: timeout, answered: w.answered.Load()})
					return
				}
			}
		}
	}()
	return ctx, w
}

// Write counts body bytes.
func (w *watchdog) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// gotAnswer records the response headers, which count as progress for the window
// they arrive in.
func (w *watchdog) gotAnswer() {
	w.answered.Store(true)
	w.n.Add(minStallBytes)
}

// done stops the watchdog and releases its context.
func (w *watchdog) done() {
	close(w.stop)
	w.cancel(nil)
}

// cause returns the watchdog's *stallError when it cut the attempt made with ctx,
// else err.
func cause(ctx context.Context, err error) error {
	if se, ok := context.Cause(ctx).(*stallError); ok {
		return se
	}
	return err
}
