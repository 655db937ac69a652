package probes

import (
	"fmt"
	"math"
)

// Metrics are CLIP_benchmark's classification metrics for one evaluation.
type Metrics struct {
	// Top1 and Top5 are accuracies in [0, 1]; Top5 is NaN with fewer than 5 classes.
	Top1, Top5 float64
	// MeanPerClassRecall averages the recall of the classes present in the labels
	// (scikit-learn's balanced_accuracy_score, which CLIP_benchmark uses).
	MeanPerClassRecall float64
	// PerClass is the recall (per-class accuracy) of each class; NaN for classes
	// absent from the labels.
	PerClass []float64
	// Confusion counts examples by true class (row) and predicted class (column).
	Confusion [][]int
}

// Evaluate scores predictions: scores is [N, numClasses] row-major (logits,
// probabilities or cosine similarities: only the order within a row matters) and
// labels holds the N true classes. Ties rank the lower class index first, as argmax
// does.
func Evaluate(scores []float32, labels []int, numClasses int) (Metrics, error) {
	n := len(labels)
	switch {
	case numClasses < 1:
		return Metrics{}, fmt.Errorf("probes: %d classes", numClasses)
	case n == 0:
		return Metrics{}, fmt.Errorf("probes: no examples to evaluate")
	case len(scores) != n*numClasses:
		return Metrics{}, fmt.Errorf("probes: %d scores for %d examples of %d classes", len(scores), n, numClasses)
	}
	m := Metrics{PerClass: make([]float64, numClasses), Confusion: make([][]int, numClasses)}
	for c := range m.Confusion {
		m.Confusion[c] = make([]int, numClasses)
	}
	var top1, top5 int
	for i, y := range labels {
		if y < 0 || y >= numClasses {
			return Metrics{}, fmt.Errorf("probes: label %d of example %d is outside [0, %d)", y, i, numClasses)
		}
		row := scores[i*numClasses : (i+1)*numClasses]
		// rank = number of classes ordered before y.
		rank, best := 0, 0
		for c, v := range row {
			if v > row[y] || (v == row[y] && c < y) {
				rank++
			}
			if v > row[best] {
				best = c
			}
		}
		m.Confusion[y][best]++
		if rank == 0 {
			top1++
		}
		if rank < 5 {
			top5++
		}
	}
	m.Top1 = float64(top1) / float64(n)
	m.Top5 = math.NaN()
	if numClasses >= 5 {
		m.Top5 = float64(top5) / float64(n)
	}
	var sum float64
	present := 0
	for c, row := range m.Confusion {
		total := 0
		for _, v := range row {
			total += v
		}
		if total == 0 {
			m.PerClass[c] = math.NaN()
			continue
		}
		m.PerClass[c] = float64(row[c]) / float64(total)
		sum += m.PerClass[c]
		present++
	}
	m.MeanPerClassRecall = sum / float64(present)
	return m, nil
}

// Accuracy returns the fraction of predictions equal to labels (which must have the
// same length).
func Accuracy(pred, labels []int) float64 {
	if len(labels) == 0 {
		return math.NaN()
	}
	hit := 0
	for i, p := range pred {
		if p == labels[i] {
			hit++
		}
	}
	return float64(hit) / float64(len(labels))
}
