#include "first.h"

#include "rconn.h"

#include <stdio.h>

#include "cp_err.h"

int rconn_connect(const struct cp_conf *conf, redisContext **out, char *errbuf, size_t errlen)
{
    struct timeval tv = {.tv_sec = conf->redis_timeout_ms / 1000,
                         .tv_usec = (conf->redis_timeout_ms % 1000) * 1000};
    *out = NULL;
    redisContext *c = redisConnectWithTimeout(conf->redis_host, conf->redis_port, tv);
    if (c == NULL) {
        snprintf(errbuf, errlen, "redis: out of memory");
        return CP_ERR_NOMEM;
    }
    if (c->err) {
        snprintf(errbuf, errlen, "connect to Redis %s:%d: %s", conf->redis_host, conf->redis_port,
                 c->errstr);
        redisFree(c);
        return CP_ERR_UNAVAILABLE;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        snprintf(errbuf, errlen, "redis: setting timeouts: %s", c->errstr);
        redisFree(c);
        return CP_ERR_UNAVAILABLE;
    }
    *out = c;
    return CP_OK;
}
