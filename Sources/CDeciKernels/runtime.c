// Thread pool, buffer pool and backend info.
//
// Kernels run on the same OpenMP pool oneDNN uses (libgomp on Linux), called through libgomp's
// own entry point so this file needs no -fopenmp: two thread pools on two cores would fight.
#include "ddkernels.h"
#include "internal.h"

#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if DD_HAVE_GOMP
extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);
extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int);
extern int omp_in_parallel(void);
#endif

static int g_threads = 0;

static int detect_cores(void) {
    const char *env = getenv("DECI_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int dd_num_threads(void) {
    if (g_threads == 0) dd_set_num_threads(0);
    return g_threads;
}

void dd_set_num_threads(int n) {
    g_threads = n > 0 ? n : detect_cores();
#if DD_HAVE_GOMP
    omp_set_num_threads(g_threads);
#endif
}

typedef struct {
    dd_range_fn fn;
    void *ctx;
    long n;
} par_job;

#if DD_HAVE_GOMP
static void par_trampoline(void *data) {
    par_job *job = (par_job *)data;
    long t = omp_get_thread_num(), nt = omp_get_num_threads();
    long begin = job->n * t / nt, end = job->n * (t + 1) / nt;
    if (begin < end) job->fn(job->ctx, begin, end);
}
#endif

void dd_parallel_for(long n, long grain, dd_range_fn fn, void *ctx) {
    if (n <= 0) return;
    long threads = dd_num_threads();
    if (grain < 1) grain = 1;
    // Whole grains only: work smaller than two grains runs on the calling thread, since waking
    // the pool costs more than it saves (and far more when another process holds a core).
    long chunks = n / grain;
    if (threads > chunks) threads = chunks;
#if DD_HAVE_GOMP
    if (threads > 1 && !omp_in_parallel()) {
        par_job job = {fn, ctx, n};
        GOMP_parallel(par_trampoline, &job, (unsigned)threads, 0);
        return;
    }
#endif
    fn(ctx, 0, n);
}

// ---- buffer pool ---------------------------------------------------------------------------------
// Exact-size reuse: a denoising step allocates the same sizes every step, so after the first step
// every activation comes from here without touching the kernel.

#define POOL_SLOTS 4096
typedef struct {
    void *p;
    size_t bytes;
} pool_slot;
static pool_slot g_pool[POOL_SLOTS];
static int g_pool_n = 0;
static size_t g_pool_bytes = 0;
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t round_bytes(size_t b) { return (b + 4095) & ~(size_t)4095; }

// Big long-lived buffers (packed weights, staging). One place to change their placement: huge
// pages were tried and measured no faster here, since first touch of fresh memory in this VM costs
// ~1 GB/s either way (the hypervisor backs pages lazily), which bounds weight loading.
void *dd_alloc_large(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

void *dd_alloc(size_t bytes) {
    if (dd_testing_alloc_fails(bytes)) return NULL;
    size_t rb = round_bytes(bytes ? bytes : 1);
    pthread_mutex_lock(&g_pool_lock);
    for (int i = g_pool_n - 1; i >= 0; i--) {
        if (g_pool[i].bytes == rb) {
            void *p = g_pool[i].p;
            g_pool[i] = g_pool[--g_pool_n];
            g_pool_bytes -= rb;
            pthread_mutex_unlock(&g_pool_lock);
            return p;
        }
    }
    pthread_mutex_unlock(&g_pool_lock);
    return dd_alloc_large(rb);
}

void dd_free(void *p, size_t bytes) {
    if (!p) return;
    size_t rb = round_bytes(bytes ? bytes : 1);
    pthread_mutex_lock(&g_pool_lock);
    if (g_pool_n < POOL_SLOTS) {
        g_pool[g_pool_n++] = (pool_slot){p, rb};
        g_pool_bytes += rb;
        pthread_mutex_unlock(&g_pool_lock);
        return;
    }
    pthread_mutex_unlock(&g_pool_lock);
    free(p);
}

void dd_pool_trim(void) {
    dd_release_scratch();
    pthread_mutex_lock(&g_pool_lock);
    if (getenv("DECI_MEMTRACE")) fprintf(stderr, "pool trim: %.1f MiB in %d buffers\n", g_pool_bytes / 1048576.0, g_pool_n);
    for (int i = 0; i < g_pool_n; i++) free(g_pool[i].p);
    g_pool_n = 0;
    g_pool_bytes = 0;
    pthread_mutex_unlock(&g_pool_lock);
#if defined(__GLIBC__)
    malloc_trim(0);  // free pages inside the heap go back too, not only its top
#endif
}

size_t dd_pool_cached_bytes(void) {
    pthread_mutex_lock(&g_pool_lock);
    size_t b = g_pool_bytes;
    pthread_mutex_unlock(&g_pool_lock);
    return b;
}
