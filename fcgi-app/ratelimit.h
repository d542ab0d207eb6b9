/*
 * ratelimit.h - per-identity rate limits shared by every worker process of one host.
 *
 * Purpose (OWASP API4/API6): one user hammering issue or redeem attempts gets CP_ERR_LIMIT
 * (429 + Retry-After) while everybody else is unaffected. One token bucket per (class,
 * user id); each class has its own rate and burst (struct ratelimit_config).
 *
 * Memory: ONE anonymous MAP_SHARED mapping, made by the master with ratelimit_new BEFORE it
 * forks and inherited by every worker, so a limit holds per host, not per process. Each
 * class has its own table of `capacity` slots (a power of two), cut into groups of
 * RATELIMIT_WAYS adjacent slots; a user's bucket can only live in the group a keyed hash of
 * its id picks (a bounded probe of 8; the key is random per table, so clients cannot aim
 * their ids at someone else's group). The size is fixed - 16 bytes per slot per class plus
 * 8 bytes per group, 2.1 MiB for 2 classes x 65,536 - whatever the number of users.
 *
 * Algorithm: GCRA, the exact equivalent of a token bucket of rate r and burst b kept as one
 * number, its theoretical arrival time TAT: a take at `now` succeeds iff TAT - now <=
 * (b - 1)/r, and then TAT = max(TAT, now) + 1/r; a refusal changes nothing and its
 * retry-after is when TAT - now falls to (b - 1)/r. Time is in microseconds and 1/r is
 * rounded UP to a whole one, so rounding can only refuse, never grant: over any interval T
 * starting full, at most b + floor(r * T) takes succeed for one user, whatever the threads
 * and processes (every success is one compare-and-swap that moves TAT on by 1/r).
 *
 * Slots: TAT <= now is a full bucket - the same as no entry - so such a slot is free to
 * reuse with nothing lost. When all 8 slots of a group hold non-full buckets, the one with
 * the smallest TAT is evicted: it is the nearest to full (idle longest for its use), so
 * forgetting it gives its owner at most ceil((TAT - now) * r) tokens, and a hot user at
 * its limit - whose TAT is the furthest ahead in its group - is the last to go. (This
 * refines "evict the oldest last update": with GCRA the bucket has no separate last-update
 * time, and TAT orders entries by what their eviction would cost.) A request is never
 * refused because the table is full.
 *
 * Concurrency, across threads and processes alike, with C11 atomics and no pthread mutex:
 * a slot is two 64-bit words, the user id and a state {FREE|READY|BUSY, 18-bit generation,
 * 44-bit TAT}. A take from an existing bucket is lock-free: load the state, check the id,
 * compare-and-swap the state. Giving a slot to a new user is the only two-word update: under
 * the group's lock word the state is CASed to BUSY with the generation bumped, the id is
 * written, and the state CASed to READY; a take that raced with it fails its CAS (the
 * generation differs) and looks again. The lock serialises only these inserts, so a user
 * never gets two buckets in its group; it is a CAS'd word holding the holder's pid and
 * since when (monotonic ms), held for a few dozen instructions. A waiter breaks it when that
 * pid no longer exists or it has been held RATELIMIT_LOCK_STALE_MS, and the next insert
 * reuses a slot left BUSY: a worker SIGKILLed at any instant wedges nobody. (The price, for
 * a holder alive but stalled that long between two stores: one bucket of that group may be
 * reset - at most b extra tokens for one user - never a crash or a hang.) Why not a lock for
 * takes too: a take would then wait on whichever worker was preempted or killed holding it.
 * Why not a process-shared pthread mutex: a SIGKILLed holder leaves it locked (a robust one
 * still blocks, and hands every caller a repair job).
 *
 * Ownership and threads: the process that called ratelimit_new owns the object; children
 * forked after it use their copy of the handle, and every process calls ratelimit_free once
 * when done (the memory goes with the last mapping). ratelimit_take and ratelimit_stats are
 * safe from any number of threads in any number of processes; ratelimit_new and
 * ratelimit_free must not run concurrently with other calls on the same handle.
 */
