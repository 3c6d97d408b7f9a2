
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Module definition: directives, configuration create/merge, init hooks.
 */


#include "ngx_http_edge_orch_module.h"


static ngx_int_t ngx_http_edge_orch_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_edge_orch_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_edge_orch_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_edge_orch_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_edge_orch_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_edge_orch_init_process(ngx_cycle_t *cycle);
static void ngx_http_edge_orch_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_edge_orch_routes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edge_orch(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edge_orch_fragment(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edge_orch_outcome_header(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_edge_orch_bypass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edge_orch_fallback(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *elcf, ngx_str_t *value,
    ngx_str_t *fallback);


static ngx_command_t  ngx_http_edge_orch_commands[] = {

    { ngx_string("edge_orch_routes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edge_orch_routes,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_edge_orch,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_fragment"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_edge_orch_fragment,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_region"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, region),
      NULL },

    { ngx_string("edge_orch_bucket"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, bucket),
      NULL },

    { ngx_string("edge_orch_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, timeout),
      NULL },

    { ngx_string("edge_orch_max_fragment_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, max_fragment_size),
      NULL },

    { ngx_string("edge_orch_tag_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, tag_header),
      NULL },

    { ngx_string("edge_orch_tags"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, tags),
      NULL },

    { ngx_string("edge_orch_expose_tags"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, expose_tags),
      NULL },

    { ngx_string("edge_orch_bypass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edge_orch_bypass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_pass_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_purge"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_purge,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_edge_orch_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_server_timing"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, server_timing),
      NULL },

    { ngx_string("edge_orch_trace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edge_orch_loc_conf_t, trace),
      NULL },

    { ngx_string("edge_orch_outcome_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edge_orch_outcome_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edge_orch_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_JWT,
      NULL },

    { ngx_string("edge_orch_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_KEY_FILE,
      NULL },

    { ngx_string("edge_orch_jwt_alg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_ALG,
      NULL },

    { ngx_string("edge_orch_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_LEEWAY,
      NULL },

    { ngx_string("edge_orch_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_ISSUER,
      NULL },

    { ngx_string("edge_orch_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_AUDIENCE,
      NULL },

    { ngx_string("edge_orch_jwt_claim_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_edge_orch_jwt_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_EDGE_ORCH_JWT_CMD_CLAIM_HEADER,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_edge_orch_module_ctx = {
    ngx_http_edge_orch_preconfiguration,   /* preconfiguration */
    ngx_http_edge_orch_postconfiguration,  /* postconfiguration */

    ngx_http_edge_orch_create_main_conf,   /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_edge_orch_create_loc_conf,    /* create location configuration */
    ngx_http_edge_orch_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_edge_orch_module = {
    NGX_MODULE_V1,
    &ngx_http_edge_orch_module_ctx,        /* module context */
    ngx_http_edge_orch_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_edge_orch_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_edge_orch_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_edge_orch_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_edge_orch_jwt_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_edge_orch_add_variables(cf);
}


static ngx_int_t
ngx_http_edge_orch_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_edge_orch_main_conf_t  *emcf;

    static ngx_str_t  request_id = ngx_string("request_id");

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edge_orch_module);

    emcf->request_id_index = ngx_http_get_variable_index(cf, &request_id);
    if (emcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* before the routes, which count into it */

    if (ngx_http_edge_orch_stats_init_conf(cf, emcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_edge_orch_routes_init_conf(cf, emcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_edge_orch_jwt_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_edge_orch_filter_init(cf);
}


static void *
ngx_http_edge_orch_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_main_conf_t));
    if (emcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     emcf->routes_path = { 0, NULL };
     *     emcf->routes = NULL;
     */

    return emcf;
}


static void *
ngx_http_edge_orch_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_edge_orch_loc_conf_t  *elcf;

    elcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_loc_conf_t));
    if (elcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     elcf->fragments = NULL;
     *     elcf->outcome_header = { 0, NULL };
     */

    elcf->enable = NGX_CONF_UNSET;
    elcf->region = NGX_CONF_UNSET_PTR;
    elcf->bucket = NGX_CONF_UNSET_PTR;
    elcf->timeout = NGX_CONF_UNSET_MSEC;
    elcf->max_fragment_size = NGX_CONF_UNSET_SIZE;
    elcf->tags = NGX_CONF_UNSET_PTR;
    elcf->expose_tags = NGX_CONF_UNSET;
    elcf->server_timing = NGX_CONF_UNSET;
    elcf->trace = NGX_CONF_UNSET;

    return elcf;
}


static char *
ngx_http_edge_orch_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_edge_orch_loc_conf_t *prev = parent;
    ngx_http_edge_orch_loc_conf_t *conf = child;

    ngx_uint_t                           i;
    ngx_http_edge_orch_main_conf_t      *emcf;
    ngx_http_edge_orch_fragment_conf_t  *fc;

    /* edge_orch and its fragments belong to one location: no inheritance */

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = 0;
    }

    if (conf->enable && conf->fragments == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"edge_orch\" without any \"edge_orch_fragment\" "
                      "in %s:%ui", conf->conf_file, conf->conf_line);
        return NGX_CONF_ERROR;
    }

    if (!conf->enable && conf->fragments != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"edge_orch_fragment\" without \"edge_orch\" "
                      "in the same location in %s:%ui",
                      conf->conf_file, conf->conf_line);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->region, prev->region, NULL);
    ngx_conf_merge_ptr_value(conf->bucket, prev->bucket, NULL);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 2000);
    ngx_conf_merge_size_value(conf->max_fragment_size,
                              prev->max_fragment_size, 1024 * 1024);
    ngx_conf_merge_str_value(conf->outcome_header, prev->outcome_header,
                             "X-Edge-Orch");

    if (conf->outcome_header.len == 3
        && ngx_strncmp(conf->outcome_header.data, "off", 3) == 0)
    {
        conf->outcome_header.len = 0;
    }

    ngx_conf_merge_str_value(conf->tag_header, prev->tag_header,
                             "Surrogate-Key");
    conf->tag_max_len = NGX_HTTP_EDGE_ORCH_MAX_TAG;
    conf->tags_max = NGX_HTTP_EDGE_ORCH_MAX_TAGS;
    ngx_conf_merge_ptr_value(conf->tags, prev->tags, NULL);
    ngx_conf_merge_value(conf->expose_tags, prev->expose_tags, 1);
    ngx_conf_merge_value(conf->server_timing, prev->server_timing, 0);
    ngx_conf_merge_value(conf->trace, prev->trace, 0);

    if (ngx_http_edge_orch_purge_merge(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_edge_orch_jwt_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->zone_name.len) {
        emcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_edge_orch_module);

        conf->zone = ngx_http_edge_orch_zone_find(emcf, &conf->zone_name);

        if (conf->zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown edge_orch_zone \"%V\" in %s:%ui",
                          &conf->zone_name, conf->conf_file, conf->conf_line);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->max_fragment_size < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_max_fragment_size\" must be "
                           "at least 2 bytes");
        return NGX_CONF_ERROR;
    }

    if (conf->fragments == NULL) {
        return NGX_CONF_OK;
    }

    fc = conf->fragments->elts;

    for (i = 0; i < conf->fragments->nelts; i++) {
        if (fc[i].timeout == NGX_CONF_UNSET_MSEC) {
            fc[i].timeout = conf->timeout;
        }
    }

    /* the stats zone's init gives each fragment its counter slot */

    if (ngx_http_edge_orch_stats_add_location(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_routes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_main_conf_t *emcf = conf;

    ngx_str_t  *value;

    if (emcf->routes_path.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_routes\" needs the path of an LMDB "
                           "environment directory, got an empty string");
        return NGX_CONF_ERROR;
    }

    emcf->routes_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &emcf->routes_path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    emcf->routes_file = cf->conf_file->file.name.data;
    emcf->routes_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (elcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    elcf->enable = 1;

    if (elcf->conf_file == NULL) {
        elcf->conf_file = cf->conf_file->file.name.data;
        elcf->conf_line = cf->conf_file->line;
    }

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strncmp(value[1].data, "zone=", 5) != 0
            || value[1].len == 5)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" (expected "
                               "zone=NAME)", &value[1]);
            return NGX_CONF_ERROR;
        }

        elcf->zone_name.data = value[1].data + 5;
        elcf->zone_name.len = value[1].len - 5;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_edge_orch_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_fragment(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ngx_int_t                            t;
    ngx_str_t                           *value, s;
    ngx_uint_t                           i;
    ngx_http_edge_orch_fragment_conf_t  *fc;
    ngx_http_compile_complex_value_t     ccv;

    value = cf->args->elts;

    if (elcf->fragments == NULL) {
        elcf->fragments = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_edge_orch_fragment_conf_t));
        if (elcf->fragments == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (elcf->conf_file == NULL) {
        elcf->conf_file = cf->conf_file->file.name.data;
        elcf->conf_line = cf->conf_file->line;
    }

    if (elcf->fragments->nelts >= NGX_HTTP_EDGE_ORCH_MAX_FRAGMENTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"edge_orch_fragment\" directives "
                           "in one location, the maximum is %d",
                           NGX_HTTP_EDGE_ORCH_MAX_FRAGMENTS);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_edge_orch_name_ok(value[1].data, value[1].len, 0) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid fragment name \"%V\": use 1 to %d "
                           "characters of A-Z a-z 0-9 _ . - :",
                           &value[1], NGX_HTTP_EDGE_ORCH_MAX_NAME);
        return NGX_CONF_ERROR;
    }

    fc = elcf->fragments->elts;

    for (i = 0; i < elcf->fragments->nelts; i++) {
        if (fc[i].name.len == value[1].len
            && ngx_strncmp(fc[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate fragment name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    fc = ngx_array_push(elcf->fragments);
    if (fc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(fc, sizeof(ngx_http_edge_orch_fragment_conf_t));

    fc->name = value[1];
    fc->service = value[1];
    fc->timeout = NGX_CONF_UNSET_MSEC;

    if (value[2].len == 0 || value[2].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fragment \"%V\": uri \"%V\" must start with \"/\"",
                           &value[1], &value[2]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &fc->uri;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "service=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            if (ngx_http_edge_orch_name_ok(s.data, s.len, 0) != NGX_OK) {
                goto invalid_name;
            }

            fc->service = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "upstream=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            if (ngx_http_edge_orch_name_ok(s.data, s.len, 0) != NGX_OK) {
                goto invalid_name;
            }

            fc->upstream = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            t = ngx_parse_time(&s, 0);
            if (t == NGX_ERROR || t == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "fragment \"%V\": invalid timeout \"%V\"",
                                   &fc->name, &s);
                return NGX_CONF_ERROR;
            }

            fc->timeout = (ngx_msec_t) t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0
            || ngx_strncmp(value[i].data, "stale=", 6) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            t = ngx_parse_time(&s, 0);
            if (t == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "fragment \"%V\": invalid time in \"%V\"",
                                   &fc->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                fc->ttl = (ngx_msec_t) t;

            } else {
                fc->stale = (ngx_msec_t) t;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "fragment \"%V\": empty \"key=\"",
                                   &fc->name);
                return NGX_CONF_ERROR;
            }

            fc->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (fc->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = fc->key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "fallback=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            if (ngx_http_edge_orch_fallback(cf, elcf, &s, &fc->fallback)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (value[i].len == 8
            && ngx_strncmp(value[i].data, "optional", 8) == 0)
        {
            fc->optional = 1;
            continue;
        }

        if (value[i].len == 11
            && ngx_strncmp(value[i].data, "credentials", 11) == 0)
        {
            fc->credentials = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fragment \"%V\": unknown parameter \"%V\" "
                           "(expected service=, upstream=, timeout=, ttl=, "
                           "stale=, key=, fallback=, optional or "
                           "credentials)",
                           &fc->name, &value[i]);
        return NGX_CONF_ERROR;
    }

    if (fc->optional && fc->fallback.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fragment \"%V\": \"optional\" and \"fallback=\" "
                           "exclude each other", &fc->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_edge_orch_stats_add_name(cf, &fc->name) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid_name:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "fragment \"%V\": invalid name in \"%V\": use 1 to %d "
                       "characters of A-Z a-z 0-9 _ . - :",
                       &fc->name, &value[i], NGX_HTTP_EDGE_ORCH_MAX_NAME);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_edge_orch_fallback(ngx_conf_t *cf, ngx_http_edge_orch_loc_conf_t *elcf,
    ngx_str_t *value, ngx_str_t *fallback)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;
    u_char            err[160];

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty \"fallback=\"");
        return NGX_CONF_ERROR;
    }

    if (value->data[0] != '@') {

        if (ngx_http_edge_orch_json_validate(value->data, value->len, err,
                                             sizeof(err))
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fallback=\"%V\" is not valid JSON: %s",
                               value, err);
            return NGX_CONF_ERROR;
        }

        *fallback = *value;
        return NGX_CONF_OK;
    }

    name.data = value->data + 1;
    name.len = value->len - 1;

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fallback=@\" needs a file name");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " fallback file \"%s\" failed",
                           name.data);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    n = 0;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto failed;
    }

    if (ngx_file_size(&fi) > 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fallback file \"%s\" is larger than 1m",
                           name.data);
        goto failed;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, buf, (size_t) ngx_file_size(&fi));
    if (n == -1 || n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " fallback file \"%s\" failed",
                           name.data);
        goto failed;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    if (ngx_http_edge_orch_json_validate(buf, n, err, sizeof(err)) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fallback file \"%s\" is not valid JSON: %s",
                           name.data, err);
        return NGX_CONF_ERROR;
    }

    fallback->data = buf;
    fallback->len = n;

    return NGX_CONF_OK;

failed:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return NGX_CONF_ERROR;
}


static char *
ngx_http_edge_orch_outcome_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (elcf->outcome_header.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == ':') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty header name");
        return NGX_CONF_ERROR;
    }

    elcf->outcome_header = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_bypass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ngx_str_t  *value;

    if (elcf->bypass.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 2 || (value[1].data[0] != '@'
                             && value[1].data[0] != '/'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_bypass\" needs a named location "
                           "(@static) or a uri, got \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    elcf->bypass = value[1];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_edge_orch_init_process(ngx_cycle_t *cycle)
{
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_edge_orch_module);
    if (emcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_edge_orch_routes_init_process(cycle, emcf);
}


static void
ngx_http_edge_orch_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_edge_orch_module);
    if (emcf == NULL) {
        return;
    }

    ngx_http_edge_orch_routes_exit_process(emcf);
}
