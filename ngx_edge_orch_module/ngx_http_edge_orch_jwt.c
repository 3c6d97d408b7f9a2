
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Edge token validation: a JWT (JWS compact serialization) from the
 * Authorization header or any value, HS256 / RS256 / ES256 with keys
 * loaded at configuration time (HMAC secret, PEM public key or
 * certificate, JWK or JWK set), exp/nbf with leeway, iss/aud.  Runs in the
 * access phase, so an invalid token never causes a fan-out.  Claims are
 * exposed as $edge_orch_jwt_claim_<name> and forwarded as request headers.
 *
 * The per-request state is found through its pool cleanup (as the realip
 * module does): module ctx belongs to the content handler, is wiped by
 * internal redirects, and subrequests share the main request's pool.
 *
 * All cryptography is OpenSSL's (HMAC, EVP_DigestVerify); JSON is jansson's.
 */


#include "ngx_http_edge_orch_module.h"

#include <jansson.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>


#define NGX_HTTP_EDGE_ORCH_JWT_MAX_TOKEN     8192
#define NGX_HTTP_EDGE_ORCH_JWT_MAX_FILE      (1024 * 1024)
#define NGX_HTTP_EDGE_ORCH_JWT_MIN_SECRET    32
#define NGX_HTTP_EDGE_ORCH_JWT_MIN_RSA_BITS  2048

#define NGX_HTTP_EDGE_ORCH_JWT_OFF           0
#define NGX_HTTP_EDGE_ORCH_JWT_BEARER        1
#define NGX_HTTP_EDGE_ORCH_JWT_VALUE         2

#define NGX_HTTP_EDGE_ORCH_JWT_HS256         0
#define NGX_HTTP_EDGE_ORCH_JWT_RS256         1
#define NGX_HTTP_EDGE_ORCH_JWT_ES256         2
#define NGX_HTTP_EDGE_ORCH_JWT_NALGS         3

#define NGX_HTTP_EDGE_ORCH_JWT_PREFIX        "edge_orch_jwt_claim_"


typedef enum {
    NGX_HTTP_EDGE_ORCH_JWT_OK = 0,
    NGX_HTTP_EDGE_ORCH_JWT_MISSING,
    NGX_HTTP_EDGE_ORCH_JWT_TOO_LARGE,
    NGX_HTTP_EDGE_ORCH_JWT_MALFORMED,
    NGX_HTTP_EDGE_ORCH_JWT_ALGORITHM,
    NGX_HTTP_EDGE_ORCH_JWT_UNKNOWN_KEY,
    NGX_HTTP_EDGE_ORCH_JWT_SIGNATURE,
    NGX_HTTP_EDGE_ORCH_JWT_NO_EXPIRY,
    NGX_HTTP_EDGE_ORCH_JWT_EXPIRED,
    NGX_HTTP_EDGE_ORCH_JWT_NOT_YET_VALID,
    NGX_HTTP_EDGE_ORCH_JWT_ISSUER,
    NGX_HTTP_EDGE_ORCH_JWT_AUDIENCE,
    NGX_HTTP_EDGE_ORCH_JWT_ERROR                 /* ours: 500 */
} ngx_http_edge_orch_jwt_result_e;


typedef struct {
    ngx_uint_t                     alg;          /* the only one it serves */
    ngx_str_t                      kid;          /* empty: any kid */
    ngx_str_t                      secret;       /* HS256 */
    EVP_PKEY                      *pkey;         /* RS256, ES256 */
} ngx_http_edge_orch_jwt_key_t;


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      lowcase;
    ngx_uint_t                     hash;
    ngx_str_t                      claim;
} ngx_http_edge_orch_jwt_header_t;


struct ngx_http_edge_orch_jwt_conf_s {
    ngx_uint_t                     mode;
    ngx_http_complex_value_t      *token;        /* mode VALUE */
    ngx_array_t                   *keys;         /* jwt_key_t */
    ngx_uint_t                     algs;         /* as configured: bits */
    ngx_uint_t                     allowed;      /* in effect */
    time_t                         leeway;
    ngx_array_t                   *issuers;      /* ngx_str_t */
    ngx_array_t                   *audiences;    /* ngx_str_t */
    ngx_array_t                   *headers;      /* jwt_header_t */

    u_char                        *file;         /* edge_orch_jwt */
    ngx_uint_t                     line;
    u_char                        *alg_file;     /* edge_orch_jwt_alg */
    ngx_uint_t                     alg_line;
};


/* per request, found through its pool cleanup */
typedef struct {
    json_t                        *claims;       /* payload of a valid token */
} ngx_http_edge_orch_jwt_ctx_t;


static ngx_http_edge_orch_jwt_conf_t *ngx_http_edge_orch_jwt_create_conf(
    ngx_conf_t *cf);
static char *ngx_http_edge_orch_jwt_mode(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf);
static char *ngx_http_edge_orch_jwt_algs(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf);
static char *ngx_http_edge_orch_jwt_leeway(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf);
static char *ngx_http_edge_orch_jwt_strings(ngx_conf_t *cf,
    ngx_array_t **list);
static char *ngx_http_edge_orch_jwt_claim_header(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf);
static char *ngx_http_edge_orch_jwt_key_file(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf);
static ngx_int_t ngx_http_edge_orch_jwt_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *content);
static ngx_int_t ngx_http_edge_orch_jwt_pem(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *content, EVP_PKEY **pkey);
static ngx_int_t ngx_http_edge_orch_jwt_jwks(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, ngx_str_t *content);
static ngx_int_t ngx_http_edge_orch_jwt_jwk(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, json_t *jwk,
    ngx_uint_t n);
static ngx_int_t ngx_http_edge_orch_jwt_jwk_member(ngx_conf_t *cf,
    ngx_str_t *file, ngx_uint_t n, json_t *jwk, const char *name,
    size_t len, ngx_str_t *out);
static EVP_PKEY *ngx_http_edge_orch_jwt_fromdata(const char *type,
    OSSL_PARAM_BLD *bld);
static ngx_int_t ngx_http_edge_orch_jwt_add_pkey(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, EVP_PKEY *pkey,
    ngx_str_t *kid);
static ngx_int_t ngx_http_edge_orch_jwt_add_secret(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, ngx_str_t *secret,
    ngx_str_t *kid);
static void ngx_http_edge_orch_jwt_free_pkey(void *data);
static void ngx_http_edge_orch_jwt_ssl_error(ngx_conf_t *cf, ngx_str_t *file,
    const char *what);

static ngx_int_t ngx_http_edge_orch_jwt_strip_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_edge_orch_jwt_is_claim_header(
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_table_elt_t *h);
static ngx_int_t ngx_http_edge_orch_jwt_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_edge_orch_jwt_token(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *token);
static ngx_http_edge_orch_jwt_result_e ngx_http_edge_orch_jwt_verify(
    ngx_http_request_t *r, ngx_http_edge_orch_jwt_conf_t *jcf,
    ngx_str_t *token, json_t **claims);
