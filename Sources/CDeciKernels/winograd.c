// Winograd convolutions: batched oneDNN GEMMs between vectorised tile transforms. F(4x4, 3x3) in
// float32 (and emulated bf16), F(2x2, 3x3) with bf16 GEMMs where oneDNN has native bf16.
#include "dnnl_internal.h"
#include "ddkernels_testing.h"

#include <stdlib.h>
#include <string.h>

// Why: 3x3 convolutions are ~90% of a VAE decode and ~45% of a UNet step, and oneDNN has no
// float32 Winograd kernel below AVX-512. F(4x4, 3x3) computes a 4x4 output tile from a 6x6 input
// tile with 36 multiplies per channel pair where direct convolution needs 144: the work becomes 36
// batched GEMMs [tiles x cin] x [cin x cout] (oneDNN matmul) between two cheap tile transforms
// (kernels_winograd.h). Measured 2.5-3.5x faster than oneDNN's direct kernels at 32-512 px here.
// The price: transformed weights take 4x the memory of the direct ones (36 vs 9 values per
// filter), and rounding grows a few times (tested against direct convolution and PyTorch).
// By default a large call rebuilds the transformed weights from the direct ones into scratch
// (measured as fast as keeping them: the build is small next to the GEMMs). A layer set to keep
// them switches on its first large call: they replace the direct weights and serve every later
// call whatever its size. DECI_WINOGRAD=0 turns the automatic choice off, DECI_WINOGRAD_MIN_TILES
// sets its tile count, DECI_WINOGRAD_KEEP=0/1 overrides every layer's keep setting.
//
// Native bf16 runs F(2x2, 3x3) instead: 16 GEMMs of bf16 operands (float32 accumulation) between
// float32 transforms, 2.25x fewer multiplies than direct convolution. Not F(4x4): rounding its
// transformed tiles to bf16 (their entries reach 100x the input's through B^T's 4s and 5s, and
// A^T's 8s bring them back) gives ~10x the error of a direct bf16 convolution, F(2x2)'s 0, +-1,
// +-1/2 transforms 1.7x (scale-relative RMS, random data: 2.5e-2 and 3.9e-3 vs 2.3e-3).
// DECI_WINOGRAD_BF16=0 keeps native bf16 direct.
#define WINO_SCRATCH (16L << 20)  // transformed input + output per chunk of tiles: stays in L3

static int g_wino_enabled = -1;
static long g_wino_min_tiles = 128;
static int g_wino_keep = -1;  // DECI_WINOGRAD_KEEP=0/1 overrides every layer's choice
static int g_wino_bf16 = 1;   // DECI_WINOGRAD_BF16=0: native bf16 stays direct
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
    const char *b = getenv("DECI_WINOGRAD_BF16");
    g_wino_bf16 = !(b && strcmp(b, "0") == 0);
}

int dd_winograd_bf16(void) {
    wino_settings();
    return g_wino_bf16 && dd_bf16_native();
}

// The layer's variant: F(2x2) with bf16 operands when bf16 is native, else F(4x4) in float32.
static int wino_f2(const dd_conv *c) { return c->dt == DD_BF16 && !dd_emulated(c->dt); }
static int wino_tile(const dd_conv *c) { return wino_f2(c) ? 2 : 4; }
static long wino_points(const dd_conv *c) { return wino_f2(c) ? 16 : 36; }  // GEMMs per call
static long wino_in_bytes(const dd_conv *c) { return wino_f2(c) ? 2 : 4; }  // per transformed input value

static void wino_gemm_free(wino_gemm *m) {
    if (m->prim) dnnl_primitive_destroy(m->prim);
    MD_FREE(m->src, m->wei, m->dst);
    memset(m, 0, sizeof *m);
}

void dd_wino_free(wino *W) {
    for (int i = 0; i < W->ngemm; i++) {
        wino_gemm_free(W->gemm[i]);
        free(W->gemm[i]);
    }
    free(W->gemm);
    free(W->u);
    memset(W, 0, sizeof *W);
}

static long tiles_of(int n, int h, int w, int m) { return (long)n * ((h + m - 1) / m) * ((w + m - 1) / m); }
static long wino_tiles(const dd_conv *c, int n, int h, int w) { return tiles_of(n, h, w, wino_tile(c)); }

int dd_wino_applies(const dd_conv *c, int n, int h, int w) {
    wino_settings();
    if (c->W.state > 0) return 1;  // the direct weights are gone
    if (c->algorithm == DD_CONV_DIRECT || c->W.state < 0) return 0;
    // Emulated bf16 multiplies in float32, so it gains what float32 gains; native bf16 runs F(2x2).
    int geometry = (c->dt == DD_F32 || dd_emulated(c->dt) || g_wino_bf16) && c->kh == 3 && c->kw == 3 && c->stride == 1 && c->ph == 1 && c->pw == 1 && c->pb == 1 &&
                   c->pr == 1 && c->cin % 16 == 0 && c->cout % 16 == 0;
    if (c->algorithm == DD_CONV_WINOGRAD || g_wino_forced) return geometry;
    // The size rule counts 4x4 output tiles for either variant (the same image area).
    return geometry && g_wino_enabled && c->cin >= 64 && c->cout >= 64 && tiles_of(n, h, w, 4) >= g_wino_min_tiles;
}

