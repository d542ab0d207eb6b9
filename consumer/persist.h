/*
 * persist.h - one batch of coupon.issue events into MariaDB, in one transaction.
 *
 * Events are grouped by coupon. Per coupon: unknown coupons are reported (the
 * caller sends those events to the DLQ); rows that already exist for
 * (coupon_id, user_id) are reported as duplicates (a redelivery, or the same
 * issuance produced twice); the rest are inserted with multi-row prepared
 * INSERTs, their new ids read back, and coupon.issued_quantity grows by exactly
 * the number of rows inserted, and one coupon.issued row per new row goes into
 * event_outbox (published later by relay.c, so the announcement commits with the
 * row) - all before one COMMIT. Each new row also gets its code (issuecode.h,
 * under code_secret) and its usable_until (MIN(issued_at + coupon.usable_days,
 * coupon.usable_until), fixed once here). When the server hands a
 * multi-row INSERT consecutive ids (innodb_autoinc_lock_mode 0 or 1, increment
 * 1, asked once per connection), the batch is first tried optimistically: no
 * look-up before the INSERT, ids from LAST_INSERT_ID on; a duplicate key rolls
 * that attempt back and the batch runs again the checking way, so a redelivery
 * costs one extra transaction and a first delivery two statements fewer per
 * 500 rows. A failure anywhere rolls
 * the whole transaction back and returns CP_ERR_UNAVAILABLE: the caller retries
 * the same batch later, and since nothing was committed the retry is exact.
 *
 * Rows of one (coupon, user) key always arrive through one partition, so two
 * consumers of the group never insert the same key concurrently; during a
 * rebalance overlap a duplicate-key error just fails the transaction and the
 * retry sees the row as existing. One coupon's events are on every partition,
 * though: each transaction first locks its coupons' rows FOR UPDATE in ascending
 * id order, so consumers persisting one coupon take turns instead of deadlocking.
 * Owns its MariaDB connection; one thread.
 */
#ifndef COUPON_PERSIST_H
#define COUPON_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "event.h"

enum persist_outcome { PERSIST_NEW, PERSIST_DUPLICATE, PERSIST_UNKNOWN_COUPON };

struct persist_item {
    struct issue_event ev;        /* in */
    enum persist_outcome outcome; /* out */
    int64_t row_id;               /* out, PERSIST_NEW only */
};

struct persist_stats {
    uint64_t inserted, duplicates, unknown, db_errors;
    uint64_t redelivered_batches; /* optimistic insert hit a duplicate: batch run again */
};

struct persist;

struct persist *persist_new(const struct cp_conf *conf);
void persist_free(struct persist *p);

/*
 * Persists items[0..n) in one transaction, filling outcome and row_id.
 * *persisted_at_ms is the persisted_at written for the new rows.
 * CP_OK, or CP_ERR_UNAVAILABLE (nothing committed; retry later).
 */
int persist_batch(struct persist *p, struct persist_item *items, size_t n,
                  int64_t *persisted_at_ms);

/* Whether a row exists for (coupon, user): 1, 0, or CP_ERR_UNAVAILABLE. */
int persist_row_exists(struct persist *p, int64_t coupon_id, int64_t user_id);

/* Ids of coupons whose window ended less than a week ago (or not yet), newest
 * first, at most cap. */
int persist_recent_coupons(struct persist *p, int64_t *ids, size_t cap, size_t *n);

void persist_get_stats(const struct persist *p, struct persist_stats *out);

#endif
