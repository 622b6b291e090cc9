// The oneDNN side's internals, shared by its C files; not part of the ABI. Sections follow the
// files in ddkernels.h's order, each naming the file that defines it.
#pragma once
#include "ddkernels.h"
#include "dnnl_compat.h"
#include "internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>

// Error reporting of the functions that take (char *err, int errlen) and clean up at `fail:`.
#define FAIL(...)                                        \
    do {                                                 \
        if (err && errlen > 0) snprintf(err, errlen, __VA_ARGS__); \
        goto fail;                                       \
    } while (0)
#define TRY(call, what)                                                         \
    do {                                                                        \
        dnnl_status_t st_ = (call);                                             \
        if (st_ != dnnl_success) FAIL("oneDNN %s failed (status %d)", what, (int)st_); \
    } while (0)

// ---- engine, execution and the bf16 mode (dnnl_engine.c) ---------------------------------------
extern dnnl_engine_t dd_engine;  // the CPU engine, valid once dd_ensure_engine succeeded
/// Starts the engine once (and the thread count); 0 when it runs, else -1 with err set.
int dd_ensure_engine(char *err, int errlen);
/// Data type oneDNN computes in for a requested precision.
dnnl_data_type_t dd_dt_of(dd_dtype d);
/// 1 when `d` is bf16 emulated in float32 (no native bf16 kernels here).
int dd_emulated(dd_dtype d);
/// A new primitive attribute with the activation (and the residual sum) as post-ops, or NULL.
dnnl_primitive_attr_t dd_make_attr(dd_activation act, int residual);
/// Runs `prim` on the shared stream with nargs (argument id, descriptor, buffer) triples.
dnnl_status_t dd_execute(dnnl_primitive_t prim, int nargs, const int *arg_ids, const cmd_t *mds, void *const *ptrs);
dnnl_primitive_t dd_make_reorder(cmd_t from, cmd_t to);
dnnl_status_t dd_run_reorder(dnnl_primitive_t r, cmd_t from, const void *src, cmd_t to, void *dst);
/// A one-off reorder (builds and drops its primitive).
dnnl_status_t dd_reorder(cmd_t src_md, void *src, cmd_t dst_md, void *dst);
/// Dense copy of f32 activations as bf16 (native) or bf16-rounded f32 (emulated), in the call's
/// scratch `slot`, when the layer computes in bf16; NULL for f32 or when out of memory.
void *dd_maybe_bf16(int slot, dd_dtype dt, const float *src, long ld, long rows, long cols);

// ---- per-call scratch (scratch.c) ----------------------------------------------------------------
// Buffers for what lives only within one kernel call (widened weights, bf16 copies of inputs,
// Winograd tiles and weights, attention scores). Each grows to the largest call and is reused by
// every later one: a step then touches no fresh memory for them, and they take the largest size,
// not the sum of every size an exact-size pool would keep. A kernel call takes one set for its
// duration (first use to return), so there are as many sets as calls ever ran at once, whatever
// the number of threads; dd_pool_trim frees the sets no call holds.
enum {
    SCRATCH_WIDEN,
    SCRATCH_HWIO,
    SCRATCH_WINO_U,
    SCRATCH_WINO_V,
    SCRATCH_WINO_M,
    SCRATCH_IN0,  // bf16 copies of inputs (attention: q, k, v)
    SCRATCH_IN1,
    SCRATCH_IN2,
    SCRATCH_SCORES,
    SCRATCH_PROBS,
    SCRATCH_SLOTS
};
// Bracket every entry point that may use scratch (calls nest: only the outermost returns the set).
void dd_scratch_enter(void);
void dd_scratch_leave(void);
// Slot `slot` of the calling kernel's set, grown to at least `bytes`; valid until the kernel
// returns or asks for the same slot again. NULL when out of memory.
float *dd_scratch(int slot, size_t bytes);

// ---- packed weights shared by conv and linear (packed_weights.c) --------------------------------
// A layer's weights in the layout `md` wants. When bf16 is emulated, `data` is compact: the bf16
// halves of that float32 layout (the weights are bf16-rounded anyway), so a bf16 model takes half
// the memory of a float32 one, as it does with native bf16. Each call widens them into a scratch
// buffer: one streaming pass, small next to the convolution or GEMM.
typedef struct {
    md_t md;
    void *data;
    int compact;
} packed;

