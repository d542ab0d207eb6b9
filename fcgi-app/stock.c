#include "first.h"

#include "stock.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "clock.h"
#include "cp_err.h"

/* Shared between processes: an atomic that needed a lock would use one process's lock. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert((STOCK_WAYS & (STOCK_WAYS - 1)) == 0, "ways: a power of two");

/* state: tag (2 bits) | generation (14) | payload (48: READY the count, BUSY since when).
 * at: fresh (bit 62) | generation (14) | monotonic ms (48). */
#define TAG_SHIFT    62
#define GEN_SHIFT    48
#define GEN_MASK     ((UINT64_C(1) << 14) - 1)
#define PAYLOAD_MASK ((UINT64_C(1) << 48) - 1)

enum { TAG_FREE = 0, TAG_READY = 1, TAG_BUSY = 2 };
enum { ABSENT, FOUND, INSERTING };
/* Looks at an insert of the same coupon in flight before yielding the CPU to it. */
#define SPINS_BEFORE_YIELD 64

/* An update's internal "look again": the slot moved under it. */
enum { DONE, AGAIN };

struct slot {
    _Atomic uint64_t state;
    _Atomic uint64_t key; /* the coupon id; meaningful while the state is not FREE */
    _Atomic uint64_t at;
    uint64_t pad; /* 32 bytes: a group of 4 is two cache lines, never three */
};

struct stock {
    void *map;
    size_t map_len;
    struct slot *slots;
    uint64_t group_mask;
    int64_t ttl_ms;
    int64_t (*clock)(void *arg);
    void *clock_arg;
};

/* Both words are tag | generation | 48-bit payload; at's tag is 1 when fresh. */
#define TAG(w)     ((unsigned)((w) >> TAG_SHIFT))
#define GEN(w)     (((w) >> GEN_SHIFT) & GEN_MASK)
#define PAYLOAD(w) ((int64_t)((w)&PAYLOAD_MASK))

static uint64_t word(unsigned tag, uint64_t gen, int64_t payload)
{
    return (uint64_t)tag << TAG_SHIFT | (gen & GEN_MASK) << GEN_SHIFT |
           ((uint64_t)payload & PAYLOAD_MASK);
}

static int64_t monotonic_ms(void *arg)
{
    (void)arg;
    return clock_mono_ms();
}

struct stock *stock_new(const struct stock_config *cfg)
{
    if (cfg == NULL || cfg->capacity < STOCK_WAYS || cfg->capacity > STOCK_CAPACITY_MAX ||
        (cfg->capacity & (cfg->capacity - 1)) != 0 || cfg->ttl_ms < 1 ||
        cfg->ttl_ms > STOCK_AGE_MAX_MS) {
        errno = EINVAL;
        return NULL;
    }
    struct stock *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->map_len = cfg->capacity * sizeof(struct slot);
    /* Anonymous memory is zero: every slot FREE. */
    st->map = mmap(NULL, st->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st->map == MAP_FAILED) {
        int err = errno;
        free(st);
        errno = err;
        return NULL;
    }
    st->slots = st->map;
    st->group_mask = cfg->capacity / STOCK_WAYS - 1;
    st->ttl_ms = cfg->ttl_ms;
    st->clock = cfg->clock != NULL ? cfg->clock : monotonic_ms;
    st->clock_arg = cfg->clock_arg;
    return st;
}

void stock_free(struct stock *st)
{
    if (st == NULL)
        return;
    munmap(st->map, st->map_len);
    free(st);
}

int64_t stock_now(const struct stock *st)
{
    return st->clock(st->clock_arg);
}

/* Fibonacci hashing: coupon ids are the server's, so no key is needed against aiming. */
static struct slot *group_of(const struct stock *st, uint64_t key)
{
    uint64_t h = key * UINT64_C(0x9e3779b97f4a7c15);
    return st->slots + ((h >> 32) & st->group_mask) * STOCK_WAYS;
}

/*
 * key's slot in grp: FOUND (*idx, its state *s and at *a read consistently: the state
 * unchanged from before the id to after at), INSERTING (a BUSY slot carries the id; *idx,
 * *s) or ABSENT. A slot whose state moved while it was read is read again.
 */
static int lookup(struct slot *grp, uint64_t key, int *idx, uint64_t *s, uint64_t *a)
{
    for (int i = 0; i < STOCK_WAYS; i++) {
        for (;;) {
            uint64_t s1 = atomic_load(&grp[i].state);
            if (TAG(s1) == TAG_FREE || atomic_load(&grp[i].key) != key)
                break;
            *idx = i;
            *s = s1;
            if (TAG(s1) == TAG_BUSY)
                return INSERTING;
            uint64_t a1 = atomic_load(&grp[i].at);
            if (atomic_load(&grp[i].state) != s1 || GEN(a1) != GEN(s1))
                continue;
            *a = a1;
            return FOUND;
        }
    }
    return ABSENT;
}

int stock_get(struct stock *st, int64_t coupon_id, int64_t *issued)
{
    if (st == NULL || issued == NULL)
        return CP_ERR_NOT_FOUND;
    int i;
    uint64_t s, a = 0;
    if (lookup(group_of(st, (uint64_t)coupon_id), (uint64_t)coupon_id, &i, &s, &a) != FOUND ||
        TAG(a) != 1)
        return CP_ERR_NOT_FOUND;
    /* The clock after the look-up: the age can only be overstated. */
    if (st->clock(st->clock_arg) - PAYLOAD(a) >= st->ttl_ms)
        return CP_ERR_NOT_FOUND;
    *issued = PAYLOAD(s);
    return CP_OK;
}

/* at moves on to sent_ms within generation gen: after a fresh one only forwards, after a
 * birth only for a read sent in a later millisecond (the same one could be before it). */
