#include "first.h"

#include "ratelimit.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "cp_err.h"

/* The table is shared between processes: an atomic that needed a lock would use a lock of
 * one process only. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free");
_Static_assert((RATELIMIT_WAYS & (RATELIMIT_WAYS - 1)) == 0, "ways: a power of two");

/* State word: tag (2 bits) | generation (18) | TAT in us, modulo 2^44 (~203 days). */
#define TAG_SHIFT   62
#define GEN_SHIFT   44
#define GEN_MASK    ((UINT64_C(1) << 18) - 1)
#define TAT_MASK    ((UINT64_C(1) << 44) - 1)
#define TAT_HALF    (UINT64_C(1) << 43)
/* A backlog (TAT - now) beyond this is an ancient TAT wrapped round: a full bucket. Real
 * backlogs stay under RATELIMIT_WINDOW_MAX_S (1e12 us < 2^40) plus clock skew. */
#define BACKLOG_MAX (INT64_C(1) << 42)

enum { TAG_FREE = 0, TAG_READY = 1, TAG_BUSY = 2 };

/* A take's internal "look again": the state moved under it. */
#define AGAIN 1

/* Pauses before a waiter for a group lock starts yielding and checking the holder. */
#define SPIN_PAUSES 1000

struct slot {
    _Atomic uint64_t state;
    _Atomic uint64_t key; /* the user id; meaningful while the state is READY */
};

struct counters {
    alignas(64) _Atomic uint64_t allowed;
    _Atomic uint64_t limited;
    _Atomic uint64_t evicted;
    _Atomic uint64_t lock_breaks;
};

/* The start of the mapping; the slots (class by class) and the group locks follow. */
struct shm_head {
    struct counters cnt[RATELIMIT_CLASS_COUNT];
};

struct class_rt {
    int unlimited;
    uint64_t interval_us; /* 1/r, rounded up */
    uint64_t tau_us;      /* (b - 1)/r: the backlog a take may still start from */
};

struct ratelimit {
    void *map;
    size_t map_len;
    struct shm_head *head;
    struct slot *slots[RATELIMIT_CLASS_COUNT];
    _Atomic uint64_t *locks[RATELIMIT_CLASS_COUNT];
    uint64_t group_mask;
    uint64_t seed;
    struct class_rt cls[RATELIMIT_CLASS_COUNT];
};

static const char *const class_names[RATELIMIT_CLASS_COUNT] = {"issue", "redeem"};

const char *ratelimit_class_name(enum ratelimit_class c)
{
    return (unsigned)c < RATELIMIT_CLASS_COUNT ? class_names[c] : NULL;
}

static uint64_t st_make(unsigned tag, uint64_t gen, uint64_t tat)
{
    return (uint64_t)tag << TAG_SHIFT | (gen & GEN_MASK) << GEN_SHIFT | (tat & TAT_MASK);
}

static unsigned st_tag(uint64_t s)
{
    return (unsigned)(s >> TAG_SHIFT);
}

static uint64_t st_gen(uint64_t s)
{
    return (s >> GEN_SHIFT) & GEN_MASK;
}

/* TAT - now in us, from the 44-bit TAT; <= 0 is a full bucket. */
static int64_t backlog(uint64_t s, uint64_t now_us)
{
    uint64_t diff = ((s & TAT_MASK) - now_us) & TAT_MASK;
    int64_t d = diff >= TAT_HALF ? (int64_t)diff - (int64_t)(TAT_HALF << 1) : (int64_t)diff;
    return d > BACKLOG_MAX ? -1 : d;
}

/* splitmix64's finaliser: every bit of x moves every bit of the group index. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* 1/rate in us, rounded up (0 when rate is 0). */
static uint64_t interval_us(double rate)
{
    if (rate <= 0)
        return 0;
    double x = 1e6 / rate;
    if (x >= 0x1p62) /* a rate that tiny fails the window check; no overflow on the way */
        return UINT64_C(1) << 62;
    uint64_t t = (uint64_t)x;
    return (double)t < x ? t + 1 : t;
}

