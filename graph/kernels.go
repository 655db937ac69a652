package graph

import "math"

// The kernels below are the plain Go loops behind the fused ops. They take contiguous
// row-major slices and never allocate; the ops split their rows over goroutines.
// kernels_test.go holds the unfused reference versions (exact-exp softmax, head
// split/merge, bias add) that the fused ops are checked against. The openblas build,
// which uses cgo anyway, runs C versions of the Linear epilogue, attention and
// LayerNorm on CPUs with AVX2 and FMA (kernels_openblas.c); these Go kernels are then
// the fallback and the references kernels_c_test.go checks the C ones against.

const (
	log2e   = 1.44269504088896341
	ln2hi   = 0.693359375 // ln 2 split in two so that k*ln2hi is exact in float32
	ln2lo   = -2.12194440e-4
	shifter = 1 << 23 * 1.5 // adding it rounds a float32 in (-2^22, 2^22) to an integer
)

// expf is e^x in float32, within a few ulp of the exact value for x in [-87.3, 88]
// (x is clamped to that range): a range reduction x = k ln2 + r, |r| <= ln2/2, and a
// degree-6 Taylor polynomial of e^r (truncation < 1.3e-7 relative). It rounds
// without a sign branch, so mixed-sign inputs cost no mispredictions, and is several
// times cheaper than the float64 math.Exp. The activation and softmax kernels use it.
func expf(x float32) float32 {
	if x < -87.3 {
		x = -87.3
	} else if x > 88 {
		x = 88
	}
	t := x*log2e + shifter
	k := t - shifter                                   // round(x / ln2)
	e := int32(math.Float32bits(t)) - 0x4B400000 + 127 // biased exponent of 2^k
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(e)<<23)
}

// softmaxRow replaces row[:n] by its softmax and zeroes row[n:] (the causal mask:
// masked positions get weight exactly 0).
func softmaxRow(row []float32, n int) {
	mx := row[0]
	for _, v := range row[1:n] {
		mx = max(mx, v)
	}
	var sum float32
	for j, v := range row[:n] {
		e := expf(v - mx)
		row[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range row[:n] {
		row[j] *= inv
	}
	clear(row[n:])
}

// quickGELU is OpenAI's activation x*sigmoid(1.702x), in place. It is the hottest
// elementwise loop (ViT-B/32: 1.8M values an image), so expf's body is written out
// here: Go does not inline expf, and a call per value costs as much as the maths.
func quickGELU(x []float32) {
	for i, v := range x {
		y := -1.702 * v
		if y < -87.3 { // clamp as expf does; plain branches, rarely taken, beat min/max
			y = -87.3
		} else if y > 88 {
			y = 88
		}
		t := y*log2e + shifter
		k := t - shifter
		e := int32(math.Float32bits(t)) - 0x4B400000 + 127
		r := y - k*ln2hi - k*ln2lo
		p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
		x[i] = v / (1 + p*math.Float32frombits(uint32(e)<<23))
	}
}

// gelu is the exact GELU x*Phi(x) = x/2 * (1 + erf(x/sqrt2)) of torch.nn.GELU(), in place.
func gelu(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}