static ngx_http_edge_orch_jwt_result_e ngx_http_edge_orch_jwt_signature(
    ngx_http_request_t *r, ngx_http_edge_orch_jwt_conf_t *jcf,
    ngx_uint_t alg, json_t *kid, ngx_str_t *input, ngx_str_t *sig);
static ngx_int_t ngx_http_edge_orch_jwt_verify_key(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_key_t *key, ngx_str_t *input, ngx_str_t *sig);
static ngx_http_edge_orch_jwt_result_e ngx_http_edge_orch_jwt_claims(
    ngx_http_edge_orch_jwt_conf_t *jcf, json_t *claims);
static ngx_int_t ngx_http_edge_orch_jwt_match(ngx_array_t *list,
    json_t *value);
static json_t *ngx_http_edge_orch_jwt_parse(ngx_pool_t *pool, u_char *data,
    size_t len);
static ngx_int_t ngx_http_edge_orch_jwt_base64url(ngx_pool_t *pool,
    u_char *data, size_t len, ngx_str_t *out);
static ngx_int_t ngx_http_edge_orch_jwt_set_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, json_t *claims);
static ngx_int_t ngx_http_edge_orch_jwt_reject(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_result_e result);
static ngx_int_t ngx_http_edge_orch_jwt_claim_value(ngx_pool_t *pool,
    json_t *claims, u_char *name, size_t len, ngx_uint_t icase,
    ngx_str_t *out);
static ngx_int_t ngx_http_edge_orch_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_edge_orch_jwt_ctx_t *ngx_http_edge_orch_jwt_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_edge_orch_jwt_cleanup(void *data);


static ngx_str_t  ngx_http_edge_orch_jwt_alg_names[] = {
    ngx_string("HS256"),
    ngx_string("RS256"),
    ngx_string("ES256")
};


/* ngx_http_edge_orch_jwt_result_e: what the client is told */
static ngx_str_t  ngx_http_edge_orch_jwt_reasons[] = {
    ngx_string("ok"),
    ngx_string("missing"),
    ngx_string("too_large"),
    ngx_string("malformed"),
    ngx_string("algorithm"),
    ngx_string("unknown_key"),
    ngx_string("signature"),
    ngx_string("no_expiry"),
    ngx_string("expired"),
    ngx_string("not_yet_valid"),
    ngx_string("issuer"),
    ngx_string("audience"),
    ngx_string("error")
};


/*
 * base64url alphabet values, 0xff for anything else (padding included:
 * JWS segments are unpadded, RFC 7515 section 2)
 */
static u_char  ngx_http_edge_orch_jwt_b64[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255,  62, 255, 255,  52,  53,  54,  55,  56,  57,  58,  59,
     60,  61, 255, 255, 255, 255, 255, 255, 255,   0,   1,   2,   3,   4,
      5,   6,   7,   8,   9,  10,  11,  12,  13,  14,  15,  16,  17,  18,
     19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255,  63, 255,  26,
     27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
     41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255
};


char *
ngx_http_edge_orch_jwt_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edge_orch_loc_conf_t *elcf = conf;

    ngx_http_edge_orch_jwt_conf_t  *jcf;

    if (elcf->jwt == NULL) {
        elcf->jwt = ngx_http_edge_orch_jwt_create_conf(cf);
        if (elcf->jwt == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    jcf = elcf->jwt;

    /* the command's offset says which directive it is */

    switch (cmd->offset) {

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_JWT:
        return ngx_http_edge_orch_jwt_mode(cf, jcf);

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_KEY_FILE:
        return ngx_http_edge_orch_jwt_key_file(cf, jcf);

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_ALG:
        return ngx_http_edge_orch_jwt_algs(cf, jcf);

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_LEEWAY:
        return ngx_http_edge_orch_jwt_leeway(cf, jcf);

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_ISSUER:
        return ngx_http_edge_orch_jwt_strings(cf, &jcf->issuers);

    case NGX_HTTP_EDGE_ORCH_JWT_CMD_AUDIENCE:
        return ngx_http_edge_orch_jwt_strings(cf, &jcf->audiences);

    default: /* NGX_HTTP_EDGE_ORCH_JWT_CMD_CLAIM_HEADER */
        return ngx_http_edge_orch_jwt_claim_header(cf, jcf);
    }
}


static ngx_http_edge_orch_jwt_conf_t *
ngx_http_edge_orch_jwt_create_conf(ngx_conf_t *cf)
{
    ngx_http_edge_orch_jwt_conf_t  *jcf;

    jcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_jwt_conf_t));
    if (jcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jcf->token = NULL;
     *     jcf->allowed = 0;
     *     jcf->file = NULL;
     *     jcf->alg_file = NULL;
     */

    jcf->mode = NGX_CONF_UNSET_UINT;
    jcf->keys = NGX_CONF_UNSET_PTR;
    jcf->algs = NGX_CONF_UNSET_UINT;
    jcf->leeway = NGX_CONF_UNSET;
    jcf->issuers = NGX_CONF_UNSET_PTR;
    jcf->audiences = NGX_CONF_UNSET_PTR;
    jcf->headers = NGX_CONF_UNSET_PTR;

    return jcf;
}


