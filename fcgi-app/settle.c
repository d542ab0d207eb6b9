#include "first.h"

#include "settle.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cp_err.h"
#include "credis.h"
#include "event.h"
#include "log.h"
#include "rcli.h"

#define SETTLE_QUEUE_MAX   65536 /* records waiting for removal; more are dropped */
#define SETTLE_INTERVAL_MS 5     /* gather this long after the first report */

struct settler {
    const struct cp_conf *conf;
    struct metrics *metrics;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct credis_pending *queue; /* under lock */
    size_t count;                 /* under lock */
    int stopping;                 /* under lock */
    unsigned long dropped;        /* under lock; logged by the thread */
    pthread_t thread;
    /* The thread's own, never touched by settler_add: */
    struct credis_pending *batch;
    struct rcli *redis; /* its own client; rcli rests a node that refused a connect */
};

static void add_ms(struct timespec *ts, long ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Removes the n records in s->batch (one HDEL per run of one coupon, pipelined); on a
 * Redis failure the rest is left, counted, and what is in flight forgotten (rcli
 * logged the cause). */
static void settle_batch(struct settler *s, size_t n)
{
    long long removed = 0;
    char why[128] = "";
    int rc = credis_pending_drop(s->redis, s->batch, n, &removed, why, sizeof why);
    if (rc < 0) {
        metrics_add(s->metrics, M_REDIS_ERRORS, 1);
        rcli_reset(s->redis);
    } else if (rc > 0) {
        log_warn("settler: HDEL failed: %s", why);
    }
    metrics_add(s->metrics, M_SETTLED, (uint64_t)removed);
}

static void *settle_main(void *arg)
{
    struct settler *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->count == 0 && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        int stopping = s->stopping;
        if (!stopping) {
            /* Gather the reports of the next few milliseconds into the same pass. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            add_ms(&until, SETTLE_INTERVAL_MS);
            while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
                ;
        }
        struct credis_pending *full = s->queue;
        size_t n = s->count;
        unsigned long dropped = s->dropped;
        s->queue = s->batch;
        s->count = 0;
        s->dropped = 0;
        pthread_mutex_unlock(&s->lock);
        s->batch = full;
        if (dropped > 0)
            log_warn("settler: %lu records not queued (array full); the consumer removes "
                     "them when it persists their events",
                     dropped);
        if (n > 0)
            settle_batch(s, n);
        if (stopping)
            return NULL;
    }
}

static void free_buffers(struct settler *s)
{
    rcli_free(s->redis);
    free(s->batch);
    free(s->queue);
    free(s);
}

struct settler *settler_new(const struct cp_conf *conf, struct metrics *metrics)
{
    struct settler *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->conf = conf;
    s->metrics = metrics;
    s->queue = calloc(SETTLE_QUEUE_MAX, sizeof *s->queue);
    s->batch = calloc(SETTLE_QUEUE_MAX, sizeof *s->batch);
    char err[256];
    if (s->queue == NULL || s->batch == NULL)
        goto fail_alloc;
    if (rcli_open(conf, &s->redis, err, sizeof err) != CP_OK) {
        log_error("settler: %s", err);
        goto fail_alloc;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail_alloc;
    if (pthread_cond_init(&s->wake, NULL) != 0)
        goto fail_mutex;
    if (pthread_create(&s->thread, NULL, settle_main, s) != 0)
        goto fail_cond;
    return s;
fail_cond:
    pthread_cond_destroy(&s->wake);
fail_mutex:
    pthread_mutex_destroy(&s->lock);
fail_alloc:
    free_buffers(s);
    return NULL;
}

void settler_free(struct settler *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free_buffers(s);
}

int settler_add(struct settler *s, int64_t coupon_id, int64_t user_id)
{
    int rc = CP_OK;
    pthread_mutex_lock(&s->lock);
    if (s->count < SETTLE_QUEUE_MAX) {
        s->queue[s->count].coupon_id = coupon_id;
        s->queue[s->count].user_id = user_id;
        if (s->count++ == 0)
            pthread_cond_signal(&s->wake);
    } else {
        s->dropped++;
        rc = CP_ERR_LIMIT;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void settler_on_report(void *opaque, const void *key, size_t klen, enum producer_outcome outcome)
{
    struct settler *s = opaque;
    int64_t coupon_id = 0, user_id = 0;
    int parsed = event_key_parse(key, klen, &coupon_id, &user_id);
    if (outcome == PRODUCER_DELIVERED) {
        metrics_add(s->metrics, M_EVENTS_ACKED, 1);
        if (parsed == CP_OK)
            (void)settler_add(s, coupon_id, user_id);
        return;
    }
    /* Refused by the broker, or purged at shutdown: the claim stands (its 201 was
     * sent) and its pending record stays, so the consumer's reconciler produces the
     * event again. An operator must hear of it: Kafka is refusing what we send. */
    metrics_add(s->metrics, M_EVENTS_UNACKED, 1);
    metrics_add(s->metrics, M_KAFKA_ERRORS, 1);
    if (parsed == CP_OK)
        log_error("issuance event (coupon %" PRId64 ", user %" PRId64 ") %s by Kafka; its "
                  "pending record stays and the reconciler produces it again",
                  coupon_id, user_id,
                  outcome == PRODUCER_NOT_PERSISTED ? "refused" : "not confirmed");
    else
        log_error("unreadable key in a failed delivery report (%zu bytes)", klen);
}
