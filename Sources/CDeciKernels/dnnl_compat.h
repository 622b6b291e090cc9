// oneDNN 2.x / 3.x compatibility, for the shim's oneDNN files: the calls whose form differs between
// the two versions, so that every other line reads the same against both.
#pragma once
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>

// 3.x made memory descriptors opaque handles and replaced op descriptors with direct primitive
// descriptor constructors. Here `md_t` is a pointer in both: an owned handle in 3.x, a malloc'd
// value struct in 2.x, so every call that takes a descriptor reads the same in both versions.
#if DNNL_VERSION_MAJOR >= 3
#define DD_DNNL3 1
typedef dnnl_memory_desc_t md_t;
typedef const_dnnl_memory_desc_t cmd_t;
static inline md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    md_t m = NULL;
    return dnnl_memory_desc_create_with_tag(&m, nd, d, dt, tag) == dnnl_success ? m : NULL;
}
static inline md_t md_strides(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, const dnnl_dims_t st) {
    md_t m = NULL;
    return dnnl_memory_desc_create_with_strides(&m, nd, d, dt, st) == dnnl_success ? m : NULL;
}
static inline md_t md_clone(cmd_t q) {
    md_t m = NULL;
    return q && dnnl_memory_desc_clone(&m, q) == dnnl_success ? m : NULL;
}
static inline void md_free(md_t m) {
    if (m) dnnl_memory_desc_destroy(m);
}
#else
#define DD_DNNL3 0
typedef dnnl_memory_desc_t *md_t;
typedef const dnnl_memory_desc_t *cmd_t;
static inline md_t md_tag(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    md_t m = malloc(sizeof *m);
    if (m && dnnl_memory_desc_init_by_tag(m, nd, d, dt, tag) != dnnl_success) { free(m); m = NULL; }
    return m;
}
static inline md_t md_strides(int nd, const dnnl_dims_t d, dnnl_data_type_t dt, const dnnl_dims_t st) {
    md_t m = malloc(sizeof *m);
    if (m && dnnl_memory_desc_init_by_strides(m, nd, d, dt, st) != dnnl_success) { free(m); m = NULL; }
    return m;
}
static inline md_t md_clone(cmd_t q) {
    md_t m = q ? malloc(sizeof *m) : NULL;
    if (m) *m = *q;
    return m;
}
static inline void md_free(md_t m) { free(m); }
#endif

static inline md_t query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) { return md_clone(dnnl_primitive_desc_query_md(pd, what, 0)); }

static inline dnnl_status_t conv_pd_create(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, cmd_t src, cmd_t wei, cmd_t bias, cmd_t dst,
                                    const dnnl_dims_t strides, const dnnl_dims_t pad_l, const dnnl_dims_t pad_r,
                                    const_dnnl_primitive_attr_t attr) {
#if DD_DNNL3
    return dnnl_convolution_forward_primitive_desc_create(pd, eng, dnnl_forward_inference, dnnl_convolution_direct, src, wei,
                                                          bias, dst, strides, NULL, pad_l, pad_r, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, src, wei, bias,
                                                          dst, strides, pad_l, pad_r);
    return st == dnnl_success ? dnnl_primitive_desc_create(pd, &cd, attr, eng, NULL) : st;
#endif
}

static inline dnnl_status_t matmul_pd_create(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, cmd_t src, cmd_t wei, cmd_t bias, cmd_t dst,
                                      const_dnnl_primitive_attr_t attr) {
#if DD_DNNL3
    return dnnl_matmul_primitive_desc_create(pd, eng, src, wei, bias, dst, attr);
#else
    dnnl_matmul_desc_t md;
    dnnl_status_t st = dnnl_matmul_desc_init(&md, src, wei, bias, dst);
    return st == dnnl_success ? dnnl_primitive_desc_create(pd, &md, attr, eng, NULL) : st;
#endif
}

static inline int append_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg, float alpha, float beta) {
#if DD_DNNL3
    return dnnl_post_ops_append_eltwise(po, alg, alpha, beta) != dnnl_success;
#else
    return dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta) != dnnl_success;
#endif
}

static inline int append_sum(dnnl_post_ops_t po) {
#if DD_DNNL3
    return dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef) != dnnl_success;
#else
    return dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success;
#endif
}

// Frees several descriptors (any may be NULL), in order: MD_FREE(src, wei, dst).
static inline void md_free_n(const md_t *m, int n) {
    for (int i = 0; i < n; i++) md_free(m[i]);
}
#define MD_FREE(...) md_free_n((md_t[]){__VA_ARGS__}, (int)(sizeof((md_t[]){__VA_ARGS__}) / sizeof(md_t)))
