// The engine's CPU kernel ABI. Everything above this header (the Swift op layer) sees only these
// functions; oneDNN, OpenMP and instruction-set dispatch stay behind it, so a oneDNN 3.x or a GPU
// backend changes the shim, not the models. Test-only overrides: ddkernels_testing.h.
//
// Conventions: activations are float32, channels-last (NHWC; sequences are [B, T, C]). "bf16"
// compute means matmul/conv inputs rounded to bfloat16 with float32 accumulation and float32
// outputs. Functions that can fail return 0 on success and write a message into err.
//
// Sections follow the shim's files by family, each section naming its file:
//   runtime.c         threads, buffer pool, parallel for
//   dnnl_engine.c     oneDNN engine, execution, bf16 mode (over dnnl_compat.h: oneDNN 2.x / 3.x)
//   scratch.c         per-call scratch buffers (no ABI; the oneDNN side's internals: dnnl_internal.h)
//   packed_weights.c  weights packed for oneDNN and per-shape primitives (no ABI)
//   conv.c            convolution
//   winograd.c        Winograd F(4x4, 3x3) convolution (tile transforms: kernels_winograd.h)
//   matmul.c          linear layers
//   attention.c       attention
//   kernels.c         dispatch of the vectorised kernels to the best instruction set; their bodies
//                     (kernels_norm.h, kernels_eltwise.h, kernels_convert.h, kernels_winograd.h)
//                     are compiled per instruction set by kernels_{avx512,avx2,generic}.c
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DD_F32 = 0, DD_BF16 = 1 } dd_dtype;

typedef enum {
    DD_ACT_NONE = 0,
    DD_ACT_SILU = 1,
    DD_ACT_GELU_ERF = 2,
    DD_ACT_GELU_TANH = 3,
    DD_ACT_QUICK_GELU = 4,
} dd_activation;

// ---- runtime (runtime.c) -----------------------------------------------------------------------
/// Threads used by every kernel and by oneDNN (one shared OpenMP pool). 0 = all cores.
void dd_set_num_threads(int n);
int dd_num_threads(void);

/// 64-byte aligned buffers from a size-bucketed pool, so the step loop does not page-fault
/// fresh memory for every activation.
void *dd_alloc(size_t bytes);
void dd_free(void *p, size_t bytes);
// Aligned allocation for big long-lived buffers (transparent huge pages where offered); free().
void *dd_alloc_large(size_t bytes);
/// Returns pooled buffers to the system.
void dd_pool_trim(void);
size_t dd_pool_cached_bytes(void);

// ---- sticky fault (fault.c) ---------------------------------------------------------------------
/// 1 while the calling thread has an untaken fault (its ops then skip their work).
int dd_fault_active(void);
/// Records a fault on the calling thread unless one is already recorded (the first one wins);
/// returns 1 when this one was recorded.
int dd_fault_raise(const char *op, const char *message);
/// Copies the calling thread's fault into the buffers and clears it; 0 (buffers untouched) when
/// there is none.
int dd_fault_take(char *op, int op_len, char *message, int message_len);

typedef void (*dd_range_fn)(void *ctx, long begin, long end);
/// Splits [0, n) into contiguous ranges over the shared thread pool; serial when n < grain.
void dd_parallel_for(long n, long grain, dd_range_fn fn, void *ctx);

// ---- oneDNN engine (dnnl_engine.c) -------------------------------------------------------------
/// 1 when oneDNN has native bf16 kernels here; 0 when the bf16 path is emulated in float32
/// (same rounding of inputs and weights, float32 speed).
int dd_bf16_native(void);
/// Human-readable description of the backend (oneDNN version, ISA, threads).
const char *dd_backend_info(void);

// ---- convolution (conv.c) ----------------------------------------------------------------------
typedef struct dd_conv dd_conv;
/// weight in PyTorch layout [cout, cin, kh, kw] float32; bias may be NULL. Padding is given per
/// side (top, left, bottom, right): the VAE encoder pads only bottom/right before a stride-2 conv.
/// The weight is repacked once into the layout oneDNN wants (bf16 when dtype is DD_BF16); the
/// caller may free its copy.
dd_conv *dd_conv_create(int cin, int cout, int kh, int kw, int stride, int pad_t, int pad_l, int pad_b, int pad_r,
                        dd_dtype dtype, const float *weight, const float *bias, char *err, int errlen);
void dd_conv_destroy(dd_conv *c);
/// dst[n, oh, ow, cout] = act(conv(src) + bias) + residual. residual may be NULL or equal to dst.
int dd_conv_forward(dd_conv *c, int n, int h, int w, const float *src, float *dst,
                    const float *residual, dd_activation act, char *err, int errlen);
void dd_conv_output_size(const dd_conv *c, int h, int w, int *oh, int *ow);
/// dst = conv(nearest 2x upsampling of src) for src [n, h, w, cin] (diffusers' Upsample2D). The
/// Winograd path reads src directly, so the 4x larger upsampled map is never built.
int dd_conv_forward_upsampled(dd_conv *c, int n, int h, int w, const float *src, float *dst, char *err, int errlen);

