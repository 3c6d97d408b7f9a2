
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
static ngx_list_t *ngx_http_edge_orch_filter_headers(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_wake(ngx_http_edge_orch_ctx_t *ctx);
static void ngx_http_edge_orch_fragment_classify(ngx_http_request_t *sr,
    ngx_http_edge_orch_frag_t *fs, ngx_int_t rc);
static void ngx_http_edge_orch_resolve(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);
static void ngx_http_edge_orch_timeout_handler(ngx_event_t *ev);
static void ngx_http_edge_orch_abort_fragment(ngx_http_edge_orch_frag_t *fs);
static void ngx_http_edge_orch_finish_handler(ngx_http_request_t *r);
static void ngx_http_edge_orch_finish(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
static void ngx_http_edge_orch_cleanup(void *data);


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
    ngx_uint_t                           i;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_frag_t           *fs;
    ngx_http_edge_orch_loc_conf_t       *elcf;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_edge_orch_module);
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

    if (ngx_http_edge_orch_routes_begin(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_edge_orch_start_fragment(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_http_edge_orch_frag_t *fs)
{
    ngx_int_t                            rc;
    ngx_str_t                            uri, args;
    ngx_uint_t                           flags;
    ngx_http_request_t                  *sr;
    ngx_http_request_body_t             *rb;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    fc = fs->conf;

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

    if (ngx_http_complex_value(r, &fc->uri, &uri) != NGX_OK) {
        return NGX_ERROR;
    }

    args.len = 0;
    args.data = NULL;
    flags = NGX_HTTP_LOG_UNSAFE;

    if (ngx_http_parse_unsafe_uri(r, &uri, &args, &flags) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "edge_orch: fragment \"%V\": unsafe uri \"%V\"",
                      &fc->name, &uri);
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
        return NGX_OK;
    }

    if (ctx->sr_headers == NULL) {
        ctx->sr_headers = ngx_http_edge_orch_filter_headers(r);
        if (ctx->sr_headers == NULL) {
            return NGX_ERROR;
        }
    }

    fs->ps.handler = ngx_http_edge_orch_post_subrequest;
    fs->ps.data = fs;

    if (ngx_http_subrequest(r, &uri, &args, &sr, &fs->ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_ERROR);
        return NGX_OK;
    }

    fs->sr = sr;

    /* the fragment gets no request body and no hop-by-hop headers */

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    sr->request_body = rb;
    sr->headers_in.headers = *ctx->sr_headers;
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

    fs->timer.handler = ngx_http_edge_orch_timeout_handler;
    fs->timer.data = fs;
    fs->timer.log = r->connection->log;

    ngx_add_timer(&fs->timer, fc->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "edge_orch fragment \"%V\" -> \"%V\" via \"%V\"",
                   &fc->name, &uri, &fs->upstream);

    return NGX_OK;
}


static ngx_list_t *
ngx_http_edge_orch_filter_headers(ngx_http_request_t *r)
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

        if (d->len) {
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

    if (!fs->resolved) {
        ngx_http_edge_orch_fragment_classify(r, fs, rc);

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
    ngx_http_edge_orch_resolve(fs, reason);

    return ngx_http_edge_orch_wake(fs->ctx);
}


static ngx_int_t
ngx_http_edge_orch_wake(ngx_http_edge_orch_ctx_t *ctx)
{
    if (ctx->pending == 0 && ctx->waiting && !ctx->responded) {

        /* the main request continues in its write event handler */

        return ngx_http_post_request(ctx->request, NULL);
    }

    return NGX_OK;
}


static void
ngx_http_edge_orch_fragment_classify(ngx_http_request_t *sr,
    ngx_http_edge_orch_frag_t *fs, ngx_int_t rc)
{
    u_char                       err[128];
    ngx_http_edge_orch_reason_e  reason;

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        fs->status = (rc == NGX_ERROR) ? 0 : (ngx_uint_t) rc;
        /* nginx's own verdict (connect failed, timed out, ...) */
        reason = (rc == NGX_HTTP_GATEWAY_TIME_OUT)
                 ? NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT
                 : NGX_HTTP_EDGE_ORCH_REASON_ERROR;
        goto failed;
    }

    if (fs->status == 0) {
        fs->status = sr->headers_out.status;
    }

    if (fs->status < 200 || fs->status > 299) {
        reason = NGX_HTTP_EDGE_ORCH_REASON_STATUS;
        goto failed;
    }

    if (fs->encoded) {
        reason = NGX_HTTP_EDGE_ORCH_REASON_ENCODING;
        goto failed;
    }

    if (fs->too_big) {
        reason = NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG;
        goto failed;
    }

    if (!fs->last) {
        /* the upstream gave up in the middle of the body */
        reason = NGX_HTTP_EDGE_ORCH_REASON_ERROR;
        goto failed;
    }

    if (ngx_http_edge_orch_json_validate(fs->body, fs->len, err, sizeof(err))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                      "edge_orch: fragment \"%V\" from \"%V\": %s",
                      &fs->conf->name, &fs->upstream, err);
        reason = NGX_HTTP_EDGE_ORCH_REASON_INVALID;
        goto failed;
    }

    fs->out.data = fs->body;
    fs->out.len = fs->len;

    ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_NONE);
    return;

failed:

    ngx_http_edge_orch_resolve(fs, reason);
}


static void
ngx_http_edge_orch_resolve(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason)
{
    ngx_log_t                           *log;
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    if (fs->resolved) {
        return;
    }

    fs->resolved = 1;
    fs->reason = reason;

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

    if (fc->fallback.len) {
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

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "edge_orch: fragment \"%V\" failed (%s, upstream \"%V\", "
                  "status %ui), %s; %ui similar failures suppressed",
                  &fc->name, ngx_http_edge_orch_reason_name(reason),
                  &fs->upstream, fs->status,
                  fs->outcome == NGX_HTTP_EDGE_ORCH_FALLBACK
                      ? "using fallback"
                      : fs->outcome == NGX_HTTP_EDGE_ORCH_OMITTED
                        ? "left out" : "request fails",
                  fc->log_suppressed);

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

    ngx_http_edge_orch_resolve(fs, NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT);

    ngx_http_edge_orch_abort_fragment(fs);

    if (ctx->pending == 0 && ctx->waiting && !ctx->responded) {
        ngx_http_edge_orch_finish(r, ctx);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_edge_orch_abort_fragment(ngx_http_edge_orch_frag_t *fs)
{
    ngx_http_request_t   *sr;
    ngx_http_upstream_t  *u;
    ngx_http_cleanup_pt   handler;

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

    if (ctx == NULL || ctx->responded || ctx->pending) {
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

    /* fragments resolved early (e.g. too big) may still be running */

    for (i = 0; i < ctx->nfrags; i++) {
        ngx_http_edge_orch_abort_fragment(&ctx->frags[i]);
    }

    rc = ngx_http_edge_orch_send_response(r, ctx);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_edge_orch_cleanup(void *data)
{
    ngx_http_edge_orch_ctx_t *ctx = data;

    ngx_uint_t  i;

    for (i = 0; i < ctx->nfrags; i++) {
        if (ctx->frags[i].timer.timer_set) {
            ngx_del_timer(&ctx->frags[i].timer);
        }
    }
}
