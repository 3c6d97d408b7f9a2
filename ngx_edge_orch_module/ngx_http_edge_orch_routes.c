
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Routing table: an LMDB environment written by tools/edge-orch-routes and
 * read by every worker.  Each worker opens the environment after fork and
 * keeps an in-memory snapshot of the whole table, tagged with the LMDB
 * transaction id it was read from.  A request renews a read transaction,
 * compares the id and reloads the snapshot only when the table changed.
 * When the table is missing, unreadable or corrupt the worker keeps its
 * last-known-good snapshot (or none: fragments then use upstream=) and
 * logs the problem once, when it starts and when it ends.
 *
 * Key schema (docs/routing-table.md):
 *   routes           SERVICE|REGION|DEVICE|BUCKET -> upstream
 *   groups           REGION -> GROUP
 *   region_patterns  NNNN -> GROUP "\n" PCRE2
 *   devices          NNNN -> CLASS "\n" PCRE2 (matched against User-Agent)
 *   meta             schema, generation, default_group, updated_at, op
 */


#include "ngx_http_edge_orch_module.h"

#include <lmdb.h>


#define NGX_HTTP_EDGE_ORCH_DB_ROUTES    0
#define NGX_HTTP_EDGE_ORCH_DB_GROUPS    1
#define NGX_HTTP_EDGE_ORCH_DB_RPATTERNS 2
#define NGX_HTTP_EDGE_ORCH_DB_DEVICES   3
#define NGX_HTTP_EDGE_ORCH_DB_META      4
#define NGX_HTTP_EDGE_ORCH_DB_N         5

#define NGX_HTTP_EDGE_ORCH_RECHECK      1000    /* stat() the file, ms */
#define NGX_HTTP_EDGE_ORCH_REOPEN       1000    /* retry opening, ms */


typedef struct {
    ngx_str_t                      key;
    ngx_str_t                      value;
} ngx_http_edge_orch_kv_t;


typedef struct {
    ngx_regex_t                   *regex;
    ngx_str_t                      target;
} ngx_http_edge_orch_pattern_t;


#define NGX_HTTP_EDGE_ORCH_BYPASS_SLOTS  1024
#define NGX_HTTP_EDGE_ORCH_BYPASS_URI    120


/* one cached bypass decision: per path and table generation */
typedef struct {
    uint32_t                       hash;
    uint16_t                       len;
    u_char                         decision;   /* 0 none, 1 static, 2 not */
    u_char                         uri[NGX_HTTP_EDGE_ORCH_BYPASS_URI];
} ngx_http_edge_orch_bypass_slot_t;


typedef struct {
    ngx_pool_t                    *pool;
    size_t                         txnid;
    uint64_t                       generation;
    time_t                         updated_at;  /* meta, 0: unknown */
    ngx_str_t                      default_group;
    ngx_array_t                    routes;      /* kv_t, sorted as LMDB */
    ngx_array_t                    groups;      /* kv_t, sorted as LMDB */
    ngx_array_t                    rpatterns;   /* pattern_t, in order */
    ngx_array_t                    devices;     /* pattern_t, in order */

    /* static routes: requests that skip orchestration */
    ngx_array_t                    static_exact;     /* ngx_str_t, sorted */
    ngx_array_t                    static_prefix;    /* longest first */
    ngx_array_t                    static_patterns;  /* pattern_t */
    ngx_http_edge_orch_bypass_slot_t  *bypass;       /* decision cache */
} ngx_http_edge_orch_snapshot_t;


typedef enum {
    NGX_HTTP_EDGE_ORCH_TABLE_OK = 0,
    NGX_HTTP_EDGE_ORCH_TABLE_NONE,        /* never opened yet */
    NGX_HTTP_EDGE_ORCH_TABLE_OPEN_FAILED,
    NGX_HTTP_EDGE_ORCH_TABLE_READ_FAILED,
    NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT,
    NGX_HTTP_EDGE_ORCH_TABLE_REPLACED
} ngx_http_edge_orch_table_state_e;


struct ngx_http_edge_orch_routes_s {
    ngx_str_t                      path;
    u_char                        *data_file;
    ngx_log_t                     *log;
    ngx_cycle_t                   *cycle;

    MDB_env                       *env;
    MDB_txn                       *txn;
    MDB_dbi                        dbi[NGX_HTTP_EDGE_ORCH_DB_N];
    MDB_dbi                        static_dbi;
    ngx_uint_t                     has_static;  /* older tables have none */
    ngx_fd_t                       fd;
    ngx_file_uniq_t                uniq;

    ngx_msec_t                     next_stat;
    ngx_msec_t                     next_open;

    size_t                         bad_txnid;
    ngx_uint_t                     reopened;
    ngx_http_edge_orch_table_state_e  state;

    ngx_http_edge_orch_snapshot_t *snap;

    ngx_http_edge_orch_stats_t    *stats;
    ngx_uint_t                     lkg;         /* counted as serving LKG */
};


static ngx_int_t ngx_http_edge_orch_routes_refresh(
    ngx_http_edge_orch_routes_t *rt);
static ngx_int_t ngx_http_edge_orch_routes_open(
    ngx_http_edge_orch_routes_t *rt);
static void ngx_http_edge_orch_routes_close(ngx_http_edge_orch_routes_t *rt);
static ngx_int_t ngx_http_edge_orch_routes_check_file(
    ngx_http_edge_orch_routes_t *rt);
static ngx_http_edge_orch_snapshot_t *ngx_http_edge_orch_routes_load(
    ngx_http_edge_orch_routes_t *rt, size_t txnid);
static ngx_int_t ngx_http_edge_orch_load_kv(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap, MDB_dbi dbi, ngx_array_t *a,
    ngx_uint_t routes);
static ngx_int_t ngx_http_edge_orch_load_patterns(
    ngx_http_edge_orch_routes_t *rt, ngx_http_edge_orch_snapshot_t *snap,
    MDB_dbi dbi, ngx_array_t *a, const char *what);
static ngx_int_t ngx_http_edge_orch_cursor_open(
    ngx_http_edge_orch_routes_t *rt, MDB_dbi dbi, MDB_cursor **cur);
