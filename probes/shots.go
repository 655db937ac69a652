package probes

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// newRand returns the package's seeded generator: PCG, so that a seed picks the same
// shots and splits on every platform and Go version.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// ErrTooFewExamples reports a class with fewer examples than the shots asked for; a
// comparison may skip that k rather than fail (see experiments.Compare).
var ErrTooFewExamples = errors.New("fewer examples than shots")

// SampleShots picks k examples of each of numClasses classes from labels: the first k
// of each class in a permutation drawn from seed. It returns their indices in
// increasing order, or an error naming a class with fewer than k examples.
func SampleShots(labels []int, numClasses, k int, seed uint64) ([]int, error) {
	if k < 1 {
		return nil, fmt.Errorf("probes: %d shots; need at least 1", k)
	}
	taken := make([]int, numClasses)
	var idx []int
	for _, i := range newRand(seed).Perm(len(labels)) {
		y := labels[i]
		if y < 0 || y >= numClasses {
			return nil, fmt.Errorf("probes: label %d of example %d is outside [0, %d)", y, i, numClasses)
		}
		if taken[y] < k {
			taken[y]++
			idx = append(idx, i)
		}
	}
	for c, n := range taken {
		if n < k {
			return nil, fmt.Errorf("probes: class %d has %d examples, fewer than %d shots: %w", c, n, k, ErrTooFewExamples)
		}
	}
	sort.Ints(idx)
	return idx, nil
}

// SplitValidation holds out about fraction of each class's examples for validation,
// chosen by seed; classes with a single example stay in training. Both index lists
// are in increasing order.
func SplitValidation(labels []int, numClasses int, fraction float64, seed uint64) (train, val []int, err error) {
	if !(fraction > 0 && fraction < 1) {
		return nil, nil, fmt.Errorf("probes: validation fraction %v is not in (0, 1)", fraction)
	}
	byClass := make([][]int, numClasses)
	for i, y := range labels {
		if y < 0 || y >= numClasses {
			return nil, nil, fmt.Errorf("probes: label %d of example %d is outside [0, %d)", y, i, numClasses)
		}
		byClass[y] = append(byClass[y], i)
	}
	rng := newRand(seed)
	for _, members := range byClass {
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		nv := int(math.Round(fraction * float64(len(members))))
		nv = min(max(nv, 1), len(members)-1) // keep one of each on both sides where possible
		val = append(val, members[:max(nv, 0)]...)
		train = append(train, members[max(nv, 0):]...)
	}
	sort.Ints(train)
	sort.Ints(val)
	if len(val) == 0 {
		return nil, nil, fmt.Errorf("probes: no class has two examples to split off validation")
	}
	return train, val, nil
}

// MeanStd returns the mean and the sample standard deviation (n-1; 0 for a single
// value) of xs, as reported over k-shot seeds. Both are NaN for no values.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) == 1 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}
