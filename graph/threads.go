package graph

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// threads is the number of goroutines the Go kernels split their rows over (and, with
// OpenBLAS, the size of its thread pool). See SetThreads.
var threads atomic.Int32

func init() { SetThreads(0) }

// SetThreads sets how many cores a graph run uses: the Go kernels (LayerNorm,
// activations, attention over batch x heads) split their work over n goroutines, and
// OpenBLAS, in the openblas build, runs its GEMMs on n threads. The two take turns, so
// n = the cores to use avoids oversubscription. n <= 0 means runtime.GOMAXPROCS(0)
// (the default). gonum's pure-Go BLAS ignores it and follows GOMAXPROCS. Set it
// before running graphs, not during a run.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	threads.Store(int32(n))
	setBLASThreads(n)
}

// Threads returns the value set by SetThreads.
func Threads() int { return int(threads.Load()) }

// parallel calls f over [0,n) split into at most Threads() contiguous chunks of at
// least grain items, running the chunks on separate goroutines, and waits.
func parallel(n, grain int, f func(lo, hi int)) {
	w := min(Threads(), (n+grain-1)/max(grain, 1))
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < w; i++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(i*n/w, (i+1)*n/w)
	}
	f(0, n/w)
	wg.Wait()
}
