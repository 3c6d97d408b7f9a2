/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * libFuzzer target: the routes JSON compiler of tools/edge-orch-routes
 * (eo_table_load(): JSON, schema, names, groups, region patterns, device
 * rules, static routes), without LMDB writes.  The CLI is included with
 * its main() renamed.  An accepted table must dump to canonical JSON that
 * loads again into the same dump.  Run with -close_fd_mask=2: every
 * rejected input prints its error to stderr (libFuzzer keeps its own).
 */


#define main  eo_main
#include "../tools/edge-orch-routes.c"
#undef main


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *buf, *out, *out2;
    eo_table_t   t, t2;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);
    memset(&t, 0, sizeof(eo_table_t));

    if (eo_table_load("fuzz", buf, size, &t) == EO_OK) {
        out = NULL;

        if (eo_table_dump(&t, "fuzz", &out) == EO_OK) {
            memset(&t2, 0, sizeof(eo_table_t));

            if (eo_table_load("dump", out, strlen(out), &t2) != EO_OK) {
                abort();
            }

            out2 = NULL;

            if (eo_table_dump(&t2, "dump", &out2) != EO_OK
                || strcmp(out, out2) != 0)
            {
                abort();
            }

            free(out2);
            eo_table_free(&t2);
        }

        free(out);
        eo_table_free(&t);
    }

    free(buf);

    return 0;
}
