//go:build dnnl

// oneDNN (Debian's libdnnl, the library PyTorch's CPU bfloat16 path runs on) for the
// GEMMs of BF16 graphs, and of float32 graphs (see fp32GEMM): one matmul primitive per
// op and row count, with the op's epilogue fused as oneDNN post-ops (bias, layer
// scale, residual, activation, or an accumulation into the destination), bfloat16
// (or float32) operands and float32 accumulation.
// Each primitive runs single-threaded on the calling thread: the Go side splits the
// rows over its goroutines, as it does for every other kernel, so oneDNN's OpenMP
// threads never spin against the Go kernels between GEMMs.

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static dnnl_engine_t gc_engine;

// TRY jumps to fail with the reason in err when a oneDNN call fails.
#define TRY(x)                                                                                     \
	do {                                                                                       \
		dnnl_status_t s_ = (x);                                                            \
		if (s_ != dnnl_success) {                                                          \
			snprintf(err, errlen, "%s failed (status %d)", #x, (int)s_);              \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)

// gc_dnnl_init creates the CPU engine; it returns oneDNN's effective ISA (a
// dnnl_cpu_isa_t), or -1 when there is no engine.
long gc_dnnl_init(void) {
	if (dnnl_engine_create(&gc_engine, dnnl_cpu, 0) != dnnl_success) return -1;
	return (long)dnnl_get_effective_cpu_isa();
}

// blocked_md sets *md to oneDNN's own layout for a bfloat16 weight W [k, n]: the one
// its matmul picks when left free to (format "any"; BA16a64b2a on AVX512-BF16: pairs
// along k for the dot-product instructions, columns in blocks of 64). It depends on
// n, k and the CPU, not on the row count (checked at 1 to 1600 rows), so a weight is
// repacked once for every primitive that reads it (gc_pack, gc_mm_create).
static dnnl_status_t blocked_md(long n, long k, dnnl_memory_desc_t *md) {
	dnnl_memory_desc_t s, w, d;
	dnnl_dims_t sd = {256, k}, wd = {k, n}, dd = {256, n};
	dnnl_matmul_desc_t mmd;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_status_t st = dnnl_memory_desc_init_by_tag(&s, 2, sd, dnnl_bf16, dnnl_ab);
	if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&w, 2, wd, dnnl_bf16, dnnl_format_tag_any);
	if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d, 2, dd, dnnl_f32, dnnl_ab);
	if (st == dnnl_success) st = dnnl_matmul_desc_init(&mmd, &s, &w, NULL, &d);
	if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &mmd, NULL, gc_engine, NULL);
	if (st == dnnl_success) *md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	if (pd) dnnl_primitive_desc_destroy(pd);
	return st;
}

// gc_pack reorders the bfloat16 weight w, stored [n, k] (PyTorch's) or [k, n] when
// inout, in place into blocked_md's layout. It returns 1 when it did, 0 when that
// layout would take more room than w (padding: n or k not a multiple of its blocks)
// and w is left as it was, or -1 with the reason in err.
int gc_pack(long n, long k, int inout, unsigned short *w, char *err, int errlen) {
	dnnl_memory_desc_t plain, blocked;
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	dnnl_memory_t src = NULL, dst = NULL;
	dnnl_stream_t stream = NULL;
	void *tmp = NULL;
	size_t size = 0;
	int ok = -1;
	dnnl_dims_t wd = {k, n};
	int threads = omp_get_max_threads();
	omp_set_num_threads(1);
	TRY(blocked_md(n, k, &blocked));
	TRY(dnnl_memory_desc_init_by_tag(&plain, 2, wd, dnnl_bf16, inout ? dnnl_ab : dnnl_ba));
	size = dnnl_memory_desc_get_size(&blocked);
	if (size != (size_t)(n * k) * 2) {
		ok = 0;
		goto fail;
	}
	// A mapping of its own, unmapped after: malloc would keep the pages of the
	// largest weights in its heap for the life of the process.
	tmp = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED) {
		tmp = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	TRY(dnnl_reorder_primitive_desc_create(&rpd, &plain, gc_engine, &blocked, gc_engine, NULL));
	TRY(dnnl_primitive_create(&r, rpd));
	TRY(dnnl_memory_create(&src, &plain, gc_engine, w));
	TRY(dnnl_memory_create(&dst, &blocked, gc_engine, tmp));
	TRY(dnnl_stream_create(&stream, gc_engine, dnnl_stream_default_flags));
	dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
	TRY(dnnl_primitive_execute(r, stream, 2, args));
	TRY(dnnl_stream_wait(stream));
	memcpy(w, tmp, size);
	ok = 1;
fail:
	if (stream) dnnl_stream_destroy(stream);
	if (src) dnnl_memory_destroy(src);
	if (dst) dnnl_memory_destroy(dst);
	if (r) dnnl_primitive_destroy(r);
	if (rpd) dnnl_primitive_desc_destroy(rpd);
	if (tmp) munmap(tmp, size);
	omp_set_num_threads(threads);
	return ok;
}

