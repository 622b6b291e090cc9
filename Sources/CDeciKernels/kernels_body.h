// Kernel bodies, compiled once per instruction set (see kernels_*.c); KFN() names each copy.
// Element-wise, normalisation and layout kernels: vectorised 16 floats at a time (one AVX-512
// register; the baseline clone splits it), multi-threaded over rows on the shared pool.
#include "ddkernels.h"
#include "internal.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>

#define GRAIN 16384  // elements per task below which threading costs more than it saves

// ---- activations -------------------------------------------------------------------------------
typedef struct { float *x; dd_activation act; } act_ctx;

static void act_range(void *p, long b, long e) {
    act_ctx *c = p;
    long i = b;
    for (; i + 16 <= e; i += 16) vstore(c->x + i, vact(vload(c->x + i), c->act));
    for (; i < e; i++) c->x[i] = vact(vsplat(c->x[i]), c->act)[0];
}

void KFN(dd_activation_inplace)(float *x, long count, dd_activation act) {
    if (act == DD_ACT_NONE) return;
    act_ctx c = {x, act};
    dd_parallel_for(count, GRAIN * 4, act_range, &c);
}

// ---- add ----------------------------------------------------------------------------------------
typedef struct { const float *x, *b; float *y; long bias_c; } add_ctx;

static void add_range(void *p, long b, long e) {
    add_ctx *c = p;
    if (c->bias_c > 0) {
        long C = c->bias_c;
        for (long r = b; r < e; r++) {
            const float *x = c->x + r * C;
            float *y = c->y + r * C;
            long i = 0;
            for (; i + 16 <= C; i += 16) vstore(y + i, vload(x + i) + vload(c->b + i));
            for (; i < C; i++) y[i] = x[i] + c->b[i];
        }
        return;
    }
    long i = b;
    for (; i + 16 <= e; i += 16) vstore(c->y + i, vload(c->x + i) + vload(c->b + i));
    for (; i < e; i++) c->y[i] = c->x[i] + c->b[i];
}

void KFN(dd_add)(const float *x, const float *b, float *y, long count, long bias_c) {
    add_ctx c = {x, b, y, bias_c};
    if (bias_c > 0) dd_parallel_for(count / bias_c, 1 + GRAIN * 4 / bias_c, add_range, &c);
    else dd_parallel_for(count, GRAIN * 4, add_range, &c);
}

// ---- GEGLU --------------------------------------------------------------------------------------
typedef struct { const float *x; float *y; long f; } geglu_ctx;

static void geglu_range(void *p, long b, long e) {
    geglu_ctx *c = p;
    long f = c->f;
    for (long r = b; r < e; r++) {
        const float *a = c->x + r * 2 * f, *g = a + f;
        float *y = c->y + r * f;
        long i = 0;
        for (; i + 16 <= f; i += 16) vstore(y + i, vload(a + i) * vgelu_erf(vload(g + i)));
        for (; i < f; i++) y[i] = a[i] * vgelu_erf(vsplat(g[i]))[0];
    }
}

void KFN(dd_geglu)(const float *x, float *y, long rows, long f) {
    geglu_ctx c = {x, y, f};
    dd_parallel_for(rows, 1 + GRAIN / f, geglu_range, &c);
}

// ---- layout -------------------------------------------------------------------------------------
typedef struct { const float *x; float *y; long n, h, w, c; } up_ctx;

static void upsample_range(void *p, long b, long e) {
    up_ctx *u = p;
    long W = u->w, C = u->c;
    for (long r = b; r < e; r++) {  // r = source row (n*h + i)
        const float *src = u->x + r * W * C;
        float *d0 = u->y + (2 * r) * (2 * W) * C;
        float *d1 = d0 + 2 * W * C;
        for (long j = 0; j < W; j++) {
            memcpy(d0 + (2 * j) * C, src + j * C, C * sizeof(float));
            memcpy(d0 + (2 * j + 1) * C, src + j * C, C * sizeof(float));
        }
        memcpy(d1, d0, 2 * W * C * sizeof(float));
    }
}

