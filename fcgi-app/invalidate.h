/*
 * invalidate.h - keeps every worker process's L1 in step with admin changes.
 *
 * A thread per worker process SUBSCRIBEs to the Redis channel coupon:invalidate
 * (message: a coupon id in decimal) on a connection of its own and drops that
 * coupon's L1 entries (document, live stock, issue fast-path flag) and its holder
 * snapshot the moment a message arrives, so a change is visible through every
 * process well within a second. Pub/sub delivers at most once and only while subscribed: after every
 * (re)connect the whole L1 and every holder snapshot are cleared, because messages published while the
 * thread was disconnected are lost. While Redis is unreachable entries simply
 * expire by their TTL (l1_ttl_ms; the fast-path flags after 1 s).
 *
 * On a Redis Cluster classic PUBLISH is broadcast to every node (rcli.h says why
 * not sharded pub/sub), so the thread subscribes on one node and, when that node
 * fails, moves on to the next of the seeds and known nodes (rcli_connect_next);
 * the L1 is cleared after each move as after any reconnect.
 */
#ifndef COUPON_INVALIDATE_H
#define COUPON_INVALIDATE_H

#include "app.h"

struct invalidator;

/* Starts the subscriber thread; NULL if it could not be started. */
struct invalidator *invalidator_start(struct app *app);
/* Stops and joins it (bounded by the Redis read timeout); NULL is a no-op. */
void invalidator_stop(struct invalidator *inv);

#endif
