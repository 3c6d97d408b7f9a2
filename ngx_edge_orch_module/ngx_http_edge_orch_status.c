
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * edge_orch_status: the counters of the stats zone and of every
 * edge_orch_zone, the routing table's state, as JSON (default) or in the
 * Prometheus text exposition format 0.0.4 (?format=prometheus, or an Accept
 * header that prefers text/plain to application/json).  Reading costs a
 * few atomic loads per counter and one short lock per cache zone for its
 * memory gauges; nothing on the request path waits for it.
 */


#include "ngx_http_edge_orch_module.h"


#define NGX_HTTP_EDGE_ORCH_STATUS_JSON   0
#define NGX_HTTP_EDGE_ORCH_STATUS_PROM   1

#define NGX_HTTP_EDGE_ORCH_LINE          512     /* longest line, no names */
#define NGX_HTTP_EDGE_ORCH_CHUNK         4096

/* zone_families[]: the purges family and how many there are */
#define NGX_HTTP_EDGE_ORCH_ZONE_PURGES     10
#define NGX_HTTP_EDGE_ORCH_ZONE_FAMILIES   17


typedef struct {
    ngx_pool_t                    *pool;
    ngx_chain_t                   *out;
    ngx_chain_t                  **last;
    ngx_buf_t                     *b;
    off_t                          len;
} ngx_http_edge_orch_writer_t;


typedef struct {
    const char                    *name;
    const char                    *type;
    const char                    *labels;        /* after zone="..." */
    const char                    *help;
} ngx_http_edge_orch_family_t;


typedef struct {
    ngx_str_t                     *names;
    ngx_http_edge_orch_fstats_t  **slots;
    ngx_uint_t                     n;
} ngx_http_edge_orch_frag_view_t;


/* what the page shows of one cache zone, read under its mutex */
typedef struct {
    ngx_str_t                      json;          /* escaped names */
    ngx_str_t                      label;
    size_t                         size;
    size_t                         free;
    ngx_uint_t                     entries;
    ngx_uint_t                     tags;
    ngx_uint_t                     locks;
    ngx_atomic_uint_t              stats[NGX_HTTP_EDGE_ORCH_NSTATS];
    ngx_atomic_uint_t              values[NGX_HTTP_EDGE_ORCH_ZONE_FAMILIES];
} ngx_http_edge_orch_zone_view_t;


static ngx_int_t ngx_http_edge_orch_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_status_format(ngx_http_request_t *r,
    ngx_uint_t *format);
static void ngx_http_edge_orch_accept_q(u_char *p, u_char *last,
    ngx_int_t *text, ngx_int_t *json);
static ngx_int_t ngx_http_edge_orch_status_json(ngx_http_request_t *r,
    ngx_http_edge_orch_writer_t *w);
static ngx_int_t ngx_http_edge_orch_status_prom(ngx_http_request_t *r,
    ngx_http_edge_orch_writer_t *w);
static ngx_int_t ngx_http_edge_orch_json_counters(
    ngx_http_edge_orch_writer_t *w, const char *key, const char **names,
    ngx_uint_t n, ngx_atomic_t *c);
static ngx_int_t ngx_http_edge_orch_prom_family(
    ngx_http_edge_orch_writer_t *w, const char *name, const char *type,
    const char *help);
static ngx_int_t ngx_http_edge_orch_prom_labelled(
    ngx_http_edge_orch_writer_t *w, ngx_http_edge_orch_frag_view_t *fv,
    const char *family, const char *help, const char *label,
    const char **values, ngx_uint_t n, ngx_uint_t offset);
static ngx_http_edge_orch_zone_view_t *ngx_http_edge_orch_zone_views(
    ngx_http_request_t *r, ngx_uint_t *n);
static ngx_int_t ngx_http_edge_orch_escape(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *json, ngx_str_t *label);
static ngx_int_t ngx_http_edge_orch_wprintf(ngx_http_edge_orch_writer_t *w,
    size_t max, const char *fmt, ...);


