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

void dd_activation_inplace_generic(float *x, long count, dd_activation act);
#if DD_X86
void dd_activation_inplace_avx2(float *x, long count, dd_activation act);
void dd_activation_inplace_avx512(float *x, long count, dd_activation act);
#endif
void dd_add_generic(const float *x, const float *b, float *y, long count, long bias_c);
#if DD_X86
void dd_add_avx2(const float *x, const float *b, float *y, long count, long bias_c);
void dd_add_avx512(const float *x, const float *b, float *y, long count, long bias_c);
#endif
void dd_geglu_generic(const float *x, float *y, long rows, long f);
#if DD_X86
void dd_geglu_avx2(const float *x, float *y, long rows, long f);
void dd_geglu_avx512(const float *x, float *y, long rows, long f);
#endif
void dd_upsample_nearest2x_generic(const float *x, float *y, long n, long h, long w, long c);
#if DD_X86
void dd_upsample_nearest2x_avx2(const float *x, float *y, long n, long h, long w, long c);
void dd_upsample_nearest2x_avx512(const float *x, float *y, long n, long h, long w, long c);
#endif
void dd_concat_channels_generic(const float *a, long ca, const float *b, long cb, float *y, long rows);
#if DD_X86
void dd_concat_channels_avx2(const float *a, long ca, const float *b, long cb, float *y, long rows);
void dd_concat_channels_avx512(const float *a, long ca, const float *b, long cb, float *y, long rows);
#endif
void dd_nchw_to_nhwc_generic(const float *x, float *y, long n, long c, long hw);
#if DD_X86
void dd_nchw_to_nhwc_avx2(const float *x, float *y, long n, long c, long hw);
void dd_nchw_to_nhwc_avx512(const float *x, float *y, long n, long c, long hw);
#endif
void dd_nhwc_to_nchw_generic(const float *x, float *y, long n, long hw, long c);
#if DD_X86
void dd_nhwc_to_nchw_avx2(const float *x, float *y, long n, long hw, long c);
void dd_nhwc_to_nchw_avx512(const float *x, float *y, long n, long hw, long c);
#endif
void dd_convert_rows_bf16_generic(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c);
#if DD_X86
void dd_convert_rows_bf16_avx2(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c);
void dd_convert_rows_bf16_avx512(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c);
#endif
void dd_f32_to_bf16_generic(const float *x, uint16_t *y, long count);
#if DD_X86
void dd_f32_to_bf16_avx2(const float *x, uint16_t *y, long count);
void dd_f32_to_bf16_avx512(const float *x, uint16_t *y, long count);
#endif
void dd_bf16_to_f32_generic(const uint16_t *x, float *y, long count);
void dd_f16_to_f32_generic(const uint16_t *x, float *y, long count);
void dd_f16_to_f32_avx2(const uint16_t *x, float *y, long count);
void dd_f16_to_f32_avx512(const uint16_t *x, float *y, long count);
#if DD_X86
void dd_bf16_to_f32_avx2(const uint16_t *x, float *y, long count);
void dd_bf16_to_f32_avx512(const uint16_t *x, float *y, long count);
#endif
void dd_softmax_rows_generic(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale, long causal0, long per_head);
#if DD_X86
void dd_softmax_rows_avx2(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale, long causal0, long per_head);
void dd_softmax_rows_avx512(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale, long causal0, long per_head);
#endif
void dd_softmax_generic(const float *x, float *y, long rows, long c, float scale);
#if DD_X86
void dd_softmax_avx2(const float *x, float *y, long rows, long c, float scale);
void dd_softmax_avx512(const float *x, float *y, long rows, long c, float scale);
#endif
void dd_layer_norm_generic(const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta);
#if DD_X86
void dd_layer_norm_avx2(const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta);
void dd_layer_norm_avx512(const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta);
#endif
void dd_group_norm_generic(const float *x, float *y, long n, long hw, long c, long groups, float eps, const float *gamma, const float *beta, const float *pre_bias, int silu);
#if DD_X86
void dd_group_norm_avx2(const float *x, float *y, long n, long hw, long c, long groups, float eps, const float *gamma, const float *beta, const float *pre_bias, int silu);
void dd_group_norm_avx512(const float *x, float *y, long n, long hw, long c, long groups, float eps, const float *gamma, const float *beta, const float *pre_bias, int silu);
#endif
void dd_round_rows_bf16_generic(const float *x, long ldx, float *y, long ldy, long rows, long c);
#if DD_X86
void dd_round_rows_bf16_avx2(const float *x, long ldx, float *y, long ldy, long rows, long c);
void dd_round_rows_bf16_avx512(const float *x, long ldx, float *y, long ldy, long rows, long c);
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

