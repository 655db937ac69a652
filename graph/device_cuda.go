//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"gorgonia.org/cu"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CUDA reports whether this build has the CUDA device (build tag gorgoclip_cuda).
//
// The tag is not plain "cuda": gorgonia v0.9.18 turns on its own CUDA engine under
// that tag, which imports gorgonia.org/cu/dnn and so needs cudnn.h and libcudnn.
const CUDA = true

// commonSource precedes every op's kernels in the one source NVRTC compiles when a
// device opens, for that device's compute capability. NVRTC rather than nvcc-built PTX:
// no CUDA compiler is needed where gorgoclip is built (its machines have no GPU and
// Debian's nvcc 11.8 does not know every GPU we run on), and the code is always built
// for the exact GPU in use.
//
//go:embed cuda/common.cuh
var commonSource string

// cudaKernel runs one fused op on the device: dst is the op's device output, p and s
// its inputs' device addresses and shapes.
type cudaKernel func(d *cudaDevice, op G.Op, dst uintptr, p []uintptr, s []tensor.Shape) error

// cudaOp is one op type's CUDA implementation, as its _cuda.go file registers it.
type cudaOp struct {
	file   string   // the op's kernel source file, for ordering and messages
	source string   // its CUDA C
	names  []string // the kernels it defines
	run    cudaKernel
}

// cudaOps holds every op type that runs on the CUDA device. An op type missing here
// cannot be part of a graph built for the GPU (see Device.supports).
var cudaOps = map[reflect.Type]*cudaOp{}

var kernelDecl = regexp.MustCompile(`extern "C" __global__ void (\w+)\(`)

// cudaSources are kernel files that serve several ops (registerCUDASource).
var cudaSources []*cudaOp

// registerCUDASource adds kernels that serve several ops (graph/cuda/file, e.g. the
// 16-bit casts of gemm_cuda.go) to the source compiled when a device opens.
func registerCUDASource(file, source string) {
	cudaSources = append(cudaSources, &cudaOp{file: file, source: source, names: kernelNames(source)})
}

// kernelNames lists the kernels source defines.
func kernelNames(source string) []string {
	var names []string
	for _, m := range kernelDecl.FindAllStringSubmatch(source, -1) {
		names = append(names, m[1])
	}
	return names
}

// registerCUDA makes op type T runnable on the CUDA device: source (the CUDA C of
// graph/cuda/file, embedded by the op's _cuda.go file) is compiled with every other
// op's when a device opens, and run launches its kernels. Called from init functions;
// a second registration of T panics.
func registerCUDA[T G.Op](file, source string, run func(d *cudaDevice, op T, dst uintptr, p []uintptr, s []tensor.Shape) error) {
	t := reflect.TypeFor[T]()
	if _, dup := cudaOps[t]; dup {
		panic(fmt.Sprintf("graph: CUDA implementation of %v registered twice", t))
	}
	cudaOps[t] = &cudaOp{file: file, source: source, names: kernelNames(source),
		run: func(d *cudaDevice, op G.Op, dst uintptr, p []uintptr, s []tensor.Shape) error {
			return run(d, op.(T), dst, p, s)
		}}
}

// kernelSource returns common.cuh and every registered op's kernels, ordered by file,
// and the kernel names.
func kernelSource() (string, []string) {
	ops := make([]*cudaOp, 0, len(cudaOps)+len(cudaSources))
	for _, o := range cudaOps {
		ops = append(ops, o)
	}
	ops = append(ops, cudaSources...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].file < ops[j].file })
	var src strings.Builder
	src.WriteString(commonSource)
	var names []string
	for _, o := range ops {
		if o.source == "" { // an op run by the host or by cuBLAS alone
			continue
		}
		fmt.Fprintf(&src, "\n// ---- %s\n%s", o.file, o.source)
		names = append(names, o.names...)
	}
	return src.String(), names
}

var (
	cudaMu   sync.Mutex
	cudaDevs = map[int]*cudaDevice{}
)

// cudaDevice is one GPU: its primary context (shared with cuBLAS, which uses the CUDA
// runtime), a cuBLAS handle, the compiled kernels, and the device copies of every
// weight seen. All work goes to the legacy default stream, so kernels, GEMMs and
// copies run in the order issued and a device-to-host copy waits for all of them.
// Calls are serialised (one lock, re-entrant within the OS thread that holds it).
type cudaDevice struct {
	ord  int
	name string
	ctx  cu.CUContext
	blas cublasHandle
	fns  map[string]cu.Function
	sms  int

	lock  sync.Mutex
	owner atomic.Int64 // OS thread holding lock, 0 when free
	depth int          // nesting of enter on the owner thread

	// Guarded by lock:
	allocs  map[uintptr]int                // device allocations: address -> floats
	wcopies map[*tensor.Dense][]float32    // host weight -> its device copy
	scratch []float32                      // attention and patch scratch, grown on demand
	half    []float32                      // 16-bit GEMM inputs (gemm_cuda.go), grown on demand
	args    []uint64                       // kernel parameter slots
	params  []unsafe.Pointer               // pointers to args
	sizes   map[*tensor.Dense]tensor.Shape // logical shape of each cached weight
}