/* index: NGX_HTTP_EDGE_ORCH_STAT_* */
static const char  *ngx_http_edge_orch_zone_stat_names[] = {
    "hits", "misses", "stale", "collapsed", "refreshes", "passes", "stores",
    "store_skipped", "evictions", "fetch_errors", "purges_hard",
    "purges_soft", "purged_tags"
};


/*
 * Prometheus families of a cache zone, in the order of zone_view_t.values:
 * the NGX_HTTP_EDGE_ORCH_STAT_* counters up to FETCH_ERRORS, then purges
 * (hard here, soft added), purged tags and the gauges
 */
static ngx_http_edge_orch_family_t  ngx_http_edge_orch_zone_families[] = {
    { "edge_orch_cache_hits_total", "counter", "",
      "Fragments answered fresh from the zone." },
    { "edge_orch_cache_misses_total", "counter", "",
      "Fragments fetched holding the zone's fetch lock." },
    { "edge_orch_cache_stale_total", "counter", "",
      "Fragments answered stale while revalidating or backing off." },
    { "edge_orch_cache_collapsed_total", "counter", "",
      "Fragments answered by a concurrent fetch (coalesced)." },
    { "edge_orch_cache_refreshes_total", "counter", "",
      "Background refreshes started (stale-while-revalidate)." },
    { "edge_orch_cache_passes_total", "counter", "",
      "Fragments fetched without sharing (uncacheable or no room)." },
    { "edge_orch_cache_stores_total", "counter", "",
      "Bodies stored in the zone." },
    { "edge_orch_cache_store_skipped_total", "counter", "",
      "Fetched bodies not stored (uncacheable, too big, no room)." },
    { "edge_orch_cache_evictions_total", "counter", "",
      "Entries evicted to make room (LRU)." },
    { "edge_orch_cache_fetch_errors_total", "counter", "",
      "Fetches of the zone that failed." },
    { "edge_orch_purges_total", "counter", ",mode=\"hard\"",
      "Purge requests by mode." },
    { "edge_orch_purged_tags_total", "counter", "",
      "Tags named in purge requests." },
    { "edge_orch_zone_size_bytes", "gauge", "",
      "Size of the shared memory zone." },
    { "edge_orch_zone_free_bytes", "gauge", "",
      "Free pages of the zone, in bytes." },
    { "edge_orch_zone_entries", "gauge", "",
      "Fragment entries in the zone." },
    { "edge_orch_zone_tag_records", "gauge", "",
      "Tag purge records in the zone." },
    { "edge_orch_zone_fetch_locks", "gauge", "",
      "Fetch locks held (coalesced fetches running)." }
};


static const char  *ngx_http_edge_orch_stale_names[] = {
    "revalidate", "error"
};


/* upper bounds of the duration buckets, as Prometheus and JSON labels */
static const char  *ngx_http_edge_orch_le_seconds[] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf"
};

static const char  *ngx_http_edge_orch_le_ms[] = {
    "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
    "10000", "+Inf"
};


static ngx_str_t  ngx_http_edge_orch_accept = ngx_string("Accept");
static ngx_str_t  ngx_http_edge_orch_json_ctype =
    ngx_string("application/json");
static ngx_str_t  ngx_http_edge_orch_prom_ctype =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");


char *
ngx_http_edge_orch_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_edge_orch_main_conf_t  *emcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_edge_orch_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_edge_orch_status_handler;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edge_orch_module);
    emcf->status = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_edge_orch_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_uint_t                    format;
    ngx_http_edge_orch_writer_t   w;

    static ngx_str_t  cache_control = ngx_string("Cache-Control");
    static ngx_str_t  no_store = ngx_string("no-store");
    static ngx_str_t  vary = ngx_string("Vary");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_edge_orch_status_format(r, &format) != NGX_OK) {
        return NGX_HTTP_BAD_REQUEST;
    }

    ngx_memzero(&w, sizeof(ngx_http_edge_orch_writer_t));
    w.pool = r->pool;
    w.last = &w.out;

    rc = (format == NGX_HTTP_EDGE_ORCH_STATUS_PROM)
         ? ngx_http_edge_orch_status_prom(r, &w)
         : ngx_http_edge_orch_status_json(r, &w);

    if (rc != NGX_OK || w.b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w.b->last_buf = (r == r->main) ? 1 : 0;
    w.b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = w.len;

    if (format == NGX_HTTP_EDGE_ORCH_STATUS_PROM) {
        r->headers_out.content_type = ngx_http_edge_orch_prom_ctype;

    } else {
        r->headers_out.content_type = ngx_http_edge_orch_json_ctype;
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_edge_orch_add_header(r, &cache_control, &no_store) != NGX_OK
        || ngx_http_edge_orch_add_header(r, &vary, &ngx_http_edge_orch_accept)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, w.out);
}


