package probes

import (
	"cmp"
	"fmt"
	"math"
	"strings"
)

// DefaultLogitScale is exp(logit_scale) of OpenAI's CLIP models (the trained value,
// clipped at 100), the temperature of zero-shot logits.
const DefaultLogitScale = 100

// Classifier gives class scores for feature rows.
type Classifier interface {
	// Scores returns the logits of the n rows of x ([n, D] row-major, features as
	// extracted), [n, K] row-major.
	Scores(x []float32, n int) ([]float32, error)
}

// Problem is one few-shot task as every Method sees it.
type Problem struct {
	// Train holds the k shots of each class. Val holds the validation examples, drawn
	// from the same pool and disjoint from the shots; N == 0 when none was drawn.
	// Features are as extracted: methods that compare them with Text L2-normalise them.
	Train, Val Dataset
	// Classes is K.
	Classes int
	// Text is the zero-shot classifier, [K, D] row-major: per class the mean of the
	// normalised template embeddings, renormalised, as zeroshot builds it. Methods
	// other than logreg require it (rows are renormalised on use).
	Text []float32
	// TextNorm, when known, is the mean L2 norm of the raw class embeddings Text was
	// normalised from (per class, the mean of the un-normalised template embeddings);
	// ZS-LP and CLAP start their prototypes at it. Zero means unknown (DefaultInitNorm).
	TextNorm float64
	// LogitScale is exp(logit_scale) of the CLIP model. Zero means DefaultLogitScale.
	LogitScale float64
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Fitted is what Method.Fit returns.
type Fitted struct {
	Classifier
	// Params holds the hyperparameters used, chosen on the validation set or fixed
	// by the caller: "C" (logreg), "alpha" and "beta" (Tip-Adapter), "epoch" (LP++,
	// Tip-Adapter-F: the number of steps of the kept model).
	Params map[string]float64
	// ValAccuracy is the top-1 accuracy of the chosen setting on Problem.Val; NaN
	// when the method used no validation set.
	ValAccuracy float64
}

// Method is a few-shot classifier fitted from k labelled examples per class and the
// zero-shot classifier. The package doc gives each method's formulas, defaults and
// search grids.
type Method interface {
	// Name is the registry key ("logreg", "zs-lp", ...).
	Name() string
	// NeedsValidation reports whether Fit chooses anything on Problem.Val, so that
	// callers draw a validation set only for the methods that use one.
	NeedsValidation() bool
	// Fit adapts to p.
	Fit(p Problem) (*Fitted, error)
}

// registry lists the methods in the order they are documented; each entry makes a
// method with its defaults (the zero value).
var registry = []func() Method{
	func() Method { return &LogReg{} },
	func() Method { return &ZSLP{} },
	func() Method { return &CLAP{} },
	func() Method { return &LPPlusPlus{} },
	func() Method { return &TipAdapter{} },
	func() Method { return &TipAdapterF{} },
}

// MethodNames lists the registered methods: logreg, zs-lp, clap, lp++, tip-adapter,
// tip-adapter-f.
func MethodNames() []string {
	names := make([]string, len(registry))
	for i, mk := range registry {
		names[i] = mk().Name()
	}
	return names
}

// NewMethod returns the registered method called name with its defaults, or an error
// listing the known names.
func NewMethod(name string) (Method, error) {
	for _, mk := range registry {
		if m := mk(); m.Name() == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("probes: unknown method %q (known: %s)", name, strings.Join(MethodNames(), ", "))
}

// check validates p; withText says whether the method needs the zero-shot classifier.
func (p *Problem) check(withText bool) error {
	if err := p.Train.Check(p.Classes); err != nil {
		return fmt.Errorf("%w (training set)", err)
	}
	if p.Val.N > 0 {
		if err := p.Val.Check(p.Classes); err != nil {
			return fmt.Errorf("%w (validation set)", err)
		}
		if p.Val.D != p.Train.D {
			return fmt.Errorf("probes: validation features have dimension %d, training %d", p.Val.D, p.Train.D)
		}
	}
	if s := p.LogitScale; !(s >= 0) || math.IsInf(s, 0) {
		return fmt.Errorf("probes: logit scale %v; need a positive finite value", s)
	}
	if s := p.TextNorm; !(s >= 0) || math.IsInf(s, 0) {
		return fmt.Errorf("probes: class embedding norm %v; need a positive finite value (or 0: unknown)", s)
	}
	if !withText {
		return nil
	}
	k, d := p.Classes, p.Train.D
	if len(p.Text) != k*d {
		return fmt.Errorf("probes: zero-shot classifier has %d values; want %d classes x %d dimensions", len(p.Text), k, d)
	}
	for c := 0; c < k; c++ {
		var ss float64
		for _, v := range p.Text[c*d : (c+1)*d] {
			ss += float64(v) * float64(v)
		}
		if !(ss > 0) || math.IsInf(ss, 0) {
			return fmt.Errorf("probes: zero-shot class embedding %d has squared norm %v; need a finite non-zero vector", c, ss)
		}
	}
	return nil
}

func (p *Problem) logitScale() float64 { return cmp.Or(p.LogitScale, DefaultLogitScale) }

func (p *Problem) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}