void dd_activation_inplace(float *x, long count, dd_activation act) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_activation_inplace_avx512(x, count, act); return;
    case ISA_AVX2: dd_activation_inplace_avx2(x, count, act); return;
    }
#endif
    dd_activation_inplace_generic(x, count, act);
}

void dd_add(const float *x, const float *b, float *y, long count, long bias_c) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_add_avx512(x, b, y, count, bias_c); return;
    case ISA_AVX2: dd_add_avx2(x, b, y, count, bias_c); return;
    }
#endif
    dd_add_generic(x, b, y, count, bias_c);
}

void dd_geglu(const float *x, float *y, long rows, long f) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_geglu_avx512(x, y, rows, f); return;
    case ISA_AVX2: dd_geglu_avx2(x, y, rows, f); return;
    }
#endif
    dd_geglu_generic(x, y, rows, f);
}

void dd_upsample_nearest2x(const float *x, float *y, long n, long h, long w, long c) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_upsample_nearest2x_avx512(x, y, n, h, w, c); return;
    case ISA_AVX2: dd_upsample_nearest2x_avx2(x, y, n, h, w, c); return;
    }
#endif
    dd_upsample_nearest2x_generic(x, y, n, h, w, c);
}

void dd_concat_channels(const float *a, long ca, const float *b, long cb, float *y, long rows) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_concat_channels_avx512(a, ca, b, cb, y, rows); return;
    case ISA_AVX2: dd_concat_channels_avx2(a, ca, b, cb, y, rows); return;
    }
#endif
    dd_concat_channels_generic(a, ca, b, cb, y, rows);
}

void dd_nchw_to_nhwc(const float *x, float *y, long n, long c, long hw) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_nchw_to_nhwc_avx512(x, y, n, c, hw); return;
    case ISA_AVX2: dd_nchw_to_nhwc_avx2(x, y, n, c, hw); return;
    }
#endif
    dd_nchw_to_nhwc_generic(x, y, n, c, hw);
}

void dd_nhwc_to_nchw(const float *x, float *y, long n, long hw, long c) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_nhwc_to_nchw_avx512(x, y, n, hw, c); return;
    case ISA_AVX2: dd_nhwc_to_nchw_avx2(x, y, n, hw, c); return;
    }
#endif
    dd_nhwc_to_nchw_generic(x, y, n, hw, c);
}

void dd_convert_rows_bf16(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_convert_rows_bf16_avx512(x, ldx, y, ldy, rows, c); return;
    case ISA_AVX2: dd_convert_rows_bf16_avx2(x, ldx, y, ldy, rows, c); return;
    }
#endif
    dd_convert_rows_bf16_generic(x, ldx, y, ldy, rows, c);
}

void dd_f32_to_bf16(const float *x, uint16_t *y, long count) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_f32_to_bf16_avx512(x, y, count); return;
    case ISA_AVX2: dd_f32_to_bf16_avx2(x, y, count); return;
    }
#endif
    dd_f32_to_bf16_generic(x, y, count);
}

void dd_bf16_to_f32(const uint16_t *x, float *y, long count) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_bf16_to_f32_avx512(x, y, count); return;
    case ISA_AVX2: dd_bf16_to_f32_avx2(x, y, count); return;
    }
#endif
    dd_bf16_to_f32_generic(x, y, count);
}

void dd_softmax_rows(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale, long causal0, long per_head) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_softmax_rows_avx512(x, ldx, y, ldy, y_bf16, rows, c, scale, causal0, per_head); return;
    case ISA_AVX2: dd_softmax_rows_avx2(x, ldx, y, ldy, y_bf16, rows, c, scale, causal0, per_head); return;
    }