void KFN(dd_upsample_nearest2x)(const float *x, float *y, long n, long h, long w, long c) {
    up_ctx u = {x, y, n, h, w, c};
    dd_parallel_for(n * h, 1 + GRAIN / (w * c), upsample_range, &u);
}

typedef struct { const float *a, *b; float *y; long ca, cb; } cat_ctx;

static void concat_range(void *p, long b, long e) {
    cat_ctx *c = p;
    long cy = c->ca + c->cb;
    for (long r = b; r < e; r++) {
        memcpy(c->y + r * cy, c->a + r * c->ca, c->ca * sizeof(float));
        memcpy(c->y + r * cy + c->ca, c->b + r * c->cb, c->cb * sizeof(float));
    }
}

void KFN(dd_concat_channels)(const float *a, long ca, const float *b, long cb, float *y, long rows) {
    cat_ctx c = {a, b, y, ca, cb};
    dd_parallel_for(rows, 1 + GRAIN / (ca + cb), concat_range, &c);
}

typedef struct { const float *x; float *y; long rows_in, cols_in; } tr_ctx;

// Transposes each batch's [rows_in, cols_in] matrix; parallel over (batch, row) of the output.
static void transpose_range(void *p, long b, long e) {
    tr_ctx *t = p;
    long R = t->rows_in, C = t->cols_in;
    for (long o = b; o < e; o++) {
        long n = o / C, j = o % C;
        const float *src = t->x + n * R * C + j;
        float *dst = t->y + n * R * C + j * R;
        for (long i = 0; i < R; i++) dst[i] = src[i * C];
    }
}

void KFN(dd_nchw_to_nhwc)(const float *x, float *y, long n, long c, long hw) {
    tr_ctx t = {x, y, c, hw};
    dd_parallel_for(n * hw, 1 + GRAIN / c, transpose_range, &t);
}

void KFN(dd_nhwc_to_nchw)(const float *x, float *y, long n, long hw, long c) {
    tr_ctx t = {x, y, hw, c};
    dd_parallel_for(n * c, 1 + GRAIN / hw, transpose_range, &t);
}

// ---- bf16 ---------------------------------------------------------------------------------------
typedef struct { const float *x; uint16_t *y; const uint16_t *hx; float *fy; long ldx, ldy, c; } cvt_ctx;

static void to_bf16_rows(void *p, long b, long e) {
    cvt_ctx *t = p;
    for (long r = b; r < e; r++) {
        const float *x = t->x + r * t->ldx;
        uint16_t *y = t->y + r * t->ldy;
        long i = 0;
        for (; i + 16 <= t->c; i += 16) {
            v16h h = vto_bf16(vload(x + i));
            memcpy(y + i, &h, sizeof h);
        }
        for (; i < t->c; i++) y[i] = sto_bf16(x[i]);
    }
}

static void round_rows_bf16(void *p, long b, long e) {
    cvt_ctx *t = p;
    for (long r = b; r < e; r++) {
        const float *x = t->x + r * t->ldx;
        float *y = t->fy + r * t->ldy;
        long i = 0;
        for (; i + 16 <= t->c; i += 16) vstore(y + i, vfrom_bf16(vto_bf16(vload(x + i))));
        for (; i < t->c; i++) y[i] = vfrom_bf16(vto_bf16(vsplat(x[i])))[0];
    }
}

void KFN(dd_round_rows_bf16)(const float *x, long ldx, float *y, long ldy, long rows, long c) {
    cvt_ctx t = {.x = x, .fy = y, .ldx = ldx, .ldy = ldy, .c = c};
    dd_parallel_for(rows, 1 + GRAIN * 4 / c, round_rows_bf16, &t);
}

void KFN(dd_convert_rows_bf16)(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c) {
    cvt_ctx t = {.x = x, .y = y, .ldx = ldx, .ldy = ldy, .c = c};
    dd_parallel_for(rows, 1 + GRAIN * 4 / c, to_bf16_rows, &t);
}

