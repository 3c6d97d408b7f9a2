/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * libFuzzer target: ngx_http_edge_orch_tags_append(), the parser of tag
 * lists from upstream Surrogate-Key / Cache-Tag headers.  The first byte
 * picks the separator and the limits; the rest is split in two header
 * values appended one after the other, as two header lines would be.
 * Checks the invariants the response header relies on.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_edge_orch_module.h"
#include "ngx_shim.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      sep, *in;
    size_t      max_tag, half, i;
    ngx_str_t   dst;
    ngx_uint_t  max_tags, ntags, dropped;

    if (size < 1) {
        return 0;
    }

    sep = (data[0] & 1) ? ',' : ' ';
    max_tag = (data[0] & 2) ? NGX_HTTP_EDGE_ORCH_MAX_TAG : 8;
    max_tags = (data[0] & 4) ? 256 : 3;

    /* a copy of exactly the input's length, so ASan sees over-reads */

    in = malloc(size);
    if (in == NULL) {
        return 0;
    }

    ngx_memcpy(in, data, size);

    half = 1 + (size - 1) / 2;
    ngx_str_null(&dst);
    ntags = 0;
    dropped = 0;

    if (ngx_http_edge_orch_tags_append(NULL, &dst, in + 1, half - 1, sep,
                                       max_tag, max_tags, &ntags, &dropped)
        != NGX_OK
        || ngx_http_edge_orch_tags_append(NULL, &dst, in + half, size - half,
                                          sep, max_tag, max_tags, &ntags,
                                          &dropped)
           != NGX_OK)
    {
        abort();
    }

    if (dst.len > NGX_HTTP_EDGE_ORCH_MAX_TAGS_LEN || ntags > max_tags) {
        abort();
    }

    for (i = 0; i < dst.len; i++) {
        if (dst.data[i] == ' ') {
            if (i == 0 || i == dst.len - 1 || dst.data[i - 1] == ' ') {
                abort();
            }

            continue;
        }

        if (dst.data[i] < 0x21 || dst.data[i] > 0x7e || dst.data[i] == sep)
        {
            abort();
        }
    }

    free(in);
    ngx_shim_pool_reset();

    return 0;
}
