// The sticky fault of the calling thread, and the testing knobs that inject kernel and allocation
// failures. A failure deep in a forward pass cannot be thrown through the non-throwing layers
// above it, so the op layer records the first one here and every later op on the thread skips its
// work until the pipeline takes the fault (as CUDA's sticky errors). Thread-local, so two
// generations on two threads never see each other's faults or knobs.
#include "ddkernels.h"
#include "ddkernels_testing.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local int tl_fault = 0;
static _Thread_local char tl_fault_op[256];
static _Thread_local char tl_fault_message[768];

int dd_fault_active(void) { return tl_fault; }

int dd_fault_raise(const char *op, const char *message) {
    if (tl_fault) return 0;  // the first fault is the cause; later ones are its consequences
    tl_fault = 1;
    snprintf(tl_fault_op, sizeof tl_fault_op, "%s", op ? op : "?");
    snprintf(tl_fault_message, sizeof tl_fault_message, "%s", message ? message : "");
    return 1;
}

int dd_fault_take(char *op, int op_len, char *message, int message_len) {
    if (!tl_fault) return 0;
    if (op && op_len > 0) snprintf(op, (size_t)op_len, "%s", tl_fault_op);
    if (message && message_len > 0) snprintf(message, (size_t)message_len, "%s", tl_fault_message);
    tl_fault = 0;
    return 1;
}

// ---- testing knobs -------------------------------------------------------------------------------
static _Thread_local long tl_kernel_countdown = -1;
static _Thread_local size_t tl_alloc_limit = 0;

void dd_testing_fail_kernel_after(long n) { tl_kernel_countdown = n < 0 ? -1 : n; }

void dd_testing_fail_alloc_over(size_t bytes) { tl_alloc_limit = bytes; }

int dd_testing_kernel_fails(char *err, int errlen) {
    if (tl_kernel_countdown < 0) return 0;
    if (tl_kernel_countdown-- > 0) return 0;
    // One shot: a transient failure, as a real one would be, so the next job runs clean.
    tl_kernel_countdown = -1;
    if (err && errlen > 0) snprintf(err, (size_t)errlen, "injected kernel failure (dd_testing_fail_kernel_after)");
    return 1;
}

int dd_testing_alloc_fails(size_t bytes) { return tl_alloc_limit > 0 && bytes > tl_alloc_limit; }
