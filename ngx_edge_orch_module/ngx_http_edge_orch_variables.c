
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * $edge_orch_* variables.  Subrequests share the parent's variable cache,
 * so every variable here is not cacheable: a fragment's subrequest must see
 * its own $edge_orch_upstream, not its sibling's.
 */


#include "ngx_http_edge_orch_module.h"


typedef enum {
    NGX_HTTP_EDGE_ORCH_VAR_REGION = 0,
    NGX_HTTP_EDGE_ORCH_VAR_GROUP,
    NGX_HTTP_EDGE_ORCH_VAR_DEVICE,
    NGX_HTTP_EDGE_ORCH_VAR_BUCKET,
    NGX_HTTP_EDGE_ORCH_VAR_UPSTREAM,
    NGX_HTTP_EDGE_ORCH_VAR_FRAGMENT,
    NGX_HTTP_EDGE_ORCH_VAR_GENERATION,
    NGX_HTTP_EDGE_ORCH_VAR_FRAGMENTS,
    NGX_HTTP_EDGE_ORCH_VAR_CACHE_STATUS,
    NGX_HTTP_EDGE_ORCH_VAR_PAYLOAD,
    NGX_HTTP_EDGE_ORCH_VAR_REQUEST_ID,
    NGX_HTTP_EDGE_ORCH_VAR_TRACE_ID,
    NGX_HTTP_EDGE_ORCH_VAR_TIMES,
    NGX_HTTP_EDGE_ORCH_VAR_STATUSES,
    NGX_HTTP_EDGE_ORCH_VAR_ROUTES,
    NGX_HTTP_EDGE_ORCH_VAR_SPANS
} ngx_http_edge_orch_var_e;


static ngx_int_t ngx_http_edge_orch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_edge_orch_set_str(ngx_http_variable_value_t *v,
    ngx_str_t *s);
static ngx_int_t ngx_http_edge_orch_fragment_list(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_http_variable_value_t *v,
    uintptr_t data);


static ngx_http_variable_t  ngx_http_edge_orch_vars[] = {

    { ngx_string("edge_orch_region"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_REGION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_group"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_GROUP, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_device"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_DEVICE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_bucket"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_BUCKET, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_upstream"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_UPSTREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_fragment"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_FRAGMENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_routes_generation"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_GENERATION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_fragments"), NULL, ngx_http_edge_orch_variable,
      NGX_HTTP_EDGE_ORCH_VAR_FRAGMENTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_payload"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_PAYLOAD,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_cache_status"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_CACHE_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_request_id"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_REQUEST_ID,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_trace_id"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_TRACE_ID,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_fragment_times"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_TIMES,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_fragment_statuses"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_STATUSES,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_routes"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_ROUTES,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edge_orch_fragment_spans"), NULL,
      ngx_http_edge_orch_variable, NGX_HTTP_EDGE_ORCH_VAR_SPANS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_edge_orch_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_edge_orch_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    size_t                      len;
    uint64_t                    gen;
    ngx_http_edge_orch_ctx_t   *ctx;
    ngx_http_edge_orch_frag_t  *fs;

    fs = ngx_http_edge_orch_fragment_of(r);

    if (fs != NULL) {
        ctx = fs->ctx;

    } else {
        ctx = ngx_http_edge_orch_find_ctx(r);
    }

    if (data == NGX_HTTP_EDGE_ORCH_VAR_GENERATION) {
        gen = ctx ? ctx->generation : ngx_http_edge_orch_routes_generation(r);

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%uL", gen) - p;
        v->data = p;
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;

        return NGX_OK;
    }

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_EDGE_ORCH_VAR_REGION:
        ngx_http_edge_orch_set_str(v, &ctx->region);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_GROUP:
        ngx_http_edge_orch_set_str(v, &ctx->group);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_DEVICE:
        ngx_http_edge_orch_set_str(v, &ctx->device);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_BUCKET:
        ngx_http_edge_orch_set_str(v, &ctx->bucket);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_UPSTREAM:
        if (fs == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        ngx_http_edge_orch_set_str(v, &fs->upstream);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_FRAGMENT:
        if (fs == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        ngx_http_edge_orch_set_str(v, &fs->conf->name);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_REQUEST_ID:
        ngx_http_edge_orch_set_str(v, &ctx->request_id);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_TRACE_ID:
        if (!ctx->trace) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = ctx->trace_id;
        v->len = sizeof(ctx->trace_id);
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_TIMES:
    case NGX_HTTP_EDGE_ORCH_VAR_STATUSES:
    case NGX_HTTP_EDGE_ORCH_VAR_ROUTES:
    case NGX_HTTP_EDGE_ORCH_VAR_SPANS:
        return ngx_http_edge_orch_fragment_list(r, ctx, v, data);

    case NGX_HTTP_EDGE_ORCH_VAR_PAYLOAD:
        ngx_http_edge_orch_set_str(v, &ctx->payload);
        break;

    case NGX_HTTP_EDGE_ORCH_VAR_CACHE_STATUS:
        p = ngx_http_edge_orch_cache_status(ctx, r->pool, &len, 0);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (len == 0) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = p;
        v->len = len;
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        break;

    default: /* NGX_HTTP_EDGE_ORCH_VAR_FRAGMENTS */
        p = ngx_http_edge_orch_outcome_string(ctx, r->pool, &len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = len;
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        break;
    }

    return NGX_OK;
}


static void
ngx_http_edge_orch_set_str(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    if (s->len == 0) {
        v->not_found = 1;
        return;
    }

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
}


static ngx_int_t
ngx_http_edge_orch_fragment_list(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                     *p, *s;
    size_t                      size;
    uint64_t                    d;
    ngx_uint_t                  i;
    ngx_http_edge_orch_frag_t  *fs;

    /* "cms:12 recs:130": name, colon, value; "-" when there is none */

    size = 0;

    for (i = 0; i < ctx->nfrags; i++) {
        size += ctx->frags[i].conf->name.len + 2
                + ngx_max(ctx->frags[i].upstream.len, NGX_INT64_LEN);
    }

    s = ngx_pnalloc(r->pool, size + 1);
    if (s == NULL) {
        return NGX_ERROR;
    }

    p = s;

    for (i = 0; i < ctx->nfrags; i++) {
        fs = &ctx->frags[i];

        if (i) {
            *p++ = ' ';
        }

        p = ngx_sprintf(p, "%V:", &fs->conf->name);

        switch (data) {

        case NGX_HTTP_EDGE_ORCH_VAR_TIMES:
            if (!fs->resolved) {
                *p++ = '-';
                break;
            }

            /* milliseconds, rounded */
            d = (fs->end > fs->start) ? fs->end - fs->start : 0;
            p = ngx_sprintf(p, "%uL", (d + 500) / 1000);
            break;

        case NGX_HTTP_EDGE_ORCH_VAR_STATUSES:
            if (fs->status == 0) {
                *p++ = '-';
                break;
            }

            p = ngx_sprintf(p, "%ui", fs->status);
            break;

        case NGX_HTTP_EDGE_ORCH_VAR_ROUTES:
            if (fs->upstream.len == 0) {
                *p++ = '-';
                break;
            }

            p = ngx_cpymem(p, fs->upstream.data, fs->upstream.len);
            break;

        default: /* NGX_HTTP_EDGE_ORCH_VAR_SPANS */
            if (fs->span_id[0] == '\0') {
                *p++ = '-';
                break;
            }

            p = ngx_cpymem(p, fs->span_id, sizeof(fs->span_id));
        }
    }

    v->data = s;
    v->len = p - s;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
