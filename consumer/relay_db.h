/*
 * relay_db.h - the relay's side of MariaDB (relay.h): the relay lock, the
 * oldest event_outbox rows, and the deletion of exactly the rows published.
 *
 * Everything runs on the relay's one client (common/db): the named lock
 * "coupon_outbox_relay" (leader.h) lives with that connection, so a lost
 * connection loses the lock too, and relay_db_lead takes it again on the next
 * one. Rows are read ORDER BY id, at most the
 * capacity given, each stamped with its id (event_stamp) for Kafka; a row
 * whose columns do not fit, or whose payload is not a JSON object, is a bug of
 * its writer: logged and left for an operator, with every later row behind it
 * (visible, never published cut short). Deletes name the ids (IN lists of at
 * most RELAY_DELETE_CHUNK, autocommit), never a range: a row committed
 * meanwhile inside the range has not been published. One thread.
 */
#ifndef COUPON_RELAY_DB_H
#define COUPON_RELAY_DB_H

#include <stddef.h>
#include <stdint.h>

#include "cp_limits.h"
#include "db.h"

#define RELAY_DELETE_CHUNK 500                          /* ids per DELETE ... IN (...) */
#define RELAY_STAMPED_MAX  (CP_OUTBOX_PAYLOAD_MAX + 32) /* payload + "eventId":N, */

struct relay_row {
    int64_t id;
    char topic[CP_OUTBOX_TOPIC_MAX + 1];
    char key[CP_OUTBOX_KEY_MAX];
    size_t klen;
    char value[RELAY_STAMPED_MAX];
    size_t vlen;
    int state; /* relay.c: -1 to send, 0 in flight, 1 acknowledged */
};

struct relay_db;

/* Over db, which must outlive it. NULL: out of memory. */
struct relay_db *relay_db_new(struct db *db);
void relay_db_free(struct relay_db *r);

/* Takes the relay lock unless this connection holds it: CP_OK (leader), CP_ERR_CONFLICT
 * (another relay holds it) or CP_ERR_UNAVAILABLE. */
int relay_db_lead(struct relay_db *r);
/* 1 while holding the lock, as of the last call. */
int relay_db_leading(const struct relay_db *r);

/* The oldest rows into rows[0..*n), at most cap, state -1: CP_OK or CP_ERR_UNAVAILABLE. */
int relay_db_fetch(struct relay_db *r, struct relay_row *rows, size_t cap, size_t *n);

/* Deletes exactly the ids of rows[0..n); *deleted how many the server deleted (fewer
 * when another relay took over meanwhile). CP_OK or CP_ERR_UNAVAILABLE. */
int relay_db_delete(struct relay_db *r, const struct relay_row *rows, size_t n, uint64_t *deleted);

#endif
