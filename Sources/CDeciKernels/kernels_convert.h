// Conversion kernel bodies (float32 <-> bfloat16, IEEE half -> float32), compiled once per
// instruction set through kernels_body.h.

// ---- bf16 ---------------------------------------------------------------------------------------
typedef struct { const float *x; uint16_t *y; const uint16_t *hx; float *fy; long ldx, ldy, c; } cvt_ctx;

// Rows of float32 to bfloat16: as bits (y), or as float32 values rounded through bfloat16 (fy).
static void bf16_rows(void *p, long b, long e) {
    cvt_ctx *t = p;
    for (long r = b; r < e; r++) {
        const float *x = t->x + r * t->ldx;
        long i = 0;
        if (t->fy) {
            float *y = t->fy + r * t->ldy;
            for (; i + 16 <= t->c; i += 16) vstore(y + i, vfrom_bf16(vto_bf16(vload(x + i))));
            for (; i < t->c; i++) y[i] = vfrom_bf16(vto_bf16(vsplat(x[i])))[0];
        } else {
            uint16_t *y = t->y + r * t->ldy;
            for (; i + 16 <= t->c; i += 16) {
                v16h h = vto_bf16(vload(x + i));
                memcpy(y + i, &h, sizeof h);
            }
            for (; i < t->c; i++) y[i] = sto_bf16(x[i]);
        }
    }
}

void KFN(dd_round_rows_bf16)(const float *x, long ldx, float *y, long ldy, long rows, long c) {
    cvt_ctx t = {.x = x, .fy = y, .ldx = ldx, .ldy = ldy, .c = c};
    dd_parallel_for(rows, 1 + GRAIN * 4 / c, bf16_rows, &t);
}

void KFN(dd_convert_rows_bf16)(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c) {
    cvt_ctx t = {.x = x, .y = y, .ldx = ldx, .ldy = ldy, .c = c};
    dd_parallel_for(rows, 1 + GRAIN * 4 / c, bf16_rows, &t);
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