// gc_mm is one matmul primitive: dst [m, n] = epilogue(src [m, k] @ W), W [k, n]
// stored as PyTorch's [n, k] (or [k, n] when inout), in bfloat16 or float32.
typedef struct gc_mm {
	dnnl_primitive_t prim;
	dnnl_primitive_t unblock; // a blocked weight reordered to PyTorch's layout first, or NULL
	dnnl_memory_desc_t src, wei, bias, dst, scale, res, scratch, wblk;
	int has_bias, scale_idx, res_idx; // post-op positions of the scale and residual, or -1
} gc_mm;


// unblock_test makes gc_mm_create take the path of a blocked weight that oneDNN will
// not read at some row count (gc_set_unblock_test; for tests).
static int unblock_test;

void gc_set_unblock_test(int on) { unblock_test = on; }

// Activations, as graph.Activation numbers them.
enum { ACT_IDENTITY, ACT_QUICKGELU, ACT_GELU, ACT_RELU };

// gc_mm_create builds the primitive. wei_bf16, src_bf16 and dst_bf16 choose bfloat16
// (else float32) for the weight, src and dst (a float32 weight needs a float32 src);
// wei_blocked says the bfloat16 weight was repacked by gc_pack (inout is then moot);
// ldd is dst's row stride; res_kind is 0 (no residual), 1 (float32) or 2 (bfloat16);
// accumulate adds the product to dst's prior contents. impl receives oneDNN's
// implementation name. On failure it returns NULL with the reason in err.
gc_mm *gc_mm_create(long m, long n, long k, int inout, int wei_bf16, int wei_blocked, int src_bf16, int dst_bf16, long ldd,
                    int has_bias, int has_scale, int res_kind, int act, int accumulate, char *impl, int impllen, char *err,
                    int errlen) {
	gc_mm *p = calloc(1, sizeof *p);
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_primitive_desc_t pd = NULL, rpd = NULL;
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->has_bias = has_bias;
	p->scale_idx = p->res_idx = -1;
	// Blocking decisions follow the threads the primitive is created for. The
	// calling thread's setting is put back (an OpenMP build of OpenBLAS reads it).
	int threads = omp_get_max_threads();
	omp_set_num_threads(1);
	dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n}, vd = {1, n}, ds = {ldd, 1};
	TRY(dnnl_memory_desc_init_by_tag(&p->src, 2, sd, src_bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab));
	if (wei_blocked)
		TRY(blocked_md(n, k, &p->wei));
	else
		TRY(dnnl_memory_desc_init_by_tag(&p->wei, 2, wd, wei_bf16 ? dnnl_bf16 : dnnl_f32, inout ? dnnl_ab : dnnl_ba));
	TRY(dnnl_memory_desc_init_by_strides(&p->dst, 2, dd, dst_bf16 ? dnnl_bf16 : dnnl_f32, ds));
	TRY(dnnl_memory_desc_init_by_tag(&p->bias, 2, vd, dnnl_f32, dnnl_ab));
	TRY(dnnl_memory_desc_init_by_tag(&p->scale, 2, vd, dnnl_f32, dnnl_ab));
	TRY(dnnl_memory_desc_init_by_tag(&p->res, 2, dd, res_kind == 2 ? dnnl_bf16 : dnnl_f32, dnnl_ab));
	dnnl_matmul_desc_t md;
	TRY(dnnl_matmul_desc_init(&md, &p->src, &p->wei, has_bias ? &p->bias : NULL, &p->dst));
	TRY(dnnl_post_ops_create(&po));
	int idx = 0;
	if (accumulate) {
		TRY(dnnl_post_ops_append_sum(po, 1.0f));
		idx++;
	}
	if (has_scale) {
		TRY(dnnl_post_ops_append_binary(po, dnnl_binary_mul, &p->scale));
		p->scale_idx = idx++;
	}
	if (res_kind) {
		TRY(dnnl_post_ops_append_binary(po, dnnl_binary_add, &p->res));
		p->res_idx = idx++;
	}
	switch (act) {
	case ACT_QUICKGELU: // x * sigmoid(1.702 x)
		TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f));
		break;
	case ACT_GELU:
		TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f));
		break;
	case ACT_RELU:
		TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
		break;
	}
	TRY(dnnl_primitive_attr_create(&attr));
	TRY(dnnl_primitive_attr_set_post_ops(attr, po));
	TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	dnnl_status_t st = wei_blocked && unblock_test ? dnnl_unimplemented
	                                                : dnnl_primitive_desc_create(&pd, &md, attr, gc_engine, NULL);
	const char *name = "";
	if (st == dnnl_success && wei_blocked && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
	    strncmp(name, "ref", 3) == 0) {
		dnnl_primitive_desc_destroy(pd); // the reference kernel reads any layout, slowly: not that
		pd = NULL;
		st = dnnl_unimplemented;
	}
	if (st != dnnl_success && wei_blocked) {
		// oneDNN will not read the blocked layout at this row count (the layout is
		// checked at 1 to 1600 rows on AVX512-BF16, not on every CPU): the weight is
		// reordered back to PyTorch's on each call, as slow as before it was blocked,
		// never wrong.
		p->wblk = p->wei;
		TRY(dnnl_memory_desc_init_by_tag(&p->wei, 2, wd, dnnl_bf16, dnnl_ba));
		TRY(dnnl_matmul_desc_init(&md, &p->src, &p->wei, has_bias ? &p->bias : NULL, &p->dst));
		TRY(dnnl_reorder_primitive_desc_create(&rpd, &p->wblk, gc_engine, &p->wei, gc_engine, NULL));
		TRY(dnnl_primitive_create(&p->unblock, rpd));
		st = dnnl_primitive_desc_create(&pd, &md, attr, gc_engine, NULL);
	}
	TRY(st);
	TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name));
	snprintf(impl, impllen, "%s", name);
	p->scratch = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	TRY(dnnl_primitive_create(&p->prim, pd));
	dnnl_primitive_desc_destroy(pd);
	if (rpd) dnnl_primitive_desc_destroy(rpd);
	dnnl_primitive_attr_destroy(attr);
	dnnl_post_ops_destroy(po);
	omp_set_num_threads(threads);
	return p;
