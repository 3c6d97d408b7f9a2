
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Content handler: resolves routes, fans out one background subrequest per
 * fragment, waits for all of them (or their timeouts) and sends the
 * assembled document.
 *
 * Reference counting: every subrequest holds one reference on the main
 * request (ngx_http_subrequest() does r->main->count++), the handler holds
 * one while it waits (count++ before NGX_DONE).  Subrequests are created
 * with NGX_HTTP_SUBREQUEST_BACKGROUND so that the main request can answer
 * while a late fragment is still running; that fragment is aborted.
 */


#include "ngx_http_edge_orch_module.h"


static ngx_int_t ngx_http_edge_orch_start_fragment(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_http_edge_orch_frag_t *fs);
static ngx_list_t *ngx_http_edge_orch_filter_headers(ngx_http_request_t *r,
    ngx_flag_t cred);
static ngx_int_t ngx_http_edge_orch_make_key(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs);
static ngx_int_t ngx_http_edge_orch_apply_lookup(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_http_edge_orch_lookup_t *lk);
static ngx_int_t ngx_http_edge_orch_launch(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs);
static void ngx_http_edge_orch_poll_handler(ngx_event_t *ev);
static void ngx_http_edge_orch_stop_waiting(ngx_http_edge_orch_frag_t *fs);
static void ngx_http_edge_orch_wake_waiters(ngx_http_edge_orch_frag_t *fs);
static void ngx_http_edge_orch_fetch_done(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);
static void ngx_http_edge_orch_store_failed(ngx_http_edge_orch_frag_t *fs);
static ngx_int_t ngx_http_edge_orch_wake(ngx_http_edge_orch_ctx_t *ctx);
static ngx_http_edge_orch_reason_e ngx_http_edge_orch_fragment_classify(
    ngx_http_request_t *sr, ngx_http_edge_orch_frag_t *fs, ngx_int_t rc);
