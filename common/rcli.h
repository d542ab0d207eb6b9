/*
 * rcli.h - the Redis client of one thread: one server, or a Redis Cluster.
 *
 * hiredis 0.14 knows one connection to one server. An rcli is what a thread
 * talks to instead, whatever the deployment:
 *   - single server (redis_cluster empty): redis_host:redis_port. Every call
 *     is the hiredis call it replaces (redisvCommand, redisvAppendCommand,
 *     redisGetReply) on the one connection: nothing is parsed or routed, so
 *     the issue path costs what it did before this module.
 *   - cluster (redis_cluster = host:port,...): one connection per node,
 *     commands routed by the slot of their key. The key is argv[1], or for
 *     EVAL/EVALSHA argv[3] when numkeys > 0; commands without a key (PING,
 *     PUBLISH, SCRIPT, WAIT, MULTI, EXEC, ...) go with the keyed command of
 *     their pipeline (below) or, alone, to any reachable node. The slot is the
 *     cluster spec's CRC16 (XMODEM) of the key's hash tag - the text of its
 *     first non-empty {...}, else the whole key - mod 16384; every key of one
 *     coupon carries {ID} (rkey.h), so a coupon lives in one slot. The slot map
 *     comes from CLUSTER SLOTS, asked of any reachable seed or known node on
 *     first use and again after a MOVED, a lost connection or a refused
 *     connect (at most every 100 ms, rnodes.c): a failover is re-discovered that
 *     way. -MOVED updates the slot and retries on the new node; -ASK sends
 *     ASKING and the command to the importing node without touching the map;
 *     at most 5 redirects, then the last -MOVED/-ASK is the reply. -TRYAGAIN
 *     (a multi-key command - issue.lua's five keys, some of which may not
 *     exist - on a slot being migrated: the migrating node answers so while it
 *     has some of the keys, the importing node until the slot is its own)
 *     means Redis ran nothing: the command goes again
 *     from the slot map (-ASK while the migration lasts, -MOVED after it), at
 *     most 5 times, 10 to 100 ms apart (250 ms in all, paused through
 *     rconn_ops' sleep_ms), then the -TRYAGAIN is the reply.
 *
 * Connections are opened lazily (rcli_open does no I/O) with the configured
 * time-outs and keepalive (rconn). A node that refused a connect is not tried
 * again for 250 ms (rnodes.c): until then a command for it returns NULL at once,
 * so a dead node costs one bounded attempt, not one per request. An I/O error
 * drops that node's connection (hiredis cannot resynchronise one) and returns
 * NULL; CLUSTERDOWN, LOADING, a TRYAGAIN that outlasted its re-sends and the
 * like are error replies, which callers treat as "unavailable" like any
 * unexpected reply.
 *
 * Pipelines (rcli_append*, then one rcli_get_reply per command, in order):
 * single server - straight onto hiredis. Cluster - the formatted commands are
 * queued; the first rcli_get_reply writes every node's commands, then reads
 * every node's replies (one round trip to each node, all nodes in parallel),
 * and hands the replies out in the order appended. A keyless command goes to
 * the node of the keyed command before it (EXEC, WAIT: the write WAIT must
 * cover is on that connection), or after it when none is before; everything
 * from MULTI to EXEC/DISCARD goes to the node of the transaction's first key,
 * so the transaction is never split (a CROSSSLOT key inside it aborts it).
 * A -MOVED/-ASK/-TRYAGAIN reply inside a pipeline re-sends that command alone
 * to the right node (its formatted bytes are kept) and then the keyless
 * commands that followed it there (a WAIT must follow its write to the node
 * that ran it);
 * inside MULTI/EXEC nothing is re-sent: EXEC answers EXECABORT and the caller
 * retries. Read every reply of a pipeline before the next command, or call
 * rcli_reset.
 *
 * Pub/sub: classic PUBLISH is broadcast over the cluster bus to every node, so
 * a publisher may use any node and a subscriber hears everything on any node
 * (rcli_connect_next rotates a subscriber over the nodes when its node
 * fails). Sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) would keep messages
 * in the channel's shard, but then a subscriber must follow that slot's
 * master through failovers and reshards and is unsubscribed by each; our one
 * channel carries a message per admin change, so the bus traffic it saves is
 * nothing next to the complexity it adds.
 *
 * A cluster's node I/O goes through struct rconn_ops, so the routing is
 * unit-tested over fake connections and no server (tests/unit/test_rcli.c);
 * the real table (rconn_hiredis_ops) is hiredis. The key space itself is
 * common/rslot. An rcli, its connections and every reply it hands out belong
 * to one thread at a time.
 */
