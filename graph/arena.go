package graph

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// arena is the activation memory of one compiled Machine: a few slots, each shared by
// fused ops whose results are never live at the same time, so a ViT-B/32 graph at
// batch 32 holds tens of megabytes of activations instead of one buffer per op.
type arena struct {
	slots []*slot
	of    map[*tensor.Dense]*slot // each bound output -> its slot
	dev   backend                 // where the slots live: nil for host memory (device.go)
}

// slot is one buffer; owner is the output that last wrote it in the current run.
type slot struct {
	data  []float32
	owner *tensor.Dense
}

// check fails when an input lives in a slot that another op has written since: the
// schedule assign planned for is not the one the tape machine ran (a bug, not a user
// error), and the input would be garbage.
func (a *arena) check(in []G.Value) error {
	for _, v := range in {
		d, ok := v.(*tensor.Dense)
		if !ok {
			continue
		}
		if s := a.of[d]; s != nil && s.owner != d {
			return fmt.Errorf("graph: internal error: an input's buffer was reused while still live")
		}
	}
	return nil
}

// assign plans the arena for g and binds every fused op's storage. It walks the nodes
// in the order gorgonia's tape machine executes them (G.Sort, reversed, which is
// deterministic), gives each fused op's result a free slot, and frees a slot once the
// last consumer of its result has run. A result read by an op that may overwrite it
// in place keeps a slot of its own. Slots are sized to their largest tenant.
// The slots are host memory, or dev's memory when dev is not nil (see device.go).
func assign(g *G.ExprGraph, dev backend) (*arena, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("graph: sort: %w", err)
	}
	slices.Reverse(sorted)
	pos := make(map[*G.Node]int, len(sorted))
	for i, n := range sorted {
		pos[n] = i
	}
	last := make(map[*G.Node]int, len(sorted)) // position of the last consumer
	pinned := map[*G.Node]bool{}
	for i, n := range sorted {
		kids := g.From(n.ID())
		for kids.Next() {
			c := kids.Node().(*G.Node)
			last[c] = max(last[c], i)
			if n.Op() != nil && n.Op().OverwritesInput() >= 0 {
				pinned[c] = true
			}
		}
	}
	type tenant struct {
		op   *owned
		slot int
		n    int // values; a bfloat16 result (owned.half) takes n/2 float32s of its slot
		s    tensor.Shape
	}
	var (
		tenants []tenant
		sizes   []int
		free    []int // slot indices
		release = map[int][]int{}
	)
	for i, n := range sorted {
		if op, ok := n.Op().(pooledOp); ok {
			size := n.Shape().TotalSize()
			if op.storage().half {
				size = (size + 1) / 2
			}
			best := -1 // the smallest free slot that fits, else the largest (grown)
			for j, s := range free {
				if best < 0 {
					best = j
					continue
				}
				b := sizes[free[best]]
				fits, bestFits := sizes[s] >= size, b >= size
				if fits && (!bestFits || sizes[s] < b) || !fits && !bestFits && sizes[s] > b {
					best = j
				}
			}
			var s int
			if best >= 0 {
				s = free[best]
				free = slices.Delete(free, best, best+1)
				sizes[s] = max(sizes[s], size)
			} else {
				s = len(sizes)
				sizes = append(sizes, size)
			}
			tenants = append(tenants, tenant{op.storage(), s, n.Shape().TotalSize(), n.Shape()})
			if !pinned[n] {
				end := max(last[n], i)
				release[end] = append(release[end], s)
			}
		}
		// Inputs read at step i (and a result nobody reads) free their slots only after
		// step i has written its own result.
		free = append(free, release[i]...)
		delete(release, i)
	}
	a := &arena{of: make(map[*tensor.Dense]*slot, len(tenants)), dev: dev}
	for _, n := range sizes {
		var data []float32
		if dev == nil {
			data = make([]float32, n)
		} else if data, err = dev.alloc(n); err != nil {
			a.free()
			return nil, err
		}
		a.slots = append(a.slots, &slot{data: data})
	}
	for _, t := range tenants {
		s := a.slots[t.slot]
		var out *tensor.Dense
		if t.op.half {
			out = tensor.New(tensor.WithShape(t.s.Clone()...), tensor.WithBacking(halves(s.data, t.n)))
		} else {
			out = tensor.New(tensor.WithShape(t.s.Clone()...), tensor.WithBacking(s.data[:t.n]))
		}
		t.op.out, t.op.slot, t.op.a = out, s, a
		a.of[out] = s
	}
	return a, nil
}

// bytes returns the arena's size.
func (a *arena) bytes() int {
	n := 0
	for _, s := range a.slots {
		n += 4 * len(s.data)
	}
	return n
}
