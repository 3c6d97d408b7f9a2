
/*
 * Copyright (C) ngx_edge_orch_module authors
 */


#ifndef _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_
#define _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_EDGE_ORCH_MAX_FRAGMENTS     32
#define NGX_HTTP_EDGE_ORCH_MAX_NAME          64
#define NGX_HTTP_EDGE_ORCH_MAX_REGION        64
#define NGX_HTTP_EDGE_ORCH_MAX_UA            1024


/* how a fragment ended up in the response */
typedef enum {
    NGX_HTTP_EDGE_ORCH_PENDING = 0,
    NGX_HTTP_EDGE_ORCH_OK,
    NGX_HTTP_EDGE_ORCH_FALLBACK,
    NGX_HTTP_EDGE_ORCH_OMITTED,
    NGX_HTTP_EDGE_ORCH_FAILED
} ngx_http_edge_orch_outcome_e;


/* why a fragment failed */
typedef enum {
    NGX_HTTP_EDGE_ORCH_REASON_NONE = 0,
    NGX_HTTP_EDGE_ORCH_REASON_TIMEOUT,
    NGX_HTTP_EDGE_ORCH_REASON_STATUS,
    NGX_HTTP_EDGE_ORCH_REASON_INVALID,
    NGX_HTTP_EDGE_ORCH_REASON_TOO_BIG,
    NGX_HTTP_EDGE_ORCH_REASON_ENCODING,
    NGX_HTTP_EDGE_ORCH_REASON_NO_ROUTE,
    NGX_HTTP_EDGE_ORCH_REASON_ERROR
} ngx_http_edge_orch_reason_e;


typedef struct ngx_http_edge_orch_routes_s  ngx_http_edge_orch_routes_t;


typedef struct {
    ngx_str_t                      name;
    ngx_http_complex_value_t       uri;
    ngx_str_t                      service;
    ngx_str_t                      upstream;      /* route when table has none */
    ngx_msec_t                     timeout;
    ngx_str_t                      fallback;      /* validated JSON or empty */
    ngx_flag_t                     optional;

    /* per worker: rate limit of failure log lines */
    ngx_msec_t                     log_next;
    ngx_uint_t                     log_suppressed;
} ngx_http_edge_orch_fragment_conf_t;


typedef struct {
    ngx_str_t                      routes_path;
    ngx_http_edge_orch_routes_t   *routes;
    u_char                        *routes_file;
    ngx_uint_t                     routes_line;
} ngx_http_edge_orch_main_conf_t;


typedef struct {
    ngx_flag_t                     enable;
    ngx_array_t                   *fragments;     /* fragment_conf_t */
    ngx_http_complex_value_t      *region;
    ngx_http_complex_value_t      *bucket;
    ngx_msec_t                     timeout;
    size_t                         max_fragment_size;
    ngx_str_t                      outcome_header;
    u_char                        *conf_file;
    ngx_uint_t                     conf_line;
} ngx_http_edge_orch_loc_conf_t;


typedef struct ngx_http_edge_orch_ctx_s  ngx_http_edge_orch_ctx_t;


typedef struct {
    ngx_http_edge_orch_ctx_t            *ctx;
    ngx_http_edge_orch_fragment_conf_t  *conf;
    ngx_http_request_t                  *sr;
    ngx_http_post_subrequest_t           ps;
    ngx_event_t                          timer;

    ngx_str_t                            upstream;

    /* collected response body */
    u_char                              *body;
    size_t                               len;
    size_t                               size;

    ngx_uint_t                           status;
    ngx_str_t                            out;         /* JSON to assemble */

    ngx_http_edge_orch_outcome_e         outcome;
    ngx_http_edge_orch_reason_e          reason;

    unsigned                             resolved:1;  /* outcome decided */
    unsigned                             finished:1;  /* subrequest ended */
    unsigned                             last:1;      /* saw last buffer */
    unsigned                             too_big:1;
    unsigned                             encoded:1;
} ngx_http_edge_orch_frag_t;


struct ngx_http_edge_orch_ctx_s {
    ngx_http_request_t                  *request;
    ngx_http_edge_orch_loc_conf_t       *conf;

    ngx_str_t                            region;
    ngx_str_t                            group;
    ngx_str_t                            device;
    ngx_str_t                            bucket;
    uint64_t                             generation;

    ngx_http_edge_orch_frag_t           *frags;
    ngx_uint_t                           nfrags;
    ngx_uint_t                           pending;
    ngx_http_edge_orch_frag_t           *failed;      /* first failed one */

    ngx_list_t                          *sr_headers;  /* filtered headers */

    unsigned                             waiting:1;
    unsigned                             responded:1;
};


extern ngx_module_t  ngx_http_edge_orch_module;


/* routes.c */
ngx_int_t ngx_http_edge_orch_routes_init_conf(ngx_conf_t *cf,
    ngx_http_edge_orch_main_conf_t *emcf);
ngx_int_t ngx_http_edge_orch_routes_init_process(ngx_cycle_t *cycle,
    ngx_http_edge_orch_main_conf_t *emcf);
void ngx_http_edge_orch_routes_exit_process(
    ngx_http_edge_orch_main_conf_t *emcf);
ngx_int_t ngx_http_edge_orch_routes_begin(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
ngx_int_t ngx_http_edge_orch_routes_lookup(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_str_t *service, ngx_str_t *upstream);
uint64_t ngx_http_edge_orch_routes_generation(ngx_http_request_t *r);

/* handler.c */
ngx_int_t ngx_http_edge_orch_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_post_subrequest(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
ngx_http_edge_orch_frag_t *ngx_http_edge_orch_fragment_of(
    ngx_http_request_t *r);
ngx_int_t ngx_http_edge_orch_fragment_failed(ngx_http_edge_orch_frag_t *fs,
    ngx_http_edge_orch_reason_e reason);

/* filter.c */
ngx_int_t ngx_http_edge_orch_filter_init(ngx_conf_t *cf);

/* assemble.c */
ngx_int_t ngx_http_edge_orch_json_validate(u_char *data, size_t len,
    u_char *err, size_t errlen);
ngx_int_t ngx_http_edge_orch_send_response(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx);
u_char *ngx_http_edge_orch_outcome_string(ngx_http_edge_orch_ctx_t *ctx,
    ngx_pool_t *pool, size_t *len);
const char *ngx_http_edge_orch_reason_name(ngx_http_edge_orch_reason_e r);

/* variables.c */
ngx_int_t ngx_http_edge_orch_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_EDGE_ORCH_MODULE_H_INCLUDED_ */
