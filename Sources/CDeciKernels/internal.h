// Shared between the shim's C files; not part of the ABI.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(__linux__)
#define DD_HAVE_GOMP 1
#else
#define DD_HAVE_GOMP 0
#endif

// Internal: row-wise softmax writing bf16 (for attention probabilities fed to a bf16 matmul).
// y_bf16: 0 = float32 output, 1 = bfloat16 bits, 2 = float32 rounded through bfloat16.
// causal0 >= 0 masks columns after causal0 + (row % per_head).
void dd_softmax_rows(const float *x, long ldx, void *y, long ldy, int y_bf16, long rows, long c, float scale,
                     long causal0, long per_head);
const char *dd_kernel_isa_name(void);
void dd_round_rows_bf16(const float *x, long ldx, float *y, long ldy, long rows, long c);
void dd_convert_rows_bf16(const float *x, long ldx, uint16_t *y, long ldy, long rows, long c);