char *
ngx_http_edge_orch_jwt_merge(ngx_conf_t *cf,
    ngx_http_edge_orch_loc_conf_t *prev, ngx_http_edge_orch_loc_conf_t *conf)
{
    ngx_uint_t                      i, have;
    ngx_http_edge_orch_jwt_key_t   *key;
    ngx_http_edge_orch_jwt_conf_t  *jcf, *pjcf;

    if (conf->jwt == NULL) {
        if (prev->jwt == NULL) {
            return NGX_CONF_OK;
        }

        conf->jwt = ngx_http_edge_orch_jwt_create_conf(cf);
        if (conf->jwt == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    jcf = conf->jwt;
    pjcf = prev->jwt;

    if (pjcf == NULL) {
        /* nothing to inherit: a blank, unset parent */
        pjcf = ngx_http_edge_orch_jwt_create_conf(cf);
        if (pjcf == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (jcf->mode == NGX_CONF_UNSET_UINT) {
        jcf->mode = pjcf->mode;
        jcf->token = pjcf->token;
        jcf->file = pjcf->file;
        jcf->line = pjcf->line;
    }

    if (jcf->mode == NGX_CONF_UNSET_UINT) {
        jcf->mode = NGX_HTTP_EDGE_ORCH_JWT_OFF;
    }

    if (jcf->algs == NGX_CONF_UNSET_UINT) {
        jcf->algs = pjcf->algs;
        jcf->alg_file = pjcf->alg_file;
        jcf->alg_line = pjcf->alg_line;
    }

    ngx_conf_merge_ptr_value(jcf->keys, pjcf->keys, NULL);
    ngx_conf_merge_sec_value(jcf->leeway, pjcf->leeway, 0);
    ngx_conf_merge_ptr_value(jcf->issuers, pjcf->issuers, NULL);
    ngx_conf_merge_ptr_value(jcf->audiences, pjcf->audiences, NULL);
    ngx_conf_merge_ptr_value(jcf->headers, pjcf->headers, NULL);

    if (jcf->mode == NGX_HTTP_EDGE_ORCH_JWT_OFF) {
        return NGX_CONF_OK;
    }

    if (jcf->keys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"edge_orch_jwt\" without any "
                      "\"edge_orch_jwt_key_file\" in %s:%ui",
                      jcf->file, jcf->line);
        return NGX_CONF_ERROR;
    }

    have = 0;
    key = jcf->keys->elts;

    for (i = 0; i < jcf->keys->nelts; i++) {
        have |= 1 << key[i].alg;
    }

    if (jcf->algs == NGX_CONF_UNSET_UINT) {
        /* each key serves exactly one algorithm: allow what the keys do */
        jcf->allowed = have;
        return NGX_CONF_OK;
    }

    for (i = 0; i < NGX_HTTP_EDGE_ORCH_JWT_NALGS; i++) {
        if ((jcf->algs & (1 << i)) && !(have & (1 << i))) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"edge_orch_jwt_alg\" allows %V but no "
                          "\"edge_orch_jwt_key_file\" holds %s "
                          "in %s:%ui",
                          &ngx_http_edge_orch_jwt_alg_names[i],
                          i == NGX_HTTP_EDGE_ORCH_JWT_HS256
                          ? "an HMAC secret (\"hmac\")"
                          : i == NGX_HTTP_EDGE_ORCH_JWT_RS256
                            ? "an RSA public key" : "a P-256 EC public key",
                          jcf->alg_file, jcf->alg_line);
            return NGX_CONF_ERROR;
        }
    }

    jcf->allowed = jcf->algs;

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_mode(ngx_conf_t *cf, ngx_http_edge_orch_jwt_conf_t *jcf)
{
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (jcf->mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    jcf->file = cf->conf_file->file.name.data;
    jcf->line = cf->conf_file->line;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        jcf->mode = NGX_HTTP_EDGE_ORCH_JWT_OFF;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "on") == 0) {
        jcf->mode = NGX_HTTP_EDGE_ORCH_JWT_BEARER;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"edge_orch_jwt\" needs on, off or a value "
                           "such as $cookie_session");
        return NGX_CONF_ERROR;
    }

    jcf->token = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (jcf->token == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = jcf->token;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    jcf->mode = NGX_HTTP_EDGE_ORCH_JWT_VALUE;

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_algs(ngx_conf_t *cf, ngx_http_edge_orch_jwt_conf_t *jcf)
{
    ngx_str_t   *value;
    ngx_uint_t   i, n;

    if (jcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    jcf->algs = 0;
    jcf->alg_file = cf->conf_file->file.name.data;
    jcf->alg_line = cf->conf_file->line;

    for (i = 1; i < cf->args->nelts; i++) {

        for (n = 0; n < NGX_HTTP_EDGE_ORCH_JWT_NALGS; n++) {
            if (value[i].len == ngx_http_edge_orch_jwt_alg_names[n].len
                && ngx_strncmp(value[i].data,
                               ngx_http_edge_orch_jwt_alg_names[n].data,
                               value[i].len)
                   == 0)
            {
                break;
            }
        }

        if (n < NGX_HTTP_EDGE_ORCH_JWT_NALGS) {
            jcf->algs |= 1 << n;
            continue;
        }

        if (value[i].len == 4
            && ngx_strncasecmp(value[i].data, (u_char *) "none", 4) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "algorithm \"%V\" is never accepted "
                               "(unsigned tokens)", &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown algorithm \"%V\" (supported: HS256, "
                           "RS256, ES256)", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_leeway(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf)
{
    time_t      t;
    ngx_str_t  *value;

    if (jcf->leeway != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    t = ngx_parse_time(&value[1], 1);
    if (t == (time_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid leeway \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    jcf->leeway = t;

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_strings(ngx_conf_t *cf, ngx_array_t **list)
{
    ngx_str_t   *value, *s;
    ngx_uint_t   i;

    if (*list != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *list = ngx_array_create(cf->pool, cf->args->nelts - 1,
                             sizeof(ngx_str_t));
    if (*list == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty value in \"%V\"", &value[0]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(*list);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_claim_header(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf)
{
    u_char                           *p;
    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_http_edge_orch_jwt_header_t  *h;

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p >= 0x7f || ngx_strchr("()<>@,;:\\\"/[]?={}", *p))
        {
            break;
        }
    }

    if (value[1].len == 0 || p < value[1].data + value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty claim name");
        return NGX_CONF_ERROR;
    }

    if (jcf->headers == NGX_CONF_UNSET_PTR) {
        jcf->headers = ngx_array_create(cf->pool, 2,
                                   sizeof(ngx_http_edge_orch_jwt_header_t));
        if (jcf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = jcf->headers->elts;

    for (i = 0; i < jcf->headers->nelts; i++) {
        if (h[i].name.len == value[1].len
            && ngx_strncasecmp(h[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate header \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(jcf->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = value[1];
    h->claim = value[2];

    h->lowcase.len = value[1].len;
    h->lowcase.data = ngx_pnalloc(cf->pool, value[1].len);
    if (h->lowcase.data == NULL) {
        return NGX_CONF_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase.data, value[1].data, value[1].len);

    return NGX_CONF_OK;
}


static char *
ngx_http_edge_orch_jwt_key_file(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t  *value, file, content, kid, trimmed;
    EVP_PKEY   *pkey;
    ngx_uint_t  i, hmac;

    value = cf->args->elts;

    file = value[1];
    ngx_str_null(&kid);
    hmac = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "kid=", 4) == 0
            && value[i].len > 4)
        {
            kid.data = value[i].data + 4;
            kid.len = value[i].len - 4;
            continue;
        }

        if (ngx_strcmp(value[i].data, "hmac") == 0) {
            hmac = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown parameter \"%V\" (expected kid= or "
                           "hmac)", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_edge_orch_jwt_read_file(cf, &file, &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (jcf->keys == NGX_CONF_UNSET_PTR) {
        jcf->keys = ngx_array_create(cf->pool, 2,
                                     sizeof(ngx_http_edge_orch_jwt_key_t));
        if (jcf->keys == NULL) {
            goto failed;
        }
    }

    /* what the file holds, ignoring surrounding white space */

    trimmed = content;

    while (trimmed.len
           && (trimmed.data[0] == ' ' || trimmed.data[0] == '\t'
               || trimmed.data[0] == CR || trimmed.data[0] == LF))
    {
        trimmed.data++;
        trimmed.len--;
    }

    p = trimmed.data;

    if (hmac) {
        if (trimmed.len
            && (p[0] == '{'
                || ngx_strlcasestrn(p, p + trimmed.len,
                                    (u_char *) "-----begin ", 11 - 1)
                   != NULL))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\" is a PEM or JSON file, not an HMAC "
                               "secret: a public key must never be used "
                               "as one", file.data);
            goto failed;
        }

        /* the secret is the file's bytes, without a final line break */

        while (content.len
               && (content.data[content.len - 1] == LF
                   || content.data[content.len - 1] == CR))
        {
            content.len--;
        }

        rc = ngx_http_edge_orch_jwt_add_secret(cf, jcf, &file, &content,
                                               &kid);

    } else if (trimmed.len > 11
               && ngx_strncmp(p, "-----BEGIN ", 11) == 0)
    {
        rc = ngx_http_edge_orch_jwt_pem(cf, &file, &trimmed, &pkey);

        if (rc == NGX_OK) {
            rc = ngx_http_edge_orch_jwt_add_pkey(cf, jcf, &file, pkey, &kid);
        }

    } else if (trimmed.len && p[0] == '{') {

        if (kid.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"kid=\" cannot be used with a JWK file: "
                               "its keys carry their own \"kid\"");
            goto failed;
        }

        rc = ngx_http_edge_orch_jwt_jwks(cf, jcf, &file, &trimmed);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is neither a PEM public key nor a JWK "
                           "set; an HS256 secret needs the \"hmac\" "
                           "parameter", file.data);
        goto failed;
    }

    ngx_explicit_memzero(content.data, content.len);

    /* nothing of ours may show up in a later OpenSSL error of nginx */
    ERR_clear_error();

    return (rc == NGX_OK) ? NGX_CONF_OK : NGX_CONF_ERROR;

failed:

    ngx_explicit_memzero(content.data, content.len);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_edge_orch_jwt_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content)
{
    off_t             size;
    ssize_t           n;
    ngx_int_t         rc;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " key file \"%s\" failed",
                           name->data);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (size == 0 || size > NGX_HTTP_EDGE_ORCH_JWT_MAX_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%s\" is empty or larger than 1m",
                           name->data);
        goto done;
    }

    content->data = ngx_pnalloc(cf->temp_pool, (size_t) size);
    if (content->data == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, content->data, (size_t) size, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    if (n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           ngx_read_file_n " \"%s\" returned only %z bytes",
                           name->data, n);
        goto done;
    }

    content->len = (size_t) size;
    rc = NGX_OK;

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name->data);
    }

    return rc;
}


static ngx_int_t
ngx_http_edge_orch_jwt_pem(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *content, EVP_PKEY **pkey)
{
    BIO   *bio;
    X509  *x509;

    if (ngx_strlcasestrn(content->data, content->data + content->len,
                         (u_char *) "private key", 11 - 1)
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" holds a private key: give the public key "
                           "(openssl pkey -pubout)", file->data);
        return NGX_ERROR;
    }

    bio = BIO_new_mem_buf(content->data, (int) content->len);
    if (bio == NULL) {
        ngx_http_edge_orch_jwt_ssl_error(cf, file, "BIO_new_mem_buf()");
        return NGX_ERROR;
    }

    *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

    if (*pkey == NULL
        && ngx_strlcasestrn(content->data, content->data + content->len,
                            (u_char *) "-----begin certificate-----",
                            27 - 1)
           != NULL)
    {
        /* a certificate: its public key */

        ERR_clear_error();

        if (BIO_reset(bio) == 1) {
            x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);

            if (x509 != NULL) {
                *pkey = X509_get_pubkey(x509);
                X509_free(x509);
            }
        }
    }

    BIO_free(bio);

    if (*pkey == NULL) {
        ngx_http_edge_orch_jwt_ssl_error(cf, file,
                                         "no public key or certificate");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_jwks(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, ngx_str_t *content)
{
    size_t        i;
    json_t       *root, *keys, *jwk;
    ngx_int_t     rc, added;
    json_error_t  err;

    root = json_loadb((char *) content->data, content->len,
                      JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is not valid JSON: %s (line %d)",
                           file->data, err.text, err.line);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;
    keys = json_is_object(root) ? json_object_get(root, "keys") : NULL;

    if (keys == NULL && json_is_object(root)
        && json_object_get(root, "kty") != NULL)
    {
        /* a single JWK: it must be usable */

        rc = ngx_http_edge_orch_jwt_jwk(cf, jcf, file, root, 0);

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": the key is not usable", file->data);
            rc = NGX_ERROR;
        }

        goto done;
    }

    if (!json_is_array(keys)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is neither a JWK set ({\"keys\":[...]}) "
                           "nor a JWK", file->data);
        goto done;
    }

    added = 0;

    json_array_foreach(keys, i, jwk) {

        rc = ngx_http_edge_orch_jwt_jwk(cf, jcf, file, jwk, i);

        if (rc == NGX_ERROR) {
            goto done;
        }

        if (rc == NGX_OK) {
            added++;
        }
    }

    if (added == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "JWK set \"%s\" has no usable key (RSA, EC P-256 "
                           "or oct, for signatures)", file->data);
        rc = NGX_ERROR;
        goto done;
    }

    rc = NGX_OK;

done:

    json_decref(root);

    return rc;
}


/* NGX_OK: added, NGX_DECLINED: not a key for us (warned), NGX_ERROR */

static ngx_int_t
ngx_http_edge_orch_jwt_jwk(ngx_conf_t *cf, ngx_http_edge_orch_jwt_conf_t *jcf,
    ngx_str_t *file, json_t *jwk, ngx_uint_t n)
{
    u_char          *pub;
    json_t          *v;
    BIGNUM          *bn_n, *bn_e;
    EVP_PKEY        *pkey;
    ngx_str_t        kid, a, b;
    const char      *kty, *use, *alg, *want;
    OSSL_PARAM_BLD  *bld;

    if (!json_is_object(jwk)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": key %ui is not a JSON object",
                           file->data, n);
        return NGX_ERROR;
    }

    kty = json_string_value(json_object_get(jwk, "kty"));
    use = json_string_value(json_object_get(jwk, "use"));
    alg = json_string_value(json_object_get(jwk, "alg"));

    v = json_object_get(jwk, "kid");

    if (v != NULL && !json_is_string(v)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": key %ui has a \"kid\" that is not a "
                           "string", file->data, n);
        return NGX_ERROR;
    }

    ngx_str_null(&kid);

    if (v != NULL && json_string_length(v)) {
        kid.len = json_string_length(v);
        kid.data = ngx_pnalloc(cf->pool, kid.len);
        if (kid.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kid.data, json_string_value(v), kid.len);
    }

    if (kty == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": key %ui has no \"kty\"", file->data, n);
        return NGX_ERROR;
    }

    if (ngx_strcmp(kty, "RSA") == 0) {
        want = "RS256";

    } else if (ngx_strcmp(kty, "EC") == 0) {
        want = "ES256";

    } else if (ngx_strcmp(kty, "oct") == 0) {
        want = "HS256";

    } else {
        want = NULL;
    }

    if (want == NULL
        || (use != NULL && ngx_strcmp(use, "sig") != 0)
        || (alg != NULL && ngx_strcmp(alg, want) != 0)
        || (want[0] == 'E'
            && !json_is_string(json_object_get(jwk, "crv"))))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%s\": key %ui (kty \"%s\", use \"%s\", "
                           "alg \"%s\") skipped: only RSA for RS256, EC "
                           "P-256 for ES256 and oct for HS256 signatures "
                           "are used", file->data, n, kty,
                           use ? use : "", alg ? alg : "");
        return NGX_DECLINED;
    }

    if (want[0] == 'H') {
        if (ngx_http_edge_orch_jwt_jwk_member(cf, file, n, jwk, "k", 0, &a)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_edge_orch_jwt_add_secret(cf, jcf, file, &a, &kid);
    }

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        ngx_http_edge_orch_jwt_ssl_error(cf, file, "OSSL_PARAM_BLD_new()");
        return NGX_ERROR;
    }

    pkey = NULL;

    if (want[0] == 'R') {
        if (ngx_http_edge_orch_jwt_jwk_member(cf, file, n, jwk, "n", 0, &a)
            != NGX_OK
            || ngx_http_edge_orch_jwt_jwk_member(cf, file, n, jwk, "e", 0, &b)
               != NGX_OK)
        {
            OSSL_PARAM_BLD_free(bld);
            return NGX_ERROR;
        }

        bn_n = BN_bin2bn(a.data, (int) a.len, NULL);
        bn_e = BN_bin2bn(b.data, (int) b.len, NULL);

        if (bn_n != NULL && bn_e != NULL
            && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1
            && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
        {
            pkey = ngx_http_edge_orch_jwt_fromdata("RSA", bld);
        }

        BN_free(bn_n);
        BN_free(bn_e);

    } else {
        if (ngx_strcmp(json_string_value(json_object_get(jwk, "crv")),
                       "P-256")
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "\"%s\": key %ui skipped: curve \"%s\" is "
                               "not P-256", file->data, n,
                               json_string_value(json_object_get(jwk,
                                                                 "crv")));
            OSSL_PARAM_BLD_free(bld);
            return NGX_DECLINED;
        }

        if (ngx_http_edge_orch_jwt_jwk_member(cf, file, n, jwk, "x", 32, &a)
            != NGX_OK
            || ngx_http_edge_orch_jwt_jwk_member(cf, file, n, jwk, "y", 32,
                                                 &b)
               != NGX_OK)
        {
            OSSL_PARAM_BLD_free(bld);
            return NGX_ERROR;
        }

        /* an uncompressed point: 0x04 x y */

        pub = ngx_pnalloc(cf->temp_pool, 65);
        if (pub == NULL) {
            OSSL_PARAM_BLD_free(bld);
            return NGX_ERROR;
        }

        pub[0] = 0x04;
        ngx_memcpy(pub + 1, a.data, 32);
        ngx_memcpy(pub + 33, b.data, 32);

        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            "prime256v1", 0)
            == 1
            && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                                pub, 65)
               == 1)
        {
            pkey = ngx_http_edge_orch_jwt_fromdata("EC", bld);
        }
    }

    OSSL_PARAM_BLD_free(bld);

    if (pkey == NULL) {
        ngx_http_edge_orch_jwt_ssl_error(cf, file, "invalid JWK");
        return NGX_ERROR;
    }

    return ngx_http_edge_orch_jwt_add_pkey(cf, jcf, file, pkey, &kid);
}