static ngx_int_t ngx_http_edge_orch_cursor_end(
    ngx_http_edge_orch_routes_t *rt, MDB_cursor *cur, int rc,
    ngx_uint_t skipped, const char *what);
static ngx_int_t ngx_http_edge_orch_load_meta(
    ngx_http_edge_orch_routes_t *rt, ngx_http_edge_orch_snapshot_t *snap);
static ngx_regex_t *ngx_http_edge_orch_regex(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap, u_char *pattern, size_t len,
    const char *what);
static ngx_int_t ngx_http_edge_orch_load_static(
    ngx_http_edge_orch_routes_t *rt, ngx_http_edge_orch_snapshot_t *snap);
static ngx_int_t ngx_http_edge_orch_str_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_http_edge_orch_len_cmp(const void *one,
    const void *two);
static void ngx_http_edge_orch_routes_problem(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_table_state_e state, ngx_err_t err, const char *fmt,
    ...);
static ngx_str_t *ngx_http_edge_orch_kv_find(ngx_array_t *a, u_char *key,
    size_t len);
static ngx_str_t *ngx_http_edge_orch_pattern_match(ngx_array_t *a,
    ngx_str_t *s, ngx_log_t *log);
static ngx_int_t ngx_http_edge_orch_known_upstream(ngx_cycle_t *cycle,
    ngx_str_t *name);
static ngx_http_edge_orch_snapshot_t *ngx_http_edge_orch_routes_current(
    ngx_http_request_t *r);
static void ngx_http_edge_orch_routes_lkg(ngx_http_edge_orch_routes_t *rt);
static ngx_int_t ngx_http_edge_orch_eval_name(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value);
static void ngx_http_edge_orch_pool_str(ngx_http_request_t *r,
    ngx_str_t *dst, ngx_str_t *src);


static const char  *ngx_http_edge_orch_db_names[] = {
    "routes", "groups", "region_patterns", "devices", "meta"
};


static ngx_str_t  ngx_http_edge_orch_default_region = ngx_string("default");
static ngx_str_t  ngx_http_edge_orch_star = ngx_string("*");


