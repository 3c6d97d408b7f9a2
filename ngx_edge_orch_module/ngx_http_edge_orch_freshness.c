
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * What a fragment's upstream says about caching: Cache-Control (no-store,
 * private, no-cache, max-age, s-maxage, stale-while-revalidate,
 * stale-if-error), Set-Cookie, and its surrogate keys (tags).
 */


#include "ngx_http_edge_orch_module.h"


static void ngx_http_edge_orch_cache_control(ngx_http_edge_orch_frag_t *fs,
    ngx_str_t *value);
static ngx_int_t ngx_http_edge_orch_cc_seconds(u_char *p, u_char *last);
static ngx_int_t ngx_http_edge_orch_add_tags(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_str_t *value, u_char sep);


static ngx_str_t  ngx_http_edge_orch_cache_tag = ngx_string("Cache-Tag");


ngx_int_t
ngx_http_edge_orch_capture_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs)
{
    ngx_str_t                      *th;
    ngx_uint_t                      i;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_http_edge_orch_loc_conf_t  *elcf;

    elcf = fs->ctx->conf;
    th = &elcf->tag_header;

    part = &r->headers_out.headers.part;
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

        if (h[i].hash == 0) {
            continue;
        }

        if (h[i].key.len == sizeof("Cache-Control") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Cache-Control",
                               sizeof("Cache-Control") - 1) == 0)
        {
            ngx_http_edge_orch_cache_control(fs, &h[i].value);
            continue;
        }

        if (h[i].key.len == sizeof("Set-Cookie") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Set-Cookie",
                               sizeof("Set-Cookie") - 1) == 0)
        {
            /* a response that sets a cookie is somebody's own */
            fs->uncacheable = 1;
            continue;
        }

        if (h[i].key.len == th->len
            && ngx_strncasecmp(h[i].key.data, th->data, th->len) == 0)
        {
            /* "Cache-Tag" as the tag header is still comma separated */

            if (ngx_http_edge_orch_add_tags(r, fs, &h[i].value,
                                            ngx_http_edge_orch_tag_sep(th))
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (h[i].key.len == ngx_http_edge_orch_cache_tag.len
            && ngx_strncasecmp(h[i].key.data,
                               ngx_http_edge_orch_cache_tag.data,
                               ngx_http_edge_orch_cache_tag.len) == 0)
        {
            if (ngx_http_edge_orch_add_tags(r, fs, &h[i].value, ',')
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static void
ngx_http_edge_orch_cache_control(ngx_http_edge_orch_frag_t *fs,
    ngx_str_t *value)
{
    u_char     *p, *last, *d, *e;
    size_t      n;
    ngx_int_t   sec;

    p = value->data;
    last = p + value->len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        d = p;

        while (p < last && *p != ',') {
            p++;
        }

        e = p;

        while (e > d && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        n = e - d;

        if (n == 0) {
            continue;
        }

#define ngx_cc_is(s)                                                          \
        (n >= sizeof(s) - 1                                                   \
         && ngx_strncasecmp(d, (u_char *) s, sizeof(s) - 1) == 0)

        if ((n == 8 && ngx_cc_is("no-store"))
            || (n >= 7 && ngx_cc_is("private")
                && (n == 7 || d[7] == '='))
            || (n >= 8 && ngx_cc_is("no-cache")
                && (n == 8 || d[8] == '=')))
        {
            fs->uncacheable = 1;
            continue;
        }

        if (ngx_cc_is("s-maxage=")) {
            sec = ngx_http_edge_orch_cc_seconds(d + 9, e);
            if (sec != NGX_ERROR) {
                /* s-maxage is for shared caches: it wins over max-age */
                fs->max_age = sec;
                fs->s_maxage = 1;
            }

            continue;
        }

        if (ngx_cc_is("max-age=")) {
            sec = ngx_http_edge_orch_cc_seconds(d + 8, e);
            if (sec != NGX_ERROR && !fs->s_maxage) {
                fs->max_age = sec;
            }

            continue;
        }

        if (ngx_cc_is("stale-while-revalidate=")) {
            fs->cc_swr = ngx_http_edge_orch_cc_seconds(d + 23, e);
            continue;
        }

        if (ngx_cc_is("stale-if-error=")) {
            fs->cc_sie = ngx_http_edge_orch_cc_seconds(d + 15, e);
            continue;
        }

#undef ngx_cc_is
    }
}


static ngx_int_t
ngx_http_edge_orch_cc_seconds(u_char *p, u_char *last)
{
    ngx_int_t  n;

    if (p < last && *p == '"' && last - p >= 2 && last[-1] == '"') {
        p++;
        last--;
    }

    if (last - p > 9) {
        /* more than 31 years: as good as forever, and no overflow */
        return 999999999;
    }

    n = ngx_atoi(p, last - p);

    return n;
}


static ngx_int_t
ngx_http_edge_orch_add_tags(ngx_http_request_t *r,
    ngx_http_edge_orch_frag_t *fs, ngx_str_t *value, u_char sep)
{
    ngx_http_edge_orch_loc_conf_t  *elcf;

    elcf = fs->ctx->conf;

    return ngx_http_edge_orch_tags_append(r->pool, &fs->resp_tags,
                                          value->data, value->len, sep,
                                          elcf->tag_max_len, elcf->tags_max,
                                          &fs->ntags, &fs->tags_dropped);
}


void
ngx_http_edge_orch_freshness(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_freshness_t *fr)
{
    ngx_msec_t                           ms;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    fc = fs->conf;

    fr->cacheable = !fs->uncacheable;
    fr->ttl = fc->ttl;
    fr->swr = fc->stale;
    fr->sie = fc->stale;

    /* the upstream may shorten what the configuration allows, never extend */

    if (fs->max_age >= 0) {
        ms = (ngx_msec_t) fs->max_age * 1000;
        fr->ttl = ngx_min(fr->ttl, ms);
    }

    if (fs->cc_swr >= 0) {
        ms = (ngx_msec_t) fs->cc_swr * 1000;
        fr->swr = ngx_min(fr->swr, ms);
    }

    if (fs->cc_sie >= 0) {
        ms = (ngx_msec_t) fs->cc_sie * 1000;
        fr->sie = ngx_min(fr->sie, ms);
    }
}
