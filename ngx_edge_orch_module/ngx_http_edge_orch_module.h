
/*
 * Copyright (C) ngx_edge_orch_module authors
 */


#ifndef _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_
#define _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_EDGE_ORCH_MAX_FRAGMENTS     32
#define NGX_HTTP_EDGE_ORCH_MAX_NAME          64
#define NGX_HTTP_EDGE_ORCH_MAX_REGION        64
#define NGX_HTTP_EDGE_ORCH_MAX_UA            1024

#define NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN       16384
#define NGX_HTTP_EDGE_ORCH_MAX_TAG            1024
#define NGX_HTTP_EDGE_ORCH_MAX_TAGS           256


/* zone counters (shared memory, atomics) */
enum {
    NGX_HTTP_EDGE_ORCH_STAT_HITS = 0,
    NGX_HTTP_EDGE_ORCH_STAT_MISSES,
    NGX_HTTP_EDGE_ORCH_STAT_STALE,
    NGX_HTTP_EDGE_ORCH_STAT_COLLAPSED,
    NGX_HTTP_EDGE_ORCH_STAT_REFRESHES,
    NGX_HTTP_EDGE_ORCH_STAT_PASSES,
    NGX_HTTP_EDGE_ORCH_STAT_STORES,
    NGX_HTTP_EDGE_ORCH_STAT_STORE_SKIPPED,
    NGX_HTTP_EDGE_ORCH_STAT_EVICTIONS,
    NGX_HTTP_EDGE_ORCH_STAT_FETCH_ERRORS,
    NGX_HTTP_EDGE_ORCH_STAT_PURGES_HARD,
    NGX_HTTP_EDGE_ORCH_STAT_PURGES_SOFT,
    NGX_HTTP_EDGE_ORCH_STAT_PURGED_TAGS,
    NGX_HTTP_EDGE_ORCH_NSTATS
};


/* global counters in the stats zone (ngx_http_edge_orch_stats.c) */
enum {
    NGX_HTTP_EDGE_ORCH_G_REQUESTS = 0,
    NGX_HTTP_EDGE_ORCH_G_FAILED,             /* answered 502/504 */
    NGX_HTTP_EDGE_ORCH_G_ABORTED,            /* ended without an answer */
    NGX_HTTP_EDGE_ORCH_G_ROUTE_LOOKUPS,
    NGX_HTTP_EDGE_ORCH_G_NO_ROUTE,
    NGX_HTTP_EDGE_ORCH_G_LKG,                /* gauge: workers */
    NGX_HTTP_EDGE_ORCH_G_TRACE_INVALID,
    NGX_HTTP_EDGE_ORCH_G_TRACE_STARTED,
    NGX_HTTP_EDGE_ORCH_NG
};


/* why a fragment failed, as counted: "status" split by class */
enum {
    NGX_HTTP_EDGE_ORCH_E_TIMEOUT = 0,
    NGX_HTTP_EDGE_ORCH_E_STATUS_5XX,
    NGX_HTTP_EDGE_ORCH_E_STATUS_4XX,
    NGX_HTTP_EDGE_ORCH_E_STATUS_OTHER,
    NGX_HTTP_EDGE_ORCH_E_ERROR,
    NGX_HTTP_EDGE_ORCH_E_INVALID,
    NGX_HTTP_EDGE_ORCH_E_TOO_BIG,
    NGX_HTTP_EDGE_ORCH_E_ENCODING,
    NGX_HTTP_EDGE_ORCH_E_NO_ROUTE,
    NGX_HTTP_EDGE_ORCH_NE
};


/* duration histogram: upper bounds in microseconds, then +Inf */
#define NGX_HTTP_EDGE_ORCH_NBUCKETS          12

/* per fragment name counters: offsets into fstats_t.c[] */
#define NGX_HTTP_EDGE_ORCH_F_REQUESTS        0
#define NGX_HTTP_EDGE_ORCH_F_OUTCOME         1      /* + outcome_e, 6 */
#define NGX_HTTP_EDGE_ORCH_F_ERROR           7      /* + E_*, 9 */
#define NGX_HTTP_EDGE_ORCH_F_CACHE           16     /* + cache_status - 1 */
#define NGX_HTTP_EDGE_ORCH_F_STALE_SWR       21
#define NGX_HTTP_EDGE_ORCH_F_STALE_SIE       22
#define NGX_HTTP_EDGE_ORCH_F_BUCKET          23     /* + bucket, 12 */
#define NGX_HTTP_EDGE_ORCH_F_DURATION_SUM    35     /* microseconds */
#define NGX_HTTP_EDGE_ORCH_F_DURATION_COUNT  36
#define NGX_HTTP_EDGE_ORCH_NF                37


