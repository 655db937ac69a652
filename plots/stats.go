package plots

import (
	"math"
	"sort"

	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// Metric names of linear-probe results (CLIP_benchmark's, with the lp_ prefix).
const (
	metricLPAcc1   = "lp_acc1"
	metricLPAcc5   = "lp_acc5"
	metricLPRecall = "lp_mean_per_class_recall"
)

// Metric names of zero-shot results.
const (
	metricAcc1     = "acc1"
	metricAcc5     = "acc5"
	metricRecall   = "mean_per_class_recall"
	metricAcc1Low  = results.MetricAcc1Low
	metricAcc1High = results.MetricAcc1High
)

// MeanStd is a mean and sample standard deviation (n-1 in the denominator; 0 for a
// single value) over the N non-NaN values of a metric. Mean is NaN when N is 0.
type MeanStd struct {
	Mean, Std float64
	N         int
}

func meanStd(xs []float64) MeanStd {
	var s MeanStd
	var sum float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			sum += x
			s.N++
		}
	}
	if s.N == 0 {
		return MeanStd{Mean: math.NaN(), Std: math.NaN()}
	}
	s.Mean = sum / float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range xs {
			if !math.IsNaN(x) {
				ss += (x - s.Mean) * (x - s.Mean)
			}
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// ShotStats aggregates the probe results of one method at one k over seeds.
// Accuracies are fractions.
type ShotStats struct {
	// Method is the results' method (logreg for results without one).
	Method string
	// Shots is k; 0 means the full training set.
	Shots int
	// Seeds is the number of results aggregated.
	Seeds int
	// Acc1, Acc5 and Recall are lp_acc1, lp_acc5 and lp_mean_per_class_recall.
	Acc1, Acc5, Recall MeanStd
	// CMin and CMax are the range of the chosen C (0 when unknown).
	CMin, CMax float64
	// Train is the largest number of training examples used (0 when unknown); Val
	// the largest number of validation examples (0 when none).
	Train, Val int
}

// SummarizeProbes groups the results of the CLIP paper's linear probe (logreg, or
// no method) by k and returns mean and standard deviation over
// seeds, k ascending with full data (Shots 0) last. SummarizeMethods does the same
// for every method.
func SummarizeProbes(probes []results.Result) []ShotStats {
	return summarizeK(paperProbes(probes))
}

// SummarizeMethods groups probe results by method, in the order the methods first
// appear, and within each by k as SummarizeProbes does.
func SummarizeMethods(probes []results.Result) []ShotStats {
	var order []string
	by := map[string][]results.Result{}
	for _, r := range probes {
		m := methodOf(r)
		if _, ok := by[m]; !ok {
			order = append(order, m)
		}
		by[m] = append(by[m], r)
	}
	var out []ShotStats
	for _, m := range order {
		out = append(out, summarizeK(by[m])...)
	}
	return out
}

// methodOf returns the method of probe result r: its Method, or the paper's probe
// for results written before there were others (even without a task).
func methodOf(r results.Result) string {
	if r.Method == "" {
		return results.MethodLogReg
	}
	return r.Method
}

// paperProbes returns the results of the CLIP paper's probe among probes.
func paperProbes(probes []results.Result) []results.Result {
	var out []results.Result
	for _, r := range probes {
		if methodOf(r) == results.MethodLogReg {
			out = append(out, r)
		}
	}
	return out
}

// summarizeK summarises the results of one method per k.
func summarizeK(probes []results.Result) []ShotStats {
	byK := map[int][]results.Result{}
	for _, r := range probes {
		byK[r.Shots] = append(byK[r.Shots], r)
	}
	out := make([]ShotStats, 0, len(byK))
	for k, rs := range byK {
		st := ShotStats{Method: methodOf(rs[0]), Shots: k, Seeds: len(rs)}
		var a1, a5, rec []float64
		for i, r := range rs {
			a1 = append(a1, metric(r, metricLPAcc1))
			a5 = append(a5, metric(r, metricLPAcc5))
			rec = append(rec, metric(r, metricLPRecall))
			if i == 0 || r.C < st.CMin {
				st.CMin = r.C
			}
			if r.C > st.CMax {
				st.CMax = r.C
			}
			st.Train, st.Val = max(st.Train, r.Train), max(st.Val, r.Val)
		}
		st.Acc1, st.Acc5, st.Recall = meanStd(a1), meanStd(a5), meanStd(rec)
		out = append(out, st)
	}
	sortShots(out)
	return out
}

// comparisonStats returns the statistics of cmp's linear probe (logreg), as
// methodStats gives them.
func comparisonStats(cmp *results.Comparison) []ShotStats {
	var out []ShotStats
	for _, s := range methodStats(cmp) {
		if s.Method == results.MethodLogReg {
			out = append(out, s)
		}
	}
	return out
}

// methodStats returns the statistics of every method of cmp (SummarizeMethods): from
// its probe results when it has them, otherwise from its summary (top-1 only).
func methodStats(cmp *results.Comparison) []ShotStats {
	if len(cmp.Probes) > 0 {
		return SummarizeMethods(cmp.Probes)
	}
	var order []string
	by := map[string][]ShotStats{}
	nan := MeanStd{Mean: math.NaN(), Std: math.NaN()}
	for _, s := range cmp.Summary {
		n := s.Seeds
		if n == 0 && !math.IsNaN(float64(s.Mean)) {
			n = 1
		}
		std := float64(s.Std)
		if math.IsNaN(std) {
			std = 0
		}
		m := s.MethodName()
		if _, ok := by[m]; !ok {
			order = append(order, m)
		}
		by[m] = append(by[m], ShotStats{Method: m, Shots: s.Shots, Seeds: s.Seeds, Val: s.Val,
			Acc1: MeanStd{Mean: float64(s.Mean), Std: std, N: n}, Acc5: nan, Recall: nan})
	}
	var out []ShotStats
	for _, m := range order {
		sortShots(by[m])
		out = append(out, by[m]...)
	}
	return out
}

func sortShots(s []ShotStats) {
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i].Shots, s[j].Shots
		if a == 0 || b == 0 {
			return b == 0 && a != 0
		}
		return a < b
	})
}

