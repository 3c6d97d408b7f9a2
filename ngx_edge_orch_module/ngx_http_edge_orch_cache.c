
/*
 * Copyright (C) ngx_edge_orch_module authors
 *
 * Shared-memory zone used by all workers: fragment cache (rbtree keyed by a
 * 64-bit hash, full key compared, LRU queue, slab), fetch locks for request
 * coalescing, and tag purge sequences.
 *
 * Time in the zone is wall-clock milliseconds, so that every worker reads
 * the same clock.  Ordering between fetches and purges uses one zone-wide
 * sequence counter instead of time: an entry is valid only if the fetch
 * that produced it started after the last purge of each of its tags, so a
 * fill racing a purge can never be served as fresh after the purge.
 */


#include "ngx_http_edge_orch_module.h"


#define NGX_HTTP_EDGE_ORCH_EVICT_TRIES   64
#define NGX_HTTP_EDGE_ORCH_PASS_TIME     1000     /* hit-for-pass, ms */
#define NGX_HTTP_EDGE_ORCH_RETRY_TIME    1000     /* refresh backoff, ms */
#define NGX_HTTP_EDGE_ORCH_LOCK_GRACE    250      /* after holder's timeout */

#define NGX_HTTP_EDGE_ORCH_TAGS_VALID    0
#define NGX_HTTP_EDGE_ORCH_TAGS_STALE    1
#define NGX_HTTP_EDGE_ORCH_TAGS_INVALID  2


static ngx_int_t ngx_http_edge_orch_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_edge_orch_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_edge_orch_tag_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_edge_orch_node_t *ngx_http_edge_orch_node_find(
    ngx_http_edge_orch_zone_t *zone, ngx_http_edge_orch_ckey_t *key);
static ngx_http_edge_orch_node_t *ngx_http_edge_orch_node_create(
    ngx_http_edge_orch_zone_t *zone, ngx_http_edge_orch_ckey_t *key,
    uint64_t now);
static void ngx_http_edge_orch_node_free(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_node_t *node);
static void *ngx_http_edge_orch_alloc(ngx_http_edge_orch_zone_t *zone,
    size_t size, ngx_http_edge_orch_node_t *keep, uint64_t now);
static void ngx_http_edge_orch_expire(ngx_http_edge_orch_zone_t *zone,
    uint64_t now);
static ngx_uint_t ngx_http_edge_orch_tags_state(
    ngx_http_edge_orch_zone_t *zone, ngx_http_edge_orch_node_t *node);
static ngx_uint_t ngx_http_edge_orch_list_state(
    ngx_http_edge_orch_zone_t *zone, uint64_t seq, ngx_str_t *tags);
static ngx_http_edge_orch_tag_t *ngx_http_edge_orch_tag_find(
    ngx_http_edge_orch_zone_t *zone, u_char *tag, size_t len,
    uint32_t hash);
static ngx_int_t ngx_http_edge_orch_copy(ngx_pool_t *pool,
    ngx_http_edge_orch_node_t *node, ngx_str_t *body, ngx_str_t *tags);
static void ngx_http_edge_orch_lock(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_node_t *node, ngx_http_edge_orch_lookup_t *lk,
    ngx_msec_t lock_ms, uint64_t now);


uint64_t
ngx_http_edge_orch_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