ngx_int_t
ngx_http_edge_orch_routes_init_conf(ngx_conf_t *cf,
    ngx_http_edge_orch_main_conf_t *emcf)
{
    ngx_file_info_t               fi;
    ngx_http_edge_orch_routes_t  *rt;

    if (emcf->routes_path.len == 0) {
        return NGX_OK;
    }

    rt = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_routes_t));
    if (rt == NULL) {
        return NGX_ERROR;
    }

    rt->path = emcf->routes_path;
    rt->fd = NGX_INVALID_FILE;
    rt->state = NGX_HTTP_EDGE_ORCH_TABLE_NONE;

    rt->data_file = ngx_pnalloc(cf->pool, rt->path.len + sizeof("/data.mdb"));
    if (rt->data_file == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(rt->data_file, "%V/data.mdb%Z", &rt->path);

    rt->stats = emcf->stats;
    emcf->routes = rt;

    /*
     * the master never opens LMDB (an environment must not cross fork);
     * only say early when the table is not there yet
     */

    if (ngx_file_info(rt->data_file, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                      "edge_orch_routes \"%V\" has no table yet "
                      "(" ngx_file_info_n " \"%s\" failed) in %s:%ui; "
                      "fragments use their upstream= until it appears",
                      &rt->path, rt->data_file, emcf->routes_file,
                      emcf->routes_line);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_routes_init_process(ngx_cycle_t *cycle,
    ngx_http_edge_orch_main_conf_t *emcf)
{
    ngx_http_edge_orch_routes_t  *rt;

    rt = emcf->routes;

    if (rt == NULL) {
        return NGX_OK;
    }

    rt->log = cycle->log;
    rt->cycle = cycle;

    (void) ngx_http_edge_orch_routes_refresh(rt);

    return NGX_OK;
}


void
ngx_http_edge_orch_routes_exit_process(ngx_http_edge_orch_main_conf_t *emcf)
{
    ngx_http_edge_orch_routes_t  *rt;

    rt = emcf->routes;

    if (rt == NULL) {
        return;
    }

    ngx_http_edge_orch_routes_close(rt);

    if (rt->snap != NULL) {
        ngx_destroy_pool(rt->snap->pool);
        rt->snap = NULL;
    }

    /* this worker no longer serves anything */
    ngx_http_edge_orch_routes_lkg(rt);
}


static ngx_int_t
ngx_http_edge_orch_routes_refresh(ngx_http_edge_orch_routes_t *rt)
{
    int                             rc;
    size_t                          txnid;
    ngx_uint_t                      retried;
    ngx_file_info_t                 fi;
    ngx_http_edge_orch_snapshot_t  *snap;

    if (rt->env != NULL && ngx_current_msec >= rt->next_stat) {

        /* notice a table replaced by rename() or deleted */

        rt->next_stat = ngx_current_msec + NGX_HTTP_EDGE_ORCH_RECHECK;

        if (ngx_file_info(rt->data_file, &fi) == NGX_FILE_ERROR) {
            ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_OPEN_FAILED,
                                 ngx_errno, ngx_file_info_n " \"%s\" failed",
                                 rt->data_file);
            ngx_http_edge_orch_routes_close(rt);
            return NGX_DECLINED;
        }

        if (ngx_file_uniq(&fi) != rt->uniq) {
            ngx_log_error(NGX_LOG_NOTICE, rt->log, 0,
                          "edge_orch: routing table \"%V\" was replaced, "
                          "reopening", &rt->path);
            ngx_http_edge_orch_routes_close(rt);

            /* the new table is there: open it now, not in a second */
            rt->next_open = 0;
        }
    }

    if (rt->env == NULL) {
        if (ngx_current_msec < rt->next_open) {
            return NGX_DECLINED;
        }

        rt->next_open = ngx_current_msec + NGX_HTTP_EDGE_ORCH_REOPEN;

        if (ngx_http_edge_orch_routes_open(rt) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    if (ngx_http_edge_orch_routes_check_file(rt) != NGX_OK) {
        ngx_http_edge_orch_routes_close(rt);
        return NGX_DECLINED;
    }

    retried = 0;

again:

    if (rt->txn == NULL) {
        rc = mdb_txn_begin(rt->env, NULL, MDB_RDONLY, &rt->txn);

    } else {
        rc = mdb_txn_renew(rt->txn);
    }

    if (rc == MDB_MAP_RESIZED && !retried) {
        /* the writer grew the map: adopt the new size and retry */

        if (rt->txn != NULL) {
            mdb_txn_abort(rt->txn);
            rt->txn = NULL;
        }

        retried = 1;

        if (mdb_env_set_mapsize(rt->env, 0) == MDB_SUCCESS) {
            goto again;
        }
    }

    if (rc != MDB_SUCCESS) {
        if (rc != MDB_MAP_RESIZED && rt->txn != NULL) {
            mdb_txn_abort(rt->txn);
        }

        rt->txn = NULL;

        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_READ_FAILED, 0,
                                 "mdb_txn_begin() failed: %s",
                                 mdb_strerror(rc));
        ngx_http_edge_orch_routes_close(rt);
        return NGX_DECLINED;
    }

    txnid = mdb_txn_id(rt->txn);

    /*
     * transaction ids are per environment: after a (re)open the snapshot is
     * reloaded whatever its id, a replaced table may well have the same one
     */

    if (!rt->reopened
        && ((rt->snap != NULL && rt->snap->txnid == txnid)
            || rt->bad_txnid == txnid))
    {
        mdb_txn_reset(rt->txn);
        return NGX_OK;
    }

    snap = ngx_http_edge_orch_routes_load(rt, txnid);

    mdb_txn_reset(rt->txn);

    rt->reopened = 0;

    if (snap == NULL) {
        /* keep the last-known-good snapshot, do not retry this version */
        rt->bad_txnid = txnid;
        return NGX_DECLINED;
    }

    if (rt->snap != NULL) {
        ngx_destroy_pool(rt->snap->pool);
    }

    if (rt->state != NGX_HTTP_EDGE_ORCH_TABLE_OK
        && rt->state != NGX_HTTP_EDGE_ORCH_TABLE_NONE)
    {
        ngx_log_error(NGX_LOG_NOTICE, rt->log, 0,
                      "edge_orch: routing table \"%V\" is readable again",
                      &rt->path);
    }

    ngx_log_error(NGX_LOG_INFO, rt->log, 0,
                  "edge_orch: routing table \"%V\" generation %uL loaded: "
                  "%ui routes, %ui groups, %ui region patterns, "
                  "%ui device patterns",
                  &rt->path, snap->generation, snap->routes.nelts,
                  snap->groups.nelts, snap->rpatterns.nelts,
                  snap->devices.nelts);

    rt->state = NGX_HTTP_EDGE_ORCH_TABLE_OK;
    rt->snap = snap;
    rt->bad_txnid = 0;

    ngx_http_edge_orch_routes_lkg(rt);

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_routes_open(ngx_http_edge_orch_routes_t *rt)
{
    int               rc;
    MDB_txn          *txn;
    ngx_uint_t        i;
    mdb_filehandle_t  fd;
    ngx_file_info_t   fi;

    if (ngx_file_info(rt->data_file, &fi) == NGX_FILE_ERROR) {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_OPEN_FAILED,
                                 ngx_errno, ngx_file_info_n " \"%s\" failed",
                                 rt->data_file);
        return NGX_ERROR;
    }

    rc = mdb_env_create(&rt->env);
    if (rc != MDB_SUCCESS) {
        rt->env = NULL;
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_OPEN_FAILED, 0,
                                 "mdb_env_create() failed: %s",
                                 mdb_strerror(rc));
        return NGX_ERROR;
    }

    rc = mdb_env_set_maxdbs(rt->env, 8);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    rc = mdb_env_open(rt->env, (char *) rt->path.data,
                      MDB_RDONLY|MDB_NOTLS|MDB_NORDAHEAD, 0644);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    rc = mdb_env_get_fd(rt->env, &fd);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    rt->fd = fd;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        rc = ngx_errno;
        goto failed;
    }

    rt->uniq = ngx_file_uniq(&fi);

    if (ngx_http_edge_orch_routes_check_file(rt) != NGX_OK) {
        mdb_env_close(rt->env);
        rt->env = NULL;
        rt->fd = NGX_INVALID_FILE;
        return NGX_ERROR;
    }

    rc = mdb_txn_begin(rt->env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        /* e.g. MDB_READERS_FULL: every reader slot of the table is taken */
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_READ_FAILED, 0,
                                 "mdb_txn_begin() on \"%V\" failed: %s",
                                 &rt->path, mdb_strerror(rc));
        mdb_env_close(rt->env);
        rt->env = NULL;
        rt->fd = NGX_INVALID_FILE;
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_EDGE_ORCH_DB_N; i++) {
        rc = mdb_dbi_open(txn, ngx_http_edge_orch_db_names[i], 0,
                          &rt->dbi[i]);
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                                 "database \"%s\" in \"%V\": %s "
                                 "(not written by edge-orch-routes?)",
                                 ngx_http_edge_orch_db_names[i], &rt->path,
                                 mdb_strerror(rc));
            mdb_env_close(rt->env);
            rt->env = NULL;
            rt->fd = NGX_INVALID_FILE;
            return NGX_ERROR;
        }
    }

    /* static routes came later: a table without them has none */

    rc = mdb_dbi_open(txn, "static", 0, &rt->static_dbi);
    rt->has_static = (rc == MDB_SUCCESS);

    /* a committed read-only transaction keeps its database handles */

    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    rt->next_stat = ngx_current_msec + NGX_HTTP_EDGE_ORCH_RECHECK;
    rt->reopened = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rt->log, 0,
                   "edge_orch routes \"%V\" opened", &rt->path);

    return NGX_OK;