// openCUDA returns GPU ord, opening it on first use (one per process and GPU).
func openCUDA(ord int) (Device, error) {
	cudaMu.Lock()
	defer cudaMu.Unlock()
	if d, ok := cudaDevs[ord]; ok {
		return d, nil
	}
	d, err := newCUDA(ord)
	if err != nil {
		return nil, fmt.Errorf("graph: cuda:%d: %w", ord, err)
	}
	cudaDevs[ord] = d
	return d, nil
}

func newCUDA(ord int) (*cudaDevice, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, err
	}
	if ord >= n {
		return nil, fmt.Errorf("%w (%d found)", ErrNoGPU, n)
	}
	if err := loadLibs(); err != nil {
		return nil, err
	}
	dev := cu.Device(ord)
	d := &cudaDevice{ord: ord, allocs: map[uintptr]int{}, wcopies: map[*tensor.Dense][]float32{},
		sizes: map[*tensor.Dense]tensor.Shape{}, fns: map[string]cu.Function{}}
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, err
	}
	defer d.enter()()
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return nil, err
	}
	if d.sms, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return nil, err
	}
	gpu, _ := dev.Name()
	tf32 := os.Getenv("GORGOCLIP_CUDA_TF32") == "1"
	var ver int
	if d.blas, ver, err = cublasCreate(tf32); err != nil {
		return nil, err
	}
	// A CUBIN for the exact architecture; PTX when this NVRTC predates the GPU.
	source, kernelNames := kernelSource()
	image, err := nvrtcCompile(source, "gorgoclip_kernels.cu", fmt.Sprintf("sm_%d%d", major, minor), true)
	if err != nil {
		var err2 error
		if image, err2 = nvrtcCompile(source, "gorgoclip_kernels.cu", fmt.Sprintf("compute_%d%d", major, minor), false); err2 != nil {
			return nil, err
		}
	}
	mod, err := cu.LoadData(string(image))
	if err != nil {
		return nil, fmt.Errorf("loading the kernels: %w", err)
	}
	for _, k := range kernelNames {
		if d.fns[k], err = mod.Function(k); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", k, err)
		}
	}
	gemms := "fp32"
	if tf32 {
		gemms = "tf32"
	}
	d.name = fmt.Sprintf("cuda:%d (%s, sm_%d%d, %s %d, NVRTC %s, %s GEMMs)", ord, gpu, major, minor, libNames[0], ver, nvrtcVersion(), gemms)
	return d, nil
}

// Name describes the GPU and the libraries in use.
func (d *cudaDevice) Name() string { return d.name }

// enter locks the goroutine to its OS thread, takes the device's lock (re-entrant on
// that thread) and makes the device's context current.
func (d *cudaDevice) enter() func() {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	if d.owner.Load() == int64(tid) { // only the holder stores its own id
		d.depth++
	} else {
		d.lock.Lock()
		d.owner.Store(int64(tid))
		d.depth = 1
	}
	exit := func() {
		d.depth--
		if d.depth == 0 {
			d.owner.Store(0)
			d.lock.Unlock()
		}
		runtime.UnlockOSThread()
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		exit() // a recovered panic must not leave the device locked
		panic(fmt.Sprintf("graph: cuda:%d: set context: %v", d.ord, err))
	}
	return exit
}

func (d *cudaDevice) alloc(n int) ([]float32, error) {
	p, err := cu.MemAlloc(int64(4 * max(n, 1)))
	if err != nil {
		return nil, fmt.Errorf("cuda:%d: allocating %d MB: %w", d.ord, 4*n>>20, err)
	}
	d.allocs[uintptr(p)] = n
	return deviceSlice(uintptr(p), n), nil
}

func (d *cudaDevice) free(data []float32) {
	if data == nil {
		return
	}
	p := addrOf(data)
	if _, ok := d.allocs[p]; ok {
		delete(d.allocs, p)
		cu.MemFree(cu.DevicePtr(p))
	}
}

func (d *cudaDevice) weights(ws []*tensor.Dense) error {
	defer d.enter()()
	for _, w := range ws {
		if _, ok := d.wcopies[w]; ok {
			continue
		}
		if h := bf16Data(w); h != nil {
			if err := d.weight16(w, h); err != nil {
				return err
			}
			continue
		}
		host, shape, err := f32(w) // a transposed view is materialised: the copy is contiguous
		if err != nil {
			return err
		}
		dev, err := d.alloc(len(host))
		if err != nil {
			return err
		}
		if err := d.copyIn(dev, host); err != nil {
			return err
		}
		d.wcopies[w], d.sizes[w] = dev, shape.Clone()
		copyStats.w.Add(1)
		copyStats.wb.Add(int64(4 * len(host)))
	}
	return nil
}

