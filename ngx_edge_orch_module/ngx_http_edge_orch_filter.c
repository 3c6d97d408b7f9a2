
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Output filters that capture a fragment subrequest's response (status,
 * headers and body) into the fragment's state instead of letting it reach
 * the client connection.  Everything else passes through untouched.
 */


#include "ngx_http_edge_orch_module.h"


#define NGX_HTTP_EDGE_ORCH_BODY_CHUNK  4096


static ngx_int_t ngx_http_edge_orch_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_edge_orch_append(ngx_http_edge_orch_frag_t *fs,
    u_char *data, size_t len);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_edge_orch_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_edge_orch_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_edge_orch_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_header_filter(ngx_http_request_t *r)
{
    size_t                          max;
    ngx_table_elt_t                *ce;
    ngx_http_edge_orch_frag_t      *fs;
    ngx_http_edge_orch_loc_conf_t  *elcf;

    fs = ngx_http_edge_orch_fragment_of(r);

    if (fs == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* headers of a fragment are ours; they are never sent anywhere */

    r->header_sent = 1;

    if (!ngx_http_edge_orch_capturing(fs)) {
        return NGX_OK;
    }

    fs->status = r->headers_out.status;

    if (ngx_http_edge_orch_capture_headers(r, fs) != NGX_OK) {
        return NGX_ERROR;
    }

    ce = r->headers_out.content_encoding;

    if (ce != NULL && ce->hash != 0 && ce->value.len
        && !(ce->value.len == 8
             && ngx_strncasecmp(ce->value.data, (u_char *) "identity", 8)
                == 0))
    {
        fs->encoded = 1;
    }

    elcf = fs->ctx->conf;
    max = elcf->max_fragment_size;

    if (r->headers_out.content_length_n > (off_t) max) {
        fs->too_big = 1;

        if (ngx_http_edge_orch_fragment_failed(fs,
                                          NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (r->headers_out.content_length_n > 0) {
        fs->size = (size_t) r->headers_out.content_length_n;
        fs->body = ngx_pnalloc(fs->ctx->request->pool, fs->size);
        if (fs->body == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                      len;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_http_edge_orch_frag_t  *fs;

    fs = ngx_http_edge_orch_fragment_of(r);

    if (fs == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->last_buf || b->last_in_chain) {
            fs->last = 1;
        }

        if (!ngx_buf_in_memory(b)) {
            if (b->in_file) {
                /* filter_need_in_memory makes this impossible */
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "edge_orch: file buffer in fragment \"%V\"",
                              &fs->conf->name);
                fs->too_big = 1;
                b->file_pos = b->file_last;
            }

            continue;
        }

        len = b->last - b->pos;

        if (len && !fs->too_big && ngx_http_edge_orch_capturing(fs)) {
            if (ngx_http_edge_orch_append(fs, b->pos, len) != NGX_OK) {
                return NGX_ERROR;
            }

            if (fs->too_big) {
                /* no need to wait for the rest: decide now */
                if (ngx_http_edge_orch_fragment_failed(fs,
                                          NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_append(ngx_http_edge_orch_frag_t *fs, u_char *data,
    size_t len)
{
    size_t   max, size;
    u_char  *p;

    max = fs->ctx->conf->max_fragment_size;

    if (len > max - fs->len) {
        fs->too_big = 1;
        return NGX_OK;
    }

    if (fs->len + len > fs->size) {

        /* grow geometrically; the old block stays in the pool */

        size = fs->size ? fs->size * 2 : NGX_HTTP_EDGE_ORCH_BODY_CHUNK;

        while (size < fs->len + len) {
            size *= 2;
        }

        if (size > max) {
            size = max;
        }

        p = ngx_pnalloc(fs->ctx->request->pool, size);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (fs->len) {
            ngx_memcpy(p, fs->body, fs->len);
        }

        fs->body = p;
        fs->size = size;
    }

    ngx_memcpy(fs->body + fs->len, data, len);
    fs->len += len;

    return NGX_OK;
}
