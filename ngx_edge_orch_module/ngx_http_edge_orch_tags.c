
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Surrogate keys (tags): parsing of tag lists with limits, and the union of
 * all fragments' tags in the response header for an outer CDN.
 *
 * Limits, at least as generous as the major CDNs': a tag is 1..1024 bytes
 * of visible ASCII, a fragment carries at most 256 tags (16 KB in all), the
 * response header at most 16 KB.  What is over a limit is dropped and
 * counted, never a failed request.
 */


#include "ngx_http_edge_orch_module.h"



ngx_int_t
ngx_http_edge_orch_tags_append(ngx_pool_t *pool, ngx_str_t *dst, u_char *p,
    size_t len, u_char sep, size_t max_tag, ngx_uint_t max_tags,
    ngx_uint_t *ntags, ngx_uint_t *dropped)
{
    u_char      *last, *t, *buf;
    size_t       n, size;
    ngx_uint_t   bad;

    /* the result is "a b c": one space between tags */

    size = dst->len + len + 1;

    if (size > NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN) {
        size = NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN;
    }

    buf = ngx_pnalloc(pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    /* the first list of a fragment starts from an empty, NULL string */

    if (dst->len) {
        ngx_memcpy(buf, dst->data, dst->len);
    }

    n = dst->len;

    last = p + len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == sep)) {
            p++;
        }

        t = p;
        bad = 0;

        while (p < last && *p != sep && *p != ' ' && *p != '\t') {
            if (*p < 0x21 || *p > 0x7e) {
                bad = 1;
            }

            p++;
        }

        if (p == t) {
            continue;
        }

        if (bad || (size_t) (p - t) > max_tag || *ntags >= max_tags
            || n + (p - t) + 1 > size)
        {
            (*dropped)++;
            continue;
        }

        if (n) {
            buf[n++] = ' ';
        }

        ngx_memcpy(buf + n, t, p - t);
        n += p - t;
        (*ntags)++;
    }

    dst->data = buf;
    dst->len = n;

    return NGX_OK;
}


u_char
ngx_http_edge_orch_tag_sep(ngx_str_t *header)
{
    /* Cloudflare's Cache-Tag lists are comma separated, Fastly's spaces */

    if (header->len == sizeof("Cache-Tag") - 1
        && ngx_strncasecmp(header->data, (u_char *) "Cache-Tag",
                           sizeof("Cache-Tag") - 1) == 0)
    {
        return ',';
    }

    return ' ';
}


ngx_int_t
ngx_http_edge_orch_tags_header(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    u_char                     *out, *p, *last, *t, *sepstr;
    size_t                      len, seplen, k;
    uint32_t                    hash;
    ngx_str_t                  *lists, **seen;
    ngx_uint_t                  i, n, dropped, nlists, ntok, hsize;
    ngx_table_elt_t            *h;
    ngx_http_edge_orch_frag_t  *fs;

    if (!ctx->conf->expose_tags) {
        return NGX_OK;
    }

    /* fragments in declaration order, then edge_orch_tags */

    nlists = ctx->nfrags + 1;

    lists = ngx_palloc(r->pool, nlists * sizeof(ngx_str_t));
    if (lists == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (fs->out.len == 0) {
            /* left out of the document, so are its tags */
            ngx_str_null(&lists[i]);
            continue;
        }

        lists[i] = fs->tags;
        len += fs->tags.len + 2;
    }

    lists[ctx->nfrags] = ctx->page_tags;
    len += ctx->page_tags.len + 2;

    if (len == 0) {
        return NGX_OK;
    }

    sepstr = (ngx_http_edge_orch_tag_sep(&ctx->conf->tag_header) == ',')
             ? (u_char *) "," : (u_char *) " ";
    seplen = 1;

    if (len > NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN) {
        len = NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN;
    }

    out = ngx_pnalloc(r->pool, len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    /* a hash set twice as large as the number of tags */

    ntok = 0;

    for (i = 0; i < nlists; i++) {
        for (p = lists[i].data; p < lists[i].data + lists[i].len; p++) {
            ntok += (*p == ' ');
        }

        ntok++;
    }

    hsize = 2 * ntok + 1;

    seen = ngx_pcalloc(r->pool, hsize * sizeof(ngx_str_t *));
    if (seen == NULL) {
        return NGX_ERROR;
    }

    n = 0;
    dropped = 0;

    for (i = 0; i < nlists; i++) {
        p = lists[i].data;
        last = p + lists[i].len;

        while (p < last) {
            t = p;

            while (p < last && *p != ' ') {
                p++;
            }

            if (p == t) {
                p++;
                continue;
            }

            /* open addressing on the tag's hash: drop duplicates */

            hash = ngx_crc32_short(t, p - t) % hsize;

            for (k = 0; k < hsize; k++) {
                if (seen[hash] == NULL
                    || (seen[hash]->len == (size_t) (p - t)
                        && ngx_memcmp(seen[hash]->data, t, p - t) == 0))
                {
                    break;
                }

                hash = (hash + 1) % hsize;
            }

            if (k == hsize || seen[hash] != NULL) {
                /* a duplicate */
                p++;
                continue;
            }

            if (n + (n ? seplen : 0) + (p - t) > len) {
                dropped++;
                p++;
                continue;
            }

            seen[hash] = ngx_palloc(r->pool, sizeof(ngx_str_t));
            if (seen[hash] == NULL) {
                return NGX_ERROR;
            }

            if (n) {
                out[n] = sepstr[0];
                n += seplen;
            }

            seen[hash]->data = out + n;
            seen[hash]->len = p - t;

            ngx_memcpy(out + n, t, p - t);
            n += p - t;

            p++;
        }
    }

    if (dropped) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "edge_orch: %ui tags left out of the \"%V\" response "
                      "header (limit %d bytes)", dropped,
                      &ctx->conf->tag_header, NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN);
    }

    if (n == 0) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ctx->conf->tag_header;
    h->value.data = out;
    h->value.len = n;

    return NGX_OK;
}
