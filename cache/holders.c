#include "first.h"

#include "holders.h"

#include <pthread.h>
#include <stdlib.h>

#include "cp_err.h"

enum slot_state { SLOT_EMPTY, SLOT_FETCHING, SLOT_READY, SLOT_REFUSED };

struct slot {
    enum slot_state state;
    int64_t coupon_id;
    uint64_t lease;         /* SLOT_FETCHING: the token its put must bring */
    int64_t until_ms;       /* FETCHING: lease end; READY: expiry; REFUSED: refused until */
    struct holder *members; /* READY: sorted by user_id */
    size_t n;
};

struct holders {
    /* A mutex, as in lru.c: the critical sections are a binary search or a pointer
     * swap; sorting and freeing happen outside it. */
    pthread_mutex_t mu;
    size_t max_entries;
    uint64_t next_lease;
    struct slot slots[HOLDERS_SLOTS];
    uint64_t hits, misses, installed, refused, discarded;
};

struct holders *holders_new(size_t max_entries)
{
    if (max_entries == 0)
        return NULL;
    struct holders *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    h->max_entries = max_entries;
    h->next_lease = 1;
    return h;
}

/* Empties a slot; returns the members the caller frees outside the lock. */
static struct holder *slot_reset(struct slot *s)
{
    struct holder *members = s->members;
    *s = (struct slot){.state = SLOT_EMPTY};
    return members;
}

void holders_free(struct holders *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        free(slot_reset(&h->slots[i]));
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Whether a slot still means something at now_ms (else it is as good as empty). */
static int slot_live(const struct slot *s, int64_t now_ms)
{
    return s->state != SLOT_EMPTY && s->until_ms > now_ms;
}

static struct slot *slot_of(struct holders *h, int64_t coupon_id)
{
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        if (h->slots[i].state != SLOT_EMPTY && h->slots[i].coupon_id == coupon_id)
            return &h->slots[i];
    return NULL;
}

static const struct holder *find_member(const struct slot *s, int64_t user_id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->members[mid].user_id < user_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->members[lo].user_id == user_id ? &s->members[lo] : NULL;
}

int holders_lookup(struct holders *h, int64_t coupon_id, int64_t user_id, int64_t now_ms,
                   int64_t *seq, int64_t *at)
{
    int rc = CP_ERR_NOT_FOUND;
    pthread_mutex_lock(&h->mu);
    const struct slot *s = slot_of(h, coupon_id);
    if (s != NULL && s->state == SLOT_READY && slot_live(s, now_ms)) {
        const struct holder *m = find_member(s, user_id);
        if (m != NULL) {
            *seq = m->sequence;
            *at = m->issued_at_ms;
            h->hits++;
            rc = 1;
        } else {
            h->misses++;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int holders_begin_fetch(struct holders *h, int64_t coupon_id, int64_t now_ms, int64_t lease_ms,
                        uint64_t *lease)
{
    struct holder *old = NULL;
    int rc = CP_ERR_CONFLICT;
    pthread_mutex_lock(&h->mu);
    struct slot *s = slot_of(h, coupon_id);
    if (s != NULL && slot_live(s, now_ms))
        goto out; /* being fetched, fetched, or refused */
    for (size_t i = 0; s == NULL && i < HOLDERS_SLOTS; i++)
        if (!slot_live(&h->slots[i], now_ms))
            s = &h->slots[i];
    if (s == NULL)
        goto out; /* every slot holds a live snapshot or lease */
    old = slot_reset(s);
    *s = (struct slot){.state = SLOT_FETCHING,
                       .coupon_id = coupon_id,
                       .lease = h->next_lease++,
                       .until_ms = now_ms + lease_ms};
    *lease = s->lease;
    rc = CP_OK;
out:
    pthread_mutex_unlock(&h->mu);
    free(old);
    return rc;
}

static struct slot *slot_of_lease(struct holders *h, uint64_t lease)
{
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        if (h->slots[i].state == SLOT_FETCHING && h->slots[i].lease == lease)
            return &h->slots[i];
    return NULL;
}

static int by_user(const void *a, const void *b)
{
    int64_t x = ((const struct holder *)a)->user_id, y = ((const struct holder *)b)->user_id;
    return (x > y) - (x < y);
}

int holders_put(struct holders *h, uint64_t lease, struct holder *members, size_t n,
                int64_t expires_at_ms, int64_t now_ms)
{
    if (members != NULL && n > 1) {
        qsort(members, n, sizeof *members, by_user);
        size_t kept = 1; /* a user listed twice (HSCAN may repeat a field) is kept once */
        for (size_t i = 1; i < n; i++)
            if (members[i].user_id != members[kept - 1].user_id)
                members[kept++] = members[i];
        n = kept;
    }
    struct holder *expired[HOLDERS_SLOTS] = {NULL};
    int rc;
    pthread_mutex_lock(&h->mu);
    struct slot *s = slot_of_lease(h, lease);
    if (s == NULL) {
        h->discarded++;
        rc = CP_ERR_NOT_FOUND;
        goto out;
    }
    /* Expired snapshots give their room back here; the live ones count. */
    size_t used = 0;
    for (size_t i = 0; i < HOLDERS_SLOTS; i++) {
        struct slot *o = &h->slots[i];
        if (o->state == SLOT_READY && !slot_live(o, now_ms))
            expired[i] = slot_reset(o);
        else if (o->state == SLOT_READY)
            used += o->n;
    }
    if ((members == NULL && n > 0) || n > h->max_entries - used) {
        *s = (struct slot){
            .state = SLOT_REFUSED, .coupon_id = s->coupon_id, .until_ms = expires_at_ms};
        h->refused++;
        rc = CP_ERR_LIMIT;
        goto out;
    }
    *s = (struct slot){.state = SLOT_READY,
                       .coupon_id = s->coupon_id,
                       .until_ms = expires_at_ms,
                       .members = members,
                       .n = n};
    members = NULL;
    h->installed++;
    rc = CP_OK;
out:
    pthread_mutex_unlock(&h->mu);
    free(members);
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        free(expired[i]);
    return rc;
}

void holders_abort(struct holders *h, uint64_t lease)
{
    pthread_mutex_lock(&h->mu);
    struct slot *s = slot_of_lease(h, lease);
    if (s != NULL)
        (void)slot_reset(s); /* a FETCHING slot has no members */
    pthread_mutex_unlock(&h->mu);
}

size_t holders_capacity(const struct holders *h)
{
    return h->max_entries;
}

void holders_forget(struct holders *h, int64_t coupon_id)
{
    struct holder *old = NULL;
    pthread_mutex_lock(&h->mu);
    struct slot *s = slot_of(h, coupon_id);
    if (s != NULL)
        old = slot_reset(s);
    pthread_mutex_unlock(&h->mu);
    free(old);
}

void holders_clear(struct holders *h)
{
    struct holder *old[HOLDERS_SLOTS];
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        old[i] = slot_reset(&h->slots[i]);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        free(old[i]);
}

void holders_get_stats(struct holders *h, int64_t now_ms, struct holders_stats *out)
{
    pthread_mutex_lock(&h->mu);
    *out = (struct holders_stats){.hits = h->hits,
                                  .misses = h->misses,
                                  .installed = h->installed,
                                  .refused = h->refused,
                                  .discarded = h->discarded};
    for (size_t i = 0; i < HOLDERS_SLOTS; i++)
        if (h->slots[i].state == SLOT_READY && slot_live(&h->slots[i], now_ms))
            out->entries += h->slots[i].n;
    pthread_mutex_unlock(&h->mu);
}