/* how a fragment ended up in the response */
typedef enum {
    NGX_HTTP_EDGE_ORCH_PENDING = 0,
    NGX_HTTP_EDGE_ORCH_OK,
    NGX_HTTP_EDGE_ORCH_STALE,
    NGX_HTTP_EDGE_ORCH_FALLBACK,
    NGX_HTTP_EDGE_ORCH_OMITTED,
    NGX_HTTP_EDGE_ORCH_FAILED
} ngx_http_edge_orch_outcome_e;


/* why a fragment failed */
typedef enum {
    NGX_HTTP_EDGE_ORCH_REASON_NONE = 0,
    NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT,
    NGX_HTTP_EDGE_ORCH_REASON_STATUS,
    NGX_HTTP_EDGE_ORCH_REASON_INVALID,
    NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG,
    NGX_HTTP_EDGE_ORCH_REASON_ENCODING,
    NGX_HTTP_EDGE_ORCH_REASON_NO_ROUTE,
    NGX_HTTP_EDGE_ORCH_REASON_ERROR
} ngx_http_edge_orch_reason_e;


/* cache status of a fragment (RFC 9211 Cache-Status) */
typedef enum {
    NGX_HTTP_EDGE_ORCH_CACHE_NONE = 0,   /* no zone or not looked up */
    NGX_HTTP_EDGE_ORCH_CACHE_MISS,       /* fetched; stored if cacheable */
    NGX_HTTP_EDGE_ORCH_CACHE_HIT,
    NGX_HTTP_EDGE_ORCH_CACHE_STALE,      /* stale served (revalidating/error) */
    NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED,  /* waited for another fetch */
    NGX_HTTP_EDGE_ORCH_CACHE_PASS        /* uncacheable: fetched, not stored */
} ngx_http_edge_orch_cache_status_e;


/* what a cache lookup tells the caller to do */
typedef enum {
    NGX_HTTP_EDGE_ORCH_LOOKUP_HIT = 0,
    NGX_HTTP_EDGE_ORCH_LOOKUP_STALE,         /* serve stale, no refresh */
    NGX_HTTP_EDGE_ORCH_LOOKUP_REFRESH,       /* serve stale and refresh */
    NGX_HTTP_EDGE_ORCH_LOOKUP_COLLAPSED,     /* the awaited fetch stored it */
    NGX_HTTP_EDGE_ORCH_LOOKUP_SHARED_FAIL,   /* the awaited fetch failed */
    NGX_HTTP_EDGE_ORCH_LOOKUP_WAIT,          /* another fetch is running */
    NGX_HTTP_EDGE_ORCH_LOOKUP_FETCH,         /* fetch, holding the lock */
    NGX_HTTP_EDGE_ORCH_LOOKUP_PASS           /* fetch, nothing to share */
} ngx_http_edge_orch_lookup_e;


typedef struct ngx_http_edge_orch_routes_s  ngx_http_edge_orch_routes_t;
typedef struct ngx_http_edge_orch_stats_s   ngx_http_edge_orch_stats_t;
typedef struct ngx_http_edge_orch_jwt_conf_s  ngx_http_edge_orch_jwt_conf_t;


/* which edge_orch_jwt* directive: its ngx_command_t offset (jwt.c) */
enum {
    NGX_HTTP_EDGE_ORCH_JWT_CMD_JWT = 0,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_KEY_FILE,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_ALG,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_LEEWAY,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_ISSUER,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_AUDIENCE,
    NGX_HTTP_EDGE_ORCH_JWT_CMD_CLAIM_HEADER
};


/* one fragment name's counters in the stats zone */
typedef struct {
    ngx_atomic_t                   name_len;     /* 0: free slot */
    u_char                         name[NGX_HTTP_EDGE_ORCH_MAX_NAME];
    ngx_atomic_t                   c[NGX_HTTP_EDGE_ORCH_NF];
} ngx_http_edge_orch_fstats_t;


