/*
 * downstream.h - what one persisted batch of coupon.issue events publishes
 * directly: a coupon.issue.dlq entry (with a `reason` header) for every poison
 * message and every event of a coupon that does not exist. coupon.issued is not
 * published here: persist.c writes it to the event_outbox table in the batch's
 * own transaction and the relay (relay.c) publishes it.
 *
 * downstream_queue() only queues, through the outbox; the caller flushes and
 * commits the batch's offsets only when every message was queued and then
 * acknowledged. A message that cannot be queued fails the whole call (nothing
 * is skipped with a log line): committing the offsets anyway would lose that
 * DLQ entry or downstream event for good. One thread (the consumer's loop).
 */
#ifndef COUPON_DOWNSTREAM_H
#define COUPON_DOWNSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "outbox.h"
#include "persist.h"

struct downstream_counts {
    uint64_t inserted; /* rows the batch inserted (their coupon.issued: event_outbox) */
    uint64_t dlq;      /* DLQ entries queued */
};

/*
 * Queues the downstream messages of a batch: msgs[0..nmsgs) are its Kafka
 * messages, reasons[i] non-NULL where msgs[i] is poison; items[0..n) the
 * decoded events with their persist outcome. CP_OK with *counts filled, or the
 * first error (an outbox_add error, or CP_ERR_INTERNAL when an event cannot be
 * encoded); on an error part
 * of the batch may be queued already: the caller discards it (outbox_discard)
 * and must not commit the batch.
 */
int downstream_queue(struct outbox *o, const struct cp_conf *conf, rd_kafka_message_t *const *msgs,
                     size_t nmsgs, const char *const *reasons, const struct persist_item *items,
                     size_t n, struct downstream_counts *counts);

#endif