#ifndef COUPON_RATELIMIT_H
#define COUPON_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WAYS             8        /* slots a user's bucket may occupy (its group) */
#define RATELIMIT_CAPACITY_DEFAULT 65536    /* slots per class */
#define RATELIMIT_CAPACITY_MAX     16777216 /* slots per class (256 MiB per class) */
#define RATELIMIT_RATE_MAX         1e6      /* tokens per second (1/r >= 1 us) */
#define RATELIMIT_WINDOW_MAX_S     1000000  /* burst / rate: time to refill from empty */
#define RATELIMIT_LOCK_STALE_MS    200      /* a group lock held longer is broken */

enum ratelimit_class {
    RATELIMIT_ISSUE,  /* POST .../issue: claiming a coupon */
    RATELIMIT_REDEEM, /* redemption attempts (codes are guessable by brute force) */
    RATELIMIT_CLASS_COUNT
};

struct ratelimit_class_config {
    double rate_per_s; /* tokens per second, 0 < rate <= RATELIMIT_RATE_MAX; 0 = unlimited */
    uint32_t burst;    /* bucket size, >= 1 (ignored when unlimited) */
};

struct ratelimit_config {
    struct ratelimit_class_config cls[RATELIMIT_CLASS_COUNT];
};

/* Counts since ratelimit_new, summed over every process. */
struct ratelimit_stats {
    uint64_t allowed;     /* takes that got a token (unlimited class included) */
    uint64_t limited;     /* takes refused with CP_ERR_LIMIT */
    uint64_t evicted;     /* non-full buckets forgotten to make room (table too small) */
    uint64_t lock_breaks; /* group locks taken from a dead or stalled holder */
};

struct ratelimit;

/* CP_OK when cfg and capacity are acceptable to ratelimit_new, else CP_ERR_INVALID with the
 * reason in errbuf (for the configuration loader's message). */
int ratelimit_config_check(const struct ratelimit_config *cfg, size_t capacity, char *errbuf,
                           size_t errlen);

/*
 * Maps and zeroes the shared table: `capacity` slots per class, a power of two from
 * RATELIMIT_WAYS to RATELIMIT_CAPACITY_MAX. Call before forking the workers. NULL with
 * errno EINVAL (see ratelimit_config_check), ENOMEM or mmap's errno on failure.
 */
struct ratelimit *ratelimit_new(const struct ratelimit_config *cfg, size_t capacity);
/* Unmaps this process's view and frees its handle; NULL is a no-op. */
void ratelimit_free(struct ratelimit *rl);

/*
 * Takes one token from the bucket of (c, user_id) at now_ms (CLOCK_MONOTONIC ms, the same
 * clock in every process: clock_mono_ms(); tests pass their own). CP_OK: taken
 * (*retry_after_ms = 0). CP_ERR_LIMIT: the bucket is empty and *retry_after_ms (>= 1) is
 * when the next token is due. CP_ERR_INVALID: rl NULL or c out of range. retry_after_ms may
 * be NULL. Lock-free on an existing bucket; a new bucket waits for its group's lock (held
 * for a few dozen instructions; broken from a dead holder, or after RATELIMIT_LOCK_STALE_MS).
 */
int ratelimit_take(struct ratelimit *rl, enum ratelimit_class c, int64_t user_id, int64_t now_ms,
                   int64_t *retry_after_ms);

/* Fills *s with class c's counters (relaxed reads, for /metrics). CP_ERR_INVALID on a bad
 * argument. */
int ratelimit_stats(const struct ratelimit *rl, enum ratelimit_class c, struct ratelimit_stats *s);

/* "issue", "redeem": the class label of the metrics; NULL out of range. */
const char *ratelimit_class_name(enum ratelimit_class c);

#endif
