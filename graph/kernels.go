package graph

import "math"

// The kernels below are the reference implementations behind the custom ops. They
// take contiguous row-major slices, never allocate, and are written for clarity; a
// faster kernel must agree with them (see kernels_test.go).

// layerNorm normalises each row of x [N,D] over D and applies gain and bias [D]:
// dst = (x - mean) / sqrt(var + eps) * gain + bias, with the biased variance as in
// torch.nn.LayerNorm. Statistics accumulate in float64.
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
		inv := 1 / math.Sqrt(ss/float64(d)+float64(eps))
		for j, v := range row {
			out[j] = float32((float64(v)-mean)*inv)*gain[j] + bias[j]
		}
	}
}

// softmax computes, for each row of each [T,C] matrix in x [M,T,C], softmax(scale*x)
// over C. With causal set, column j > row i is masked to -inf first (so it gets
// weight exactly 0), as CLIP's text tower does with its upper-triangular mask.
func softmax(dst, x []float32, t, c int, scale float32, causal bool) {
	for m := 0; m*t*c < len(x); m++ {
		for i := 0; i < t; i++ {
			off := (m*t + i) * c
			row, out := x[off:off+c], dst[off:off+c]
			n := c
			if causal && i+1 < c {
				n = i + 1
			}
			mx := float32(math.Inf(-1))
			for _, v := range row[:n] {
				if v*scale > mx {
					mx = v * scale
				}
			}
			var sum float64
			for j, v := range row[:n] {
				e := math.Exp(float64(v*scale - mx))
				out[j] = float32(e)
				sum += e
			}
			inv := float32(1 / sum)
			for j := range out[:n] {
				out[j] *= inv
			}
			for j := n; j < c; j++ {
				out[j] = 0
			}
		}
	}
}

// quickGELU is OpenAI's activation x*sigmoid(1.702x).
func quickGELU(dst, x []float32) {
	for i, v := range x {
		dst[i] = v / (1 + float32(math.Exp(float64(-1.702*v))))
	}
}

// gelu is the exact GELU x*Phi(x) = x/2 * (1 + erf(x/sqrt2)), as torch.nn.GELU().
func gelu(dst, x []float32) {
	for i, v := range x {
		dst[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// biasAdd adds bias [D] to every row of x [N,D].
func biasAdd(dst, x, bias []float32) {
	d := len(bias)
	for r := 0; r+d <= len(x); r += d {
		row, out := x[r:r+d], dst[r:r+d]
		for j, v := range row {
			out[j] = v + bias[j]
		}
	}
}

// splitHeads extracts part (0 q, 1 k, 2 v) of a packed projection x [B*T, 3D] into
// dst [B*H, T, K] with K = D/H, the layout BatchedMatMul wants.
func splitHeads(dst, x []float32, b, t, h, k, part int) {
	d := h * k
	for bi := 0; bi < b; bi++ {
		for ti := 0; ti < t; ti++ {
			src := x[(bi*t+ti)*3*d+part*d:]
			for hi := 0; hi < h; hi++ {
				copy(dst[((bi*h+hi)*t+ti)*k:((bi*h+hi)*t+ti+1)*k], src[hi*k:(hi+1)*k])
			}
		}
	}
}

// mergeHeads is the inverse layout change: x [B*H, T, K] to dst [B*T, H*K].
func mergeHeads(dst, x []float32, b, t, h, k int) {
	d := h * k
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			for ti := 0; ti < t; ti++ {
				copy(dst[(bi*t+ti)*d+hi*k:(bi*t+ti)*d+(hi+1)*k], x[((bi*h+hi)*t+ti)*k:((bi*h+hi)*t+ti+1)*k])
			}
		}
	}
}

// classPosEmbed builds the vision token sequence: for each image, the class embedding
// cls [D] followed by its G*G patch embeddings from x [B*G*G, D], plus the positional
// embedding pos [T,D] with T = G*G+1, into dst [B*T, D].
func classPosEmbed(dst, x, cls, pos []float32, b, t, d int) {
	for bi := 0; bi < b; bi++ {
		out := dst[bi*t*d : (bi+1)*t*d]
		for j := 0; j < d; j++ {
			out[j] = cls[j] + pos[j]
		}
		src := x[bi*(t-1)*d : (bi+1)*(t-1)*d]
		for i, v := range src {
			out[d+i] = v + pos[d+i]
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
