package graph

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BF16Blocked is the dtype of a BF16 graph's Linear weight repacked, in place, into
// oneDNN's own layout for its bfloat16 matmul (Builder.PackWeights): the same
// bfloat16 values in the order the dot-product instructions read them (pairs along
// the inputs, outputs in blocks of 64 on AVX512-BF16). The shape stays the logical
// one; only the CPU's oneDNN GEMMs read the data, and anything else that meets such a
// weight refuses it by this type rather than misreading it.
//
// Why: left in PyTorch's layout, every GEMM call repacks its weight first, and with
// the rows split over goroutines each one repacks all of it. Measured single-threaded
// per primitive on a Zen 5 core pair (2 goroutines): the ViT-B/32 block shapes at
// 1600 rows run 8-15% faster from the blocked layout, the text tower's at 352 rows
// 16-65% faster.
var BF16Blocked = tensor.Dtype{Type: reflect.TypeOf(blockedBF16(0))}

// blockedBF16 is the element type of BF16Blocked data: a bfloat16 value in oneDNN's
// blocked order.
type blockedBF16 uint16

// packBF16 repacks the bfloat16 weight w of a GEMM with k inputs and n outputs,
// stored [n, k] (or [k, n] when inout), in place into oneDNN's blocked layout. It
// reports false, leaving w alone, where that layout would need more room (padding).
// Set in builds with oneDNN (dnnl.go); nil otherwise.
var packBF16 func(n, k int, inout bool, w []uint16) (bool, error)

// unblockTest, where set (dnnl.go), makes the GEMMs compiled while on read a blocked
// weight as if oneDNN had no kernel for its layout at their row count: reordered
// back to PyTorch's on each call (tests).
var unblockTest func(on bool)

// blockedGEMM reports whether oneDNN runs bfloat16 GEMMs from blocked weights on this
// CPU with a fast kernel (not where BF16 graphs use the fallback).
var blockedGEMM = sync.OnceValue(func() bool {
	if packBF16 == nil || newMMKernel == nil {
		return false
	}
	k, _, err := newMMKernel(mmSpec{N: 64, K: 64, LDD: 64, XHalf: true, Blocked: true}, 64)
	if err != nil {
		return false
	}
	k.free()
	return true
})

// PackWeights repacks, in place, the bfloat16 weights of the graph's Linear ops that
// keep (when not nil) accepts into oneDNN's blocked layout (BF16Blocked), and returns
// how many it repacked. It does so only for a BF16 graph on the CPU where oneDNN runs
// the GEMMs (else it returns 0), and only for weights that nothing but Linear ops of
// one orientation reads and whose blocked layout takes no more room. Like
// ConvertWeights it changes the tensors every graph of the model shares, so it runs
// once, before any graph does; b itself is spent afterwards (build the graphs to run
// anew).
func (b *Builder) PackWeights(keep func(*tensor.Dense) bool) (int, error) {
	if b.prec != BF16 || b.dev != nil || !blockedGEMM() {
		return 0, nil
	}
	b.spent = true
	packed := 0
	for _, n := range b.G.AllNodes() {
		op, ok := n.Op().(*LinearOp)
		if !ok {
			continue
		}
		w := children(b.G, n)[op.weightOperand()]
		if !linearWeightOnly(b.G, w, op.InOut) {
			continue
		}
		t, err := weightTensor(w)
		if err != nil {
			return packed, err
		}
		if t.Dtype() != BFloat16 || (keep != nil && !keep(t)) {
			continue // float32, repacked through another node, or not to be touched
		}
		h := t.Data().([]uint16)
		in, out := op.dims(t.Shape())
		done, err := packBF16(out, in, op.InOut, h)
		if err != nil {
			return packed, fmt.Errorf("graph: weight %s: %w", w.Name(), err)
		}
		if !done {
			continue
		}
		blocked := unsafe.Slice((*blockedBF16)(unsafe.Pointer(&h[0])), len(h))
		*t = *tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(blocked))
		packed++
	}
	return packed, nil
}

// linearWeightOnly reports whether every reader of w is a LinearOp of orientation
// inout taking it as its weight.
func linearWeightOnly(g *G.ExprGraph, w *G.Node, inout bool) bool {
	readers := g.To(w.ID())
	for readers.Next() {
		r := readers.Node().(*G.Node)
		op, ok := r.Op().(*LinearOp)
		if !ok || op.InOut != inout {
			return false
		}
		for i, c := range children(g, r) {
			if c == w && i != op.weightOperand() {
				return false
			}
		}
	}
	return true
}

// weight16 returns the 16-bit data of a GEMM weight passed to Do and whether it is in
// the blocked layout, or nil when the weight is float32.
func weight16(v G.Value) (h []uint16, blocked bool) {
	t, ok := v.(*tensor.Dense)
	if !ok || t.RequiresIterator() {
		return nil, false
	}
	if t.Dtype() == BF16Blocked {
		b := t.Data().([]blockedBF16)
		return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)), true
	}
	return bf16Data(v), false
}

// is16 reports whether a weight of dtype dt is stored in 16 bits (plain or blocked).
func is16(dt tensor.Dtype) bool { return dt == BFloat16 || dt == BF16Blocked }
