/*
 * relay.h - the outbox relay of coupon-consumer: moves the rows of MariaDB's
 * event_outbox to Kafka, in id order, at least once, and never loses one.
 *
 * The rows are written in the transaction of the state change they announce
 * (persist.c: coupon.issued with the batch's rows; fcgi-app/redemption_store.c:
 * coupon.redemption with a redemption or its cancellation), so an event exists
 * exactly when its change committed. The relay, on its own thread with its own
 * MariaDB connection and idempotent producer (acks=all):
 *   1. holds the MariaDB named lock "coupon_outbox_relay" (GET_LOCK): one relay
 *      publishes at a time however many consumers run, so per-coupon order holds;
 *      a relay that dies releases it with its connection and another takes over;
 *   2. reads up to relay_batch_max rows ORDER BY id (always from the oldest left,
 *      so a row whose transaction committed late is never skipped);
 *   3. produces each with its key (the coupon id), the row id spliced in as
 *      "eventId" (event_stamp) and as the header "event-id", and waits until the
 *      broker acknowledged every one, producing failed ones again;
 *   4. deletes exactly those ids (IN lists, never a range: a row committed
 *      meanwhile inside the range has not been published).
 * A crash between 3 and 4 publishes those rows again after the restart: at least
 * once, with the event id for consumers to dedupe. Order: rows are produced in id
 * order with the idempotent producer, so one coupon's events (one key, one
 * partition) reach the broker in id order, which for one issuance is the order of
 * its changes (each change waits for the row lock of the one before it).
 *
 * Test hook (tests/integration/test_redemption.py): kill_after_batches > 0 makes
 * the relay raise SIGKILL on its own process after that many batches were
 * acknowledged and before they are deleted.
 *
 * relay_start/relay_stop from the consumer's main thread only; the stats are
 * read with atomics from any thread.
 */
#ifndef COUPON_RELAY_H
#define COUPON_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct relay;

struct relay_stats {
    uint64_t published; /* events acknowledged by the broker */
    uint64_t deleted;   /* outbox rows deleted after their acknowledgement */
    uint64_t batches;
    uint64_t failures; /* deliveries that failed and were produced again */
    int leader;        /* holds the relay lock now */
};

/* Starts the relay thread. NULL with errbuf filled on failure. */
struct relay *relay_start(const struct cp_conf *conf, int kill_after_batches, char *errbuf,
                          size_t errlen);

/* Stops the thread (it finishes or abandons its batch: rows not deleted are published
 * again later) and frees everything. NULL is a no-op. */
void relay_stop(struct relay *r);

void relay_get_stats(struct relay *r, struct relay_stats *out);

#endif