int ratelimit_config_check(const struct ratelimit_config *cfg, size_t capacity, char *errbuf,
                           size_t errlen)
{
    if (cfg == NULL) {
        snprintf(errbuf, errlen, "ratelimit: no configuration");
        return CP_ERR_INVALID;
    }
    if (capacity < RATELIMIT_WAYS || capacity > RATELIMIT_CAPACITY_MAX ||
        (capacity & (capacity - 1)) != 0) {
        snprintf(errbuf, errlen, "ratelimit: capacity %zu is not a power of two in %d..%d",
                 capacity, RATELIMIT_WAYS, RATELIMIT_CAPACITY_MAX);
        return CP_ERR_INVALID;
    }
    for (int c = 0; c < RATELIMIT_CLASS_COUNT; c++) {
        const struct ratelimit_class_config *k = &cfg->cls[c];
        if (!isfinite(k->rate_per_s) || k->rate_per_s < 0 || k->rate_per_s > RATELIMIT_RATE_MAX) {
            snprintf(errbuf, errlen, "ratelimit %s: rate %g is not in 0..%g per second",
                     class_names[c], k->rate_per_s, RATELIMIT_RATE_MAX);
            return CP_ERR_INVALID;
        }
        if (k->rate_per_s == 0)
            continue;
        if (k->burst < 1 ||
            (double)k->burst * (double)interval_us(k->rate_per_s) > RATELIMIT_WINDOW_MAX_S * 1e6) {
            snprintf(errbuf, errlen,
                     "ratelimit %s: burst %u must be >= 1 and refill within %d s at %g per s",
                     class_names[c], (unsigned)k->burst, RATELIMIT_WINDOW_MAX_S, k->rate_per_s);
            return CP_ERR_INVALID;
        }
    }
    return CP_OK;
}

static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    /* No entropy yet (early boot): the ids still spread, only less unpredictably. */
    return mix((uint64_t)clock_mono_us() ^ (uint64_t)getpid() << 32);
}

struct ratelimit *ratelimit_new(const struct ratelimit_config *cfg, size_t capacity)
{
    struct ratelimit *rl = NULL;
    char why[160];
    int err = EINVAL;
    if (ratelimit_config_check(cfg, capacity, why, sizeof why) != CP_OK)
        goto fail;
    err = ENOMEM;
    rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        goto fail;
    size_t groups = capacity / RATELIMIT_WAYS;
    size_t slots_off = (sizeof(struct shm_head) + 127) & ~(size_t)127;
    size_t slots_len = (size_t)RATELIMIT_CLASS_COUNT * capacity * sizeof(struct slot);
    size_t locks_len = (size_t)RATELIMIT_CLASS_COUNT * groups * sizeof(_Atomic uint64_t);
    rl->map_len = slots_off + slots_len + locks_len;
    /* Anonymous memory is zero: every slot FREE, every lock free, every counter 0. */
    rl->map = mmap(NULL, rl->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rl->map == MAP_FAILED) {
        err = errno;
        rl->map = NULL;
        goto fail;
    }
    rl->head = rl->map;
    char *base = rl->map;
    for (int c = 0; c < RATELIMIT_CLASS_COUNT; c++) {
        rl->slots[c] = (struct slot *)(void *)(base + slots_off) + (size_t)c * capacity;
        rl->locks[c] =
            (_Atomic uint64_t *)(void *)(base + slots_off + slots_len) + (size_t)c * groups;
        double rate = cfg->cls[c].rate_per_s;
        rl->cls[c].unlimited = rate == 0;
        rl->cls[c].interval_us = interval_us(rate);
        rl->cls[c].tau_us =
            rate == 0 ? 0 : (uint64_t)(cfg->cls[c].burst - 1) * rl->cls[c].interval_us;
    }
    rl->group_mask = groups - 1;
    rl->seed = random_seed();
    return rl;
fail:
    ratelimit_free(rl);
    errno = err;
    return NULL;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    if (rl->map != NULL)
        munmap(rl->map, rl->map_len);
    free(rl);
}

