// oneDNN (2.x or 3.x) behind the shim's ABI: convolution, linear (matmul) and the two batched
// matmuls of attention. Primitives are built once per shape and cached; weights are repacked once into the
// layout the chosen implementation wants (and re-derived from that packed copy if a later shape
// wants another layout), so the caller's float32 copy can be dropped right after load.
#include "ddkernels.h"
#include "internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

// ---- oneDNN 2.x / 3.x compatibility ------------------------------------------------------------
// 3.x made memory descriptors opaque handles and replaced op descriptors with direct primitive
// descriptor constructors. Here `md_t` is a pointer in both: an owned handle in 3.x, a malloc'd
// value struct in 2.x, so every call that takes a descriptor reads the same in both versions.
#if DNNL_VERSION_MAJOR >= 3
#define DD_DNNL3 1
typedef dnnl_memory_desc_t md_t;
typedef const_dnnl_memory_desc_t cmd_t;
static md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    md_t m = NULL;
    return dnnl_memory_desc_create_with_tag(&m, nd, d, dt, tag) == dnnl_success ? m : NULL;
}
static md_t md_strides(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, const dnnl_dims_t st) {
    md_t m = NULL;
    return dnnl_memory_desc_create_with_strides(&m, nd, d, dt, st) == dnnl_success ? m : NULL;
}
static md_t md_clone(cmd_t q) {
    md_t m = NULL;
    return q && dnnl_memory_desc_clone(&m, q) == dnnl_success ? m : NULL;
}
static void md_free(md_t m) {
    if (m) dnnl_memory_desc_destroy(m);
}
#else
#define DD_DNNL3 0
typedef dnnl_memory_desc_t *md_t;
typedef const dnnl_memory_desc_t *cmd_t;
static md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    md_t m = malloc(sizeof *m);
    if (m && dnnl_memory_desc_init_by_tag(m, nd, d, dt, tag) != dnnl_success) { free(m); m = NULL; }
    return m;
}
static md_t md_strides(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, const dnnl_dims_t st) {
    md_t m = malloc(sizeof *m);
    if (m && dnnl_memory_desc_init_by_strides(m, nd, d, dt, st) != dnnl_success) { free(m); m = NULL; }
    return m;
}
static md_t md_clone(cmd_t q) {
    md_t m = q ? malloc(sizeof *m) : NULL;
    if (m) *m = *q;
    return m;
}
static void md_free(md_t m) { free(m); }
#endif

static md_t query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) { return md_clone(dnnl_primitive_desc_query_md(pd, what, 0)); }

static dnnl_status_t conv_pd_create(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, cmd_t src, cmd_t wei, cmd_t bias, cmd_t dst,
                                    const dnnl_dims_t strides, const dnnl_dims_t pad_l, const dnnl_dims_t pad_r,
                                    const_dnnl_primitive_attr_t attr) {
#if DD_DNNL3
    return dnnl_convolution_forward_primitive_desc_create(pd, eng, dnnl_forward_inference, dnnl_convolution_direct, src, wei,
                                                          bias, dst, strides, NULL, pad_l, pad_r, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, src, wei, bias,
                                                          dst, strides, pad_l, pad_r);
    return st == dnnl_success ? dnnl_primitive_desc_create(pd, &cd, attr, eng, NULL) : st;
#endif
}

static dnnl_status_t matmul_pd_create(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, cmd_t src, cmd_t wei, cmd_t bias, cmd_t dst,
                                      const_dnnl_primitive_attr_t attr) {
#if DD_DNNL3
    return dnnl_matmul_primitive_desc_create(pd, eng, src, wei, bias, dst, attr);
#else
    dnnl_matmul_desc_t md;
    dnnl_status_t st = dnnl_matmul_desc_init(&md, src, wei, bias, dst);
    return st == dnnl_success ? dnnl_primitive_desc_create(pd, &md, attr, eng, NULL) : st;
#endif
}

static int append_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg, float alpha, float beta) {
#if DD_DNNL3
    return dnnl_post_ops_append_eltwise(po, alg, alpha, beta) != dnnl_success;
#else
    return dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta) != dnnl_success;
#endif
}

static int append_sum(dnnl_post_ops_t po) {
#if DD_DNNL3
    return dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef) != dnnl_success;
#else
    return dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success;
#endif
}

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_status_t g_init_status = dnnl_success;
static pthread_mutex_t g_exec_lock = PTHREAD_MUTEX_INITIALIZER;

// Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 / AMX). Without them the bf16
// path is emulated: inputs and weights are rounded to bf16 and multiplied in float32, which gives
// the same numbers a bf16-input / f32-accumulate kernel gives, without its speed.
static int g_bf16_native = 0;

static int probe_bf16(void) {
    dnnl_dims_t d = {64, 64};
    md_t a = md_tag(2, d, dnnl_bf16, dnnl_ab), b = md_tag(2, d, dnnl_bf16, dnnl_format_tag_any), c = md_tag(2, d, dnnl_f32, dnnl_ab);
    dnnl_primitive_desc_t pd = NULL;
    int native = 0;
    if (a && b && c && matmul_pd_create(&pd, g_engine, a, b, NULL, c, NULL) == dnnl_success) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        native = strstr(impl, "ref") == NULL;  // a reference kernel would be far slower than emulation
        dnnl_primitive_desc_destroy(pd);
    }
    md_free(a);
    md_free(b);
    md_free(c);
    return native;
}

static void init_engine(void) {
    g_init_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    if (g_init_status == dnnl_success) g_init_status = dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
    if (g_init_status == dnnl_success) {
        g_bf16_native = probe_bf16();
        const char *force = getenv("DECI_BF16");
        if (force && strcmp(force, "emulate") == 0) g_bf16_native = 0;
    }
}

int dd_bf16_native(void) {
    pthread_once(&g_once, init_engine);
    return g_bf16_native;
}

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

static int ensure_engine(char *err, int errlen) {
    pthread_once(&g_once, init_engine);
    if (g_init_status != dnnl_success) {
        if (err && errlen > 0) snprintf(err, errlen, "oneDNN CPU engine unavailable (status %d)", (int)g_init_status);
        return -1;
    }
    dd_num_threads();
    return 0;
}

const char *dd_backend_info(void) {
    static char buf[256];
    const dnnl_version_t *v = dnnl_version();
    const char *isa = "baseline";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) isa = "avx512_core_bf16";
    else if (__builtin_cpu_supports("avx512f")) isa = "avx512";
    else if (__builtin_cpu_supports("avx2")) isa = "avx2";
#endif
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s), kernels %s, bf16 %s, %d threads", v->major, v->minor, v->patch, isa,
             dd_kernel_isa_name(), dd_bf16_native() ? "native" : "emulated", dd_num_threads());
    return buf;
}

// Data type oneDNN computes in for a requested precision.
static dnnl_data_type_t dt_of(dd_dtype d) { return d == DD_BF16 && g_bf16_native ? dnnl_bf16 : dnnl_f32; }
static int emulated(dd_dtype d) { return d == DD_BF16 && !g_bf16_native; }

