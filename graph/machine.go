package graph

import (
	"fmt"
	"hash"
	"sort"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Builder assembles one inference graph: named inputs fed per run, weights bound once,
// and named outputs copied out at the moment they are computed (gorgonia reuses
// intermediate buffers, so reading Node.Value after the run would be unreliable).
type Builder struct {
	// G is the graph under construction; layers add nodes to it directly.
	G       *G.ExprGraph
	inputs  map[string]*G.Node
	params  map[string]*G.Node
	outputs map[string]*tapOp
	taps    []*G.Node        // the outputs' nodes: what Compile keeps is what they read
	live    map[*G.Node]bool // set by prune: the nodes Compile kept
	dev     Device           // nil: the CPU (see NewBuilderOn)
	prec    Precision        // see SetPrecision
	spent   bool             // ConvertWeights retyped the weights under the graph
	// backward is set once Backward has added the backward pass (grad.go).
	backward bool
	// poolFromTaps: see SetPoolFromTaps.
	poolFromTaps bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{G: G.NewGraph(), inputs: map[string]*G.Node{}, params: map[string]*G.Node{}, outputs: map[string]*tapOp{}}
}

// Input declares a float32 input of the given shape, set by every Machine.Run.
func (b *Builder) Input(name string, shape ...int) *G.Node {
	n := G.NewTensor(b.G, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name))
	b.inputs[name] = n
	return n
}

// Param returns the node holding weight w under name (an OpenAI state-dict key),
// creating it on first use. w is bound by reference: it is never copied, and every
// graph built from the same layers shares it. w may be a transposed view (Dense.T()).
// w is float32, or BFloat16 for the GEMM weights of a BF16 graph (SetPrecision).
func (b *Builder) Param(name string, w *tensor.Dense) *G.Node {
	if n, ok := b.params[name]; ok {
		return n
	}
	n := G.NewTensor(b.G, w.Dtype(), w.Dims(), G.WithShape(w.Shape()...), G.WithName(name), G.WithValue(w))
	b.params[name] = n
	return n
}

// Output marks n as a result named name, returned by Machine.Run.
func (b *Builder) Output(name string, n *G.Node) error {
	if _, dup := b.outputs[name]; dup {
		return fmt.Errorf("graph: duplicate output %q", name)
	}
	op := &tapOp{name: name}
	t, err := G.ApplyOpWithName(op, "tap:"+name, n)
	if err != nil {
		return fmt.Errorf("graph: output %q: %w", name, err)
	}
	b.outputs[name] = op
	b.taps = append(b.taps, t)
	return nil
}

// SetPoolFromTaps asks the towers built on b to compute their pooled outputs from
// their taps, every row of every block, as the reference code does. By default a
// transformer's last block runs after its attention only for the rows its pooled
// output reads (layers.Transformer.Pooled), which gives the same values with less
// work, but then a tap of that block does not reach the pooled output: gradients
// with respect to such a tap need this set.
func (b *Builder) SetPoolFromTaps(on bool) { b.poolFromTaps = on }

// PoolFromTaps returns what SetPoolFromTaps set.
func (b *Builder) PoolFromTaps() bool { return b.poolFromTaps }

// prune keeps only the nodes some output reads: a tower builds every stage it can
// give, and a graph asking for one stage, or for the pooled output only, runs only
// what that needs. Inputs and weights no output reads are dropped from the graph.
func (b *Builder) prune() error {
	if len(b.taps) == 0 {
		return fmt.Errorf("graph: compile: no output")
	}
	b.G = b.G.ExactSubgraphRoots(b.taps...)
	b.live = make(map[*G.Node]bool, len(b.G.AllNodes()))
	for _, n := range b.G.AllNodes() {
		b.live[n] = true
	}
	for _, m := range []map[string]*G.Node{b.inputs, b.params} {
		for name, n := range m {
			if !b.live[n] {
				delete(m, name)
			}
		}
	}
	return nil
}