failed:

    ngx_http_edge_orch_routes_problem(rt,
                             NGX_HTTP_EDGE_ORCH_TABLE_OPEN_FAILED,
                             rc > 0 ? (ngx_err_t) rc : 0,
                             "mdb_env_open(\"%V\") failed: %s%s", &rt->path,
                             mdb_strerror(rc),
                             rc == EACCES
                               ? " (the worker user needs read access to "
                                 "data.mdb and write access to lock.mdb)"
                               : "");
    mdb_env_close(rt->env);
    rt->env = NULL;
    rt->fd = NGX_INVALID_FILE;

    return NGX_ERROR;
}


static void
ngx_http_edge_orch_routes_close(ngx_http_edge_orch_routes_t *rt)
{
    if (rt->txn != NULL) {
        mdb_txn_abort(rt->txn);
        rt->txn = NULL;
    }

    if (rt->env != NULL) {
        mdb_env_close(rt->env);
        rt->env = NULL;
    }

    rt->fd = NGX_INVALID_FILE;
    rt->bad_txnid = 0;

    /* try again soon, not on every request */
    rt->next_open = ngx_current_msec + NGX_HTTP_EDGE_ORCH_REOPEN;
}


static ngx_int_t
ngx_http_edge_orch_routes_check_file(ngx_http_edge_orch_routes_t *rt)
{
    off_t            need;
    MDB_stat         st;
    MDB_envinfo      info;
    ngx_file_info_t  fi;

    /*
     * LMDB reads its file through mmap(): a truncated file would raise
     * SIGBUS in the worker, so the size is checked before any read
     */

    if (ngx_fd_info(rt->fd, &fi) == NGX_FILE_ERROR) {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_READ_FAILED,
                                 ngx_errno, ngx_fd_info_n " \"%s\" failed",
                                 rt->data_file);
        return NGX_ERROR;
    }

    if (ngx_file_size(&fi) < (off_t) (2 * ngx_pagesize)) {
        goto corrupt;
    }

    if (mdb_env_info(rt->env, &info) != MDB_SUCCESS
        || mdb_env_stat(rt->env, &st) != MDB_SUCCESS)
    {
        goto corrupt;
    }

    need = (off_t) (info.me_last_pgno + 1) * st.ms_psize;

    if (ngx_file_size(&fi) < need) {
        goto corrupt;
    }

    return NGX_OK;

corrupt:

    ngx_http_edge_orch_routes_problem(rt, NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                             "\"%s\" is truncated or not an LMDB file "
                             "(%O bytes)", rt->data_file,
                             ngx_file_size(&fi));
    return NGX_ERROR;
}


static ngx_http_edge_orch_snapshot_t *
ngx_http_edge_orch_routes_load(ngx_http_edge_orch_routes_t *rt, size_t txnid)
{
    ngx_pool_t                     *pool;
    ngx_http_edge_orch_snapshot_t  *snap;

    /* the pool outlives this request: never give it a request log */
    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    snap = ngx_pcalloc(pool, sizeof(ngx_http_edge_orch_snapshot_t));
    if (snap == NULL) {
        goto failed;
    }

    snap->pool = pool;
    snap->txnid = txnid;

    if (ngx_array_init(&snap->routes, pool, 16,
                       sizeof(ngx_http_edge_orch_kv_t)) != NGX_OK
        || ngx_array_init(&snap->groups, pool, 16,
                          sizeof(ngx_http_edge_orch_kv_t)) != NGX_OK
        || ngx_array_init(&snap->rpatterns, pool, 4,
                          sizeof(ngx_http_edge_orch_pattern_t)) != NGX_OK
        || ngx_array_init(&snap->devices, pool, 4,
                          sizeof(ngx_http_edge_orch_pattern_t)) != NGX_OK
        || ngx_array_init(&snap->static_exact, pool, 4,
                          sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&snap->static_prefix, pool, 4,
                          sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&snap->static_patterns, pool, 4,
                          sizeof(ngx_http_edge_orch_pattern_t)) != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_edge_orch_load_meta(rt, snap) != NGX_OK) {
        goto failed;
    }

    if (ngx_http_edge_orch_load_kv(rt, snap,
                                   rt->dbi[NGX_HTTP_EDGE_ORCH_DB_ROUTES],
                                   &snap->routes, 1)
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_edge_orch_load_kv(rt, snap,
                                   rt->dbi[NGX_HTTP_EDGE_ORCH_DB_GROUPS],
                                   &snap->groups, 0)
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_edge_orch_load_patterns(rt, snap,
                                   rt->dbi[NGX_HTTP_EDGE_ORCH_DB_RPATTERNS],
                                   &snap->rpatterns, "region pattern")
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_edge_orch_load_patterns(rt, snap,
                                   rt->dbi[NGX_HTTP_EDGE_ORCH_DB_DEVICES],
                                   &snap->devices, "device pattern")
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_edge_orch_load_static(rt, snap) != NGX_OK) {
        goto failed;
    }

    return snap;

failed:

    ngx_destroy_pool(pool);
    return NULL;
}