/* a base64url member of a JWK, decoded; len: the exact length or 0 */

static ngx_int_t
ngx_http_edge_orch_jwt_jwk_member(ngx_conf_t *cf, ngx_str_t *file,
    ngx_uint_t n, json_t *jwk, const char *name, size_t len, ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(jwk, name);

    if (json_is_string(v)
        && ngx_http_edge_orch_jwt_base64url(cf->temp_pool,
                                            (u_char *) json_string_value(v),
                                            json_string_length(v), out)
           == NGX_OK
        && out->len > 0
        && (len == 0 || out->len == len))
    {
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%s\": key %ui: \"%s\" is missing or not a valid "
                       "base64url value%s", file->data, n, name,
                       len ? " of 32 bytes" : "");
    return NGX_ERROR;
}


static EVP_PKEY *
ngx_http_edge_orch_jwt_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    pkey = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL) {
        return NULL;
    }

    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return pkey;
}


/* takes pkey: freed with the configuration, or now on failure */

static ngx_int_t
ngx_http_edge_orch_jwt_add_pkey(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, EVP_PKEY *pkey,
    ngx_str_t *kid)
{
    int                            ok;
    char                           group[64];
    size_t                         len;
    ngx_uint_t                     alg;
    EVP_PKEY_CTX                  *ctx;
    ngx_pool_cleanup_t            *cln;
    ngx_http_edge_orch_jwt_key_t  *key;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_edge_orch_jwt_free_pkey;
    cln->data = pkey;

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pkey) < NGX_HTTP_EDGE_ORCH_JWT_MIN_RSA_BITS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": RSA key of %d bits, RS256 needs at "
                               "least %d", file->data, EVP_PKEY_get_bits(pkey),
                               NGX_HTTP_EDGE_ORCH_JWT_MIN_RSA_BITS);
            return NGX_ERROR;
        }

        alg = NGX_HTTP_EDGE_ORCH_JWT_RS256;
        break;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1
            || ngx_strcmp(group, "prime256v1") != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": EC key not on curve P-256 "
                               "(prime256v1), which ES256 needs", file->data);
            ERR_clear_error();
            return NGX_ERROR;
        }

        alg = NGX_HTTP_EDGE_ORCH_JWT_ES256;
        break;

    default:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": unsupported key type (RSA or EC P-256 "
                           "public keys only)", file->data);
        return NGX_ERROR;
    }

    /* e.g. an EC point that is not on the curve */

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    ok = (ctx != NULL && EVP_PKEY_public_check(ctx) == 1);
    EVP_PKEY_CTX_free(ctx);

    if (!ok) {
        ngx_http_edge_orch_jwt_ssl_error(cf, file, "invalid public key");
        return NGX_ERROR;
    }

    key = ngx_array_push(jcf->keys);
    if (key == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_http_edge_orch_jwt_key_t));

    key->alg = alg;
    key->kid = *kid;
    key->pkey = pkey;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_add_secret(ngx_conf_t *cf,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *file, ngx_str_t *secret,
    ngx_str_t *kid)
{
    ngx_http_edge_orch_jwt_key_t  *key;

    /* RFC 7518 3.2: a key of the same size as the hash output or larger */

    if (secret->len < NGX_HTTP_EDGE_ORCH_JWT_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": HS256 secret of %uz bytes, at least %d "
                           "are needed", file->data, secret->len,
                           NGX_HTTP_EDGE_ORCH_JWT_MIN_SECRET);
        return NGX_ERROR;
    }

    key = ngx_array_push(jcf->keys);
    if (key == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_http_edge_orch_jwt_key_t));

    key->alg = NGX_HTTP_EDGE_ORCH_JWT_HS256;
    key->kid = *kid;

    key->secret.len = secret->len;
    key->secret.data = ngx_pnalloc(cf->pool, secret->len);
    if (key->secret.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(key->secret.data, secret->data, secret->len);

    return NGX_OK;
}


