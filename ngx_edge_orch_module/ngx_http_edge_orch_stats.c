
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Counters for the status page, in a shared-memory zone of their own
 * ("edge_orch_stats") so that fragments without an edge_orch_zone are
 * counted too: global counters, and one slot of counters per fragment
 * NAME (fragments of the same name in several locations share a slot).
 *
 * The zone is created automatically, sized from the number of distinct
 * fragment names found in the configuration (with room to spare, so that a
 * reload adding a few names keeps the zone).  Its init callback runs in the
 * master after the configuration is parsed and before the workers fork:
 * it maps every name to a slot (the slot it had before a reload, a free
 * one, or one of a name that is gone) and stores the slot's address in each
 * fragment's configuration.  Counters are only ever updated with atomic
 * additions: no lock on any request path.
 */


#include "ngx_http_edge_orch_module.h"


#define NGX_HTTP_EDGE_ORCH_STATS_SLOTS   32      /* allocated in multiples */


typedef struct {
    ngx_uint_t                     nslots;
    ngx_atomic_t                   g[NGX_HTTP_EDGE_ORCH_NG];
    ngx_http_edge_orch_fstats_t    slots[1];
} ngx_http_edge_orch_stats_sh_t;


struct ngx_http_edge_orch_stats_s {
    ngx_shm_zone_t                *shm_zone;
    ngx_http_edge_orch_stats_sh_t *sh;
    ngx_uint_t                     nslots;
    ngx_array_t                    names;        /* ngx_str_t, distinct */
    ngx_http_edge_orch_fstats_t  **slots;        /* per name */
    ngx_array_t                    locs;         /* loc_conf_t * */
};


static ngx_http_edge_orch_stats_t *ngx_http_edge_orch_stats_conf(
    ngx_conf_t *cf);
static ngx_int_t ngx_http_edge_orch_stats_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_edge_orch_fstats_t *ngx_http_edge_orch_stats_slot(
    ngx_http_edge_orch_stats_t *stats, ngx_str_t *name);
static ngx_uint_t ngx_http_edge_orch_stats_kind(
    ngx_http_edge_orch_frag_t *fs, ngx_http_edge_orch_reason_e reason);


static ngx_str_t  ngx_http_edge_orch_stats_zone_name =
    ngx_string("edge_orch_stats");


/* upper bounds of the duration buckets in microseconds; 0 is +Inf */
const uint64_t  ngx_http_edge_orch_buckets[NGX_HTTP_EDGE_ORCH_NBUCKETS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 0
};


const char  *ngx_http_edge_orch_error_names[NGX_HTTP_EDGE_ORCH_NE] = {
    "timeout", "status_5xx", "status_4xx", "status_other", "error",
    "invalid", "too_big", "encoding", "no_route"
};


/* index: ngx_http_edge_orch_outcome_e (PENDING at answer time: cancelled) */
const char  *ngx_http_edge_orch_outcome_names[] = {
    "cancelled", "ok", "stale", "fallback", "omitted", "failed"
};


/* index: ngx_http_edge_orch_cache_status_e - 1 */
const char  *ngx_http_edge_orch_cache_names[] = {
    "miss", "hit", "stale", "collapsed", "pass"
};


static ngx_http_edge_orch_stats_t *
ngx_http_edge_orch_stats_conf(ngx_conf_t *cf)
{
    ngx_http_edge_orch_stats_t      *stats;
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edge_orch_module);

    if (emcf->stats != NULL) {
        return emcf->stats;
    }

    stats = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_stats_t));
    if (stats == NULL) {
        return NULL;
    }

    if (ngx_array_init(&stats->names, cf->pool, 8, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&stats->locs, cf->pool, 8,
                          sizeof(ngx_http_edge_orch_loc_conf_t *))
           != NGX_OK)
    {
        return NULL;
    }

    emcf->stats = stats;

    return stats;
}