/* what the status page shows of the routing table (one worker's view) */
typedef struct {
    ngx_uint_t                     configured;
    ngx_uint_t                     loaded;
    uint64_t                       generation;
    time_t                         updated_at;   /* 0: unknown */
} ngx_http_edge_orch_routes_info_t;


typedef struct ngx_http_edge_orch_purge_conf_s
    ngx_http_edge_orch_purge_conf_t;
typedef struct ngx_http_edge_orch_pass_conf_s
    ngx_http_edge_orch_pass_conf_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_rbtree_t                   tags;
    ngx_rbtree_node_t              tag_sentinel;
    ngx_queue_t                    tag_lru;

    uint64_t                       seq;          /* fetch starts, purges */
    uint64_t                       floor;        /* seq <= floor: invalid */
    uint64_t                       soft_floor;   /* seq <= it: stale */
    uint64_t                       purges;       /* any purge bumps it */

    ngx_uint_t                     entries;
    ngx_uint_t                     tag_count;
    ngx_uint_t                     locks;        /* nodes with lock_seq */

    ngx_atomic_t                   stats[NGX_HTTP_EDGE_ORCH_NSTATS];
} ngx_http_edge_orch_sh_t;


typedef struct {
    ngx_rbtree_node_t              node;         /* key: 64-bit key hash */
    ngx_queue_t                    queue;

    uint64_t                       seq;          /* fetch start of body */
    uint64_t                       filled;       /* zone seq at store */
    uint64_t                       failed;       /* zone seq at failure */
    uint64_t                       lock_seq;     /* fetch holding lock */
    uint64_t                       checked;      /* sh->purges at check */

    uint64_t                       fresh_until;  /* wall ms */
    uint64_t                       swr_until;
    uint64_t                       sie_until;
    uint64_t                       pass_until;
    uint64_t                       lock_until;
    uint64_t                       retry_after;  /* refresh failed */

    u_char                        *body;         /* body, then tags */
    uint32_t                       body_len;
    uint32_t                       fail_reason;
    uint16_t                       tags_len;
    uint16_t                       key_len;
    unsigned                       tag_state:2;  /* cached tags_state() */

    u_char                         key[1];
} ngx_http_edge_orch_node_t;


typedef struct {
    ngx_rbtree_node_t              node;         /* key: tag hash */
    ngx_queue_t                    queue;
    uint64_t                       hard;         /* seq of last hard purge */
    uint64_t                       soft;         /* seq of last soft purge */
    uint16_t                       len;
    u_char                         tag[1];
} ngx_http_edge_orch_tag_t;


typedef struct {
    ngx_str_t                      name;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_edge_orch_sh_t       *sh;
    ngx_msec_t                     lock_timeout;
    size_t                         max_fragment;

    /* per worker */
    ngx_queue_t                    waiters;      /* frag_t.wait_link */
    ngx_msec_t                     log_next;
    u_char                        *conf_file;
    ngx_uint_t                     conf_line;
} ngx_http_edge_orch_zone_t;


typedef struct {
    ngx_str_t                      key;
    ngx_rbtree_key_t               hash;
    ngx_str_t                      page_tags;    /* checked, not stored */
} ngx_http_edge_orch_ckey_t;


typedef struct {
    ngx_http_edge_orch_lookup_e    action;
    ngx_str_t                      body;         /* copy: hit/stale */
    ngx_str_t                      tags;         /* copy of its tags */
    ngx_str_t                      sie_body;     /* FETCH: stale for errors */
    ngx_str_t                      sie_tags;
    uint64_t                       seq;          /* FETCH/REFRESH: lock seq */
    uint64_t                       wait_seq;     /* WAIT: zone seq now */
    int64_t                        ttl;          /* ms of freshness left */
    ngx_uint_t                     fail_reason;
} ngx_http_edge_orch_lookup_t;


/* what an upstream said about caching its response */
typedef struct {
    ngx_msec_t                     ttl;
    ngx_msec_t                     swr;
    ngx_msec_t                     sie;
    unsigned                       cacheable:1;
} ngx_http_edge_orch_freshness_t;


