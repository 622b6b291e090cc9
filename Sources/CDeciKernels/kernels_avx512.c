// The kernel bodies compiled for AVX-512 (Skylake-SP and later, Zen 4).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi2"))), apply_to = function)
#define KFN(name) name##_avx512
#include "kernels_body.h"
#pragma clang attribute pop
#endif
