//go:build !unix

package cli

// cpuSeconds is 0 where getrusage does not exist: bench then reports no CPU times.
func cpuSeconds() float64 { return 0 }