// Compile turns the graph into a reusable Machine and plans its activation memory:
// the fused ops write into buffers the Machine owns and reuses on every run.
func (b *Builder) Compile() (m *Machine, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graph: compile: %v", r)
		}
	}()
	if b.spent {
		return nil, fmt.Errorf("graph: compile: this graph's weights were converted under it (ConvertWeights); build it again")
	}
	if err := b.prune(); err != nil {
		return nil, err
	}
	if err := b.checkPrecision(); err != nil {
		return nil, err
	}
	if b.dev != nil {
		if err := checkOps(b.G, b.dev); err != nil {
			return nil, err
		}
		defer b.dev.enter()()
	}
	b.plan()
	a, err := assign(b.G, b.dev)
	if err != nil {
		return nil, err
	}
	for _, t := range b.outputs {
		t.a = a
	}
	vm := G.NewTapeMachine(b.G)
	m = &Machine{vm: vm, inputs: b.inputs, outputs: b.outputs, arena: a}
	for _, n := range b.G.AllNodes() {
		if r, ok := n.Op().(releaser); ok {
			m.held = append(m.held, r)
		}
	}
	if b.dev != nil {
		if err := m.compileOn(b.dev, b.params); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Machine is a compiled graph, run once per batch. It is not safe for concurrent use.
type Machine struct {
	vm      G.VM
	inputs  map[string]*G.Node
	outputs map[string]*tapOp
	arena   *arena
	dev     Device                   // nil: the CPU
	devIn   map[string]*tensor.Dense // the inputs' device buffers
	held    []releaser               // ops holding memory outside Go's (oneDNN primitives)
}

// releaser is an op that holds resources the garbage collector does not see.
type releaser interface {
	// release frees them; the op compiles them again if it runs afterwards.
	release()
}

// ArenaBytes returns the size of the activation buffers the Machine holds.
func (m *Machine) ArenaBytes() int { return m.arena.bytes() }

// Output is one result of Machine.Run: a row-major array the caller owns.
type Output struct {
	Shape []int
	Data  []float32
}

// Run binds inputs (name -> row-major data of the declared shape), runs the graph and
// returns every declared output. The input slices are read, not kept or modified.
// An input no output reads (Compile drops it) may be given or left out.
func (m *Machine) Run(inputs map[string][]float32) (out map[string]Output, err error) {
	if err := m.bind(inputs); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graph: run: %v", r)
		}
		m.vm.Reset()
	}()
	if err := m.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("graph: run: %w", err)
	}
	out = make(map[string]Output, len(m.outputs))
	for name, t := range m.outputs {
		if t.data == nil {
			return nil, fmt.Errorf("graph: output %q was not computed", name)
		}
		out[name] = Output{Shape: t.shape, Data: t.data}
		t.data, t.shape = nil, nil
	}
	return out, nil
}

// bind lets every input node hold its data: the caller's slice on the CPU, a device
// buffer it is uploaded into otherwise. The device is held only while uploading:
// gorgonia's tape machine runs the ops on a goroutine of its own, and each op takes
// the device itself (Device.enter is per OS thread).
func (m *Machine) bind(inputs map[string][]float32) (err error) {
	names := make([]string, 0, len(m.inputs))
	for n := range m.inputs {
		names = append(names, n)
	}
	sort.Strings(names) // uploads in a fixed order
	if m.dev != nil {
		defer m.dev.enter()()
	}
	for _, name := range names {
		node := m.inputs[name]
		data, ok := inputs[name]
		if !ok {
			return fmt.Errorf("graph: input %q not given", name)
		}
		if len(data) != node.Shape().TotalSize() {
			return fmt.Errorf("graph: input %q has %d values, want %v", name, len(data), node.Shape())
		}
		var t *tensor.Dense
		if m.dev == nil {
			t = tensor.New(tensor.WithShape(node.Shape().Clone()...), tensor.WithBacking(data))
		} else if t, err = m.deviceInput(name, data); err != nil {
			return err
		}
		if err := G.Let(node, t); err != nil {
			return fmt.Errorf("graph: input %q: %w", name, err)
		}
	}
	return nil
}

// Close releases the machine.
func (m *Machine) Close() error {
	for _, r := range m.held {
		r.release()
	}
	m.releaseDevice()
	return m.vm.Close()
}

// tapOp copies its input into host memory when it runs; it is how outputs leave a graph.
type tapOp struct {
	name  string
	a     *arena
	shape []int
	data  []float32
	dev   Device // set on a device machine: Do downloads
}

func (o *tapOp) Arity() int           { return 1 }
func (o *tapOp) ReturnsPtr() bool     { return false }
func (o *tapOp) CallsExtern() bool    { return false }
func (o *tapOp) OverwritesInput() int { return -1 }
func (o *tapOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, tensor.Float32)
}
func (o *tapOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (o *tapOp) Do(in ...G.Value) (G.Value, error) {
	if o.dev != nil {
		return o.deviceDo(in)
	}
	if o.a != nil {
		if err := o.a.check(in); err != nil {
			return nil, err
		}
	}
	x, sx, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	o.data = append([]float32(nil), x...)
	o.shape = append([]int(nil), sx...)
	return G.NewF32(0), nil
}
func (o *tapOp) String() string        { return fmt.Sprintf("Tap{%s@%p}", o.name, o) }
func (o *tapOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }
func (o *tapOp) Hashcode() uint32      { return hashOf(o) }

// Cache keeps compiled machines keyed by what shapes them (tower, batch size, text
// length), so a graph is built once and reused across batches. When more than Max
// machines are held the oldest is closed. The zero value holds up to 8. It is safe for
// concurrent use, but a Machine it returns is not: callers serialise runs.
type Cache struct {
	// Max is the number of machines kept; 0 means 8.
	Max   int
	mu    sync.Mutex
	m     map[string]*Machine
	order []string
}

// Get returns the machine for key, building it with build on first use.
func (c *Cache) Get(key string, build func() (*Machine, error)) (*Machine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[key]; ok {
		return m, nil
	}
	m, err := build()
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*Machine{}
	}
	max := c.Max
	if max <= 0 {
		max = 8
	}
	for len(c.order) >= max {
		old := c.order[0]
		c.order = c.order[1:]
		c.m[old].Close()
		delete(c.m, old)
	}
	c.m[key] = m
	c.order = append(c.order, key)
	return m, nil
}

// Len reports how many machines are cached.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Close closes every cached machine.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.m {
		m.Close()
	}
	c.m, c.order = nil, nil
}

// Has reports whether a machine for key is cached.
func (c *Cache) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[key]
	return ok
}
