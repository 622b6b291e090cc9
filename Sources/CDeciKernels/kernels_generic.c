// The kernel bodies for the baseline instruction set (any CPU).
// Only inlined helpers take 16-lane vectors, so the wide-vector ABI note does not apply.
#pragma clang diagnostic ignored "-Wpsabi"
#define KFN(name) name##_generic
#include "kernels_body.h"
