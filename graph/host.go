package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// HostFunc computes a host node's value out from its inputs' values in (row-major,
// as Machine.Run would return them); out is zeroed. It runs on the machine's
// goroutine during Machine.Run.
type HostFunc func(out []float32, in [][]float32) error

// hostOp runs a HostFunc as a node of the graph.
type hostOp struct {
	gradBase
	f HostFunc
}

func (o *hostOp) Do(in ...G.Value) (G.Value, error) {
	var err error
	v, e := o.run(o, in, func(dst []float32, v [][]float32) { err = o.f(dst, v) })
	if e != nil {
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", o.label, err)
	}
	return v, nil
}

// Host adds a node of the given shape computed by f on the host from inputs, in the
// middle of a run: a loss's gradient computed from the forward pass's features, for
// instance, to seed Backward, so that one Run does the forward pass, the loss and
// the backward pass. The node has no derivative. On a GPU its inputs are copied to
// the host and its result back (host_cuda.go).
func Host(name string, f HostFunc, shape []int, inputs ...*G.Node) (*G.Node, error) {
	if f == nil || len(inputs) == 0 {
		return nil, fmt.Errorf("graph: Host %s: needs a function and inputs", name)
	}
	return applyGrad(&hostOp{f: f}, "Host:"+name, name, tensor.Shape(shape), inputs...)
}
