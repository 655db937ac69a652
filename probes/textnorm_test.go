package probes

import (
	"slices"
	"strings"
	"testing"
)

// TestTextNorm checks the precedence of the prototypes' initial norm for ZS-LP and
// CLAP: an explicit InitNorm, else Problem.TextNorm, else DefaultInitNorm.
func TestTextNorm(t *testing.T) {
	p, test := fewShotProblem(t, 3, 4, 64)
	p.Val = Dataset{}
	scores := func(m Method, textNorm float64) []float32 {
		t.Helper()
		q := p
		q.TextNorm = textNorm
		f, err := m.Fit(q)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.Scores(test.X, test.N)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i, test := range []struct {
		name      string
		a, b      Method
		na, nb    float64 // TextNorm of each fit
		wantEqual bool
	}{
		{"zs-lp: TextNorm is the init norm", &ZSLP{}, &ZSLP{InitNorm: 3}, 3, 0, true},
		{"clap: TextNorm is the init norm", &CLAP{}, &CLAP{InitNorm: 3}, 3, 0, true},
		{"zs-lp: InitNorm wins over TextNorm", &ZSLP{InitNorm: 10}, &ZSLP{}, 3, 0, true},
		{"zs-lp: unknown TextNorm is DefaultInitNorm", &ZSLP{}, &ZSLP{InitNorm: DefaultInitNorm}, 0, 0, true},
		{"zs-lp: the norm matters", &ZSLP{}, &ZSLP{}, 3, 0, false},
		{"clap: the norm matters", &CLAP{}, &CLAP{}, 30, 0, false},
	} {
		if got := slices.Equal(scores(test.a, test.na), scores(test.b, test.nb)); got != test.wantEqual {
			t.Errorf("test %d (%s): equal scores %v, want %v", i, test.name, got, test.wantEqual)
		}
	}
	p.TextNorm = -1
	if _, err := (&ZSLP{}).Fit(p); err == nil || !strings.Contains(err.Error(), "norm -1") {
		t.Errorf("negative TextNorm: got %v", err)
	}
}
