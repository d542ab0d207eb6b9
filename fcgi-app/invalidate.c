#include "first.h"

#include "invalidate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>

#include "clock.h"
#include "cp_err.h"
#include "log.h"
#include "rcli.h"
#include "rkey.h"

#define CHANNEL            RKEY_INVALIDATE_CHANNEL
#define POLL_MS            200 /* how often the thread looks at the stop flag */
#define RECONNECT_DELAY_MS 250

struct invalidator {
    struct app *app;
    struct rcli *nodes; /* where to subscribe next (rcli_connect_next); no command is sent */
    pthread_t thread;
    atomic_int stopping;
};

static void handle_message(struct invalidator *inv, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *payload = r->element[2];
    char text[24];
    if (payload->len == 0 || payload->len >= sizeof text)
        return;
    memcpy(text, payload->str, payload->len);
    text[payload->len] = '\0';
    char *end;
    errno = 0;
    long long id = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || id <= 0)
        return;
    app_l1_forget_coupon(inv->app, (int64_t)id);
    metrics_add(inv->app->metrics, M_INVALIDATIONS, 1);
}

/*
 * Subscribes and reads until the connection fails or we are asked to stop. The
 * socket is polled with a timeout instead of giving the context a read timeout:
 * a hiredis context is unusable after a timed-out read, and reconnecting (and so
 * clearing L1) every half second would defeat the cache.
 */
static void serve_connection(struct invalidator *inv, redisContext *r)
{
    redisReply *reply = redisCommand(r, "SUBSCRIBE " CHANNEL);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        log_warn("invalidation subscriber: %s", reply == NULL                      ? r->errstr
                                                : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                   : "?");
        if (reply != NULL)
            freeReplyObject(reply);
        return;
    }
    freeReplyObject(reply);
    /* Anything published while we were not subscribed is lost: start clean. */
    lru_clear(inv->app->l1);
    if (inv->app->holders != NULL)
        holders_clear(inv->app->holders);
    log_info("subscribed to " CHANNEL "; L1 cleared");
    while (!atomic_load(&inv->stopping)) {
        void *msg = NULL;
        if (redisReaderGetReply(r->reader, &msg) != REDIS_OK) {
            log_warn("invalidation subscriber: protocol error");
            return;
        }
        if (msg != NULL) {
            handle_message(inv, msg);
            freeReplyObject(msg);
            continue;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int n = poll(&pfd, 1, POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (n > 0 && redisBufferRead(r) != REDIS_OK) {
            log_warn("invalidation subscriber: %s", r->errstr);
            return;
        }
    }
}

static void *invalidator_main(void *arg)
{
    struct invalidator *inv = arg;
    while (!atomic_load(&inv->stopping)) {
        redisContext *r = NULL;
        char err[256];
        if (rcli_connect_next(inv->nodes, &r, err, sizeof err) != CP_OK) {
            clock_sleep_ms(RECONNECT_DELAY_MS);
            continue;
        }
        serve_connection(inv, r);
        redisFree(r);
    }
    return NULL;
}

struct invalidator *invalidator_start(struct app *app)
{
    struct invalidator *inv = calloc(1, sizeof *inv);
    if (inv == NULL)
        return NULL;
    inv->app = app;
    atomic_init(&inv->stopping, 0);
    char err[256];
    if (rcli_open(app->conf, &inv->nodes, err, sizeof err) != CP_OK) {
        log_error("invalidation subscriber: %s", err);
        free(inv);
        return NULL;
    }
    if (pthread_create(&inv->thread, NULL, invalidator_main, inv) != 0) {
        rcli_free(inv->nodes);
        free(inv);
        return NULL;
    }
    return inv;
}

void invalidator_stop(struct invalidator *inv)
{
    if (inv == NULL)
        return;
    atomic_store(&inv->stopping, 1);
    pthread_join(inv->thread, NULL);
    rcli_free(inv->nodes);
    free(inv);
}
