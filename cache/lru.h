/*
 * lru.h - the in-process L1 cache: a fixed-capacity LRU of byte strings with a
 * per-entry time to live.
 *
 * Design: a hash table (separate chaining, power-of-two buckets sized at
 * creation) indexes nodes that also sit on one doubly linked recency list, so
 * get, put and delete are O(1). Entries are never resized after lru_new(); the
 * least recently used entry is evicted when a put would exceed the capacity.
 * An expired entry is dropped by the lookup that finds it (counted as an
 * expiration, and the lookup as a miss). Values are copied in and out: the
 * cache never hands out a pointer into its own memory, so callers need no
 * lifetime rules. One mutex guards the whole structure: critical sections are
 * a hash lookup and a memcpy of at most a few KiB, shorter than any contention
 * worth striping for at the worker's thread count.
 *
 * The clock is injectable (struct lru_config.clock) so tests drive time.
 * The cache knows nothing about coupons: keys and values are opaque bytes.
 */
#ifndef COUPON_LRU_H
#define COUPON_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru;

/* Milliseconds on a monotonic clock. */
typedef int64_t (*lru_clock_fn)(void *arg);

struct lru_config {
    size_t capacity;    /* entries, >= 1 */
    int64_t ttl_ms;     /* default time to live, > 0 */
    lru_clock_fn clock; /* NULL = CLOCK_MONOTONIC */
    void *clock_arg;
};

struct lru_stats {
    uint64_t hits, misses, evictions, expirations;
    size_t entries;
};

/* NULL on allocation failure or an invalid config. */
struct lru *lru_new(const struct lru_config *cfg);
void lru_free(struct lru *lru);

/*
 * Copies the value of `key` into buf (cap bytes) and its length into *len.
 * CP_OK; CP_ERR_NOT_FOUND when absent or expired; CP_ERR_LIMIT when cap is
 * too small (*len then holds the needed size; counted as a hit).
 */
int lru_get(struct lru *lru, const void *key, size_t klen, void *buf, size_t cap, size_t *len);

/* Inserts or replaces (in place, refreshing recency and expiry). CP_OK or CP_ERR_NOMEM. */
int lru_put(struct lru *lru, const void *key, size_t klen, const void *val, size_t vlen);
int lru_put_ttl(struct lru *lru, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms);

/* CP_OK or CP_ERR_NOT_FOUND. */
int lru_delete(struct lru *lru, const void *key, size_t klen);

/* Drops every entry (counters kept). */
void lru_clear(struct lru *lru);

void lru_get_stats(struct lru *lru, struct lru_stats *out);

#endif
