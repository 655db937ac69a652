package layers

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"

	"gorgonia.org/tensor"
)

// Tensor is a C-ordered array, as the loaders produce it: float32 (Data), or 16-bit
// (Half) when it was converted for a 16-bit model as it was read. Shape () is a scalar.
type Tensor struct {
	Shape []int
	Data  []float32
	// Half, when not nil, holds the values in 16 bits in place of Data (then nil):
	// bfloat16, or IEEE half for a GEMM weight of an FP16 model, as the model that
	// converted them decides (clip.Load). See SetHalf.
	Half []uint16
}

// Len returns the number of values t holds, in either precision.
func (t *Tensor) Len() int {
	if t.Half != nil {
		return len(t.Half)
	}
	return len(t.Data)
}

// SetHalf replaces t's float32 values by h, their 16-bit form, which free releases
// once t is unreachable (h may live outside the Go heap: graph.Halve). A tensor Param
// makes from t keeps t reachable; a slice of h kept without t would dangle.
func (t *Tensor) SetHalf(h []uint16, free func()) {
	t.Data, t.Half = nil, h
	runtime.AddCleanup(t, func(free func()) { free() }, free)
}

// Tensors maps OpenAI state-dict keys to weights.
type Tensors = map[string]*Tensor

// InitKind selects the distribution of an Init.
type InitKind int

const (
	// InitNormal draws N(0, Scale^2).
	InitNormal InitKind = iota
	// InitUniform draws U(-Scale, Scale).
	InitUniform
	// InitConst sets every value to Scale.
	InitConst
)

// Init is how a random checkpoint fills one weight: the reference code's initialiser
// for it (OpenAI's initialize_parameters, else PyTorch's module default), so random
// models have the reference's activation scales.
type Init struct {
	Kind  InitKind
	Scale float64
}

// Normal is N(0, std^2).
func Normal(std float64) Init { return Init{InitNormal, std} }

// Uniform is U(-bound, bound).
func Uniform(bound float64) Init { return Init{InitUniform, bound} }

// Const sets every value to v.
func Const(v float64) Init { return Init{InitConst, v} }

// fanIn is PyTorch's default for nn.Linear and nn.Conv2d weights and biases
// (kaiming_uniform_ with a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
func fanIn(n int) Init { return Uniform(1 / math.Sqrt(float64(n))) }

// Fill writes values drawn from init into data.
func (in Init) Fill(data []float32, rng *rand.Rand) {
	for i := range data {
		switch in.Kind {
		case InitNormal:
			data[i] = float32(in.Scale * rng.NormFloat64())
		case InitUniform:
			data[i] = float32(in.Scale * (2*rng.Float64() - 1))
		default:
			data[i] = float32(in.Scale)
		}
	}
}

// Param is one weight a module owns: its state-dict key, shape and initialiser.
type Param struct {
	Key   string
	Shape []int
	Init  Init
}

// Size is the number of values of p.
func (p Param) Size() int {
	n := 1
	for _, s := range p.Shape {
		n *= s
	}
	return n
}

// Weights hands module constructors their tensors. A module calls Param once for every
// weight it owns, and that one call serves loading, shape checks and random
// checkpoints, depending on how the Weights was made:
//
//   - Declare lists the keys, shapes and initialisers and touches no tensor: Param
//     returns nil, and functions registered with After do not run.
//   - Bind wraps a checkpoint's tensors without copying them: Param returns the tensor
//     (nil when it is missing or mis-shaped, which Err then reports), and the After
//     functions run once every module is built (derived weights: BatchNorm folded
//     into a convolution, q/k/v stacked).
//
// Module code must therefore only read a tensor inside an After function.
type Weights struct {
	src      Tensors // nil when declaring
	params   []Param
	index    map[string]int
	buffers  map[string]bool // known non-weight entries (BatchNorm's num_batches_tracked)
	problems []string
	after    []func() error
}

// Declare returns a Weights that records declarations only.
func Declare() *Weights { return &Weights{index: map[string]int{}, buffers: map[string]bool{}} }

// Bind returns a Weights over t's tensors, which modules share rather than copy.
func Bind(t Tensors) *Weights {
	w := Declare()
	if t == nil {
		t = Tensors{}
	}
	w.src = t
	return w
}

// Binding reports whether w wraps real tensors (Bind) rather than declaring (Declare).
func (w *Weights) Binding() bool { return w.src != nil }

