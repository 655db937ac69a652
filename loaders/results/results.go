// Package results defines the JSON files experiments write and plots read.
//
// A single result follows LAION's CLIP_benchmark
// ({"dataset","model","pretrained","task","metrics":{...}}), with zero-shot metrics
// named acc1, acc5, mean_per_class_recall and linear-probe metrics prefixed lp_, so
// numbers line up with its published tables. Extra fields (shots, seed, C, per-class
// accuracy, confusion matrix) are added beside them and ignored by CLIP_benchmark tools.
package results

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// Task names, as CLIP_benchmark spells them.
const (
	TaskZeroShot    = "zeroshot_classification"
	TaskLinearProbe = "linear_probe"
)

// Float is a float64 that encodes NaN and ±Inf as JSON null (encoding/json refuses
// them), e.g. top-5 accuracy with fewer than five classes. null decodes as NaN.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Result is one evaluation: a zero-shot run with one prompt set, or one probe fit.
type Result struct {
	Dataset    string `json:"dataset"`
	Model      string `json:"model"`
	Pretrained string `json:"pretrained"`
	// Task is TaskZeroShot or TaskLinearProbe.
	Task string `json:"task"`
	// Metrics holds acc1, acc5, mean_per_class_recall (lp_ prefixed for probes).
	Metrics map[string]Float `json:"metrics"`

	// Prompts names the prompt set of a zero-shot result ("a photo of a {}.", "labels", ...).
	Prompts string `json:"prompts,omitempty"`
	// Shots is k for a k-shot probe; 0 means the full training set.
	Shots int `json:"shots,omitempty"`
	// FewshotK is CLIP_benchmark's name for the same: k, or -1 for the full training
	// set (0, omitted, for results that are not probes).
	FewshotK int `json:"fewshot_k,omitempty"`
	// Method names the probe's method ("logreg", "clap", ...; see probes.MethodNames).
	Method string `json:"method,omitempty"`
	// Seed is the seed of the shots and the validation set; always written, 0 included.
	Seed int64 `json:"seed"`
	// C is the inverse L2 strength of a probe (scikit-learn's meaning).
	C float64 `json:"C,omitempty"`
	// Train and Test are the number of examples used; Val the number of validation
	// examples hyperparameters were chosen on (omitted when none).
	Train int `json:"n_train,omitempty"`
	Val   int `json:"n_val,omitempty"`
	Test  int `json:"n_test,omitempty"`
	// Hyperparameters holds the values a probe's method used, chosen on the validation
	// set or fixed ("alpha", "beta", "epoch", ...; C has its own field).
	Hyperparameters map[string]float64 `json:"hyperparameters,omitempty"`
	// ClassNames, PerClassAccuracy and Confusion (rows true class, columns predicted)
	// are filled where the result is meant for plots.
	ClassNames       []string `json:"classnames,omitempty"`
	PerClassAccuracy []Float  `json:"per_class_accuracy,omitempty"`
	Confusion        [][]int  `json:"confusion_matrix,omitempty"`
	// Skipped lists inputs that could not be read and were skipped (--skip-bad).
	Skipped []string `json:"skipped,omitempty"`
	// PerTemplate gives, for a zero-shot prompt set of several templates, the top-1
	// accuracy of each template alone.
	PerTemplate []TemplateAccuracy `json:"per_template,omitempty"`
}

// TemplateAccuracy is the zero-shot top-1 accuracy of one template on its own.
type TemplateAccuracy struct {
	Template string `json:"template"`
	Acc1     Float  `json:"acc1"`
}

// ShotSummary aggregates probe results over seeds for one k (0 = full data).
type ShotSummary struct {
	Shots int   `json:"shots"`
	Seeds int   `json:"seeds"`
	Mean  Float `json:"lp_acc1_mean"`
	Std   Float `json:"lp_acc1_std"`
}

// Comparison is what gorgoclip compare writes to results.json: zero-shot against
// k-shot linear probes on one dataset, as in the CLIP paper's Figure 6.
type Comparison struct {
	Dataset    string   `json:"dataset"`
	Model      string   `json:"model"`
	Pretrained string   `json:"pretrained"`
	ClassNames []string `json:"classnames"`
	// Features says which image features the probes used ("pre-projection" or "projected").
	Features string `json:"features"`
	// ZeroShot holds one result per prompt set.
	ZeroShot []Result `json:"zeroshot"`
	// Probes holds one result per (shots, seed).
	Probes []Result `json:"linear_probe"`
	// Summary holds mean and standard deviation over seeds per k.
	Summary []ShotSummary `json:"summary"`
	// Skipped lists, per split ("train", "test"), the images that could not be read
	// and were left out (--skip-bad).
	Skipped map[string][]string `json:"skipped,omitempty"`
	// SkippedShots lists the k for which some class had too few training examples
	// (after the validation split), so no probe was fitted.
	SkippedShots []int `json:"skipped_shots,omitempty"`
}

// Save writes v as indented JSON to path atomically.
func Save(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("results: encoding %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, append(b, '\n'))
}

// Load reads a JSON file written by Save into v, naming the file on error.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("results: %s: %w", path, err)
	}
	return nil
}
