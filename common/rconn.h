/*
 * rconn.h - Redis connections for every program (hiredis, synchronous).
 *
 * rconn_connect() opens a TCP connection with the configured connect and
 * command timeouts and TCP keepalive. A redisContext is used by one thread at
 * a time; callers keep one per thread and reconnect (rconn_connect again) once
 * a reply is NULL or ctx->err is set - hiredis contexts are unusable after an
 * I/O error.
 */
#ifndef COUPON_RCONN_H
#define COUPON_RCONN_H

#include <hiredis/hiredis.h>

#include "conf.h"

/* Returns CP_OK and *out, or CP_ERR_UNAVAILABLE with the reason in errbuf. */
int rconn_connect(const struct cp_conf *conf, redisContext **out, char *errbuf, size_t errlen);

#endif
