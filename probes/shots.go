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
	idx, count, err := firstPerClass(labels, numClasses, k, newRand(seed), nil)
	if err != nil {
		return nil, err
	}
	for c, n := range count {
		if n < k {
			return nil, fmt.Errorf("probes: class %d has %d examples, fewer than %d shots: %w", c, n, k, ErrTooFewExamples)
		}
	}
	return idx, nil
}

// firstPerClass returns, in increasing order, the indices of the first per examples
// of each class in a permutation of labels drawn from rng, passing over those marked
// in skip (nil: none), and how many it found of each class.
func firstPerClass(labels []int, numClasses, per int, rng *rand.Rand, skip []bool) (idx, count []int, err error) {
	count = make([]int, numClasses)
	for _, i := range rng.Perm(len(labels)) {
		y := labels[i]
		if y < 0 || y >= numClasses {
			return nil, nil, fmt.Errorf("probes: label %d of example %d is outside [0, %d)", y, i, numClasses)
		}
		if (skip == nil || !skip[i]) && count[y] < per {
			count[y]++
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	return idx, count, nil
}

// MaxValidationShots caps the validation examples per class of a k-shot problem: CoOp's
// protocol (Zhou et al. 2022), used by the few-shot CLIP literature, validates on
// min(k, 4) images per class.
const MaxValidationShots = 4

// ValidationShots is the validation size per class for k shots: min(k, 4).
func ValidationShots(k int) int { return min(k, MaxValidationShots) }

// SampleValidation draws per examples of each class from those not in shots, for
// validating a k-shot problem whose shots were drawn by SampleShots with the same
// seed. The draw has its own random stream, so the shots do not depend on whether a
// validation set is drawn. It returns the indices in increasing order, or an error
// naming a class with fewer than per examples left (wrapping ErrTooFewExamples).
func SampleValidation(labels []int, numClasses int, shots []int, per int, seed uint64) ([]int, error) {
	if per < 1 {
		return nil, fmt.Errorf("probes: %d validation examples per class; need at least 1", per)
	}
	taken := make([]bool, len(labels))
	for _, i := range shots {
		if i < 0 || i >= len(labels) {
			return nil, fmt.Errorf("probes: shot index %d outside [0, %d)", i, len(labels))
		}
		taken[i] = true
	}
	idx, count, err := firstPerClass(labels, numClasses, per, rand.New(rand.NewPCG(seed, validationStream)), taken)
	if err != nil {
		return nil, err
	}
	for c, n := range count {
		if n < per {
			return nil, fmt.Errorf("probes: class %d has %d examples besides its shots, fewer than the %d validation examples: %w", c, n, per, ErrTooFewExamples)
		}
	}
	return idx, nil
}

// validationStream is the PCG stream of SampleValidation (SampleShots uses newRand's).
const validationStream = 0x5851f42d4c957f2d

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