typedef struct {
    ngx_str_t                      name;
    ngx_http_complex_value_t       uri;
    ngx_str_t                      service;
    ngx_str_t                      upstream;      /* if the table has none */
    ngx_msec_t                     timeout;
    ngx_str_t                      fallback;      /* validated JSON or empty */
    ngx_flag_t                     optional;
    ngx_flag_t                     credentials;   /* Cookie, Authorization */
    ngx_msec_t                     ttl;           /* 0: coalesce only */
    ngx_msec_t                     stale;
    ngx_http_complex_value_t      *key;

    /* per worker: rate limit of failure log lines */
    ngx_msec_t                     log_next;
    ngx_uint_t                     log_suppressed;

    ngx_http_edge_orch_fstats_t   *stats;         /* slot in stats zone */
} ngx_http_edge_orch_fragment_conf_t;


typedef struct {
    ngx_array_t                   *zones;         /* zone_t * */
    ngx_str_t                      routes_path;
    ngx_http_edge_orch_routes_t   *routes;
    u_char                        *routes_file;
    ngx_uint_t                     routes_line;
    ngx_http_edge_orch_stats_t    *stats;
    ngx_int_t                      request_id_index;
    ngx_uint_t                     status;        /* edge_orch_status used */
} ngx_http_edge_orch_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_array_t                   *fragments;     /* fragment_conf_t */
    ngx_http_complex_value_t      *region;
    ngx_http_complex_value_t      *bucket;
    ngx_msec_t                     timeout;
    size_t                         max_fragment_size;
    ngx_str_t                      outcome_header;
    ngx_str_t                      zone_name;
    ngx_http_edge_orch_zone_t     *zone;
    ngx_str_t                      tag_header;
    size_t                         tag_max_len;
    ngx_uint_t                     tags_max;
    ngx_http_complex_value_t      *tags;          /* edge_orch_tags */
    ngx_flag_t                     expose_tags;
    ngx_http_edge_orch_purge_conf_t  *purge;
    ngx_http_edge_orch_pass_conf_t   *pass;
    ngx_str_t                      bypass;        /* edge_orch_bypass */
    ngx_flag_t                     server_timing;
    ngx_flag_t                     trace;
    ngx_http_edge_orch_jwt_conf_t *jwt;           /* edge_orch_jwt* */
    u_char                        *conf_file;
    ngx_uint_t                     conf_line;
} ngx_http_edge_orch_loc_conf_t;


typedef struct ngx_http_edge_orch_ctx_s  ngx_http_edge_orch_ctx_t;


typedef struct {
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_fragment_conf_t  *conf;
    ngx_http_request_t                  *sr;
    ngx_http_post_subrequest_t           ps;
    ngx_event_t                          timer;

    ngx_str_t                            upstream;
    ngx_str_t                            uri;
    ngx_str_t                            args;

    /* collected response body */
    u_char                              *body;
    size_t                               len;
    size_t                               size;

    ngx_uint_t                           status;
    ngx_str_t                            out;         /* JSON to assemble */

    ngx_http_edge_orch_outcome_e         outcome;
    ngx_http_edge_orch_reason_e          reason;

    /* cache */
    ngx_http_edge_orch_ckey_t            ckey;
    ngx_http_edge_orch_cache_status_e    cache;
    uint64_t                             lock_seq;    /* fetch lock held */
    uint64_t                             fetch_seq;   /* zone seq at start */
    uint64_t                             wait_seq;
    int64_t                              ttl;         /* ms left, for hits */
    ngx_event_t                          poll;
    ngx_msec_t                           poll_delay;
    ngx_queue_t                          wait_link;
    ngx_str_t                            sie_body;    /* stale for errors */
    ngx_str_t                            sie_tags;
    ngx_str_t                            tags;        /* this fragment's */
    ngx_str_t                            resp_tags;   /* from upstream */

    /* what the upstream said */
    ngx_int_t                            max_age;     /* -1: none */
    ngx_int_t                            cc_swr;
    ngx_int_t                            cc_sie;

    unsigned                             resolved:1;  /* outcome decided */
    unsigned                             refresh:1;   /* background refresh */
    unsigned                             waiting:1;
    unsigned                             stored:1;
    unsigned                             uncacheable:1;
    unsigned                             s_maxage:1;
    ngx_uint_t                           ntags;
    ngx_uint_t                           tags_dropped;
    unsigned                             finished:1;  /* subrequest ended */
    unsigned                             last:1;      /* saw last buffer */
    unsigned                             too_big:1;
    unsigned                             encoded:1;

    /* observability: monotonic microseconds, child span id */
    uint64_t                             start;
    uint64_t                             end;
    u_char                               span_id[16];
} ngx_http_edge_orch_frag_t;