void KFN(dd_f32_to_bf16)(const float *x, uint16_t *y, long count) {
    // Treated as rows of 4096 so the threading grain is per row.
    long rows = count / 4096, tail = count % 4096;
    if (rows) KFN(dd_convert_rows_bf16)(x, 4096, y, 4096, rows, 4096);
    if (tail) KFN(dd_convert_rows_bf16)(x + rows * 4096, tail, y + rows * 4096, tail, 1, tail);
}

static void from_bf16_range(void *p, long b, long e) {
    cvt_ctx *t = p;
    long i = b;
    for (; i + 16 <= e; i += 16) {
        v16h h;
        memcpy(&h, t->hx + i, sizeof h);
        vstore(t->fy + i, vfrom_bf16(h));
    }
    for (; i < e; i++) {
        uint32_t u = (uint32_t)t->hx[i] << 16;
        memcpy(t->fy + i, &u, 4);
    }
}

void KFN(dd_bf16_to_f32)(const uint16_t *x, float *y, long count) {
    cvt_ctx t = {.hx = x, .fy = y};
    dd_parallel_for(count, GRAIN * 4, from_bf16_range, &t);
}

// IEEE half -> float (exact). Vectorised through _Float16 vectors: F16C's vcvtph2ps where the
// instruction set has it (the checkpoints' fp16 weights go through here at load).
typedef _Float16 v16hf __attribute__((ext_vector_type(16)));
static inline float half_bits_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, u;
    if (exp == 0x1F) u = sign | 0x7F800000 | mant << 13;  // inf / NaN, payload kept
    else {
        _Float16 x;
        memcpy(&x, &h, 2);
        float f = (float)x;
        memcpy(&u, &f, 4);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void from_f16_range(void *p, long b, long e) {
    cvt_ctx *t = p;
    long i = b;
    for (; i + 16 <= e; i += 16) {
        v16hf h;
        v16h bits;
        memcpy(&h, t->hx + i, sizeof h);
        memcpy(&bits, t->hx + i, sizeof bits);
        vstore(t->fy + i, __builtin_convertvector(h, v16f));
        // The hardware quiets signalling NaNs; PyTorch keeps the payload bit for bit. Rare: fix up.
        v16h nan = (v16h)(((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0));
        if (__builtin_reduce_or(nan))
            for (int k = 0; k < 16; k++) t->fy[i + k] = half_bits_to_float(t->hx[i + k]);
    }
    for (; i < e; i++) t->fy[i] = half_bits_to_float(t->hx[i]);
}

void KFN(dd_f16_to_f32)(const uint16_t *x, float *y, long count) {
    cvt_ctx t = {.hx = x, .fy = y};
    dd_parallel_for(count, GRAIN * 4, from_f16_range, &t);
}

// ---- softmax ------------------------------------------------------------------------------------
typedef struct { const float *x; void *y; long ldx, ldy, c; float scale; int bf16; long causal0, per_head; } sm_ctx;

// With causal0 >= 0, row r only sees columns <= causal0 + r % per_head (its query position); the
// masked columns get probability 0.
static void softmax_range(void *p, long b, long e) {
    sm_ctx *s = p;
    float scale = s->scale;
    float *tmp = NULL;
    if (s->bf16) tmp = malloc(s->c * sizeof(float));
    for (long r = b; r < e; r++) {
        long C = s->c;
        if (s->causal0 >= 0) {
            long lim = s->causal0 + r % s->per_head + 1;
            C = lim < C ? lim : C;
        }
        const float *x = s->x + r * s->ldx;
        float *y = s->bf16 ? tmp : (float *)s->y + r * s->ldy;
        v16f vm = vsplat(-INFINITY);
        long i = 0;
        for (; i + 16 <= C; i += 16) vm = __builtin_elementwise_max(vm, vload(x + i));
        float m = vmax(vm);
        for (; i < C; i++) m = x[i] > m ? x[i] : m;
        float ms = m * scale;
        v16f vs = vsplat(0);
        for (i = 0; i + 16 <= C; i += 16) {
            v16f ex = vexp(vload(x + i) * scale - ms);
            vstore(y + i, ex);
            vs += ex;
        }
        float sum = vsum(vs);
        for (; i < C; i++) {
            y[i] = sexp(x[i] * scale - ms);
            sum += y[i];
        }
        for (i = C; i < s->c; i++) y[i] = 0;
        C = s->c;
        float inv = 1.0f / sum;
        if (s->bf16 == 2) {
            float *yf = (float *)s->y + r * s->ldy;
            for (i = 0; i + 16 <= C; i += 16) vstore(yf + i, vfrom_bf16(vto_bf16(vload(y + i) * inv)));
            for (; i < C; i++) yf[i] = vfrom_bf16(vto_bf16(vsplat(y[i] * inv)))[0];
        } else if (s->bf16) {
            uint16_t *yh = (uint16_t *)s->y + r * s->ldy;
            for (i = 0; i + 16 <= C; i += 16) {
                v16h h = vto_bf16(vload(y + i) * inv);
                memcpy(yh + i, &h, sizeof h);
            }
            for (; i < C; i++) yh[i] = sto_bf16(y[i] * inv);
        } else {
            for (i = 0; i + 16 <= C; i += 16) vstore(y + i, vload(y + i) * inv);
            for (; i < C; i++) y[i] *= inv;
        }
    }
    free(tmp);
}

void KFN(dd_softmax_rows)(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale,
                          long causal0, long per_head) {
    sm_ctx s = {x, y, ldx, ldy, c, scale, y_bf16, causal0, per_head > 0 ? per_head : 1};
    dd_parallel_for(rows, 1 + GRAIN / c, softmax_range, &s);
}

void KFN(dd_softmax)(const float *x, float *y, long rows, long c, float scale) {
    KFN(dd_softmax_rows)(x, c, y, c, 0, rows, c, scale, -1, 1);
}

// ---- LayerNorm ----------------------------------------------------------------------------------
typedef struct { const float *x; float *y; long c; float eps; const float *g, *b; } ln_ctx;

static void layernorm_range(void *p, long b, long e) {
    ln_ctx *l = p;
    long C = l->c;
    for (long r = b; r < e; r++) {
        const float *x = l->x + r * C;
        float *y = l->y + r * C;
        v16f vs = vsplat(0);
        long i = 0;
        for (; i + 16 <= C; i += 16) vs += vload(x + i);
        float s = vsum(vs);
        for (; i < C; i++) s += x[i];
        float mean = s / C;
        v16f vq = vsplat(0);
        for (i = 0; i + 16 <= C; i += 16) {
            v16f d = vload(x + i) - mean;
            vq += d * d;
        }
        float q = vsum(vq);
        for (; i < C; i++) q += (x[i] - mean) * (x[i] - mean);
        float rstd = 1.0f / sqrtf(q / C + l->eps);
        for (i = 0; i + 16 <= C; i += 16) {
            v16f v = (vload(x + i) - mean) * rstd;
            if (l->g) v *= vload(l->g + i);
            if (l->b) v += vload(l->b + i);
            vstore(y + i, v);
        }
        for (; i < C; i++) {
            float v = (x[i] - mean) * rstd;
            if (l->g) v *= l->g[i];
            if (l->b) v += l->b[i];
            y[i] = v;
        }
    }
}

void KFN(dd_layer_norm)(const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta) {
    ln_ctx l = {x, y, c, eps, gamma, beta};
    dd_parallel_for(rows, 1 + GRAIN / c, layernorm_range, &l);
}

// ---- GroupNorm ----------------------------------------------------------------------------------
// Pass 1 gathers per-channel sums of (x - shift) over pixel chunks (shift = the first pixel, which
// keeps the one-pass variance free of cancellation); groups combine channel statistics in double
// with the parallel-variance formula. Pass 2 applies one fused scale/offset per (n, c) and SiLU.

typedef struct {
    const float *x;
    float *y;
    long n, hw, c, chunks;
    double *acc;  // [n * chunks][2][c]
    const float *a, *o;  // per (n, c) scale and offset for pass 2
    int silu;
} gn_ctx;

static void gn_stats_range(void *p, long b, long e) {
    gn_ctx *g = p;
    long C = g->c, HW = g->hw;
    float *s1 = malloc(2 * C * sizeof(float)), *s2 = s1 + C;
    for (long t = b; t < e; t++) {
        long n = t / g->chunks, k = t % g->chunks;
        long p0 = HW * k / g->chunks, p1 = HW * (k + 1) / g->chunks;
        const float *base = g->x + n * HW * C;
        const float *shift = base;  // pixel 0 of this image
        double *d1 = g->acc + t * 2 * C, *d2 = d1 + C;
        for (long i = 0; i < C; i++) d1[i] = d2[i] = 0;
        for (long q0 = p0; q0 < p1; q0 += 64) {
            long q1 = q0 + 64 < p1 ? q0 + 64 : p1;
            for (long i = 0; i < C; i++) s1[i] = s2[i] = 0;
            for (long q = q0; q < q1; q++) {
                const float *x = base + q * C;
                long i = 0;
                for (; i + 16 <= C; i += 16) {
                    v16f d = vload(x + i) - vload(shift + i);
                    vstore(s1 + i, vload(s1 + i) + d);
                    vstore(s2 + i, vload(s2 + i) + d * d);
                }
                for (; i < C; i++) {
                    float d = x[i] - shift[i];
                    s1[i] += d;
                    s2[i] += d * d;
                }
            }
            for (long i = 0; i < C; i++) {
                d1[i] += s1[i];
                d2[i] += s2[i];
            }
        }
    }
    free(s1);
}

static void gn_apply_range(void *p, long b, long e) {
    gn_ctx *g = p;
    long C = g->c, HW = g->hw;
    for (long r = b; r < e; r++) {
        long n = r / HW;
        const float *x = g->x + r * C;
        float *y = g->y + r * C;
        const float *a = g->a + n * C, *o = g->o + n * C;
        long i = 0;
        if (g->silu) {
            for (; i + 16 <= C; i += 16) {
                v16f v = vload(x + i) * vload(a + i) + vload(o + i);
                vstore(y + i, v * vsigmoid(v));
            }
            for (; i < C; i++) {
                float v = x[i] * a[i] + o[i];
                y[i] = v * vsigmoid(vsplat(v))[0];
            }
        } else {
            for (; i + 16 <= C; i += 16) vstore(y + i, vload(x + i) * vload(a + i) + vload(o + i));
            for (; i < C; i++) y[i] = x[i] * a[i] + o[i];
        }
    }
}

void KFN(dd_group_norm)(const float *x, float *y, long n, long hw, long c, long groups, float eps,
                   const float *gamma, const float *beta, const float *pre_bias, int silu) {
    long threads = dd_num_threads();
    long chunks = threads * 2;
    if (chunks > hw) chunks = hw;
    if (chunks < 1) chunks = 1;
    gn_ctx g = {x, y, n, hw, c, chunks, NULL, NULL, NULL, silu};
    g.acc = malloc((size_t)n * chunks * 2 * c * sizeof(double));
    int small = n * hw * c < 8 * GRAIN;  // not worth waking the pool
    dd_parallel_for(n * chunks, small ? n * chunks : 1, gn_stats_range, &g);

    float *a = malloc((size_t)n * c * 2 * sizeof(float)), *o = a + n * c;
    double *cm = malloc((size_t)c * 2 * sizeof(double)), *cq = cm + c;
    long cpg = c / groups;
    for (long b = 0; b < n; b++) {
        const float *shift = x + b * hw * c;
        for (long i = 0; i < c; i++) {
            double s1 = 0, s2 = 0;
            for (long k = 0; k < chunks; k++) {
                const double *d = g.acc + (b * chunks + k) * 2 * c;
                s1 += d[i];
                s2 += d[c + i];
            }
            double mean = shift[i] + s1 / hw;  // channel mean of x
            if (pre_bias) mean += pre_bias[b * c + i];
            cm[i] = mean;
            cq[i] = s2 - s1 * s1 / hw;  // sum of squared deviations about the channel mean
        }
        for (long gi = 0; gi < groups; gi++) {
            double gm = 0;
            for (long i = gi * cpg; i < (gi + 1) * cpg; i++) gm += cm[i];
            gm /= cpg;
            double m2 = 0;
            for (long i = gi * cpg; i < (gi + 1) * cpg; i++) m2 += cq[i] + hw * (cm[i] - gm) * (cm[i] - gm);
            double var = m2 / (double)(hw * cpg);
            if (var < 0) var = 0;
            double rstd = 1.0 / sqrt(var + eps);
            for (long i = gi * cpg; i < (gi + 1) * cpg; i++) {
                double gg = gamma ? gamma[i] : 1.0, bb = beta ? beta[i] : 0.0;
                double pb = pre_bias ? pre_bias[b * c + i] : 0.0;
                a[b * c + i] = (float)(rstd * gg);
                o[b * c + i] = (float)(bb + (pb - gm) * rstd * gg);
            }
        }
    }
    free(cm);
    free(g.acc);
    g.a = a;
    g.o = o;
    dd_parallel_for(n * hw, 1 + GRAIN / c, gn_apply_range, &g);
    free(a);
}

// ---- Winograd F(4x4, 3x3) tile transforms -------------------------------------------------------
// A 3x3, stride-1, pad-1 convolution computed as 36 independent GEMMs over 6x6 input tiles (see
// dnnl.c): B^T d B per input tile, A^T m A per output tile. Both work on 16 channels at a time
// (channel counts are multiples of 16 here). Transformed tiles live at buf[(k * tc + t) * C + c]
// for k = 6*i + j in [0, 36) and t the tile's index within the chunk.

// One 6-point pass of B^T (Lavin & Gray, interpolation points 0, +-1, +-2).
DD_INLINE void wino_bt(const v16f d[6], v16f t[6]) {
    t[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    t[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    t[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    t[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    t[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    t[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// One 6-point pass of A^T.
DD_INLINE void wino_at(const v16f m[6], v16f s[4]) {
    v16f a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    s[0] = m[0] + a + c;
    s[1] = b + 2.0f * d;
    s[2] = a + 4.0f * c;
    s[3] = b + 8.0f * d + m[5];
}

typedef struct {
    const float *x, *bias, *res;
    float *buf, *y;
    long h, w, c, ldy, tiles_x, tiles_per_image, total, t0, tc;  // ldy: channel stride of y and res
    int act, up;  // up: x is the (h/2, w/2) map that nearest 2x upsampling turns into the input
    int round;    // round input values to bf16 as they are read (emulated bf16)
} wino_ctx;

static void wino_in_range(void *p, long b, long e) {
    wino_ctx *q = p;
    long C = q->c, plane = q->tc * C;
    for (long t = b; t < e; t++) {
        float *vt = q->buf + t * C;
        long g = q->t0 + t;
        if (g >= q->total) {  // padding tile of the last chunk
            for (int k = 0; k < 36; k++) memset(vt + k * plane, 0, C * sizeof(float));
            continue;
        }
        long img = g / q->tiles_per_image, r = g % q->tiles_per_image;
        long y0 = (r / q->tiles_x) * 4 - 1, x0 = (r % q->tiles_x) * 4 - 1;
        long sw = q->w >> q->up;  // row length of the stored map
        const float *base = q->x + img * (q->h >> q->up) * sw * C;
        int inside[6][6];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                inside[i][j] = y0 + i >= 0 && y0 + i < q->h && x0 + j >= 0 && x0 + j < q->w;
        for (long ch = 0; ch < C; ch += 16) {
            v16f rows[6][6];
            for (int j = 0; j < 6; j++) {
                v16f d[6], o[6];
                for (int i = 0; i < 6; i++)
                    d[i] = inside[i][j] ? vload(base + (((y0 + i) >> q->up) * sw + ((x0 + j) >> q->up)) * C + ch) : vsplat(0.0f);
                if (q->round)
                    for (int i = 0; i < 6; i++) d[i] = vfrom_bf16(vto_bf16(d[i]));
                wino_bt(d, o);
                for (int i = 0; i < 6; i++) rows[i][j] = o[i];
            }
            for (int i = 0; i < 6; i++) {
                v16f o[6];
                wino_bt(rows[i], o);
                for (int j = 0; j < 6; j++) vstore(vt + (i * 6 + j) * plane + ch, o[j]);
            }
        }
    }
}

static void wino_out_range(void *p, long b, long e) {
    wino_ctx *q = p;
    long C = q->c, plane = q->tc * C;
    for (long t = b; t < e; t++) {
        long g = q->t0 + t;
        if (g >= q->total) continue;
        const float *mt = q->buf + t * C;
        long img = g / q->tiles_per_image, r = g % q->tiles_per_image;
        long y0 = (r / q->tiles_x) * 4, x0 = (r % q->tiles_x) * 4;
        long ny = q->h - y0 < 4 ? q->h - y0 : 4, nx = q->w - x0 < 4 ? q->w - x0 : 4;
        long LD = q->ldy, off = (img * q->h * q->w + y0 * q->w + x0) * LD;
        for (long ch = 0; ch < C; ch += 16) {
            v16f cols[4][6];
            for (int j = 0; j < 6; j++) {
                v16f m[6], s[4];
                for (int i = 0; i < 6; i++) m[i] = vload(mt + (i * 6 + j) * plane + ch);
                wino_at(m, s);
                for (int i = 0; i < 4; i++) cols[i][j] = s[i];
            }
            v16f bias = q->bias ? vload(q->bias + ch) : vsplat(0.0f);
            for (int i = 0; i < ny; i++) {
                v16f o[4];
                wino_at(cols[i], o);
                for (int j = 0; j < nx; j++) {
                    long at = off + (i * q->w + j) * LD + ch;
                    v16f v = vact(o[j] + bias, q->act);
                    if (q->res) v += vload(q->res + at);
                    vstore(q->y + at, v);
                }
            }
        }
    }
}

void KFN(dd_wino_input)(const float *x, int flags, float *buf, long n, long h, long w, long c, long t0, long tc) {
    long tx = (w + 3) / 4, ty = (h + 3) / 4;
    wino_ctx q = {x, NULL, NULL, buf, NULL, h, w, c, c, tx, tx * ty, n * tx * ty, t0, tc, 0, (flags & DD_WINO_UP) != 0,
                  (flags & DD_WINO_BF16) != 0};
    dd_parallel_for(tc, 4, wino_in_range, &q);
}

void KFN(dd_wino_output)(const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h,
                         long w, long c, long ldy, long t0, long tc) {
    long tx = (w + 3) / 4, ty = (h + 3) / 4;
    wino_ctx q = {NULL, bias, residual, (float *)buf, y, h, w, c, ldy, tx, tx * ty, n * tx * ty, t0, tc, act, 0, 0};
    dd_parallel_for(tc, 4, wino_out_range, &q);
}

// Winograd weights: U[6i+j][ci][co] = (G g G^T)[i][j] for each filter g = w[co][ci], read from the
// hwio layout ([3a+b][ci][co]) so that 16 output channels transform at once.
typedef struct { const float *g; float *u; long cin, cout, ldg; } wino_w_ctx;

static void wino_w_range(void *p, long b, long e) {
    static const float G[6][3] = {{1.0f / 4, 0, 0},
                                  {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                  {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                  {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                  {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                  {0, 0, 1}};
    wino_w_ctx *q = p;
    long CI = q->cin, CO = q->cout, LDG = q->ldg;
    for (long ci = b; ci < e; ci++)
        for (long co = 0; co < CO; co += 16) {
            v16f g[9], t[6][3];
            for (int k = 0; k < 9; k++) g[k] = vload(q->g + (k * CI + ci) * LDG + co);
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    vstore(q->u + ((i * 6 + j) * CI + ci) * CO + co, t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

void KFN(dd_wino_weights)(const float *hwio, long ldg, float *u, long cin, long cout) {
    wino_w_ctx q = {hwio, u, cin, cout, ldg};
    dd_parallel_for(cin, 4, wino_w_range, &q);
}
