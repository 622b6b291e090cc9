// 16-lane float vector helpers for the kernel bodies; included once per instruction set.
#pragma once
#include <stdint.h>
#include <string.h>

#define DD_INLINE static inline __attribute__((always_inline))

typedef float v16f __attribute__((ext_vector_type(16)));
typedef int32_t v16i __attribute__((ext_vector_type(16)));
typedef uint32_t v16u __attribute__((ext_vector_type(16)));
typedef uint16_t v16h __attribute__((ext_vector_type(16)));

DD_INLINE v16f vload(const float *p) { v16f r; memcpy(&r, p, sizeof r); return r; }
DD_INLINE void vstore(float *p, v16f v) { memcpy(p, &v, sizeof v); }
DD_INLINE v16f vsplat(float x) { return (v16f)(x); }

DD_INLINE float vsum(v16f v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}
DD_INLINE float vmax(v16f v) {
    float m = v[0];
    for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// exp with Cephes' range reduction and polynomial: ~1 ulp over the clamped range.
DD_INLINE v16f vexp(v16f x) {
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, vsplat(-87.3f)), vsplat(88.7f));
    v16f n = __builtin_elementwise_floor(x * 1.44269504088896341f + 0.5f);
    v16f r = x - n * 0.693359375f + n * 2.12194440e-4f;
    v16f p = vsplat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
    return p * (v16f)e;
}

DD_INLINE float sexp(float x) {
    v16f v = vexp(vsplat(x));
    return v[0];
}

DD_INLINE v16f vsigmoid(v16f x) { return 1.0f / (1.0f + vexp(-x)); }

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), sign restored by copysign.
DD_INLINE v16f verf(v16f x) {
    v16f a = __builtin_elementwise_abs(x);
    v16f t = 1.0f / (1.0f + 0.3275911f * a);
    v16f p = vsplat(1.061405429f);
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    v16f y = 1.0f - p * t * vexp(-a * a);
    return __builtin_elementwise_copysign(y, x);
}

DD_INLINE v16f vgelu_erf(v16f x) { return 0.5f * x * (1.0f + verf(x * 0.70710678118654752f)); }
DD_INLINE v16f vgelu_tanh(v16f x) {
    v16f u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    v16f th = 1.0f - 2.0f / (1.0f + vexp(2.0f * u));
    return 0.5f * x * (1.0f + th);
}

DD_INLINE v16f vact(v16f x, int act) {
    switch (act) {
    case 1: return x * vsigmoid(x);
    case 2: return vgelu_erf(x);
    case 3: return vgelu_tanh(x);
    case 4: return x * vsigmoid(1.702f * x);
    default: return x;
    }
}

// float32 -> bfloat16 with round-to-nearest-even; NaN stays a (quiet) NaN.
DD_INLINE v16h vto_bf16(v16f x) {
    v16u u = (v16u)x;
    v16u lsb = (u >> 16) & 1u;
    v16u r = (u + 0x7FFFu + lsb) >> 16;
    v16u isnan = (v16u)((u & 0x7FFFFFFFu) > 0x7F800000u);
    r = (r & ~isnan) | (((u >> 16) | 0x40u) & isnan);
    return __builtin_convertvector(r, v16h);
}
DD_INLINE uint16_t sto_bf16(float x) {
    v16h h = vto_bf16(vsplat(x));
    return h[0];
}
DD_INLINE v16f vfrom_bf16(v16h h) { return (v16f)(__builtin_convertvector(h, v16u) << 16); }

