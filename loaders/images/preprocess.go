package images

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Mean and Std are CLIP's per-channel normalisation (clip.py's _transform), in RGB order.
var (
	Mean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	Std  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Normalization is the per-channel mean and standard deviation pixels are
// normalised with after scaling to [0, 1] (torchvision's Normalize), in RGB order.
// The zero value means CLIP's (Mean, Std).
type Normalization struct{ Mean, Std [3]float32 }

// orCLIP returns n, or CLIP's normalisation for the zero value.
func (n Normalization) orCLIP() Normalization {
	if n == (Normalization{}) {
		return Normalization{Mean: Mean, Std: Std}
	}
	return n
}

// Values returns n's mean and std, CLIP's for the zero value.
func (n Normalization) Values() Normalization { return n.orCLIP() }

// IsCLIP reports whether n is CLIP's normalisation (the zero value included).
func (n Normalization) IsCLIP() bool { return n.orCLIP() == Normalization{Mean: Mean, Std: Std} }

// Transform is one model's preprocessing: OpenAI's _transform(Size) (PIL bicubic
// resize of the shorter side, centre crop) with the model's normalisation (open_clip
// models carry theirs in preprocess_cfg).
type Transform struct {
	// Size is the output side in pixels.
	Size int
	// Norm normalises the RGB values; zero means CLIP's.
	Norm Normalization
}

// luts caches each normalisation's lookup table.
var luts sync.Map // Normalization -> *[3][256]float32

// MaxSize bounds the output side of Preprocess; CLIP models use 224 or 336.
const MaxSize = 4096

// lut returns n's table: lut[c][v] is the normalised value of byte v in channel c,
// computed as torchvision does in float32: ToTensor divides by 255, Normalize
// subtracts the mean and divides by the std, each step rounded to float32.
func (n Normalization) lut() *[3][256]float32 {
	n = n.orCLIP()
	if t, ok := luts.Load(n); ok {
		return t.(*[3][256]float32)
	}
	t := new([3][256]float32)
	for c := range 3 {
		for v := range 256 {
			x := float32(v) / float32(255)
			x = float32(x - n.Mean[c])
			t[c][v] = float32(x / n.Std[c])
		}
	}
	luts.Store(n, t)
	return t
}

// scratchPool recycles resize buffers across images and goroutines.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Preprocess writes OpenAI's _transform(size) of img into dst[:3*size*size] as CHW
// float32: resize the shorter side to size (PIL bicubic, longer side truncated), centre
// crop size x size, convert to RGB, scale to [0, 1] and normalise with Mean and Std.
// dst is the caller's slot (a row of a batch); only the crop is ever resampled.
func Preprocess(img *Image, size int, dst []float32) error {
	return Transform{Size: size}.Image(img, dst)
}

// Image writes t of img into dst[:3*Size*Size] as CHW float32, as Preprocess does
// with t's normalisation.
func (t Transform) Image(img *Image, dst []float32) error {
	size := t.Size
	if err := img.check(); err != nil {
		return err
	}
	if size <= 0 || size > MaxSize {
		return fmt.Errorf("images: size %d out of range 1..%d", size, MaxSize)
	}
	n := size * size
	if len(dst) < 3*n {
		return fmt.Errorf("images: destination holds %d values, need 3*%d*%d = %d", len(dst), size, size, 3*n)
	}
	w, h := ResizedSize(img.Width, img.Height, size)
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.resizeWindow(img, w, h, CropOffset(w, size), CropOffset(h, size), size, size)
	rgb := s.toRGB()
	lut := t.Norm.lut()
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:3*n]
	for i := range n {
		p := rgb[3*i : 3*i+3]
		r[i], g[i], b[i] = lut[0][p[0]], lut[1][p[1]], lut[2][p[2]]
	}
	// A scratch that grew for a huge image would pin its memory in the pool.
	if cap(s.pre) > 1<<24 || cap(s.tmp) > 1<<24 {
		*s = scratch{}
	}
	return nil
}

// PreprocessBytes decodes an encoded image and preprocesses it into dst like Preprocess;
// name identifies the image in errors.
func PreprocessBytes(data []byte, name string, size int, dst []float32) error {
	return Transform{Size: size}.Bytes(data, name, dst)
}

// Bytes is PreprocessBytes with t.
func (t Transform) Bytes(data []byte, name string, dst []float32) error {
	img, release, err := decodeAt(bytes.NewReader(data), int64(len(data)), name, MaxPixels, data)
	if err != nil {
		return err
	}
	defer release()
	return t.named(img, name, dst)
}

// PreprocessFile decodes the image file at path as it streams from disk (see
// ReadFile for what is refused first) and preprocesses it into dst like Preprocess.
// It is the per-item step of a loading pipeline: call it from several goroutines,
// each with its own slot of a batch; together they hold at most MaxDecodeBytes.
func PreprocessFile(path string, size int, dst []float32) error {
	return Transform{Size: size}.File(path, dst)
}

// File is PreprocessFile with t.
func (t Transform) File(path string, dst []float32) error {
	img, release, err := decodeFile(path)
	if err != nil {
		return err
	}
	defer release()
	return t.named(img, path, dst)
}

// named is Image with name added to its errors.
func (t Transform) named(img *Image, name string, dst []float32) error {
	if err := t.Image(img, dst); err != nil {
		return fmt.Errorf("%w (%s)", err, name)
	}
	return nil
}

// PreprocessFiles preprocesses paths with workers goroutines (GOMAXPROCS when <= 0) and
// returns the batch [K,3,size,size] in path order. Failures are joined into the error,
// one per path in path order, each naming its file; their slots are left zero.
func PreprocessFiles(paths []string, size, workers int) ([]float32, error) {
	return Transform{Size: size}.Files(paths, workers)
}

// Files is PreprocessFiles with t.
func (t Transform) Files(paths []string, workers int) ([]float32, error) {
	size := t.Size
	if size <= 0 || size > MaxSize {
		return nil, fmt.Errorf("images: size %d out of range 1..%d", size, MaxSize)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(min(workers, len(paths)), 1)
	stride := 3 * size * size
	out := make([]float32, len(paths)*stride)
	errs := make([]error, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = t.File(paths[i], out[i*stride:(i+1)*stride])
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}
