// Kernel bodies, compiled once per instruction set (see kernels_*.c); KFN() names each copy.
// Vectorised 16 floats at a time (one AVX-512 register; the baseline clone splits it),
// multi-threaded over rows on the shared pool. One body per family, in ddkernels.h's order;
// kernels.c dispatches to the copy the CPU runs best.
#include "ddkernels.h"
#include "internal.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>

#define GRAIN 16384  // elements per task below which threading costs more than it saves

#include "kernels_norm.h"
#include "kernels_eltwise.h"
#include "kernels_convert.h"
#include "kernels_winograd.h"