#ifndef COUPON_RCLI_H
#define COUPON_RCLI_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "conf.h"
#include "rconn.h"

struct rcli;

/*
 * A client for the configured Redis: single server, or the cluster of the
 * redis_cluster seeds. No I/O. CP_OK and *out, or CP_ERR_NOMEM / CP_ERR_INVALID
 * (a seed list conf did not check) with the reason in errbuf. `conf` must
 * outlive the client.
 */
int rcli_open(const struct cp_conf *conf, struct rcli **out, char *errbuf, size_t errlen);
/* The same in cluster mode over other connections (unit tests: fakes); CP_ERR_INVALID
 * when conf names no seeds - the single-server path is hiredis itself. */
int rcli_open_cluster(const struct cp_conf *conf, const struct rconn_ops *ops, const void *opaque,
                      struct rcli **out, char *errbuf, size_t errlen);
/* Closes every connection and frees the client; NULL is a no-op. */
void rcli_free(struct rcli *c);

/*
 * One command, hiredis' format (%s, %b, %d, ...). The reply (the caller frees
 * it with freeReplyObject), or NULL: I/O error, node unreachable or in its
 * back-off (rcli_errstr says which).
 */
redisReply *rcli_command(struct rcli *c, const char *fmt, ...);
redisReply *rcli_command_argv(struct rcli *c, int argc, const char **argv, const size_t *argvlen);

/* Queues a command of a pipeline: CP_OK, CP_ERR_UNAVAILABLE (single server
 * unreachable), CP_ERR_NOMEM or CP_ERR_INVALID (a format hiredis refused). */
int rcli_append(struct rcli *c, const char *fmt, ...);
int rcli_append_argv(struct rcli *c, int argc, const char **argv, const size_t *argvlen);
/* The next reply of the pipeline, in the order appended: CP_OK and *out (the
 * caller frees it), CP_ERR_UNAVAILABLE (its node failed; NULL *out), or
 * CP_ERR_INTERNAL when no reply is outstanding. */
int rcli_get_reply(struct rcli *c, redisReply **out);

/* Before a request: closes every idle connection its server closed (a restart),
 * so no command is sent on a dead socket. One poll(2) per open connection, at most
 * every 100 ms each (a restart takes longer; a connection in use meanwhile fails
 * its own command, which closes it). */
void rcli_drop_closed(struct rcli *c);
/*
 * After a failure the caller does not account for (an error or unexpected
 * reply, a pipeline it stops reading): forgets queued commands and unread
 * replies and re-discovers the slot map on next use. Single server: closes the
 * connection, so the next command reconnects (and re-resolves redis_host, which
 * follows a failover behind a name). Cluster: every connection has had all its
 * replies read and stays open - a failing node must not cost the other nodes'
 * connections of every thread.
 */
void rcli_reset(struct rcli *c);
/* Text of the last failure ("" before any). */
const char *rcli_errstr(const struct rcli *c);

/*
 * A connection of the caller's own for a subscriber (SUBSCRIBE makes it useless
 * for anything else): single server - the server; cluster - the next node of the
 * seeds and the masters CLUSTER SLOTS names now (asked first, at most every
 * 100 ms), in turn, so a subscriber whose node failed moves to another.
 * Always hiredis. CP_OK and *out (redisFree it), or CP_ERR_UNAVAILABLE
 * with the reason in errbuf.
 */
int rcli_connect_next(struct rcli *c, redisContext **out, char *errbuf, size_t errlen);

#endif