char *
ngx_http_edge_orch_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edge_orch_main_conf_t *emcf = conf;

    u_char                      *p;
    ssize_t                      size, max;
    ngx_int_t                    t;
    ngx_str_t                   *value, name, s;
    ngx_uint_t                   i;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_edge_orch_zone_t   *zone, **zp;

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_edge_orch_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->lock_timeout = 5000;
    zone->max_fragment = 256 * 1024;
    zone->conf_file = cf->conf_file->file.name.data;
    zone->conf_line = cf->conf_file->line;

    name.len = 0;
    name.data = NULL;
    size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strlchr(name.data,
                                       value[i].data + value[i].len, ':');
            if (p == NULL || p == name.data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone \"%V\", expected "
                                   "name=NAME:SIZE", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (16 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small, the minimum "
                                   "is %uzk", &name,
                                   (size_t) 16 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "lock_timeout=", 13) == 0) {

            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            t = ngx_parse_time(&s, 0);
            if (t == NGX_ERROR || t == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid lock_timeout \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            zone->lock_timeout = (ngx_msec_t) t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_fragment=", 13) == 0) {

            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            max = ngx_parse_size(&s);
            if (max == NGX_ERROR || max == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_fragment \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            zone->max_fragment = (size_t) max;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" (expected name=, "
                           "lock_timeout= or max_fragment=)", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"name=NAME:SIZE\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (emcf->zones == NULL) {
        emcf->zones = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_edge_orch_zone_t *));
        if (emcf->zones == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    zp = emcf->zones->elts;

    for (i = 0; i < emcf->zones->nelts; i++) {
        if (zp[i]->name.len == name.len
            && ngx_strncmp(zp[i]->name.data, name.data, name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate edge_orch_zone \"%V\"", &name);
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_edge_orch_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory zone \"%V\" is already used by "
                           "another module", &name);
        return NGX_CONF_ERROR;
    }

    zone->name = name;
    zone->shm_zone = shm_zone;
    ngx_queue_init(&zone->waiters);

    shm_zone->init = ngx_http_edge_orch_init_zone;
    shm_zone->data = zone;

    zp = ngx_array_push(emcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = zone;

    return NGX_CONF_OK;
}


ngx_http_edge_orch_zone_t *
ngx_http_edge_orch_zone_find(ngx_http_edge_orch_main_conf_t *emcf,
    ngx_str_t *name)
{
    ngx_uint_t                   i;
    ngx_http_edge_orch_zone_t  **zp;

    if (emcf->zones == NULL) {
        return NULL;
    }

    zp = emcf->zones->elts;

    for (i = 0; i < emcf->zones->nelts; i++) {
        if (zp[i]->name.len == name->len
            && ngx_strncmp(zp[i]->name.data, name->data, name->len) == 0)
        {
            return zp[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_edge_orch_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_edge_orch_zone_t  *ozone = data;

    size_t                      len;
    ngx_http_edge_orch_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* reload with the same name and size: keep everything */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool, sizeof(ngx_http_edge_orch_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_edge_orch_rbtree_insert);
    ngx_queue_init(&zone->sh->lru);

    ngx_rbtree_init(&zone->sh->tags, &zone->sh->tag_sentinel,
                    ngx_http_edge_orch_tag_insert);
    ngx_queue_init(&zone->sh->tag_lru);

    len = sizeof(" in edge_orch_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in edge_orch_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone evicts; "no memory" is not an error worth a log line */
    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_edge_orch_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t          **p;
    ngx_http_edge_orch_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            n = (ngx_http_edge_orch_node_t *) node;
            t = (ngx_http_edge_orch_node_t *) temp;

            p = (ngx_memn2cmp(n->key, t->key, n->key_len, t->key_len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_http_edge_orch_tag_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_edge_orch_tag_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_edge_orch_tag_t *) node;
            t = (ngx_http_edge_orch_tag_t *) temp;

            p = (ngx_memn2cmp(n->tag, t->tag, n->len, t->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


void
ngx_http_edge_orch_cache_key(ngx_http_edge_orch_ckey_t *ck)
{
    uint64_t  h;

    h = ngx_crc32_long(ck->key.data, ck->key.len);
    h = (h << 32) | ngx_murmur_hash2(ck->key.data, ck->key.len);

    ck->hash = (ngx_rbtree_key_t) h;
}


static ngx_http_edge_orch_node_t *
ngx_http_edge_orch_node_find(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key)
{
    ngx_int_t                   rc;
    ngx_rbtree_node_t          *node, *sentinel;
    ngx_http_edge_orch_node_t  *n;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key->hash < node->key) {
            node = node->left;
            continue;
        }

        if (key->hash > node->key) {
            node = node->right;
            continue;
        }

        n = (ngx_http_edge_orch_node_t *) node;

        rc = ngx_memn2cmp(key->key.data, n->key, key->key.len, n->key_len);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_http_edge_orch_node_t *
ngx_http_edge_orch_node_create(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t now)
{
    size_t                      size;
    ngx_http_edge_orch_node_t  *n;

    if (key->key.len > 65535) {
        return NULL;
    }

    size = offsetof(ngx_http_edge_orch_node_t, key) + key->key.len;

    n = ngx_http_edge_orch_alloc(zone, size, NULL, now);
    if (n == NULL) {
        return NULL;
    }

    ngx_memzero(n, offsetof(ngx_http_edge_orch_node_t, key));

    n->node.key = key->hash;
    n->key_len = (uint16_t) key->key.len;
    ngx_memcpy(n->key, key->key.data, key->key.len);

    ngx_rbtree_insert(&zone->sh->rbtree, &n->node);
    ngx_queue_insert_head(&zone->sh->lru, &n->queue);
    zone->sh->entries++;

    return n;
}


static void
ngx_http_edge_orch_node_free(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_node_t *node)
{
    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&zone->sh->rbtree, &node->node);

    if (node->body) {
        ngx_slab_free_locked(zone->shpool, node->body);
    }

    if (node->lock_seq) {
        zone->sh->locks--;
    }

    ngx_slab_free_locked(zone->shpool, node);
    zone->sh->entries--;
}


static void *
ngx_http_edge_orch_alloc(ngx_http_edge_orch_zone_t *zone, size_t size,
    ngx_http_edge_orch_node_t *keep, uint64_t now)
{
    void                       *p;
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_http_edge_orch_tag_t   *tag;
    ngx_http_edge_orch_node_t  *n;

    for (i = 0; i < NGX_HTTP_EDGE_ORCH_EVICT_TRIES; i++) {

        p = ngx_slab_alloc_locked(zone->shpool, size);
        if (p != NULL) {
            return p;
        }

        /* zone full: evict the least recently used unlocked entry */

        n = NULL;

        for (q = ngx_queue_last(&zone->sh->lru);
             q != ngx_queue_sentinel(&zone->sh->lru);
             q = ngx_queue_prev(q))
        {
            n = ngx_queue_data(q, ngx_http_edge_orch_node_t, queue);

            if (n != keep && (n->lock_until == 0 || n->lock_until < now)) {
                break;
            }

            n = NULL;
        }

        if (n != NULL && !ngx_queue_empty(&zone->sh->tag_lru)) {
            q = ngx_queue_last(&zone->sh->tag_lru);
            tag = ngx_queue_data(q, ngx_http_edge_orch_tag_t, queue);

            /*
             * a purge record older than the entry we would evict only
             * matters to entries older still: dropping it (with the floor
             * raised below) is cheaper than a live entry
             */

            if (ngx_max(tag->hard, tag->soft) < n->seq) {
                n = NULL;
            }
        }

        if (n != NULL) {
            ngx_http_edge_orch_node_free(zone, n);
            ngx_http_edge_orch_stat(zone, NGX_HTTP_EDGE_ORCH_STAT_EVICTIONS);
            continue;
        }

        /*
         * nothing left but tag records: drop the oldest and raise the
         * floors so that its purge still holds (it then covers everything
         * cached before it, which is safe)
         */

        if (ngx_queue_empty(&zone->sh->tag_lru)) {
            return NULL;
        }

        q = ngx_queue_last(&zone->sh->tag_lru);
        tag = ngx_queue_data(q, ngx_http_edge_orch_tag_t, queue);

        if (tag->hard > zone->sh->floor) {
            zone->sh->floor = tag->hard;
        }

        if (tag->soft > zone->sh->soft_floor) {
            zone->sh->soft_floor = tag->soft;
        }

        zone->sh->purges++;

        ngx_queue_remove(q);
        ngx_rbtree_delete(&zone->sh->tags, &tag->node);
        ngx_slab_free_locked(zone->shpool, tag);
        zone->sh->tag_count--;
    }

    return NULL;
}


static void
ngx_http_edge_orch_expire(ngx_http_edge_orch_zone_t *zone, uint64_t now)
{
    uint64_t                    until;
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_http_edge_orch_node_t  *n;

    /* at most two entries per call, as nginx's own zones do */

    for (i = 0; i < 2; i++) {

        if (ngx_queue_empty(&zone->sh->lru)) {
            return;
        }

        q = ngx_queue_last(&zone->sh->lru);
        n = ngx_queue_data(q, ngx_http_edge_orch_node_t, queue);

        until = ngx_max(n->swr_until, n->sie_until);
        until = ngx_max(until, n->pass_until);
        until = ngx_max(until, n->lock_until);
        until = ngx_max(until, n->retry_after);

        if (until >= now) {
            return;
        }

        ngx_http_edge_orch_node_free(zone, n);
    }
}


static ngx_uint_t
ngx_http_edge_orch_tags_state(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_node_t *node)
{
    u_char                    *p, *last, *t;
    ngx_uint_t                 state;
    ngx_http_edge_orch_tag_t  *tag;

    if (node->checked == zone->sh->purges) {
        /* no purge since the last check: the hit path stays O(1) */
        return node->tag_state;
    }

    state = NGX_HTTP_EDGE_ORCH_TAGS_VALID;

    if (node->seq <= zone->sh->floor) {
        state = NGX_HTTP_EDGE_ORCH_TAGS_INVALID;
        goto done;
    }

    if (node->seq <= zone->sh->soft_floor) {
        state = NGX_HTTP_EDGE_ORCH_TAGS_STALE;
    }

    p = node->body + node->body_len;
    last = p + node->tags_len;

    while (p < last) {
        t = p;

        while (p < last && *p != ' ') {
            p++;
        }

        if (p > t) {
            tag = ngx_http_edge_orch_tag_find(zone, t, p - t,
                                              ngx_crc32_short(t, p - t));
            if (tag != NULL) {
                if (tag->hard >= node->seq) {
                    state = NGX_HTTP_EDGE_ORCH_TAGS_INVALID;
                    goto done;
                }

                if (tag->soft >= node->seq) {
                    state = NGX_HTTP_EDGE_ORCH_TAGS_STALE;
                }
            }
        }

        p++;
    }

done:

    node->checked = zone->sh->purges;
    node->tag_state = state;

    return state;
}


static ngx_uint_t
ngx_http_edge_orch_list_state(ngx_http_edge_orch_zone_t *zone, uint64_t seq,
    ngx_str_t *tags)
{
    u_char                    *p, *last, *t;
    ngx_uint_t                 state;
    ngx_http_edge_orch_tag_t  *tag;

    state = NGX_HTTP_EDGE_ORCH_TAGS_VALID;

    p = tags->data;
    last = p + tags->len;

    while (p < last) {
        t = p;

        while (p < last && *p != ' ') {
            p++;
        }

        if (p > t) {
            tag = ngx_http_edge_orch_tag_find(zone, t, p - t,
                                              ngx_crc32_short(t, p - t));
            if (tag != NULL) {
                if (tag->hard >= seq) {
                    return NGX_HTTP_EDGE_ORCH_TAGS_INVALID;
                }

                if (tag->soft >= seq) {
                    state = NGX_HTTP_EDGE_ORCH_TAGS_STALE;
                }
            }
        }

        p++;
    }

    return state;
}


static ngx_http_edge_orch_tag_t *
ngx_http_edge_orch_tag_find(ngx_http_edge_orch_zone_t *zone, u_char *tag,
    size_t len, uint32_t hash)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_edge_orch_tag_t  *t;

    node = zone->sh->tags.root;
    sentinel = zone->sh->tags.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        t = (ngx_http_edge_orch_tag_t *) node;

        rc = ngx_memn2cmp(tag, t->tag, len, t->len);

        if (rc == 0) {
            return t;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_int_t
ngx_http_edge_orch_copy(ngx_pool_t *pool, ngx_http_edge_orch_node_t *node,
    ngx_str_t *body, ngx_str_t *tags)
{
    u_char  *p;

    p = ngx_pnalloc(pool, node->body_len + node->tags_len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, node->body, node->body_len + node->tags_len);

    body->data = p;
    body->len = node->body_len;

    tags->data = p + node->body_len;
    tags->len = node->tags_len;

    return NGX_OK;
}


static void
ngx_http_edge_orch_lock(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_node_t *node, ngx_http_edge_orch_lookup_t *lk,
    ngx_msec_t lock_ms, uint64_t now)
{
    lk->seq = ++zone->sh->seq;

    if (node->lock_seq == 0) {
        zone->sh->locks++;
    }

    /*
     * a live holder gives up at its own timeout; waiters take over only
     * a little later, so that they get its outcome rather than race it
     */

    node->lock_seq = lk->seq;
    node->lock_until = now + ngx_min(lock_ms + NGX_HTTP_EDGE_ORCH_LOCK_GRACE,
                                     zone->lock_timeout);
}


ngx_int_t
ngx_http_edge_orch_cache_lookup(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, ngx_pool_t *pool, ngx_msec_t lock_ms,
    uint64_t waiting, ngx_http_edge_orch_lookup_t *lk)
{
    uint64_t                    now;
    ngx_int_t                   rc;
    ngx_uint_t                  state, valid, locked, swr_ok, sie_ok;
    ngx_http_edge_orch_node_t  *node;

    now = ngx_http_edge_orch_now();
    rc = NGX_OK;

    ngx_memzero(lk, sizeof(ngx_http_edge_orch_lookup_t));

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_edge_orch_node_find(zone, key);

    if (node == NULL) {
        ngx_http_edge_orch_expire(zone, now);

        node = ngx_http_edge_orch_node_create(zone, key, now);

        if (node == NULL) {
            /* cannot even keep a lock: fetch without sharing */
            lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_PASS;
            lk->seq = ++zone->sh->seq;
            goto done;
        }

        ngx_http_edge_orch_lock(zone, node, lk, lock_ms, now);
        lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_FETCH;
        goto done;
    }

    state = node->body ? ngx_http_edge_orch_tags_state(zone, node)
                       : NGX_HTTP_EDGE_ORCH_TAGS_INVALID;

    if (state != NGX_HTTP_EDGE_ORCH_TAGS_INVALID && key->page_tags.len
        && zone->sh->tag_count)
    {
        /*
         * the page's own tags (edge_orch_tags) are not stored with a shared
         * entry, they vary per request: a purge of one of them invalidates
         * what this request would be served
         */

        state = ngx_max(state, ngx_http_edge_orch_list_state(zone, node->seq,
                                                       &key->page_tags));
    }

    valid = (state != NGX_HTTP_EDGE_ORCH_TAGS_INVALID);

    /*
     * a soft-purged entry is stale from now on: it may be served only
     * where the fragment has a stale window at all
     */

    swr_ok = valid && now < node->swr_until
             && (state == NGX_HTTP_EDGE_ORCH_TAGS_VALID
                 || node->swr_until > node->fresh_until);
    sie_ok = valid && now < node->sie_until
             && (state == NGX_HTTP_EDGE_ORCH_TAGS_VALID
                 || node->sie_until > node->fresh_until);

    if (waiting) {

        /* the fetch we waited for has ended: share its result */

        if (node->filled > waiting && valid) {
            rc = ngx_http_edge_orch_copy(pool, node, &lk->body, &lk->tags);
            lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_COLLAPSED;
            lk->ttl = (int64_t) node->fresh_until - (int64_t) now;
            goto done;
        }

        if (node->failed > waiting) {
            lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_SHARED_FAIL;
            lk->fail_reason = node->fail_reason;
            lk->seq = ++zone->sh->seq;

            if (sie_ok) {
                rc = ngx_http_edge_orch_copy(pool, node, &lk->body,
                                             &lk->tags);
                lk->ttl = (int64_t) node->fresh_until - (int64_t) now;
            }

            goto done;
        }
    }

    ngx_queue_remove(&node->queue);
    ngx_queue_insert_head(&zone->sh->lru, &node->queue);

    if (valid && state == NGX_HTTP_EDGE_ORCH_TAGS_VALID
        && now < node->fresh_until)
    {
        rc = ngx_http_edge_orch_copy(pool, node, &lk->body, &lk->tags);
        lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_HIT;
        lk->ttl = (int64_t) node->fresh_until - (int64_t) now;
        goto done;
    }

    locked = (node->lock_until != 0 && now < node->lock_until);

    if (swr_ok) {
        rc = ngx_http_edge_orch_copy(pool, node, &lk->body, &lk->tags);
        lk->ttl = (int64_t) node->fresh_until - (int64_t) now;

        if (locked || now < node->retry_after) {
            /* being refreshed, or the last refresh failed a moment ago */
            lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_STALE;

        } else {
            ngx_http_edge_orch_lock(zone, node, lk, lock_ms, now);
            lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_REFRESH;
        }

        goto done;
    }

    if (locked) {
        lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_WAIT;
        lk->wait_seq = zone->sh->seq;
        goto done;
    }

    if (now < node->retry_after
        && node->fail_reason != NGX_HTTP_EDGE_ORCH_REASON_NONE)
    {
        /*
         * the last fetch failed a moment ago: answer with its outcome
         * instead of sending every new request to a failing upstream
         */
        lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_SHARED_FAIL;
        lk->fail_reason = node->fail_reason;

        if (sie_ok) {
            rc = ngx_http_edge_orch_copy(pool, node, &lk->body, &lk->tags);
            lk->ttl = (int64_t) node->fresh_until - (int64_t) now;
        }

        goto done;
    }

    if (now < node->pass_until) {
        lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_PASS;
        lk->seq = ++zone->sh->seq;
        goto done;
    }

    ngx_http_edge_orch_lock(zone, node, lk, lock_ms, now);
    lk->action = NGX_HTTP_EDGE_ORCH_LOOKUP_FETCH;

    if (sie_ok) {
        /* kept for stale-if-error */
        rc = ngx_http_edge_orch_copy(pool, node, &lk->sie_body,
                                     &lk->sie_tags);
        lk->ttl = (int64_t) node->fresh_until - (int64_t) now;
    }

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_edge_orch_cache_store(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq, ngx_str_t *body,
    ngx_str_t *tags, ngx_http_edge_orch_freshness_t *fr)
{
    u_char                     *p;
    uint64_t                    now;
    ngx_int_t                   rc;
    ngx_http_edge_orch_node_t  *node;

    now = ngx_http_edge_orch_now();
    rc = NGX_OK;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_edge_orch_expire(zone, now);

    node = ngx_http_edge_orch_node_find(zone, key);

    if (node == NULL) {
        /* evicted while we fetched */
        node = ngx_http_edge_orch_node_create(zone, key, now);
        if (node == NULL) {
            rc = NGX_DECLINED;
            goto done;
        }
    }

    if (seq != 0 && node->lock_seq == seq) {
        node->lock_until = 0;
        node->lock_seq = 0;
        zone->sh->locks--;
    }

    if (!fr->cacheable) {
        /* private answers are never shared: do not make others wait */
        node->pass_until = now + NGX_HTTP_EDGE_ORCH_PASS_TIME;
        node->failed = ++zone->sh->seq;
        node->fail_reason = NGX_HTTP_EDGE_ORCH_REASON_NONE;
        rc = NGX_DECLINED;
        goto done;
    }

    /*
     * a body that needs more than half of the zone's pages is not stored
     * either: trying would evict every other entry and the tag records
     * (raising the purge floor) for an allocation that cannot succeed,
     * or that would leave room for nothing else
     */

    if (body->len + tags->len > zone->max_fragment
        || body->len + tags->len
           > (size_t) (zone->shpool->end - zone->shpool->start) / 2
        || tags->len > 65535)
    {
        /* cannot be shared: nobody should wait for it for a while */
        node->pass_until = now + NGX_HTTP_EDGE_ORCH_PASS_TIME;
        node->failed = ++zone->sh->seq;
        node->fail_reason = NGX_HTTP_EDGE_ORCH_REASON_NONE;
        rc = NGX_ABORT;
        goto done;
    }

    if (seq != 0 && node->body != NULL && node->seq > seq) {
        /* a newer fetch already stored its body */
        node->filled = ++zone->sh->seq;
        goto done;
    }

    p = ngx_http_edge_orch_alloc(zone, body->len + tags->len, node, now);

    if (p == NULL) {
        node->pass_until = now + NGX_HTTP_EDGE_ORCH_PASS_TIME;
        node->failed = ++zone->sh->seq;
        node->fail_reason = NGX_HTTP_EDGE_ORCH_REASON_NONE;
        rc = NGX_ABORT;
        goto done;
    }

    ngx_memcpy(p, body->data, body->len);

    /* no tags: tags->data may be NULL, which memcpy() must not get */

    if (tags->len) {
        ngx_memcpy(p + body->len, tags->data, tags->len);
    }

    if (node->body) {
        ngx_slab_free_locked(zone->shpool, node->body);
    }

    node->body = p;
    node->body_len = (uint32_t) body->len;
    node->tags_len = (uint16_t) tags->len;
    node->seq = seq ? seq : ++zone->sh->seq;
    node->filled = ++zone->sh->seq;
    node->checked = zone->sh->purges - 1;
    node->pass_until = 0;

    node->retry_after = 0;
    node->fresh_until = now + fr->ttl;
    node->swr_until = node->fresh_until + fr->swr;
    node->sie_until = node->fresh_until + fr->sie;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


void
ngx_http_edge_orch_cache_fail(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq, ngx_uint_t reason)
{
    ngx_http_edge_orch_node_t  *node;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_edge_orch_node_find(zone, key);

    if (node != NULL && node->lock_seq == seq) {
        if (node->lock_seq) {
            zone->sh->locks--;
        }

        node->lock_until = 0;
        node->lock_seq = 0;
        node->failed = ++zone->sh->seq;
        node->fail_reason = (uint32_t) reason;

        /* with a stale body to serve, do not hammer a failing upstream */
        node->retry_after = ngx_http_edge_orch_now()
                            + NGX_HTTP_EDGE_ORCH_RETRY_TIME;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


void
ngx_http_edge_orch_cache_release(ngx_http_edge_orch_zone_t *zone,
    ngx_http_edge_orch_ckey_t *key, uint64_t seq)
{
    ngx_http_edge_orch_node_t  *node;

    /*
     * a fetch cancelled by its own request (client gone, a sibling failed,
     * request terminated): the upstream did nothing wrong, so the key is
     * not held down; a waiter takes the fetch over on its next look
     */

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_edge_orch_node_find(zone, key);

    if (node != NULL && node->lock_seq == seq && seq != 0) {
        zone->sh->locks--;
        node->lock_until = 0;
        node->lock_seq = 0;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


ngx_int_t
ngx_http_edge_orch_cache_purge(ngx_http_edge_orch_zone_t *zone,
    ngx_array_t *tags, ngx_uint_t soft, uint64_t *gen)
{
    size_t                     size;
    uint32_t                   hash;
    uint64_t                   seq, now;
    ngx_str_t                 *t;
    ngx_uint_t                 i;
    ngx_http_edge_orch_tag_t  *tag;

    now = ngx_http_edge_orch_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    seq = ++zone->sh->seq;

    if (tags == NULL) {
        /* everything */

        if (soft) {
            zone->sh->soft_floor = seq;

        } else {
            zone->sh->floor = seq;
        }

        goto done;
    }

    t = tags->elts;

    for (i = 0; i < tags->nelts; i++) {
        hash = ngx_crc32_short(t[i].data, t[i].len);

        tag = ngx_http_edge_orch_tag_find(zone, t[i].data, t[i].len, hash);

        if (tag == NULL) {
            size = offsetof(ngx_http_edge_orch_tag_t, tag) + t[i].len;

            tag = ngx_http_edge_orch_alloc(zone, size, NULL, now);

            if (tag == NULL) {
                /* no room even for the record: purge everything instead */
                if (soft) {
                    zone->sh->soft_floor = seq;

                } else {
                    zone->sh->floor = seq;
                }

                continue;
            }

            ngx_memzero(tag, offsetof(ngx_http_edge_orch_tag_t, tag));

            tag->node.key = hash;
            tag->len = (uint16_t) t[i].len;
            ngx_memcpy(tag->tag, t[i].data, t[i].len);

            ngx_rbtree_insert(&zone->sh->tags, &tag->node);
            zone->sh->tag_count++;

        } else {
            ngx_queue_remove(&tag->queue);
        }

        ngx_queue_insert_head(&zone->sh->tag_lru, &tag->queue);

        if (soft) {
            tag->soft = seq;

        } else {
            tag->hard = seq;
        }
    }

done:

    zone->sh->purges++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    *gen = seq;

    return NGX_OK;
}


void
ngx_http_edge_orch_stat(ngx_http_edge_orch_zone_t *zone, ngx_uint_t stat)
{
    (void) ngx_atomic_fetch_add(&zone->sh->stats[stat], 1);
}


void
ngx_http_edge_orch_stat_add(ngx_http_edge_orch_zone_t *zone,
    ngx_uint_t stat, ngx_uint_t n)
{
    (void) ngx_atomic_fetch_add(&zone->sh->stats[stat], n);
}