// How a layer of precision d stores its weights (init_layer's `bf16`): emulated bf16 layers keep
// bf16 halves (see `packed`) unless DECI_BF16_COMPACT=0 trades memory (2x) for the per-call
// widening pass.
static int bf16_storage(dd_dtype d) {
    static int compact = -1;
    if (!emulated(d)) return 0;
    if (compact < 0) {
        const char *e = getenv("DECI_BF16_COMPACT");
        compact = !(e && strcmp(e, "0") == 0);
    }
    return 1 + compact;
}

static int set_post_ops(dnnl_primitive_attr_t attr, dd_activation act, int residual) {
    dnnl_post_ops_t po;
    if (dnnl_post_ops_create(&po) != dnnl_success) return -1;
    int rc = 0;
    switch (act) {
    case DD_ACT_NONE: break;
    case DD_ACT_SILU: rc |= append_eltwise(po, dnnl_eltwise_swish, 1.0f, 0.0f); break;
    case DD_ACT_GELU_ERF: rc |= append_eltwise(po, dnnl_eltwise_gelu_erf, 0.0f, 0.0f); break;
    case DD_ACT_GELU_TANH: rc |= append_eltwise(po, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f); break;
    case DD_ACT_QUICK_GELU: rc |= append_eltwise(po, dnnl_eltwise_swish, 1.702f, 0.0f); break;
    }
    if (residual) rc |= append_sum(po);
    rc |= dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    dnnl_post_ops_destroy(po);
    return rc;
}

// A new primitive attribute with the post-ops, or NULL.
static dnnl_primitive_attr_t make_attr(dd_activation act, int residual) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (set_post_ops(attr, act, residual) != 0) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

static dnnl_status_t execute(dnnl_primitive_t prim, int nargs, const int *arg_ids, const cmd_t *mds, void *const *ptrs) {
    dnnl_memory_t mem[8] = {0};
    dnnl_exec_arg_t args[8];
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < nargs && st == dnnl_success; i++) {
        st = dnnl_memory_create(&mem[i], mds[i], g_engine, ptrs[i]);
        args[i].arg = arg_ids[i];
        args[i].memory = mem[i];
    }
    if (st == dnnl_success) {
        pthread_mutex_lock(&g_exec_lock);
        st = dnnl_primitive_execute(prim, g_stream, nargs, args);
        if (st == dnnl_success) st = dnnl_stream_wait(g_stream);
        pthread_mutex_unlock(&g_exec_lock);
    }
    for (int i = 0; i < nargs; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    return st;
}

static dnnl_primitive_t make_reorder(cmd_t from, cmd_t to) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, from, g_engine, to, g_engine, NULL) == dnnl_success)
        dnnl_primitive_create(&prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return prim;
}

