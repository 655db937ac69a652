package probes

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	for i, test := range []struct {
		scores    []float32
		labels    []int
		k         int
		top1      float64
		top5      float64
		mpcr      float64
		perClass  []float64
		confusion [][]int
	}{
		{ // 3 classes: top-5 undefined; class 2 never occurs
			scores: []float32{0.9, 0.1, 0, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1},
			labels: []int{0, 1, 1},
			k:      3,
			top1:   2.0 / 3, top5: nan, mpcr: (1 + 0.5) / 2,
			perClass:  []float64{1, 0.5, nan},
			confusion: [][]int{{1, 0, 0}, {1, 1, 0}, {0, 0, 0}},
		},
		{ // ties go to the lower index, as argmax: class 1 ties with class 0 and loses
			scores: []float32{1, 1, 0, 0, 1, 1},
			labels: []int{1, 1},
			k:      3,
			top1:   0.5, top5: nan, mpcr: 0.5,
			perClass:  []float64{nan, 0.5, nan},
			confusion: [][]int{{0, 0, 0}, {1, 1, 0}, {0, 0, 0}},
		},
		{ // 6 classes: the true class ranked 5th counts for top-5, 6th does not
			scores: []float32{6, 5, 4, 3, 2, 1, 6, 5, 4, 3, 2, 1},
			labels: []int{4, 5},
			k:      6,
			top1:   0, top5: 0.5, mpcr: 0,
			perClass:  []float64{nan, nan, nan, nan, 0, 0},
			confusion: [][]int{{0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0}},
		},
	} {
		m, err := Evaluate(test.scores, test.labels, test.k)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-12 }
		if !same(m.Top1, test.top1) || !same(m.Top5, test.top5) || !same(m.MeanPerClassRecall, test.mpcr) {
			t.Errorf("test %d: got top1 %v top5 %v mpcr %v want %v %v %v", i, m.Top1, m.Top5, m.MeanPerClassRecall, test.top1, test.top5, test.mpcr)
		}
		if !slices.EqualFunc(m.PerClass, test.perClass, same) {
			t.Errorf("test %d: got per-class %v want %v", i, m.PerClass, test.perClass)
		}
		if !slices.EqualFunc(m.Confusion, test.confusion, slices.Equal) {
			t.Errorf("test %d: got confusion %v want %v", i, m.Confusion, test.confusion)
		}
	}
	for i, test := range []struct {
		scores []float32
		labels []int
		k      int
		want   string
	}{
		{[]float32{1, 2}, []int{0, 1}, 2, "2 scores for 2 examples"},
		{[]float32{1, 2}, []int{2}, 2, "label 2 of example 0"},
		{nil, nil, 2, "no examples"},
		{[]float32{1}, []int{0}, 0, "0 classes"},
	} {
		if _, err := Evaluate(test.scores, test.labels, test.k); err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("error test %d: got %v want %q", i, err, test.want)
		}
	}
}

func TestSampleShots(t *testing.T) {
	t.Parallel()
	labels := make([]int, 100)
	for i := range labels {
		labels[i] = i % 4
	}
	a, err := SampleShots(labels, 4, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	count := make([]int, 4)
	for _, i := range a {
		count[labels[i]]++
	}
	if !slices.Equal(count, []int{5, 5, 5, 5}) || !slices.IsSorted(a) {
		t.Errorf("got per-class counts %v (indices %v) want 5 each, sorted", count, a)
	}
	b, _ := SampleShots(labels, 4, 5, 1)
	c, _ := SampleShots(labels, 4, 5, 2)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 1 twice: %v %v; seed 2: %v: want equal, then different", a, b, c)
	}
	if _, err := SampleShots(labels, 5, 1, 1); err == nil || !strings.Contains(err.Error(), "class 4 has 0 examples") {
		t.Errorf("absent class: got %v", err)
	}
	if _, err := SampleShots(labels, 4, 0, 1); err == nil {
		t.Errorf("0 shots: got no error")
	}
}

func TestSplitValidation(t *testing.T) {
	t.Parallel()
	labels := []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2}
	tr, va, err := SplitValidation(labels, 3, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	valCount := make([]int, 3)
	for _, i := range va {
		seen[i] = true
		valCount[labels[i]]++
	}
	for _, i := range tr {
		if seen[i] {
			t.Fatalf("index %d in both splits", i)
		}
		seen[i] = true
	}
	if len(seen) != len(labels) || !slices.Equal(valCount, []int{2, 1, 0}) {
		t.Errorf("got %d indices, validation counts %v; want %d, [2 1 0]", len(seen), valCount, len(labels))
	}
	if _, _, err := SplitValidation(labels, 3, 1, 7); err == nil {
		t.Errorf("fraction 1: got no error")
	}
}

func TestMeanStd(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		xs        []float64
		mean, std float64
	}{
		{[]float64{2, 4, 6}, 4, 2},
		{[]float64{3}, 3, 0},
	} {
		m, s := MeanStd(test.xs)
		if m != test.mean || s != test.std {
			t.Errorf("test %d: got %v, %v want %v, %v", i, m, s, test.mean, test.std)
		}
	}
	if m, _ := MeanStd(nil); !math.IsNaN(m) {
		t.Errorf("no values: got mean %v want NaN", m)
	}
}

func ExampleEvaluate() {
	// Three examples of three classes; scores are [N, K] row-major.
	scores := []float32{
		0.9, 0.1, 0.0,
		0.2, 0.7, 0.1,
		0.6, 0.3, 0.1,
	}
	m, _ := Evaluate(scores, []int{0, 1, 2}, 3)
	fmt.Printf("top-1 %.3f, top-5 %v, per class %v\n", m.Top1, m.Top5, m.PerClass)
	fmt.Println(m.Confusion)
	// Output:
	// top-1 0.667, top-5 NaN, per class [1 1 0]
	// [[1 0 0] [0 1 0] [1 0 0]]
}
