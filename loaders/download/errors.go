package download

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrOffline is matched (errors.Is) by every *OfflineError.
var ErrOffline = errors.New("loaders: download: network unreachable")

// OfflineError reports that a file could not be fetched because the network or host is
// unreachable. Its message says what to download and where to put it, so that a run
// without network can be completed by hand.
type OfflineError struct {
	// URL is what could not be fetched.
	URL string
	// Path is where gorgoclip expects the file (or, with Hint, the directory).
	Path string
	// Hint replaces the default instruction "download URL and save it as Path".
	Hint string
	// Err is the underlying network error.
	Err error
}

// Error says what could not be reached and how to continue without network.
func (e *OfflineError) Error() string {
	hint := e.Hint
	if hint == "" && e.Path != "" {
		hint = fmt.Sprintf("download %s elsewhere and save it as %s, then rerun", e.URL, e.Path)
	}
	if hint == "" {
		return fmt.Sprintf("loaders: download: cannot reach %s (offline?): %v", e.URL, e.Err)
	}
	return fmt.Sprintf("loaders: download: cannot reach %s (offline?): %v\n  to continue without network: %s", e.URL, e.Err, hint)
}

// Unwrap returns the network error.
func (e *OfflineError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrOffline) true.
func (e *OfflineError) Is(target error) bool { return target == ErrOffline }

// isOffline reports whether err means the host cannot be reached at all (as opposed to
// a connection that was established and then failed).
func isOffline(err error) bool {
	if errors.Is(err, ErrOffline) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}