static dnnl_status_t run_reorder(dnnl_primitive_t r, cmd_t from, const void *src, cmd_t to, void *dst) {
    int ids[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    cmd_t mds[2] = {from, to};
    void *ptrs[2] = {(void *)src, dst};
    return execute(r, 2, ids, mds, ptrs);
}

static dnnl_status_t reorder(cmd_t src_md, void *src, cmd_t dst_md, void *dst) {
    dnnl_primitive_t prim = make_reorder(src_md, dst_md);
    if (!prim) return dnnl_unimplemented;
    dnnl_status_t st = run_reorder(prim, src_md, src, dst_md, dst);
    dnnl_primitive_destroy(prim);
    return st;
}

// ---- packed weights shared by conv and linear ---------------------------------------------------
// A layer's weights in the layout `md` wants. When bf16 is emulated, `data` is compact: the bf16
// halves of that float32 layout (the weights are bf16-rounded anyway), so a bf16 model takes half
// the memory of a float32 one, as it does with native bf16. Each call widens them into a scratch
// buffer: one streaming pass, small next to the convolution or GEMM.
typedef struct {
    md_t md;
    void *data;
    int compact;
} packed;

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
typedef struct scratch_set {
    float *p[SCRATCH_SLOTS];
    size_t bytes[SCRATCH_SLOTS];
    struct scratch_set *next;
} scratch_set;

static pthread_mutex_t g_scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static scratch_set *g_scratch_free;  // sets no call holds
static _Thread_local scratch_set *t_scratch;
static _Thread_local int t_scratch_depth;

static void scratch_set_free(scratch_set *b) {
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(b->p[i]);
    free(b);
}

// Bracket every entry point that may use scratch (calls nest: only the outermost returns the set).
static void scratch_enter(void) { t_scratch_depth++; }

static void scratch_leave(void) {
    if (--t_scratch_depth > 0 || !t_scratch) return;
    pthread_mutex_lock(&g_scratch_lock);
    t_scratch->next = g_scratch_free;
    g_scratch_free = t_scratch;
    pthread_mutex_unlock(&g_scratch_lock);
    t_scratch = NULL;
}

// Slot `slot` of the calling kernel's set, grown to at least `bytes`; valid until the kernel
// returns or asks for the same slot again. NULL when out of memory.
static float *scratch(int slot, size_t bytes) {
    if (!t_scratch) {
        pthread_mutex_lock(&g_scratch_lock);
        if ((t_scratch = g_scratch_free)) g_scratch_free = t_scratch->next;
        pthread_mutex_unlock(&g_scratch_lock);
        if (!t_scratch && !(t_scratch = calloc(1, sizeof *t_scratch))) return NULL;
    }
    scratch_set *b = t_scratch;
    if (b->bytes[slot] < bytes) {
        free(b->p[slot]);
        b->p[slot] = dd_alloc_large(bytes);
        b->bytes[slot] = b->p[slot] ? bytes : 0;
    }
    return b->p[slot];
}

void dd_release_scratch(void) {
    pthread_mutex_lock(&g_scratch_lock);
    scratch_set *b = g_scratch_free;
    g_scratch_free = NULL;
    pthread_mutex_unlock(&g_scratch_lock);
    while (b) {
        scratch_set *next = b->next;
        scratch_set_free(b);
        b = next;
    }
}

static float *weight_scratch(size_t bytes) { return scratch(SCRATCH_WIDEN, bytes); }

// Weights for one call: the packed data itself, or the float32 widening of compact data into the
// call's scratch (valid until its next weight_scratch). NULL when out of memory.
static void *weights_data(const packed *w) {
    if (!w->compact) return w->data;
    size_t bytes = dnnl_memory_desc_get_size(w->md);
    float *f = weight_scratch(bytes);
    if (f) dd_bf16_to_f32(w->data, f, (long)(bytes / sizeof(float)));
    return f;
}

// Makes the layer's packed copy of float32 weights in layout `md` (taking ownership of `md`):
// with `compact`, the bf16 halves of `f32` (left to the caller); otherwise `f32` itself, taken.
static int pack_weights(packed *w, md_t md, float *f32, int compact) {
    void *data = f32;
    if (compact) {
        size_t count = dnnl_memory_desc_get_size(md) / sizeof(float);
        if ((data = dd_alloc_large(count ? count * 2 : 64))) dd_f32_to_bf16(f32, data, (long)count);
    }
    if (!data) {
        md_free(md);
        return -1;
    }
    *w = (packed){md, data, compact};
    return 0;
}

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

// Returns the index of packed weights matching `want`, deriving them from the first copy if new.
// The derivation goes through the plain layout: oneDNN reorders one blocked layout to another with
// its reference kernel (measured 60x slower than blocked -> plain -> blocked). Packed weights no
// variant uses yet (the layout picked at load from a nominal shape) are replaced, not kept.
static int weights_for(layer *L, cmd_t want) {
    for (int i = 0; i < L->nw; i++)
        if (dnnl_memory_desc_equal(L->w[i].md, want)) return i;
    int replace = L->nv == 0 && L->nw == 1;
    if (!replace && L->nw == 4) return -1;
    int compact = L->w[0].compact;
    size_t bytes = dnnl_memory_desc_get_size(want), plain_bytes = dnnl_memory_desc_get_size(L->plain_md);
    void *plain = dd_alloc_large(plain_bytes ? plain_bytes : 64), *from = weights_data(&L->w[0]);
    int ok = plain && from && reorder(L->w[0].md, from, L->plain_md, plain) == dnnl_success;
    // The widened source is done with, so a compact derivation may stage in the same scratch.
    float *to = !ok ? NULL : compact ? weight_scratch(bytes ? bytes : 64) : dd_alloc_large(bytes ? bytes : 64);
    ok = to && reorder(L->plain_md, plain, want, to) == dnnl_success;
    free(plain);
    packed made;
    md_t own = ok ? md_clone(want) : NULL;
    if (!own || pack_weights(&made, own, to, compact) != 0) {
        if (!compact && !own) free(to);
        return -1;
    }
    if (replace) {
        free(L->w[0].data);
        md_free(L->w[0].md);
        L->w[0] = made;
        return 0;
    }
    L->w[L->nw] = made;
    return L->nw++;
}

static variant *find_variant(layer *L, const long key[4]) {
    for (int i = 0; i < L->nv; i++)
        if (memcmp(L->v[i]->key, key, sizeof(long) * 4) == 0) return L->v[i];
    return NULL;
}

static void variant_free(variant *v) {
    if (v->prim) dnnl_primitive_destroy(v->prim);
    if (v->src_in) dnnl_primitive_destroy(v->src_in);
    if (v->dst_out) dnnl_primitive_destroy(v->dst_out);
    if (v->residual_in) dnnl_primitive_destroy(v->residual_in);
    md_free(v->src_md);
    md_free(v->dst_md);
    md_free(v->user_src_md);
    md_free(v->user_dst_md);
    memset(v, 0, sizeof *v);
}

static void variant_destroy(variant *v) {
    variant_free(v);
    free(v);
}

static variant *add_variant(layer *L, const long key[4], dnnl_primitive_desc_t pd) {
    if (L->nv == L->cap) {
        int cap = L->cap ? L->cap * 2 : 4;
        variant **nv = realloc(L->v, cap * sizeof(variant *));
        if (!nv) return NULL;
        L->v = nv;
        L->cap = cap;
    }
    int wi = weights_for(L, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    if (wi < 0) return NULL;
    variant *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    memcpy(v->key, key, sizeof(long) * 4);
    v->w = wi;
    v->src_md = query_md(pd, dnnl_query_src_md);
    v->dst_md = query_md(pd, dnnl_query_dst_md);
    if (!v->src_md || !v->dst_md || dnnl_primitive_create(&v->prim, pd) != dnnl_success) {
        variant_destroy(v);
        return NULL;
    }
    L->v[L->nv++] = v;
    return v;
}

// Frees the packed weights and the primitives that use them; the bias stays. A convolution does
// this once its Winograd weights serve it (caller holds the lock).
static void drop_direct_weights(layer *L) {
    for (int i = 0; i < L->nw; i++) {
        free(L->w[i].data);
        md_free(L->w[i].md);
    }
    for (int i = 0; i < L->nv; i++) variant_destroy(L->v[i]);
    L->nw = L->nv = 0;
}

static void layer_free(layer *L) {
    drop_direct_weights(L);
    free(L->v);
    free(L->bias);
    md_free(L->bias_md);
    md_free(L->plain_md);
    pthread_mutex_destroy(&L->lock);
}

// `bf16`: 0 keeps float32 weights; 1 rounds them to bf16 values (float32 storage); 2 stores the
// bf16 halves (compact).
static int pack_layer(layer *L, cmd_t user_md, const float *weight, cmd_t want, int bf16, const float *bias, long nbias) {
    int compact = bf16 == 2;
    pthread_mutex_init(&L->lock, NULL);
    if (!(L->plain_md = md_clone(user_md))) return -1;
    size_t bytes = dnnl_memory_desc_get_size(want);
    // Compact weights stage the float32 repack in scratch, so loading touches fresh
    // memory only for the half-size result.
    float *to = compact ? weight_scratch(bytes ? bytes : 64) : dd_alloc_large(bytes ? bytes : 64);
    md_t own = to ? md_clone(want) : NULL;
    if (!own || reorder(user_md, (void *)weight, want, to) != dnnl_success) {
        md_free(own);
        if (!compact) free(to);
        return -1;
    }
    long count = (long)(bytes / sizeof(float));
    if (bf16 == 1) dd_round_rows_bf16(to, count, to, count, 1, count);
    if (pack_weights(&L->w[0], own, to, compact) != 0) return -1;
    L->nw = 1;
    if (bias) {
        L->bias = malloc(nbias * sizeof(float));
        if (!L->bias) return -1;
        memcpy(L->bias, bias, nbias * sizeof(float));
        dnnl_dims_t bd = {nbias};
        if (!(L->bias_md = md_tag(1, bd, dnnl_f32, dnnl_a))) return -1;
    }
    return 0;
}

static int init_layer(layer *L, cmd_t user_md, const float *weight, cmd_t want, int bf16, const float *bias, long nbias) {
    scratch_enter();
    int rc = pack_layer(L, user_md, weight, want, bf16, bias, nbias);
    scratch_leave();
    return rc;
}

// Dense copy of f32 activations as bf16 (native) or bf16-rounded f32 (emulated), in the call's
// scratch `slot`, when the layer computes in bf16; NULL for f32 or when out of memory.
static void *maybe_bf16(int slot, dd_dtype dt, const float *src, long ld, long rows, long cols) {
    if (dt != DD_BF16) return NULL;
    void *s = scratch(slot, (size_t)rows * cols * (g_bf16_native ? 2 : 4));
    if (!s) return NULL;
    if (g_bf16_native) dd_convert_rows_bf16(src, ld, s, cols, rows, cols);
    else dd_round_rows_bf16(src, ld, s, cols, rows, cols);
    return s;
}

// ---- convolution --------------------------------------------------------------------------------
// Activation layout of convolutions. oneDNN 2.x's AVX2 kernels run ~2.5x faster in its blocked
// layout than in NHWC, so there the shim reorders at each convolution's edges; oneDNN 3.x's brgemm
// convolutions run NHWC directly at least as fast (measured 1.4x faster at 1280 channels, equal
// at 320), so no reorders. DECI_CONV_LAYOUT=nhwc|blocked overrides (for comparison).
static int g_conv_plain_layout = -1;

// Winograd F(4x4, 3x3) state of a convolution (see the section below).
typedef struct {
    long tc, nc;  // tiles per chunk, output channels
    dnnl_primitive_t prim;
    md_t src, wei, dst;
} wino_gemm;

typedef struct {
    int state;  // 0 direct weights only, 1 transformed weights replaced them, -1 Winograd unavailable
    float *u;   // transformed weights [36][cin][cout] (state 1)
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

void dd_conv_output_size(const dd_conv *c, int h, int w, int *oh, int *ow) {
    *oh = (h + c->ph + c->pb - c->kh) / c->stride + 1;
    *ow = (w + c->pw + c->pr - c->kw) / c->stride + 1;
}

static dnnl_status_t conv_pd(const dd_conv *c, int n, int h, int w, dd_activation act, int residual, dnnl_primitive_desc_t *pd) {
    int oh, ow;
    dd_conv_output_size(c, h, w, &oh, &ow);
    dnnl_dims_t sd = {n, c->cin, h, w}, wd = {c->cout, c->cin, c->kh, c->kw}, dd = {n, c->cout, oh, ow}, bd = {c->cout};
    dnnl_format_tag_t layout = g_conv_plain_layout ? dnnl_nhwc : dnnl_format_tag_any;
    md_t src = md_tag(4, sd, dt_of(c->dt), layout), wei = md_tag(4, wd, dt_of(c->dt), dnnl_format_tag_any),
         dst = md_tag(4, dd, dnnl_f32, layout), bias = md_tag(1, bd, dnnl_f32, dnnl_a);
    dnnl_dims_t strides = {c->stride, c->stride}, pad = {c->ph, c->pw};
    // oneDNN wants the right padding that the output size implies (it may be less than requested).
    dnnl_dims_t pad_r;
    pad_r[0] = (oh - 1) * c->stride + c->kh - h - c->ph;
    pad_r[1] = (ow - 1) * c->stride + c->kw - w - c->pw;
    dnnl_primitive_attr_t attr = make_attr(act, residual);
    dnnl_status_t st = dnnl_out_of_memory;
    if (src && wei && dst && bias && attr)
        st = conv_pd_create(pd, g_engine, src, wei, c->has_bias ? bias : NULL, dst, strides, pad, pad_r, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    md_free(src);
    md_free(wei);
    md_free(dst);
    md_free(bias);
    return st;
}

dd_conv *dd_conv_create(int cin, int cout, int kh, int kw, int stride, int pad_t, int pad_l, int pad_b, int pad_r,
                        dd_dtype dtype, const float *weight, const float *bias, char *err, int errlen) {
    dd_conv *c = NULL;
    dnnl_primitive_desc_t pd = NULL;
    md_t user = NULL;
    if (ensure_engine(err, errlen)) return NULL;
    if (g_conv_plain_layout < 0) {
        const char *e = getenv("DECI_CONV_LAYOUT");
        g_conv_plain_layout = e && strcmp(e, "nhwc") == 0 ? 1 : e && strcmp(e, "blocked") == 0 ? 0 : DD_DNNL3;
    }
    if (cin <= 0 || cout <= 0 || kh <= 0 || kw <= 0 || stride <= 0 || pad_t < 0 || pad_l < 0 || pad_b < 0 || pad_r < 0)
        FAIL("invalid convolution geometry cin=%d cout=%d k=%dx%d stride=%d pad=%d,%d,%d,%d", cin, cout, kh, kw, stride, pad_t,
             pad_l, pad_b, pad_r);
    c = calloc(1, sizeof *c);
    if (!c) FAIL("out of memory");
    c->cin = cin, c->cout = cout, c->kh = kh, c->kw = kw, c->stride = stride;
    c->ph = pad_t, c->pw = pad_l, c->pb = pad_b, c->pr = pad_r;
    c->dt = dtype;
    c->has_bias = bias != NULL;
    // A nominal shape picks the packed layout; other shapes reuse it or repack from it.
    int nominal = 32 * stride;
    TRY(conv_pd(c, 2, nominal, nominal, DD_ACT_NONE, 0, &pd), "convolution setup");
    dnnl_dims_t wd = {cout, cin, kh, kw};
    if (!(user = md_tag(4, wd, dnnl_f32, dnnl_oihw))) FAIL("out of memory");
    if (init_layer(&c->L, user, weight, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), bf16_storage(dtype), bias, cout))
        FAIL("packing convolution weights failed");
    md_free(user);
    dnnl_primitive_desc_destroy(pd);
    return c;
fail:
    md_free(user);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (c) {
        layer_free(&c->L);
        free(c);
    }
    return NULL;
}

static void wino_free(wino *W);

void dd_conv_destroy(dd_conv *c) {
    if (!c) return;
    layer_free(&c->L);
    wino_free(&c->W);
    free(c);
}

// Sets up the edge reorders of a new variant (caller holds the layer lock).
static int conv_edges(dd_conv *c, variant *v, int n, int h, int w, int oh, int ow, int residual) {
    dnnl_dims_t sd = {n, c->cin, h, w}, dd = {n, c->cout, oh, ow};
    v->user_src_md = md_tag(4, sd, dnnl_f32, dnnl_nhwc);
    v->user_dst_md = md_tag(4, dd, dnnl_f32, dnnl_nhwc);
    if (!v->user_src_md || !v->user_dst_md) return -1;
    if (!dnnl_memory_desc_equal(v->src_md, v->user_src_md) && !(v->src_in = make_reorder(v->user_src_md, v->src_md))) return -1;
    if (!dnnl_memory_desc_equal(v->dst_md, v->user_dst_md)) {
        if (!(v->dst_out = make_reorder(v->dst_md, v->user_dst_md))) return -1;
        if (residual && !(v->residual_in = make_reorder(v->user_dst_md, v->dst_md))) return -1;
    }
    return 0;
}

// ---- Winograd F(4x4, 3x3) ------------------------------------------------------------------------
// Why: 3x3 convolutions are ~90% of a VAE decode and ~45% of a UNet step, and oneDNN has no
// float32 Winograd kernel below AVX-512. F(4x4, 3x3) computes a 4x4 output tile from a 6x6 input
// tile with 36 multiplies per channel pair where direct convolution needs 144: the work becomes 36
// batched GEMMs [tiles x cin] x [cin x cout] (oneDNN matmul) between two cheap tile transforms
// (kernels_body.h). Measured 2.5-3.5x faster than oneDNN's direct kernels at 32-512 px here.
// The price: transformed weights take 4x the memory of the direct ones (36 vs 9 values per
// filter), and rounding grows a few times (tested against direct convolution and PyTorch).
// By default a large call rebuilds the transformed weights from the direct ones into scratch
// (measured as fast as keeping them: the build is small next to the GEMMs). A layer set to keep
// them switches on its first large call: they replace the direct weights and serve every later
// call whatever its size. DECI_WINOGRAD=0 turns the automatic choice off, DECI_WINOGRAD_MIN_TILES
// sets its tile count, DECI_WINOGRAD_KEEP=0/1 overrides every layer's keep setting.
#define WINO_SCRATCH (16L << 20)  // transformed input + output per chunk of tiles: stays in L3

static int g_wino_enabled = -1;
static long g_wino_min_tiles = 128;
static int g_wino_keep = -1;  // DECI_WINOGRAD_KEEP=0/1 overrides every layer's choice
static _Thread_local long g_wino_chunk = 0;  // per thread, like g_attention_tile

void dd_set_winograd_chunk(long tiles) { g_wino_chunk = tiles > 0 ? tiles : 0; }
static _Thread_local int g_wino_forced = 0;
void dd_set_winograd_forced(int forced) { g_wino_forced = forced != 0; }

void dd_conv_set_algorithm(dd_conv *c, dd_conv_algorithm a, int keep) {
    c->algorithm = a;
    c->wino_keep = keep != 0;
}

static void wino_settings(void) {
    if (g_wino_enabled >= 0) return;
    const char *e = getenv("DECI_WINOGRAD"), *m = getenv("DECI_WINOGRAD_MIN_TILES");
    if (m && atol(m) > 0) g_wino_min_tiles = atol(m);
    const char *k = getenv("DECI_WINOGRAD_KEEP");
    g_wino_keep = k && strcmp(k, "0") == 0 ? 0 : k && strcmp(k, "1") == 0 ? 1 : -1;
    g_wino_enabled = !(e && strcmp(e, "0") == 0);
}

static void wino_gemm_free(wino_gemm *m) {
    if (m->prim) dnnl_primitive_destroy(m->prim);
    md_free(m->src);
    md_free(m->wei);
    md_free(m->dst);
    memset(m, 0, sizeof *m);
}

static void wino_free(wino *W) {
    for (int i = 0; i < W->ngemm; i++) {
        wino_gemm_free(W->gemm[i]);
        free(W->gemm[i]);
    }
    free(W->gemm);
    free(W->u);
    memset(W, 0, sizeof *W);
}

static long wino_tiles(int n, int h, int w) { return (long)n * ((h + 3) / 4) * ((w + 3) / 4); }

static int wino_applies(const dd_conv *c, int n, int h, int w) {
    wino_settings();
    if (c->W.state > 0) return 1;  // the direct weights are gone
    if (c->algorithm == DD_CONV_DIRECT || c->W.state < 0) return 0;
    // Native bf16 stays direct: Winograd's transformed tiles need more precision than bf16 holds.
    // Emulated bf16 multiplies in float32, so it gains what float32 gains.
    int geometry = (c->dt == DD_F32 || emulated(c->dt)) && c->kh == 3 && c->kw == 3 && c->stride == 1 && c->ph == 1 && c->pw == 1 && c->pb == 1 &&
                   c->pr == 1 && c->cin % 16 == 0 && c->cout % 16 == 0;
    if (c->algorithm == DD_CONV_WINOGRAD || g_wino_forced) return geometry;
    return geometry && g_wino_enabled && c->cin >= 64 && c->cout >= 64 && wino_tiles(n, h, w) >= g_wino_min_tiles;
}

// The layer's direct weights in hwio layout (float32, in the call's scratch), the source of its
// transformed ones; NULL on failure (caller holds the lock).
static float *wino_hwio(dd_conv *c) {
    dnnl_dims_t wd = {c->cout, c->cin, 3, 3};
    md_t hwio = md_tag(4, wd, dnnl_f32, dnnl_hwio);
    float *g = scratch(SCRATCH_HWIO, (size_t)9 * c->cin * c->cout * sizeof(float));
    void *from = g ? weights_data(&c->L.w[0]) : NULL;
    int ok = hwio && from && reorder(c->L.w[0].md, from, hwio, g) == dnnl_success;
    md_free(hwio);
    return ok ? g : NULL;
}

// Output channels per block of transformed weights built for one call: the whole layer unless its
// transformed weights pass WINO_U_BLOCK (the 1280-channel UNet layers' take 236 MB), then equal
// blocks (multiples of 16) under it. Blocks cost nothing when a call's tiles fit one chunk (the
// input transform is shared) and one extra input transform per block otherwise.
#define WINO_U_BLOCK (48L << 20)
static _Thread_local long g_wino_u_block = 0;  // test override, bytes
void dd_set_winograd_weight_block(long bytes) { g_wino_u_block = bytes > 0 ? bytes : 0; }

static long wino_block_channels(long cin, long cout) {
    long limit = g_wino_u_block > 0 ? g_wino_u_block : WINO_U_BLOCK, per_channel = 36 * cin * (long)sizeof(float);
    long blocks = (cout * per_channel + limit - 1) / limit;
    long cb = (cout + blocks - 1) / blocks;
    return (cb + 15) / 16 * 16;
}

// The batched GEMM for chunks of tc tiles and nc output channels (caller holds the lock).
static wino_gemm *wino_gemm_for(dd_conv *c, long tc, long nc) {
    for (int i = 0; i < c->W.ngemm; i++)
        if (c->W.gemm[i]->tc == tc && c->W.gemm[i]->nc == nc) return c->W.gemm[i];
    if (c->W.ngemm == c->W.cap) {
        int cap = c->W.cap ? 2 * c->W.cap : 4;
        wino_gemm **grown = realloc(c->W.gemm, cap * sizeof(wino_gemm *));
        if (!grown) return NULL;
        c->W.gemm = grown;
        c->W.cap = cap;
    }
    wino_gemm *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->tc = tc;
    m->nc = nc;
    dnnl_dims_t sd = {36, tc, c->cin}, wd = {36, c->cin, nc}, dd = {36, tc, nc};
    m->src = md_tag(3, sd, dnnl_f32, dnnl_abc);
    m->wei = md_tag(3, wd, dnnl_f32, dnnl_abc);
    m->dst = md_tag(3, dd, dnnl_f32, dnnl_abc);
    dnnl_primitive_desc_t pd = NULL;
    int ok = m->src && m->wei && m->dst && matmul_pd_create(&pd, g_engine, m->src, m->wei, NULL, m->dst, NULL) == dnnl_success &&
             dnnl_primitive_create(&m->prim, pd) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        wino_gemm_free(m);
        free(m);
        return NULL;
    }
    c->W.gemm[c->W.ngemm++] = m;
    return m;
}

// 0 when done, 1 when Winograd is unavailable for this layer (the caller runs the direct path),
// -1 on a failure with err set.
static int wino_forward(dd_conv *c, int n, int h, int w, const float *src, int up, float *dst, const float *residual,
                        dd_activation act, char *err, int errlen) {
    long tiles = wino_tiles(n, h, w), cout = c->cout;
    pthread_mutex_lock(&c->L.lock);
    // Compact bf16 weights would lose their point next to 4x larger kept transformed ones.
    int keep = g_wino_keep >= 0 ? g_wino_keep : c->wino_keep;
    int transient = c->W.state == 0 && (!keep || (c->L.nw > 0 && c->L.w[0].compact));
    long cb = transient ? wino_block_channels(c->cin, cout) : cout, last = cout - (cout - 1) / cb * cb;
    long per_tile = 36L * (c->cin + cb) * (long)sizeof(float);
    long cap = WINO_SCRATCH / per_tile < 32 ? 32 : WINO_SCRATCH / per_tile;
    if (g_wino_chunk > 0) cap = g_wino_chunk;
    long chunks = (tiles + cap - 1) / cap, tc = (tiles + chunks - 1) / chunks;
    wino_gemm *m = c->W.state >= 0 ? wino_gemm_for(c, tc, cb) : NULL, *m_last = m;
    if (m && last != cb) m_last = wino_gemm_for(c, tc, last);
    if (!m_last) m = NULL;
    if (!m && c->W.state == 0) c->W.state = -1;
    float *g = NULL;  // transient: hwio weights, transformed block by block below
    if (m && c->W.state == 0 && !transient) {  // switch for good
        size_t ub = (size_t)36 * c->cin * cout * sizeof(float);
        float *built = dd_alloc_large(ub), *hwio = built ? wino_hwio(c) : NULL;
        if (hwio) {
            dd_wino_weights(hwio, cout, built, c->cin, cout);
            c->W.u = built;
            c->W.state = 1;
            if (c->direct_busy == 0) drop_direct_weights(&c->L);  // else kept: another thread runs them
        } else {
            free(built);
            c->W.state = -1;
            m = NULL;
        }
    } else if (m && transient && !(g = wino_hwio(c))) {
        m = NULL;
    }
    int gone = c->W.state > 0;
    pthread_mutex_unlock(&c->L.lock);
    if (!m) {
        if (!gone) return 1;
        if (err && errlen > 0) snprintf(err, errlen, "oneDNN Winograd GEMM %d->%d for %ld tiles: no implementation", c->cin, c->cout, tc);
        return -1;
    }
    float *vbuf = scratch(SCRATCH_WINO_V, (size_t)36 * tc * c->cin * sizeof(float));
    float *mbuf = scratch(SCRATCH_WINO_M, (size_t)36 * tc * cb * sizeof(float));
    // Emulated bf16 rounds the inputs, as the direct path does, inside the input transform.
    int flags = (up ? DD_WINO_UP : 0) | (emulated(c->dt) ? DD_WINO_BF16 : 0);
    dnnl_status_t st = vbuf && mbuf ? dnnl_success : dnnl_out_of_memory;
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    for (long co = 0; co < cout && st == dnnl_success; co += cb) {
        long nc = cout - co < cb ? cout - co : cb;
        wino_gemm *mm = nc == cb ? m : m_last;
        float *u = c->W.u;
        if (g) {
            if (!(u = scratch(SCRATCH_WINO_U, (size_t)36 * c->cin * nc * sizeof(float)))) {
                st = dnnl_out_of_memory;
                break;
            }
            dd_wino_weights(g + co, cout, u, c->cin, nc);
        }
        for (long t0 = 0; t0 < tiles && st == dnnl_success; t0 += tc) {
            if (co == 0 || chunks > 1) dd_wino_input(src, flags, vbuf, n, h, w, c->cin, t0, tc);
            cmd_t mds[3] = {mm->src, mm->wei, mm->dst};
            void *ptrs[3] = {vbuf, u, mbuf};
            st = execute(mm->prim, 3, ids, mds, ptrs);
            if (st == dnnl_success)
                dd_wino_output(mbuf, dst + co, c->L.bias ? c->L.bias + co : NULL, residual ? residual + co : NULL, act, n, h, w,
                               nc, cout, t0, tc);
        }
    }
    if (st != dnnl_success) {
        if (err && errlen > 0) snprintf(err, errlen, "oneDNN Winograd GEMM failed (status %d)", (int)st);
        return -1;
    }
    return 0;
}

static int conv_forward(dd_conv *c, int n, int h, int w, const float *src, float *dst, const float *residual,
                        dd_activation act, char *err, int errlen) {
    void *rounded = NULL, *src_buf = NULL, *dst_buf = NULL;
    size_t src_bytes = 0, dst_bytes = 0;
    dnnl_primitive_desc_t pd = NULL;
    variant *v = NULL;
    int oh, ow, rc = -1;
    dd_conv_output_size(c, h, w, &oh, &ow);
    if (oh <= 0 || ow <= 0) FAIL("convolution input %dx%d too small for kernel %dx%d", h, w, c->kh, c->kw);
    if (wino_applies(c, n, h, w)) {
        int wrc = wino_forward(c, n, h, w, src, 0, dst, residual, act, err, errlen);
        if (wrc <= 0) return wrc;
    }
    long key[4] = {n, h, w, (long)act * 2 + (residual != NULL)};
    pthread_mutex_lock(&c->L.lock);
    if (c->W.state > 0) {  // another thread switched the layer to Winograd since the check above
        pthread_mutex_unlock(&c->L.lock);
        return wino_forward(c, n, h, w, src, 0, dst, residual, act, err, errlen);
    }
    v = find_variant(&c->L, key);
    if (!v) {
        dnnl_status_t st = conv_pd(c, n, h, w, act, residual != NULL, &pd);
        if (st == dnnl_success) v = add_variant(&c->L, key, pd);
        if (v && conv_edges(c, v, n, h, w, oh, ow, residual != NULL)) {
            variant_destroy(v);
            c->L.nv--;
            v = NULL;
        }
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (v) c->direct_busy++;
    pthread_mutex_unlock(&c->L.lock);
    if (!v) FAIL("oneDNN convolution %dx%d %d->%d on %dx%dx%d: no implementation", c->kh, c->kw, c->cin, c->cout, n, h, w);
    size_t out_bytes = (size_t)n * oh * ow * c->cout * sizeof(float);
    const void *s_in = src;
    if (emulated(c->dt)) {  // round to bf16 values first, in float32
        rounded = maybe_bf16(SCRATCH_IN0, c->dt, src, c->cin, (long)n * h * w, c->cin);
        if (!rounded) FAIL("out of memory");
        s_in = rounded;
    }
    if (v->src_in) {
        src_bytes = dnnl_memory_desc_get_size(v->src_md);
        if (!(src_buf = dd_alloc(src_bytes))) FAIL("out of memory");
        TRY(run_reorder(v->src_in, v->user_src_md, s_in, v->src_md, src_buf), "convolution input reorder");
        s_in = src_buf;
    }
    void *d_out = dst;
    if (v->dst_out) {
        dst_bytes = dnnl_memory_desc_get_size(v->dst_md);
        if (!(dst_buf = dd_alloc(dst_bytes))) FAIL("out of memory");
        if (residual) TRY(run_reorder(v->residual_in, v->user_dst_md, residual, v->dst_md, dst_buf), "residual reorder");
        d_out = dst_buf;
    } else if (residual && residual != dst) {
        memcpy(dst, residual, out_bytes);
    }
    {
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        void *wei = weights_data(&c->L.w[v->w]);
        if (!wei) FAIL("out of memory");
        cmd_t mds[4] = {v->src_md, c->L.w[v->w].md, v->dst_md, c->L.bias_md};
        void *ptrs[4] = {(void *)s_in, wei, d_out, c->L.bias};
        TRY(execute(v->prim, c->L.bias ? 4 : 3, ids, mds, ptrs), "convolution");
    }
    if (v->dst_out) TRY(run_reorder(v->dst_out, v->dst_md, dst_buf, v->user_dst_md, dst), "convolution output reorder");
    rc = 0;
fail:
    if (v) {
        pthread_mutex_lock(&c->L.lock);
        c->direct_busy--;
        pthread_mutex_unlock(&c->L.lock);
    }
    dd_free(src_buf, src_bytes);
    dd_free(dst_buf, dst_bytes);
    return rc;
}

int dd_conv_forward(dd_conv *c, int n, int h, int w, const float *src, float *dst, const float *residual,
                    dd_activation act, char *err, int errlen) {
    scratch_enter();
    int rc = conv_forward(c, n, h, w, src, dst, residual, act, err, errlen);
    scratch_leave();
    return rc;
}

static int conv_forward_upsampled(dd_conv *c, int n, int h, int w, const float *src, float *dst, char *err, int errlen) {
    if (wino_applies(c, n, 2 * h, 2 * w)) {
        int rc = wino_forward(c, n, 2 * h, 2 * w, src, 1, dst, NULL, DD_ACT_NONE, err, errlen);
        if (rc <= 0) return rc;
    }
    size_t bytes = (size_t)n * 4 * h * w * c->cin * sizeof(float);
    float *up = dd_alloc(bytes);
    if (!up) {
        if (err && errlen > 0) snprintf(err, errlen, "out of memory");
        return -1;
    }
    dd_upsample_nearest2x(src, up, n, h, w, c->cin);
    int rc = conv_forward(c, n, 2 * h, 2 * w, up, dst, NULL, DD_ACT_NONE, err, errlen);
    dd_free(up, bytes);
    return rc;
}

int dd_conv_forward_upsampled(dd_conv *c, int n, int h, int w, const float *src, float *dst, char *err, int errlen) {
    scratch_enter();
    int rc = conv_forward_upsampled(c, n, h, w, src, dst, err, errlen);
    scratch_leave();
    return rc;
}

// ---- linear -------------------------------------------------------------------------------------
struct dd_linear {
    int in, out;
    dd_dtype dt;
    layer L;
};

static dnnl_status_t linear_pd(const dd_linear *l, long m, long ld, dd_activation act, int residual, int has_bias,
                               dnnl_primitive_desc_t *pd) {
    dnnl_dims_t sd = {m, l->in}, ss = {ld, 1}, wd = {l->in, l->out}, dd = {m, l->out}, bd = {1, l->out};
    md_t src = md_strides(2, sd, dt_of(l->dt), ss), wei = md_tag(2, wd, dt_of(l->dt), dnnl_format_tag_any),
         dst = md_tag(2, dd, dnnl_f32, dnnl_ab), bias = md_tag(2, bd, dnnl_f32, dnnl_ab);
    dnnl_primitive_attr_t attr = make_attr(act, residual);
    dnnl_status_t st = dnnl_out_of_memory;
    if (src && wei && dst && bias && attr) st = matmul_pd_create(pd, g_engine, src, wei, has_bias ? bias : NULL, dst, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    md_free(src);
    md_free(wei);
    md_free(dst);
    md_free(bias);
    return st;
}

dd_linear *dd_linear_create(int in_features, int out_features, dd_dtype dtype, const float *weight, const float *bias,
                            char *err, int errlen) {
    dd_linear *l = NULL;
    dnnl_primitive_desc_t pd = NULL;
    md_t user = NULL;
    if (ensure_engine(err, errlen)) return NULL;
    if (in_features <= 0 || out_features <= 0) FAIL("invalid linear shape %d -> %d", in_features, out_features);
    l = calloc(1, sizeof *l);
    if (!l) FAIL("out of memory");
    l->in = in_features;
    l->out = out_features;
    l->dt = dtype;
    TRY(linear_pd(l, 256, in_features, DD_ACT_NONE, 0, bias != NULL, &pd), "linear setup");
    dnnl_dims_t wd = {in_features, out_features}, ws = {1, in_features};
    if (!(user = md_strides(2, wd, dnnl_f32, ws))) FAIL("out of memory");
    if (init_layer(&l->L, user, weight, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), bf16_storage(dtype), bias,
                   out_features))
        FAIL("packing linear weights failed");
    if (bias) {  // matmul wants a 2-D bias
        dnnl_dims_t bd = {1, out_features};
        md_free(l->L.bias_md);
        if (!(l->L.bias_md = md_tag(2, bd, dnnl_f32, dnnl_ab))) FAIL("out of memory");
    }
    md_free(user);
    dnnl_primitive_desc_destroy(pd);
    return l;
fail:
    md_free(user);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (l) {
        layer_free(&l->L);
        free(l);
    }
    return NULL;
}

void dd_linear_destroy(dd_linear *l) {
    if (!l) return;
    layer_free(&l->L);
    free(l);
}

static int linear_forward(dd_linear *l, long m, const float *src, long src_ld, float *dst, const float *residual,
                          dd_activation act, char *err, int errlen) {
    void *rounded = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (m <= 0) return 0;
    long ld = l->dt == DD_BF16 ? l->in : src_ld;  // bf16 input is repacked densely
    long key[4] = {m, ld, (long)act * 2 + (residual != NULL), 0};
    pthread_mutex_lock(&l->L.lock);
    variant *v = find_variant(&l->L, key);
    if (!v) {
        dnnl_status_t st = linear_pd(l, m, ld, act, residual != NULL, l->L.bias != NULL, &pd);
        if (st == dnnl_success) v = add_variant(&l->L, key, pd);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    pthread_mutex_unlock(&l->L.lock);
    if (!v) FAIL("oneDNN matmul [%ld, %d] x [%d, %d]: no implementation", m, l->in, l->in, l->out);
    if (residual && residual != dst) memcpy(dst, residual, (size_t)m * l->out * sizeof(float));
    rounded = maybe_bf16(SCRATCH_IN0, l->dt, src, src_ld, m, l->in);
    if (l->dt == DD_BF16 && !rounded) FAIL("out of memory");
    {
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        void *wei = weights_data(&l->L.w[v->w]);
        if (!wei) FAIL("out of memory");
        cmd_t mds[4] = {v->src_md, l->L.w[v->w].md, v->dst_md, l->L.bias_md};
        void *ptrs[4] = {rounded ? rounded : (void *)src, wei, dst, l->L.bias};
        TRY(execute(v->prim, l->L.bias ? 4 : 3, ids, mds, ptrs), "matmul");
    }
    return 0;
fail:
    return -1;
}

int dd_linear_forward(dd_linear *l, long m, const float *src, long src_ld, float *dst, const float *residual,
                      dd_activation act, char *err, int errlen) {
    scratch_enter();
    int rc = linear_forward(l, m, src, src_ld, dst, residual, act, err, errlen);
    scratch_leave();
    return rc;
}

// ---- attention ----------------------------------------------------------------------------------
// Per query tile: S[h] = Q[h] K[h]^T (one batched matmul over heads, reading the channels-last
// rows through strides), row softmax with the scale folded in, O[h] = P[h] V[h] written straight
// into the output rows. In bf16 mode Q/K/V are rounded once up front and P is written as bf16.

typedef struct {
    long key[14];
    dnnl_primitive_t prim;
    md_t a, b, c;
} bmm;

static bmm *g_bmm;
static int g_nbmm, g_capbmm;
static pthread_mutex_t g_bmm_lock = PTHREAD_MUTEX_INITIALIZER;

// C[bt, m, n] = A[bt, m, k] B[bt, k, n] with explicit strides (elements) for each operand.
static bmm *get_bmm(dnnl_data_type_t dt, long bt, long m, long n, long k, const long as[3], const long bs[3], const long cs[3]) {
    long key[14] = {dt, bt, m, n, k, as[0], as[1], as[2], bs[0], bs[1], bs[2], cs[0], cs[1], cs[2]};
    pthread_mutex_lock(&g_bmm_lock);
    for (int i = 0; i < g_nbmm; i++)
        if (memcmp(g_bmm[i].key, key, sizeof key) == 0) {
            bmm *r = &g_bmm[i];
            pthread_mutex_unlock(&g_bmm_lock);
            return r;
        }
    bmm *r = NULL;
    dnnl_dims_t ad = {bt, m, k}, bd = {bt, k, n}, cd = {bt, m, n};
    dnnl_dims_t ast = {as[0], as[1], as[2]}, bst = {bs[0], bs[1], bs[2]}, cst = {cs[0], cs[1], cs[2]};
    md_t a = md_strides(3, ad, dt, ast), b = md_strides(3, bd, dt, bst), c = md_strides(3, cd, dnnl_f32, cst);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (a && b && c && matmul_pd_create(&pd, g_engine, a, b, NULL, c, NULL) == dnnl_success &&
        dnnl_primitive_create(&prim, pd) == dnnl_success) {
        if (g_nbmm == g_capbmm) {
            int cap = g_capbmm ? g_capbmm * 2 : 16;
            bmm *nb = realloc(g_bmm, cap * sizeof(bmm));
            if (nb) {
                g_bmm = nb;
                g_capbmm = cap;
            }
        }
        if (g_nbmm < g_capbmm) {
            r = &g_bmm[g_nbmm++];
            memcpy(r->key, key, sizeof key);
            r->prim = prim;
            r->a = a;
            r->b = b;
            r->c = c;
            prim = NULL;
            a = b = c = NULL;
        }
    }
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    md_free(a);
    md_free(b);
    md_free(c);
    pthread_mutex_unlock(&g_bmm_lock);
    return r;
}

static dnnl_status_t run_bmm(bmm *b, const void *a, const void *bp, void *c) {
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    cmd_t mds[3] = {b->a, b->b, b->c};
    void *ptrs[3] = {(void *)a, (void *)bp, c};
    return execute(b->prim, 3, ids, mds, ptrs);
}

// Per thread, so that a test forcing it cannot change another test's results.
static _Thread_local long g_attention_tile = 0;
void dd_set_attention_tile(long rows) { g_attention_tile = rows > 0 ? rows : 0; }

static int attention(int batch, long nq, long nk, int heads, int head_dim, const float *q, long q_ld, const float *k,
                     long k_ld, const float *v, long v_ld, float *out, long out_ld, float scale, int causal, dd_dtype dtype,
                     char *err, int errlen) {
    if (ensure_engine(err, errlen)) return -1;
    long d = head_dim, hd = heads, C = hd * d;
    int bf = dtype == DD_BF16;              // round inputs and probabilities to bf16
    int native = bf && g_bf16_native;       // ... and multiply in bf16
    size_t es = native ? 2 : 4;
    void *qb = NULL, *kb = NULL, *vb = NULL;
    float *S = NULL;
    void *P = NULL;
    const void *Q = q, *K = k, *V = v;
    long qld = q_ld, kld = k_ld, vld = v_ld;
    if (bf) {  // dense rounded copies of all rows: [batch * n, C]
        qb = maybe_bf16(SCRATCH_IN0, dtype, q, q_ld, (long)batch * nq, C);
        kb = maybe_bf16(SCRATCH_IN1, dtype, k, k_ld, (long)batch * nk, C);
        vb = maybe_bf16(SCRATCH_IN2, dtype, v, v_ld, (long)batch * nk, C);
        if (!qb || !kb || !vb) FAIL("out of memory");
        Q = qb; K = kb; V = vb;
        qld = kld = vld = C;
    }
    // Tile queries so one tile's scores for all heads stay within 64 MB and at most 1024 rows:
    // tall enough that the score GEMMs amortise packing their small (head_dim) side, and never
    // the whole score matrix of a 4096-token image.
    long tq = (64L << 20) / (hd * nk * 4);
    if (tq > 1024) tq = 1024;
    tq = tq < 16 ? 16 : (tq / 16) * 16;
    if (g_attention_tile > 0) tq = g_attention_tile;
    if (tq > nq) tq = nq;
    S = scratch(SCRATCH_SCORES, (size_t)hd * tq * nk * 4);
    if (native) P = scratch(SCRATCH_PROBS, (size_t)hd * tq * nk * 2);
    if (!S || (native && !P)) FAIL("out of memory");
    dnnl_data_type_t dt = native ? dnnl_bf16 : dnnl_f32;
    for (int b = 0; b < batch; b++) {
        const char *Kb = (const char *)K + (size_t)b * nk * kld * es;
        const char *Vb = (const char *)V + (size_t)b * nk * vld * es;
        for (long i0 = 0; i0 < nq; i0 += tq) {
            long m = nq - i0 < tq ? nq - i0 : tq;
            const char *Qt = (const char *)Q + ((size_t)b * nq + i0) * qld * es;
            long as[3] = {d, qld, 1}, bs[3] = {d, 1, kld}, cs[3] = {m * nk, nk, 1};
            bmm *mm1 = get_bmm(dt, hd, m, nk, d, as, bs, cs);
            if (!mm1) FAIL("oneDNN attention scores matmul %ldx%ldx%ld unavailable", m, nk, d);
            TRY(run_bmm(mm1, Qt, Kb, S), "attention scores");
            void *probs = native ? P : (void *)S;
            dd_softmax_rows(S, nk, probs, nk, native ? 1 : bf ? 2 : 0, hd * m, nk, scale, causal ? i0 : -1, m);
            long ps[3] = {m * nk, nk, 1}, vs[3] = {d, vld, 1}, os[3] = {d, out_ld, 1};
            bmm *mm2 = get_bmm(dt, hd, m, d, nk, ps, vs, os);
            if (!mm2) FAIL("oneDNN attention output matmul %ldx%ldx%ld unavailable", m, d, nk);
            float *Ot = out + ((size_t)b * nq + i0) * out_ld;
            TRY(run_bmm(mm2, probs, Vb, Ot), "attention output");
        }
    }
    return 0;
fail:
    return -1;
}

int dd_attention(int batch, long nq, long nk, int heads, int head_dim, const float *q, long q_ld, const float *k,
                 long k_ld, const float *v, long v_ld, float *out, long out_ld, float scale, int causal, dd_dtype dtype,
                 char *err, int errlen) {
    scratch_enter();
    int rc = attention(batch, nq, nk, heads, head_dim, q, q_ld, k, k_ld, v, v_ld, out, out_ld, scale, causal, dtype, err, errlen);
    scratch_leave();
    return rc;
}
