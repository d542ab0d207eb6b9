/*
 * holders.h - a worker process's snapshots of who holds a sold-out coupon.
 *
 * Why: after a sell-out the late claims keep coming, usually many times the stock.
 * Each is answered 410, or 409 with the sequence when the user holds one (holders
 * are told first: issue_decide.h). Without a snapshot every such answer costs one
 * Redis round trip for the user's entry in the holder hash. With one, the process
 * reads a sold-out coupon's holders once (HGETALL) and answers from memory until the
 * snapshot expires.
 *
 * A snapshot is only right while nobody can become or stop being a holder, which is
 * the caller's to ensure (issue.c): it is taken only after Redis answered "sold out",
 * kept no longer than the sold-out flag (expires_at_ms), dropped with the coupon's
 * L1 entries on an invalidation, and used only with issue_ack=redis, where no claim
 * is ever rolled back.
 *
 * Design: HOLDERS_SLOTS slots, one coupon each, holding its members sorted by user id
 * (binary search), under one read-write lock; a budget of max_entries members across
 * all slots bounds the memory. One thread per coupon fetches, holding a lease the
 * others see, so a sell-out costs one HGETALL per process rather than one per thread;
 * the lease carries a token, so an invalidation during the fetch discards its result.
 * A coupon with more holders than the budget is marked refused until expires_at_ms:
 * the caller answers it through Redis as before. The owner ids and user ids are
 * opaque integers here; the clock is the caller's (monotonic ms), so tests drive it.
 * Thread-safe.
 */
#ifndef COUPON_HOLDERS_H
#define COUPON_HOLDERS_H

#include <stddef.h>
#include <stdint.h>

#define HOLDERS_SLOTS 8

struct holders;

struct holder {
    int64_t user_id, sequence, issued_at_ms;
};

struct holders_stats {
    uint64_t hits, misses; /* lookups a live snapshot answered: held / not held */
    uint64_t installed, refused, discarded;
    size_t entries; /* members in live snapshots */
};

/* NULL on allocation failure or max_entries 0. */
struct holders *holders_new(size_t max_entries);
void holders_free(struct holders *h);

/* 1: holds it (*seq, *at); 0: does not; CP_ERR_NOT_FOUND: no live snapshot. */
int holders_lookup(struct holders *h, int64_t coupon_id, int64_t user_id, int64_t now_ms,
                   int64_t *seq, int64_t *at);

/*
 * CP_OK: the caller is to fetch the coupon's holders and call holders_put (or
 * holders_abort) with *lease before now_ms + lease_ms, after which another thread
 * may take over. CP_ERR_CONFLICT: another thread holds a lease, a live snapshot or a
 * refusal exists, or every slot holds a live snapshot.
 */
int holders_begin_fetch(struct holders *h, int64_t coupon_id, int64_t now_ms, int64_t lease_ms,
                        uint64_t *lease);

/*
 * Installs members[0..n) (owned from here on, freed on every path; any order, a user
 * listed twice is kept once) as the snapshot of
 * the lease's coupon until expires_at_ms; the budget is what snapshots still live at
 * now_ms leave. members NULL: the coupon has n holders, too many to fetch (n 0: none,
 * an empty snapshot). CP_OK; CP_ERR_LIMIT: over the budget (refused until
 * expires_at_ms); CP_ERR_NOT_FOUND: the lease was lost (expired, or an invalidation).
 */
int holders_put(struct holders *h, uint64_t lease, struct holder *members, size_t n,
                int64_t expires_at_ms, int64_t now_ms);
/* Gives a lease back without a snapshot (the fetch failed). */
void holders_abort(struct holders *h, uint64_t lease);

/* The most members one snapshot may have. */
size_t holders_capacity(const struct holders *h);

/* Drops one coupon's snapshot (and any lease on it) / every snapshot and lease. */
void holders_forget(struct holders *h, int64_t coupon_id);
void holders_clear(struct holders *h);

void holders_get_stats(struct holders *h, int64_t now_ms, struct holders_stats *out);

#endif
