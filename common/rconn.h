/*
 * rconn.h - Redis connections for every program (hiredis, synchronous), and
 * the table of operations a client performs on one.
 *
 * rconn_connect_to() opens a TCP connection to one server with the configured
 * connect and command timeouts and TCP keepalive. A redisContext is used by
 * one thread at a time and is unusable after an I/O error (a NULL reply or
 * ctx->err set): it is then freed and a new one opened. Programs do not keep
 * these themselves: common/rcli owns the connections of a thread (one server,
 * or every node of a cluster) and reaches a cluster's nodes through struct
 * rconn_ops, so its routing is tested over fake connections; rconn_hiredis_ops
 * is the real table. Stateless; thread-safe.
 */
#ifndef COUPON_RCONN_H
#define COUPON_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "conf.h"

/* Returns CP_OK and *out, or CP_ERR_UNAVAILABLE / CP_ERR_NOMEM with the reason in errbuf. */
int rconn_connect_to(const struct cp_conf *conf, const char *host, int port, redisContext **out,
                     char *errbuf, size_t errlen);

/* One connection to one node as a client uses it. */
struct rconn_ops {
    /* Opens a connection; NULL with the reason in errbuf. */
    void *(*connect)(const void *opaque, const char *host, int port, char *errbuf, size_t errlen);
    /* Queues one formatted command, nothing sent yet: CP_OK or CP_ERR_NOMEM. */
    int (*write)(void *conn, const char *cmd, size_t len);
    /* Sends what is queued: CP_OK, or CP_ERR_UNAVAILABLE with the reason in errbuf. */
    int (*flush)(void *conn, char *errbuf, size_t errlen);
    /* The next reply (sending what is queued first): CP_OK and *reply, or
     * CP_ERR_UNAVAILABLE with the reason in errbuf; the connection is then unusable. */
    int (*read)(void *conn, redisReply **reply, char *errbuf, size_t errlen);
    /* 1 when the server closed the idle connection (or sent what nobody asked for). */
    int (*closed)(void *conn);
    void (*close)(void *conn);
    /* The monotonic clock of the client's back-offs, in milliseconds. */
    int64_t (*now_ms)(const void *opaque);
    /* Sleeps ms milliseconds: the pause before retrying a -TRYAGAIN (a fake clock
     * advances instead, so a test sees every pause). */
    void (*sleep_ms)(const void *opaque, int ms);
};

/* hiredis over rconn_connect_to; opaque is the const struct cp_conf *. */
extern const struct rconn_ops rconn_hiredis_ops;

#endif
