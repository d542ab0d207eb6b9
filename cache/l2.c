#include "first.h"

#include "l2.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cp_err.h"
#include "rcli.h"

/* A stored negative entry: one NUL byte. No serialised document is a lone NUL. */
#define NEGATIVE_MARK "\0"
#define NEGATIVE_LEN  1
#define KEY_MAX       200

/* One load in progress in this process; waiters share its outcome. */
struct flight {
    struct flight *next;
    char key[KEY_MAX];
    size_t klen;
    int done, rc, waiters;
    char *val;
    size_t vlen;
};

struct l2 {
    struct l2_config cfg;
    const struct l2_ops *ops;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct flight *flights;
    atomic_uint_fast64_t hits, misses, negative_hits, loads, lock_waits, store_errors;
};

struct l2 *l2_new(const struct l2_config *cfg, const struct l2_ops *ops)
{
    if (cfg == NULL || ops == NULL || cfg->ttl_ms <= 0 || cfg->negative_ttl_ms <= 0 ||
        cfg->lock_ttl_ms <= 0 || cfg->wait_step_ms <= 0)
        return NULL;
    struct l2 *l2 = calloc(1, sizeof *l2);
    if (l2 == NULL)
        return NULL;
    if (pthread_mutex_init(&l2->mu, NULL) != 0) {
        free(l2);
        return NULL;
    }
    if (pthread_cond_init(&l2->cv, NULL) != 0) {
        pthread_mutex_destroy(&l2->mu);
        free(l2);
        return NULL;
    }
    l2->cfg = *cfg;
    l2->ops = ops;
    return l2;
}

void l2_free(struct l2 *l2)
{
    if (l2 == NULL)
        return;
    pthread_cond_destroy(&l2->cv);
    pthread_mutex_destroy(&l2->mu);
    free(l2);
}

void l2_get_stats(struct l2 *l2, struct l2_stats *out)
{
    out->hits = atomic_load(&l2->hits);
    out->misses = atomic_load(&l2->misses);
    out->negative_hits = atomic_load(&l2->negative_hits);
    out->loads = atomic_load(&l2->loads);
    out->lock_waits = atomic_load(&l2->lock_waits);
    out->store_errors = atomic_load(&l2->store_errors);
}

/* Reads the store; turns a negative mark into CP_ERR_NOT_FOUND with *negative set. */
static int store_read(struct l2 *l2, void *conn, const char *key, size_t klen, char *buf,
                      size_t cap, size_t *len, int *negative, int *store_failed)
{
    *negative = 0;
    if (conn == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = l2->ops->get(conn, key, klen, buf, cap, len);
    if (rc == CP_ERR_UNAVAILABLE) {
        atomic_fetch_add(&l2->store_errors, 1);
        *store_failed = 1;
        return rc;
    }
    if (rc == CP_OK && *len == NEGATIVE_LEN && buf[0] == '\0') {
        *negative = 1;
        return CP_ERR_NOT_FOUND;
    }
    return rc;
}

/*
 * The leader's load: under the cross-process lock when the store works, polling
 * while another process holds it. Returns the outcome to share with waiters.
 */
static int lead_load(struct l2 *l2, void *conn, const char *key, size_t klen, l2_loader_fn load,
                     void *load_arg, char *buf, size_t cap, size_t *len, int *store_failed)
{
    char lock_key[KEY_MAX + 8];
    int have_lock = 0, negative, rc;
    if (conn != NULL && !*store_failed) {
        memcpy(lock_key, key, klen);
        memcpy(lock_key + klen, ":lock", 5);
        size_t lklen = klen + 5;
        int64_t waited = 0;
        for (;;) {
            int got = l2->ops->lock(conn, lock_key, lklen, l2->cfg.lock_ttl_ms);
            if (got < 0) {
                atomic_fetch_add(&l2->store_errors, 1);
                *store_failed = 1;
                break;
            }
            if (got == 1) {
                have_lock = 1;
                break;
            }
            /* Another process loads: wait for its result, at most one lock TTL. */
            atomic_fetch_add(&l2->lock_waits, 1);
            clock_sleep_ms(l2->cfg.wait_step_ms);
            waited += l2->cfg.wait_step_ms;
            rc = store_read(l2, conn, key, klen, buf, cap, len, &negative, store_failed);
            if (rc == CP_OK || rc == CP_ERR_LIMIT || negative)
                return rc;
            if (*store_failed || waited >= l2->cfg.lock_ttl_ms)
                break;
        }
        if (have_lock) {
            /* The winner before us may have stored the value just before we locked. */
            rc = store_read(l2, conn, key, klen, buf, cap, len, &negative, store_failed);
            if (rc == CP_OK || rc == CP_ERR_LIMIT || negative) {
                (void)l2->ops->unlock(conn, lock_key, lklen);
                return rc;
            }
        }
    }
    atomic_fetch_add(&l2->loads, 1);
    rc = load(load_arg, buf, cap, len);
    if (conn != NULL && !*store_failed && (rc == CP_OK || rc == CP_ERR_NOT_FOUND)) {
        int src = rc == CP_OK ? l2->ops->set(conn, key, klen, buf, *len, l2->cfg.ttl_ms)
                              : l2->ops->set(conn, key, klen, NEGATIVE_MARK, NEGATIVE_LEN,
                                             l2->cfg.negative_ttl_ms);
        if (src != CP_OK) {
            atomic_fetch_add(&l2->store_errors, 1);
            *store_failed = 1;
        }
    }
    if (have_lock && !*store_failed)
        (void)l2->ops->unlock(conn, lock_key, klen + 5);
    return rc;
}

int l2_get(struct l2 *l2, void *conn, const char *key, size_t klen, l2_loader_fn load,
           void *load_arg, char *buf, size_t cap, size_t *len, int *store_failed)
{
    int failed_local = 0;
    int *failed = store_failed != NULL ? store_failed : &failed_local;
    *failed = 0;
    if (klen == 0 || klen >= KEY_MAX)
        return CP_ERR_INVALID;
    int negative;
    int rc = store_read(l2, conn, key, klen, buf, cap, len, &negative, failed);
    if (rc == CP_OK || rc == CP_ERR_LIMIT) {
        atomic_fetch_add(&l2->hits, 1);
        return rc;
    }
    if (negative) {
        atomic_fetch_add(&l2->negative_hits, 1);
        return CP_ERR_NOT_FOUND;
    }
    atomic_fetch_add(&l2->misses, 1);

    pthread_mutex_lock(&l2->mu);
    struct flight *f = l2->flights;
    while (f != NULL && !(f->klen == klen && memcmp(f->key, key, klen) == 0))
        f = f->next;
    if (f != NULL) {
        /* Someone in this process is loading this key: share its result. */
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&l2->cv, &l2->mu);
        rc = f->rc;
        if (rc == CP_OK) {
            *len = f->vlen;
            if (f->vlen > cap)
                rc = CP_ERR_LIMIT;
            else
                memcpy(buf, f->val, f->vlen);
        }
        if (--f->waiters == 0) {
            free(f->val);
            free(f);
        }
        pthread_mutex_unlock(&l2->mu);
        return rc;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        pthread_mutex_unlock(&l2->mu);
        return CP_ERR_NOMEM;
    }
    memcpy(f->key, key, klen);
    f->klen = klen;
    f->waiters = 1; /* the leader itself */
    f->next = l2->flights;
    l2->flights = f;
    pthread_mutex_unlock(&l2->mu);

    rc = lead_load(l2, conn, key, klen, load, load_arg, buf, cap, len, failed);

    pthread_mutex_lock(&l2->mu);
    struct flight **link = &l2->flights;
    while (*link != f)
        link = &(*link)->next;
    *link = f->next; /* later misses start a new load */
    f->rc = rc;
    if (rc == CP_OK && f->waiters > 1) {
        f->val = malloc(*len);
        if (f->val == NULL)
            f->rc = CP_ERR_NOMEM;
        else
            memcpy(f->val, buf, *len);
        f->vlen = *len;
    }
    f->done = 1;
    if (--f->waiters == 0) {
        free(f->val);
        free(f);
    }
    pthread_cond_broadcast(&l2->cv);
    pthread_mutex_unlock(&l2->mu);
    return rc;
}

