/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * libFuzzer target: the JSON body parser of the purge endpoint
 * (ngx_http_edge_orch_purge_parse_json(), static: the file is included).
 * Only r->pool is used by the parser.  Checks that whatever it accepts
 * obeys the documented limits.
 */


#include "../ngx_edge_orch_module/ngx_http_edge_orch_purge.c"
#include "ngx_shim.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char              err[256];
    ngx_str_t           body, *t;
    ngx_uint_t          soft, all, i, j;
    ngx_pool_t          pool;
    ngx_array_t         tags;
    ngx_http_request_t  r;

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    ngx_memzero(&pool, sizeof(ngx_pool_t));
    r.pool = &pool;

    body.len = size;
    body.data = malloc(size ? size : 1);
    if (body.data == NULL) {
        return 0;
    }

    ngx_memcpy(body.data, data, size);

    if (ngx_array_init(&tags, &pool, 4, sizeof(ngx_str_t)) != NGX_OK) {
        abort();
    }

    soft = 0;
    all = 0;
    err[0] = '\0';

    if (ngx_http_edge_orch_purge_parse_json(&r, &body, &tags, &soft, &all,
                                            err, sizeof(err))
        == NGX_OK)
    {
        if (tags.nelts > NGX_HTTP_EDGE_ORCH_PURGE_MAX_TAGS) {
            abort();
        }

        t = tags.elts;

        for (i = 0; i < tags.nelts; i++) {
            if (t[i].len == 0 || t[i].len > NGX_HTTP_EDGE_ORCH_MAX_TAG) {
                abort();
            }

            for (j = 0; j < t[i].len; j++) {
                if (t[i].data[j] < 0x21 || t[i].data[j] > 0x7e) {
                    abort();
                }
            }
        }

    } else if (err[0] == '\0' || ngx_strlen(err) >= sizeof(err)) {
        abort();
    }

    free(body.data);
    ngx_shim_pool_reset();

    return 0;
}