static ngx_int_t
ngx_http_edge_orch_load_meta(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap)
{
    int        rc;
    MDB_val    key, val;
    ngx_int_t  n;

    key.mv_data = "schema";
    key.mv_size = sizeof("schema") - 1;

    rc = mdb_get(rt->txn, rt->dbi[NGX_HTTP_EDGE_ORCH_DB_META], &key, &val);

    if (rc != MDB_SUCCESS || val.mv_size != 1
        || *(u_char *) val.mv_data != '1')
    {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                                 "routing table \"%V\" has no schema 1 "
                                 "(%s), keeping the previous table",
                                 &rt->path,
                                 rc == MDB_SUCCESS ? "other schema"
                                                   : mdb_strerror(rc));
        return NGX_ERROR;
    }

    key.mv_data = "generation";
    key.mv_size = sizeof("generation") - 1;

    rc = mdb_get(rt->txn, rt->dbi[NGX_HTTP_EDGE_ORCH_DB_META], &key, &val);

    n = (rc == MDB_SUCCESS && val.mv_size <= 18)
        ? ngx_atoi(val.mv_data, val.mv_size) : NGX_ERROR;

    if (n == NGX_ERROR) {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                                 "routing table \"%V\" has no valid "
                                 "generation, keeping the previous table",
                                 &rt->path);
        return NGX_ERROR;
    }

    snap->generation = (uint64_t) n;

    key.mv_data = "updated_at";
    key.mv_size = sizeof("updated_at") - 1;

    rc = mdb_get(rt->txn, rt->dbi[NGX_HTTP_EDGE_ORCH_DB_META], &key, &val);

    /* shown on the status page only: a bad value is just unknown */

    n = (rc == MDB_SUCCESS && val.mv_size <= 18)
        ? ngx_atoi(val.mv_data, val.mv_size) : NGX_ERROR;

    snap->updated_at = (n == NGX_ERROR) ? 0 : (time_t) n;

    key.mv_data = "default_group";
    key.mv_size = sizeof("default_group") - 1;

    rc = mdb_get(rt->txn, rt->dbi[NGX_HTTP_EDGE_ORCH_DB_META], &key, &val);

    if (rc == MDB_SUCCESS
        && ngx_http_edge_orch_name_ok(val.mv_data, val.mv_size, 0) == NGX_OK)
    {
        snap->default_group.data = ngx_pnalloc(snap->pool, val.mv_size);
        if (snap->default_group.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(snap->default_group.data, val.mv_data, val.mv_size);
        snap->default_group.len = val.mv_size;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_cursor_open(ngx_http_edge_orch_routes_t *rt, MDB_dbi dbi,
    MDB_cursor **cur)
{
    int  rc;

    rc = mdb_cursor_open(rt->txn, dbi, cur);

    if (rc != MDB_SUCCESS) {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                                 "mdb_cursor_open() failed: %s",
                                 mdb_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_cursor_end(ngx_http_edge_orch_routes_t *rt,
    MDB_cursor *cur, int rc, ngx_uint_t skipped, const char *what)
{
    /* a scan ends with MDB_NOTFOUND; anything else: keep the old table */

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        ngx_http_edge_orch_routes_problem(rt,
                                 NGX_HTTP_EDGE_ORCH_TABLE_CORRUPT, 0,
                                 "reading \"%V\" failed: %s, keeping the "
                                 "previous table", &rt->path,
                                 mdb_strerror(rc));
        return NGX_ERROR;
    }

    if (skipped) {
        ngx_log_error(NGX_LOG_WARN, rt->log, 0,
                      "edge_orch: %ui malformed %s entries in \"%V\" "
                      "ignored", skipped, what, &rt->path);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_load_kv(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap, MDB_dbi dbi, ngx_array_t *a,
    ngx_uint_t routes)
{
    int                       rc;
    u_char                   *p, *last, *f;
    MDB_val                   key, val;
    ngx_str_t                 up;
    MDB_cursor               *cur;
    ngx_uint_t                fields, skipped, unknown;
    ngx_http_edge_orch_kv_t  *kv;

    if (ngx_http_edge_orch_cursor_open(rt, dbi, &cur) != NGX_OK) {
        return NGX_ERROR;
    }

    skipped = 0;
    unknown = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (routes) {
            /* SERVICE|REGION|DEVICE|BUCKET, each a valid name or "*" */

            p = key.mv_data;
            last = p + key.mv_size;
            fields = 0;

            for (f = p; p <= last; p++) {
                if (p == last || *p == '|') {
                    if (ngx_http_edge_orch_name_ok(f, p - f, fields > 0)
                        != NGX_OK)
                    {
                        fields = 99;
                        break;
                    }

                    fields++;
                    f = p + 1;
                }
            }

            if (fields != 4) {
                skipped++;
                continue;
            }

        } else if (ngx_http_edge_orch_name_ok(key.mv_data, key.mv_size, 0)
                   != NGX_OK)
        {
            skipped++;
            continue;
        }

        if (ngx_http_edge_orch_name_ok(val.mv_data, val.mv_size, 0)
            != NGX_OK)
        {
            skipped++;
            continue;
        }

        if (routes) {
            up.data = val.mv_data;
            up.len = val.mv_size;

            if (ngx_http_edge_orch_known_upstream(rt->cycle, &up) != NGX_OK) {
                if (unknown++ == 0) {
                    ngx_log_error(NGX_LOG_WARN, rt->log, 0,
                                  "edge_orch: route \"%*s\" names unknown "
                                  "upstream \"%V\", route ignored",
                                  key.mv_size, key.mv_data, &up);
                }

                continue;
            }
        }

        kv = ngx_array_push(a);
        if (kv == NULL) {
            mdb_cursor_close(cur);
            return NGX_ERROR;
        }

        kv->key.len = key.mv_size;
        kv->key.data = ngx_pnalloc(snap->pool, key.mv_size + val.mv_size);
        if (kv->key.data == NULL) {
            mdb_cursor_close(cur);
            return NGX_ERROR;
        }

        ngx_memcpy(kv->key.data, key.mv_data, key.mv_size);

        kv->value.len = val.mv_size;
        kv->value.data = kv->key.data + key.mv_size;
        ngx_memcpy(kv->value.data, val.mv_data, val.mv_size);
    }

    if (ngx_http_edge_orch_cursor_end(rt, cur, rc, skipped,
                                      routes ? "route" : "group")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (unknown > 1) {
        ngx_log_error(NGX_LOG_WARN, rt->log, 0,
                      "edge_orch: %ui routes in \"%V\" name unknown "
                      "upstreams and are ignored", unknown, &rt->path);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_load_patterns(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap, MDB_dbi dbi, ngx_array_t *a,
    const char *what)
{
    int                            rc;
    u_char                        *p, *nl;
    MDB_val                        key, val;
    MDB_cursor                    *cur;
    ngx_uint_t                     skipped;
    ngx_http_edge_orch_pattern_t  *pat;

    if (ngx_http_edge_orch_cursor_open(rt, dbi, &cur) != NGX_OK) {
        return NGX_ERROR;
    }

    skipped = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        p = val.mv_data;
        nl = ngx_strlchr(p, p + val.mv_size, '\n');

        if (nl == NULL
            || ngx_http_edge_orch_name_ok(p, nl - p, 0) != NGX_OK
            || (size_t) (nl - p) + 1 >= val.mv_size
            || val.mv_size > 2048)
        {
            skipped++;
            continue;
        }

        pat = ngx_array_push(a);
        if (pat == NULL) {
            mdb_cursor_close(cur);
            return NGX_ERROR;
        }

        pat->target.len = nl - p;
        pat->target.data = ngx_pnalloc(snap->pool, val.mv_size + 1);
        if (pat->target.data == NULL) {
            mdb_cursor_close(cur);
            return NGX_ERROR;
        }

        ngx_memcpy(pat->target.data, p, val.mv_size);
        pat->target.data[val.mv_size] = '\0';

        pat->regex = ngx_http_edge_orch_regex(rt, snap,
                                     pat->target.data + pat->target.len + 1,
                                     val.mv_size - pat->target.len - 1, what);
        if (pat->regex == NULL) {
            a->nelts--;
            skipped++;
        }
    }

    return ngx_http_edge_orch_cursor_end(rt, cur, rc, skipped, what);
}


static ngx_regex_t *
ngx_http_edge_orch_regex(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap, u_char *pattern, size_t len,
    const char *what)
{
    ngx_regex_compile_t  rgc;
    u_char               errstr[NGX_MAX_CONF_ERRSTR];

    /* compiled once per snapshot, into the snapshot's pool */

    ngx_memzero(&rgc, sizeof(ngx_regex_compile_t));

    rgc.pattern.data = pattern;
    rgc.pattern.len = len;
    rgc.pool = snap->pool;
    rgc.err.len = NGX_MAX_CONF_ERRSTR;
    rgc.err.data = errstr;

    if (ngx_regex_compile(&rgc) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, rt->log, 0,
                      "edge_orch: %s ignored: %V", what, &rgc.err);
        return NULL;
    }

    return rgc.regex;
}


static ngx_int_t
ngx_http_edge_orch_load_static(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_snapshot_t *snap)
{
    int                            rc;
    u_char                        *p, *nl, *v;
    size_t                         n, vlen;
    MDB_val                        key, val;
    ngx_str_t                     *s;
    ngx_uint_t                     skipped;
    MDB_cursor                    *cur;
    ngx_regex_t                   *re;
    ngx_http_edge_orch_pattern_t  *pat;

    if (!rt->has_static) {
        return NGX_OK;
    }

    if (ngx_http_edge_orch_cursor_open(rt, rt->static_dbi, &cur) != NGX_OK) {
        return NGX_ERROR;
    }

    skipped = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        /* KIND "\n" VALUE */

        p = val.mv_data;
        nl = ngx_strlchr(p, p + val.mv_size, '\n');

        if (nl == NULL || val.mv_size > 2048
            || (size_t) (nl - p) + 1 >= val.mv_size)
        {
            skipped++;
            continue;
        }

        n = nl - p;
        vlen = val.mv_size - n - 1;

        v = ngx_pnalloc(snap->pool, vlen);
        if (v == NULL) {
            mdb_cursor_close(cur);
            return NGX_ERROR;
        }

        ngx_memcpy(v, nl + 1, vlen);

        if ((n == 5 && ngx_strncmp(p, "exact", 5) == 0)
            || (n == 6 && ngx_strncmp(p, "prefix", 6) == 0))
        {
            if (v[0] != '/') {
                skipped++;
                continue;
            }

            s = ngx_array_push(n == 5 ? &snap->static_exact
                                      : &snap->static_prefix);
            if (s == NULL) {
                mdb_cursor_close(cur);
                return NGX_ERROR;
            }

            s->data = v;
            s->len = vlen;
            continue;
        }

        if (n == 7 && ngx_strncmp(p, "pattern", 7) == 0) {
            re = ngx_http_edge_orch_regex(rt, snap, v, vlen,
                                          "static pattern");
            if (re == NULL) {
                skipped++;
                continue;
            }

            pat = ngx_array_push(&snap->static_patterns);
            if (pat == NULL) {
                mdb_cursor_close(cur);
                return NGX_ERROR;
            }

            pat->regex = re;
            pat->target.data = v;
            pat->target.len = vlen;
            continue;
        }

        skipped++;
    }

    if (ngx_http_edge_orch_cursor_end(rt, cur, rc, skipped, "static")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* exact paths are searched, prefixes tried longest first */

    ngx_sort(snap->static_exact.elts, snap->static_exact.nelts,
             sizeof(ngx_str_t), ngx_http_edge_orch_str_cmp);
    ngx_sort(snap->static_prefix.elts, snap->static_prefix.nelts,
             sizeof(ngx_str_t), ngx_http_edge_orch_len_cmp);

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_str_cmp(const void *one, const void *two)
{
    const ngx_str_t  *a = one, *b = two;

    return ngx_memn2cmp(a->data, b->data, a->len, b->len);
}


static ngx_int_t
ngx_http_edge_orch_len_cmp(const void *one, const void *two)
{
    const ngx_str_t  *a = one, *b = two;

    return (a->len < b->len) - (a->len > b->len);
}


ngx_int_t
ngx_http_edge_orch_routes_static(ngx_http_request_t *r)
{
    uint32_t                           hash;
    ngx_int_t                          rc;
    ngx_str_t                         *s;
    ngx_uint_t                         lo, hi, mid, i;
    ngx_http_edge_orch_routes_t       *rt;
    ngx_http_edge_orch_snapshot_t     *snap;
    ngx_http_edge_orch_main_conf_t    *emcf;
    ngx_http_edge_orch_bypass_slot_t  *slot;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);
    rt = emcf->routes;

    if (rt == NULL || rt->snap == NULL) {
        return NGX_DECLINED;
    }

    snap = rt->snap;

    if (snap->static_exact.nelts == 0 && snap->static_prefix.nelts == 0
        && snap->static_patterns.nelts == 0)
    {
        return NGX_DECLINED;
    }

    /* decisions are cached per path and table generation */

    hash = ngx_crc32_short(r->uri.data, r->uri.len);
    slot = NULL;

    if (r->uri.len <= NGX_HTTP_EDGE_ORCH_BYPASS_URI) {

        if (snap->bypass == NULL) {
            snap->bypass = ngx_pcalloc(snap->pool,
                                  NGX_HTTP_EDGE_ORCH_BYPASS_SLOTS
                                  * sizeof(ngx_http_edge_orch_bypass_slot_t));
        }

        if (snap->bypass != NULL) {
            slot = &snap->bypass[hash % NGX_HTTP_EDGE_ORCH_BYPASS_SLOTS];

            if (slot->decision && slot->hash == hash
                && slot->len == r->uri.len
                && ngx_memcmp(slot->uri, r->uri.data, r->uri.len) == 0)
            {
                return (slot->decision == 1) ? NGX_OK : NGX_DECLINED;
            }
        }
    }

    rc = NGX_DECLINED;

    /* an exact path, else the longest prefix, else the first pattern */

    s = snap->static_exact.elts;
    lo = 0;
    hi = snap->static_exact.nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (ngx_memn2cmp(s[mid].data, r->uri.data, s[mid].len, r->uri.len)
            < 0)
        {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (lo < snap->static_exact.nelts && s[lo].len == r->uri.len
        && ngx_memcmp(s[lo].data, r->uri.data, r->uri.len) == 0)
    {
        rc = NGX_OK;
        goto done;
    }

    s = snap->static_prefix.elts;

    for (i = 0; i < snap->static_prefix.nelts; i++) {
        if (s[i].len <= r->uri.len
            && ngx_memcmp(s[i].data, r->uri.data, s[i].len) == 0)
        {
            rc = NGX_OK;
            goto done;
        }
    }

    if (ngx_http_edge_orch_pattern_match(&snap->static_patterns, &r->uri,
                                         r->connection->log)
        != NULL)
    {
        rc = NGX_OK;
    }

done:

    if (slot != NULL) {
        slot->hash = hash;
        slot->len = (uint16_t) r->uri.len;
        slot->decision = (rc == NGX_OK) ? 1 : 2;
        ngx_memcpy(slot->uri, r->uri.data, r->uri.len);
    }

    return rc;
}


static void
ngx_http_edge_orch_routes_problem(ngx_http_edge_orch_routes_t *rt,
    ngx_http_edge_orch_table_state_e state, ngx_err_t err, const char *fmt,
    ...)
{
    u_char   *p;
    va_list   args;
    u_char    buf[NGX_MAX_ERROR_STR];

    /* a problem is logged when it starts, not on every request */

    if (rt->state == state) {
        return;
    }

    rt->state = state;

    ngx_http_edge_orch_routes_lkg(rt);

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_ERR, rt->log, err,
                  "edge_orch: routing table problem: %*s; %s", p - buf, buf,
                  rt->snap ? "serving the last-known-good table"
                           : "fragments use their upstream= defaults");
}


ngx_int_t
ngx_http_edge_orch_routes_begin(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx)
{
    size_t                           len;
    ngx_str_t                        ua, *s;
    ngx_http_edge_orch_snapshot_t   *snap;

    if (ngx_http_edge_orch_eval_name(r, ctx->conf->region, &ctx->region)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->region.len == 0) {
        ctx->region = ngx_http_edge_orch_default_region;
    }

    if (ngx_http_edge_orch_eval_name(r, ctx->conf->bucket, &ctx->bucket)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    snap = ngx_http_edge_orch_routes_current(r);

    if (snap == NULL) {
        return NGX_OK;
    }

    ctx->generation = snap->generation;

    s = ngx_http_edge_orch_kv_find(&snap->groups, ctx->region.data,
                                   ctx->region.len);
    if (s == NULL) {
        s = ngx_http_edge_orch_pattern_match(&snap->rpatterns, &ctx->region,
                                             r->connection->log);
    }

    if (s == NULL && snap->default_group.len) {
        s = &snap->default_group;
    }

    if (s != NULL) {
        ngx_http_edge_orch_pool_str(r, &ctx->group, s);
        if (ctx->group.data == NULL) {
            return NGX_ERROR;
        }
    }

    if (snap->devices.nelts && r->headers_in.user_agent != NULL) {
        ua = r->headers_in.user_agent->value;
        len = ngx_min(ua.len, NGX_HTTP_EDGE_ORCH_MAX_UA);
        ua.len = len;

        s = ngx_http_edge_orch_pattern_match(&snap->devices, &ua,
                                             r->connection->log);
        if (s != NULL) {
            ngx_http_edge_orch_pool_str(r, &ctx->device, s);
            if (ctx->device.data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edge_orch_routes_lookup(ngx_http_request_t *r,
    ngx_http_edge_orch_ctx_t *ctx, ngx_str_t *service, ngx_str_t *upstream)
{
    u_char                           *p;
    ngx_str_t                        *regions[3], *d, *b, *s;
    ngx_uint_t                        i, nregions, k;
    ngx_http_edge_orch_routes_t      *rt;
    ngx_http_edge_orch_snapshot_t    *snap;
    ngx_http_edge_orch_main_conf_t   *emcf;
    u_char                            key[4 * NGX_HTTP_EDGE_ORCH_MAX_NAME
                                          + 4];

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);
    rt = emcf->routes;

    if (rt == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_edge_orch_stats_global(rt->stats,
                                    NGX_HTTP_EDGE_ORCH_G_ROUTE_LOOKUPS, 1);

    if (rt->snap == NULL) {
        ngx_http_edge_orch_stats_global(rt->stats,
                                        NGX_HTTP_EDGE_ORCH_G_NO_ROUTE, 1);
        return NGX_DECLINED;
    }

    snap = rt->snap;

    nregions = 0;
    regions[nregions++] = &ctx->region;

    if (ctx->group.len
        && !(ctx->group.len == ctx->region.len
             && ngx_strncmp(ctx->group.data, ctx->region.data,
                            ctx->region.len) == 0))
    {
        regions[nregions++] = &ctx->group;
    }

    regions[nregions++] = &ngx_http_edge_orch_star;

    for (i = 0; i < nregions; i++) {

        /* most specific first: (D,B), (D,*), (*,B), (*,*) */

        for (k = 0; k < 4; k++) {
            d = (k < 2) ? &ctx->device : &ngx_http_edge_orch_star;
            b = (k % 2 == 0) ? &ctx->bucket : &ngx_http_edge_orch_star;

            if (d->len == 0 || b->len == 0) {
                continue;
            }

            p = ngx_sprintf(key, "%V|%V|%V|%V", service, regions[i], d, b);

            s = ngx_http_edge_orch_kv_find(&snap->routes, key, p - key);

            if (s != NULL) {
                ngx_http_edge_orch_pool_str(r, upstream, s);
                if (upstream->data == NULL) {
                    return NGX_ERROR;
                }

                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "edge_orch route \"%*s\"", p - key, key);

                return NGX_OK;
            }
        }
    }

    ngx_http_edge_orch_stats_global(rt->stats, NGX_HTTP_EDGE_ORCH_G_NO_ROUTE,
                                    1);

    return NGX_DECLINED;
}


uint64_t
ngx_http_edge_orch_routes_generation(ngx_http_request_t *r)
{
    ngx_http_edge_orch_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);

    if (emcf->routes == NULL || emcf->routes->snap == NULL) {
        return 0;
    }

    return emcf->routes->snap->generation;
}


static ngx_http_edge_orch_snapshot_t *
ngx_http_edge_orch_routes_current(ngx_http_request_t *r)
{
    ngx_http_edge_orch_routes_t     *rt;
    ngx_http_edge_orch_main_conf_t  *emcf;

    /* the worker's snapshot, reloaded first if the table changed */

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);
    rt = emcf->routes;

    if (rt == NULL) {
        return NULL;
    }

    rt->log = r->connection->log;
    (void) ngx_http_edge_orch_routes_refresh(rt);
    rt->log = ngx_cycle->log;

    return rt->snap;
}


void
ngx_http_edge_orch_routes_info(ngx_http_request_t *r,
    ngx_http_edge_orch_routes_info_t *info)
{
    ngx_http_edge_orch_snapshot_t   *snap;
    ngx_http_edge_orch_main_conf_t  *emcf;

    ngx_memzero(info, sizeof(ngx_http_edge_orch_routes_info_t));

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edge_orch_module);

    info->configured = (emcf->routes != NULL);

    /* the same renew/compare as a request: the page shows the current table */

    snap = ngx_http_edge_orch_routes_current(r);

    if (snap == NULL) {
        return;
    }

    info->loaded = 1;
    info->generation = snap->generation;
    info->updated_at = snap->updated_at;
}


static void
ngx_http_edge_orch_routes_lkg(ngx_http_edge_orch_routes_t *rt)
{
    ngx_uint_t  lkg;

    /*
     * a gauge of the workers that serve a last-known-good table: the
     * table is unreadable but an earlier snapshot is still in use
     */

    lkg = (rt->snap != NULL
           && rt->state != NGX_HTTP_EDGE_ORCH_TABLE_OK
           && rt->state != NGX_HTTP_EDGE_ORCH_TABLE_NONE);

    if (lkg == rt->lkg) {
        return;
    }

    rt->lkg = lkg;

    ngx_http_edge_orch_stats_global(rt->stats, NGX_HTTP_EDGE_ORCH_G_LKG,
                                    lkg ? 1 : -1);
}


static ngx_str_t *
ngx_http_edge_orch_kv_find(ngx_array_t *a, u_char *key, size_t len)
{
    ngx_int_t                 rc;
    ngx_uint_t                lo, hi, mid;
    ngx_http_edge_orch_kv_t  *kv;

    /* LMDB's default order: memcmp() of the common part, shorter first */

    kv = a->elts;
    lo = 0;
    hi = a->nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_memcmp(kv[mid].key.data, key, ngx_min(kv[mid].key.len, len));

        if (rc == 0) {
            rc = (kv[mid].key.len < len) ? -1 : (kv[mid].key.len > len);
        }

        if (rc == 0) {
            return &kv[mid].value;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


static ngx_str_t *
ngx_http_edge_orch_pattern_match(ngx_array_t *a, ngx_str_t *s,
    ngx_log_t *log)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_edge_orch_pattern_t  *pat;

    pat = a->elts;

    for (i = 0; i < a->nelts; i++) {
        rc = ngx_regex_exec(pat[i].regex, s, NULL, 0);

        if (rc >= 0) {
            return &pat[i].target;
        }

        if (rc != NGX_REGEX_NO_MATCHED) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "edge_orch: " ngx_regex_exec_n " failed: %i on "
                          "pattern for \"%V\"", rc, &pat[i].target);
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_edge_orch_name_ok(u_char *p, size_t len, ngx_uint_t star)
{
    /* names of fragments, services, regions, groups, upstreams: 1..64 of
     * A-Z a-z 0-9 _ . - :, or "*" where a wildcard is allowed */

    u_char  *last, c;

    if (len == 0 || len > NGX_HTTP_EDGE_ORCH_MAX_NAME) {
        return NGX_ERROR;
    }

    if (star && len == 1 && *p == '*') {
        return NGX_OK;
    }

    for (last = p + len; p < last; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'
            || c == ':')
        {
            continue;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edge_orch_known_upstream(ngx_cycle_t *cycle, ngx_str_t *name)
{
    ngx_uint_t                       i;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    umcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_upstream_module);
    if (umcf == NULL) {
        return NGX_ERROR;
    }

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->host.len == name->len
            && ngx_strncasecmp(uscfp[i]->host.data, name->data, name->len)
               == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_edge_orch_eval_name(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *value)
{
    value->len = 0;
    value->data = NULL;

    if (cv == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, cv, value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (value->len == 0) {
        return NGX_OK;
    }

    /* untrusted input: anything that is not a plain name is unknown */

    if (ngx_http_edge_orch_name_ok(value->data, value->len, 0) != NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edge_orch ignores invalid name \"%V\"", value);
        value->len = 0;
        value->data = NULL;
    }

    return NGX_OK;
}


static void
ngx_http_edge_orch_pool_str(ngx_http_request_t *r, ngx_str_t *dst,
    ngx_str_t *src)
{
    /* the snapshot may be replaced by a later request: copy out of it */

    dst->data = ngx_pnalloc(r->pool, src->len);

    if (dst->data != NULL) {
        ngx_memcpy(dst->data, src->data, src->len);
        dst->len = src->len;
    }
}
