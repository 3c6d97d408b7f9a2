
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Request correlation and timing:
 *
 *   X-Request-Id   the client's (1-200 visible ASCII characters) or nginx's
 *                  $request_id; sent to every fragment and echoed on the
 *                  response.
 *   traceparent    W3C Trace Context: a valid one keeps its trace id, each
 *                  fragment gets a new span id (its parent-id); tracestate
 *                  is passed on unchanged.  An invalid traceparent is not
 *                  forwarded, nor is its tracestate.  Without one,
 *                  "edge_orch_trace on" starts a trace.
 *   Server-Timing  one entry per fragment ("edge_orch_server_timing on").
 *
 * Durations are measured with the monotonic clock in microseconds.
 */


#include "ngx_http_edge_orch_module.h"


#define NGX_HTTP_EDGE_ORCH_MAX_REQUEST_ID   200
#define NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN  55


static ngx_table_elt_t *ngx_http_edge_orch_push_header(ngx_list_t *list,
    ngx_str_t *key, ngx_str_t *lowcase, u_char *value, size_t len);
static ngx_int_t ngx_http_edge_orch_traceparent(ngx_str_t *v,
    ngx_http_edge_orch_ctx_t *ctx);
static ngx_uint_t ngx_http_edge_orch_lower_hex(u_char *p, size_t n);
static ngx_uint_t ngx_http_edge_orch_all_zero(u_char *p, size_t n);
static void ngx_http_edge_orch_random_hex(u_char *dst, size_t bytes);
static u_char *ngx_http_edge_orch_server_timing(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len);


static ngx_str_t  ngx_http_edge_orch_x_request_id = ngx_string("X-Request-Id");
static ngx_str_t  ngx_http_edge_orch_x_request_id_lc =
    ngx_string("x-request-id");
static ngx_str_t  ngx_http_edge_orch_traceparent_name =
    ngx_string("traceparent");
static ngx_str_t  ngx_http_edge_orch_tracestate_name =
    ngx_string("tracestate");


uint64_t
ngx_http_edge_orch_usec(void)
{
    struct timeval   tv;
#if (NGX_HAVE_CLOCK_MONOTONIC)
    struct timespec  ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
        return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
#endif

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}


ngx_table_elt_t *
ngx_http_edge_orch_header_next(ngx_http_request_t *r, ngx_str_t *name,
    ngx_list_part_t **part, ngx_uint_t *i)
{
    ngx_table_elt_t  *h;

    /* the request's headers called "name", one a call; *part NULL: first */

    if (*part == NULL) {
        *part = &r->headers_in.headers.part;
        *i = 0;
    }

    for ( ;; ) {

        if (*i >= (*part)->nelts) {
            if ((*part)->next == NULL) {
                return NULL;
            }

            *part = (*part)->next;
            *i = 0;
            continue;
        }

        h = (ngx_table_elt_t *) (*part)->elts + (*i)++;

        if (h->key.len == name->len
            && ngx_strncasecmp(h->key.data, name->data, name->len) == 0)
        {
            return h;
        }
    }
}


