package coop

import (
	"errors"
	"math"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/probes"
)

// Name is CoOp's method name, beside probes.MethodNames.
const Name = "coop"

// Method is CoOp as a probes.Method, so that compare and probe run it beside the
// feature-only methods on the same shots and seeds. Unlike those it trains through
// the text tower, so it needs the model, a tokenizer and the class names, which a
// probes.Problem does not carry: set them before Fit. CoOp chooses nothing on a
// validation set: its schedule is fixed by the number of shots.
type Method struct {
	// Model, Tokenizer and ClassNames are what Fit trains the prompts with.
	Model      *clip.Model
	Tokenizer  Tokenizer
	ClassNames []string
	// Options configure the training (Shots is taken from the problem when 0; Seed
	// is added to the problem's seed when the caller sets Problem seeds apart).
	Options Options
}

var _ probes.Method = (*Method)(nil)

// Name is "coop".
func (*Method) Name() string { return Name }

// NeedsValidation is false: the paper's schedule is fixed.
func (*Method) NeedsValidation() bool { return false }

// Fit trains the context on p.Train's k shots of each class.
func (m *Method) Fit(p probes.Problem) (*probes.Fitted, error) {
	if m.Model == nil || m.Tokenizer == nil || len(m.ClassNames) == 0 {
		return nil, errors.New("coop: the method needs the model, a tokenizer and the class names")
	}
	opt := m.Options
	if opt.Shots == 0 && p.Classes > 0 {
		opt.Shots = p.Train.N / p.Classes
	}
	if opt.Progress == nil && p.Logf != nil {
		opt.Progress = func(pr Progress) {
			if pr.Epoch == pr.Epochs || pr.Epoch%10 == 0 {
				p.Logf("epoch %d/%d: loss %.4f, lr %.2g, %.1fs", pr.Epoch, pr.Epochs, pr.Loss, pr.LR, pr.Elapsed.Seconds())
			}
		}
	}
	cl, err := Fit(m.Model, m.Tokenizer, m.ClassNames, p.Train, opt)
	if err != nil {
		return nil, err
	}
	return &probes.Fitted{Classifier: cl, ValAccuracy: math.NaN(),
		Params: map[string]float64{"n_ctx": float64(cl.NCtx), "epochs": float64(len(cl.Losses))}}, nil
}

// Scores are Logits, the scores probes.Evaluate reads.
func (c *Classifier) Scores(x []float32, n int) ([]float32, error) { return c.Logits(x, n) }
