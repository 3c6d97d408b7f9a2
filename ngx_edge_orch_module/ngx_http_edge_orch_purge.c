
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Purge by surrogate key: a location handler that bumps the purge sequence
 * of each tag in the zone.  Cost is O(tags in the request), whatever the
 * number of cached fragments that carry them: entries are checked against
 * their tags' sequences when they are looked up.
 *
 *   PURGE /purge            Surrogate-Key: product:1 page:home
 *   POST  /purge            {"tags": ["product:1"], "soft": true}
 *   POST  /purge            {"all": true}
 */


#include "ngx_http_edge_orch_module.h"

#include <jansson.h>


#define NGX_HTTP_EDGE_ORCH_PURGE_MAX_BODY   65536
#define NGX_HTTP_EDGE_ORCH_PURGE_MAX_TAGS   256


struct ngx_http_edge_orch_purge_conf_s {
    ngx_http_edge_orch_zone_t     *zone;
    ngx_str_t                      zone_name;
    ngx_str_t                      token;
    ngx_flag_t                     soft;
};


static void ngx_http_edge_orch_purge_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_purge_run(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_purge_parse_json(ngx_http_request_t *r,
    ngx_str_t *body, ngx_array_t *tags, ngx_uint_t *soft, ngx_uint_t *all,
    u_char *err, size_t errlen);
static ngx_int_t ngx_http_edge_orch_purge_header_tags(ngx_http_request_t *r,
    ngx_array_t *tags, u_char *err, size_t errlen);
static ngx_int_t ngx_http_edge_orch_purge_add(ngx_pool_t *pool,
    ngx_array_t *tags, u_char *p, size_t len, u_char *err, size_t errlen);
static ngx_int_t ngx_http_edge_orch_purge_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_edge_orch_purge_token_ok(ngx_http_request_t *r,
    ngx_str_t *token);
static ngx_table_elt_t *ngx_http_edge_orch_find_header(ngx_http_request_t *r,
    u_char *name, size_t len);
static ngx_int_t ngx_http_edge_orch_purge_reply(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_edge_orch_purge_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *msg);


char *
ngx_http_edge_orch_purge(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_edge_orch_purge_conf_t  *pc;

    if (elcf->purge != NULL) {
        return "is duplicate";
    }

    pc = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_purge_conf_t));
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0 && value[i].len > 5) {
            pc->zone_name.data = value[i].data + 5;
            pc->zone_name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "token=", 6) == 0) {
            pc->token.data = value[i].data + 6;
            pc->token.len = value[i].len - 6;

            if (pc->token.len < 16) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"token=\" must be at least 16 "
                                   "characters long");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (value[i].len == 4 && ngx_strncmp(value[i].data, "soft", 4) == 0)
        {
            pc->soft = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (expected zone=NAME, "
                           "soft or token=SECRET)", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (pc->zone_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_purge\" needs zone=NAME");
        return NGX_CONF_ERROR;
    }

    elcf->purge = pc;

    if (elcf->conf_file == NULL) {
        elcf->conf_file = cf->conf_file->file.name.data;
        elcf->conf_line = cf->conf_file->line;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_edge_orch_purge_handler;

    return NGX_CONF_OK;
}


char *
ngx_http_edge_orch_purge_merge(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *conf)
{
    ngx_http_edge_orch_main_conf_t   *emcf;
    ngx_http_edge_orch_purge_conf_t  *pc;

    pc = conf->purge;

    if (pc == NULL) {
        return NGX_CONF_OK;
    }

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edge_orch_module);

    pc->zone = ngx_http_edge_orch_zone_find(emcf, &pc->zone_name);

    if (pc->zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown edge_orch_zone \"%V\" in %s:%ui",
                      &pc->zone_name, conf->conf_file, conf->conf_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_edge_orch_purge_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_http_edge_orch_loc_conf_t    *elcf;
    ngx_http_edge_orch_purge_conf_t  *pc;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);
    pc = elcf->purge;

    if (r->method != NGX_HTTP_POST
        && !(r->method_name.len == 5
             && ngx_strncmp(r->method_name.data, "PURGE", 5) == 0))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_edge_orch_purge_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "use PURGE or POST");
    }

    if (pc->token.len && !ngx_http_edge_orch_purge_token_ok(r, &pc->token)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "edge_orch: purge refused: missing or wrong token");

        return ngx_http_edge_orch_purge_error(r, NGX_HTTP_FORBIDDEN,
                                              "missing or wrong token");
    }

    if (r->headers_in.content_length_n > NGX_HTTP_EDGE_ORCH_PURGE_MAX_BODY) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_edge_orch_purge_error(r,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "body larger than 64k");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_edge_orch_purge_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_edge_orch_purge_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_edge_orch_purge_run(r));
}


