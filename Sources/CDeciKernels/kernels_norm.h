// Normalisation kernel bodies (softmax, LayerNorm, GroupNorm), compiled once per instruction set
// through kernels_body.h.

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
