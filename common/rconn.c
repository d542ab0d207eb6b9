#include "first.h"

#include "rconn.h"

#include <poll.h>
#include <stdio.h>

#include "clock.h"
#include "cp_err.h"

int rconn_connect_to(const struct cp_conf *conf, const char *host, int port, redisContext **out,
                     char *errbuf, size_t errlen)
{
    struct timeval tv = {.tv_sec = conf->redis_timeout_ms / 1000,
                         .tv_usec = (conf->redis_timeout_ms % 1000) * 1000};
    *out = NULL;
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL) {
        snprintf(errbuf, errlen, "redis: out of memory");
        return CP_ERR_NOMEM;
    }
    if (c->err) {
        snprintf(errbuf, errlen, "connect to Redis %s:%d: %s", host, port, c->errstr);
        redisFree(c);
        return CP_ERR_UNAVAILABLE;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        snprintf(errbuf, errlen, "redis %s:%d: setting timeouts: %s", host, port, c->errstr);
        redisFree(c);
        return CP_ERR_UNAVAILABLE;
    }
    *out = c;
    return CP_OK;
}

static void *hi_connect(const void *opaque, const char *host, int port, char *errbuf, size_t errlen)
{
    redisContext *ctx = NULL;
    return rconn_connect_to(opaque, host, port, &ctx, errbuf, errlen) == CP_OK ? ctx : NULL;
}

static int hi_write(void *conn, const char *cmd, size_t len)
{
    return redisAppendFormattedCommand(conn, cmd, len) == REDIS_OK ? CP_OK : CP_ERR_NOMEM;
}

static int hi_flush(void *conn, char *errbuf, size_t errlen)
{
    redisContext *ctx = conn;
    int done = 0;
    while (!done)
        if (redisBufferWrite(ctx, &done) != REDIS_OK) {
            snprintf(errbuf, errlen, "%s", ctx->errstr);
            return CP_ERR_UNAVAILABLE;
        }
    return CP_OK;
}

static int hi_read(void *conn, redisReply **reply, char *errbuf, size_t errlen)
{
    redisContext *ctx = conn;
    void *r = NULL;
    if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
        snprintf(errbuf, errlen, "%s", ctx->errstr[0] ? ctx->errstr : "no reply");
        return CP_ERR_UNAVAILABLE;
    }
    *reply = r;
    return CP_OK;
}

/* Readable or hung up while idle: the server closed it (a restart). One poll(2). */
static int hi_closed(void *conn)
{
    struct pollfd pfd = {.fd = ((redisContext *)conn)->fd, .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) != 0;
}

static void hi_close(void *conn)
{
    redisFree(conn);
}

static int64_t hi_now_ms(const void *opaque)
{
    (void)opaque;
    return clock_mono_ms();
}

static void hi_sleep_ms(const void *opaque, int ms)
{
    (void)opaque;
    clock_sleep_ms(ms);
}

const struct rconn_ops rconn_hiredis_ops = {
    .connect = hi_connect,
    .write = hi_write,
    .flush = hi_flush,
    .read = hi_read,
    .closed = hi_closed,
    .close = hi_close,
    .now_ms = hi_now_ms,
    .sleep_ms = hi_sleep_ms,
};
