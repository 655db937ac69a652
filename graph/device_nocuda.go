//go:build !gorgoclip_cuda

package graph

// CUDA reports whether this build has the CUDA device (build tag gorgoclip_cuda).
const CUDA = false

// openCUDA is the CUDA device in a build without CUDA: ErrNoCUDA.
func openCUDA(int) (Device, error) { return nil, ErrNoCUDA }