static void ngx_http_edge_orch_resolve(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);
static void ngx_http_edge_orch_timeout_handler(ngx_event_t *ev);
static void ngx_http_edge_orch_abort_fragment(ngx_http_edge_orch_frag_t *fs);
static void ngx_http_edge_orch_finish_handler(ngx_http_request_t *r);
static void ngx_http_edge_orch_finish(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
static void ngx_http_edge_orch_check_client(ngx_http_request_t *r);


#define NGX_HTTP_EDGE_ORCH_POLL_MAX  4      /* ms between polls of the zone */


/* request headers that never reach a fragment */
static ngx_str_t  ngx_http_edge_orch_drop_headers[] = {
    ngx_string("Accept-Encoding"),
    ngx_string("Connection"),
    ngx_string("Content-Length"),
    ngx_string("Content-Type"),
    ngx_string("Expect"),
    ngx_string("If-Match"),
    ngx_string("If-Modified-Since"),
    ngx_string("If-None-Match"),
    ngx_string("If-Range"),
    ngx_string("If-Unmodified-Since"),
    ngx_string("Keep-Alive"),
    ngx_string("Proxy-Authorization"),
    ngx_string("Proxy-Connection"),
    ngx_string("Range"),
    ngx_string("TE"),
    ngx_string("Trailer"),
    ngx_string("Transfer-Encoding"),
    ngx_string("Upgrade"),
    ngx_null_string
};


ngx_int_t
ngx_http_edge_orch_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            val;
    ngx_uint_t                           i, ntags, dropped;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_frag_t           *fs;
    ngx_http_edge_orch_loc_conf_t       *elcf;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    ctx = ngx_http_edge_orch_find_ctx(r);
    if (ctx != NULL) {
        /* the location was entered again, e.g. after an internal redirect */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "edge_orch: orchestrated location entered twice");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_edge_orch_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = elcf;
    ctx->nfrags = elcf->fragments->nelts;

    ctx->frags = ngx_pcalloc(r->pool,
                             ctx->nfrags * sizeof(ngx_http_edge_orch_frag_t));
    if (ctx->frags == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_edge_orch_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_edge_orch_module);

    /* X-Request-Id and the trace context the fragments get */

    if (ngx_http_edge_orch_trace_init(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_edge_orch_routes_begin(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (elcf->bypass.len && ngx_http_edge_orch_routes_static(r) == NGX_OK) {

        /* a static page: no fan-out at all */

        ctx->responded = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edge_orch bypass to \"%V\"", &elcf->bypass);

        if (elcf->bypass.data[0] == '@') {
            return ngx_http_named_location(r, &elcf->bypass);
        }

        return ngx_http_internal_redirect(r, &elcf->bypass, &r->args);
    }

    if (elcf->tags != NULL) {
        if (ngx_http_complex_value(r, elcf->tags, &val) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ntags = 0;
        dropped = 0;

        if (ngx_http_edge_orch_tags_append(r->pool, &ctx->page_tags,
                                           val.data, val.len, ' ',
                                           elcf->tag_max_len, elcf->tags_max,
                                           &ntags, &dropped)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    fc = elcf->fragments->elts;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];
        fs->ctx = ctx;
        fs->conf = &fc[i];
    }

    /* all fragments count as pending until each is started or resolved */

    ctx->pending = ctx->nfrags;

    for (i = 0; i < ctx->nfrags; i++) {
        if (ngx_http_edge_orch_start_fragment(r, ctx, &ctx->frags[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->pending == 0) {
        /* every fragment was resolved without a subrequest */
        ctx->responded = 1;
        return ngx_http_edge_orch_send_response(r, ctx);
    }

    ctx->waiting = 1;
    r->write_event_handler = ngx_http_edge_orch_finish_handler;

    if (!r->discard_body) {
        /* notice a client that goes away while the fragments run */
        r->read_event_handler = ngx_http_edge_orch_check_client;
    }

    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_edge_orch_start_fragment(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_http_edge_orch_frag_t *fs)
{
    ngx_int_t                            rc;
    ngx_uint_t                           flags;
    ngx_http_edge_orch_zone_t           *zone;
    ngx_http_edge_orch_lookup_t          lk;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    fc = fs->conf;
    fs->start = ngx_http_edge_orch_usec();

    fs->timer.handler = ngx_http_edge_orch_timeout_handler;
    fs->timer.data = fs;
    fs->timer.log = r->connection->log;

    rc = ngx_http_edge_orch_routes_lookup(r, ctx, &fc->service,
                                          &fs->upstream);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (fc->upstream.len == 0) {
            ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_NO_ROUTE);
            return NGX_OK;
        }

        fs->upstream = fc->upstream;
    }

    if (ngx_http_complex_value(r, &fc->uri, &fs->uri) != NGX_OK) {
        return NGX_ERROR;
    }

    flags = NGX_HTTP_LOG_UNSAFE;

    if (ngx_http_parse_unsafe_uri(r, &fs->uri, &fs->args, &flags) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "edge_orch: fragment \"%V\": unsafe uri \"%V\"",
                      &fc->name, &fs->uri);
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
        return NGX_OK;
    }

    zone = ctx->conf->zone;

    if (zone == NULL) {
        return ngx_http_edge_orch_launch(r, fs);
    }

    if (ngx_http_edge_orch_make_key(r, fs) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_add_timer(&fs->timer, fc->timeout);

    if (ngx_http_edge_orch_cache_lookup(zone, &fs->ckey, r->pool, fc->timeout,
                                        0, &lk)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_edge_orch_apply_lookup(r, fs, &lk);
}


static ngx_int_t
ngx_http_edge_orch_make_key(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs)
{
    u_char                              *p;
    size_t                               len;
    ngx_str_t                            val;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    /*
     * name, upstream and the evaluated uri are always part of the key: two
     * regions routed to different upstreams never share an entry
     */

    fc = fs->conf;

    val.len = 0;

    if (fc->key != NULL
        && ngx_http_complex_value(r, fc->key, &val) != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = fc->name.len + fs->upstream.len + fs->uri.len + fs->args.len
          + val.len + 4;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    fs->ckey.key.data = p;

    p = ngx_cpymem(p, fc->name.data, fc->name.len);
    *p++ = '\0';
    p = ngx_cpymem(p, fs->upstream.data, fs->upstream.len);
    *p++ = '\0';
    p = ngx_cpymem(p, fs->uri.data, fs->uri.len);
    *p++ = '?';

    /* empty arguments and key= values may have NULL data */

    if (fs->args.len) {
        p = ngx_cpymem(p, fs->args.data, fs->args.len);
    }

    *p++ = '\0';

    if (val.len) {
        p = ngx_cpymem(p, val.data, val.len);
    }

    fs->ckey.key.len = p - fs->ckey.key.data;
    fs->ckey.page_tags = fs->ctx->page_tags;

    ngx_http_edge_orch_cache_key(&fs->ckey);

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_apply_lookup(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_http_edge_orch_lookup_t *lk)
{
    ngx_http_edge_orch_zone_t  *zone;

    zone = fs->ctx->conf->zone;

    switch (lk->action) {

    case NGX_HTTP_EDGE_ORCH_LOOKUP_HIT:
    case NGX_HTTP_EDGE_ORCH_LOOKUP_COLLAPSED:
    case NGX_HTTP_EDGE_ORCH_LOOKUP_STALE:
    case NGX_HTTP_EDGE_ORCH_LOOKUP_REFRESH:

        fs->out = lk->body;
        fs->tags = lk->tags;
        fs->ttl = lk->ttl;

        if (lk->action == NGX_HTTP_EDGE_ORCH_LOOKUP_HIT) {
            fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_HIT;
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_HITS);

        } else if (lk->action == NGX_HTTP_EDGE_ORCH_LOOKUP_COLLAPSED) {
            fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED;
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_COLLAPSED);

        } else {
            fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_STALE;
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_STALE);
        }

        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_NONE);

        if (lk->action != NGX_HTTP_EDGE_ORCH_LOOKUP_REFRESH) {
            return NGX_OK;
        }

        /* stale-while-revalidate: one refresh across all workers */

        fs->refresh = 1;
        fs->lock_seq = lk->seq;
        fs->fetch_seq = lk->seq;
        ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_REFRESHES);

        if (!fs->timer.timer_set) {
            ngx_add_timer(&fs->timer, fs->conf->timeout);
        }

        return ngx_http_edge_orch_launch(r, fs);

    case NGX_HTTP_EDGE_ORCH_LOOKUP_SHARED_FAIL:

        if (lk->fail_reason == NGX_HTTP_EDGE_ORCH_REASON_NONE) {
            /* the result could not be shared (private, too big) */
            fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_PASS;
            fs->fetch_seq = lk->seq;
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_PASSES);
            return ngx_http_edge_orch_launch(r, fs);
        }

        /* the same outcome as the fetch we waited for */

        fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED;
        fs->sie_body = lk->body;
        fs->sie_tags = lk->tags;
        fs->ttl = lk->ttl;
        ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_COLLAPSED);
        ngx_http_edge_orch_resolve(fs, lk->fail_reason);
        return NGX_OK;

    case NGX_HTTP_EDGE_ORCH_LOOKUP_WAIT:

        fs->waiting = 1;
        fs->wait_seq = lk->wait_seq;
        fs->poll_delay = 1;

        /* answered by another request's fetch, unless it takes over */
        fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED;

        fs->poll.handler = ngx_http_edge_orch_poll_handler;
        fs->poll.data = fs;
        fs->poll.log = r->connection->log;

        ngx_queue_insert_tail(&zone->waiters, &fs->wait_link);
        ngx_add_timer(&fs->poll, fs->poll_delay);

        return NGX_OK;

    case NGX_HTTP_EDGE_ORCH_LOOKUP_FETCH:

        fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_MISS;
        fs->lock_seq = lk->seq;
        fs->fetch_seq = lk->seq;
        fs->sie_body = lk->sie_body;
        fs->sie_tags = lk->sie_tags;
        fs->ttl = lk->ttl;
        ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_MISSES);

        return ngx_http_edge_orch_launch(r, fs);

    default: /* NGX_HTTP_EDGE_ORCH_LOOKUP_PASS */

        fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_PASS;
        fs->fetch_seq = lk->seq;
        ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_PASSES);

        return ngx_http_edge_orch_launch(r, fs);
    }
}


