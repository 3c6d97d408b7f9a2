/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * libFuzzer target: ngx_http_edge_orch_json_validate(), the check every
 * fragment body passes before it is copied into a document.  Whatever it
 * accepts must be one JSON value that jansson parses again (the document
 * is assembled from the bytes verbatim).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_edge_orch_module.h"
#include "ngx_shim.h"

#include <jansson.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char        err[128], *in;
    json_t       *json;
    ngx_int_t     rc;
    json_error_t  error;

    in = malloc(size ? size : 1);
    if (in == NULL) {
        return 0;
    }

    ngx_memcpy(in, data, size);

    rc = ngx_http_edge_orch_json_validate(in, size, err, sizeof(err));

    if (rc == NGX_OK) {
        /* what the document will contain: the value inside an array */
        json = json_loadb((const char *) in, size,
                          JSON_DECODE_ANY|JSON_ALLOW_NUL, &error);
        if (json == NULL) {
            abort();
        }

        json_decref(json);

    } else if (rc != NGX_ERROR || ngx_strlen(err) >= sizeof(err)) {
        abort();
    }

    free(in);
    ngx_shim_pool_reset();

    return 0;
}