/* The READY slot of key in its group (its state in *state), or -1. */
static int find(struct slot *grp, uint64_t key, uint64_t *state)
{
    for (int i = 0; i < RATELIMIT_WAYS; i++) {
        uint64_t s = atomic_load(&grp[i].state);
        if (st_tag(s) == TAG_READY && atomic_load(&grp[i].key) == key) {
            *state = s;
            return i;
        }
    }
    return -1;
}

/*
 * One attempt on the bucket whose state was s when its key was seen to match: CP_OK (taken),
 * CP_ERR_LIMIT (*retry_us set) or AGAIN (the state changed since). The state unchanged since
 * before the key was read means the slot was that key's all along (the key changes only
 * while BUSY, and BUSY bumps the generation).
 */
static int try_take(const struct class_rt *k, struct slot *sl, uint64_t s, uint64_t now_us,
                    int64_t *retry_us)
{
    int64_t d = backlog(s, now_us);
    if (d > (int64_t)k->tau_us) {
        if (atomic_load(&sl->state) != s)
            return AGAIN;
        *retry_us = d - (int64_t)k->tau_us;
        return CP_ERR_LIMIT;
    }
    uint64_t tat = (d < 0 ? now_us : now_us + (uint64_t)d) + k->interval_us;
    return atomic_compare_exchange_strong(&sl->state, &s, st_make(TAG_READY, st_gen(s), tat))
               ? CP_OK
               : AGAIN;
}

static uint64_t lock_word(void)
{
    return (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)clock_mono_ms();
}

/* The holder of a group lock is dead (its pid is gone) or has held it too long. */
static int holder_gone(uint64_t word)
{
    int32_t held = (int32_t)((uint32_t)clock_mono_ms() - (uint32_t)word);
    if (held > RATELIMIT_LOCK_STALE_MS)
        return 1;
    return kill((pid_t)(word >> 32), 0) != 0 && errno == ESRCH;
}

/* Takes the group lock, breaking it from a dead or stalled holder; returns the word to
 * unlock with. */
static uint64_t group_lock(_Atomic uint64_t *lock, struct counters *cnt)
{
    uint64_t mine = lock_word();
    for (unsigned spins = 0;; spins++) {
        uint64_t cur = 0;
        if (atomic_compare_exchange_weak(lock, &cur, mine))
            return mine;
        if (cur == 0)
            continue;
        if (spins < SPIN_PAUSES) {
            cpu_relax();
            continue;
        }
        if (holder_gone(cur)) {
            mine = lock_word();
            if (atomic_compare_exchange_strong(lock, &cur, mine)) {
                atomic_fetch_add_explicit(&cnt->lock_breaks, 1, memory_order_relaxed);
                return mine;
            }
            continue;
        }
        sched_yield();
        mine = lock_word(); /* "since" is when we get it, not when we began to wait */
    }
}

static void group_unlock(_Atomic uint64_t *lock, uint64_t mine)
{
    /* Fails only if the lock was broken from us: then it is someone else's now. */
    (void)atomic_compare_exchange_strong(lock, &mine, 0);
}

/* The slot to give a new user (its state in *state): a FREE one, one BUSY under our lock (left
 * by a dead holder), a full bucket, else the bucket with the smallest backlog. */
static int pick_victim(struct slot *grp, uint64_t now_us, uint64_t *state)
{
    int best = 0;
    int64_t best_d = INT64_MAX;
    for (int i = 0; i < RATELIMIT_WAYS; i++) {
        uint64_t s = atomic_load(&grp[i].state);
        int64_t d = st_tag(s) == TAG_READY ? backlog(s, now_us) : -1;
        if (d <= 0) {
            *state = s;
            return i;
        }
        if (d < best_d) {
            best = i;
            best_d = d;
            *state = s;
        }
    }
    return best;
}

