package graph

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// threads is the number of goroutines the Go kernels split their rows over (and, with
// OpenBLAS, the size of its thread pool). See SetThreads.
var threads atomic.Int32

func init() { SetThreads(0) }

// SetThreads sets how many cores a graph run uses: the Go kernels (LayerNorm,
// activations, attention over batch x heads) and oneDNN's GEMMs split their work
// over n goroutines (the caller's and n-1 of the crew, see runParts), and OpenBLAS,
// in the openblas build, runs its GEMMs on n threads. The two take turns, so
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
	runParts(w, func(i int) { f(i*n/w, (i+1)*n/w) })
}

// runParts calls f(0) .. f(parts-1), each on its own goroutine (f(0) on the caller's),
// and waits for them. The other parts run on the crew when it is free (one op at a
// time: a part that calls runParts itself, or a second graph running at the same
// time, gets fresh goroutines instead).
func runParts(parts int, f func(i int)) {
	if parts <= 1 {
		f(0)
		return
	}
	if !crew.mu.TryLock() {
		var wg sync.WaitGroup
		for i := 1; i < parts; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); f(i) }()
		}
		f(0)
		wg.Wait()
		return
	}
	defer crew.mu.Unlock()
	crew.run(parts, f)
}

// crew is the goroutines that run the parts of the ops. Between ops they spin for
// a while instead of parking: on the VMs measured, waking a parked goroutine's
// thread took 70 us to start a part and as long again to see it finish, a fifth of
// a 1 ms GEMM part of the text tower, whose ops follow each other within
// microseconds. The waiting goroutines yield (runtime.Gosched) as they spin, so other
// goroutines still get their turn, and park after a while (spinFor, joinSpin).
var crew team

// How long the crew spins before parking: a member waiting for the next op, and the
// caller waiting for the members' parts of its op. Ops follow each other within
// microseconds and parts end within a few hundred of each other when the cores are
// free; spinning longer only helps when they are not, and then it takes the cores
// from whatever else is running (with a busy process beside it, the text tower ran
// 30% slower spinning without a bound than parking at once; bounded, as fast).
const (
	spinFor  = 100 * time.Microsecond
	joinSpin = 300 * time.Microsecond
)

// team is a set of helper goroutines running parts 1.. of one op at a time.
type team struct {
	mu      sync.Mutex // held by the goroutine whose op the team runs
	members []*member
	op      atomic.Pointer[teamOp] // the latest op
}

// teamOp is one op given to a team.
type teamOp struct {
	f       func(int)
	parts   int
	gen     uint64       // ops given to the team before this one
	left    atomic.Int32 // parts the members have not finished
	waiting atomic.Bool
	done    chan struct{}
}

// member is one helper: it runs part i of every op with more than i parts.
type member struct {
	parked atomic.Bool
	wake   chan struct{}
}

// run runs f over parts with the team (the caller holds mu and runs part 0).
func (t *team) run(parts int, f func(int)) {
	var gen uint64
	if last := t.op.Load(); last != nil {
		gen = last.gen + 1
	}
	for len(t.members) < parts-1 {
		m := &member{wake: make(chan struct{}, 1)}
		t.members = append(t.members, m)
		go t.serve(len(t.members), m, gen)
	}
	op := &teamOp{f: f, parts: parts, gen: gen, done: make(chan struct{}, 1)}
	op.left.Store(int32(parts - 1))
	t.op.Store(op)
	for _, m := range t.members[:parts-1] {
		if m.parked.Load() {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	}
	f(0)
	for since := time.Now(); op.left.Load() > 0; runtime.Gosched() {
		if time.Since(since) > joinSpin {
			op.waiting.Store(true)
			if op.left.Load() > 0 { // the last member reads waiting after it counts down
				<-op.done
			}
			break
		}
	}
}

// serve is member m's loop: it runs part i of each op from the one numbered next on
// that has a part i (an op it has no part in may pass unseen).
func (t *team) serve(i int, m *member, next uint64) {
	for {
		var op *teamOp
		for since := time.Now(); ; {
			if op = t.op.Load(); op != nil && op.gen >= next {
				break
			}
			if time.Since(since) < spinFor {
				runtime.Gosched()
				continue
			}
			m.parked.Store(true)
			if op = t.op.Load(); op == nil || op.gen < next { // run stores op before it reads parked
				<-m.wake
			}
			m.parked.Store(false)
			since = time.Now()
		}
		next = op.gen + 1
		if i < op.parts {
			op.f(i)
			if op.left.Add(-1) == 0 && op.waiting.Load() {
				op.done <- struct{}{}
			}
		}
	}
}
