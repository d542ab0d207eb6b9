/*
 * persist.h - one batch of coupon.issue events into MariaDB, in one transaction.
 *
 * Events are grouped by coupon. Per coupon: unknown coupons are reported (the
 * caller sends those events to the DLQ); rows that already exist for
 * (coupon_id, user_id) are reported as duplicates (a redelivery, or the same
 * issuance produced twice); the rest are inserted in chunks of at most
 * PERSIST_CHUNK_ROWS with multi-row prepared INSERTs (issue_insert.h: each row
 * with its code and usable_until), their new ids read back, coupon.issued_quantity
 * grows by exactly the number of rows inserted, and one coupon.issued row per new
 * row goes into event_outbox (issued_outbox.h; published later by relay.c, so the
 * announcement commits with the row) - all before one COMMIT (db_tx). When the
 * server hands a multi-row INSERT consecutive ids (idalloc.h), the batch is first
 * tried optimistically: no look-up before the INSERT, ids from LAST_INSERT_ID on;
 * a duplicate key rolls that attempt back and the batch runs again the checking
 * way, so a redelivery costs one extra transaction and a first delivery two
 * statements fewer per chunk. A failure anywhere rolls the whole transaction back
 * and returns CP_ERR_UNAVAILABLE: the caller retries the same batch later, and
 * since nothing was committed the retry is exact. A deadlock runs the transaction
 * again (db_tx) from the same outcomes.
 *
 * Rows of one (coupon, user) key always arrive through one partition, so two
 * consumers of the group never insert the same key concurrently; during a
 * rebalance overlap a duplicate-key error just fails the transaction and the
 * retry sees the row as existing. One coupon's events are on every partition,
 * though: each transaction first locks its coupons' rows FOR UPDATE in ascending
 * id order, so consumers persisting one coupon take turns instead of deadlocking.
 * Uses the caller's MariaDB client (common/db) on the caller's thread.
 */
#ifndef COUPON_PERSIST_H
#define COUPON_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "coupon_cache.h"
#include "db.h"
#include "event.h"

#define PERSIST_CHUNK_ROWS 500 /* rows per multi-row statement */

enum persist_outcome { PERSIST_NEW, PERSIST_DUPLICATE, PERSIST_UNKNOWN_COUPON };

struct persist_item {
    struct issue_event ev;        /* in */
    enum persist_outcome outcome; /* out */
    int64_t row_id;               /* out, PERSIST_NEW only */
};

/* One coupon's part of a batch that one statement writes: the parts of persist
 * (issue_insert.h, issued_outbox.h) work on these. */
struct persist_chunk {
    int64_t coupon_id;
    struct coupon_validity validity;
    struct persist_item *items; /* the batch */
    const size_t *idx;          /* this chunk's items (distinct users), by index into items */
    size_t n;                   /* at most PERSIST_CHUNK_ROWS */
    int64_t persisted_at_ms;
};

struct persist_stats {
    uint64_t inserted, duplicates, unknown, db_errors;
    uint64_t redelivered_batches; /* optimistic insert hit a duplicate: batch run again */
};

struct persist;

/* db and conf must outlive it. NULL: out of memory. */
struct persist *persist_new(const struct cp_conf *conf, struct db *db);
void persist_free(struct persist *p);

/*
 * Persists items[0..n) in one transaction, filling outcome and row_id.
 * *persisted_at_ms is the persisted_at written for the new rows.
 * CP_OK, or CP_ERR_UNAVAILABLE (nothing committed; retry later).
 */
int persist_batch(struct persist *p, struct persist_item *items, size_t n,
                  int64_t *persisted_at_ms);

void persist_get_stats(const struct persist *p, struct persist_stats *out);

#endif