/*
 * key has no bucket in its group: under the group lock, look again (another process may
 * have just inserted it), else re-key a slot and take the first token of a full bucket from
 * it. CP_OK, or AGAIN to go through ratelimit_take's loop again.
 */
static int insert(struct ratelimit *rl, enum ratelimit_class c, uint64_t g, uint64_t key,
                  uint64_t now_us)
{
    struct slot *grp = rl->slots[c] + g * RATELIMIT_WAYS;
    _Atomic uint64_t *lock = &rl->locks[c][g];
    struct counters *cnt = &rl->head->cnt[c];
    uint64_t mine = group_lock(lock, cnt);
    int rc = AGAIN;
    uint64_t s;
    if (find(grp, key, &s) >= 0)
        goto out;
    for (;;) {
        int v = pick_victim(grp, now_us, &s);
        uint64_t busy = st_make(TAG_BUSY, st_gen(s) + 1, 0);
        if (!atomic_compare_exchange_strong(&grp[v].state, &s, busy))
            continue; /* a take moved it: choose again */
        if (st_tag(s) == TAG_READY && backlog(s, now_us) > 0)
            atomic_fetch_add_explicit(&cnt->evicted, 1, memory_order_relaxed);
        atomic_store(&grp[v].key, key);
        uint64_t ready = st_make(TAG_READY, st_gen(busy), now_us + rl->cls[c].interval_us);
        /* Fails only if our lock was broken and the slot given away meanwhile: go again. */
        if (atomic_compare_exchange_strong(&grp[v].state, &busy, ready))
            rc = CP_OK;
        break;
    }
out:
    group_unlock(lock, mine);
    return rc;
}

int ratelimit_take(struct ratelimit *rl, enum ratelimit_class c, int64_t user_id, int64_t now_ms,
                   int64_t *retry_after_ms)
{
    if (retry_after_ms != NULL)
        *retry_after_ms = 0;
    if (rl == NULL || (unsigned)c >= RATELIMIT_CLASS_COUNT)
        return CP_ERR_INVALID;
    struct counters *cnt = &rl->head->cnt[c];
    const struct class_rt *k = &rl->cls[c];
    if (k->unlimited) {
        atomic_fetch_add_explicit(&cnt->allowed, 1, memory_order_relaxed);
        return CP_OK;
    }
    uint64_t key = (uint64_t)user_id;
    uint64_t now_us = (uint64_t)now_ms * 1000u; /* modulo 2^64: only differences matter */
    uint64_t g = mix(key ^ rl->seed) & rl->group_mask;
    struct slot *grp = rl->slots[c] + g * RATELIMIT_WAYS;
    int64_t retry_us = 0;
    int rc;
    do {
        uint64_t s;
        int i = find(grp, key, &s);
        rc = i >= 0 ? try_take(k, &grp[i], s, now_us, &retry_us) : insert(rl, c, g, key, now_us);
    } while (rc == AGAIN);
    if (rc == CP_OK) {
        atomic_fetch_add_explicit(&cnt->allowed, 1, memory_order_relaxed);
        return CP_OK;
    }
    atomic_fetch_add_explicit(&cnt->limited, 1, memory_order_relaxed);
    if (retry_after_ms != NULL)
        *retry_after_ms = (retry_us + 999) / 1000;
    return rc;
}

int ratelimit_stats(const struct ratelimit *rl, enum ratelimit_class c, struct ratelimit_stats *s)
{
    if (rl == NULL || s == NULL || (unsigned)c >= RATELIMIT_CLASS_COUNT)
        return CP_ERR_INVALID;
    struct counters *cnt = &rl->head->cnt[c];
    s->allowed = atomic_load_explicit(&cnt->allowed, memory_order_relaxed);
    s->limited = atomic_load_explicit(&cnt->limited, memory_order_relaxed);
    s->evicted = atomic_load_explicit(&cnt->evicted, memory_order_relaxed);
    s->lock_breaks = atomic_load_explicit(&cnt->lock_breaks, memory_order_relaxed);
    return CP_OK;
}