static ngx_int_t
ngx_http_edge_orch_status_format(ngx_http_request_t *r, ngx_uint_t *format)
{
    ngx_int_t         text, json;
    ngx_str_t         arg;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    *format = NGX_HTTP_EDGE_ORCH_STATUS_JSON;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {

        if (arg.len == 4 && ngx_strncmp(arg.data, "json", 4) == 0) {
            return NGX_OK;
        }

        if (arg.len == 10 && ngx_strncmp(arg.data, "prometheus", 10) == 0) {
            *format = NGX_HTTP_EDGE_ORCH_STATUS_PROM;
            return NGX_OK;
        }

        return NGX_ERROR;
    }

    /*
     * Accept: the most specific range matching each type gives its q;
     * text/plain must be preferred strictly, JSON wins ties ("*" + "/" + "*")
     */

    text = -1;
    json = -1;

    part = NULL;

    while ((h = ngx_http_edge_orch_header_next(r, &ngx_http_edge_orch_accept,
                                               &part, &i))
           != NULL)
    {
        ngx_http_edge_orch_accept_q(h->value.data,
                                    h->value.data + h->value.len,
                                    &text, &json);
    }

    /* text/json hold specificity * 10000 + q (q in thousandths) */

    if (text >= 0 && (text % 10000) > (json < 0 ? 0 : json % 10000)) {
        *format = NGX_HTTP_EDGE_ORCH_STATUS_PROM;
    }

    return NGX_OK;
}


static void
ngx_http_edge_orch_accept_q(u_char *p, u_char *last, ngx_int_t *text,
    ngx_int_t *json)
{
    u_char     *range, *range_end, *v;
    ngx_int_t   q, tspec, jspec, frac, digits;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        range = p;

        while (p < last && *p != ';' && *p != ',' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        range_end = p;
        q = 1000;

        /* parameters: only q matters */

        while (p < last && *p != ',') {

            if (*p == ';') {
                p++;

                while (p < last && (*p == ' ' || *p == '\t')) {
                    p++;
                }

                if (last - p >= 2 && (*p == 'q' || *p == 'Q') && p[1] == '=')
                {
                    v = p + 2;
                    q = 0;

                    if (v < last && *v >= '0' && *v <= '1') {
                        q = (*v++ - '0') * 1000;

                        if (v < last && *v == '.') {
                            v++;
                            frac = 100;

                            for (digits = 0;
                                 v < last && *v >= '0' && *v <= '9'
                                 && digits < 3;
                                 v++, digits++)
                            {
                                q += (*v - '0') * frac;
                                frac /= 10;
                            }
                        }

                        if (q > 1000) {
                            q = 1000;
                        }
                    }

                    p = v;
                    continue;
                }
            }

            p++;
        }

        tspec = 0;
        jspec = 0;

        if (range_end - range == 3 && ngx_strncmp(range, "*/*", 3) == 0) {
            tspec = 1;
            jspec = 1;

        } else if (range_end - range == 6
                   && ngx_strncasecmp(range, (u_char *) "text/*", 6) == 0)
        {
            tspec = 2;

        } else if (range_end - range == 10
                   && ngx_strncasecmp(range, (u_char *) "text/plain", 10)
                      == 0)
        {
            tspec = 3;

        } else if (range_end - range == 13
                   && ngx_strncasecmp(range, (u_char *) "application/*", 13)
                      == 0)
        {
            jspec = 2;

        } else if (range_end - range == 16
                   && ngx_strncasecmp(range, (u_char *) "application/json",
                                      16) == 0)
        {
            jspec = 3;
        }

        if (tspec && tspec * 10000 + q > *text
            && tspec >= *text / 10000)
        {
            *text = tspec * 10000 + q;
        }

        if (jspec && jspec * 10000 + q > *json
            && jspec >= *json / 10000)
        {
            *json = jspec * 10000 + q;
        }
    }
}