struct ngx_http_edge_orch_ctx_s {
    ngx_http_request_t                  *request;
    ngx_http_edge_orch_loc_conf_t       *conf;

    ngx_str_t                            region;
    ngx_str_t                            group;
    ngx_str_t                            device;
    ngx_str_t                            bucket;
    uint64_t                             generation;

    ngx_http_edge_orch_frag_t           *frags;
    ngx_uint_t                           nfrags;
    ngx_uint_t                           pending;
    ngx_http_edge_orch_frag_t           *failed;      /* first failed one */

    ngx_list_t                          *sr_headers;  /* filtered headers */
    ngx_list_t                          *sr_headers_cred;  /* + Cookie... */
    ngx_str_t                            page_tags;   /* edge_orch_tags */
    ngx_str_t                            payload;     /* pass mode */

    unsigned                             waiting:1;
    unsigned                             responded:1;

    /* observability */
    ngx_str_t                            request_id;
    u_char                               trace_id[32];
    u_char                               trace_flags[2];
    unsigned                             trace:1;      /* trace_id set */
    unsigned                             trace_in:1;   /* the client's */
    unsigned                             counted:1;    /* in the stats */
};


/* a fragment's response is still wanted (a refresh is wanted after the
 * fragment was answered from stale) */
#define ngx_http_edge_orch_capturing(fs)                                      \
    (!(fs)->finished && (!(fs)->resolved || (fs)->refresh))


extern ngx_module_t  ngx_http_edge_orch_module;


/* routes.c */
ngx_int_t ngx_http_edge_orch_routes_init_conf(ngx_conf_t *cf,
    ngx_http_edge_orch_main_conf_t *emcf);
ngx_int_t ngx_http_edge_orch_routes_init_process(ngx_cycle_t *cycle,
    ngx_http_edge_orch_main_conf_t *emcf);
void ngx_http_edge_orch_routes_exit_process(
    ngx_http_edge_orch_main_conf_t *emcf);
