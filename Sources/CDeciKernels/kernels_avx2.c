// The kernel bodies compiled for AVX2 + FMA (Haswell, Zen 1-3, and CPUs whose AVX-512 is hidden).
#if defined(__x86_64__)
// 16-lane vectors map to register pairs; only inlined helpers take them, so the ABI note is moot.
#pragma clang diagnostic ignored "-Wpsabi"
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi2"))), apply_to = function)
#define KFN(name) name##_avx2
#include "kernels_body.h"
#pragma clang attribute pop
#endif
