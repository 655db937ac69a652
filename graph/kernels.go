package graph

import "math"

// The kernels below are the plain Go loops behind the fused ops. They take contiguous
// row-major slices and never allocate; the ops split their rows over goroutines.
// kernels_test.go holds the unfused reference versions (exact-exp softmax, head
// split/merge, bias add) that the fused ops are checked against. The openblas build,
// which uses cgo anyway, runs C versions of the Linear epilogue, attention and
// LayerNorm on CPUs with AVX2 and FMA (kernels_openblas.c); these Go kernels are then
// the fallback and the references kernels_c_test.go checks the C ones against.

// layerNorm normalises each row of x [N,D] over D and applies gain and bias [D]:
// dst = (x - mean) / sqrt(var + eps) * gain + bias, with the biased variance as in
// torch.nn.LayerNorm. Statistics accumulate in float64. dst may not alias x.
func layerNorm(dst, x, gain, bias []float32, d int, eps float32) {
	for r := 0; r+d <= len(x); r += d {
		row, out := x[r:r+d], dst[r:r+d]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(d)
		var ss float64
		for _, v := range row {
			c := float64(v) - mean
			ss += c * c
		}
		inv := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		m := float32(mean)
		for j, v := range row {
			out[j] = (v-m)*inv*gain[j] + bias[j]
		}
	}
}

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

// patchify copies the G*G patches of image px [3,R,R] into rows dst [G*G, 3*P*P] in
// conv1's weight order (channel, row, column), patches in raster order: a stride-P,
// P-by-P convolution is then one matrix product with the [D, 3*P*P] weight.
func patchify(dst, px []float32, r, p int) {
	g := r / p
	i := 0
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			for c := 0; c < 3; c++ {
				for py := 0; py < p; py++ {
					off := (c*r+gy*p+py)*r + gx*p
					copy(dst[i:i+p], px[off:off+p])
					i += p
				}
			}
		}
	}
}

// addPositional adds the first T rows of pos [Tmax, D] to each sequence of x [B*T, D].
func addPositional(dst, x, pos []float32, t, d int) {
	n := t * d
	for off := 0; off+n <= len(x); off += n {
		for i := 0; i < n; i++ {
			dst[off+i] = x[off+i] + pos[i]
		}
	}
}

// selectRows picks one row per sequence: dst[b] = x[b*T + idx[b]] for x [B*T, D].
func selectRows(dst, x []float32, idx []int, t, d int) {
	for bi, p := range idx {
		copy(dst[bi*d:(bi+1)*d], x[(bi*t+p)*d:(bi*t+p+1)*d])
	}
}