// metric returns r.Metrics[name], NaN when absent.
func metric(r results.Result, name string) float64 {
	if v, ok := r.Metrics[name]; ok {
		return float64(v)
	}
	return math.NaN()
}

// MatchKind says where a zero-shot accuracy falls on the k-shot probe curve.
type MatchKind int

const (
	// MatchNone means there is no k-shot probe to compare with.
	MatchNone MatchKind = iota
	// MatchBelow means zero-shot is below the probe with the fewest shots.
	MatchBelow
	// MatchBetween means the probe curve crosses zero-shot between two k.
	MatchBetween
	// MatchAbove means zero-shot beats the probe with the most shots (full data aside).
	MatchAbove
)

// Match is the CLIP paper's "zero-shot matches a k-shot linear probe" statistic.
type Match struct {
	Kind MatchKind
	// Shots is the interpolated k for MatchBetween; otherwise the k of the nearest end
	// of the curve (the smallest k for MatchBelow, the largest for MatchAbove).
	Shots float64
	// Lo and Hi bracket Shots for MatchBetween (the k-shot probes crossed).
	Lo, Hi ShotStats
}

// MatchShots returns the k at which the mean top-1 accuracy of the k-shot probes in
// stats first reaches zeroShot (a fraction), interpolating linearly in log2 k between
// neighbouring k as the paper does. Full-data results (Shots 0) and k without a mean
// are ignored.
func MatchShots(zeroShot float64, stats []ShotStats) Match {
	var pts []ShotStats
	for _, s := range stats {
		if s.Shots > 0 && !math.IsNaN(s.Acc1.Mean) {
			pts = append(pts, s)
		}
	}
	sortShots(pts)
	if len(pts) == 0 || math.IsNaN(zeroShot) {
		return Match{Kind: MatchNone}
	}
	if zeroShot < pts[0].Acc1.Mean {
		return Match{Kind: MatchBelow, Shots: float64(pts[0].Shots), Lo: pts[0], Hi: pts[0]}
	}
	for i := 0; i+1 < len(pts); i++ {
		lo, hi := pts[i], pts[i+1]
		if lo.Acc1.Mean <= zeroShot && zeroShot <= hi.Acc1.Mean {
			l0, l1 := math.Log2(float64(lo.Shots)), math.Log2(float64(hi.Shots))
			t := 0.0
			if d := hi.Acc1.Mean - lo.Acc1.Mean; d > 0 {
				t = (zeroShot - lo.Acc1.Mean) / d
			}
			return Match{Kind: MatchBetween, Shots: math.Exp2(l0 + t*(l1-l0)), Lo: lo, Hi: hi}
		}
	}
	last := pts[len(pts)-1]
	if zeroShot == last.Acc1.Mean {
		return Match{Kind: MatchBetween, Shots: float64(last.Shots), Lo: last, Hi: last}
	}
	return Match{Kind: MatchAbove, Shots: float64(last.Shots), Lo: last, Hi: last}
}

// perClass returns the per-class accuracy of r: PerClassAccuracy when present, else
// the diagonal of the confusion matrix over its row sums; nil when neither exists.
func perClass(r results.Result) []float64 {
	if len(r.PerClassAccuracy) > 0 {
		out := make([]float64, len(r.PerClassAccuracy))
		for i, v := range r.PerClassAccuracy {
			out[i] = float64(v)
		}
		return out
	}
	if len(r.Confusion) == 0 {
		return nil
	}
	out := make([]float64, len(r.Confusion))
	for i, row := range r.Confusion {
		var n int
		for _, v := range row {
			n += v
		}
		out[i] = math.NaN()
		if n > 0 && i < len(row) {
			out[i] = float64(row[i]) / float64(n)
		}
	}
	return out
}