ngx_int_t
ngx_http_edge_orch_stats_add_name(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                   *n;
    ngx_uint_t                   i;
    ngx_http_edge_orch_stats_t  *stats;

    stats = ngx_http_edge_orch_stats_conf(cf);
    if (stats == NULL) {
        return NGX_ERROR;
    }

    n = stats->names.elts;

    for (i = 0; i < stats->names.nelts; i++) {
        if (n[i].len == name->len
            && ngx_strncmp(n[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    n = ngx_array_push(&stats->names);
    if (n == NULL) {
        return NGX_ERROR;
    }

    *n = *name;

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_stats_add_location(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *elcf)
{
    ngx_http_edge_orch_stats_t      *stats;
    ngx_http_edge_orch_loc_conf_t  **lp;

    stats = ngx_http_edge_orch_stats_conf(cf);
    if (stats == NULL) {
        return NGX_ERROR;
    }

    lp = ngx_array_push(&stats->locs);
    if (lp == NULL) {
        return NGX_ERROR;
    }

    *lp = elcf;

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_stats_init_conf(ngx_conf_t *cf,
    ngx_http_edge_orch_main_conf_t *emcf)
{
    size_t                       size;
    ngx_uint_t                   nslots;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_edge_orch_stats_t  *stats;

    if (emcf->stats == NULL && !emcf->status && emcf->zones == NULL
        && emcf->routes_path.len == 0)
    {
        /* the module is loaded but not used */
        return NGX_OK;
    }

    stats = ngx_http_edge_orch_stats_conf(cf);
    if (stats == NULL) {
        return NGX_ERROR;
    }

    /* twice the names, in multiples of 32: a reload adding a few names
     * computes the same size and keeps the counters */

    nslots = ngx_max(2 * stats->names.nelts, NGX_HTTP_EDGE_ORCH_STATS_SLOTS);
    nslots = ngx_align(nslots, NGX_HTTP_EDGE_ORCH_STATS_SLOTS);

    size = sizeof(ngx_http_edge_orch_stats_sh_t)
           + (nslots - 1) * sizeof(ngx_http_edge_orch_fstats_t);

    /* slab pool bookkeeping and the log context */
    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    if (stats->names.nelts) {
        stats->slots = ngx_pcalloc(cf->pool, stats->names.nelts
                                       * sizeof(ngx_http_edge_orch_fstats_t *));
        if (stats->slots == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_edge_orch_zone_find(emcf,
                                     &ngx_http_edge_orch_stats_zone_name)
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "edge_orch_zone name \"%V\" is reserved for the "
                           "module's counters, use another name",
                           &ngx_http_edge_orch_stats_zone_name);
        return NGX_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_edge_orch_stats_zone_name,
                                     size, &ngx_http_edge_orch_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    stats->shm_zone = shm_zone;
    stats->nslots = nslots;

    shm_zone->init = ngx_http_edge_orch_stats_init_zone;
    shm_zone->data = stats;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_stats_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                               len;
    ngx_str_t                           *names;
    ngx_uint_t                           i, j, k, n;
    ngx_slab_pool_t                     *shpool;
    ngx_http_edge_orch_stats_t          *stats;
    ngx_http_edge_orch_stats_sh_t       *sh;
    ngx_http_edge_orch_loc_conf_t      **lp;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    stats = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data != NULL || shm_zone->shm.exists) {
        /* reload with the same size: the counters continue */
        sh = shpool->data;

    } else {
        len = sizeof(ngx_http_edge_orch_stats_sh_t)
              + (stats->nslots - 1) * sizeof(ngx_http_edge_orch_fstats_t);

        sh = ngx_slab_calloc(shpool, len);
        if (sh == NULL) {
            return NGX_ERROR;
        }

        sh->nslots = stats->nslots;
        shpool->data = sh;

        len = sizeof(" in edge_orch_stats zone \"\"")
              + shm_zone->shm.name.len;

        shpool->log_ctx = ngx_slab_alloc(shpool, len);
        if (shpool->log_ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(shpool->log_ctx, " in edge_orch_stats zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    stats->sh = sh;

    /* every name of this configuration gets a slot, before forking */

    names = stats->names.elts;

    for (i = 0; i < stats->names.nelts; i++) {
        stats->slots[i] = ngx_http_edge_orch_stats_slot(stats, &names[i]);

        if (stats->slots[i] == NULL) {
            ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                          "edge_orch: no counter slot left for fragment "
                          "\"%V\", it is not counted", &names[i]);
        }
    }

    lp = stats->locs.elts;

    for (i = 0; i < stats->locs.nelts; i++) {
        fc = lp[i]->fragments->elts;
        n = lp[i]->fragments->nelts;

        for (j = 0; j < n; j++) {
            fc[j].stats = NULL;

            for (k = 0; k < stats->names.nelts; k++) {
                if (names[k].len == fc[j].name.len
                    && ngx_strncmp(names[k].data, fc[j].name.data,
                                   fc[j].name.len) == 0)
                {
                    fc[j].stats = stats->slots[k];
                    break;
                }
            }
        }
    }

    return NGX_OK;
}


static ngx_http_edge_orch_fstats_t *
ngx_http_edge_orch_stats_slot(ngx_http_edge_orch_stats_t *stats,
    ngx_str_t *name)
{
    ngx_str_t                       *names;
    ngx_uint_t                       i, k, used;
    ngx_http_edge_orch_fstats_t     *slot, *free, *stale;
    ngx_http_edge_orch_stats_sh_t   *sh;

    sh = stats->sh;
    names = stats->names.elts;
    free = NULL;
    stale = NULL;

    for (i = 0; i < sh->nslots; i++) {
        slot = &sh->slots[i];

        if (slot->name_len == 0) {
            if (free == NULL) {
                free = slot;
            }

            continue;
        }

        if (slot->name_len == name->len
            && ngx_strncmp(slot->name, name->data, name->len) == 0)
        {
            /* the same name before the reload: its counters continue */
            return slot;
        }

        if (stale != NULL) {
            continue;
        }

        /* a name the new configuration no longer has may be reused */

        used = 0;

        for (k = 0; k < stats->names.nelts; k++) {
            if (names[k].len == slot->name_len
                && ngx_strncmp(names[k].data, slot->name, names[k].len) == 0)
            {
                used = 1;
                break;
            }
        }

        if (!used) {
            stale = slot;
        }
    }

    slot = (free != NULL) ? free : stale;

    if (slot == NULL) {
        return NULL;
    }

    ngx_memzero(slot, sizeof(ngx_http_edge_orch_fstats_t));
    ngx_memcpy(slot->name, name->data, name->len);
    slot->name_len = name->len;

    return slot;
}


void
ngx_http_edge_orch_stats_global(ngx_http_edge_orch_stats_t *stats,
    ngx_uint_t counter, ngx_atomic_int_t n)
{
    if (stats == NULL || stats->sh == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&stats->sh->g[counter], n);
}


ngx_atomic_uint_t
ngx_http_edge_orch_stats_global_value(ngx_http_edge_orch_stats_t *stats,
    ngx_uint_t counter)
{
    if (stats == NULL || stats->sh == NULL) {
        return 0;
    }

    return stats->sh->g[counter];
}


ngx_uint_t
ngx_http_edge_orch_stats_names(ngx_http_edge_orch_stats_t *stats,
    ngx_str_t **names, ngx_http_edge_orch_fstats_t ***slots)
{
    if (stats == NULL || stats->sh == NULL) {
        return 0;
    }

    *names = stats->names.elts;
    *slots = stats->slots;

    return stats->names.nelts;
}


void
ngx_http_edge_orch_stats_request(ngx_http_edge_orch_ctx_t *ctx,
    ngx_uint_t answered)
{
    uint64_t                         d;
    ngx_uint_t                       i, b;
    ngx_atomic_t                    *c;
    ngx_http_edge_orch_frag_t       *fs;
    ngx_http_edge_orch_stats_t      *stats;
    ngx_http_edge_orch_main_conf_t  *emcf;

    /*
     * once per request: when it is answered, or when it ends unanswered;
     * not at all if its fragments were never set up (a bypassed page)
     */

    if (ctx->counted || ctx->nfrags == 0 || ctx->frags[0].conf == NULL) {
        return;
    }

    ctx->counted = 1;

    emcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_edge_orch_module);
    stats = emcf->stats;

    if (stats == NULL || stats->sh == NULL) {
        return;
    }

    c = stats->sh->g;

    (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_G_REQUESTS], 1);

    if (!answered) {
        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_G_ABORTED], 1);

    } else if (ctx->failed != NULL) {
        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_G_FAILED], 1);
    }

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (fs->conf->stats == NULL) {
            continue;
        }

        c = fs->conf->stats->c;

        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_REQUESTS], 1);
        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_OUTCOME
                                       + fs->outcome], 1);

        /*
         * a failure taken over from a concurrent fetch (collapsed) was
         * counted by the request that fetched
         */

        if (fs->resolved && fs->reason != NGX_HTTP_EDGE_ORCH_REASON_NONE
            && fs->cache != NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED)
        {
            (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_ERROR
                                 + ngx_http_edge_orch_stats_kind(fs,
                                                             fs->reason)], 1);
        }

        if (fs->cache != NGX_HTTP_EDGE_ORCH_CACHE_NONE) {
            (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_CACHE
                                           + fs->cache - 1], 1);

            if (fs->cache == NGX_HTTP_EDGE_ORCH_CACHE_STALE) {
                (void) ngx_atomic_fetch_add(
                           &c[fs->outcome == NGX_HTTP_EDGE_ORCH_STALE
                              ? NGX_HTTP_EDGE_ORCH_F_STALE_SIE
                              : NGX_HTTP_EDGE_ORCH_F_STALE_SWR], 1);
            }
        }

        if (!fs->resolved || fs->end < fs->start) {
            continue;
        }

        d = fs->end - fs->start;

        for (b = 0; b < NGX_HTTP_EDGE_ORCH_NBUCKETS - 1; b++) {
            if (d <= ngx_http_edge_orch_buckets[b]) {
                break;
            }
        }

        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_BUCKET + b], 1);
        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_DURATION_SUM],
                                    (ngx_atomic_int_t) d);
        (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_DURATION_COUNT],
                                    1);
    }
}