ngx_int_t ngx_http_edge_orch_routes_begin(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
ngx_int_t ngx_http_edge_orch_routes_lookup(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_str_t *service, ngx_str_t *upstream);
uint64_t ngx_http_edge_orch_routes_generation(ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_routes_static(ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_name_ok(u_char *p, size_t len, ngx_uint_t star);

/* handler.c */
ngx_int_t ngx_http_edge_orch_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_post_subrequest(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
ngx_http_edge_orch_frag_t *ngx_http_edge_orch_fragment_of(
    ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_fragment_failed(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);
void ngx_http_edge_orch_cleanup(void *data);

/* freshness.c */
void ngx_http_edge_orch_freshness(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_freshness_t *fr);
ngx_int_t ngx_http_edge_orch_capture_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs);

/* filter.c */
ngx_int_t ngx_http_edge_orch_filter_init(ngx_conf_t *cf);

/* assemble.c */
ngx_int_t ngx_http_edge_orch_json_validate(u_char *data, size_t len,
    u_char *err, size_t errlen);
ngx_int_t ngx_http_edge_orch_send_response(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
u_char *ngx_http_edge_orch_outcome_string(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len);
const char *ngx_http_edge_orch_reason_name(ngx_http_edge_orch_reason_e r);
u_char *ngx_http_edge_orch_cache_status(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len, ngx_uint_t rfc);
ngx_int_t ngx_http_edge_orch_response_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
ngx_int_t ngx_http_edge_orch_document(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_chain_t **chain, off_t *length);

/* pass.c */
char *ngx_http_edge_orch_pass_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_edge_orch_pass(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_chain_t *doc, off_t len);
ngx_http_edge_orch_ctx_t *ngx_http_edge_orch_find_ctx(ngx_http_request_t *r);

/* cache.c */
char *ngx_http_edge_orch_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_edge_orch_zone_t *ngx_http_edge_orch_zone_find(
    ngx_http_edge_orch_main_conf_t *emcf, ngx_str_t *name);
uint64_t ngx_http_edge_orch_now(void);
void ngx_http_edge_orch_cache_key(ngx_http_edge_orch_ckey_t *ck);
ngx_int_t ngx_http_edge_orch_cache_lookup(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, ngx_pool_t *pool, ngx_msec_t lock_ms,
    uint64_t waiting, ngx_http_edge_orch_lookup_t *lk);
ngx_int_t ngx_http_edge_orch_cache_store(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq, ngx_str_t *body,
    ngx_str_t *tags, ngx_http_edge_orch_freshness_t *fr);
void ngx_http_edge_orch_cache_fail(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq, ngx_uint_t reason);
void ngx_http_edge_orch_cache_release(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq);
ngx_int_t ngx_http_edge_orch_cache_purge(ngx_http_edge_orch_zone_t *zone,
    ngx_array_t *tags, ngx_uint_t soft, uint64_t *gen);
void ngx_http_edge_orch_stat(ngx_http_edge_orch_zone_t *zone,
    ngx_uint_t stat);
void ngx_http_edge_orch_stat_add(ngx_http_edge_orch_zone_t *zone,
    ngx_uint_t stat, ngx_uint_t n);

/* purge.c */
char *ngx_http_edge_orch_purge(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edge_orch_purge_merge(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *conf);
ngx_int_t ngx_http_edge_orch_purge_handler(ngx_http_request_t *r);

/* tags.c */
ngx_int_t ngx_http_edge_orch_tags_append(ngx_pool_t *pool, ngx_str_t *dst,
    u_char *p, size_t len, u_char sep, size_t max_tag, ngx_uint_t max_tags,
    ngx_uint_t *ntags, ngx_uint_t *dropped);
ngx_int_t ngx_http_edge_orch_tags_header(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
u_char ngx_http_edge_orch_tag_sep(ngx_str_t *header);

/* variables.c */
ngx_int_t ngx_http_edge_orch_add_variables(ngx_conf_t *cf);

/* stats.c */
ngx_int_t ngx_http_edge_orch_stats_add_name(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_http_edge_orch_stats_add_location(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *elcf);
ngx_int_t ngx_http_edge_orch_stats_init_conf(ngx_conf_t *cf,
    ngx_http_edge_orch_main_conf_t *emcf);
void ngx_http_edge_orch_stats_global(ngx_http_edge_orch_stats_t *stats,
    ngx_uint_t counter, ngx_atomic_int_t n);
ngx_atomic_uint_t ngx_http_edge_orch_stats_global_value(
    ngx_http_edge_orch_stats_t *stats, ngx_uint_t counter);
void ngx_http_edge_orch_stats_request(ngx_http_edge_orch_ctx_t *ctx,
    ngx_uint_t answered);
void ngx_http_edge_orch_stats_error(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);
ngx_uint_t ngx_http_edge_orch_stats_names(ngx_http_edge_orch_stats_t *stats,
    ngx_str_t **names, ngx_http_edge_orch_fstats_t ***slots);
extern const uint64_t  ngx_http_edge_orch_buckets[];
extern const char     *ngx_http_edge_orch_error_names[];
extern const char     *ngx_http_edge_orch_outcome_names[];
extern const char     *ngx_http_edge_orch_cache_names[];

/* status.c */
char *ngx_http_edge_orch_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* trace.c */
uint64_t ngx_http_edge_orch_usec(void);
ngx_table_elt_t *ngx_http_edge_orch_header_next(ngx_http_request_t *r,
    ngx_str_t *name, ngx_list_part_t **part, ngx_uint_t *i);
ngx_int_t ngx_http_edge_orch_trace_init(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
ngx_uint_t ngx_http_edge_orch_trace_skip(ngx_table_elt_t *h);
ngx_int_t ngx_http_edge_orch_trace_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_list_t *headers);
ngx_int_t ngx_http_edge_orch_trace_fragment(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_http_request_t *sr);
ngx_int_t ngx_http_edge_orch_trace_response(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
ngx_int_t ngx_http_edge_orch_add_header(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value);

/* routes.c (observability) */
void ngx_http_edge_orch_routes_info(ngx_http_request_t *r,
    ngx_http_edge_orch_routes_info_t *info);

/* jwt.c */
char *ngx_http_edge_orch_jwt_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edge_orch_jwt_merge(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *prev, ngx_http_edge_orch_loc_conf_t *conf);
ngx_int_t ngx_http_edge_orch_jwt_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_edge_orch_jwt_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_ */
