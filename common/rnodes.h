/*
 * rnodes.h - the Redis nodes one client (common/rcli) talks to: their
 * connections and, for a cluster, which node serves which slot.
 *
 * Nodes are numbered 0..rnodes_count()-1: the seeds first (a single server is
 * node 0), then the masters CLUSTER SLOTS or a -MOVED names. A connection is
 * opened on first use (rnodes_conn) through struct rconn_ops; a node that
 * refused one rests for RECONNECT_MS, during which rnodes_conn answers NULL at
 * once. An I/O error (rnodes_failed) closes the connection: the next use
 * reconnects at once, and the map is marked stale.
 *
 * The slot map is loaded on first use and re-loaded when stale (after a
 * -MOVED, a lost connection, a refused connect), from a connected node first,
 * else any node not resting; CLUSTER SLOTS is tried at most every
 * REFRESH_MIN_MS (100 ms), with or without a map, so seeds that refuse or are
 * no cluster cost one attempt per interval, not one per command. Loading it rebuilds
 * the table from the seeds and the masters it names, so nodes that left the
 * cluster do not pile up; the numbers of the nodes may change then and only
 * then (rnodes_refresh). Errors are described in one text (rnodes_errstr),
 * which the client also writes its own into. One thread at a time.
 */
#ifndef COUPON_RNODES_H
#define COUPON_RNODES_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "conf.h"
#include "rconn.h"

struct rnodes;

/* CP_OK and *out for `n` seeds (n >= 1; `cluster`: a slot map is kept too), or CP_ERR_NOMEM. */
int rnodes_new(const struct rconn_ops *ops, const void *opaque, const struct conf_endpoint *seeds,
               size_t n, int cluster, struct rnodes **out);
/* Closes every connection; NULL is a no-op. */
void rnodes_free(struct rnodes *ns);

size_t rnodes_count(const struct rnodes *ns);
const char *rnodes_host(const struct rnodes *ns, int u);
int rnodes_port(const struct rnodes *ns, int u);

/* The connection of node u, opened if needed; NULL when it cannot be (refused now or
 * within RECONNECT_MS). */
void *rnodes_conn(struct rnodes *ns, int u);
/* The connection if open, else NULL (never connects). */
void *rnodes_open_conn(const struct rnodes *ns, int u);
/* An I/O error on node u: closes its connection, marks the map stale. */
void rnodes_failed(struct rnodes *ns, int u, const char *why);
void rnodes_close(struct rnodes *ns, int u);
/* Closes the idle connections their server closed; 1 when it closed any. Each
 * connection is asked (rconn_ops.closed) at most every 100 ms. */
int rnodes_drop_closed(struct rnodes *ns);

/* The node of host:port, added when unknown; -1 when the table is full. */
int rnodes_add(struct rnodes *ns, const char *host, int port);
/* A node for a command without a key: a connected one, else the first that accepts a
 * connection now. */
int rnodes_any(struct rnodes *ns);
/* The node serving `slot` (rnodes_any when the map has none for it). */
int rnodes_slot_node(struct rnodes *ns, int slot);
/* -MOVED: slot is on node u now; the rest of the map is re-loaded at the next refresh. */
void rnodes_moved(struct rnodes *ns, int slot, int u);
void rnodes_stale(struct rnodes *ns);
/* Loads the map if it is missing or stale (see above). Node numbers may change. */
void rnodes_refresh(struct rnodes *ns);

/* A pipeline's I/O on node u: queue formatted commands (connecting first if
 * needed), send them, read their replies in order. CP_OK, or CP_ERR_UNAVAILABLE
 * when the node is unreachable or failed (its connection is then closed: stop
 * using it for this pipeline - a new one would not hold the earlier commands). */
int rnodes_write(struct rnodes *ns, int u, const char *cmd, size_t len);
int rnodes_flush(struct rnodes *ns, int u);
int rnodes_read(struct rnodes *ns, int u, redisReply **reply);
/* One formatted command on node u, synchronously, ASKING first when `ask`. The
 * reply, or NULL (node unreachable, I/O error). */
redisReply *rnodes_send(struct rnodes *ns, int u, int ask, const char *cmd, size_t len);

/* Sleeps ms milliseconds through the connections' table (a fake clock in tests). */
void rnodes_pause(struct rnodes *ns, int ms);

void rnodes_error(struct rnodes *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *rnodes_errstr(const struct rnodes *ns);

#endif
