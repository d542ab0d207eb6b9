/*
 * checkout_apply.h - the applier of coupon-consumer: moves the checkout changes
 * lua/redeem.lua decided in Redis (coupon:{ID}:rpending) into MariaDB, exactly
 * once and in each issuance's version order, and lets holds nobody released lapse.
 *
 * One applier works at a time however many consumers run (the MariaDB named lock
 * "coupon_checkout_apply", leader.h). On its own thread, Redis client and MariaDB
 * connection it repeats:
 *   1. which coupons: the members it SPOPs from RKEY_CHECKOUT_DIRTY (coupon-fcgi adds
 *      a coupon after each change), the coupons it left changes waiting in (every
 *      CHECKOUT_RETRY_MS), and once per CHECKOUT_FULL_PASS_MS every coupon of the
 *      last CHECKOUT_COUPONS_MAX created (for a coupon-fcgi that died between its
 *      script and the SADD, and for lapsing holds: redeem.lua's sweep runs on each);
 *   2. per coupon: HSCAN rpending (at most CHECKOUT_BATCH_MAX records), plan them
 *      (checkout_plan.h), and in one transaction (checkout_store.h) lock the issuances' rows
 *      (SELECT ... FOR UPDATE), apply each change due (UPDATE coupon_issue ...
 *      WHERE checkout_version = version - 1) with its coupon.redemption outbox row
 *      (consumer/relay.c publishes it), commit;
 *   3. HDEL exactly the records committed (or found applied before); a record whose
 *      issuance MariaDB does not have yet (its coupon.issue event is still on the
 *      way) waits for a later round.
 * A crash between 2 and 3 leaves records MariaDB has: the plan finds their versions
 * applied and drops them (at most once more work, never twice applied). Everything
 * waits, nothing is lost, while MariaDB or Redis is down: the records stay in Redis
 * (bounded by outbox_max_pending per coupon: redeem.lua refuses new changes beyond).
 *
 * checkout_apply_start/stop from the consumer's main thread only; the stats are
 * read with atomics from any thread.
 */
#ifndef COUPON_CHECKOUT_APPLY_H
#define COUPON_CHECKOUT_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define CHECKOUT_BATCH_MAX    2048  /* records of one coupon per transaction */
#define CHECKOUT_RETRY_MS     200   /* a coupon with waiting records comes back after */
#define CHECKOUT_FULL_PASS_MS 1000  /* every known coupon: sweep holds, look for records */
#define CHECKOUT_COUPONS_MAX  10000 /* the most recent coupons a full pass covers */
#define CHECKOUT_DIRTY_TAKE   256   /* coupons taken from the dirty set per round */

struct checkout_apply;

struct checkout_apply_stats {
    uint64_t applied;    /* changes written to MariaDB */
    uint64_t duplicates; /* records found applied already (dropped) */
    uint64_t waiting;    /* records left for later: issuance not yet persisted */
    uint64_t lapsed;     /* holds the sweep let lapse */
    uint64_t failures;   /* rounds that failed on MariaDB or Redis */
    int leader;          /* holds the applier lock now */
};

/* Starts the thread. NULL with errbuf filled on failure. */
struct checkout_apply *checkout_apply_start(const struct cp_conf *conf, char *errbuf,
                                            size_t errlen);

/* Stops the thread and frees everything; NULL is a no-op. Records not applied stay in
 * Redis for the next applier. */
void checkout_apply_stop(struct checkout_apply *a);

void checkout_apply_get_stats(struct checkout_apply *a, struct checkout_apply_stats *out);

#endif
