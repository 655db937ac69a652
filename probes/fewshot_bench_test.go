package probes

import "testing"

// benchFewShot fits name on a 16-shot, 10-class, 512-dimensional problem (with its
// 4-per-class validation set), the size the few-shot literature reports on.
func benchFewShot(b *testing.B, name string) {
	p, _ := fewShotProblem(b, 1, 16, 512)
	m, err := NewMethod(name)
	if err != nil {
		b.Fatal(err)
	}
	if lr, ok := m.(*LogReg); ok {
		lr.Sweep = true
	}
	if !m.NeedsValidation() {
		p.Val = Dataset{}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := m.Fit(p)
		if err != nil {
			b.Fatal(err)
		}
		benchFitted = f
	}
}

var benchFitted *Fitted

// BenchmarkFewShotFit times every method's fit in one run, so that each reads against
// the paper's probe (logreg, with its sweep over C) measured on the same cores.
func BenchmarkFewShotFit(b *testing.B) {
	for _, name := range MethodNames() {
		b.Run(name, func(b *testing.B) { benchFewShot(b, name) })
	}
}
