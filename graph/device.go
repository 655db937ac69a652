package graph

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrNoCUDA is what asking for a CUDA device returns in a build without CUDA.
var ErrNoCUDA = errors.New("this gorgoclip was built without CUDA; build it with make cuda")

// ErrNoGPU is what OpenDevice wraps when the CUDA driver finds no GPU of that number:
// the one failure a test may take for "no GPU here" (any other, such as kernels that
// do not compile, is a bug).
var ErrNoGPU = errors.New("no such GPU")

// Device is where a compiled Machine keeps its activations and runs its fused ops.
// A nil Device is the CPU (host memory, BLAS and the Go kernels). The CUDA device
// (build tag gorgoclip_cuda, see device_cuda.go) keeps weights, inputs and every
// activation in GPU memory: Machine.Run copies each input to the device once and each
// output back once, and nothing else crosses the bus.
type Device interface {
	// Name describes the device, e.g. "cuda:0 (NVIDIA H100 80GB HBM3, sm_90)".
	Name() string

	backend
}

// backend is what the graph package needs of a device; only device_cuda.go
// implements it.
type backend interface {
	// enter locks the calling goroutine to its OS thread and makes the device's context
	// current; the returned function undoes it. Calls nest.
	enter() func()
	// alloc returns n float32s of device memory as a slice that host code must never
	// index (it is only carried in a tensor.Dense and turned back into an address).
	alloc(n int) ([]float32, error)
	// free releases what alloc returned.
	free(data []float32)
	// weights uploads every host tensor in ws that has no device copy yet (once per
	// tensor: device copies are cached by weight).
	weights(ws []*tensor.Dense) error
	// upload copies host data into the device memory dst (one host-to-device copy).
	upload(dst, src []float32) error
	// download copies device memory src into host memory dst (one device-to-host copy).
	download(dst, src []float32) error
	// supports reports whether op has an implementation on the device (registered
	// by the op's own _cuda.go file).
	supports(op G.Op) bool
	// run executes op on the device: out is the op's device storage, in its inputs
	// (device activations, or host weights passed to weights before).
	run(op G.Op, out *tensor.Dense, in []G.Value) error
}

// OpenDevice returns the device called name: "" or "cpu" for the CPU (a nil Device),
// "cuda" or "cuda:N" for GPU N. Without CUDA in the build, "cuda" returns ErrNoCUDA.
func OpenDevice(name string) (Device, error) {
	switch n := strings.ToLower(strings.TrimSpace(name)); {
	case n == "" || n == "cpu":
		return nil, nil
	case n == "cuda" || n == "gpu":
		return openCUDA(0)
	case strings.HasPrefix(n, "cuda:"):
		i, err := strconv.Atoi(n[len("cuda:"):])
		if err != nil || i < 0 {
			return nil, fmt.Errorf("graph: device %q: want cuda:N with N a GPU number", name)
		}
		return openCUDA(i)
	}
	return nil, fmt.Errorf("graph: unknown device %q (want cpu or cuda)", name)
}

// DeviceName is d.Name(), or "cpu" for the nil Device.
func DeviceName(d Device) string {
	if d == nil {
		return "cpu"
	}
	return d.Name()
}

// Copies counts host-device transfers since the process started.
type Copies struct {
	// HostToDevice and DeviceToHost count the per-run copies (inputs in, outputs out).
	HostToDevice, DeviceToHost int64
	// BytesIn and BytesOut are their sizes.
	BytesIn, BytesOut int64
	// Weights counts weight uploads (once per weight and device), WeightBytes their size.
	Weights, WeightBytes int64
}

// Sub returns c - o, the copies made between two snapshots.
func (c Copies) Sub(o Copies) Copies {
	return Copies{c.HostToDevice - o.HostToDevice, c.DeviceToHost - o.DeviceToHost, c.BytesIn - o.BytesIn,
		c.BytesOut - o.BytesOut, c.Weights - o.Weights, c.WeightBytes - o.WeightBytes}
}

var copyStats struct {
	h2d, d2h, in, out, w, wb atomic.Int64
}

// CopyStats returns the host-device copies made so far (all zero on the CPU).
func CopyStats() Copies {
	s := &copyStats
	return Copies{s.h2d.Load(), s.d2h.Load(), s.in.Load(), s.out.Load(), s.w.Load(), s.wb.Load()}
}