func (d *cudaDevice) copyIn(dst, src []float32) error {
	if len(dst) != len(src) {
		return fmt.Errorf("copy of %d values into %d", len(src), len(dst))
	}
	if len(src) == 0 {
		return nil
	}
	return cu.MemcpyHtoD(cu.DevicePtr(addrOf(dst)), unsafe.Pointer(&src[0]), int64(4*len(src)))
}

func (d *cudaDevice) upload(dst, src []float32) error {
	defer d.enter()()
	if err := d.copyIn(dst, src); err != nil {
		return err
	}
	copyStats.h2d.Add(1)
	copyStats.in.Add(int64(4 * len(src)))
	return nil
}

func (d *cudaDevice) download(dst, src []float32) error {
	defer d.enter()() // called from the tape machine's goroutine, which holds nothing
	if len(dst) != len(src) {
		return fmt.Errorf("copy of %d values into %d", len(src), len(dst))
	}
	if len(src) > 0 {
		if err := cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(addrOf(src)), int64(4*len(src))); err != nil {
			return err
		}
	}
	copyStats.d2h.Add(1)
	copyStats.out.Add(int64(4 * len(src)))
	return nil
}

// ptr resolves an op input to a device address: a device activation (an input buffer
// or an arena slot) or the device copy of a host weight. Anything else is an error:
// no value is ever copied implicitly.
func (d *cudaDevice) ptr(v G.Value) (uintptr, tensor.Shape, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return 0, nil, fmt.Errorf("input %T is not a *tensor.Dense", v)
	}
	if w, ok := d.wcopies[t]; ok {
		return addrOf(w), d.sizes[t], nil
	}
	data, ok := t.Data().([]float32)
	if !ok {
		return 0, nil, fmt.Errorf("input of type %v, want float32", t.Dtype())
	}
	p := addrOf(data)
	if n, ok := d.allocs[p]; !ok || n < len(data) || t.RequiresIterator() {
		return 0, nil, fmt.Errorf("input %v is host memory that was not uploaded", t.Shape())
	}
	return p, t.Shape(), nil
}

// ptrs resolves every input.
func (d *cudaDevice) ptrs(in []G.Value) ([]uintptr, []tensor.Shape, error) {
	ps, ss := make([]uintptr, len(in)), make([]tensor.Shape, len(in))
	for i, v := range in {
		var err error
		if ps[i], ss[i], err = d.ptr(v); err != nil {
			return nil, nil, fmt.Errorf("input %d: %w", i, err)
		}
	}
	return ps, ss, nil
}

// scratchOf returns device scratch of at least n floats (valid until the next call).
func (d *cudaDevice) scratchOf(n int) (uintptr, error) { return d.grow(&d.scratch, n) }

// grow makes *buf device memory of at least n floats and returns its address.
func (d *cudaDevice) grow(buf *[]float32, n int) (uintptr, error) {
	if len(*buf) < n {
		if *buf != nil {
			if err := cu.Synchronize(); err != nil { // queued kernels may still read it
				return 0, err
			}
			d.free(*buf)
			*buf = nil
		}
		s, err := d.alloc(n)
		if err != nil {
			return 0, err
		}
		*buf = s
	}
	return addrOf(*buf), nil
}

// launch runs kernel name over grid blocks of block threads. Each argument is one
// 8-byte slot (cu.Function.Launch copies 8 bytes per parameter): addresses and
// integers as they are, floats as their bits in the low half (little-endian).
func (d *cudaDevice) launch(name string, grid, block int, args ...uint64) error {
	d.args = append(d.args[:0], args...)
	d.params = d.params[:0]
	for i := range d.args {
		d.params = append(d.params, unsafe.Pointer(&d.args[i]))
	}
	if err := d.fns[name].Launch(grid, 1, 1, block, 1, 1, 0, cu.NoStream, d.params); err != nil {
		return fmt.Errorf("kernel %s: %w", name, err)
	}
	return nil
}

// grid returns the blocks of 256 threads for a grid-stride loop over n elements.
func (d *cudaDevice) grid(n int) int { return max(1, min((n+255)/256, 32*d.sms)) }

func u(p uintptr) uint64 { return uint64(p) }
func i(n int) uint64     { return uint64(uint32(int32(n))) }
func f(x float32) uint64 { return uint64(math.Float32bits(x)) }

// supports reports whether op has a CUDA implementation.
func (d *cudaDevice) supports(op G.Op) bool { return cudaOps[reflect.TypeOf(op)] != nil }

func (d *cudaDevice) run(o G.Op, out *tensor.Dense, in []G.Value) error {
	defer d.enter()()
	k := cudaOps[reflect.TypeOf(o)]
	if k == nil {
		return fmt.Errorf("no CUDA implementation of %v", o)
	}
	p, s, err := d.ptrs(in)
	if err != nil {
		return err
	}
	dst, _, err := d.ptr(out)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return k.run(d, o, dst, p, s)
}