static void
ngx_http_edge_orch_jwt_free_pkey(void *data)
{
    EVP_PKEY_free(data);
}


static void
ngx_http_edge_orch_jwt_ssl_error(ngx_conf_t *cf, ngx_str_t *file,
    const char *what)
{
    char           buf[256];
    unsigned long  n;

    n = ERR_peek_last_error();
    ERR_clear_error();

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\": %s",
                           file->data, what);
        return;
    }

    ERR_error_string_n(n, buf, sizeof(buf));

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\": %s (%s)",
                       file->data, what, buf);
}


ngx_int_t
ngx_http_edge_orch_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    static ngx_str_t  prefix = ngx_string(NGX_HTTP_EDGE_ORCH_JWT_PREFIX);

    var = ngx_http_add_variable(cf, &prefix,
                                NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_edge_orch_jwt_claim_variable;

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * client-sent copies of the claim headers go in the preaccess phase,
     * so that they are gone even when "satisfy any" lets another access
     * module decide
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_edge_orch_jwt_strip_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_edge_orch_jwt_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_strip_handler(ngx_http_request_t *r)
{
    ngx_uint_t                      i, found;
    ngx_list_t                      list;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h, *nh;
    ngx_http_edge_orch_jwt_conf_t  *jcf;
    ngx_http_edge_orch_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);
    jcf = elcf->jwt;

    if (r != r->main
        || jcf == NULL
        || jcf->mode == NGX_HTTP_EDGE_ORCH_JWT_OFF
        || jcf->headers == NULL)
    {
        return NGX_DECLINED;
    }

    found = 0;
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

        if (ngx_http_edge_orch_jwt_is_claim_header(jcf, &h[i])) {
            found++;
        }
    }

    if (found == 0) {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "edge_orch jwt: %ui client claim header(s) removed",
                   found);

    if (ngx_list_init(&list, r->pool, 20, sizeof(ngx_table_elt_t)) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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

        if (ngx_http_edge_orch_jwt_is_claim_header(jcf, &h[i])) {
            continue;
        }

        nh = ngx_list_push(&list);
        if (nh == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *nh = h[i];
    }

    /*
     * the list header is copied: its "last" may point to its own part;
     * pointers such as headers_in.host still point into the old list
     */

    r->headers_in.headers = list;

    if (list.last == &list.part) {
        r->headers_in.headers.last = &r->headers_in.headers.part;
    }

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_edge_orch_jwt_is_claim_header(ngx_http_edge_orch_jwt_conf_t *jcf,
    ngx_table_elt_t *h)
{
    ngx_uint_t                        i;
    ngx_http_edge_orch_jwt_header_t  *hc;

    hc = jcf->headers->elts;

    for (i = 0; i < jcf->headers->nelts; i++) {
        if (h->key.len == hc[i].name.len
            && ngx_strncasecmp(h->key.data, hc[i].name.data, hc[i].name.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_edge_orch_jwt_handler(ngx_http_request_t *r)
{
    json_t                           *claims;
    ngx_str_t                         token;
    ngx_pool_cleanup_t               *cln;
    ngx_http_edge_orch_jwt_ctx_t     *ctx;
    ngx_http_edge_orch_jwt_conf_t    *jcf;
    ngx_http_edge_orch_loc_conf_t    *elcf;
    ngx_http_edge_orch_jwt_result_e   result;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edge_orch_module);
    jcf = elcf->jwt;

    if (jcf == NULL || jcf->mode == NGX_HTTP_EDGE_ORCH_JWT_OFF) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_edge_orch_jwt_get_ctx(r);

    if (ctx == NULL) {
        cln = ngx_pool_cleanup_add(r->pool,
                                   sizeof(ngx_http_edge_orch_jwt_ctx_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = cln->data;
        ctx->claims = NULL;

        cln->handler = ngx_http_edge_orch_jwt_cleanup;

    } else if (ctx->claims != NULL) {
        /* the location changed (internal redirect): check again */
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }

    if (ngx_http_edge_orch_jwt_token(r, jcf, &token) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    claims = NULL;

    result = ngx_http_edge_orch_jwt_verify(r, jcf, &token, &claims);

    if (result == NGX_HTTP_EDGE_ORCH_JWT_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (result != NGX_HTTP_EDGE_ORCH_JWT_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "edge_orch: token rejected: %V",
                      &ngx_http_edge_orch_jwt_reasons[result]);

        return ngx_http_edge_orch_jwt_reject(r, result);
    }

    ctx->claims = claims;

    if (ngx_http_edge_orch_jwt_set_headers(r, jcf, claims) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_token(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *token)
{
    u_char  *p, *last;

    ngx_str_null(token);

    if (jcf->mode == NGX_HTTP_EDGE_ORCH_JWT_VALUE) {
        return ngx_http_complex_value(r, jcf->token, token);
    }

    /* RFC 6750 2.1: "Bearer" 1*SP token, the scheme case-insensitive */

    if (r->headers_in.authorization == NULL) {
        return NGX_OK;
    }

    p = r->headers_in.authorization->value.data;
    last = p + r->headers_in.authorization->value.len;

    if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return NGX_OK;
    }

    for (p += 7; p < last && *p == ' '; p++) { /* void */ }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


static ngx_http_edge_orch_jwt_result_e
ngx_http_edge_orch_jwt_verify(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_str_t *token, json_t **claims)
{
    u_char                           *dot1, *dot2, *last;
    json_t                           *header, *payload, *alg, *kid;
    ngx_str_t                         input, sig;
    ngx_uint_t                        n;
    ngx_http_edge_orch_jwt_result_e   rc;

    if (token->len == 0) {
        return NGX_HTTP_EDGE_ORCH_JWT_MISSING;
    }

    if (token->len > NGX_HTTP_EDGE_ORCH_JWT_MAX_TOKEN) {
        return NGX_HTTP_EDGE_ORCH_JWT_TOO_LARGE;
    }

    /*
     * header.payload.signature: three base64url segments; an empty
     * signature (alg "none") is refused for its algorithm below
     */

    last = token->data + token->len;

    dot1 = ngx_strlchr(token->data, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    if (dot2 == NULL
        || ngx_strlchr(dot2 + 1, last, '.') != NULL
        || dot1 == token->data || dot2 == dot1 + 1)
    {
        return NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
    }

    header = ngx_http_edge_orch_jwt_parse(r->pool, token->data,
                                          dot1 - token->data);
    if (header == NULL) {
        return NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
    }

    payload = NULL;

    alg = json_object_get(header, "alg");
    kid = json_object_get(header, "kid");

    if (!json_is_string(alg)
        || (kid != NULL && !json_is_string(kid))
        || json_object_get(header, "crit") != NULL)
    {
        /* no extension is understood, so none may be critical */
        rc = NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
        goto done;
    }

    /* "none" and its spellings are not in the list, nor is anything else */

    for (n = 0; n < NGX_HTTP_EDGE_ORCH_JWT_NALGS; n++) {
        if ((jcf->allowed & (1 << n))
            && json_string_length(alg)
               == ngx_http_edge_orch_jwt_alg_names[n].len
            && ngx_strncmp(json_string_value(alg),
                           ngx_http_edge_orch_jwt_alg_names[n].data,
                           ngx_http_edge_orch_jwt_alg_names[n].len)
               == 0)
        {
            break;
        }
    }

    if (n == NGX_HTTP_EDGE_ORCH_JWT_NALGS) {
        rc = NGX_HTTP_EDGE_ORCH_JWT_ALGORITHM;
        goto done;
    }

    if (ngx_http_edge_orch_jwt_base64url(r->pool, dot2 + 1, last - dot2 - 1,
                                         &sig)
        != NGX_OK)
    {
        rc = NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
        goto done;
    }

    input.data = token->data;
    input.len = dot2 - token->data;

    rc = ngx_http_edge_orch_jwt_signature(r, jcf, n, kid, &input, &sig);
    if (rc != NGX_HTTP_EDGE_ORCH_JWT_OK) {
        goto done;
    }

    /* the payload is only parsed once its signature is known to be good */

    payload = ngx_http_edge_orch_jwt_parse(r->pool, dot1 + 1,
                                           dot2 - dot1 - 1);
    if (payload == NULL) {
        rc = NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
        goto done;
    }

    rc = ngx_http_edge_orch_jwt_claims(jcf, payload);

    if (rc == NGX_HTTP_EDGE_ORCH_JWT_OK) {
        *claims = payload;
        payload = NULL;
    }

done:

    json_decref(header);

    if (payload != NULL) {
        json_decref(payload);
    }

    return rc;
}


static ngx_http_edge_orch_jwt_result_e
ngx_http_edge_orch_jwt_signature(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, ngx_uint_t alg, json_t *kid,
    ngx_str_t *input, ngx_str_t *sig)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i, tried;
    ngx_http_edge_orch_jwt_key_t  *key;

    /*
     * only keys bound to the token's algorithm: an RSA key is never an
     * HMAC secret.  A key with a kid serves tokens with that kid or none;
     * a key without one serves any token.
     */

    tried = 0;
    key = jcf->keys->elts;

    for (i = 0; i < jcf->keys->nelts; i++) {

        if (key[i].alg != alg) {
            continue;
        }

        if (kid != NULL && key[i].kid.len
            && (key[i].kid.len != json_string_length(kid)
                || ngx_strncmp(key[i].kid.data, json_string_value(kid),
                               key[i].kid.len)
                   != 0))
        {
            continue;
        }

        tried++;

        rc = ngx_http_edge_orch_jwt_verify_key(r, &key[i], input, sig);

        if (rc == NGX_OK) {
            return NGX_HTTP_EDGE_ORCH_JWT_OK;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_EDGE_ORCH_JWT_ERROR;
        }
    }

    return tried ? NGX_HTTP_EDGE_ORCH_JWT_SIGNATURE
                 : NGX_HTTP_EDGE_ORCH_JWT_UNKNOWN_KEY;
}


/* NGX_OK: valid, NGX_DECLINED: not valid, NGX_ERROR: could not check */

static ngx_int_t
ngx_http_edge_orch_jwt_verify_key(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_key_t *key, ngx_str_t *input, ngx_str_t *sig)
{
    int             ok, len;
    u_char         *p;
    BIGNUM         *br, *bs;
    ngx_str_t       der;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *md;
    unsigned int    n;
    u_char          mac[EVP_MAX_MD_SIZE];
    u_char          buf[80];

    if (key->alg == NGX_HTTP_EDGE_ORCH_JWT_HS256) {

        if (HMAC(EVP_sha256(), key->secret.data, (int) key->secret.len,
                 input->data, input->len, mac, &n)
            == NULL)
        {
            goto failed;
        }

        if (sig->len == n && CRYPTO_memcmp(mac, sig->data, n) == 0) {
            return NGX_OK;
        }

        return NGX_DECLINED;
    }

    der = *sig;

    if (key->alg == NGX_HTTP_EDGE_ORCH_JWT_ES256) {

        /* JOSE: r and s, 32 bytes each (RFC 7518 3.4); OpenSSL wants DER */

        if (sig->len != 64) {
            return NGX_DECLINED;
        }

        es = ECDSA_SIG_new();
        if (es == NULL) {
            goto failed;
        }

        br = BN_bin2bn(sig->data, 32, NULL);
        bs = BN_bin2bn(sig->data + 32, 32, NULL);

        if (br == NULL || bs == NULL || ECDSA_SIG_set0(es, br, bs) != 1) {
            BN_free(br);
            BN_free(bs);
            ECDSA_SIG_free(es);
            goto failed;
        }

        len = i2d_ECDSA_SIG(es, NULL);

        if (len <= 0 || len > (int) sizeof(buf)) {
            ECDSA_SIG_free(es);
            goto failed;
        }

        p = buf;
        len = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);

        if (len <= 0) {
            goto failed;
        }

        der.data = buf;
        der.len = len;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        goto failed;
    }

    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1) {
        EVP_MD_CTX_free(md);
        goto failed;
    }

    /* RSA: PKCS #1 v1.5, the default padding */

    ok = EVP_DigestVerify(md, der.data, der.len, input->data, input->len);

    EVP_MD_CTX_free(md);

    /* a bad signature leaves errors in the queue, as a broken one does */
    ERR_clear_error();

    return (ok == 1) ? NGX_OK : NGX_DECLINED;

failed:

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "edge_orch: token signature check failed in OpenSSL "
                  "(error %ul)", ERR_peek_last_error());
    ERR_clear_error();

    return NGX_ERROR;
}


static ngx_http_edge_orch_jwt_result_e
ngx_http_edge_orch_jwt_claims(ngx_http_edge_orch_jwt_conf_t *jcf,
    json_t *claims)
{
    size_t   i;
    json_t  *exp, *nbf, *v, *a;
    double   now;

    now = (double) ngx_time();

    /* RFC 7519 4.1.4, 4.1.5; a token without an expiry is not accepted */

    exp = json_object_get(claims, "exp");
    nbf = json_object_get(claims, "nbf");

    if (exp == NULL) {
        return NGX_HTTP_EDGE_ORCH_JWT_NO_EXPIRY;
    }

    if (!json_is_number(exp) || (nbf != NULL && !json_is_number(nbf))) {
        return NGX_HTTP_EDGE_ORCH_JWT_MALFORMED;
    }

    if (now >= json_number_value(exp) + (double) jcf->leeway) {
        return NGX_HTTP_EDGE_ORCH_JWT_EXPIRED;
    }

    if (nbf != NULL && now + (double) jcf->leeway < json_number_value(nbf)) {
        return NGX_HTTP_EDGE_ORCH_JWT_NOT_YET_VALID;
    }

    if (jcf->issuers != NULL) {
        v = json_object_get(claims, "iss");

        if (!json_is_string(v)
            || ngx_http_edge_orch_jwt_match(jcf->issuers, v) != NGX_OK)
        {
            return NGX_HTTP_EDGE_ORCH_JWT_ISSUER;
        }
    }

    if (jcf->audiences != NULL) {
        v = json_object_get(claims, "aud");

        if (json_is_string(v)) {
            if (ngx_http_edge_orch_jwt_match(jcf->audiences, v) != NGX_OK) {
                return NGX_HTTP_EDGE_ORCH_JWT_AUDIENCE;
            }

        } else if (json_is_array(v)) {
            json_array_foreach(v, i, a) {
                if (json_is_string(a)
                    && ngx_http_edge_orch_jwt_match(jcf->audiences, a)
                       == NGX_OK)
                {
                    break;
                }
            }

            if (i == json_array_size(v)) {
                return NGX_HTTP_EDGE_ORCH_JWT_AUDIENCE;
            }

        } else {
            return NGX_HTTP_EDGE_ORCH_JWT_AUDIENCE;
        }
    }

    return NGX_HTTP_EDGE_ORCH_JWT_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_match(ngx_array_t *list, json_t *value)
{
    size_t      len;
    ngx_str_t  *s;
    ngx_uint_t  i;

    len = json_string_length(value);
    s = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (s[i].len == len
            && ngx_strncmp(s[i].data, json_string_value(value), len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* a base64url segment holding a JSON object, or NULL */

static json_t *
ngx_http_edge_orch_jwt_parse(ngx_pool_t *pool, u_char *data, size_t len)
{
    json_t        *json;
    ngx_str_t      s;
    json_error_t   err;

    if (ngx_http_edge_orch_jwt_base64url(pool, data, len, &s) != NGX_OK) {
        return NULL;
    }

    /* no duplicate names: which "alg" or "exp" would count? */

    json = json_loadb((char *) s.data, s.len, JSON_REJECT_DUPLICATES, &err);

    if (json != NULL && !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }

    return json;
}


/*
 * strict base64url: the alphabet only, no padding, and the unused bits of
 * the last character zero, so that a segment has exactly one spelling
 */

static ngx_int_t
ngx_http_edge_orch_jwt_base64url(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out)
{
    size_t      i;
    ngx_str_t   src;
    ngx_uint_t  last;

    for (i = 0; i < len; i++) {
        if (ngx_http_edge_orch_jwt_b64[data[i]] == 255) {
            return NGX_ERROR;
        }
    }

    if (len == 0 || len % 4 == 1) {
        return NGX_ERROR;
    }

    last = ngx_http_edge_orch_jwt_b64[data[len - 1]];

    if ((len % 4 == 2 && (last & 0x0f)) || (len % 4 == 3 && (last & 0x03))) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = data;
    src.len = len;

    return ngx_decode_base64url(out, &src);
}


static ngx_int_t
ngx_http_edge_orch_jwt_set_headers(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_conf_t *jcf, json_t *claims)
{
    ngx_int_t                         rc;
    ngx_str_t                         value;
    ngx_uint_t                        i;
    ngx_table_elt_t                  *h;
    ngx_http_edge_orch_jwt_header_t  *hc;

    if (jcf->headers == NULL) {
        return NGX_OK;
    }

    /* the main request's headers: fragments and proxy_pass copy them */

    hc = jcf->headers->elts;

    for (i = 0; i < jcf->headers->nelts; i++) {

        rc = ngx_http_edge_orch_jwt_claim_value(r->pool, claims,
                                                hc[i].claim.data,
                                                hc[i].claim.len, 0, &value);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = hc[i].hash;
        h->key = hc[i].name;
        h->lowcase_key = hc[i].lowcase.data;
        h->value = value;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_jwt_reject(ngx_http_request_t *r,
    ngx_http_edge_orch_jwt_result_e result)
{
    u_char                    *p;
    ngx_int_t                  rc;
    ngx_str_t                 *reason;
    ngx_table_elt_t           *h;
    ngx_http_complex_value_t   cv;
    ngx_http_core_loc_conf_t  *clcf;

    static ngx_str_t  type = ngx_string("application/json");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* RFC 6750 3.1: no error code when the request had no token at all */

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");

    if (result == NGX_HTTP_EDGE_ORCH_JWT_MISSING) {
        ngx_str_set(&h->value, "Bearer");

    } else {
        ngx_str_set(&h->value, "Bearer error=\"invalid_token\"");
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    r->headers_out.www_authenticate = h;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        /* another access module may still let the request in */
        return NGX_HTTP_UNAUTHORIZED;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    reason = &ngx_http_edge_orch_jwt_reasons[result];

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    cv.value.len = sizeof("{\"error\":\"invalid token\",\"reason\":\"\"}") - 1
                   + reason->len;

    cv.value.data = ngx_pnalloc(r->pool, cv.value.len);
    if (cv.value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(cv.value.data,
                    "{\"error\":\"invalid token\",\"reason\":\"%V\"}", reason);

    cv.value.len = p - cv.value.data;

    rc = ngx_http_send_response(r, NGX_HTTP_UNAUTHORIZED, &type, &cv);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * a claim as text: a string as it is, anything else as compact JSON;
 * NGX_DECLINED when it is absent, null, or would not be safe in a header
 */

static ngx_int_t
ngx_http_edge_orch_jwt_claim_value(ngx_pool_t *pool, json_t *claims,
    u_char *name, size_t len, ngx_uint_t icase, ngx_str_t *out)
{
    char        *dump;
    u_char      *p;
    size_t       n;
    json_t      *v, *any;
    const char  *key;

    v = json_object_getn(claims, (const char *) name, len);

    if (v == NULL && icase) {
        /* nginx lowercases variable names: "userId" is $..._userid */

        any = NULL;

        json_object_foreach(claims, key, v) {
            if (ngx_strlen(key) == len
                && ngx_strncasecmp((u_char *) key, name, len) == 0)
            {
                any = v;
                break;
            }
        }

        v = any;
    }

    if (v == NULL || json_is_null(v)) {
        return NGX_DECLINED;
    }

    if (json_is_string(v)) {
        n = json_string_length(v);

        out->data = ngx_pnalloc(pool, n);
        if (out->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(out->data, json_string_value(v), n);
        out->len = n;

    } else {
        dump = json_dumps(v, JSON_ENCODE_ANY|JSON_COMPACT);
        if (dump == NULL) {
            return NGX_ERROR;
        }

        out->len = ngx_strlen(dump);
        out->data = ngx_pnalloc(pool, out->len);

        if (out->data != NULL) {
            ngx_memcpy(out->data, dump, out->len);
        }

        free(dump);

        if (out->data == NULL) {
            return NGX_ERROR;
        }
    }

    for (p = out->data; p < out->data + out->len; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return NGX_DECLINED;
        }
    }

    return (out->len > 0) ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_edge_orch_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    size_t                         prefix;
    ngx_int_t                      rc;
    ngx_str_t                      value;
    ngx_http_edge_orch_jwt_ctx_t  *ctx;

    prefix = sizeof(NGX_HTTP_EDGE_ORCH_JWT_PREFIX) - 1;

    ctx = ngx_http_edge_orch_jwt_get_ctx(r);

    if (ctx == NULL || ctx->claims == NULL || name->len <= prefix) {
        v->not_found = 1;
        return NGX_OK;
    }

    rc = ngx_http_edge_orch_jwt_claim_value(r->pool, ctx->claims,
                                            name->data + prefix,
                                            name->len - prefix, 1, &value);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_http_edge_orch_jwt_ctx_t *
ngx_http_edge_orch_jwt_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    /* subrequests share the main request's pool */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_edge_orch_jwt_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static void
ngx_http_edge_orch_jwt_cleanup(void *data)
{
    ngx_http_edge_orch_jwt_ctx_t *ctx = data;

    if (ctx->claims != NULL) {
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }
}
