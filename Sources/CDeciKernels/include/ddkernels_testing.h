// Overrides of the shim's automatic sizes and choices, for tests and tuning only (production code
// never calls them). Each is per thread, so a test forcing one cannot change another test's
// results; 0 restores the automatic choice. Sections name the file that defines them.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- Winograd (winograd.c) ---------------------------------------------------------------------
/// Forces the Winograd path's tiles per chunk (0 = automatic: ~16 MB of transformed tiles).
void dd_set_winograd_chunk(long tiles);
/// Forces the largest block of transformed weights a per-call (not kept) Winograd layer builds at
/// once, in bytes (0 = automatic: 48 MB).
void dd_set_winograd_weight_block(long bytes);
/// Makes every AUTO convolution use Winograd whenever the geometry allows (1) or restores the
/// size rule (0): for tests of whole models on small shapes.
void dd_set_winograd_forced(int forced);

// ---- attention (attention.c) -------------------------------------------------------------------
/// Forces the query-tile height (0 = automatic: at most 1024 rows and 64 MB of scores).
void dd_set_attention_tile(long rows);

// ---- failure injection (fault.c) ---------------------------------------------------------------
/// Makes the kernel call after the next `n` on this thread (attention, convolution, linear) fail
/// once, as oneDNN failing would; -1 disarms it.
void dd_testing_fail_kernel_after(long n);
/// Makes every pooled allocation (dd_alloc) over `bytes` on this thread fail, retries included,
/// until reset with 0.
void dd_testing_fail_alloc_over(size_t bytes);

#ifdef __cplusplus
}
#endif