// Param declares weight key with the given shape and initialiser and returns it as a
// *tensor.Dense sharing the checkpoint's data, float32 or, for a tensor with Half,
// 16-bit (graph.BFloat16) (nil when declaring, or when the tensor is missing or
// mis-shaped: see Err). A key declared twice must agree.
func (w *Weights) Param(key string, init Init, shape ...int) *tensor.Dense {
	p := Param{Key: key, Shape: slices.Clone(shape), Init: init}
	if i, ok := w.index[key]; ok {
		if !slices.Equal(w.params[i].Shape, p.Shape) {
			w.problems = append(w.problems, fmt.Sprintf("%s: declared as %v and as %v", key, w.params[i].Shape, p.Shape))
		}
	} else {
		w.index[key] = len(w.params)
		w.params = append(w.params, p)
	}
	if w.src == nil {
		return nil
	}
	t, ok := w.src[key]
	switch {
	case !ok || t == nil:
		w.problems = append(w.problems, key+": missing")
		return nil
	case !sameShape(t.Shape, p.Shape):
		w.problems = append(w.problems, fmt.Sprintf("%s: got shape %v, want %v", key, t.Shape, p.Shape))
		return nil
	case t.Len() != p.Size():
		w.problems = append(w.problems, fmt.Sprintf("%s: shape %v but %d values", key, t.Shape, t.Len()))
		return nil
	}
	if len(shape) == 0 { // a scalar: a one-element vector for the graph
		shape = []int{1}
	}
	if t.Half != nil {
		d := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(t.Half))
		runtime.AddCleanup(d, func(*Tensor) {}, t) // t owns the 16-bit data: it lives as long as d
		return d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(t.Data))
}

// Buffer declares a state-dict entry that is not a weight (BatchNorm's
// num_batches_tracked counter): a checkpoint may hold it, it is not required, and it
// is never read.
func (w *Weights) Buffer(key string) { w.buffers[key] = true }

// After registers f to run when binding, once every module is built. Derived weights
// are computed there; an error it returns is reported by Err.
func (w *Weights) After(f func() error) {
	if w.src != nil {
		w.after = append(w.after, f)
	}
}

// Params returns every declared weight, in declaration order.
func (w *Weights) Params() []Param { return slices.Clone(w.params) }

// Buffers returns the declared non-weight keys, sorted.
func (w *Weights) Buffers() []string {
	keys := make([]string, 0, len(w.buffers))
	for k := range w.buffers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Expects reports whether key is a declared weight or buffer: the loaders use it to
// refuse unknown entries before reading their data.
func (w *Weights) Expects(key string) bool {
	_, ok := w.index[key]
	return ok || w.buffers[key]
}

// Shape returns the declared shape of weight key, and whether it is declared.
func (w *Weights) Shape(key string) ([]int, bool) {
	i, ok := w.index[key]
	if !ok {
		return nil, false
	}
	return w.params[i].Shape, true
}

// Err finishes a Bind: it runs the After functions when every weight was found, and
// reports in one error every missing, mis-shaped and unexpected key. When declaring,
// it reports only inconsistent declarations.
func (w *Weights) Err() error {
	problems := slices.Clone(w.problems)
	if w.src != nil {
		for k := range w.src {
			if !w.Expects(k) {
				problems = append(problems, k+": unexpected")
			}
		}
		if len(problems) == 0 {
			for _, f := range w.after {
				if err := f(); err != nil {
					problems = append(problems, err.Error())
				}
			}
			w.after = nil
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	const show = 20 // a checkpoint of the wrong model would list hundreds of keys
	more := ""
	if len(problems) > show {
		more = fmt.Sprintf("; and %d more", len(problems)-show)
		problems = problems[:show]
	}
	return errors.New(strings.Join(problems, "; ") + more)
}

// sameShape compares a stored shape with a declared one; a scalar may be stored as
// shape () or (1,).
func sameShape(got, want []int) bool {
	if len(want) == 0 && len(got) == 1 && got[0] == 1 {
		return true
	}
	return slices.Equal(got, want)
}

// dense returns data as a new [shape] tensor.
func dense(data []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// floats returns the backing array of a tensor made by Param or dense.
func floats(t *tensor.Dense) []float32 { return t.Data().([]float32) }

// BatchNormCounter is the last part of the key of BatchNorm's num_batches_tracked
// buffer, an int64 training counter eval-mode inference never reads.
const BatchNormCounter = "num_batches_tracked"
