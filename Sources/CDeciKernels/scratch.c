// Per-call scratch buffers of the oneDNN-side kernels (slots and their lifetime: dnnl_internal.h).
#include "dnnl_internal.h"

#include <stdlib.h>

typedef struct scratch_set {
    float *p[SCRATCH_SLOTS];
    size_t bytes[SCRATCH_SLOTS];
    struct scratch_set *next;
} scratch_set;

static pthread_mutex_t g_scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static scratch_set *g_scratch_free;  // sets no call holds
static _Thread_local scratch_set *t_scratch;
static _Thread_local int t_scratch_depth;

static void scratch_set_free(scratch_set *b) {
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(b->p[i]);
    free(b);
}

void dd_scratch_enter(void) { t_scratch_depth++; }

void dd_scratch_leave(void) {
    if (--t_scratch_depth > 0 || !t_scratch) return;
    pthread_mutex_lock(&g_scratch_lock);
    t_scratch->next = g_scratch_free;
    g_scratch_free = t_scratch;
    pthread_mutex_unlock(&g_scratch_lock);
    t_scratch = NULL;
}

float *dd_scratch(int slot, size_t bytes) {
    if (!t_scratch) {
        pthread_mutex_lock(&g_scratch_lock);
        if ((t_scratch = g_scratch_free)) g_scratch_free = t_scratch->next;
        pthread_mutex_unlock(&g_scratch_lock);
        if (!t_scratch && !(t_scratch = calloc(1, sizeof *t_scratch))) return NULL;
    }
    scratch_set *b = t_scratch;
    if (b->bytes[slot] < bytes) {
        free(b->p[slot]);
        b->p[slot] = dd_alloc_large(bytes);
        b->bytes[slot] = b->p[slot] ? bytes : 0;
    }
    return b->p[slot];
}

void dd_release_scratch(void) {
    pthread_mutex_lock(&g_scratch_lock);
    scratch_set *b = g_scratch_free;
    g_scratch_free = NULL;
    pthread_mutex_unlock(&g_scratch_lock);
    while (b) {
        scratch_set *next = b->next;
        scratch_set_free(b);
        b = next;
    }
}