void
ngx_http_edge_orch_stats_error(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    ngx_atomic_t  *c;

    /* a background refresh failed: its request was answered from stale */

    if (fs->conf->stats == NULL
        || reason == NGX_HTTP_EDGE_ORCH_REASON_NONE)
    {
        return;
    }

    c = fs->conf->stats->c;

    (void) ngx_atomic_fetch_add(&c[NGX_HTTP_EDGE_ORCH_F_ERROR
                         + ngx_http_edge_orch_stats_kind(fs, reason)], 1);
}


static ngx_uint_t
ngx_http_edge_orch_stats_kind(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    switch (reason) {

    case NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT:
        return NGX_HTTP_EDGE_ORCH_E_TIMEOUT;

    case NGX_HTTP_EDGE_ORCH_REASON_STATUS:
        if (fs->status >= 500 && fs->status <= 599) {
            return NGX_HTTP_EDGE_ORCH_E_STATUS_5XX;
        }

        if (fs->status >= 400 && fs->status <= 499) {
            return NGX_HTTP_EDGE_ORCH_E_STATUS_4XX;
        }

        return NGX_HTTP_EDGE_ORCH_E_STATUS_OTHER;

    case NGX_HTTP_EDGE_ORCH_REASON_INVALID:
        return NGX_HTTP_EDGE_ORCH_E_INVALID;

    case NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG:
        return NGX_HTTP_EDGE_ORCH_E_TOO_BIG;

    case NGX_HTTP_EDGE_ORCH_REASON_ENCODING:
        return NGX_HTTP_EDGE_ORCH_E_ENCODING;

    case NGX_HTTP_EDGE_ORCH_REASON_NO_ROUTE:
        return NGX_HTTP_EDGE_ORCH_E_NO_ROUTE;

    default:
        return NGX_HTTP_EDGE_ORCH_E_ERROR;
    }
}
