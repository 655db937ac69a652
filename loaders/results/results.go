// Package results defines the JSON files experiments write and plots read.
//
// A single result follows LAION's CLIP_benchmark
// ({"dataset","model","pretrained","task","metrics":{...},"language"}), with
// zero-shot metrics named acc1, acc5, mean_per_class_recall and linear-probe metrics
// prefixed lp_, so numbers line up with its published tables. A probe's k is written
// as CLIP_benchmark's fewshot_k (-1 for the whole training set) and its seed always,
// 0 included. Extra fields (prompt set, C, per-class accuracy, confusion matrix) sit
// beside them, and every file records its provenance (Provenance). WriteCLIPBenchmark
// exports one file per result for CLIP_benchmark's build step.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/internal/version"
)

// Task names, as CLIP_benchmark spells them.
const (
	TaskZeroShot    = "zeroshot_classification"
	TaskLinearProbe = "linear_probe"
)

// Metric names of the 95% Wilson interval of a zero-shot result's acc1.
const (
	MetricAcc1Low  = "acc1_ci95_low"
	MetricAcc1High = "acc1_ci95_high"
)

// MethodLogReg is the method name of the CLIP paper's linear probe (probes.LogReg):
// probe results without a method, written before there were others, are its.
const MethodLogReg = "logreg"

// LanguageEnglish is the language of gorgoclip's class names and prompts, as
// CLIP_benchmark's --language names it.
const LanguageEnglish = "en"

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

// Provenance says where a results file came from. Its fields are written at the top
// level of the object that embeds it, so that CLIP_benchmark's build step turns them
// into columns.
type Provenance struct {
	// Version is the gorgoclip build (version.String).
	Version string `json:"gorgoclip_version,omitempty"`
	// Command is the command line that produced the file, shell-quoted.
	Command string `json:"command,omitempty"`
	// WeightsSHA256 fingerprints the model weights: the SHA-256 of the weights file,
	// or for a directory of several weight files (OpenAI's .npy layout) the SHA-256
	// of their sorted sha256sum listing (what `sha256sum *.npy | sha256sum` prints).
	WeightsSHA256 string `json:"weights_sha256,omitempty"`
	// Date is when the results were computed, RFC 3339 in UTC.
	Date string `json:"date,omitempty"`
}

// Stamp fills in what p lacks of the running program's provenance: the version,
// the date (now) and the command line (os.Args).
func (p *Provenance) Stamp() {
	if p.Version == "" {
		p.Version = version.String()
	}
	if p.Date == "" {
		p.Date = time.Now().UTC().Format(time.RFC3339)
	}
	if p.Command == "" && len(os.Args) > 0 {
		p.Command = CommandLine(os.Args)
	}
}

// CommandLine joins args into one line a POSIX shell would split back into args.
func CommandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Result is one evaluation: a zero-shot run with one prompt set, or one probe fit.
type Result struct {
	Dataset    string `json:"dataset"`
	Model      string `json:"model"`
	Pretrained string `json:"pretrained"`
	// Task is TaskZeroShot or TaskLinearProbe.
	Task string `json:"task"`
	// Metrics holds acc1, acc5, mean_per_class_recall (lp_ prefixed for probes); a
	// zero-shot result adds the 95% Wilson interval of acc1 (MetricAcc1Low,
	// MetricAcc1High).
	Metrics map[string]Float `json:"metrics"`
	// Language is the language of the class names and prompts (LanguageEnglish).
	Language string `json:"language,omitempty"`

	// Prompts names the prompt set of a zero-shot result ("a photo of a {}.", "labels",
	// ...), or of the zero-shot classifier a few-shot method started from.
	Prompts string `json:"prompts,omitempty"`
	// Shots is k for a k-shot probe; 0 means the full training set. It is written as
	// CLIP_benchmark's fewshot_k (-1 for the full set) on probe results.
	Shots int `json:"-"`
	// Method names the probe's method ("logreg", "clap", ...; see probes.MethodNames);
	// empty means MethodLogReg (see MethodName).
	Method string `json:"method,omitempty"`
	// Seed is the seed of the random draws behind the result: a probe's shots and
	// validation split, a zero-shot run's test subset. It is always written.
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
	Provenance
}

// MethodName returns r.Method, or MethodLogReg for a probe result without one.
func (r Result) MethodName() string {
	if r.Method == "" && r.Task == TaskLinearProbe {
		return MethodLogReg
	}
	return r.Method
}

// fewshotK converts Shots to CLIP_benchmark's fewshot_k and back.
func fewshotK(shots int) int {
	if shots == 0 {
		return -1
	}
	return shots
}

func shotsOf(k int, where string) (int, error) {
	switch {
	case k == -1:
		return 0, nil
	case k > 0:
		return k, nil
	}
	return 0, fmt.Errorf("fewshot_k %d%s: want -1 (the full training set) or k > 0", k, where)
}

