// Winograd F(4x4, 3x3) convolutions: batched oneDNN GEMMs between vectorised tile transforms.
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

static long wino_tiles(int n, int h, int w) { return (long)n * ((h + 3) / 4) * ((w + 3) / 4); }

int dd_wino_applies(const dd_conv *c, int n, int h, int w) {
    wino_settings();
    if (c->W.state > 0) return 1;  // the direct weights are gone
    if (c->algorithm == DD_CONV_DIRECT || c->W.state < 0) return 0;
    // Native bf16 stays direct: Winograd's transformed tiles need more precision than bf16 holds.
    // Emulated bf16 multiplies in float32, so it gains what float32 gains.
    int geometry = (c->dt == DD_F32 || dd_emulated(c->dt)) && c->kh == 3 && c->kw == 3 && c->stride == 1 && c->ph == 1 && c->pw == 1 && c->pb == 1 &&
                   c->pr == 1 && c->cin % 16 == 0 && c->cout % 16 == 0;
    if (c->algorithm == DD_CONV_WINOGRAD || g_wino_forced) return geometry;
    return geometry && g_wino_enabled && c->cin >= 64 && c->cout >= 64 && wino_tiles(n, h, w) >= g_wino_min_tiles;
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
    float *vbuf = dd_scratch(SCRATCH_WINO_V, (size_t)36 * tc * c->cin * sizeof(float));
    float *mbuf = dd_scratch(SCRATCH_WINO_M, (size_t)36 * tc * cb * sizeof(float));
    // Emulated bf16 rounds the inputs, as the direct path does, inside the input transform.
    int flags = (up ? DD_WINO_UP : 0) | (dd_emulated(c->dt) ? DD_WINO_BF16 : 0);
    dnnl_status_t st = vbuf && mbuf ? dnnl_success : dnnl_out_of_memory;
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    for (long co = 0; co < cout && st == dnnl_success; co += cb) {
        long nc = cout - co < cb ? cout - co : cb;
        wino_gemm *mm = nc == cb ? m : m_last;
        float *u = c->W.u;
        if (g) {
            if (!(u = dd_scratch(SCRATCH_WINO_U, (size_t)36 * c->cin * nc * sizeof(float)))) {
                st = dnnl_out_of_memory;
                break;
            }
            dd_wino_weights(g + co, cout, u, c->cin, nc);
        }
        for (long t0 = 0; t0 < tiles && st == dnnl_success; t0 += tc) {
            if (co == 0 || chunks > 1) dd_wino_input(src, flags, vbuf, n, h, w, c->cin, t0, tc);
            cmd_t mds[3] = {mm->src, mm->wei, mm->dst};
            void *ptrs[3] = {vbuf, u, mbuf};
            st = dd_execute(mm->prim, 3, ids, mds, ptrs);
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
