/*
 * l2.h - the shared L2 cache: cache-aside over Redis with negative caching and
 * single-flight loading.
 *
 * l2_get(key) returns the cached bytes, or calls the caller's loader (which
 * reads the source of truth, MariaDB for coupons) and stores its answer:
 *   - a value is stored for ttl_ms;
 *   - "does not exist" (loader returns CP_ERR_NOT_FOUND) is stored as a
 *     negative entry for negative_ttl_ms, so a flood of unknown ids reaches
 *     the loader at most once per id per negative TTL;
 *   - any other loader error is returned and nothing is stored.
 * Single flight: within one process, concurrent misses of one key wait for one
 * loader (an in-flight table + condition variable) and share its result.
 * Across processes, the loader runs only under a short Redis lock
 * (SET <key>:lock NX PX lock_ttl_ms); a process that loses the race polls the
 * key every wait_step_ms until the winner has stored it or the lock expires
 * (then it loads itself, so a crashed winner delays readers by at most
 * lock_ttl_ms). When Redis is unreachable l2_get falls through to the loader
 * (still single-flighted within the process) and reports CP_OK: the read path
 * degrades to MariaDB instead of failing.
 *
 * Storage goes through a small operation table so the cache logic is
 * independent of the client library; l2_redis_ops implements it over a
 * struct rcli (common/rcli: one server or a cluster) passed as `conn` (each
 * caller thread owns its own). A key and its lock (<key>:lock) share the
 * key's hash tag, so on a cluster the unlock script's one key routes with it.
 * The cache knows nothing about coupons. Thread-safe.
 */
#ifndef COUPON_L2_H
#define COUPON_L2_H

#include <stddef.h>
#include <stdint.h>

struct l2;

struct l2_config {
    int64_t ttl_ms;          /* positive entries, e.g. 30 min */
    int64_t negative_ttl_ms; /* "not found" entries, e.g. 30 s */
    int64_t lock_ttl_ms;     /* cross-process loader lock */
    int64_t wait_step_ms;    /* poll interval while another process loads */
};

/*
 * Operations on the shared store. Each returns CP_OK, CP_ERR_NOT_FOUND (get
 * only: key absent), CP_ERR_LIMIT (get only: cap too small) or
 * CP_ERR_UNAVAILABLE (the store failed; the caller should drop `conn`).
 * lock returns 1 when acquired, 0 when held by someone else.
 */
struct l2_ops {
    int (*get)(void *conn, const char *key, size_t klen, char *buf, size_t cap, size_t *len);
    int (*set)(void *conn, const char *key, size_t klen, const char *val, size_t vlen,
               int64_t ttl_ms);
    int (*del)(void *conn, const char *key, size_t klen);
    int (*lock)(void *conn, const char *key, size_t klen, int64_t ttl_ms);
    int (*unlock)(void *conn, const char *key, size_t klen);
};

/* conn is a struct rcli *. */
extern const struct l2_ops l2_redis_ops;

/*
 * Loads the value of a key from the source of truth into buf (cap bytes).
 * CP_OK with *len set; CP_ERR_NOT_FOUND if it does not exist; another
 * negative cp_err on failure.
 */
typedef int (*l2_loader_fn)(void *arg, char *buf, size_t cap, size_t *len);

struct l2_stats {
    uint64_t hits, misses, negative_hits, loads, lock_waits, store_errors;
};

struct l2 *l2_new(const struct l2_config *cfg, const struct l2_ops *ops);
void l2_free(struct l2 *l2);

/*
 * CP_OK (value in buf, *len set), CP_ERR_NOT_FOUND (known not to exist),
 * CP_ERR_LIMIT (cap too small) or the loader's error. `conn` may be NULL when
 * the caller has no store connection (Redis down): the loader is used directly.
 * *store_failed (may be NULL) is set to 1 when the store failed, so the caller
 * can drop its connection.
 */
int l2_get(struct l2 *l2, void *conn, const char *key, size_t klen, l2_loader_fn load,
           void *load_arg, char *buf, size_t cap, size_t *len, int *store_failed);

/* Deletes a key (after the source of truth changed). CP_OK or CP_ERR_UNAVAILABLE. */
int l2_invalidate(struct l2 *l2, void *conn, const char *key, size_t klen);

void l2_get_stats(struct l2 *l2, struct l2_stats *out);

#endif