// MarshalJSON writes r with fewshot_k on probe results.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	out := struct {
		plain
		FewshotK *int `json:"fewshot_k,omitempty"`
	}{plain: plain(r)}
	if r.Task == TaskLinearProbe {
		k := fewshotK(r.Shots)
		out.FewshotK = &k
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads fewshot_k, or the "shots" (0 = full) of older files.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Result(p)
	var err error
	r.Shots, err = readShots(b, "")
	return err
}

// readShots returns the k of an object's fewshot_k, or of the "shots" of older files
// (0 for the full set either way).
func readShots(b []byte, where string) (int, error) {
	var in struct {
		FewshotK *int `json:"fewshot_k"`
		Shots    *int `json:"shots"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return 0, err
	}
	switch {
	case in.FewshotK != nil:
		return shotsOf(*in.FewshotK, where)
	case in.Shots != nil:
		return *in.Shots, nil
	}
	return 0, nil
}

// TemplateAccuracy is the zero-shot top-1 accuracy of one template on its own.
type TemplateAccuracy struct {
	Template string `json:"template"`
	Acc1     Float  `json:"acc1"`
}

// ShotSummary aggregates the probe results of one method over seeds for one k (0 =
// full data, written as fewshot_k -1): the mean and sample standard deviation of
// lp_acc1.
type ShotSummary struct {
	Shots int `json:"-"`
	// Method is the results' method; empty means MethodLogReg.
	Method string `json:"method,omitempty"`
	Seeds  int    `json:"seeds"`
	Mean   Float  `json:"lp_acc1_mean"`
	Std    Float  `json:"lp_acc1_std"`
	// Val is the number of validation examples each fit chose its hyperparameters on
	// (omitted when none).
	Val int `json:"n_val,omitempty"`
}

// MethodName returns s.Method, or MethodLogReg when it is empty.
func (s ShotSummary) MethodName() string {
	if s.Method == "" {
		return MethodLogReg
	}
	return s.Method
}

// MarshalJSON writes s with fewshot_k first.
func (s ShotSummary) MarshalJSON() ([]byte, error) {
	type plain ShotSummary
	return json.Marshal(struct {
		FewshotK int `json:"fewshot_k"`
		plain
	}{fewshotK(s.Shots), plain(s)})
}

// UnmarshalJSON reads fewshot_k, or the "shots" (0 = full) of older files.
func (s *ShotSummary) UnmarshalJSON(b []byte) error {
	type plain ShotSummary
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = ShotSummary(p)
	var err error
	s.Shots, err = readShots(b, " in the summary")
	return err
}

// Comparison is what gorgoclip compare writes to results.json: zero-shot against
// k-shot linear probes on one dataset, as in the CLIP paper's Figure 6. gorgoclip
// zeroshot writes one with zero-shot results only.
type Comparison struct {
	// Dataset is the dataset's name (--dataset-name, as CLIP_benchmark names it).
	Dataset string `json:"dataset"`
	// DatasetSpec is the dataset spec it was read from ("imagefolder:/data/...").
	DatasetSpec string   `json:"dataset_spec,omitempty"`
	Model       string   `json:"model"`
	Pretrained  string   `json:"pretrained"`
	Language    string   `json:"language,omitempty"`
	ClassNames  []string `json:"classnames"`
	// Features says which image features the probes used ("pre-projection" or "projected").
	Features string `json:"features,omitempty"`
	// ZeroShot holds one result per prompt set.
	ZeroShot []Result `json:"zeroshot"`
	// Probes holds one result per (method, shots, seed).
	Probes []Result `json:"linear_probe,omitempty"`
	// Summary holds mean and standard deviation over seeds per method and k.
	Summary []ShotSummary `json:"summary,omitempty"`
	// Skipped lists, per split ("train", "test"), the images that could not be read
	// and were left out (--skip-bad).
	Skipped map[string][]string `json:"skipped,omitempty"`
	// SkippedShots lists, per method, the k at which some class had too few training
	// examples for the shots and the method's validation set, so nothing was fitted.
	SkippedShots SkippedShots `json:"skipped_shots,omitempty"`
	Provenance
}

// SkippedShots maps a method's name to the k it could not be fitted at, ascending.
// Files written before there were several methods hold a plain list, which is read as
// MethodLogReg's.
type SkippedShots map[string][]int

// UnmarshalJSON implements json.Unmarshaler.
func (s *SkippedShots) UnmarshalJSON(b []byte) error {
	var list []int
	if err := json.Unmarshal(b, &list); err == nil {
		*s = nil
		if list != nil {
			*s = SkippedShots{MethodLogReg: list}
		}
		return nil
	}
	var m map[string][]int
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("skipped_shots: want an object of method names to lists of k: %w", err)
	}
	*s = m
	return nil
}

// Save writes v as JSON to path atomically: indented, with arrays of numbers or
// strings on one line (a confusion matrix is one row a line). A Result or
// Comparison (or a pointer to one) has its Provenance stamped first (Stamp); v
// itself is not modified.
func Save(path string, v any) error {
	switch x := v.(type) {
	case Result:
		x.Provenance.Stamp()
		v = x
	case *Result:
		c := *x
		c.Provenance.Stamp()
		v = c
	case Comparison:
		x.Provenance.Stamp()
		v = x
	case *Comparison:
		c := *x
		c.Provenance.Stamp()
		v = c
	}
	b, err := Encode(v)
	if err != nil {
		return fmt.Errorf("results: encoding %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, b)
}

// Encode returns v as Save writes it: indented JSON with arrays of numbers or
// strings on one line, and a final newline.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return indentJSON(b), nil
}

// Load reads a JSON file written by Save into v, naming the file and, for syntax
// errors, the line on error.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return decode(path, b, v)
}

func decode(path string, b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(b, syn.Offset-1) // Offset counts the offending byte
		return fmt.Errorf("results: %s:%d:%d: not valid JSON: %v", path, line, col, syn)
	case errors.As(err, &typ):
		line, col := position(b, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "the top level"
		}
		return fmt.Errorf("results: %s:%d:%d: %s holds a JSON %s where a %s belongs", path, line, col, field, typ.Value, typ.Type)
	}
	return fmt.Errorf("results: %s: %w", path, err)
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// LoadComparison reads any results file gorgoclip writes as a Comparison: the
// object of compare and zeroshot, a list of results (zeroshot.json of earlier
// versions, or one result per line: a JSONL export), or the single result of probe.
// Errors name the file and what was expected.
func LoadComparison(path string) (*Comparison, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	trimmed := strings.TrimSpace(string(b))
	var rs []Result
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := decode(path, b, &rs); err != nil {
			return nil, err
		}
	case strings.HasPrefix(trimmed, "{"):
		var keys map[string]json.RawMessage
		if err := decode(path, b, &keys); err == nil && keys["task"] == nil {
			var cmp Comparison
			if err := decode(path, b, &cmp); err != nil {
				return nil, err
			}
			if len(cmp.ZeroShot) == 0 && len(cmp.Probes) == 0 && len(cmp.Summary) == 0 {
				return nil, fmt.Errorf("results: %s holds no zero-shot or linear-probe results (want the results.json of gorgoclip compare, the zeroshot.json of gorgoclip zeroshot, or a result of gorgoclip probe)", path)
			}
			return &cmp, nil
		}
		for i, line := range strings.Split(trimmed, "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			var r Result
			if err := decode(fmt.Sprintf("%s:%d", path, i+1), []byte(line), &r); err != nil {
				if i == 0 { // one indented object, not JSON lines
					r = Result{}
					if err := decode(path, b, &r); err != nil {
						return nil, err
					}
					rs = []Result{r}
					break
				}
				return nil, err
			}
			rs = append(rs, r)
		}
	default:
		return nil, fmt.Errorf("results: %s is not a results file: want a JSON object or list", path)
	}
	cmp, err := fromResults(rs)
	if err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	return cmp, nil
}

// FromResults groups results into a Comparison: zero-shot results and probes by
// task, dataset, model and class names from the first result that has them. It fails
// when rs is empty or mixes datasets.
func FromResults(rs []Result) (*Comparison, error) {
	cmp, err := fromResults(rs)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return cmp, nil
}

func fromResults(rs []Result) (*Comparison, error) {
	if len(rs) == 0 {
		return nil, errors.New("no results")
	}
	cmp := &Comparison{}
	for i, r := range rs {
		if cmp.Dataset == "" {
			cmp.Dataset, cmp.Model, cmp.Pretrained, cmp.Language = r.Dataset, r.Model, r.Pretrained, r.Language
		} else if r.Dataset != "" && r.Dataset != cmp.Dataset {
			return nil, fmt.Errorf("result %d is on dataset %q, result 0 on %q: report one dataset at a time", i, r.Dataset, cmp.Dataset)
		}
		if len(cmp.ClassNames) == 0 {
			cmp.ClassNames = r.ClassNames
		}
		if cmp.Provenance == (Provenance{}) {
			cmp.Provenance = r.Provenance
		}
		switch r.Task {
		case TaskZeroShot:
			cmp.ZeroShot = append(cmp.ZeroShot, r)
		case TaskLinearProbe:
			cmp.Probes = append(cmp.Probes, r)
		default:
			return nil, fmt.Errorf("result %d has task %q (want %s or %s)", i, r.Task, TaskZeroShot, TaskLinearProbe)
		}
	}
	return cmp, nil
}