ngx_int_t
ngx_http_edge_orch_trace_init(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    u_char                          *p, *last;
    ngx_uint_t                       i, ntp;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *rid, *tp;
    ngx_http_variable_value_t       *v;
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);

    part = NULL;
    rid = ngx_http_edge_orch_header_next(r, &ngx_http_edge_orch_x_request_id,
                                         &part, &i);

    part = NULL;
    tp = NULL;
    ntp = 0;

    while ((h = ngx_http_edge_orch_header_next(r,
                                          &ngx_http_edge_orch_traceparent_name,
                                          &part, &i))
           != NULL)
    {
        tp = h;
        ntp++;
    }

    /* the client's request id when it is a plausible one */

    if (rid != NULL && rid->value.len > 0
        && rid->value.len <= NGX_HTTP_EDGE_ORCH_MAX_REQUEST_ID)
    {
        last = rid->value.data + rid->value.len;

        for (p = rid->value.data; p < last; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                break;
            }
        }

        if (p == last) {
            ctx->request_id = rid->value;
        }
    }

    if (ctx->request_id.len == 0 && emcf->request_id_index != NGX_ERROR) {

        /*
         * nginx's $request_id draws 16 bytes from OpenSSL's RAND_bytes()
         * on first use, about a third of an all-hit request's instructions;
         * when nothing has asked for it yet, the same 32 hex digits come
         * from ngx_random() and become $request_id for the rest of the
         * request, so access logs and fragments still agree
         */

        v = &r->variables[emcf->request_id_index];

        if (!v->valid || v->not_found) {
            p = ngx_pnalloc(r->pool, 32);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_http_edge_orch_random_hex(p, 16);

            v->data = p;
            v->len = 32;
            v->valid = 1;
            v->no_cacheable = 0;
            v->not_found = 0;
        }

        ctx->request_id.data = v->data;
        ctx->request_id.len = v->len;
    }

    /* W3C Trace Context: more than one traceparent is invalid too */

    if (ntp) {
        if (ntp == 1 && ngx_http_edge_orch_traceparent(&tp->value, ctx)
                        == NGX_OK)
        {
            ctx->trace = 1;
            ctx->trace_in = 1;

        } else {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "edge_orch drops invalid traceparent \"%V\"",
                           &tp->value);

            ngx_http_edge_orch_stats_global(emcf->stats,
                                         NGX_HTTP_EDGE_ORCH_G_TRACE_INVALID, 1);
        }
    }

    if (!ctx->trace && ctx->conf->trace) {
        ngx_http_edge_orch_random_hex(ctx->trace_id, 16);
        ctx->trace_flags[0] = '0';
        ctx->trace_flags[1] = '1';
        ctx->trace = 1;

        ngx_http_edge_orch_stats_global(emcf->stats,
                                        NGX_HTTP_EDGE_ORCH_G_TRACE_STARTED, 1);
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_edge_orch_trace_skip(ngx_table_elt_t *h)
{
    /* headers that trace_headers() and trace_fragment() set themselves */

    switch (h->key.len) {

    case sizeof("X-Request-Id") - 1:
        return ngx_strncasecmp(h->key.data,
                               ngx_http_edge_orch_x_request_id.data,
                               h->key.len) == 0;

    case sizeof("traceparent") - 1:
        return ngx_strncasecmp(h->key.data,
                               ngx_http_edge_orch_traceparent_name.data,
                               h->key.len) == 0;

    case sizeof("tracestate") - 1:
        return ngx_strncasecmp(h->key.data,
                               ngx_http_edge_orch_tracestate_name.data,
                               h->key.len) == 0;

    default:
        return 0;
    }
}


ngx_int_t
ngx_http_edge_orch_trace_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_list_t *headers)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    if (ctx->request_id.len
        && ngx_http_edge_orch_push_header(headers,
                                          &ngx_http_edge_orch_x_request_id,
                                          &ngx_http_edge_orch_x_request_id_lc,
                                          ctx->request_id.data,
                                          ctx->request_id.len)
           == NULL)
    {
        return NGX_ERROR;
    }

    if (!ctx->trace_in) {
        /* no valid traceparent from the client: its tracestate goes too */
        return NGX_OK;
    }

    part = NULL;

    while ((h = ngx_http_edge_orch_header_next(r,
                                          &ngx_http_edge_orch_tracestate_name,
                                          &part, &i))
           != NULL)
    {
        nh = ngx_list_push(headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = *h;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_trace_fragment(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_http_request_t *sr)
{
    u_char                    *p;
    ngx_uint_t                 i, n;
    ngx_list_t                *src;
    ngx_list_part_t           *part;
    ngx_table_elt_t           *h, *nh;
    ngx_http_edge_orch_ctx_t  *ctx;

    ctx = fs->ctx;

    if (!ctx->trace) {
        return NGX_OK;
    }

    ngx_http_edge_orch_random_hex(fs->span_id, 8);

    /* the filtered headers are shared: this fragment gets its own list */

    src = ctx->sr_headers;
    n = 0;

    for (part = &src->part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(&sr->headers_in.headers, r->pool, n + 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &src->part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            nh = ngx_list_push(&sr->headers_in.headers);
            if (nh == NULL) {
                return NGX_ERROR;
            }

            *nh = h[i];
        }
    }

    p = ngx_pnalloc(r->pool, NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* 00-<trace-id>-<parent-id>-<flags> */

    ngx_memcpy(p, "00-", 3);
    ngx_memcpy(p + 3, ctx->trace_id, 32);
    p[35] = '-';
    ngx_memcpy(p + 36, fs->span_id, 16);
    p[52] = '-';
    p[53] = ctx->trace_flags[0];
    p[54] = ctx->trace_flags[1];

    if (ngx_http_edge_orch_push_header(&sr->headers_in.headers,
                                       &ngx_http_edge_orch_traceparent_name,
                                       &ngx_http_edge_orch_traceparent_name,
                                       p, NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_trace_response(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    ngx_str_t  value;

    static ngx_str_t  server_timing = ngx_string("Server-Timing");

    if (ctx->request_id.len
        && ngx_http_edge_orch_add_header(r, &ngx_http_edge_orch_x_request_id,
                                         &ctx->request_id)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ctx->conf->server_timing) {
        return NGX_OK;
    }

    value.data = ngx_http_edge_orch_server_timing(ctx, r->pool, &value.len);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_edge_orch_add_header(r, &server_timing, &value);
}


ngx_int_t
ngx_http_edge_orch_add_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    /* a response header; the values must live as long as the request */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *key;
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static u_char *
ngx_http_edge_orch_server_timing(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len)
{
    u_char                     *s, *p, *n;
    size_t                      size;
    uint64_t                    now, d;
    ngx_uint_t                  i;
    ngx_http_edge_orch_frag_t  *fs;

    /* cms;dur=12.3;desc="hit", recs;dur=130.0;desc="fallback:timeout" */

    size = 0;

    for (i = 0; i < ctx->nfrags; i++) {
        size += ctx->frags[i].conf->name.len
                + sizeof(";dur=18446744073709551615.9;desc=\"\", ")
                + sizeof("cancelled:no_route");
    }

    s = ngx_pnalloc(pool, size + 1);
    if (s == NULL) {
        return NULL;
    }

    now = ngx_http_edge_orch_usec();
    p = s;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }

        /* a metric name is a token: ':' is not allowed in one */

        n = p;
        p = ngx_cpymem(p, fs->conf->name.data, fs->conf->name.len);

        for ( /* void */ ; n < p; n++) {
            if (*n == ':') {
                *n = '_';
            }
        }

        d = (fs->resolved ? fs->end : now);
        d = (d > fs->start) ? d - fs->start : 0;

        /* tenths of a millisecond, rounded */
        d = (d + 50) / 100;

        p = ngx_sprintf(p, ";dur=%uL.%uL;desc=\"", d / 10, d % 10);

        if (!fs->resolved) {
            p = ngx_cpymem(p, "cancelled", sizeof("cancelled") - 1);

        } else if (fs->reason != NGX_HTTP_EDGE_ORCH_REASON_NONE) {
            p = ngx_sprintf(p, "%s:%s",
                            ngx_http_edge_orch_outcome_names[fs->outcome],
                            ngx_http_edge_orch_reason_name(fs->reason));

        } else if (fs->cache != NGX_HTTP_EDGE_ORCH_CACHE_NONE) {
            p = ngx_sprintf(p, "%s",
                            ngx_http_edge_orch_cache_names[fs->cache - 1]);

        } else {
            p = ngx_cpymem(p, "ok", 2);
        }

        *p++ = '"';
    }

    *len = p - s;

    return s;
}


static ngx_table_elt_t *
ngx_http_edge_orch_push_header(ngx_list_t *list, ngx_str_t *key,
    ngx_str_t *lowcase, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(list);
    if (h == NULL) {
        return NULL;
    }

    /* as the request parser leaves it: proxy_set_header looks it up */

    h->key = *key;
    h->lowcase_key = lowcase->data;
    h->hash = ngx_hash_key(lowcase->data, lowcase->len);
    h->value.data = value;
    h->value.len = len;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


static ngx_int_t
ngx_http_edge_orch_traceparent(ngx_str_t *v, ngx_http_edge_orch_ctx_t *ctx)
{
    u_char  *p;

    /* version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex */

    p = v->data;

    if (v->len < NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN
        || !ngx_http_edge_orch_lower_hex(p, 2)
        || (p[0] == 'f' && p[1] == 'f'))
    {
        return NGX_DECLINED;
    }

    if (p[0] == '0' && p[1] == '0') {
        if (v->len != NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN) {
            return NGX_DECLINED;
        }

    } else if (v->len > NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN
               && p[NGX_HTTP_EDGE_ORCH_TRACEPARENT_LEN] != '-')
    {
        /* a later version may append fields after a dash */
        return NGX_DECLINED;
    }

    if (p[2] != '-' || p[35] != '-' || p[52] != '-'
        || !ngx_http_edge_orch_lower_hex(p + 3, 32)
        || ngx_http_edge_orch_all_zero(p + 3, 32)
        || !ngx_http_edge_orch_lower_hex(p + 36, 16)
        || ngx_http_edge_orch_all_zero(p + 36, 16)
        || !ngx_http_edge_orch_lower_hex(p + 53, 2))
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(ctx->trace_id, p + 3, 32);

    if (p[0] == '0' && p[1] == '0') {
        ctx->trace_flags[0] = p[53];
        ctx->trace_flags[1] = p[54];

    } else {
        /* we send version 00: keep only the flag it defines (sampled) */
        ctx->trace_flags[0] = '0';
        ctx->trace_flags[1] = (ngx_hextoi(&p[54], 1) & 1) ? '1' : '0';
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_edge_orch_lower_hex(u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_edge_orch_all_zero(u_char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != '0') {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_edge_orch_random_hex(u_char *dst, size_t bytes)
{
    size_t      i;
    ngx_uint_t  zero;
    u_char      buf[16];

    /* ids must not be all zeros (W3C Trace Context) */

    do {
        zero = 1;

        for (i = 0; i < bytes; i++) {
            buf[i] = (u_char) (ngx_random() >> 7);

            if (buf[i]) {
                zero = 0;
            }
        }

    } while (zero);

    (void) ngx_hex_dump(dst, buf, bytes);
}