int l2_invalidate(struct l2 *l2, void *conn, const char *key, size_t klen)
{
    if (conn == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = l2->ops->del(conn, key, klen);
    if (rc != CP_OK)
        atomic_fetch_add(&l2->store_errors, 1);
    return rc;
}

/* ---- l2_redis_ops: the operations over a Redis client (struct rcli) ---- */

static int redis_get(void *conn, const char *key, size_t klen, char *buf, size_t cap, size_t *len)
{
    redisReply *r = rcli_command(conn, "GET %b", key, klen);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = CP_ERR_NOT_FOUND;
    } else if (r->type == REDIS_REPLY_STRING) {
        *len = r->len;
        if (r->len > cap) {
            rc = CP_ERR_LIMIT;
        } else {
            memcpy(buf, r->str, r->len);
            rc = CP_OK;
        }
    } else {
        rc = CP_ERR_UNAVAILABLE; /* an error reply (e.g. LOADING): treat as down */
    }
    freeReplyObject(r);
    return rc;
}

static int redis_status(redisReply *r, int want_type)
{
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = r->type == want_type ? CP_OK : CP_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return rc;
}

static int redis_set(void *conn, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t ttl_ms)
{
    return redis_status(
        rcli_command(conn, "SET %b %b PX %lld", key, klen, val, vlen, (long long)ttl_ms),
        REDIS_REPLY_STATUS);
}

static int redis_del(void *conn, const char *key, size_t klen)
{
    return redis_status(rcli_command(conn, "DEL %b", key, klen), REDIS_REPLY_INTEGER);
}

/*
 * The lock's value names its holder (pid), so unlock removes only a lock we
 * still hold: after our lock expired and another process took it, a late
 * unlock must not release theirs.
 */
static int redis_lock(void *conn, const char *key, size_t klen, int64_t ttl_ms)
{
    char holder[32];
    int hlen = snprintf(holder, sizeof holder, "%ld", (long)getpid());
    redisReply *r = rcli_command(conn, "SET %b %b NX PX %lld", key, klen, holder, (size_t)hlen,
                                 (long long)ttl_ms);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = r->type == REDIS_REPLY_STATUS ? 1
             : r->type == REDIS_REPLY_NIL  ? 0
                                           : CP_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return rc;
}

static int redis_unlock(void *conn, const char *key, size_t klen)
{
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
        "end return 0";
    char holder[32];
    int hlen = snprintf(holder, sizeof holder, "%ld", (long)getpid());
    return redis_status(
        rcli_command(conn, "EVAL %s 1 %b %b", script, key, klen, holder, (size_t)hlen),
        REDIS_REPLY_INTEGER);
}

const struct l2_ops l2_redis_ops = {
    .get = redis_get,
    .set = redis_set,
    .del = redis_del,
    .lock = redis_lock,
    .unlock = redis_unlock,
};
