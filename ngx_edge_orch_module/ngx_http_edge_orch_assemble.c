
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * JSON validation (jansson, once per fragment body) and assembly of the
 * response document by concatenation: {"name":<fragment>,...}.
 */


#include "ngx_http_edge_orch_module.h"

#include <jansson.h>


static ngx_int_t ngx_http_edge_orch_send_error(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
static ngx_int_t ngx_http_edge_orch_send(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_uint_t status, ngx_chain_t *out,
    off_t len);


static const char  *ngx_http_edge_orch_reasons[] = {
    "none",
    "timeout",
    "status",
    "invalid",
    "too_big",
    "encoding",
    "no_route",
    "error"
};


static const char  *ngx_http_edge_orch_outcomes[] = {
    "cancelled",
    "ok",
    "stale",
    "fallback",
    "omitted",
    "failed"
};


static ngx_str_t  ngx_http_edge_orch_json_type =
    ngx_string("application/json");


ngx_int_t
ngx_http_edge_orch_json_validate(u_char *data, size_t len, u_char *err,
    size_t errlen)
{
    json_t        *json;
    json_error_t   error;

    if (len == 0) {
        ngx_cpystrn(err, (u_char *) "empty body", errlen);
        return NGX_ERROR;
    }

    json = json_loadb((const char *) data, len,
                      JSON_DECODE_ANY|JSON_ALLOW_NUL, &error);

    if (json == NULL) {
        ngx_snprintf(err, errlen - 1, "%s at line %d column %d%Z",
                     error.text, error.line, error.column);
        err[errlen - 1] = '\0';
        return NGX_ERROR;
    }

    json_decref(json);

    return NGX_OK;
}


const char *
ngx_http_edge_orch_reason_name(ngx_http_edge_orch_reason_e reason)
{
    return ngx_http_edge_orch_reasons[reason];
}


u_char *
ngx_http_edge_orch_outcome_string(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len)
{
    u_char                     *p, *s;
    size_t                      n;
    ngx_uint_t                  i;
    ngx_http_edge_orch_frag_t  *fs;

    n = 0;

    for (i = 0; i < ctx->nfrags; i++) {
        n += ctx->frags[i].conf->name.len + sizeof("=fallback:no_route; ");
    }

    s = ngx_pnalloc(pool, n + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (i) {
            *p++ = ';';
            *p++ = ' ';
        }

        p = ngx_sprintf(p, "%V=%s", &fs->conf->name,
                        ngx_http_edge_orch_outcomes[fs->outcome]);

        if (fs->reason != NGX_HTTP_EDGE_ORCH_REASON_NONE) {
            p = ngx_sprintf(p, ":%s",
                            ngx_http_edge_orch_reasons[fs->reason]);
        }
    }

    *len = p - s;

    return s;
}


u_char *
ngx_http_edge_orch_cache_status(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len, ngx_uint_t rfc)
{
    u_char                     *p, *s;
    size_t                      n;
    int64_t                     ttl;
    ngx_uint_t                  i, first;
    ngx_http_edge_orch_frag_t  *fs;

    static const char  *names[] = {
        "NONE", "MISS", "HIT", "STALE", "COLLAPSED", "PASS"
    };

    n = 0;

    for (i = 0; i < ctx->nfrags; i++) {
        n += ctx->frags[i].conf->name.len
             + sizeof("edge-orch/; fwd=miss; fwd-status=999; collapsed; "
                      "stored; ttl=-9223372036854775808, ");
    }

    s = ngx_pnalloc(pool, n + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    first = 1;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (fs->cache == NGX_HTTP_EDGE_ORCH_CACHE_NONE) {
            continue;
        }

        if (!first) {
            *p++ = rfc ? ',' : ';';
            *p++ = ' ';
        }

        first = 0;

        if (!rfc) {
            p = ngx_sprintf(p, "%V=%s", &fs->conf->name, names[fs->cache]);
            continue;
        }

        /* RFC 9211: one cache member per fragment */

        p = ngx_sprintf(p, "edge-orch/%V", &fs->conf->name);
        ttl = fs->ttl / 1000;

        switch (fs->cache) {

        case NGX_HTTP_EDGE_ORCH_CACHE_HIT:
            p = ngx_sprintf(p, "; hit; ttl=%L", ttl);
            break;

        case NGX_HTTP_EDGE_ORCH_CACHE_STALE:
            p = ngx_sprintf(p, "; hit; fwd=stale; ttl=%L",
                            fs->ttl < 0 ? ttl : (int64_t) 0);
            break;

        case NGX_HTTP_EDGE_ORCH_CACHE_COLLAPSED:
            p = ngx_sprintf(p, "; fwd=miss; collapsed");
            break;

        case NGX_HTTP_EDGE_ORCH_CACHE_PASS:
            p = ngx_sprintf(p, "; fwd=request");
            break;

        default: /* MISS */
            p = ngx_sprintf(p, "; fwd=miss");

            if (fs->status) {
                p = ngx_sprintf(p, "; fwd-status=%ui", fs->status);
            }

            if (fs->stored) {
                p = ngx_sprintf(p, "; stored");
            }
        }
    }

    *len = p - s;

    return s;
}


ngx_int_t
ngx_http_edge_orch_send_response(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    off_t         len;
    ngx_chain_t  *out;

    /*
     * counted before the answer leaves: a status page read right after it
     * already shows this request
     */

    ngx_http_edge_orch_stats_request(ctx, 1);

    if (ctx->failed != NULL) {
        return ngx_http_edge_orch_send_error(r, ctx);
    }

    if (ngx_http_edge_orch_document(r, ctx, &out, &len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->conf->pass != NULL) {
        /* pass mode: the document goes to the origin, not to the client */
        return ngx_http_edge_orch_pass(r, ctx, out, len);
    }

    return ngx_http_edge_orch_send(r, ctx, NGX_HTTP_OK, out, len);
}


ngx_int_t
ngx_http_edge_orch_document(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_chain_t **chain, off_t *length)
{
    off_t                       len;
    u_char                     *p;
    size_t                      size;
    ngx_buf_t                  *b;
    ngx_uint_t                  i, first;
    ngx_chain_t                *out, **ll, *cl;
    ngx_http_edge_orch_frag_t  *fs;

    /* one block for all punctuation and names, the bodies are referenced */

    size = sizeof("{}");

    for (i = 0; i < ctx->nfrags; i++) {
        size += ctx->frags[i].conf->name.len + sizeof(",\"\":");
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out = NULL;
    ll = &out;
    len = 0;
    first = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = p;
    *p++ = '{';

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (fs->out.len == 0) {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;

        p = ngx_sprintf(p, "\"%V\":", &fs->conf->name);
        b->last = p;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
        len += b->last - b->pos;

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->memory = 1;
        b->pos = fs->out.data;
        b->last = fs->out.data + fs->out.len;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
        len += fs->out.len;

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->memory = 1;
        b->pos = p;
    }

    *p++ = '}';
    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;
    *ll = cl;
    len += b->last - b->pos;

    *chain = out;
    *length = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_send_error(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    ngx_buf_t                  *b;
    ngx_uint_t                  status;
    ngx_chain_t                *out;
    ngx_http_edge_orch_frag_t  *fs;

    fs = ctx->failed;

    status = (fs->reason == NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT)
             ? NGX_HTTP_GATEWAY_TIME_OUT : NGX_HTTP_BAD_GATEWAY;

    b = ngx_create_temp_buf(r->pool, fs->conf->name.len
                            + sizeof("{\"error\":\"fragment failed\","
                                     "\"fragment\":\"\",\"reason\":\"\"}\n")
                            + sizeof("no_route"));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last,
                          "{\"error\":\"fragment failed\",\"fragment\":\"%V\","
                          "\"reason\":\"%s\"}\n",
                          &fs->conf->name,
                          ngx_http_edge_orch_reasons[fs->reason]);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out = ngx_alloc_chain_link(r->pool);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out->buf = b;
    out->next = NULL;

    return ngx_http_edge_orch_send(r, ctx, status, out, b->last - b->pos);
}


ngx_int_t
ngx_http_edge_orch_response_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    size_t            n;
    u_char           *s;
    ngx_table_elt_t  *h;

    /* X-Edge-Orch, the tag header and Cache-Status */

    if (ctx->conf->outcome_header.len) {
        s = ngx_http_edge_orch_outcome_string(ctx, r->pool, &n);
        if (s == NULL) {
            return NGX_ERROR;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key = ctx->conf->outcome_header;
        h->value.data = s;
        h->value.len = n;
    }

    if (ngx_http_edge_orch_tags_header(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->conf->zone != NULL) {
        s = ngx_http_edge_orch_cache_status(ctx, r->pool, &n, 1);
        if (s == NULL) {
            return NGX_ERROR;
        }

        if (n) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "Cache-Status");
            h->value.data = s;
            h->value.len = n;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_send(ngx_http_request_t *r, ngx_http_edge_orch_ctx_t *ctx,
    ngx_uint_t status, ngx_chain_t *out, off_t len)
{
    ngx_int_t  rc;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = ngx_http_edge_orch_json_type;
    r->headers_out.content_type_len = ngx_http_edge_orch_json_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_edge_orch_response_headers(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* X-Request-Id, Server-Timing */

    if (ngx_http_edge_orch_trace_response(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}
