// oneDNN's CPU engine and stream, the calls every primitive goes through (execution, reorders,
// post-op attributes), and the bf16 mode: native bf16 kernels where oneDNN has them, else
// emulation in float32 with the same rounding.
#include "dnnl_internal.h"

#include <stdlib.h>
#include <string.h>

dnnl_engine_t dd_engine;
static dnnl_stream_t g_stream;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_status_t g_init_status = dnnl_success;
static pthread_mutex_t g_exec_lock = PTHREAD_MUTEX_INITIALIZER;

// Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 / AMX). Without them the bf16
// path is emulated: inputs and weights are rounded to bf16 and multiplied in float32, which gives
// the same numbers a bf16-input / f32-accumulate kernel gives, without its speed.
static int g_bf16_native = 0;

static int probe_bf16(void) {
    dnnl_dims_t d = {64, 64};
    md_t a = md_tag(2, d, dnnl_bf16, dnnl_ab), b = md_tag(2, d, dnnl_bf16, dnnl_format_tag_any), c = md_tag(2, d, dnnl_f32, dnnl_ab);
    dnnl_primitive_desc_t pd = NULL;
    int native = 0;
    if (a && b && c && matmul_pd_create(&pd, dd_engine, a, b, NULL, c, NULL) == dnnl_success) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        native = strstr(impl, "ref") == NULL;  // a reference kernel would be far slower than emulation
        dnnl_primitive_desc_destroy(pd);
    }
    MD_FREE(a, b, c);
    return native;
}

static void init_engine(void) {
    g_init_status = dnnl_engine_create(&dd_engine, dnnl_cpu, 0);
    if (g_init_status == dnnl_success) g_init_status = dnnl_stream_create(&g_stream, dd_engine, dnnl_stream_default_flags);
    if (g_init_status == dnnl_success) {
        g_bf16_native = probe_bf16();
        const char *force = getenv("DECI_BF16");
        if (force && strcmp(force, "emulate") == 0) g_bf16_native = 0;
    }
}

int dd_bf16_native(void) {
    pthread_once(&g_once, init_engine);
    return g_bf16_native;
}

int dd_ensure_engine(char *err, int errlen) {
    pthread_once(&g_once, init_engine);
    if (g_init_status != dnnl_success) {
        if (err && errlen > 0) snprintf(err, errlen, "oneDNN CPU engine unavailable (status %d)", (int)g_init_status);
        return -1;
    }
    dd_num_threads();
    return 0;
}

const char *dd_backend_info(void) {
    static char buf[256];
    const dnnl_version_t *v = dnnl_version();
    const char *isa = "baseline";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) isa = "avx512_core_bf16";
    else if (__builtin_cpu_supports("avx512f")) isa = "avx512";
    else if (__builtin_cpu_supports("avx2")) isa = "avx2";
#endif
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s), kernels %s, bf16 %s, %d threads", v->major, v->minor, v->patch, isa,
             dd_kernel_isa_name(), dd_bf16_native() ? "native" : "emulated", dd_num_threads());
    return buf;
}

dnnl_data_type_t dd_dt_of(dd_dtype d) { return d == DD_BF16 && g_bf16_native ? dnnl_bf16 : dnnl_f32; }
int dd_emulated(dd_dtype d) { return d == DD_BF16 && !g_bf16_native; }

static int set_post_ops(dnnl_primitive_attr_t attr, dd_activation act, int residual) {
    dnnl_post_ops_t po;
    if (dnnl_post_ops_create(&po) != dnnl_success) return -1;
    int rc = 0;
    switch (act) {
    case DD_ACT_NONE: break;
    case DD_ACT_SILU: rc |= append_eltwise(po, dnnl_eltwise_swish, 1.0f, 0.0f); break;
    case DD_ACT_GELU_ERF: rc |= append_eltwise(po, dnnl_eltwise_gelu_erf, 0.0f, 0.0f); break;
    case DD_ACT_GELU_TANH: rc |= append_eltwise(po, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f); break;
    case DD_ACT_QUICK_GELU: rc |= append_eltwise(po, dnnl_eltwise_swish, 1.702f, 0.0f); break;
    }
    if (residual) rc |= append_sum(po);
    rc |= dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    dnnl_post_ops_destroy(po);
    return rc;
}

dnnl_primitive_attr_t dd_make_attr(dd_activation act, int residual) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (set_post_ops(attr, act, residual) != 0) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

dnnl_status_t dd_execute(dnnl_primitive_t prim, int nargs, const int *arg_ids, const cmd_t *mds, void *const *ptrs) {
    dnnl_memory_t mem[8] = {0};
    dnnl_exec_arg_t args[8];
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < nargs && st == dnnl_success; i++) {
        st = dnnl_memory_create(&mem[i], mds[i], dd_engine, ptrs[i]);
        args[i].arg = arg_ids[i];
        args[i].memory = mem[i];
    }
    if (st == dnnl_success) {
        pthread_mutex_lock(&g_exec_lock);
        st = dnnl_primitive_execute(prim, g_stream, nargs, args);
        if (st == dnnl_success) st = dnnl_stream_wait(g_stream);
        pthread_mutex_unlock(&g_exec_lock);
    }
    for (int i = 0; i < nargs; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    return st;
}

dnnl_primitive_t dd_make_reorder(cmd_t from, cmd_t to) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, from, dd_engine, to, dd_engine, NULL) == dnnl_success)
        dnnl_primitive_create(&prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return prim;
}

dnnl_status_t dd_run_reorder(dnnl_primitive_t r, cmd_t from, const void *src, cmd_t to, void *dst) {
    int ids[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    cmd_t mds[2] = {from, to};
    void *ptrs[2] = {(void *)src, dst};
    return dd_execute(r, 2, ids, mds, ptrs);
}

dnnl_status_t dd_reorder(cmd_t src_md, void *src, cmd_t dst_md, void *dst) {
    dnnl_primitive_t prim = dd_make_reorder(src_md, dst_md);
    if (!prim) return dnnl_unimplemented;
    dnnl_status_t st = dd_run_reorder(prim, src_md, src, dst_md, dst);
    dnnl_primitive_destroy(prim);
    return st;
}

void *dd_maybe_bf16(int slot, dd_dtype dt, const float *src, long ld, long rows, long cols) {
    if (dt != DD_BF16) return NULL;
    void *s = dd_scratch(slot, (size_t)rows * cols * (g_bf16_native ? 2 : 4));
    if (!s) return NULL;
    if (g_bf16_native) dd_convert_rows_bf16(src, ld, s, cols, rows, cols);
    else dd_round_rows_bf16(src, ld, s, cols, rows, cols);
    return s;
}