static ngx_int_t
ngx_http_edge_orch_launch(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs)
{
    ngx_flag_t                 cred;
    ngx_list_t               **list;
    ngx_http_request_t        *sr;
    ngx_http_request_body_t   *rb;
    ngx_http_edge_orch_ctx_t  *ctx;

    ctx = fs->ctx;

    /* two header lists at most per page: with and without credentials */

    cred = fs->conf->credentials;
    list = cred ? &ctx->sr_headers_cred : &ctx->sr_headers;

    if (*list == NULL) {
        *list = ngx_http_edge_orch_filter_headers(r, cred);
        if (*list == NULL
            || ngx_http_edge_orch_trace_headers(r, ctx, *list) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    fs->ps.handler = ngx_http_edge_orch_post_subrequest;
    fs->ps.data = fs;
    fs->max_age = -1;
    fs->cc_swr = -1;
    fs->cc_sie = -1;

    if (ngx_http_subrequest(r, &fs->uri, &fs->args, &sr, &fs->ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        ngx_http_edge_orch_fetch_done(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
        return NGX_OK;
    }

    fs->sr = sr;

    /* the fragment gets no request body and no hop-by-hop headers */

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    sr->request_body = rb;
    sr->headers_in.headers = **list;

    if ((*list)->last == &(*list)->part) {
        /* the copy's own first part, not the shared list's */
        sr->headers_in.headers.last = &sr->headers_in.headers.part;
    }

    if (!cred) {
        /* the client's cookies and credentials stay with the page */
        sr->headers_in.authorization = NULL;
#if (nginx_version >= 1023000)
        sr->headers_in.cookie = NULL;
#else
        sr->headers_in.cookies.nelts = 0;
#endif
    }

    /* with a trace, a list of its own with this fragment's traceparent */

    if (ngx_http_edge_orch_trace_fragment(r, fs, sr) != NGX_OK) {
        return NGX_ERROR;
    }

    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = -1;
    sr->headers_in.content_type = NULL;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.chunked = 0;
    sr->headers_in.connection = NULL;
    sr->headers_in.keep_alive = NULL;
    sr->headers_in.te = NULL;
    sr->headers_in.expect = NULL;
    sr->headers_in.upgrade = NULL;
    sr->headers_in.range = NULL;
    sr->headers_in.if_range = NULL;
    sr->headers_in.if_match = NULL;
    sr->headers_in.if_none_match = NULL;
    sr->headers_in.if_modified_since = NULL;
    sr->headers_in.if_unmodified_since = NULL;
#if (NGX_HTTP_GZIP || NGX_HTTP_HEADERS)
    sr->headers_in.accept_encoding = NULL;
#endif

    /* the body filter wants the response in memory, not in file buffers */
    sr->filter_need_in_memory = 1;

    if (!fs->timer.timer_set && !fs->resolved) {
        ngx_add_timer(&fs->timer, fs->conf->timeout);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "edge_orch fragment \"%V\" -> \"%V\" via \"%V\"",
                   &fs->conf->name, &fs->uri, &fs->upstream);

    return NGX_OK;
}


static void
ngx_http_edge_orch_poll_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_edge_orch_ctx_t     *ctx;
    ngx_http_edge_orch_frag_t    *fs;
    ngx_http_edge_orch_zone_t    *zone;
    ngx_http_edge_orch_lookup_t   lk;

    fs = ev->data;
    ctx = fs->ctx;
    r = ctx->request;
    c = r->connection;
    zone = ctx->conf->zone;

    ngx_http_set_log_request(c->log, r);

    if (!fs->waiting) {
        return;
    }

    if (ctx->responded || fs->resolved) {
        ngx_http_edge_orch_stop_waiting(fs);
        return;
    }

    if (ngx_http_edge_orch_cache_lookup(zone, &fs->ckey, r->pool,
                                        fs->conf->timeout, fs->wait_seq, &lk)
        != NGX_OK)
    {
        ngx_http_edge_orch_stop_waiting(fs);
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
        goto done;
    }

    if (lk.action == NGX_HTTP_EDGE_ORCH_LOOKUP_WAIT) {

        /*
         * another worker is fetching: back off from 1 ms to 4 ms, which
         * keeps a waiter's wake-up under 5 ms for a few cheap mutex
         * acquisitions per fetch
         */

        if (fs->poll_delay < NGX_HTTP_EDGE_ORCH_POLL_MAX) {
            fs->poll_delay *= 2;
        }

        ngx_add_timer(&fs->poll, fs->poll_delay);
        return;
    }

    ngx_http_edge_orch_stop_waiting(fs);

    if (ngx_http_edge_orch_apply_lookup(r, fs, &lk) != NGX_OK) {
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
    }

done:

    if (ngx_http_edge_orch_wake(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_edge_orch_stop_waiting(ngx_http_edge_orch_frag_t *fs)
{
    if (!fs->waiting) {
        return;
    }

    fs->waiting = 0;
    ngx_queue_remove(&fs->wait_link);

    if (fs->poll.timer_set) {
        ngx_del_timer(&fs->poll);
    }

    if (fs->poll.posted) {
        ngx_delete_posted_event(&fs->poll);
    }
}


static void
ngx_http_edge_orch_wake_waiters(ngx_http_edge_orch_frag_t *fs)
{
    ngx_queue_t                *q;
    ngx_http_edge_orch_frag_t  *w;
    ngx_http_edge_orch_zone_t  *zone;

    /* waiters in this worker resume now; others poll within ms */

    zone = fs->ctx->conf->zone;

    for (q = ngx_queue_head(&zone->waiters);
         q != ngx_queue_sentinel(&zone->waiters);
         q = ngx_queue_next(q))
    {
        w = ngx_queue_data(q, ngx_http_edge_orch_frag_t, wait_link);

        if (w->ckey.hash != fs->ckey.hash
            || w->ckey.key.len != fs->ckey.key.len
            || ngx_memcmp(w->ckey.key.data, fs->ckey.key.data,
                          fs->ckey.key.len) != 0)
        {
            continue;
        }

        if (w->poll.timer_set) {
            ngx_del_timer(&w->poll);
        }

        if (!w->poll.posted) {
            ngx_post_event(&w->poll, &ngx_posted_events);
        }
    }
}


static void
ngx_http_edge_orch_fetch_done(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    ngx_int_t                        rc;
    ngx_str_t                        body;
    ngx_http_edge_orch_zone_t       *zone;
    ngx_http_edge_orch_freshness_t   fr;

    /* the fetch ended: share its result (or failure), then resolve */

    zone = fs->ctx->conf->zone;

    if (zone != NULL
        && (fs->lock_seq || reason == NGX_HTTP_EDGE_ORCH_REASON_NONE))
    {

        if (reason == NGX_HTTP_EDGE_ORCH_REASON_NONE) {
            ngx_http_edge_orch_freshness(fs, &fr);

            body.data = fs->body;
            body.len = fs->len;

            /* stamped with the fetch's start: a purge during it wins */

            rc = ngx_http_edge_orch_cache_store(zone, &fs->ckey,
                                                fs->fetch_seq, &body,
                                                &fs->resp_tags, &fr);
            if (rc == NGX_OK) {
                fs->stored = 1;
                ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_STORES);

            } else {
                if (!fr.cacheable) {
                    fs->uncacheable = 1;
                }

                ngx_http_edge_orch_stat(zone,
                                        NGX_HTTP_EDGE_ORCH_STAT_STORE_SKIPPED);

                if (rc == NGX_ABORT) {
                    ngx_http_edge_orch_store_failed(fs);
                }
            }

        } else {
            ngx_http_edge_orch_cache_fail(zone, &fs->ckey, fs->lock_seq,
                                          reason);
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_FETCH_ERRORS);
        }

        fs->lock_seq = 0;
        ngx_http_edge_orch_wake_waiters(fs);
    }

    if (fs->refresh) {
        /* the request was answered from stale: count the refresh's error */
        ngx_http_edge_orch_stats_error(fs, reason);
        return;
    }

    if (reason == NGX_HTTP_EDGE_ORCH_REASON_NONE) {
        fs->out.data = fs->body;
        fs->out.len = fs->len;
        fs->tags = fs->resp_tags;
    }

    ngx_http_edge_orch_resolve(fs, reason);
}


static void
ngx_http_edge_orch_store_failed(ngx_http_edge_orch_frag_t *fs)
{
    ngx_http_edge_orch_zone_t  *zone;

    zone = fs->ctx->conf->zone;

    if (ngx_current_msec < zone->log_next) {
        return;
    }

    zone->log_next = ngx_current_msec + 10000;

    ngx_log_error(NGX_LOG_WARN, fs->ctx->request->connection->log, 0,
                  "edge_orch: fragment \"%V\" (%uz bytes) not cached: larger "
                  "than max_fragment=%uz or no room in zone \"%V\" "
                  "(logged once per 10s)",
                  &fs->conf->name, fs->len + fs->resp_tags.len,
                  zone->max_fragment, &zone->name);
}


static ngx_list_t *
ngx_http_edge_orch_filter_headers(ngx_http_request_t *r, ngx_flag_t cred)
{
    ngx_str_t        *d;
    ngx_uint_t        i;
    ngx_list_t       *list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    list = ngx_list_create(r->pool, 20, sizeof(ngx_table_elt_t));
    if (list == NULL) {
        return NULL;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (d = ngx_http_edge_orch_drop_headers; d->len; d++) {
            if (h[i].key.len == d->len
                && ngx_strncasecmp(h[i].key.data, d->data, d->len) == 0)
            {
                break;
            }
        }

        if (d->len || ngx_http_edge_orch_trace_skip(&h[i])) {
            continue;
        }

        if (!cred
            && ((h[i].key.len == sizeof("Cookie") - 1
                 && ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie",
                                    sizeof("Cookie") - 1) == 0)
                || (h[i].key.len == sizeof("Authorization") - 1
                    && ngx_strncasecmp(h[i].key.data,
                                       (u_char *) "Authorization",
                                       sizeof("Authorization") - 1) == 0)))
        {
            continue;
        }

        nh = ngx_list_push(list);
        if (nh == NULL) {
            return NULL;
        }

        *nh = h[i];
    }

    return list;
}


ngx_http_edge_orch_frag_t *
ngx_http_edge_orch_fragment_of(ngx_http_request_t *r)
{
    /*
     * post_subrequest survives internal redirects inside the fragment's
     * location, unlike module ctx, so it identifies our subrequests
     */

    if (r != r->main
        && r->post_subrequest != NULL
        && r->post_subrequest->handler == ngx_http_edge_orch_post_subrequest)
    {
        return r->post_subrequest->data;
    }

    return NULL;
}


ngx_int_t
ngx_http_edge_orch_post_subrequest(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_edge_orch_frag_t *fs = data;

    if (rc == NGX_AGAIN && (r->buffered || r->postponed)) {
        /* called again once the output is done */
        return rc;
    }

    if (fs->finished) {
        goto done;
    }

    fs->finished = 1;

    if (!fs->resolved || fs->refresh) {
        ngx_http_edge_orch_fetch_done(fs,
                             ngx_http_edge_orch_fragment_classify(r, fs, rc));

        if (fs->timer.timer_set) {
            /* a refresh is not resolved again: its deadline is moot now */
            ngx_del_timer(&fs->timer);
        }

        if (ngx_http_edge_orch_wake(fs->ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

done:

    /*
     * a failed fragment is handled by us; do not let its error terminate
     * the main request or produce an error page nobody reads
     */

    if (r->connection->error) {
        return rc;
    }

    if (rc == NGX_AGAIN) {
        return rc;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_fragment_failed(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    ngx_http_edge_orch_fetch_done(fs, reason);

    return ngx_http_edge_orch_wake(fs->ctx);
}


static ngx_int_t
ngx_http_edge_orch_wake(ngx_http_edge_orch_ctx_t *ctx)
{
    /*
     * answer when nothing is pending, or at once when a required fragment
     * failed: the response is an error whatever the others bring
     */

    if ((ctx->pending == 0 || ctx->failed != NULL)
        && ctx->waiting && !ctx->responded)
    {

        /* the main request continues in its write event handler */

        return ngx_http_post_request(ctx->request, NULL);
    }

    return NGX_OK;
}


static ngx_http_edge_orch_reason_e
ngx_http_edge_orch_fragment_classify(ngx_http_request_t *sr,
    ngx_http_edge_orch_frag_t *fs, ngx_int_t rc)
{
    u_char  err[128];

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        fs->status = (rc == NGX_ERROR) ? 0 : (ngx_uint_t) rc;

        /* nginx's own verdict (connect failed, timed out, ...) */
        return (rc == NGX_HTTP_GATEWAY_TIME_OUT)
               ? NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT
               : NGX_HTTP_EDGE_ORCH_REASON_ERROR;
    }

    if (fs->status == 0) {
        fs->status = sr->headers_out.status;
    }

    if (fs->status < 200 || fs->status > 299) {
        return NGX_HTTP_EDGE_ORCH_REASON_STATUS;
    }

    if (fs->encoded) {
        return NGX_HTTP_EDGE_ORCH_REASON_ENCODING;
    }

    if (fs->too_big) {
        return NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG;
    }

    if (!fs->last) {
        /* the upstream gave up in the middle of the body */
        return NGX_HTTP_EDGE_ORCH_REASON_ERROR;
    }

    if (ngx_http_edge_orch_json_validate(fs->body, fs->len, err, sizeof(err))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                      "edge_orch: fragment \"%V\" from \"%V\": %s",
                      &fs->conf->name, &fs->upstream, err);
        return NGX_HTTP_EDGE_ORCH_REASON_INVALID;
    }

    return NGX_HTTP_EDGE_ORCH_REASON_NONE;
}


static void
ngx_http_edge_orch_resolve(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    char                                *action;
    ngx_log_t                           *log;
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    if (fs->resolved) {
        return;
    }

    fs->resolved = 1;
    fs->reason = reason;
    fs->end = ngx_http_edge_orch_usec();

    ctx = fs->ctx;
    fc = fs->conf;

    if (fs->timer.timer_set) {
        ngx_del_timer(&fs->timer);
    }

    if (ctx->pending) {
        ctx->pending--;
    }

    if (reason == NGX_HTTP_EDGE_ORCH_REASON_NONE) {
        fs->outcome = NGX_HTTP_EDGE_ORCH_OK;
        return;
    }

    if (fs->sie_body.len) {
        /* stale-if-error: the last good body beats a fallback */
        fs->outcome = NGX_HTTP_EDGE_ORCH_STALE;
        fs->out = fs->sie_body;
        fs->tags = fs->sie_tags;
        fs->cache = NGX_HTTP_EDGE_ORCH_CACHE_STALE;

    } else if (fc->fallback.len) {
        fs->outcome = NGX_HTTP_EDGE_ORCH_FALLBACK;
        fs->out = fc->fallback;

    } else if (fc->optional) {
        fs->outcome = NGX_HTTP_EDGE_ORCH_OMITTED;

    } else {
        fs->outcome = NGX_HTTP_EDGE_ORCH_FAILED;

        if (ctx->failed == NULL) {
            ctx->failed = fs;
        }
    }

    /* one line per fragment and second at most, whatever the traffic */

    if (ngx_current_msec < fc->log_next) {
        fc->log_suppressed++;
        return;
    }

    log = ctx->request->connection->log;

    /* the connection's action ("sending to client") would mislead here */

    action = log->action;
    log->action = NULL;

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "edge_orch: fragment \"%V\" failed (%s, upstream \"%V\", "
                  "status %ui), %s",
                  &fc->name, ngx_http_edge_orch_reason_name(reason),
                  &fs->upstream, fs->status,
                  fs->outcome == NGX_HTTP_EDGE_ORCH_STALE
                      ? "serving stale"
                      : fs->outcome == NGX_HTTP_EDGE_ORCH_FALLBACK
                        ? "using fallback"
                        : fs->outcome == NGX_HTTP_EDGE_ORCH_OMITTED
                          ? "left out" : "request fails");

    if (fc->log_suppressed) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "edge_orch: fragment \"%V\": %ui more failures in "
                      "the last second were not logged",
                      &fc->name, fc->log_suppressed);
    }

    log->action = action;

    fc->log_next = ngx_current_msec + 1000;
    fc->log_suppressed = 0;
}


static void
ngx_http_edge_orch_timeout_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_edge_orch_ctx_t   *ctx;
    ngx_http_edge_orch_frag_t  *fs;

    fs = ev->data;
    ctx = fs->ctx;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "edge_orch fragment \"%V\" timed out", &fs->conf->name);

    if (fs->refresh) {
        /*
         * a background refresh: the response may be gone already, and the
         * abort below may free the request, so nothing is touched after it
         */
        ngx_http_edge_orch_fetch_done(fs, NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT);
        ngx_http_edge_orch_abort_fragment(fs);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_http_edge_orch_stop_waiting(fs);

    if (fs->sr != NULL && !fs->finished) {
        ngx_http_edge_orch_fetch_done(fs, NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT);
        ngx_http_edge_orch_abort_fragment(fs);

    } else {
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT);
    }

    if (ngx_http_edge_orch_wake(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_edge_orch_abort_fragment(ngx_http_edge_orch_frag_t *fs)
{
    ngx_http_request_t   *sr;
    ngx_http_upstream_t  *u;
    ngx_http_cleanup_pt   handler;

    if (fs->lock_seq) {
        /* cancelled, not failed: waiters fetch, nothing is held down */
        ngx_http_edge_orch_cache_release(fs->ctx->conf->zone, &fs->ckey,
                                         fs->lock_seq);
        fs->lock_seq = 0;
        ngx_http_edge_orch_wake_waiters(fs);
    }

    sr = fs->sr;

    if (sr == NULL || fs->finished) {
        return;
    }

    u = sr->upstream;

    if (u == NULL || u->cleanup == NULL || *u->cleanup == NULL) {
        /* not an upstream or not started yet: it ends by itself */
        return;
    }

    /*
     * the same path nginx takes when the main request is terminated:
     * the upstream is finalized with NGX_DONE, which closes its connection
     * and releases the subrequest's reference without a post_subrequest
     */

    fs->finished = 1;

    handler = *u->cleanup;
    handler(sr);
}


static void
ngx_http_edge_orch_finish_handler(ngx_http_request_t *r)
{
    ngx_http_edge_orch_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_edge_orch_module);

    if (ctx == NULL || ctx->responded
        || (ctx->pending && ctx->failed == NULL))
    {
        return;
    }

    ngx_http_edge_orch_finish(r, ctx);
}


static void
ngx_http_edge_orch_finish(ngx_http_request_t *r, ngx_http_edge_orch_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  i;

    ctx->responded = 1;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->read_event_handler = ngx_http_block_reading;

    /* fragments resolved early (e.g. too big) may still be running */

    for (i = 0; i < ctx->nfrags; i++) {
        ngx_http_edge_orch_stop_waiting(&ctx->frags[i]);

        if (!ctx->frags[i].refresh) {
            ngx_http_edge_orch_abort_fragment(&ctx->frags[i]);
        }
    }

    rc = ngx_http_edge_orch_send_response(r, ctx);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_edge_orch_check_client(ngx_http_request_t *r)
{
    int                        n;
    char                       buf[1];
    ngx_err_t                  err;
    ngx_uint_t                 i;
    ngx_event_t               *ev;
    ngx_connection_t          *c;
    ngx_http_edge_orch_ctx_t  *ctx;

    c = r->connection;
    ev = c->read;

#if (NGX_HTTP_V2)
    if (r->stream) {
        /* a reset stream terminates the request through the h2 layer */
        return;
    }
#endif

    ctx = ngx_http_get_module_ctx(r, ngx_http_edge_orch_module);
    if (ctx == NULL || ctx->responded) {
        return;
    }

    err = 0;

#if (NGX_HAVE_EPOLLRDHUP)

    if ((ngx_event_flags & NGX_USE_EPOLL_EVENT) && ngx_use_epoll_rdhup) {

        if (!ev->pending_eof) {
            return;
        }

        ev->eof = 1;
        err = 0;

        goto closed;
    }

#endif

    n = recv(c->fd, buf, 1, MSG_PEEK);

    err = ngx_socket_errno;

    if (n > 0) {
        /* pipelined data: not ours to read now */

        if ((ngx_event_flags & NGX_USE_LEVEL_EVENT) && ev->active) {
            if (ngx_del_event(ev, NGX_READ_EVENT, 0) != NGX_OK) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            }
        }

        return;
    }

    if (n == -1) {
        if (err == NGX_EAGAIN) {
            return;
        }

        ev->error = 1;

    } else {
        ev->eof = 1;
        err = 0;
    }

#if (NGX_HAVE_EPOLLRDHUP)
closed:
#endif

    ev->ready = 0;
    c->error = 1;
    ctx->responded = 1;

    ngx_log_error(NGX_LOG_INFO, c->log, err,
                  "edge_orch: client closed connection while waiting for "
                  "fragments");

    for (i = 0; i < ctx->nfrags; i++) {
        ngx_http_edge_orch_stop_waiting(&ctx->frags[i]);
        ngx_http_edge_orch_abort_fragment(&ctx->frags[i]);
    }

    ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
}


void
ngx_http_edge_orch_cleanup(void *data)
{
    ngx_http_edge_orch_ctx_t *ctx = data;

    ngx_uint_t                  i;
    ngx_http_edge_orch_frag_t  *fs;

    /* the request is going away: no timer, waiter or lock may outlive it */

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (fs->timer.timer_set) {
            ngx_del_timer(&fs->timer);
        }

        ngx_http_edge_orch_stop_waiting(fs);

        if (fs->lock_seq) {
            ngx_http_edge_orch_cache_release(ctx->conf->zone, &fs->ckey,
                                             fs->lock_seq);
            fs->lock_seq = 0;
            ngx_http_edge_orch_wake_waiters(fs);
        }
    }

    /* a request that ends without an answer (client closed, error) */
    ngx_http_edge_orch_stats_request(ctx, 0);
}
