// Convolutions on oneDNN: a primitive per input shape (and fused activation / residual), over the
// layer's packed weights, with reorders at the edges where oneDNN prefers a blocked layout. 3x3
// layers that qualify run Winograd instead (winograd.c).
#include "dnnl_internal.h"

#include <stdlib.h>
#include <string.h>

// Activation layout of convolutions. oneDNN 2.x's AVX2 kernels run ~2.5x faster in its blocked
// layout than in NHWC, so there the shim reorders at each convolution's edges; oneDNN 3.x's brgemm
// convolutions run NHWC directly at least as fast (measured 1.4x faster at 1280 channels, equal
// at 320), so no reorders. DECI_CONV_LAYOUT=nhwc|blocked overrides (for comparison).
static int g_conv_plain_layout = -1;

void dd_conv_output_size(const dd_conv *c, int h, int w, int *oh, int *ow) {
    *oh = (h + c->ph + c->pb - c->kh) / c->stride + 1;
    *ow = (w + c->pw + c->pr - c->kw) / c->stride + 1;
}

static dnnl_status_t conv_pd(const dd_conv *c, int n, int h, int w, dd_activation act, int residual, dnnl_primitive_desc_t *pd) {
    int oh, ow;
    dd_conv_output_size(c, h, w, &oh, &ow);
    dnnl_dims_t sd = {n, c->cin, h, w}, wd = {c->cout, c->cin, c->kh, c->kw}, dd = {n, c->cout, oh, ow}, bd = {c->cout};
    dnnl_format_tag_t layout = g_conv_plain_layout ? dnnl_nhwc : dnnl_format_tag_any;
    md_t src = md_tag(4, sd, dd_dt_of(c->dt), layout), wei = md_tag(4, wd, dd_dt_of(c->dt), dnnl_format_tag_any),
         dst = md_tag(4, dd, dnnl_f32, layout), bias = md_tag(1, bd, dnnl_f32, dnnl_a);
    dnnl_dims_t strides = {c->stride, c->stride}, pad = {c->ph, c->pw};
    // oneDNN wants the right padding that the output size implies (it may be less than requested).
    dnnl_dims_t pad_r;
    pad_r[0] = (oh - 1) * c->stride + c->kh - h - c->ph;
    pad_r[1] = (ow - 1) * c->stride + c->kw - w - c->pw;
    dnnl_primitive_attr_t attr = dd_make_attr(act, residual);
    dnnl_status_t st = dnnl_out_of_memory;
    if (src && wei && dst && bias && attr)
        st = conv_pd_create(pd, dd_engine, src, wei, c->has_bias ? bias : NULL, dst, strides, pad, pad_r, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    MD_FREE(src, wei, dst, bias);
    return st;
}

void dd_conv_destroy(dd_conv *c) {
    if (!c) return;
    dd_layer_free(&c->L);
    dd_wino_free(&c->W);
    free(c);
}

dd_conv *dd_conv_create(int cin, int cout, int kh, int kw, int stride, int pad_t, int pad_l, int pad_b, int pad_r,
                        dd_dtype dtype, const float *weight, const float *bias, char *err, int errlen) {
    dd_conv *c = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dd_ensure_engine(err, errlen)) return NULL;
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
    dnnl_status_t st = conv_pd(c, 2, nominal, nominal, DD_ACT_NONE, 0, &pd);
    dnnl_dims_t wd = {cout, cin, kh, kw};
    if (dd_layer_create(&c->L, st, pd, md_tag(4, wd, dnnl_f32, dnnl_oihw), weight, dtype, bias, cout, "convolution", err, errlen) == 0)
        return c;
fail:
    dd_conv_destroy(c);
    return NULL;
}

