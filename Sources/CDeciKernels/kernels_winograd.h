// Winograd F(4x4, 3x3) tile and weight transform bodies, compiled once per instruction set
// through kernels_body.h; winograd.c runs the GEMMs between them.

// ---- Winograd F(4x4, 3x3) tile transforms -------------------------------------------------------
// A 3x3, stride-1, pad-1 convolution computed as 36 independent GEMMs over 6x6 input tiles (see
// winograd.c): B^T d B per input tile, A^T m A per output tile. Both work on 16 channels at a time
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

// ---- Winograd F(2x2, 3x3) with bf16 tiles -------------------------------------------------------
// The native-bf16 variant (see winograd.c for why F(2x2) and not F(4x4) there): 4x4 input tiles,
// 16 GEMMs, transforms in float32 and only the GEMM operands rounded to bf16. B^T, G and A^T have
// entries 0, +-1 and +-1/2, so rounding the transformed tiles costs little more than rounding the
// input does for a direct bf16 convolution. Transformed tiles live at buf[(k * tc + t) * C + c]
// for k = 4*i + j in [0, 16); input tiles are bf16 bits, output tiles (the GEMM's) float32.

DD_INLINE void wino2_bt(const v16f d[4], v16f t[4]) {
    t[0] = d[0] - d[2];
    t[1] = d[1] + d[2];
    t[2] = d[2] - d[1];
    t[3] = d[1] - d[3];
}

DD_INLINE void wino2_at(const v16f m[4], v16f s[2]) {
    s[0] = m[0] + m[1] + m[2];
    s[1] = m[1] - m[2] - m[3];
}

DD_INLINE void vstore_bf16(uint16_t *p, v16f v) {
    v16h h = vto_bf16(v);
    memcpy(p, &h, sizeof h);
}

static void wino2_in_range(void *p, long b, long e) {
    wino_ctx *q = p;
    long C = q->c, plane = q->tc * C;
    uint16_t *buf = (uint16_t *)q->buf;
    for (long t = b; t < e; t++) {
        uint16_t *vt = buf + t * C;
        long g = q->t0 + t;
        if (g >= q->total) {  // padding tile of the last chunk
            for (int k = 0; k < 16; k++) memset(vt + k * plane, 0, C * sizeof(uint16_t));
            continue;
        }
        long img = g / q->tiles_per_image, r = g % q->tiles_per_image;
        long y0 = (r / q->tiles_x) * 2 - 1, x0 = (r % q->tiles_x) * 2 - 1;
        long sw = q->w >> q->up;  // row length of the stored map
        const float *base = q->x + img * (q->h >> q->up) * sw * C;
        int inside[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                inside[i][j] = y0 + i >= 0 && y0 + i < q->h && x0 + j >= 0 && x0 + j < q->w;
        for (long ch = 0; ch < C; ch += 16) {
            v16f rows[4][4];
            for (int j = 0; j < 4; j++) {
                v16f d[4], o[4];
                for (int i = 0; i < 4; i++)
                    d[i] = inside[i][j] ? vload(base + (((y0 + i) >> q->up) * sw + ((x0 + j) >> q->up)) * C + ch) : vsplat(0.0f);
                wino2_bt(d, o);
                for (int i = 0; i < 4; i++) rows[i][j] = o[i];
            }
            for (int i = 0; i < 4; i++) {
                v16f o[4];
                wino2_bt(rows[i], o);
                for (int j = 0; j < 4; j++) vstore_bf16(vt + (i * 4 + j) * plane + ch, o[j]);
            }
        }
    }
}

static void wino2_out_range(void *p, long b, long e) {
    wino_ctx *q = p;
    long C = q->c, plane = q->tc * C;
    for (long t = b; t < e; t++) {
        long g = q->t0 + t;
        if (g >= q->total) continue;
        const float *mt = q->buf + t * C;
        long img = g / q->tiles_per_image, r = g % q->tiles_per_image;
        long y0 = (r / q->tiles_x) * 2, x0 = (r % q->tiles_x) * 2;
        long ny = q->h - y0 < 2 ? q->h - y0 : 2, nx = q->w - x0 < 2 ? q->w - x0 : 2;
        long LD = q->ldy, off = (img * q->h * q->w + y0 * q->w + x0) * LD;
        for (long ch = 0; ch < C; ch += 16) {
            v16f cols[2][4];
            for (int j = 0; j < 4; j++) {
                v16f m[4], s[2];
                for (int i = 0; i < 4; i++) m[i] = vload(mt + (i * 4 + j) * plane + ch);
                wino2_at(m, s);
                for (int i = 0; i < 2; i++) cols[i][j] = s[i];
            }
            v16f bias = q->bias ? vload(q->bias + ch) : vsplat(0.0f);
            for (int i = 0; i < ny; i++) {
                v16f o[2];
                wino2_at(cols[i], o);
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

void KFN(dd_wino2_input)(const float *x, int flags, uint16_t *buf, long n, long h, long w, long c, long t0, long tc) {
    long tx = (w + 1) / 2, ty = (h + 1) / 2;
    wino_ctx q = {x, NULL, NULL, (float *)buf, NULL, h, w, c, c, tx, tx * ty, n * tx * ty, t0, tc, 0, (flags & DD_WINO_UP) != 0, 0};
    dd_parallel_for(tc, 16, wino2_in_range, &q);
}

void KFN(dd_wino2_output)(const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h,
                          long w, long c, long ldy, long t0, long tc) {
    long tx = (w + 1) / 2, ty = (h + 1) / 2;
    wino_ctx q = {NULL, bias, residual, (float *)buf, y, h, w, c, ldy, tx, tx * ty, n * tx * ty, t0, tc, act, 0, 0};
    dd_parallel_for(tc, 16, wino2_out_range, &q);
}

// F(2x2, 3x3) weights as bf16 bits: U[4i+j][ci][co] = (G g G^T)[i][j], G = [1 0 0; 1/2 1/2 1/2;
// 1/2 -1/2 1/2; 0 0 1], from the hwio layout as dd_wino_weights reads it.
static void wino2_w_range(void *p, long b, long e) {
    static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
    wino_w_ctx *q = p;
    long CI = q->cin, CO = q->cout, LDG = q->ldg;
    uint16_t *u = (uint16_t *)q->u;
    for (long ci = b; ci < e; ci++)
        for (long co = 0; co < CO; co += 16) {
            v16f g[9], t[4][3];
            for (int k = 0; k < 9; k++) g[k] = vload(q->g + (k * CI + ci) * LDG + co);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    vstore_bf16(u + ((i * 4 + j) * CI + ci) * CO + co, t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

void KFN(dd_wino2_weights)(const float *hwio, long ldg, uint16_t *u, long cin, long cout) {
    wino_w_ctx q = {hwio, (float *)u, cin, cout, ldg};
    dd_parallel_for(cin, 4, wino2_w_range, &q);
}
