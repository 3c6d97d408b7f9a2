/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * The few nginx core functions that the fuzzed parsers call, for harnesses
 * linked without nginx (nginx-dev ships headers only).  Pool allocations
 * are malloc()ed, remembered and released by ngx_shim_pool_reset() after
 * every input, so that ASan sees each buffer's real bounds.
 * ngx_snprintf() understands the conversions the module's parsers use:
 * %s %*s %d %i %ui %uz %z %V %Z %%.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ngx_shim.h"


static void   **ngx_shim_allocs;
static size_t   ngx_shim_nallocs, ngx_shim_size;


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    void  *p, **a;

    if (ngx_shim_nallocs == ngx_shim_size) {
        ngx_shim_size = ngx_shim_size ? 2 * ngx_shim_size : 64;
        a = realloc(ngx_shim_allocs, ngx_shim_size * sizeof(void *));
        if (a == NULL) {
            abort();
        }

        ngx_shim_allocs = a;
    }

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    ngx_shim_allocs[ngx_shim_nallocs++] = p;

    return p;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_palloc(pool, size);
    ngx_memzero(p, size);

    return p;
}


void
ngx_shim_pool_reset(void)
{
    size_t  i;

    for (i = 0; i < ngx_shim_nallocs; i++) {
        free(ngx_shim_allocs[i]);
    }

    ngx_shim_nallocs = 0;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *elt, *n;

    if (a->nelts == a->nalloc) {
        n = ngx_palloc(a->pool, 2 * a->nalloc * a->size + a->size);
        ngx_memcpy(n, a->elts, a->nelts * a->size);
        a->elts = n;
        a->nalloc = 2 * a->nalloc + 1;
    }

    elt = (u_char *) a->elts + a->size * a->nelts;
    a->nelts++;

    return elt;
}


u_char *
ngx_cpystrn(u_char *dst, u_char *src, size_t n)
{
    if (n == 0) {
        return dst;
    }

    while (--n) {
        *dst = *src;

        if (*dst == '\0') {
            return dst;
        }

        dst++;
        src++;
    }

    *dst = '\0';

    return dst;
}


u_char *
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    int         w;
    char        tmp[64];
    size_t      len;
    u_char     *p, *last;
    va_list     args;
    ngx_str_t  *v;
    const char *s;

    p = buf;
    last = buf + max;

    va_start(args, fmt);

    while (*fmt && p < last) {

        if (*fmt != '%') {
            *p++ = *fmt++;
            continue;
        }

        fmt++;
        s = tmp;
        w = -1;

        if (*fmt == '*') {
            len = va_arg(args, size_t);
            w = 1;
            fmt++;
        }

        switch (*fmt) {

        case 's':
            s = va_arg(args, const char *);
            if (w < 0) {
                len = strlen(s);
            }
            break;

        case 'V':
            v = va_arg(args, ngx_str_t *);
            s = (const char *) v->data;
            len = v->len;
            break;

        case 'd':
            len = snprintf(tmp, sizeof(tmp), "%d", va_arg(args, int));
            break;

        case 'i':
            len = snprintf(tmp, sizeof(tmp), "%ld",
                           (long) va_arg(args, ngx_int_t));
            break;

        case 'z':
            len = snprintf(tmp, sizeof(tmp), "%zd", va_arg(args, ssize_t));
            break;

        case 'u':
            fmt++;
            if (*fmt == 'z') {
                len = snprintf(tmp, sizeof(tmp), "%zu",
                               va_arg(args, size_t));

            } else {
                len = snprintf(tmp, sizeof(tmp), "%lu",
                               (unsigned long) va_arg(args, ngx_uint_t));
            }
            break;

        case 'Z':
            tmp[0] = '\0';
            len = 1;
            break;

        default:
            tmp[0] = *fmt;
            len = 1;
            break;
        }

        fmt++;

        while (len-- && p < last) {
            *p++ = *s++;
        }
    }

    va_end(args);

    return p;
}
