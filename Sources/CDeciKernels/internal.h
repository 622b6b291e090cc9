// Shared between the shim's C files; not part of the ABI. Kept free of oneDNN types, since the
// per-instruction-set kernel files include it (the oneDNN side's internals: dnnl_internal.h).
// Sections follow ddkernels.h's order, each naming the file that defines it.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(__linux__)
#define DD_HAVE_GOMP 1
#else
#define DD_HAVE_GOMP 0
#endif

// ---- per-call scratch (scratch.c) ----------------------------------------------------------------
// Frees the kernel scratch buffers no call holds; dd_pool_trim calls it.
void dd_release_scratch(void);

// ---- vectorised kernels (kernels.c) --------------------------------------------------------------
// The instruction set the vectorised kernels run ("generic", "avx2", "avx512").
const char *dd_kernel_isa_name(void);

// Row-wise softmax writing bf16 (for attention probabilities fed to a bf16 matmul; kernels_norm.h).
// y_bf16: 0 = float32 output, 1 = bfloat16 bits, 2 = float32 rounded through bfloat16.
// causal0 >= 0 masks columns after causal0 + (row % per_head).
void dd_softmax_rows(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale,
                     long causal0, long per_head);

// Strided rows of float32 as bf16 values in float32, or as bf16 bits (kernels_convert.h).
void dd_round_rows_bf16(const float *x, long ldx, float *y, long ldy, long rows, long c);
void dd_convert_rows_bf16(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c);

// Winograd F(4x4, 3x3) transforms (kernels_winograd.h) of tiles [t0, t0 + tc) of a pad-1 NHWC image
// batch (c a multiple of 16); tiles past the end transform as zeros. Layout of buf: [36][tc][c].
// With DD_WINO_UP, x holds the (h/2, w/2) map whose nearest 2x upsampling is the h x w input; with
// DD_WINO_BF16 the input values are rounded to bf16 as they are read.
enum { DD_WINO_UP = 1, DD_WINO_BF16 = 2 };
void dd_wino_input(const float *x, int flags, float *buf, long n, long h, long w, long c, long t0, long tc);
// y = act(A^T m A + bias) + residual over the same tiles (residual may be NULL or equal y), for
// the c channels of buf; y and residual have ldy channels per pixel (c of them written).
void dd_wino_output(const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h, long w,
                    long c, long ldy, long t0, long tc);
// Winograd F(4x4, 3x3) weights [36][cin][cout] from 3x3 filters in hwio layout with ldg output
// channels per row (cout, a multiple of 16, of them used: a block of a wider layer).
void dd_wino_weights(const float *hwio, long ldg, float *u, long cin, long cout);
// The F(2x2, 3x3) counterparts for native bf16: 2x2 output tiles from 4x4 input tiles, buf [16][tc][c]
// of bf16 bits (input, weights [16][cin][cout]) or float32 (output); DD_WINO_UP as above.
void dd_wino2_input(const float *x, int flags, uint16_t *buf, long n, long h, long w, long c, long t0, long tc);
void dd_wino2_output(const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h, long w,
                     long c, long ldy, long t0, long tc);
void dd_wino2_weights(const float *hwio, long ldg, uint16_t *u, long cin, long cout);

// ---- failure injection (fault.c) ---------------------------------------------------------------
/// 1 (with err set) when dd_testing_fail_kernel_after says this kernel call fails.
int dd_testing_kernel_fails(char *err, int errlen);
/// 1 when dd_testing_fail_alloc_over refuses an allocation of `bytes`.
int dd_testing_alloc_fails(size_t bytes);
