#include "first.h"

#include "lru.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cp_err.h"

/* One entry: key and value bytes follow the struct in one allocation. */
struct lru_node {
    struct lru_node *hnext;       /* hash chain */
    struct lru_node *prev, *next; /* recency list, head = most recent */
    uint64_t hash;
    int64_t expires_ms;
    size_t klen, vlen, vcap;
    unsigned char *key, *val;
};

struct lru {
    pthread_mutex_t mu;
    struct lru_node **buckets;
    size_t nbuckets;      /* power of two */
    struct lru_node head; /* sentinel of the recency list */
    size_t count, capacity;
    int64_t ttl_ms;
    lru_clock_fn clock;
    void *clock_arg;
    struct lru_stats stats;
};

static int64_t monotonic_ms(void *arg)
{
    (void)arg;
    return clock_mono_ms();
}

/* FNV-1a: keys are short (tens of bytes) and not attacker-chosen in bulk. */
static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct lru *lru_new(const struct lru_config *cfg)
{
    if (cfg == NULL || cfg->capacity == 0 || cfg->ttl_ms <= 0)
        return NULL;
    struct lru *lru = calloc(1, sizeof *lru);
    if (lru == NULL)
        return NULL;
    size_t nb = 16;
    while (nb < cfg->capacity * 2 && nb < ((size_t)1 << 30))
        nb <<= 1;
    lru->buckets = calloc(nb, sizeof *lru->buckets);
    if (lru->buckets == NULL || pthread_mutex_init(&lru->mu, NULL) != 0) {
        free(lru->buckets);
        free(lru);
        return NULL;
    }
    lru->nbuckets = nb;
    lru->head.prev = lru->head.next = &lru->head;
    lru->capacity = cfg->capacity;
    lru->ttl_ms = cfg->ttl_ms;
    lru->clock = cfg->clock != NULL ? cfg->clock : monotonic_ms;
    lru->clock_arg = cfg->clock_arg;
    return lru;
}

static void list_unlink(struct lru_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static void list_push_front(struct lru *lru, struct lru_node *n)
{
    n->next = lru->head.next;
    n->prev = &lru->head;
    lru->head.next->prev = n;
    lru->head.next = n;
}

/* Finds the node and the link pointing at it (for O(1) unlinking from the chain). */
static struct lru_node **find_link(struct lru *lru, const void *key, size_t klen, uint64_t h)
{
    struct lru_node **link = &lru->buckets[h & (lru->nbuckets - 1)];
    while (*link != NULL) {
        struct lru_node *n = *link;
        if (n->hash == h && n->klen == klen && memcmp(n->key, key, klen) == 0)
            return link;
        link = &n->hnext;
    }
    return link;
}

static void remove_node(struct lru *lru, struct lru_node **link)
{
    struct lru_node *n = *link;
    *link = n->hnext;
    list_unlink(n);
    lru->count--;
    free(n);
}

void lru_clear(struct lru *lru)
{
    pthread_mutex_lock(&lru->mu);
    struct lru_node *n = lru->head.next;
    while (n != &lru->head) {
        struct lru_node *next = n->next;
        free(n);
        n = next;
    }
    memset(lru->buckets, 0, lru->nbuckets * sizeof *lru->buckets);
    lru->head.prev = lru->head.next = &lru->head;
    lru->count = 0;
    pthread_mutex_unlock(&lru->mu);
}

void lru_free(struct lru *lru)
{
    if (lru == NULL)
        return;
    lru_clear(lru);
    pthread_mutex_destroy(&lru->mu);
    free(lru->buckets);
    free(lru);
}

int lru_get(struct lru *lru, const void *key, size_t klen, void *buf, size_t cap, size_t *len)
{
    uint64_t h = hash_bytes(key, klen);
    int rc = CP_ERR_NOT_FOUND;
    pthread_mutex_lock(&lru->mu);
    struct lru_node **link = find_link(lru, key, klen, h);
    struct lru_node *n = *link;
    if (n == NULL) {
        lru->stats.misses++;
    } else if (lru->clock(lru->clock_arg) >= n->expires_ms) {
        remove_node(lru, link);
        lru->stats.expirations++;
        lru->stats.misses++;
    } else {
        lru->stats.hits++;
        list_unlink(n);
        list_push_front(lru, n);
        *len = n->vlen;
        if (n->vlen > cap) {
            rc = CP_ERR_LIMIT;
        } else {
            memcpy(buf, n->val, n->vlen);
            rc = CP_OK;
        }
    }
    pthread_mutex_unlock(&lru->mu);
    return rc;
}

int lru_put_ttl(struct lru *lru, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms)
{
    uint64_t h = hash_bytes(key, klen);
    int rc = CP_OK;
    pthread_mutex_lock(&lru->mu);
    int64_t expires = lru->clock(lru->clock_arg) + (ttl_ms > 0 ? ttl_ms : lru->ttl_ms);
    struct lru_node **link = find_link(lru, key, klen, h);
    struct lru_node *n = *link;
    if (n != NULL && vlen <= n->vcap) {
        /* Update in place: same node, new bytes, fresh recency and expiry. */
        memcpy(n->val, val, vlen);
        n->vlen = vlen;
        n->expires_ms = expires;
        list_unlink(n);
        list_push_front(lru, n);
        goto out;
    }
    if (n != NULL)
        remove_node(lru, link);
    n = malloc(sizeof *n + klen + vlen);
    if (n == NULL) {
        rc = CP_ERR_NOMEM;
        goto out;
    }
    n->key = (unsigned char *)(n + 1);
    n->val = n->key + klen;
    memcpy(n->key, key, klen);
    memcpy(n->val, val, vlen);
    n->klen = klen;
    n->vlen = n->vcap = vlen;
    n->hash = h;
    n->expires_ms = expires;
    while (lru->count >= lru->capacity) {
        struct lru_node *victim = lru->head.prev;
        remove_node(lru, find_link(lru, victim->key, victim->klen, victim->hash));
        lru->stats.evictions++;
    }
    /* Evictions may have changed the chain: find the insertion point again. */
    link = &lru->buckets[h & (lru->nbuckets - 1)];
    n->hnext = *link;
    *link = n;
    list_push_front(lru, n);
    lru->count++;
out:
    pthread_mutex_unlock(&lru->mu);
    return rc;
}

int lru_put(struct lru *lru, const void *key, size_t klen, const void *val, size_t vlen)
{
    return lru_put_ttl(lru, key, klen, val, vlen, 0);
}

int lru_delete(struct lru *lru, const void *key, size_t klen)
{
    uint64_t h = hash_bytes(key, klen);
    pthread_mutex_lock(&lru->mu);
    struct lru_node **link = find_link(lru, key, klen, h);
    int rc = CP_ERR_NOT_FOUND;
    if (*link != NULL) {
        remove_node(lru, link);
        rc = CP_OK;
    }
    pthread_mutex_unlock(&lru->mu);
    return rc;
}

void lru_get_stats(struct lru *lru, struct lru_stats *out)
{
    pthread_mutex_lock(&lru->mu);
    *out = lru->stats;
    out->entries = lru->count;
    pthread_mutex_unlock(&lru->mu);
}
