#include "first.h"

#include "producer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "cp_err.h"
#include "clock.h"
#include "cp_limits.h"
#include "kafka_log.h"
#include "log.h"

/* One in-flight synchronous send; lives on the sender's stack until its report. */
struct delivery_waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int done;
    enum producer_outcome outcome;
};

struct producer {
    const struct cp_conf *conf;
    producer_report_fn *on_async_report;
    void *report_opaque;
    pthread_rwlock_t handle_lock; /* readers send; the poll thread replaces rk */
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    pthread_t poll_thread;
    atomic_int stopping;
    atomic_int up;
    atomic_int fatal;
};

/*
 * What a failed delivery means for the event. librdkafka's own status is trusted
 * only where it cannot be wrong: the broker answered and refused the request (a
 * broker error code, > 0), or the message was purged from the local queue. A local
 * error - above all "message timed out" - is possibly written, whatever the status
 * says: against a real broker being shut down, librdkafka 2.0.2 reported
 * NOT_PERSISTED for a message the broker had appended just before the connection
 * closed (test_faults saw the consumer persist it after the reservation had been
 * rolled back: one issuance beyond the stock).
 */
static enum producer_outcome failed_delivery_outcome(const rd_kafka_message_t *msg)
{
    rd_kafka_msg_status_t st = rd_kafka_message_status(msg);
    if (st == RD_KAFKA_MSG_STATUS_PERSISTED)
        return PRODUCER_DELIVERED;
    if (st == RD_KAFKA_MSG_STATUS_NOT_PERSISTED &&
        (msg->err > 0 || msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE))
        return PRODUCER_NOT_PERSISTED;
    return PRODUCER_POSSIBLY_PERSISTED;
}

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    struct delivery_waiter *w = msg->_private;
    enum producer_outcome outcome = PRODUCER_DELIVERED;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        outcome = failed_delivery_outcome(msg);
        log_warn("kafka delivery failed: %s (status %d): %s", rd_kafka_err2str(msg->err),
                 (int)rd_kafka_message_status(msg),
                 outcome == PRODUCER_NOT_PERSISTED ? "not written" : "possibly written");
    } else {
        atomic_store(&p->up, 1);
    }
    if (w == NULL) { /* an asynchronous send */
        if (p->on_async_report != NULL)
            p->on_async_report(p->report_opaque, msg->key, msg->key_len, outcome);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->outcome = outcome;
    w->done = 1;
    pthread_cond_signal(&w->done_cond);
    pthread_mutex_unlock(&w->lock);
}

static void error_callback(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct producer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (atomic_exchange(&p->up, 0))
            log_warn("kafka: all brokers down: %s", reason);
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        log_error("kafka: fatal producer error: %s", buf);
        atomic_store(&p->fatal, 1);
    } else {
        log_debug("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

static int create_handle(struct producer *p, char *errbuf, size_t errlen)
{
    char msg_timeout[16], linger[16], queue_max[16];
    /*
     * issue_ack=kafka: a request thread waits for each report, so it is bounded.
     * issue_ack=redis: the claim is already acknowledged; a message is kept (and
     * retried by librdkafka, idempotently) until the broker takes it - 0 = no
     * time-out - so an outage only delays events. A message purged at shutdown
     * keeps its pending record, which the consumer's reconciler re-produces.
     */
    snprintf(msg_timeout, sizeof msg_timeout, "%d",
             p->conf->issue_ack == CONF_ISSUE_ACK_KAFKA ? p->conf->kafka_delivery_timeout_ms : 0);
    /* issue_ack=redis: no request waits for the broker, so events are gathered longer into
     * fewer, larger batches (the broker's cost is per batch and partition, and the key
     * spreads a hot coupon over every partition). */
    snprintf(linger, sizeof linger, "%d",
             p->conf->issue_ack == CONF_ISSUE_ACK_KAFKA ? p->conf->kafka_linger_ms
                                                        : p->conf->kafka_async_linger_ms);
    snprintf(queue_max, sizeof queue_max, "%d", CP_PRODUCER_QUEUE_MAX);
    const char *const settings[][2] = {
        {"bootstrap.servers", p->conf->kafka_brokers},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"message.timeout.ms", msg_timeout},
        {"linger.ms", linger},
        {"queue.buffering.max.messages", queue_max},
        {"socket.keepalive.enable", "true"},
        {"reconnect.backoff.ms", "50"},
        {"reconnect.backoff.max.ms", "1000"},
        {"topic.metadata.refresh.interval.ms", "10000"},
    };
    rd_kafka_conf_t *kc =
        kafka_log_conf_new(settings, sizeof settings / sizeof settings[0], errbuf, errlen);
    if (kc == NULL)
        return CP_ERR_INVALID;
    rd_kafka_conf_set_dr_msg_cb(kc, delivery_report);
    rd_kafka_conf_set_error_cb(kc, error_callback);
    rd_kafka_conf_set_opaque(kc, p);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errbuf, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return CP_ERR_UNAVAILABLE;
    }
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, p->conf->kafka_topic, NULL);
    if (topic == NULL) {
        snprintf(errbuf, errlen, "kafka topic %s: %s", p->conf->kafka_topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return CP_ERR_INTERNAL;
    }
    p->rk = rk;
    p->topic = topic;
    return CP_OK;
}

