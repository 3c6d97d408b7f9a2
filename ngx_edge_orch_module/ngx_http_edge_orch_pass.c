
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Pass mode: after the fan-out the assembled document is not sent to the
 * client but handed to the framework's server (Next.js, Nuxt, SvelteKit)
 * through an internal redirect, so its loader can skip its own API calls.
 * The document travels in a request header (base64, size-limited) or, when
 * larger, as the request body of a POST with the original method in
 * X-Edge-Orch-Method; it is also available as $edge_orch_payload.
 */


#include "ngx_http_edge_orch_module.h"


struct ngx_http_edge_orch_pass_conf_s {
    ngx_str_t                      target;        /* @name or /uri */
    ngx_str_t                      header;        /* empty: never a header */
    size_t                         header_max;
    ngx_flag_t                     always_body;
};


static ngx_int_t ngx_http_edge_orch_pass_strip(ngx_http_request_t *r,
    ngx_http_edge_orch_pass_conf_t *pc);
static ngx_int_t ngx_http_edge_orch_pass_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_edge_orch_pass_body(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);


static ngx_str_t  ngx_http_edge_orch_method_header =
    ngx_string("X-Edge-Orch-Method");


char *
ngx_http_edge_orch_pass_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ssize_t                          size;
    ngx_str_t                       *value, s;
    ngx_uint_t                       i;
    ngx_http_edge_orch_pass_conf_t  *pc;

    if (elcf->pass != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 2 || (value[1].data[0] != '@'
                             && value[1].data[0] != '/'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_pass\" needs a named location "
                           "(@origin) or a uri (/render), got \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    pc = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_pass_conf_t));
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    pc->target = value[1];
    ngx_str_set(&pc->header, "X-Edge-Orch-Payload");
    pc->header_max = 8192;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "header=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                pc->header.len = 0;
                continue;
            }

            if (s.len == 0) {
                goto invalid;
            }

            pc->header = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "header_max=", 11) == 0) {
            s.data = value[i].data + 11;
            s.len = value[i].len - 11;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size == 0) {
                goto invalid;
            }

            pc->header_max = (size_t) size;
            continue;
        }

        if (value[i].len == 4 && ngx_strncmp(value[i].data, "body", 4) == 0) {
            pc->always_body = 1;
            continue;
        }

        goto invalid;
    }

    elcf->pass = pc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" (expected header=NAME|off, "
                       "header_max=SIZE or body)", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_edge_orch_pass(ngx_http_request_t *r, ngx_http_edge_orch_ctx_t *ctx,
    ngx_chain_t *doc, off_t len)
{
    u_char                          *p;
    ngx_str_t                        enc, uri, args;
    ngx_chain_t                     *cl;
    ngx_http_edge_orch_pass_conf_t  *pc;

    pc = ctx->conf->pass;

    /* one contiguous copy: $edge_orch_payload and the body point at it */

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->payload.data = p;

    for (cl = doc; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    ctx->payload.len = p - ctx->payload.data;

    /* whatever the client sent under our names must not reach the origin */

    if (ngx_http_edge_orch_pass_strip(r, pc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * the client gets the page's tags and outcome with the origin's answer,
     * so an outer CDN can purge the rendered page by the same keys
     */

    if (ngx_http_edge_orch_response_headers(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* HEAD has no body to carry it: the header it is, whatever its size */

    if (pc->header.len
        && (r->method == NGX_HTTP_HEAD
            || (!pc->always_body
                && ngx_base64_encoded_length(ctx->payload.len)
                   <= pc->header_max)))
    {
        enc.len = ngx_base64_encoded_length(ctx->payload.len);
        enc.data = ngx_pnalloc(r->pool, enc.len);
        if (enc.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_encode_base64(&enc, &ctx->payload);

        if (ngx_http_edge_orch_pass_header(r, &pc->header, &enc) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (r->method != NGX_HTTP_HEAD) {
        if (ngx_http_edge_orch_pass_body(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "edge_orch pass %uz bytes to \"%V\"", ctx->payload.len,
                   &pc->target);

    if (pc->target.data[0] == '@') {
        return ngx_http_named_location(r, &pc->target);
    }

    uri = pc->target;
    ngx_str_null(&args);

    /* the client's arguments go along to the origin */

    if (r->args.len) {
        args = r->args;
    }

    return ngx_http_internal_redirect(r, &uri, &args);
}


static ngx_int_t
ngx_http_edge_orch_pass_strip(ngx_http_request_t *r,
    ngx_http_edge_orch_pass_conf_t *pc)
{
    ngx_uint_t        i;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    if (ngx_list_init(&list, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
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

        if ((pc->header.len && h[i].key.len == pc->header.len
             && ngx_strncasecmp(h[i].key.data, pc->header.data,
                                pc->header.len) == 0)
            || (h[i].key.len == ngx_http_edge_orch_method_header.len
                && ngx_strncasecmp(h[i].key.data,
                                   ngx_http_edge_orch_method_header.data,
                                   ngx_http_edge_orch_method_header.len)
                   == 0))
        {
            continue;
        }

        nh = ngx_list_push(&list);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    /* a list copied by value must point at its own first part */

    r->headers_in.headers = list;

    if (list.last == &list.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_pass_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key = *name;
    h->value = *value;
    h->lowcase_key = ngx_pnalloc(r->pool, name->len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, name->data, name->len);

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_pass_body(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    ngx_buf_t                *b;
    ngx_str_t                 method;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    /* too big for a header: POST it, saying what the client asked for */

    method.len = r->method_name.len;
    method.data = r->method_name.data;

    if (ngx_http_edge_orch_pass_header(r, &ngx_http_edge_orch_method_header,
                                       &method)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->payload.data;
    b->last = ctx->payload.data + ctx->payload.len;
    b->memory = 1;
    b->last_buf = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = cl;
    rb->rest = 0;

    r->request_body = rb;
    r->headers_in.content_length_n = ctx->payload.len;
    r->headers_in.chunked = 0;
    r->discard_body = 0;

    r->method = NGX_HTTP_POST;
    ngx_str_set(&r->method_name, "POST");

    return NGX_OK;
}


ngx_http_edge_orch_ctx_t *
ngx_http_edge_orch_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_edge_orch_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_edge_orch_module);
    if (ctx != NULL) {
        return ctx;
    }

    /*
     * an internal redirect (pass mode) wipes module contexts; the
     * request pool's cleanup still knows ours
     */

    if (r != r->main) {
        return NULL;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_edge_orch_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}