static ngx_int_t
ngx_http_edge_orch_status_json(ngx_http_request_t *r,
    ngx_http_edge_orch_writer_t *w)
{
    time_t                             now;
    uint64_t                           sum;
    ngx_uint_t                         i, k, nz, first;
    ngx_atomic_t                      *c;
    ngx_atomic_uint_t                  cum;
    ngx_http_edge_orch_stats_t        *stats;
    ngx_http_edge_orch_zone_view_t    *zv;
    ngx_http_edge_orch_frag_view_t     fv;
    ngx_http_edge_orch_main_conf_t    *emcf;
    ngx_http_edge_orch_routes_info_t   ri;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);
    stats = emcf->stats;
    now = ngx_time();

    ngx_http_edge_orch_routes_info(r, &ri);

#define ngx_http_edge_orch_g(counter)                                         \
    ngx_http_edge_orch_stats_global_value(stats, NGX_HTTP_EDGE_ORCH_G_##counter)

    if (ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
            "{\"nginx_version\":\"%s\",\"time\":%T,"
            "\"requests\":{\"total\":%uA,\"failed\":%uA,\"aborted\":%uA},"
            "\"tracing\":{\"traceparent_invalid\":%uA,"
            "\"traces_started\":%uA},",
            NGINX_VERSION, now, ngx_http_edge_orch_g(REQUESTS),
            ngx_http_edge_orch_g(FAILED), ngx_http_edge_orch_g(ABORTED),
            ngx_http_edge_orch_g(TRACE_INVALID),
            ngx_http_edge_orch_g(TRACE_STARTED))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
            "\"routes\":{\"configured\":%s,\"loaded\":%s,"
            "\"generation\":%uL,\"updated_at\":%T,\"age_seconds\":%T,"
            "\"lookups\":%uA,\"no_route\":%uA,"
            "\"last_known_good_workers\":%uA},",
            ri.configured ? "true" : "false",
            ri.loaded ? "true" : "false", ri.generation, ri.updated_at,
            ri.updated_at && now > ri.updated_at ? now - ri.updated_at : 0,
            ngx_http_edge_orch_g(ROUTE_LOOKUPS),
            ngx_http_edge_orch_g(NO_ROUTE), ngx_http_edge_orch_g(LKG))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#undef ngx_http_edge_orch_g

    /* zones */

    zv = ngx_http_edge_orch_zone_views(r, &nz);
    if (zv == NULL && nz) {
        return NGX_ERROR;
    }

    if (ngx_http_edge_orch_wprintf(w, 16, "\"zones\":{") != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < nz; i++) {
        if (ngx_http_edge_orch_wprintf(w,
                NGX_HTTP_EDGE_ORCH_LINE + zv[i].json.len,
                "%s\"%V\":{\"size\":%uz,\"free\":%uz,\"entries\":%ui,"
                "\"tag_records\":%ui,\"fetch_locks\":%ui",
                i ? "," : "", &zv[i].json, zv[i].size, zv[i].free,
                zv[i].entries, zv[i].tags, zv[i].locks)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (k = 0; k < NGX_HTTP_EDGE_ORCH_NSTATS; k++) {
            if (ngx_http_edge_orch_wprintf(w, 64, ",\"%s\":%uA",
                                       ngx_http_edge_orch_zone_stat_names[k],
                                       zv[i].stats[k])
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_http_edge_orch_wprintf(w, 4, "}") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* fragments */

    if (ngx_http_edge_orch_wprintf(w, 32, "},\"fragments\":{") != NGX_OK) {
        return NGX_ERROR;
    }

    fv.n = ngx_http_edge_orch_stats_names(stats, &fv.names, &fv.slots);
    first = 1;

    for (i = 0; i < fv.n; i++) {
        if (fv.slots[i] == NULL) {
            continue;
        }

        c = fv.slots[i]->c;
        sum = c[NGX_HTTP_EDGE_ORCH_F_DURATION_SUM];

        if (ngx_http_edge_orch_wprintf(w,
                NGX_HTTP_EDGE_ORCH_LINE + fv.names[i].len,
                "%s\"%V\":{\"requests\":%uA",
                first ? "" : ",", &fv.names[i],
                c[NGX_HTTP_EDGE_ORCH_F_REQUESTS])
            != NGX_OK
            || ngx_http_edge_orch_json_counters(w, "outcomes",
                   ngx_http_edge_orch_outcome_names, 6,
                   &c[NGX_HTTP_EDGE_ORCH_F_OUTCOME])
               != NGX_OK
            || ngx_http_edge_orch_json_counters(w, "errors",
                   ngx_http_edge_orch_error_names, NGX_HTTP_EDGE_ORCH_NE,
                   &c[NGX_HTTP_EDGE_ORCH_F_ERROR])
               != NGX_OK
            || ngx_http_edge_orch_json_counters(w, "cache",
                   ngx_http_edge_orch_cache_names, 5,
                   &c[NGX_HTTP_EDGE_ORCH_F_CACHE])
               != NGX_OK
            || ngx_http_edge_orch_json_counters(w, "stale",
                   ngx_http_edge_orch_stale_names, 2,
                   &c[NGX_HTTP_EDGE_ORCH_F_STALE_SWR])
               != NGX_OK
            || ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                   ",\"duration_ms\":{\"count\":%uA,\"sum\":%uL.%03uL,"
                   "\"le\":{",
                   c[NGX_HTTP_EDGE_ORCH_F_DURATION_COUNT],
                   sum / 1000, sum % 1000)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
        cum = 0;

        for (k = 0; k < NGX_HTTP_EDGE_ORCH_NBUCKETS; k++) {
            cum += c[NGX_HTTP_EDGE_ORCH_F_BUCKET + k];

            if (ngx_http_edge_orch_wprintf(w, 64, "%s\"%s\":%uA",
                                           k ? "," : "",
                                           ngx_http_edge_orch_le_ms[k], cum)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_http_edge_orch_wprintf(w, 8, "}}}") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_edge_orch_wprintf(w, 8, "}}\n");
}


static ngx_int_t
ngx_http_edge_orch_json_counters(ngx_http_edge_orch_writer_t *w,
    const char *key, const char **names, ngx_uint_t n, ngx_atomic_t *c)
{
    ngx_uint_t  k;

    /* ,"key":{"name":N,...} */

    if (ngx_http_edge_orch_wprintf(w, 64, ",\"%s\":{", key) != NGX_OK) {
        return NGX_ERROR;
    }

    for (k = 0; k < n; k++) {
        if (ngx_http_edge_orch_wprintf(w, 64, "%s\"%s\":%uA", k ? "," : "",
                                       names[k], c[k])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_edge_orch_wprintf(w, 4, "}");
}


static ngx_int_t
ngx_http_edge_orch_status_prom(ngx_http_request_t *r,
    ngx_http_edge_orch_writer_t *w)
{
    time_t                             now;
    uint64_t                           sum;
    ngx_uint_t                         i, k, nz;
    ngx_atomic_t                      *c;
    ngx_atomic_uint_t                  cum;
    ngx_http_edge_orch_stats_t        *stats;
    ngx_http_edge_orch_zone_view_t    *zv;
    ngx_http_edge_orch_frag_view_t     fv;
    ngx_http_edge_orch_main_conf_t    *emcf;
    ngx_http_edge_orch_routes_info_t   ri;

    static ngx_http_edge_orch_family_t  globals[] = {
        { "edge_orch_requests_total", "counter", "",
          "Orchestrated requests (answered or not)." },
        { "edge_orch_requests_failed_total", "counter", "",
          "Orchestrated requests answered 502/504 (a required fragment "
          "failed)." },
        { "edge_orch_requests_aborted_total", "counter", "",
          "Orchestrated requests that ended without an answer (client "
          "closed, internal error)." },
        { "edge_orch_routes_lookups_total", "counter", "",
          "Routing table lookups (one per fragment, with edge_orch_routes)." },
        { "edge_orch_routes_no_route_total", "counter", "",
          "Routing table lookups that found no route." },
        { "edge_orch_routes_last_known_good_workers", "gauge", "",
          "Workers serving a last-known-good routing table (the table "
          "is unreadable)." },
        { "edge_orch_traceparent_invalid_total", "counter", "",
          "Requests whose traceparent was invalid and not forwarded." },
        { "edge_orch_traces_started_total", "counter", "",
          "Traces started by edge_orch_trace (no valid traceparent)." }
    };

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);
    stats = emcf->stats;
    now = ngx_time();

    /* in the order of NGX_HTTP_EDGE_ORCH_G_* */

    for (k = 0; k < NGX_HTTP_EDGE_ORCH_NG; k++) {
        if (ngx_http_edge_orch_prom_family(w, globals[k].name,
                                           globals[k].type, globals[k].help)
            != NGX_OK
            || ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                   "%s %uA\n", globals[k].name,
                   ngx_http_edge_orch_stats_global_value(stats, k))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* routing table */

    ngx_http_edge_orch_routes_info(r, &ri);

    if (ri.loaded) {
        if (ngx_http_edge_orch_prom_family(w, "edge_orch_routes_generation",
                "gauge", "Generation of the routing table in use.")
            != NGX_OK
            || ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                   "edge_orch_routes_generation %uL\n", ri.generation)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ri.loaded && ri.updated_at) {
        if (ngx_http_edge_orch_prom_family(w,
                "edge_orch_routes_updated_timestamp_seconds", "gauge",
                "When the routing table in use was written (unix time).")
            != NGX_OK
            || ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                   "edge_orch_routes_updated_timestamp_seconds %T\n",
                   ri.updated_at)
               != NGX_OK
            || ngx_http_edge_orch_prom_family(w,
                   "edge_orch_routes_age_seconds", "gauge",
                   "Seconds since the routing table in use was written.")
               != NGX_OK
            || ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                   "edge_orch_routes_age_seconds %T\n",
                   now > ri.updated_at ? now - ri.updated_at : 0)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* cache zones: one family at a time, every zone in it */

    zv = ngx_http_edge_orch_zone_views(r, &nz);
    if (zv == NULL && nz) {
        return NGX_ERROR;
    }

    for (k = 0; nz && k < NGX_HTTP_EDGE_ORCH_ZONE_FAMILIES; k++) {
        if (ngx_http_edge_orch_prom_family(w,
                ngx_http_edge_orch_zone_families[k].name,
                ngx_http_edge_orch_zone_families[k].type,
                ngx_http_edge_orch_zone_families[k].help)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (i = 0; i < nz; i++) {
            if (ngx_http_edge_orch_wprintf(w,
                    NGX_HTTP_EDGE_ORCH_LINE + 2 * zv[i].label.len,
                    "%s{zone=\"%V\"%s} %uA\n",
                    ngx_http_edge_orch_zone_families[k].name, &zv[i].label,
                    ngx_http_edge_orch_zone_families[k].labels,
                    zv[i].values[k])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            /* the one family with two series per zone */

            if (k == NGX_HTTP_EDGE_ORCH_ZONE_PURGES
                && ngx_http_edge_orch_wprintf(w,
                       NGX_HTTP_EDGE_ORCH_LINE + zv[i].label.len,
                       "%s{zone=\"%V\",mode=\"soft\"} %uA\n",
                       ngx_http_edge_orch_zone_families[k].name,
                       &zv[i].label,
                       zv[i].stats[NGX_HTTP_EDGE_ORCH_STAT_PURGES_SOFT])
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /* fragments: names are plain (A-Z a-z 0-9 _ . - :), no escaping */

    fv.n = ngx_http_edge_orch_stats_names(stats, &fv.names, &fv.slots);

    if (fv.n == 0) {
        return NGX_OK;
    }

    if (ngx_http_edge_orch_prom_family(w,
            "edge_orch_fragment_requests_total", "counter",
            "Orchestrated requests that included the fragment.")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < fv.n; i++) {
        if (fv.slots[i] != NULL
            && ngx_http_edge_orch_wprintf(w,
                   NGX_HTTP_EDGE_ORCH_LINE + fv.names[i].len,
                   "edge_orch_fragment_requests_total{fragment=\"%V\"} %uA\n",
                   &fv.names[i], fv.slots[i]->c[NGX_HTTP_EDGE_ORCH_F_REQUESTS])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_edge_orch_prom_labelled(w, &fv,
            "edge_orch_fragment_outcomes_total",
            "How the fragment ended up in the response.", "outcome",
            ngx_http_edge_orch_outcome_names, 6, NGX_HTTP_EDGE_ORCH_F_OUTCOME)
        != NGX_OK
        || ngx_http_edge_orch_prom_labelled(w, &fv,
               "edge_orch_fragment_errors_total",
               "Fragment failures by reason, background refreshes "
               "included.", "reason",
               ngx_http_edge_orch_error_names, NGX_HTTP_EDGE_ORCH_NE,
               NGX_HTTP_EDGE_ORCH_F_ERROR)
           != NGX_OK
        || ngx_http_edge_orch_prom_labelled(w, &fv,
               "edge_orch_fragment_cache_total",
               "Cache results of the fragment (with a zone).", "result",
               ngx_http_edge_orch_cache_names, 5, NGX_HTTP_EDGE_ORCH_F_CACHE)
           != NGX_OK
        || ngx_http_edge_orch_prom_labelled(w, &fv,
               "edge_orch_fragment_stale_total",
               "Stale bodies served: while revalidating, or in place of a "
               "failed fetch.", "reason",
               ngx_http_edge_orch_stale_names, 2,
               NGX_HTTP_EDGE_ORCH_F_STALE_SWR)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_edge_orch_prom_family(w,
            "edge_orch_fragment_duration_seconds", "histogram",
            "Time from the start of the fragment to its resolution.")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < fv.n; i++) {
        if (fv.slots[i] == NULL) {
            continue;
        }

        c = fv.slots[i]->c;
        cum = 0;

        for (k = 0; k < NGX_HTTP_EDGE_ORCH_NBUCKETS; k++) {
            cum += c[NGX_HTTP_EDGE_ORCH_F_BUCKET + k];

            if (ngx_http_edge_orch_wprintf(w,
                    NGX_HTTP_EDGE_ORCH_LINE + fv.names[i].len,
                    "edge_orch_fragment_duration_seconds_bucket"
                    "{fragment=\"%V\",le=\"%s\"} %uA\n",
                    &fv.names[i], ngx_http_edge_orch_le_seconds[k], cum)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        sum = c[NGX_HTTP_EDGE_ORCH_F_DURATION_SUM];

        if (ngx_http_edge_orch_wprintf(w,
                NGX_HTTP_EDGE_ORCH_LINE + 2 * fv.names[i].len,
                "edge_orch_fragment_duration_seconds_sum{fragment=\"%V\"} "
                "%uL.%06uL\n"
                "edge_orch_fragment_duration_seconds_count{fragment=\"%V\"} "
                "%uA\n",
                &fv.names[i], sum / 1000000, sum % 1000000,
                &fv.names[i], c[NGX_HTTP_EDGE_ORCH_F_DURATION_COUNT])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_prom_labelled(ngx_http_edge_orch_writer_t *w,
    ngx_http_edge_orch_frag_view_t *fv, const char *family, const char *help,
    const char *label, const char **values, ngx_uint_t n, ngx_uint_t offset)
{
    ngx_uint_t  i, k;

    /* family{fragment="a",label="value"} N for every fragment and value */

    if (ngx_http_edge_orch_prom_family(w, family, "counter", help) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < fv->n; i++) {
        for (k = 0; fv->slots[i] != NULL && k < n; k++) {
            if (ngx_http_edge_orch_wprintf(w,
                    NGX_HTTP_EDGE_ORCH_LINE + fv->names[i].len,
                    "%s{fragment=\"%V\",%s=\"%s\"} %uA\n",
                    family, &fv->names[i], label, values[k],
                    fv->slots[i]->c[offset + k])
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_prom_family(ngx_http_edge_orch_writer_t *w,
    const char *name, const char *type, const char *help)
{
    return ngx_http_edge_orch_wprintf(w, NGX_HTTP_EDGE_ORCH_LINE,
                                      "# HELP %s %s\n# TYPE %s %s\n",
                                      name, help, name, type);
}


static ngx_http_edge_orch_zone_view_t *
ngx_http_edge_orch_zone_views(ngx_http_request_t *r, ngx_uint_t *n)
{
    ngx_uint_t                       i, k;
    ngx_http_edge_orch_zone_t      **zp, *zone;
    ngx_http_edge_orch_zone_view_t  *zv;
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);

    *n = (emcf->zones == NULL) ? 0 : emcf->zones->nelts;

    if (*n == 0) {
        return NULL;
    }

    zv = ngx_pcalloc(r->pool, *n * sizeof(ngx_http_edge_orch_zone_view_t));
    if (zv == NULL) {
        return NULL;
    }

    zp = emcf->zones->elts;

    for (i = 0; i < *n; i++) {
        zone = zp[i];

        if (ngx_http_edge_orch_escape(r->pool, &zone->name, &zv[i].json,
                                      &zv[i].label)
            != NGX_OK)
        {
            return NULL;
        }

        zv[i].size = zone->shm_zone->shm.size;

        if (zone->sh == NULL) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_EDGE_ORCH_NSTATS; k++) {
            zv[i].stats[k] = zone->sh->stats[k];
        }

        /* memory gauges as ngx_slab keeps them: free pages */

        ngx_shmtx_lock(&zone->shpool->mutex);

        zv[i].free = zone->shpool->pfree * ngx_pagesize;
        zv[i].entries = zone->sh->entries;
        zv[i].tags = zone->sh->tag_count;
        zv[i].locks = zone->sh->locks;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        /* in the order of zone_families[] */

        for (k = 0; k <= NGX_HTTP_EDGE_ORCH_STAT_FETCH_ERRORS; k++) {
            zv[i].values[k] = zv[i].stats[k];
        }

        zv[i].values[k++] = zv[i].stats[NGX_HTTP_EDGE_ORCH_STAT_PURGES_HARD];
        zv[i].values[k++] = zv[i].stats[NGX_HTTP_EDGE_ORCH_STAT_PURGED_TAGS];
        zv[i].values[k++] = zv[i].size;
        zv[i].values[k++] = zv[i].free;
        zv[i].values[k++] = zv[i].entries;
        zv[i].values[k++] = zv[i].tags;
        zv[i].values[k] = zv[i].locks;
    }

    return zv;
}


static ngx_int_t
ngx_http_edge_orch_escape(ngx_pool_t *pool, ngx_str_t *src, ngx_str_t *json,
    ngx_str_t *label)
{
    u_char  *p;
    size_t   i, n;

    /* JSON string */

    n = ngx_escape_json(NULL, src->data, src->len);

    json->data = ngx_pnalloc(pool, src->len + n);
    if (json->data == NULL) {
        return NGX_ERROR;
    }

    json->len = (u_char *) ngx_escape_json(json->data, src->data, src->len)
                - json->data;

    /* Prometheus label value: backslash, double quote and line feed */

    label->data = ngx_pnalloc(pool, 2 * src->len);
    if (label->data == NULL) {
        return NGX_ERROR;
    }

    p = label->data;

    for (i = 0; i < src->len; i++) {
        switch (src->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = src->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = src->data[i];
        }
    }

    label->len = p - label->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_wprintf(ngx_http_edge_orch_writer_t *w, size_t max,
    const char *fmt, ...)
{
    u_char       *p;
    size_t        size;
    va_list       args;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = w->b;

    if (b == NULL || (size_t) (b->end - b->last) < max) {

        size = ngx_max(max, NGX_HTTP_EDGE_ORCH_CHUNK);

        b = ngx_create_temp_buf(w->pool, size);
        if (b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(w->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        cl->next = NULL;
        *w->last = cl;
        w->last = &cl->next;
        w->b = b;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(b->last, b->end, fmt, args);
    va_end(args);

    w->len += p - b->last;
    b->last = p;

    return NGX_OK;
}
