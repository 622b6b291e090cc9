// Linear layers on oneDNN matmul: dst = act(src W^T + bias) + residual, a primitive per row count
// (and fused activation / residual) over the layer's packed weights.
#include "dnnl_internal.h"

#include <stdlib.h>
#include <string.h>

struct dd_linear {
    int in, out;
    dd_dtype dt;
    layer L;
};

static dnnl_status_t linear_pd(const dd_linear *l, long m, long ld, dd_activation act, int residual, int has_bias,
                               dnnl_primitive_desc_t *pd) {
    dnnl_dims_t sd = {m, l->in}, ss = {ld, 1}, wd = {l->in, l->out}, dd = {m, l->out}, bd = {1, l->out};
    md_t src = md_strides(2, sd, dd_dt_of(l->dt), ss), wei = md_tag(2, wd, dd_dt_of(l->dt), dnnl_format_tag_any),
         dst = md_tag(2, dd, dnnl_f32, dnnl_ab), bias = md_tag(2, bd, dnnl_f32, dnnl_ab);
    dnnl_primitive_attr_t attr = dd_make_attr(act, residual);
    dnnl_status_t st = dnnl_out_of_memory;
    if (src && wei && dst && bias && attr) st = matmul_pd_create(pd, dd_engine, src, wei, has_bias ? bias : NULL, dst, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    MD_FREE(src, wei, dst, bias);
    return st;
}

void dd_linear_destroy(dd_linear *l) {
    if (!l) return;
    dd_layer_free(&l->L);
    free(l);
}

dd_linear *dd_linear_create(int in_features, int out_features, dd_dtype dtype, const float *weight, const float *bias,
                            char *err, int errlen) {
    dd_linear *l = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dd_ensure_engine(err, errlen)) return NULL;
    if (in_features <= 0 || out_features <= 0) FAIL("invalid linear shape %d -> %d", in_features, out_features);
    l = calloc(1, sizeof *l);
    if (!l) FAIL("out of memory");
    l->in = in_features;
    l->out = out_features;
    l->dt = dtype;
    dnnl_status_t st = linear_pd(l, 256, in_features, DD_ACT_NONE, 0, bias != NULL, &pd);
    dnnl_dims_t wd = {in_features, out_features}, ws = {1, in_features};
    if (dd_layer_create(&l->L, st, pd, md_strides(2, wd, dnnl_f32, ws), weight, dtype, bias, out_features, "linear", err, errlen))
        goto fail;
    if (bias) {  // matmul wants a 2-D bias
        dnnl_dims_t bd = {1, out_features};
        md_free(l->L.bias_md);
        if (!(l->L.bias_md = md_tag(2, bd, dnnl_f32, dnnl_ab))) FAIL("out of memory");
    }
    return l;
fail:
    dd_linear_destroy(l);
    return NULL;
}

static int linear_forward(dd_linear *l, long m, const float *src, long src_ld, float *dst, const float *residual,
                          dd_activation act, char *err, int errlen) {
    void *rounded = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (m <= 0) return 0;
    long ld = l->dt == DD_BF16 ? l->in : src_ld;  // bf16 input is repacked densely
    long key[4] = {m, ld, (long)act * 2 + (residual != NULL), 0};
    pthread_mutex_lock(&l->L.lock);
    variant *v = dd_find_variant(&l->L, key);
    if (!v) {
        dnnl_status_t st = linear_pd(l, m, ld, act, residual != NULL, l->L.bias != NULL, &pd);
        if (st == dnnl_success) v = dd_add_variant(&l->L, key, pd);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    pthread_mutex_unlock(&l->L.lock);
    if (!v) FAIL("oneDNN matmul [%ld, %d] x [%d, %d]: no implementation", m, l->in, l->in, l->out);
    if (residual && residual != dst) memcpy(dst, residual, (size_t)m * l->out * sizeof(float));
    rounded = dd_maybe_bf16(SCRATCH_IN0, l->dt, src, src_ld, m, l->in);
    if (l->dt == DD_BF16 && !rounded) FAIL("out of memory");
    {
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        void *wei = dd_weights_data(&l->L.w[v->w]);
        if (!wei) FAIL("out of memory");
        cmd_t mds[4] = {v->src_md, l->L.w[v->w].md, v->dst_md, l->L.bias_md};
        void *ptrs[4] = {rounded ? rounded : (void *)src, wei, dst, l->L.bias};
        TRY(dd_execute(v->prim, l->L.bias ? 4 : 3, ids, mds, ptrs), "matmul");
    }
    return 0;
fail:
    return -1;
}

int dd_linear_forward(dd_linear *l, long m, const float *src, long src_ld, float *dst, const float *residual,
                      dd_activation act, char *err, int errlen) {
    if (dd_testing_kernel_fails(err, errlen)) return -1;
    dd_scratch_enter();
    int rc = linear_forward(l, m, src, src_ld, dst, residual, act, err, errlen);
    dd_scratch_leave();
    return rc;
}

int dd_linear_read_weights(dd_linear *l, float *weight, char *err, int errlen) {
    if (dd_layer_read_weights(&l->L, weight)) FAIL("reading linear %d->%d weights failed", l->in, l->out);
    return 0;
fail:
    return -1;
}

int dd_linear_write_weights(dd_linear *l, const float *weight, char *err, int errlen) {
    if (dd_layer_write_weights(&l->L, weight, l->dt)) FAIL("rewriting linear %d->%d weights failed", l->in, l->out);
    return 0;
fail:
    return -1;
}
