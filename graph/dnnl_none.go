//go:build !dnnl

package graph

// DNNL reports whether this build links oneDNN (build tag dnnl) for BF16 graphs.
const DNNL = false
