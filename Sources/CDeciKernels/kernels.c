// Public kernel entry points: each forwards to the copy built for the best instruction set the
// running CPU has (checked once; DECI_KERNELS=generic|avx2 caps it, for testing).
#include "ddkernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#define DD_X86 1
#else
#define DD_X86 0
#endif

enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

static int kernel_isa(void) {
    static int cached = -1;
    if (cached >= 0) return cached;
    int isa = ISA_GENERIC;
#if DD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = ISA_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        isa = ISA_AVX512;
#endif
    const char *cap = getenv("DECI_KERNELS");
    if (cap && strcmp(cap, "generic") == 0) isa = ISA_GENERIC;
    if (cap && strcmp(cap, "avx2") == 0 && isa > ISA_AVX2) isa = ISA_AVX2;
    cached = isa;
    return cached;
}

const char *dd_kernel_isa_name(void) {
    static const char *names[] = {"generic", "avx2", "avx512"};
    return names[kernel_isa()];
}

// Declares a kernel's instruction-set copies (fn with the ISA appended, taking `params`) and defines
// fn itself, forwarding `args` to the copy for the best instruction set the CPU has.
#if DD_X86
#define DD_ISA_ENTRY(fn, params, args)              \
    void fn##_generic params;                       \
    void fn##_avx2 params;                          \
    void fn##_avx512 params;                        \
    void fn params {                                \
        switch (kernel_isa()) {                     \
        case ISA_AVX512: fn##_avx512 args; return;  \
        case ISA_AVX2: fn##_avx2 args; return;      \
        default: fn##_generic args; return;         \
        }                                           \
    }
#else
#define DD_ISA_ENTRY(fn, params, args) \
    void fn##_generic params;          \
    void fn params { fn##_generic args; }
#endif

// ---- normalisation (kernels_norm.h) -------------------------------------------------------------
DD_ISA_ENTRY(dd_softmax_rows, (const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale, long causal0, long per_head), (x, ldx, y, ldy, y_bf16, rows, c, scale, causal0, per_head))
DD_ISA_ENTRY(dd_softmax, (const float *x, float *y, long rows, long c, float scale), (x, y, rows, c, scale))
DD_ISA_ENTRY(dd_layer_norm, (const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta), (x, y, rows, c, eps, gamma, beta))
DD_ISA_ENTRY(dd_group_norm, (const float *x, float *y, long n, long hw, long c, long groups, float eps, const float *gamma, const float *beta, const float *pre_bias, int silu), (x, y, n, hw, c, groups, eps, gamma, beta, pre_bias, silu))

// ---- element-wise and layout (kernels_eltwise.h) ------------------------------------------------
DD_ISA_ENTRY(dd_activation_inplace, (float *x, long count, dd_activation act), (x, count, act))
DD_ISA_ENTRY(dd_add, (const float *x, const float *b, float *y, long count, long bias_c), (x, b, y, count, bias_c))
DD_ISA_ENTRY(dd_geglu, (const float *x, float *y, long rows, long f), (x, y, rows, f))
DD_ISA_ENTRY(dd_upsample_nearest2x, (const float *x, float *y, long n, long h, long w, long c), (x, y, n, h, w, c))
DD_ISA_ENTRY(dd_concat_channels, (const float *a, long ca, const float *b, long cb, float *y, long rows), (a, ca, b, cb, y, rows))
DD_ISA_ENTRY(dd_nchw_to_nhwc, (const float *x, float *y, long n, long c, long hw), (x, y, n, c, hw))
DD_ISA_ENTRY(dd_nhwc_to_nchw, (const float *x, float *y, long n, long hw, long c), (x, y, n, hw, c))

// ---- conversions (kernels_convert.h) ------------------------------------------------------------
DD_ISA_ENTRY(dd_convert_rows_bf16, (const float *x, long ldx, uint16_t *y, long ldy, long rows, long c), (x, ldx, y, ldy, rows, c))
DD_ISA_ENTRY(dd_round_rows_bf16, (const float *x, long ldx, float *y, long ldy, long rows, long c), (x, ldx, y, ldy, rows, c))
DD_ISA_ENTRY(dd_f32_to_bf16, (const float *x, uint16_t *y, long count), (x, y, count))
DD_ISA_ENTRY(dd_bf16_to_f32, (const uint16_t *x, float *y, long count), (x, y, count))
DD_ISA_ENTRY(dd_f16_to_f32, (const uint16_t *x, float *y, long count), (x, y, count))

// ---- Winograd transforms (kernels_winograd.h) ---------------------------------------------------
DD_ISA_ENTRY(dd_wino_input, (const float *x, int flags, float *buf, long n, long h, long w, long c, long t0, long tc), (x, flags, buf, n, h, w, c, t0, tc))
DD_ISA_ENTRY(dd_wino_output, (const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h, long w, long c, long ldy, long t0, long tc), (buf, y, bias, residual, act, n, h, w, c, ldy, t0, tc))
DD_ISA_ENTRY(dd_wino_weights, (const float *hwio, long ldg, float *u, long cin, long cout), (hwio, ldg, u, cin, cout))
DD_ISA_ENTRY(dd_wino2_input, (const float *x, int flags, uint16_t *buf, long n, long h, long w, long c, long t0, long tc), (x, flags, buf, n, h, w, c, t0, tc))
DD_ISA_ENTRY(dd_wino2_output, (const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h, long w, long c, long ldy, long t0, long tc), (buf, y, bias, residual, act, n, h, w, c, ldy, t0, tc))
DD_ISA_ENTRY(dd_wino2_weights, (const float *hwio, long ldg, uint16_t *u, long cin, long cout), (hwio, ldg, u, cin, cout))