// The layer's direct weights in hwio layout (float32, in the call's scratch), the source of its
// transformed ones; NULL on failure (caller holds the lock).
static float *wino_hwio(dd_conv *c) {
    dnnl_dims_t wd = {c->cout, c->cin, 3, 3};
    md_t hwio = md_tag(4, wd, dnnl_f32, dnnl_hwio);
    float *g = dd_scratch(SCRATCH_HWIO, (size_t)9 * c->cin * c->cout * sizeof(float));
    void *from = g ? dd_weights_data(&c->L.w[0]) : NULL;
    int ok = hwio && from && dd_reorder(c->L.w[0].md, from, hwio, g) == dnnl_success;
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

static long wino_block_channels(const dd_conv *c) {
    long cin = c->cin, cout = c->cout;
    long limit = g_wino_u_block > 0 ? g_wino_u_block : WINO_U_BLOCK, per_channel = wino_points(c) * cin * wino_in_bytes(c);
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
    long k = wino_points(c);
    dnnl_data_type_t dt = wino_f2(c) ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t sd = {k, tc, c->cin}, wd = {k, c->cin, nc}, dd = {k, tc, nc};
    m->src = md_tag(3, sd, dt, dnnl_abc);
    m->wei = md_tag(3, wd, dt, dnnl_abc);
    m->dst = md_tag(3, dd, dnnl_f32, dnnl_abc);
    dnnl_primitive_desc_t pd = NULL;
    int ok = m->src && m->wei && m->dst && matmul_pd_create(&pd, dd_engine, m->src, m->wei, NULL, m->dst, NULL) == dnnl_success &&
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

int dd_wino_forward(dd_conv *c, int n, int h, int w, const float *src, int up, float *dst, const float *residual,
                        dd_activation act, char *err, int errlen) {
    long tiles = wino_tiles(c, n, h, w), cout = c->cout, K = wino_points(c), vb = wino_in_bytes(c);
    int f2 = wino_f2(c);
    pthread_mutex_lock(&c->L.lock);
    // Compact bf16 weights would lose their point next to 4x larger kept transformed ones.
    int keep = g_wino_keep >= 0 ? g_wino_keep : c->wino_keep;
    int transient = c->W.state == 0 && (!keep || (c->L.nw > 0 && c->L.w[0].compact));
    long cb = transient ? wino_block_channels(c) : cout, last = cout - (cout - 1) / cb * cb;
    long per_tile = K * (c->cin * vb + cb * (long)sizeof(float));
    long cap = WINO_SCRATCH / per_tile < 32 ? 32 : WINO_SCRATCH / per_tile;
    if (g_wino_chunk > 0) cap = g_wino_chunk;
    long chunks = (tiles + cap - 1) / cap, tc = (tiles + chunks - 1) / chunks;
    wino_gemm *m = c->W.state >= 0 ? wino_gemm_for(c, tc, cb) : NULL, *m_last = m;
    if (m && last != cb) m_last = wino_gemm_for(c, tc, last);
    if (!m_last) m = NULL;
    if (!m && c->W.state == 0) c->W.state = -1;
    float *g = NULL;  // transient: hwio weights, transformed block by block below
    if (m && c->W.state == 0 && !transient) {  // switch for good
        size_t ub = (size_t)K * c->cin * cout * vb;
        void *built = dd_alloc_large(ub);
        float *hwio = built ? wino_hwio(c) : NULL;
        if (hwio) {
            if (f2) dd_wino2_weights(hwio, cout, built, c->cin, cout);
            else dd_wino_weights(hwio, cout, built, c->cin, cout);
            c->W.u = built;
            c->W.state = 1;
            if (c->direct_busy == 0) dd_drop_direct_weights(&c->L);  // else kept: another thread runs them
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
    void *vbuf = dd_scratch(SCRATCH_WINO_V, (size_t)K * tc * c->cin * vb);
    float *mbuf = dd_scratch(SCRATCH_WINO_M, (size_t)K * tc * cb * sizeof(float));
    // Emulated bf16 rounds the inputs, as the direct path does, inside the input transform.
    int flags = (up ? DD_WINO_UP : 0) | (dd_emulated(c->dt) ? DD_WINO_BF16 : 0);
    dnnl_status_t st = vbuf && mbuf ? dnnl_success : dnnl_out_of_memory;
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    for (long co = 0; co < cout && st == dnnl_success; co += cb) {
        long nc = cout - co < cb ? cout - co : cb;
        wino_gemm *mm = nc == cb ? m : m_last;
        void *u = c->W.u;
        if (g) {
            if (!(u = dd_scratch(SCRATCH_WINO_U, (size_t)K * c->cin * nc * vb))) {
                st = dnnl_out_of_memory;
                break;
            }
            if (f2) dd_wino2_weights(g + co, cout, u, c->cin, nc);
            else dd_wino_weights(g + co, cout, u, c->cin, nc);
        }
        for (long t0 = 0; t0 < tiles && st == dnnl_success; t0 += tc) {
            if (co == 0 || chunks > 1) {
                if (f2) dd_wino2_input(src, flags, vbuf, n, h, w, c->cin, t0, tc);
                else dd_wino_input(src, flags, vbuf, n, h, w, c->cin, t0, tc);
            }
            cmd_t mds[3] = {mm->src, mm->wei, mm->dst};
            void *ptrs[3] = {vbuf, u, mbuf};
            st = dd_execute(mm->prim, 3, ids, mds, ptrs);
            if (st == dnnl_success) {
                const float *bias = c->L.bias ? c->L.bias + co : NULL, *res = residual ? residual + co : NULL;
                if (f2) dd_wino2_output(mbuf, dst + co, bias, res, act, n, h, w, nc, cout, t0, tc);
                else dd_wino_output(mbuf, dst + co, bias, res, act, n, h, w, nc, cout, t0, tc);
            }
        }
    }
    if (st != dnnl_success) {
        if (err && errlen > 0) snprintf(err, errlen, "oneDNN Winograd GEMM failed (status %d)", (int)st);
        return -1;
    }
    return 0;
}