fail:
	omp_set_num_threads(threads);
	if (p->unblock) dnnl_primitive_destroy(p->unblock);
	if (rpd) dnnl_primitive_desc_destroy(rpd);
	if (pd) dnnl_primitive_desc_destroy(pd);
	if (attr) dnnl_primitive_attr_destroy(attr);
	if (po) dnnl_post_ops_destroy(po);
	free(p);
	return NULL;
}

void gc_mm_free(gc_mm *p) {
	if (!p) return;
	if (p->unblock) dnnl_primitive_destroy(p->unblock);
	dnnl_primitive_destroy(p->prim);
	free(p);
}

// gc_mm_run executes p on the calling thread. Any number of threads may run the same
// primitive at once: each call brings its own stream and scratchpad. It returns 0, or
// the oneDNN status of the failure.
int gc_mm_run(gc_mm *p, void *src, void *wei, float *bias, float *scale, void *res, void *dst) {
	dnnl_memory_t mem[7] = {0};
	dnnl_exec_arg_t args[7];
	int n = 0;
	dnnl_status_t st = dnnl_success;
	dnnl_stream_t stream = NULL;
	size_t ss = dnnl_memory_desc_get_size(&p->scratch);
	void *scratch = ss ? malloc(ss) : NULL;
	if (ss && !scratch) return dnnl_out_of_memory;
#define ARG(kind, desc, ptr)                                                       \
	if (st == dnnl_success) {                                                  \
		st = dnnl_memory_create(&mem[n], desc, gc_engine, ptr);            \
		args[n].arg = kind;                                                \
		args[n].memory = mem[n];                                           \
		if (st == dnnl_success) n++;                                       \
	}
	int threads = omp_get_max_threads();
	omp_set_num_threads(1);
	st = dnnl_stream_create(&stream, gc_engine, dnnl_stream_default_flags);
	void *plain = NULL;
	if (p->unblock && st == dnnl_success) { // reorder the blocked weight into plain, then read that
		dnnl_memory_t from = NULL, to = NULL;
		plain = malloc(dnnl_memory_desc_get_size(&p->wei));
		st = plain ? dnnl_memory_create(&from, &p->wblk, gc_engine, wei) : dnnl_out_of_memory;
		if (st == dnnl_success) st = dnnl_memory_create(&to, &p->wei, gc_engine, plain);
		dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
		if (st == dnnl_success) st = dnnl_primitive_execute(p->unblock, stream, 2, ra);
		if (st == dnnl_success) st = dnnl_stream_wait(stream);
		if (from) dnnl_memory_destroy(from);
		if (to) dnnl_memory_destroy(to);
		wei = plain;
	}
	ARG(DNNL_ARG_SRC, &p->src, src);
	ARG(DNNL_ARG_WEIGHTS, &p->wei, wei);
	ARG(DNNL_ARG_DST, &p->dst, dst);
	if (p->has_bias) ARG(DNNL_ARG_BIAS, &p->bias, bias);
	if (p->scale_idx >= 0) ARG(DNNL_ARG_ATTR_MULTIPLE_POST_OP(p->scale_idx) | DNNL_ARG_SRC_1, &p->scale, scale);
	if (p->res_idx >= 0) ARG(DNNL_ARG_ATTR_MULTIPLE_POST_OP(p->res_idx) | DNNL_ARG_SRC_1, &p->res, res);
	if (ss) ARG(DNNL_ARG_SCRATCHPAD, &p->scratch, scratch);
#undef ARG
	if (st == dnnl_success) st = dnnl_primitive_execute(p->prim, stream, n, args);
	if (st == dnnl_success) st = dnnl_stream_wait(stream);
	if (stream) dnnl_stream_destroy(stream);
	for (int i = 0; i < n; i++) dnnl_memory_destroy(mem[i]);
	free(scratch);
	free(plain);
	omp_set_num_threads(threads);
	return (int)st;
}