// Sets up the edge reorders of a new variant (caller holds the layer lock).
static int conv_edges(dd_conv *c, variant *v, int n, int h, int w, int oh, int ow, int residual) {
    dnnl_dims_t sd = {n, c->cin, h, w}, dd = {n, c->cout, oh, ow};
    v->user_src_md = md_tag(4, sd, dnnl_f32, dnnl_nhwc);
    v->user_dst_md = md_tag(4, dd, dnnl_f32, dnnl_nhwc);
    if (!v->user_src_md || !v->user_dst_md) return -1;
    if (!dnnl_memory_desc_equal(v->src_md, v->user_src_md) && !(v->src_in = dd_make_reorder(v->user_src_md, v->src_md))) return -1;
    if (!dnnl_memory_desc_equal(v->dst_md, v->user_dst_md)) {
        if (!(v->dst_out = dd_make_reorder(v->dst_md, v->user_dst_md))) return -1;
        if (residual && !(v->residual_in = dd_make_reorder(v->user_dst_md, v->dst_md))) return -1;
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
    if (dd_wino_applies(c, n, h, w)) {
        int wrc = dd_wino_forward(c, n, h, w, src, 0, dst, residual, act, err, errlen);
        if (wrc <= 0) return wrc;
    }
    long key[4] = {n, h, w, (long)act * 2 + (residual != NULL)};
    pthread_mutex_lock(&c->L.lock);
    if (c->W.state > 0) {  // another thread switched the layer to Winograd since the check above
        pthread_mutex_unlock(&c->L.lock);
        return dd_wino_forward(c, n, h, w, src, 0, dst, residual, act, err, errlen);
    }
    v = dd_find_variant(&c->L, key);
    if (!v) {
        dnnl_status_t st = conv_pd(c, n, h, w, act, residual != NULL, &pd);
        if (st == dnnl_success) v = dd_add_variant(&c->L, key, pd);
        if (v && conv_edges(c, v, n, h, w, oh, ow, residual != NULL)) {
            dd_variant_destroy(v);
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
    if (dd_emulated(c->dt)) {  // round to bf16 values first, in float32
        rounded = dd_maybe_bf16(SCRATCH_IN0, c->dt, src, c->cin, (long)n * h * w, c->cin);
        if (!rounded) FAIL("out of memory");
        s_in = rounded;
    }
    if (v->src_in) {
        src_bytes = dnnl_memory_desc_get_size(v->src_md);
        if (!(src_buf = dd_alloc(src_bytes))) FAIL("out of memory");
        TRY(dd_run_reorder(v->src_in, v->user_src_md, s_in, v->src_md, src_buf), "convolution input reorder");
        s_in = src_buf;
    }
    void *d_out = dst;
    if (v->dst_out) {
        dst_bytes = dnnl_memory_desc_get_size(v->dst_md);
        if (!(dst_buf = dd_alloc(dst_bytes))) FAIL("out of memory");
        if (residual) TRY(dd_run_reorder(v->residual_in, v->user_dst_md, residual, v->dst_md, dst_buf), "residual reorder");
        d_out = dst_buf;
    } else if (residual && residual != dst) {
        memcpy(dst, residual, out_bytes);
    }
    {
        int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        void *wei = dd_weights_data(&c->L.w[v->w]);
        if (!wei) FAIL("out of memory");
        cmd_t mds[4] = {v->src_md, c->L.w[v->w].md, v->dst_md, c->L.bias_md};
        void *ptrs[4] = {(void *)s_in, wei, d_out, c->L.bias};
        TRY(dd_execute(v->prim, c->L.bias ? 4 : 3, ids, mds, ptrs), "convolution");
    }
    if (v->dst_out) TRY(dd_run_reorder(v->dst_out, v->dst_md, dst_buf, v->user_dst_md, dst), "convolution output reorder");
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
    if (dd_testing_kernel_fails(err, errlen)) return -1;
    dd_scratch_enter();
    int rc = conv_forward(c, n, h, w, src, dst, residual, act, err, errlen);
    dd_scratch_leave();
    return rc;
}

static int conv_forward_upsampled(dd_conv *c, int n, int h, int w, const float *src, float *dst, char *err, int errlen) {
    if (dd_wino_applies(c, n, 2 * h, 2 * w)) {
        int rc = dd_wino_forward(c, n, 2 * h, 2 * w, src, 1, dst, NULL, DD_ACT_NONE, err, errlen);
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
    if (dd_testing_kernel_fails(err, errlen)) return -1;
    dd_scratch_enter();
    int rc = conv_forward_upsampled(c, n, h, w, src, dst, err, errlen);
    dd_scratch_leave();
    return rc;
}

int dd_conv_read_weights(dd_conv *c, float *weight, char *err, int errlen) {
    if (c->wino_keep && c->L.nw == 0) FAIL("conv %d->%d keeps only Winograd weights", c->cin, c->cout);
    if (dd_layer_read_weights(&c->L, weight)) FAIL("reading conv %d->%d weights failed", c->cin, c->cout);
    return 0;
fail:
    return -1;
}

int dd_conv_write_weights(dd_conv *c, const float *weight, char *err, int errlen) {
    if (c->wino_keep) FAIL("conv %d->%d keeps Winograd weights, which a rewrite would leave stale", c->cin, c->cout);
    if (dd_layer_write_weights(&c->L, weight, c->dt)) FAIL("rewriting conv %d->%d weights failed", c->cin, c->cout);
    return 0;
fail:
    return -1;
}
