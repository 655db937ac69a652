package graph

import (
	"math"

	"gonum.org/v1/gonum/blas"
)

// The kernels of the backward ops (the op_*_grad.go files). Like kernels.go they take
// contiguous row-major slices; unlike the forward kernels they are plain Go in every
// build (gradients are a research tool, not the inference hot path).

// activationGrad writes dst = dy * act'(a) for the activation's input a (for ReLU, its
// input or its output).
func activationGrad(act Activation, dst, a, dy []float32) {
	switch act {
	case Identity:
		copy(dst, dy)
	case ReLU:
		for i, x := range a {
			if x > 0 {
				dst[i] = dy[i]
			} else {
				dst[i] = 0
			}
		}
	case QuickGELU:
		// d/dx x*s(1.702x) = s + 1.702 x s (1-s), s the sigmoid.
		for i, x := range a {
			s := 1 / (1 + expf(-1.702*x))
			dst[i] = dy[i] * (s + 1.702*x*s*(1-s))
		}
	case GELU:
		// d/dx x*Phi(x) = Phi(x) + x*phi(x).
		for i, x := range a {
			v := float64(x)
			cdf := 0.5 * (1 + math.Erf(v/math.Sqrt2))
			pdf := math.Exp(-v*v/2) / math.Sqrt(2*math.Pi)
			dst[i] = dy[i] * float32(cdf+v*pdf)
		}
	}
}

// gemmTN writes dst [p,q] = a^T b for a [n,p] and b [n,q].
func gemmTN(dst, a, b []float32, n, p, q int) {
	gemm.Sgemm(blas.Trans, blas.NoTrans, p, q, n, 1, a, p, b, q, 0, dst, q)
}

// layerNormGrad writes the gradient dx of rows x [N,D] through LayerNorm with gain
// [D] given dy [N,D]: with xhat = (x-mean)*rstd and g = dy*gain,
// dx = rstd * (g - mean(g) - xhat*mean(g*xhat)). Statistics in float64.
func layerNormGrad(dx, x, gain, dy []float32, d int, eps float32) {
	for r := 0; r+d <= len(x); r += d {
		mean, rstd := rowStats(x[r:r+d], eps)
		var sg, sgx float64
		for j, v := range x[r : r+d] {
			g := float64(dy[r+j]) * float64(gain[j])
			sg += g
			sgx += g * (float64(v) - mean) * rstd
		}
		sg /= float64(d)
		sgx /= float64(d)
		for j, v := range x[r : r+d] {
			xh := (float64(v) - mean) * rstd
			g := float64(dy[r+j]) * float64(gain[j])
			dx[r+j] = float32(rstd * (g - sg - xh*sgx))
		}
	}
}

// layerNormGainGrad adds sum over rows of dy*xhat to dgain [D].
func layerNormGainGrad(dgain, x, dy []float32, d int, eps float32) {
	acc := make([]float64, d)
	for r := 0; r+d <= len(x); r += d {
		mean, rstd := rowStats(x[r:r+d], eps)
		for j, v := range x[r : r+d] {
			acc[j] += float64(dy[r+j]) * (float64(v) - mean) * rstd
		}
	}
	for j, s := range acc {
		dgain[j] = float32(s)
	}
}

// rowStats returns a row's mean and 1/sqrt(var+eps) as LayerNorm computes them.
func rowStats(row []float32, eps float32) (mean, rstd float64) {
	for _, v := range row {
		mean += float64(v)
	}
	mean /= float64(len(row))
	var ss float64
	for _, v := range row {
		c := float64(v) - mean
		ss += c * c
	}
	return mean, 1 / math.Sqrt(ss/float64(len(row))+float64(eps))
}

// softmaxGradRow turns dp [n] into the gradient of the scores behind the softmax
// weights p [n]: ds_j = p_j (dp_j - sum_i p_i dp_i), in place.
func softmaxGradRow(dp, p []float32) {
	var dot float32
	for j, w := range p {
		dot += w * dp[j]
	}
	for j, w := range p {
		dp[j] = w * (dp[j] - dot)
	}
}
