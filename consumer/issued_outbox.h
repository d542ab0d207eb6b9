/*
 * issued_outbox.h - the coupon.issued announcements of one chunk (persist.h)
 * into event_outbox, in persist's transaction: the announcement commits with
 * its row, or neither does; relay.c publishes them later.
 *
 * One multi-row INSERT per chunk, rows in the order the chunk's rows were
 * inserted (id order), each with the topic (kafka_issued_topic), the key "<couponId>" and
 * the event (event_encode_issued: the row's id and persisted_at). The scratch
 * for PERSIST_CHUNK_ROWS rows is allocated with the object. One thread.
 */
#ifndef COUPON_ISSUED_OUTBOX_H
#define COUPON_ISSUED_OUTBOX_H

#include "db.h"
#include "persist.h"

struct issued_outbox;

/* NULL: out of memory. */
struct issued_outbox *issued_outbox_new(void);
void issued_outbox_free(struct issued_outbox *o);

/* One row per PERSIST_NEW item of the chunk (row_id set): CP_OK, CP_ERR_INTERNAL (an
 * event or name beyond its limit; the server counted other rows than sent) or db.h's
 * codes. */
int issued_outbox_write(struct issued_outbox *o, struct db *db, const struct persist_chunk *c,
                        const char *topic);

#endif