static ngx_int_t
ngx_http_edge_orch_purge_run(ngx_http_request_t *r)
{
    u_char                           *p, *s;
    size_t                            len;
    uint64_t                          gen;
    ngx_str_t                         body, *t;
    ngx_uint_t                        i, soft, all;
    ngx_array_t                      *tags;
    ngx_table_elt_t                  *h;
    ngx_http_edge_orch_loc_conf_t    *elcf;
    ngx_http_edge_orch_purge_conf_t  *pc;
    u_char                            err[128];

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);
    pc = elcf->purge;

    soft = pc->soft;
    all = 0;

    tags = ngx_array_create(r->pool, 8, sizeof(ngx_str_t));
    if (tags == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_http_edge_orch_find_header(r, (u_char *) "Fastly-Soft-Purge",
                                       sizeof("Fastly-Soft-Purge") - 1);
    if (h != NULL && h->value.len == 1 && h->value.data[0] == '1') {
        soft = 1;
    }

    if (ngx_http_edge_orch_purge_read_body(r, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body.len > NGX_HTTP_EDGE_ORCH_PURGE_MAX_BODY) {
        return ngx_http_edge_orch_purge_error(r,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "body larger than 64k");
    }

    if (body.len) {
        if (ngx_http_edge_orch_purge_parse_json(r, &body, tags, &soft, &all,
                                                err, sizeof(err))
            != NGX_OK)
        {
            return ngx_http_edge_orch_purge_error(r, NGX_HTTP_BAD_REQUEST,
                                                  (char *) err);
        }
    }

    if (ngx_http_edge_orch_purge_header_tags(r, tags, err, sizeof(err))
        != NGX_OK)
    {
        return ngx_http_edge_orch_purge_error(r, NGX_HTTP_BAD_REQUEST,
                                              (char *) err);
    }

    if (!all && tags->nelts == 0) {
        return ngx_http_edge_orch_purge_error(r, NGX_HTTP_BAD_REQUEST,
                                   "no tags: send them in the tag header or "
                                   "as {\"tags\": [...]}");
    }

    if (all && tags->nelts) {
        return ngx_http_edge_orch_purge_error(r, NGX_HTTP_BAD_REQUEST,
                                   "\"all\" and tags exclude each other");
    }

    if (ngx_http_edge_orch_cache_purge(pc->zone, all ? NULL : tags, soft,
                                       &gen)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_edge_orch_stat(pc->zone,
                            soft ? NGX_HTTP_EDGE_ORCH_STAT_PURGES_SOFT
                                 : NGX_HTTP_EDGE_ORCH_STAT_PURGES_HARD);
    ngx_http_edge_orch_stat_add(pc->zone, NGX_HTTP_EDGE_ORCH_STAT_PURGED_TAGS,
                                tags->nelts);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "edge_orch: %s purge of %s%ui tags in zone \"%V\", "
                  "generation %uL", soft ? "soft" : "hard",
                  all ? "all, " : "", tags->nelts, &pc->zone->name, gen);

    /* {"purged":[...],"mode":"soft","generation":N} */

    len = sizeof("{\"purged\":[],\"mode\":\"hard\",\"generation\":}\n")
          + NGX_INT64_LEN + sizeof("\"all\"");

    t = tags->elts;

    for (i = 0; i < tags->nelts; i++) {
        len += 3 + t[i].len + ngx_escape_json(NULL, t[i].data, t[i].len);
    }

    s = ngx_pnalloc(r->pool, len);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(s, "{\"purged\":", sizeof("{\"purged\":") - 1);

    if (all) {
        p = ngx_cpymem(p, "\"all\"", 5);

    } else {
        *p++ = '[';

        for (i = 0; i < tags->nelts; i++) {
            if (i) {
                *p++ = ',';
            }

            *p++ = '"';
            p = (u_char *) ngx_escape_json(p, t[i].data, t[i].len);
            *p++ = '"';
        }

        *p++ = ']';
    }

    p = ngx_sprintf(p, ",\"mode\":\"%s\",\"generation\":%uL}\n",
                    soft ? "soft" : "hard", gen);

    return ngx_http_edge_orch_purge_reply(r, NGX_HTTP_OK, s, p - s);
}


static ngx_int_t
ngx_http_edge_orch_purge_parse_json(ngx_http_request_t *r, ngx_str_t *body,
    ngx_array_t *tags, ngx_uint_t *soft, ngx_uint_t *all, u_char *err,
    size_t errlen)
{
    size_t        i;
    const char   *key;
    json_t       *root, *v, *tag;
    ngx_int_t     rc;
    json_error_t  error;

    root = json_loadb((const char *) body->data, body->len,
                      JSON_REJECT_DUPLICATES, &error);
    if (root == NULL) {
        ngx_snprintf(err, errlen - 1, "invalid JSON: %s at line %d column "
                     "%d%Z", error.text, error.line, error.column);
        err[errlen - 1] = '\0';
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (!json_is_object(root)) {
        ngx_cpystrn(err, (u_char *) "the body must be a JSON object", errlen);
        goto done;
    }

    json_object_foreach(root, key, v) {

        if (ngx_strcmp(key, "tags") == 0) {
            if (!json_is_array(v)) {
                ngx_cpystrn(err, (u_char *) "\"tags\" must be an array of "
                            "strings", errlen);
                goto done;
            }

            json_array_foreach(v, i, tag) {
                if (!json_is_string(tag)) {
                    ngx_cpystrn(err, (u_char *) "\"tags\" must be an array "
                                "of strings", errlen);
                    goto done;
                }

                if (ngx_http_edge_orch_purge_add(r->pool, tags,
                                      (u_char *) json_string_value(tag),
                                      json_string_length(tag), err, errlen)
                    != NGX_OK)
                {
                    goto done;
                }
            }

            continue;
        }

        if (ngx_strcmp(key, "soft") == 0 || ngx_strcmp(key, "all") == 0) {
            if (!json_is_boolean(v)) {
                ngx_snprintf(err, errlen - 1, "\"%s\" must be true or "
                             "false%Z", key);
                goto done;
            }

            if (key[0] == 's') {
                *soft = json_is_true(v);

            } else {
                *all = json_is_true(v);
            }

            continue;
        }

        ngx_snprintf(err, errlen - 1, "unknown key \"%*s\" (expected tags, "
                     "soft or all)%Z", ngx_min(ngx_strlen(key), 32), key);
        goto done;
    }

    rc = NGX_OK;

done:

    json_decref(root);
    err[errlen - 1] = '\0';

    return rc;
}


static ngx_int_t
ngx_http_edge_orch_purge_header_tags(ngx_http_request_t *r,
    ngx_array_t *tags, u_char *err, size_t errlen)
{
    u_char                         *p, *last, *t, sep;
    ngx_uint_t                      i;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_http_edge_orch_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);

    part = &r->headers_in.headers.part;
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

        if (h[i].key.len == elcf->tag_header.len
            && ngx_strncasecmp(h[i].key.data, elcf->tag_header.data,
                               elcf->tag_header.len) == 0)
        {
            sep = ngx_http_edge_orch_tag_sep(&elcf->tag_header);

        } else if (h[i].key.len == sizeof("Cache-Tag") - 1
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Cache-Tag",
                                      sizeof("Cache-Tag") - 1) == 0)
        {
            sep = ',';

        } else {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == sep)) {
                p++;
            }

            t = p;

            while (p < last && *p != ' ' && *p != '\t' && *p != sep) {
                p++;
            }

            if (p > t
                && ngx_http_edge_orch_purge_add(r->pool, tags, t, p - t, err,
                                                errlen)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_purge_add(ngx_pool_t *pool, ngx_array_t *tags, u_char *p,
    size_t len, u_char *err, size_t errlen)
{
    size_t      i;
    ngx_str_t  *t;

    if (len == 0 || len > NGX_HTTP_EDGE_ORCH_MAX_TAG) {
        ngx_snprintf(err, errlen - 1, "a tag must be 1 to %d bytes long%Z",
                     NGX_HTTP_EDGE_ORCH_MAX_TAG);
        err[errlen - 1] = '\0';
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            ngx_cpystrn(err, (u_char *) "tags are visible ASCII only, "
                        "without spaces", errlen);
            return NGX_ERROR;
        }
    }

    if (tags->nelts >= NGX_HTTP_EDGE_ORCH_PURGE_MAX_TAGS) {
        ngx_snprintf(err, errlen - 1, "more than %d tags in one purge%Z",
                     NGX_HTTP_EDGE_ORCH_PURGE_MAX_TAGS);
        err[errlen - 1] = '\0';
        return NGX_ERROR;
    }

    t = ngx_array_push(tags);
    if (t == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NGX_ERROR;
    }

    /* JSON strings die with their document: keep a copy */

    t->data = ngx_pnalloc(pool, len);
    if (t->data == NULL) {
        ngx_cpystrn(err, (u_char *) "no memory", errlen);
        return NGX_ERROR;
    }

    ngx_memcpy(t->data, p, len);
    t->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_purge_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > NGX_HTTP_EDGE_ORCH_PURGE_MAX_BODY) {
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_purge_token_ok(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char            *v, diff;
    size_t             i, len;
    ngx_table_elt_t   *h;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        return 0;
    }

    v = h->value.data + sizeof("Bearer ") - 1;
    len = h->value.len - (sizeof("Bearer ") - 1);

    /* constant time in the token's length: no early exit on a mismatch */

    diff = (u_char) (len != token->len);

    for (i = 0; i < token->len; i++) {
        diff |= token->data[i] ^ (i < len ? v[i] : 0);
    }

    return diff == 0;
}


static ngx_table_elt_t *
ngx_http_edge_orch_find_header(ngx_http_request_t *r, u_char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
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

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, name, len) == 0)
        {
            return &h[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_edge_orch_purge_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    u_char           *p, *s;
    size_t            len;
    ngx_table_elt_t  *h;

    len = ngx_strlen(msg);

    s = ngx_pnalloc(r->pool, sizeof("{\"error\":\"\"}\n")
                             + len + ngx_escape_json(NULL, (u_char *) msg,
                                                     len));
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(s, "{\"error\":\"", sizeof("{\"error\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, (u_char *) msg, len);
    p = ngx_cpymem(p, "\"}\n", 3);

    if (status == NGX_HTTP_NOT_ALLOWED) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "PURGE, POST");
    }

    return ngx_http_edge_orch_purge_reply(r, status, s, p - s);
}


static ngx_int_t
ngx_http_edge_orch_purge_reply(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