// ---- Winograd (winograd.c) ---------------------------------------------------------------------
/// How a 3x3, stride-1, pad-1 convolution with channel counts that are multiples of 16 runs: AUTO
/// picks Winograd for large inputs (>= 64 channels, >= 128 output tiles of 4x4 by default), DIRECT
/// never uses it, WINOGRAD whenever the geometry allows. Winograd is F(4x4, 3x3) in float32 (and
/// emulated bf16), F(2x2, 3x3) with bf16 GEMMs where bf16 is native (see dd_winograd_bf16).
/// Other convolutions always run direct. Winograd's transformed weights (4x the direct ones) are
/// rebuilt for each call from the direct weights (measured no slower than keeping them); with
/// `keep` set they replace the direct weights for good instead. Set before first use.
typedef enum { DD_CONV_AUTO = 0, DD_CONV_DIRECT = 1, DD_CONV_WINOGRAD = 2 } dd_conv_algorithm;
void dd_conv_set_algorithm(dd_conv *c, dd_conv_algorithm a, int keep);
/// The weights in PyTorch layout [cout, cin, kh, kw] (bf16-rounded where the layer stores bf16);
/// fails once Winograd weights have replaced the direct ones (`keep`).
int dd_conv_read_weights(dd_conv *c, float *weight, char *err, int errlen);
/// Replaces the weights (PyTorch layout, float32) in place, rounded as at creation; fails once
/// Winograd weights have replaced the direct ones. Not while the layer runs.
int dd_conv_write_weights(dd_conv *c, const float *weight, char *err, int errlen);
/// 1 when native bf16 convolutions may run Winograd F(2x2, 3x3) (bf16 native here and not turned
/// off with DECI_WINOGRAD_BF16=0); 0 when they always run direct.
int dd_winograd_bf16(void);

// ---- linear / matmul (matmul.c) ----------------------------------------------------------------
typedef struct dd_linear dd_linear;
/// weight in PyTorch layout [out, in]; bias may be NULL.
dd_linear *dd_linear_create(int in_features, int out_features, dd_dtype dtype, const float *weight,
                            const float *bias, char *err, int errlen);
void dd_linear_destroy(dd_linear *l);
/// The weights in PyTorch layout [out, in] (bf16-rounded where the layer stores bf16).
int dd_linear_read_weights(dd_linear *l, float *weight, char *err, int errlen);
/// Replaces the weights (PyTorch layout, float32) in place, rounded as at creation. Not while the layer runs.
int dd_linear_write_weights(dd_linear *l, const float *weight, char *err, int errlen);
/// dst[m, out] = act(src[m, in] @ W^T + bias) + residual. src rows may be strided (src_ld >= in);
/// dst and residual are dense [m, out]. residual may be NULL or equal to dst.
int dd_linear_forward(dd_linear *l, long m, const float *src, long src_ld, float *dst,
                      const float *residual, dd_activation act, char *err, int errlen);

// ---- attention (attention.c) -------------------------------------------------------------------
/// Multi-head scaled-dot-product attention over channels-last rows. For batch b and head h:
///   out[b, i, h*d:(h+1)*d] = softmax(scale * q_i . k_j) v_j
/// q/k/v/out rows are strided (ld in floats), head h occupies columns [h*d, (h+1)*d). With causal
/// set, query i sees keys 0...i only (nq == nk). Scores are built a tile of queries at a time, so
/// memory stays bounded for 4096-token self-attention.
int dd_attention(int batch, long nq, long nk, int heads, int head_dim, const float *q, long q_ld,
                 const float *k, long k_ld, const float *v, long v_ld, float *out, long out_ld,
                 float scale, int causal, dd_dtype dtype, char *err, int errlen);

// ---- normalisation (kernels.c, bodies in kernels_norm.h) ---------------------------------------
/// GroupNorm over NHWC x[n, hw, c] with `groups` groups, per-channel affine (gamma/beta may be NULL),
/// optional per-(n, c) bias added to x before normalising (the resnet's time embedding), optional
/// fused SiLU. y may equal x.
void dd_group_norm(const float *x, float *y, long n, long hw, long c, long groups, float eps,
                   const float *gamma, const float *beta, const float *pre_bias, int silu);
/// LayerNorm over the last dimension of x[rows, c]; gamma/beta may be NULL. y may equal x.
void dd_layer_norm(const float *x, float *y, long rows, long c, float eps, const float *gamma,
                   const float *beta);
/// Row-wise softmax of scale * x over x[rows, c]. y may equal x.
void dd_softmax(const float *x, float *y, long rows, long c, float scale);

// ---- element-wise and layout (kernels.c, bodies in kernels_eltwise.h) --------------------------
void dd_activation_inplace(float *x, long count, dd_activation act);
/// y = x + b (b == y allowed). With bias_c > 0, b is a per-channel vector of length bias_c.
void dd_add(const float *x, const float *b, float *y, long count, long bias_c);
/// GEGLU: x[rows, 2f] -> y[rows, f] = x[:, :f] * gelu_erf(x[:, f:]).
void dd_geglu(const float *x, float *y, long rows, long f);
/// Nearest-neighbour 2x upsampling of NHWC x[n, h, w, c] into y[n, 2h, 2w, c].
void dd_upsample_nearest2x(const float *x, float *y, long n, long h, long w, long c);
/// Channel concat of NHWC a[n*hw, ca] and b[n*hw, cb] into y[n*hw, ca + cb].
void dd_concat_channels(const float *a, long ca, const float *b, long cb, float *y, long rows);
/// Copies a [n, c, hw] block into [n, hw, c] (NCHW -> NHWC) and back.
void dd_nchw_to_nhwc(const float *x, float *y, long n, long c, long hw);
void dd_nhwc_to_nchw(const float *x, float *y, long n, long hw, long c);

// ---- conversions (kernels.c, bodies in kernels_convert.h) --------------------------------------
/// Round-to-nearest-even float32 -> bfloat16 bits, and back.
void dd_f32_to_bf16(const float *x, uint16_t *y, long count);
void dd_bf16_to_f32(const uint16_t *x, float *y, long count);
// IEEE half bits -> float32 (exact).
void dd_f16_to_f32(const uint16_t *x, float *y, long count);

#ifdef __cplusplus
}
#endif