// NewBuilderOn returns an empty Builder whose Machine will run on d (nil: the CPU).
func NewBuilderOn(d Device) *Builder {
	b := NewBuilder()
	b.dev = d
	return b
}

// checkOps refuses a graph for device d that holds an op d cannot run: a built-in
// gorgonia op (G.Mul, G.Add, ...) would read device memory from the host, and a
// custom op without a registered device implementation has nothing to run there.
func checkOps(g *G.ExprGraph, d Device) error {
	var bad []string
	for _, n := range g.AllNodes() {
		op := n.Op()
		if op == nil { // an input or a weight
			continue
		}
		if _, tap := op.(*tapOp); tap || d.supports(op) {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s (%v)", n.Name(), op))
	}
	if len(bad) > 0 {
		return fmt.Errorf("graph: %s cannot run %d op(s) of this graph, which have no implementation there: %s "+
			"(register one with the op, or build the graph for the CPU)", d.Name(), len(bad), strings.Join(bad, ", "))
	}
	return nil
}

// compileOn completes a machine compiled for a device (whose arena assign put in
// device memory): device copies of the weights, device buffers for the inputs, and
// taps that download.
func (m *Machine) compileOn(d Device, params map[string]*G.Node) (err error) {
	m.dev = d
	defer d.enter()()
	defer func() {
		if err != nil {
			m.releaseDevice()
		}
	}()
	ws := make([]*tensor.Dense, 0, len(params))
	for name, n := range params {
		w, ok := n.Value().(*tensor.Dense)
		if !ok {
			return fmt.Errorf("graph: weight %q is a %T, not a *tensor.Dense", name, n.Value())
		}
		ws = append(ws, w)
	}
	if err = d.weights(ws); err != nil {
		return err
	}
	m.devIn = make(map[string]*tensor.Dense, len(m.inputs))
	for name, n := range m.inputs {
		data, err := d.alloc(n.Shape().TotalSize())
		if err != nil {
			return err
		}
		m.devIn[name] = tensor.New(tensor.WithShape(n.Shape().Clone()...), tensor.WithBacking(data))
	}
	for _, t := range m.outputs {
		t.dev = d
	}
	return nil
}

// releaseDevice frees the machine's device memory (not the weights, which the device
// caches for every machine of the model).
func (m *Machine) releaseDevice() {
	if m.dev == nil {
		return
	}
	defer m.dev.enter()()
	m.arena.free()
	for _, t := range m.devIn {
		m.dev.free(t.Data().([]float32))
	}
	m.devIn = nil
}

// free releases the slots' device memory.
func (a *arena) free() {
	if a.dev == nil {
		return
	}
	for _, s := range a.slots {
		a.dev.free(s.data)
		s.data = nil
	}
}

// deviceInput uploads data into input name's device buffer (one host-to-device copy)
// and returns the device tensor to bind.
func (m *Machine) deviceInput(name string, data []float32) (*tensor.Dense, error) {
	t := m.devIn[name]
	if err := m.dev.upload(t.Data().([]float32), data); err != nil {
		return nil, fmt.Errorf("graph: input %q: %w", name, err)
	}
	return t, nil
}

// onDevice runs op on the device of its machine when it has one (ok true), writing
// into the op's device storage. Each fused op's Do calls it first.
func (o *owned) onDevice(op G.Op, in []G.Value) (v G.Value, ok bool, err error) {
	if o.a == nil || o.a.dev == nil {
		return nil, false, nil
	}
	if err := o.a.check(in); err != nil {
		return nil, true, err
	}
	o.slot.owner = o.out
	if err := o.a.dev.run(op, o.out, in); err != nil {
		return nil, true, fmt.Errorf("graph: %v: %w", op, err)
	}
	return o.out, true, nil
}

// deviceDo is tapOp.Do on a device: one device-to-host copy of the output.
func (o *tapOp) deviceDo(in []G.Value) (G.Value, error) {
	if o.a != nil {
		if err := o.a.check(in); err != nil {
			return nil, err
		}
	}
	t, ok := in[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("graph: output %q: %T is not a device tensor", o.name, in[0])
	}
	src, ok := t.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("graph: output %q: not float32", o.name)
	}
	o.data = make([]float32, len(src))
	if err := o.dev.download(o.data, src); err != nil {
		return nil, fmt.Errorf("graph: output %q: %w", o.name, err)
	}
	o.shape = append([]int(nil), t.Shape()...)
	return G.NewF32(0), nil
}
