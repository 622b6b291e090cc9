// Multi-head attention on oneDNN: two batched matmuls per tile of queries around the vectorised
// row softmax (kernels_norm.h).
#include "dnnl_internal.h"
#include "ddkernels_testing.h"

#include <stdlib.h>
#include <string.h>

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
    if (a && b && c && matmul_pd_create(&pd, dd_engine, a, b, NULL, c, NULL) == dnnl_success &&
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
    MD_FREE(a, b, c);
    pthread_mutex_unlock(&g_bmm_lock);
    return r;
}

static dnnl_status_t run_bmm(bmm *b, const void *a, const void *bp, void *c) {
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    cmd_t mds[3] = {b->a, b->b, b->c};
    void *ptrs[3] = {(void *)a, (void *)bp, c};
    return dd_execute(b->prim, 3, ids, mds, ptrs);
}

// Per thread, so that a test forcing it cannot change another test's results.
static _Thread_local long g_attention_tile = 0;
void dd_set_attention_tile(long rows) { g_attention_tile = rows > 0 ? rows : 0; }

static int attention(int batch, long nq, long nk, int heads, int head_dim, const float *q, long q_ld, const float *k,
                     long k_ld, const float *v, long v_ld, float *out, long out_ld, float scale, int causal, dd_dtype dtype,
                     char *err, int errlen) {
    if (dd_ensure_engine(err, errlen)) return -1;
    long d = head_dim, hd = heads, C = hd * d;
    int bf = dtype == DD_BF16;              // round inputs and probabilities to bf16
    int native = bf && dd_bf16_native();       // ... and multiply in bf16
    size_t es = native ? 2 : 4;
    void *qb = NULL, *kb = NULL, *vb = NULL;
    float *S = NULL;
    void *P = NULL;
    const void *Q = q, *K = k, *V = v;
    long qld = q_ld, kld = k_ld, vld = v_ld;
    if (bf) {  // dense rounded copies of all rows: [batch * n, C]
        qb = dd_maybe_bf16(SCRATCH_IN0, dtype, q, q_ld, (long)batch * nq, C);
        kb = dd_maybe_bf16(SCRATCH_IN1, dtype, k, k_ld, (long)batch * nk, C);
        vb = dd_maybe_bf16(SCRATCH_IN2, dtype, v, v_ld, (long)batch * nk, C);
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
    S = dd_scratch(SCRATCH_SCORES, (size_t)hd * tq * nk * 4);
    if (native) P = dd_scratch(SCRATCH_PROBS, (size_t)hd * tq * nk * 2);
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
    if (dd_testing_kernel_fails(err, errlen)) return -1;
    dd_scratch_enter();
    int rc = attention(batch, nq, nk, heads, head_dim, q, q_ld, k, k_ld, v, v_ld, out, out_ld, scale, causal, dtype, err, errlen);
    dd_scratch_leave();
    return rc;
}
