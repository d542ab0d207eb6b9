#include "first.h"

#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "cp_err.h"
#include "cp_limits.h"
#include "kafka_log.h"
#include "log.h"

#define FLUSH_STEP_MS  1000
#define RETRY_PAUSE_MS 500

struct pending_msg {
    char topic[CP_CONF_STR_MAX]; /* a configured topic name: conf.h's limit */
    char *key, *value;
    size_t klen, vlen;
    char header_name[32], header_value[256];
    int has_header;
    int state; /* 0 queued/in flight, 1 delivered, -1 failed: send again */
};

struct outbox {
    rd_kafka_t *rk;
    struct pending_msg *msgs;
    size_t n, cap;
    size_t flushed; /* msgs[0..flushed) were handed to a flush: may be in flight */
    uint64_t delivered, failures;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct outbox *o = opaque;
    struct pending_msg *pm = m->_private;
    if (pm == NULL)
        return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pm->state = 1;
        o->delivered++;
    } else {
        pm->state = -1;
        o->failures++;
        log_warn("delivery to %s failed: %s", pm->topic, rd_kafka_err2str(m->err));
    }
}

struct outbox *outbox_new(const struct cp_conf *conf, char *errbuf, size_t errlen)
{
    struct outbox *o = calloc(1, sizeof *o);
    if (o == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    char linger[16];
    snprintf(linger, sizeof linger, "%d", conf->kafka_linger_ms);
    const char *const settings[][2] = {
        {"bootstrap.servers", conf->kafka_brokers},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", linger},
        {"message.timeout.ms", "30000"},
        {"client.id", "coupon-consumer"},
    };
    rd_kafka_conf_t *kc =
        kafka_log_conf_new(settings, sizeof settings / sizeof settings[0], errbuf, errlen);
    if (kc == NULL) {
        free(o);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, o);
    o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errbuf, errlen);
    if (o->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        free(o);
        return NULL;
    }
    return o;
}

/* Frees msgs[from..n). */
static void release_from(struct outbox *o, size_t from)
{
    for (size_t i = from; i < o->n; i++) {
        free(o->msgs[i].key);
        free(o->msgs[i].value);
    }
    o->n = from;
}

static void release(struct outbox *o)
{
    release_from(o, 0);
    o->flushed = 0;
}

void outbox_free(struct outbox *o)
{
    if (o == NULL)
        return;
    rd_kafka_flush(o->rk, 5000);
    rd_kafka_destroy(o->rk);
    release(o);
    free(o->msgs);
    free(o);
}

static int send_one(struct outbox *o, struct pending_msg *pm)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (pm->has_header) {
        hdrs = rd_kafka_headers_new(1);
        if (hdrs == NULL)
            return CP_ERR_NOMEM;
        rd_kafka_header_add(hdrs, pm->header_name, -1, pm->header_value, -1);
    }
    pm->state = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_producev(o->rk, RD_KAFKA_V_TOPIC(pm->topic), RD_KAFKA_V_KEY(pm->key, pm->klen),
                          RD_KAFKA_V_VALUE(pm->value, pm->vlen), RD_KAFKA_V_MSGFLAGS(0),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(pm), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        pm->state = -1;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(o->rk, 100);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

int outbox_add(struct outbox *o, const char *topic, const char *key, size_t klen, const char *value,
               size_t vlen, const char *header_name, const char *header_value)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        struct pending_msg *m = realloc(o->msgs, cap * sizeof *m);
        if (m == NULL)
            return CP_ERR_NOMEM;
        o->msgs = m;
        o->cap = cap;
    }
    struct pending_msg *pm = &o->msgs[o->n];
    memset(pm, 0, sizeof *pm);
    /* A name cut short would be another topic; a cut header, another reason. */
    if (strlen(topic) >= sizeof pm->topic ||
        (header_name != NULL && (strlen(header_name) >= sizeof pm->header_name ||
                                 strlen(header_value) >= sizeof pm->header_value)))
        return CP_ERR_LIMIT;
    memcpy(pm->topic, topic, strlen(topic) + 1);
    pm->key = malloc(klen + 1);
    pm->value = malloc(vlen + 1);
    if (pm->key == NULL || pm->value == NULL) {
        free(pm->key);
        free(pm->value);
        return CP_ERR_NOMEM;
    }
    memcpy(pm->key, key, klen);
    memcpy(pm->value, value, vlen);
    pm->klen = klen;
    pm->vlen = vlen;
    if (header_name != NULL) {
        pm->has_header = 1;
        memcpy(pm->header_name, header_name, strlen(header_name) + 1);
        memcpy(pm->header_value, header_value, strlen(header_value) + 1);
    }
    o->n++;
    /* Sent by outbox_flush. Delivery reports point into this array, which is
     * only resized here, between flushes, when nothing is in flight. */
    pm->state = -1;
    return CP_OK;
}

void outbox_discard(struct outbox *o)
{
    release_from(o, o->flushed);
}

int outbox_flush(struct outbox *o, const volatile sig_atomic_t *stop)
{
    o->flushed = o->n;
    for (;;) {
        size_t outstanding = 0;
        for (size_t i = 0; i < o->n; i++) {
            if (o->msgs[i].state == -1)
                (void)send_one(o, &o->msgs[i]);
            if (o->msgs[i].state != 1)
                outstanding++;
        }
        if (outstanding == 0)
            break;
        (void)rd_kafka_flush(o->rk, FLUSH_STEP_MS);
        size_t failed = 0, waiting = 0;
        for (size_t i = 0; i < o->n; i++) {
            failed += o->msgs[i].state == -1;
            waiting += o->msgs[i].state == 0;
        }
        if (failed == 0 && waiting == 0)
            break;
        if (*stop)
            return CP_ERR_UNAVAILABLE;
        if (failed > 0) {
            clock_sleep_ms(RETRY_PAUSE_MS);
        }
    }
    release(o);
    return CP_OK;
}

uint64_t outbox_delivered(const struct outbox *o)
{
    return o->delivered;
}

uint64_t outbox_failures(const struct outbox *o)
{
    return o->failures;
}