typedef struct {
    long key[4];
    dnnl_primitive_t prim;
    int w;  // index into the layer's packed weights
    md_t src_md, dst_md;
    // Convolutions run in the activation layout oneDNN prefers (blocked channels on AVX2/AVX-512
    // run ~2.5x faster than NHWC in oneDNN 2.x); these reorders convert at the edges. NULL when
    // the preferred layout is the caller's float32 NHWC.
    md_t user_src_md, user_dst_md;
    dnnl_primitive_t src_in, dst_out, residual_in;
} variant;

typedef struct {
    packed w[4];
    int nw;
    variant **v;  // individually allocated: a variant in use stays put when the list grows
    int nv, cap;
    md_t plain_md;  // the caller's weight layout, dense float32 (derivations go through it)
    float *bias;
    md_t bias_md;
    pthread_mutex_t lock;
} layer;

/// Packs a new layer's float32 `weight`, laid out as `user`, into the layout oneDNN chose for the
/// weights of `pd` (created with status `st` for a nominal shape), and copies its bias. `what`
/// names the layer in errors. Frees `user` and `pd` either way; 0 on success, else -1 with err set.
int dd_layer_create(layer *L, dnnl_status_t st, dnnl_primitive_desc_t pd, md_t user, const float *weight, dd_dtype dt,
                    const float *bias, long nbias, const char *what, char *err, int errlen);
void dd_layer_free(layer *L);
/// The layer's weights in the caller's layout (float32); 0 on success.
int dd_layer_read_weights(layer *L, float *out);
/// Replaces the layer's weights (caller's layout, float32) in every packed copy; 0 on success.
int dd_layer_write_weights(layer *L, const float *weight, dd_dtype dt);
// Weights for one call: the packed data itself, or the float32 widening of compact data into the
// call's scratch (valid until its next widening). NULL when out of memory.
void *dd_weights_data(const packed *w);
variant *dd_find_variant(layer *L, const long key[4]);
/// Adds the variant for `key` running `pd` (caller holds the lock), packing weights for it if new.
variant *dd_add_variant(layer *L, const long key[4], dnnl_primitive_desc_t pd);
void dd_variant_destroy(variant *v);
// Frees the packed weights and the primitives that use them; the bias stays. A convolution does
// this once its Winograd weights serve it (caller holds the lock).
void dd_drop_direct_weights(layer *L);

// ---- convolution (conv.c) and its Winograd path (winograd.c) -------------------------------------
// Winograd F(4x4, 3x3) state of a convolution (winograd.c).
typedef struct {
    long tc, nc;  // tiles per chunk, output channels
    dnnl_primitive_t prim;
    md_t src, wei, dst;
} wino_gemm;

typedef struct {
    int state;  // 0 direct weights only, 1 transformed weights replaced them, -1 Winograd unavailable
    void *u;    // transformed weights [36][cin][cout] float32, or [16][cin][cout] bf16 for F(2x2) (state 1)
    wino_gemm **gemm;  // one per (chunk height, output channels); individually allocated, never moved or dropped
    int ngemm, cap;
} wino;

struct dd_conv {
    int cin, cout, kh, kw, stride, ph, pw, pb, pr;
    dd_dtype dt;
    int has_bias;
    layer L;
    wino W;
    dd_conv_algorithm algorithm;
    int wino_keep;
    int direct_busy;  // direct-path calls in flight (under L.lock): their weights must stay
};

// Whether a call of this geometry runs Winograd (winograd.c).
int dd_wino_applies(const dd_conv *c, int n, int h, int w);
// 0 when done, 1 when Winograd is unavailable for this layer (the caller runs the direct path),
// -1 on a failure with err set. With `up`, src is the map whose nearest 2x upsampling is the input.
int dd_wino_forward(dd_conv *c, int n, int h, int w, const float *src, int up, float *dst, const float *residual,
                    dd_activation act, char *err, int errlen);
void dd_wino_free(wino *W);
