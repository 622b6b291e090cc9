// Element-wise and layout kernel bodies (activations, add, GEGLU, upsampling, concat, transposes),
// compiled once per instruction set through kernels_body.h.

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