static void publish_at(struct slot *sl, uint64_t gen, int64_t sent_ms)
{
    uint64_t a = atomic_load(&sl->at);
    for (;;) {
        if (GEN(a) != gen)
            return;
        if (sent_ms <= PAYLOAD(a))
            return;
        if (atomic_compare_exchange_weak(&sl->at, &a, word(1, gen, sent_ms)))
            return;
    }
}

/* n read at sent_ms into the READY slot whose state was s: DONE or AGAIN. */
static int publish(struct slot *sl, uint64_t s, int64_t n, int64_t sent_ms)
{
    int64_t c = PAYLOAD(s);
    uint64_t gen = GEN(s);
    if (n < c) {
        /* Redis is below the entry (stock.h: a rollback, or reads answered out of
         * order): dropped; the next reads come from Redis, a new entry is born later. */
        return atomic_compare_exchange_strong(&sl->state, &s, word(TAG_FREE, gen, 0)) ? DONE
                                                                                      : AGAIN;
    }
    if (n > c && !atomic_compare_exchange_strong(&sl->state, &s, word(TAG_READY, gen, n)))
        return AGAIN;
    /* The count first, then at: a fresh at never stands beside a count older than it. */
    publish_at(sl, gen, sent_ms);
    return DONE;
}

/* The slot to give a new coupon in grp (its state in *vs): a FREE one, else the BUSY or
 * READY one least recently touched among those a dead inserter left or older than the
 * TTL; -1 when every slot is in use and fresh. */
static int pick_victim(const struct stock *st, struct slot *grp, int64_t now, uint64_t *vs)
{
    int victim = -1;
    int64_t oldest = INT64_MAX;
    for (int i = 0; i < STOCK_WAYS; i++) {
        uint64_t s = atomic_load(&grp[i].state);
        int64_t since;
        if (TAG(s) == TAG_FREE) {
            *vs = s;
            return i;
        }
        if (TAG(s) == TAG_BUSY) {
            since = PAYLOAD(s);
            if (now - since <= STOCK_BUSY_STALE_MS)
                continue;
        } else {
            since = PAYLOAD(atomic_load(&grp[i].at));
            if (now - since < st->ttl_ms)
                continue;
        }
        if (since < oldest) {
            oldest = since;
            victim = i;
            *vs = s;
        }
    }
    return victim;
}

/*
 * key has no slot in grp: gives it one, READY with count n and born (not fresh) at a
 * time taken after its id was written. DONE (inserted, or every slot fresh: n goes
 * uncached) or AGAIN (raced: look again).
 */
static int insert(const struct stock *st, struct slot *grp, uint64_t key, int64_t n, int64_t now)
{
    uint64_t vs;
    int v = pick_victim(st, grp, now, &vs);
    if (v < 0)
        return DONE;
    uint64_t gen = GEN(vs) + 1;
    uint64_t busy = word(TAG_BUSY, gen, now);
    if (!atomic_compare_exchange_strong(&grp[v].state, &vs, busy))
        return AGAIN;
    atomic_store(&grp[v].key, key);
    /* Of two inserts of one id, each writes its id before reading the other slots' (all
     * sequentially consistent): at least one sees the other and gives way. */
    for (int i = 0; i < STOCK_WAYS; i++) {
        if (i != v && atomic_load(&grp[i].key) == key &&
            TAG(atomic_load(&grp[i].state)) != TAG_FREE) {
            uint64_t b = busy;
            (void)atomic_compare_exchange_strong(&grp[v].state, &b, word(TAG_FREE, gen, 0));
            return AGAIN;
        }
    }
    atomic_store(&grp[v].at, word(0, gen, st->clock(st->clock_arg)));
    uint64_t b = busy;
    (void)atomic_compare_exchange_strong(&grp[v].state, &b, word(TAG_READY, gen, n));
    /* Failed only when taken back as stale: n still goes nowhere a later read can see. */
    return DONE;
}

void stock_put(struct stock *st, int64_t coupon_id, int64_t n, int64_t sent_ms)
{
    /* A count beyond 48 bits is not a coupon's: never cached. */
    if (st == NULL || n < 0 || (uint64_t)n > PAYLOAD_MASK || sent_ms < 0)
        return;
    uint64_t key = (uint64_t)coupon_id;
    struct slot *grp = group_of(st, key);
    for (unsigned spins = 0;; spins++) {
        int i = 0;
        uint64_t s = 0, a = 0;
        int found = lookup(grp, key, &i, &s, &a);
        if (found == FOUND) {
            if (publish(&grp[i], s, n, sent_ms) == DONE)
                return;
            continue;
        }
        int64_t now = st->clock(st->clock_arg);
        if (found == INSERTING) {
            /* Another insert of this coupon: a few instructions, unless its process died
             * or stalled; then its slot is taken back (its own READY will fail). */
            if (now - PAYLOAD(s) > STOCK_BUSY_STALE_MS)
                (void)atomic_compare_exchange_strong(&grp[i].state, &s,
                                                     word(TAG_FREE, GEN(s) + 1, 0));
            else if (spins >= SPINS_BEFORE_YIELD)
                sched_yield(); /* the inserter may be waiting for this CPU */
            continue;
        }
        if (insert(st, grp, key, n, now) == DONE)
            return;
    }
}

void stock_forget(struct stock *st, int64_t coupon_id)
{
    if (st == NULL)
        return;
    uint64_t key = (uint64_t)coupon_id;
    struct slot *grp = group_of(st, key);
    int i = 0;
    uint64_t s = 0, a = 0;
    while (lookup(grp, key, &i, &s, &a) == FOUND &&
           !atomic_compare_exchange_strong(&grp[i].state, &s, word(TAG_FREE, GEN(s), 0)))
        ;
}
