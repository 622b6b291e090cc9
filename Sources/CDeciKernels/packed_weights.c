// Weights packed once into the layout oneDNN's chosen implementation wants (compact bf16 halves
// when bf16 is emulated), re-derived from that copy when a later shape wants another layout, and
// the per-shape primitives (variants) of a conv or linear layer that use them.
#include "dnnl_internal.h"

#include <stdlib.h>
#include <string.h>

// How a layer of precision d stores its weights (init_layer's `bf16`): emulated bf16 layers keep
// bf16 halves (see `packed`) unless DECI_BF16_COMPACT=0 trades memory (2x) for the per-call
// widening pass.
static int bf16_storage(dd_dtype d) {
    static int compact = -1;
    if (!dd_emulated(d)) return 0;
    if (compact < 0) {
        const char *e = getenv("DECI_BF16_COMPACT");
        compact = !(e && strcmp(e, "0") == 0);
    }
    return 1 + compact;
}

static float *weight_scratch(size_t bytes) { return dd_scratch(SCRATCH_WIDEN, bytes); }

void *dd_weights_data(const packed *w) {
    if (!w->compact) return w->data;
    size_t bytes = dnnl_memory_desc_get_size(w->md);
    float *f = weight_scratch(bytes);
    if (f) dd_bf16_to_f32(w->data, f, (long)(bytes / sizeof(float)));
    return f;
}

// Makes the layer's packed copy of float32 weights in layout `md` (taking ownership of `md`):
// with `compact`, the bf16 halves of `f32` (left to the caller); otherwise `f32` itself, taken.
static int pack_weights(packed *w, md_t md, float *f32, int compact) {
    void *data = f32;
    if (compact) {
        size_t count = dnnl_memory_desc_get_size(md) / sizeof(float);
        if ((data = dd_alloc_large(count ? count * 2 : 64))) dd_f32_to_bf16(f32, data, (long)count);
    }
    if (!data) {
        md_free(md);
        return -1;
    }
    *w = (packed){md, data, compact};
    return 0;
}

// Returns the index of packed weights matching `want`, deriving them from the first copy if new.
// The derivation goes through the plain layout: oneDNN reorders one blocked layout to another with
// its reference kernel (measured 60x slower than blocked -> plain -> blocked). Packed weights no
// variant uses yet (the layout picked at load from a nominal shape) are replaced, not kept.
static int weights_for(layer *L, cmd_t want) {
    for (int i = 0; i < L->nw; i++)
        if (dnnl_memory_desc_equal(L->w[i].md, want)) return i;
    int replace = L->nv == 0 && L->nw == 1;
    if (!replace && L->nw == 4) return -1;
    int compact = L->w[0].compact;
    size_t bytes = dnnl_memory_desc_get_size(want), plain_bytes = dnnl_memory_desc_get_size(L->plain_md);
    void *plain = dd_alloc_large(plain_bytes ? plain_bytes : 64), *from = dd_weights_data(&L->w[0]);
    int ok = plain && from && dd_reorder(L->w[0].md, from, L->plain_md, plain) == dnnl_success;
    // The widened source is done with, so a compact derivation may stage in the same scratch.
    float *to = !ok ? NULL : compact ? weight_scratch(bytes ? bytes : 64) : dd_alloc_large(bytes ? bytes : 64);
    ok = to && dd_reorder(L->plain_md, plain, want, to) == dnnl_success;
    free(plain);
    packed made;
    md_t own = ok ? md_clone(want) : NULL;
    if (!own || pack_weights(&made, own, to, compact) != 0) {
        if (!compact && !own) free(to);
        return -1;
    }
    if (replace) {
        free(L->w[0].data);
        md_free(L->w[0].md);
        L->w[0] = made;
        return 0;
    }
    L->w[L->nw] = made;
    return L->nw++;
}

variant *dd_find_variant(layer *L, const long key[4]) {
    for (int i = 0; i < L->nv; i++)
        if (memcmp(L->v[i]->key, key, sizeof(long) * 4) == 0) return L->v[i];
    return NULL;
}

static void variant_free(variant *v) {
    if (v->prim) dnnl_primitive_destroy(v->prim);
    if (v->src_in) dnnl_primitive_destroy(v->src_in);
    if (v->dst_out) dnnl_primitive_destroy(v->dst_out);
    if (v->residual_in) dnnl_primitive_destroy(v->residual_in);
    MD_FREE(v->src_md, v->dst_md, v->user_src_md, v->user_dst_md);
    memset(v, 0, sizeof *v);
}

void dd_variant_destroy(variant *v) {
    variant_free(v);
    free(v);
}