static void destroy_handle(struct producer *p)
{
    if (p->rk == NULL)
        return;
    /* Messages still queued get their delivery reports (with an error) here,
     * so no sender waits forever. */
    if (rd_kafka_flush(p->rk, p->conf->kafka_delivery_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_topic_destroy(p->topic);
    rd_kafka_destroy(p->rk);
    p->rk = NULL;
    p->topic = NULL;
}

static void probe_brokers(struct producer *p)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->rk, 0, p->topic, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        int ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_metadata_destroy(md);
        if (ok && !atomic_exchange(&p->up, 1))
            log_info("kafka: brokers reachable again");
    }
}

static void *poll_main(void *arg)
{
    struct producer *p = arg;
    int64_t last_probe_s = -1;
    while (!atomic_load(&p->stopping)) {
        pthread_rwlock_rdlock(&p->handle_lock);
        rd_kafka_poll(p->rk, 50);
        pthread_rwlock_unlock(&p->handle_lock);
        int64_t now_s = clock_mono_ms() / 1000;
        if (!atomic_load(&p->up) && now_s != last_probe_s) { /* at most once a second */
            last_probe_s = now_s;
            pthread_rwlock_rdlock(&p->handle_lock);
            probe_brokers(p);
            pthread_rwlock_unlock(&p->handle_lock);
        }
        if (atomic_load(&p->fatal)) {
            char err[256];
            pthread_rwlock_wrlock(&p->handle_lock);
            destroy_handle(p);
            if (create_handle(p, err, sizeof err) == CP_OK) {
                atomic_store(&p->fatal, 0);
                log_info("kafka: producer re-created after a fatal error");
            } else {
                log_error("kafka: re-creating the producer failed: %s", err);
            }
            pthread_rwlock_unlock(&p->handle_lock);
            if (p->rk == NULL) {
                clock_sleep_ms(200);
            }
        }
    }
    return NULL;
}

struct producer *producer_new(const struct cp_conf *conf, producer_report_fn *on_async_report,
                              void *report_opaque, char *errbuf, size_t errlen)
{
    struct producer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    p->conf = conf;
    p->on_async_report = on_async_report;
    p->report_opaque = report_opaque;
    atomic_init(&p->up, 1);
    atomic_init(&p->stopping, 0);
    atomic_init(&p->fatal, 0);
    if (pthread_rwlock_init(&p->handle_lock, NULL) != 0) {
        free(p);
        snprintf(errbuf, errlen, "rwlock init failed");
        return NULL;
    }
    if (create_handle(p, errbuf, errlen) != CP_OK)
        goto fail;
    if (pthread_create(&p->poll_thread, NULL, poll_main, p) != 0) {
        snprintf(errbuf, errlen, "cannot start the kafka poll thread");
        destroy_handle(p);
        goto fail;
    }
    return p;
fail:
    pthread_rwlock_destroy(&p->handle_lock);
    free(p);
    return NULL;
}

void producer_free(struct producer *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stopping, 1);
    pthread_join(p->poll_thread, NULL);
    destroy_handle(p);
    pthread_rwlock_destroy(&p->handle_lock);
    free(p);
}

int producer_is_up(struct producer *p)
{
    return atomic_load(&p->up) && !atomic_load(&p->fatal);
}

int producer_has_room(struct producer *p)
{
    pthread_rwlock_rdlock(&p->handle_lock);
    int room = p->rk != NULL && rd_kafka_outq_len(p->rk) < CP_PRODUCER_QUEUE_MAX - 1024;
    pthread_rwlock_unlock(&p->handle_lock);
    return room;
}

int producer_send_async(struct producer *p, const char *key, size_t klen, const char *value,
                        size_t vlen)
{
    pthread_rwlock_rdlock(&p->handle_lock);
    int rc = -1;
    if (p->rk != NULL)
        rc = rd_kafka_produce(p->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value,
                              vlen, key, klen, NULL);
    pthread_rwlock_unlock(&p->handle_lock);
    if (rc != 0) {
        log_warn("kafka produce refused: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

enum producer_outcome producer_send_sync(struct producer *p, const char *key, size_t klen,
                                         const char *value, size_t vlen)
{
    struct delivery_waiter w = {.done = 0, .outcome = PRODUCER_NOT_PERSISTED};
    if (pthread_mutex_init(&w.lock, NULL) != 0) {
        log_error("kafka send: cannot initialise a mutex");
        return PRODUCER_NOT_PERSISTED;
    }
    if (pthread_cond_init(&w.done_cond, NULL) != 0) {
        log_error("kafka send: cannot initialise a condition variable");
        pthread_mutex_destroy(&w.lock);
        return PRODUCER_NOT_PERSISTED;
    }

    pthread_rwlock_rdlock(&p->handle_lock);
    int rc = -1;
    if (p->rk != NULL)
        rc = rd_kafka_produce(p->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value,
                              vlen, key, klen, &w);
    pthread_rwlock_unlock(&p->handle_lock);
    if (rc != 0) {
        /* Not enqueued at all (queue full, fatal state): certainly not persisted. */
        log_warn("kafka produce refused: %s", rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.done_cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
out:
    pthread_cond_destroy(&w.done_cond);
    pthread_mutex_destroy(&w.lock);
    return w.outcome;
}