#endif
    dd_softmax_rows_generic(x, ldx, y, ldy, y_bf16, rows, c, scale, causal0, per_head);
}

void dd_softmax(const float *x, float *y, long rows, long c, float scale) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_softmax_avx512(x, y, rows, c, scale); return;
    case ISA_AVX2: dd_softmax_avx2(x, y, rows, c, scale); return;
    }
#endif
    dd_softmax_generic(x, y, rows, c, scale);
}

void dd_layer_norm(const float *x, float *y, long rows, long c, float eps, const float *gamma, const float *beta) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_layer_norm_avx512(x, y, rows, c, eps, gamma, beta); return;
    case ISA_AVX2: dd_layer_norm_avx2(x, y, rows, c, eps, gamma, beta); return;
    }
#endif
    dd_layer_norm_generic(x, y, rows, c, eps, gamma, beta);
}

void dd_group_norm(const float *x, float *y, long n, long hw, long c, long groups, float eps, const float *gamma, const float *beta, const float *pre_bias, int silu) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_group_norm_avx512(x, y, n, hw, c, groups, eps, gamma, beta, pre_bias, silu); return;
    case ISA_AVX2: dd_group_norm_avx2(x, y, n, hw, c, groups, eps, gamma, beta, pre_bias, silu); return;
    }
#endif
    dd_group_norm_generic(x, y, n, hw, c, groups, eps, gamma, beta, pre_bias, silu);
}

void dd_round_rows_bf16(const float *x, long ldx, float *y, long ldy, long rows, long c) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_round_rows_bf16_avx512(x, ldx, y, ldy, rows, c); return;
    case ISA_AVX2: dd_round_rows_bf16_avx2(x, ldx, y, ldy, rows, c); return;
    }
#endif
    dd_round_rows_bf16_generic(x, ldx, y, ldy, rows, c);
}

void dd_f16_to_f32(const uint16_t *x, float *y, long count) {
#if DD_X86
    switch (kernel_isa()) {
    case ISA_AVX512: dd_f16_to_f32_avx512(x, y, count); return;
    case ISA_AVX2: dd_f16_to_f32_avx2(x, y, count); return;
    }
#endif
    dd_f16_to_f32_generic(x, y, count);
}

// Declares a kernel's three instruction-set copies and defines the dispatching entry point.
#if DD_X86
#define DD_ISA_CALL(fn, ...)                                  \
    switch (kernel_isa()) {                                   \
    case ISA_AVX512: fn##_avx512(__VA_ARGS__); return;        \
    case ISA_AVX2: fn##_avx2(__VA_ARGS__); return;            \
    default: break;                                           \
    }                                                         \
    fn##_generic(__VA_ARGS__)
#define DD_ISA_DECLARE(fn, ...) \
    void fn##_generic(__VA_ARGS__); void fn##_avx2(__VA_ARGS__); void fn##_avx512(__VA_ARGS__)
#else
#define DD_ISA_CALL(fn, ...) fn##_generic(__VA_ARGS__)
#define DD_ISA_DECLARE(fn, ...) void fn##_generic(__VA_ARGS__)
#endif

DD_ISA_DECLARE(dd_wino_input, const float *, int, float *, long, long, long, long, long, long);
void dd_wino_input(const float *x, int up, float *buf, long n, long h, long w, long c, long t0, long tc) {
    DD_ISA_CALL(dd_wino_input, x, up, buf, n, h, w, c, t0, tc);
}

DD_ISA_DECLARE(dd_wino_output, const float *, float *, const float *, const float *, int, long, long, long, long, long, long);
void dd_wino_output(const float *buf, float *y, const float *bias, const float *residual, int act, long n, long h, long w,
                    long c, long t0, long tc) {
    DD_ISA_CALL(dd_wino_output, buf, y, bias, residual, act, n, h, w, c, t0, tc);
}

DD_ISA_DECLARE(dd_wino_weights, const float *, float *, long, long);
void dd_wino_weights(const float *hwio, float *u, long cin, long cout) { DD_ISA_CALL(dd_wino_weights, hwio, u, cin, cout); }
