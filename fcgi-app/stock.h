/*
 * stock.h - the host's view of each coupon's issued count (HLEN coupon:{ID}:users), shared
 * by every worker process, so that the stock a reader sees is never older than
 * STOCK_AGE_MAX_MS and never goes back for readers of one host.
 *
 * Why shared: with one cache per process, two reads in a row landing on two workers saw
 * snapshots of different ages, and the stock went up again (13 times in 15 rounds). Here
 * every answer is either the table's count for the coupon or a fresh Redis read that went
 * into the table before it was answered, and the table's count only grows.
 * A fresh read is answered as read: Redis is linearizable, so it is at least anything
 * answered before the request began; the table makes later hits at least it too.
 *
 * Memory: ONE anonymous MAP_SHARED mapping, made by the master with stock_new BEFORE it
 * forks (as ratelimit.h): `capacity` slots of 32 bytes in groups of STOCK_WAYS; a coupon
 * lives only in the group its id hashes to. Bounded whatever the number of coupons.
 *
 * An entry is {state: FREE|READY|BUSY, 14-bit generation, 48-bit count; coupon id; at:
 * generation, "fresh" flag, 48-bit monotonic ms}. `at` is when the newest read that went
 * into the count was SENT to Redis - not when it was cached - so a hit's value reflects
 * Redis as of at most ttl_ms ago, and ttl_ms leaves the request's own time inside the
 * documented bound (STOCK_TTL_MS).
 *
 * Invariants (issue_ack=redis, where Redis' count only grows; fresh = flag set and at
 * younger than ttl_ms):
 * - count and at only grow within a generation; the count is published before at, so a
 *   fresh at of S means count >= Redis' count at S;
 * - a new entry is BORN (time taken after its id is visible) not fresh; only a read sent
 *   after its birth (in a later millisecond: the clock's grain) can make it fresh. So an entry never answers less than a read
 *   finished before it existed: eviction, a drop or a lost race never makes the stock go
 *   back.
 * - stock_put raises the entry to n (or drops it, below), or finds - in a scan made after
 *   the read - no entry for the coupon: any later entry is born after the read.
 * A read lower than the entry drops it (the read is answered; the next reads come from
 * Redis until a new entry is born). With issue_ack=kafka that is a rollback (a claim whose
 * event Kafka refused is taken back): the stock goes up by the rolled-back claims, which
 * is the truth, seen within the same bound; between rollbacks it never goes back. With
 * issue_ack=redis it is only two concurrent reads answered by Redis in the other order
 * (either answer is right for concurrent requests); a drop costs one more Redis read. So
 * the table needs no issue_ack, and a reload that changes it needs no new table.
 *
 * Concurrency, across threads and processes, with C11 atomics only: a hit is a few loads
 * (state, id, at, state again: unchanged means consistent); a publish is CAS on the state
 * then on at; an insert CASes the state to BUSY (generation bumped), writes id, birth, then
 * READY, and gives way if another slot of its group shows the same id (a Dekker check:
 * of two racing inserts at least one sees the other). A worker SIGKILLed while BUSY leaves
 * a slot that is reused after STOCK_BUSY_STALE_MS; nobody ever waits on another process
 * beyond that (only for an insert of the same coupon in flight, a few instructions).
 *
 * Ownership and threads: the process that called stock_new owns the handle; forked
 * children use their copy; each process calls stock_free once. stock_get, stock_put,
 * stock_forget and stock_now are safe from any thread of any process.
 */
#ifndef COUPON_STOCK_H
#define COUPON_STOCK_H

#include <stddef.h>
#include <stdint.h>

/* The promise (README, openapi): the stock a read answers is never older than this. */
#define STOCK_AGE_MAX_MS       1000
/* How long a value read from Redis answers, counted from when its read was sent. The
 * request's time after the table look-up (formatting, FastCGI, nginx) must fit in the
 * rest: measured under test_read_admin's claim-and-read rounds at a few ms worst case. */
#define STOCK_TTL_MS           900
#define STOCK_WAYS             4
#define STOCK_CAPACITY_DEFAULT 4096
#define STOCK_CAPACITY_MAX     (1 << 20)
/* A slot left BUSY this long belongs to a dead (or stalled) inserter and is taken back. */
#define STOCK_BUSY_STALE_MS    1000

struct stock;

struct stock_config {
    size_t capacity; /* slots: a power of two in STOCK_WAYS..STOCK_CAPACITY_MAX */
    int64_t ttl_ms;  /* 1..STOCK_AGE_MAX_MS */
    /* Monotonic ms, the same for every process of the host (NULL: clock_mono_ms). */
    int64_t (*clock)(void *arg);
    void *clock_arg;
};

/* Maps the shared table (zeroed: every slot FREE). NULL with errno set (EINVAL for a bad
 * configuration, else mmap's). */
struct stock *stock_new(const struct stock_config *cfg);
/* Unmaps this process's view; NULL: no-op. */
void stock_free(struct stock *st);

/* The table's clock: take it just before sending the Redis read given to stock_put. */
int64_t stock_now(const struct stock *st);

/* The hot path: CP_OK and *issued when the coupon has a fresh entry; CP_ERR_NOT_FOUND
 * otherwise (then read Redis and stock_put). No syscall, no lock. */
int stock_get(struct stock *st, int64_t coupon_id, int64_t *issued);

/* After a Redis read of the issued count n sent at sent_ms (stock_now), before n is
 * answered: no later hit on this host answers less than n (until a rollback). */
void stock_put(struct stock *st, int64_t coupon_id, int64_t n, int64_t sent_ms);

/* Drops the coupon's entry (an admin changed it); the next read goes to Redis. */
void stock_forget(struct stock *st, int64_t coupon_id);

#endif