variant *dd_add_variant(layer *L, const long key[4], dnnl_primitive_desc_t pd) {
    if (L->nv == L->cap) {
        int cap = L->cap ? L->cap * 2 : 4;
        variant **nv = realloc(L->v, cap * sizeof(variant *));
        if (!nv) return NULL;
        L->v = nv;
        L->cap = cap;
    }
    int wi = weights_for(L, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    if (wi < 0) return NULL;
    variant *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    memcpy(v->key, key, sizeof(long) * 4);
    v->w = wi;
    v->src_md = query_md(pd, dnnl_query_src_md);
    v->dst_md = query_md(pd, dnnl_query_dst_md);
    if (!v->src_md || !v->dst_md || dnnl_primitive_create(&v->prim, pd) != dnnl_success) {
        dd_variant_destroy(v);
        return NULL;
    }
    L->v[L->nv++] = v;
    return v;
}

void dd_drop_direct_weights(layer *L) {
    for (int i = 0; i < L->nw; i++) {
        free(L->w[i].data);
        md_free(L->w[i].md);
    }
    for (int i = 0; i < L->nv; i++) dd_variant_destroy(L->v[i]);
    L->nw = L->nv = 0;
}

void dd_layer_free(layer *L) {
    dd_drop_direct_weights(L);
    free(L->v);
    free(L->bias);
    md_free(L->bias_md);
    md_free(L->plain_md);
    pthread_mutex_destroy(&L->lock);
}

// `bf16`: 0 keeps float32 weights; 1 rounds them to bf16 values (float32 storage); 2 stores the
// bf16 halves (compact).
static int pack_layer(layer *L, cmd_t user_md, const float *weight, cmd_t want, int bf16, const float *bias, long nbias) {
    int compact = bf16 == 2;
    pthread_mutex_init(&L->lock, NULL);
    if (!(L->plain_md = md_clone(user_md))) return -1;
    size_t bytes = dnnl_memory_desc_get_size(want);
    // Compact weights stage the float32 repack in scratch, so loading touches fresh
    // memory only for the half-size result.
    float *to = compact ? weight_scratch(bytes ? bytes : 64) : dd_alloc_large(bytes ? bytes : 64);
    md_t own = to ? md_clone(want) : NULL;
    if (!own || dd_reorder(user_md, (void *)weight, want, to) != dnnl_success) {
        md_free(own);
        if (!compact) free(to);
        return -1;
    }
    long count = (long)(bytes / sizeof(float));
    if (bf16 == 1) dd_round_rows_bf16(to, count, to, count, 1, count);
    if (pack_weights(&L->w[0], own, to, compact) != 0) return -1;
    L->nw = 1;
    if (bias) {
        L->bias = malloc(nbias * sizeof(float));
        if (!L->bias) return -1;
        memcpy(L->bias, bias, nbias * sizeof(float));
        dnnl_dims_t bd = {nbias};
        if (!(L->bias_md = md_tag(1, bd, dnnl_f32, dnnl_a))) return -1;
    }
    return 0;
}

static int init_layer(layer *L, cmd_t user_md, const float *weight, cmd_t want, int bf16, const float *bias, long nbias) {
    dd_scratch_enter();
    int rc = pack_layer(L, user_md, weight, want, bf16, bias, nbias);
    dd_scratch_leave();
    return rc;
}

int dd_layer_create(layer *L, dnnl_status_t st, dnnl_primitive_desc_t pd, md_t user, const float *weight, dd_dtype dt,
                    const float *bias, long nbias, const char *what, char *err, int errlen) {
    int rc = -1;
    if (st != dnnl_success) FAIL("oneDNN %s setup failed (status %d)", what, (int)st);
    if (!user) FAIL("out of memory");
    if (init_layer(L, user, weight, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), bf16_storage(dt), bias, nbias))
        FAIL("packing %s weights failed", what);
    rc = 0;
fail:
    md_free(user);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

// Reading packed weights back, and rewriting them in place (LoRA merges in a running process):
// every packed copy is re-derived from the new float32 weights in its own layout, so the layer's
// variants keep working unchanged.
int dd_layer_read_weights(layer *L, float *out) {
    pthread_mutex_lock(&L->lock);
    int rc = -1;
    if (L->nw > 0) {
        dd_scratch_enter();
        void *from = dd_weights_data(&L->w[0]);
        rc = from && dd_reorder(L->w[0].md, from, L->plain_md, out) == dnnl_success ? 0 : -1;
        dd_scratch_leave();
    }
    pthread_mutex_unlock(&L->lock);
    return rc;
}

int dd_layer_write_weights(layer *L, const float *weight, dd_dtype dt) {
    pthread_mutex_lock(&L->lock);
    int rc = L->nw > 0 ? 0 : -1;
    dd_scratch_enter();
    for (int i = 0; i < L->nw && rc == 0; i++) {
        packed *w = &L->w[i];
        size_t bytes = dnnl_memory_desc_get_size(w->md);
        long count = (long)(bytes / sizeof(float));
        float *to = w->compact ? weight_scratch(bytes ? bytes : 64) : w->data;
        rc = to && dd_reorder(L->plain_md, (void *)weight, w->md, to) == dnnl_success ? 0 : -1;
        if (rc == 0 && w->compact) dd_f32_to_bf16(to, w->data, count);
        else if (rc == 0 && bf16_storage(dt) == 1) dd_round_rows_bf16(to, count, to, count, 1, count);
    }
    dd_scratch_leave();
    pthread_mutex_unlock(&L->lock);
    return rc;
}
