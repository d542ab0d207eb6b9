#include "first.h"

#include "downstream.h"

#include <inttypes.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "event.h"
#include "log.h"

static int add_dlq(struct outbox *o, const struct cp_conf *conf, const rd_kafka_message_t *m,
                   const char *reason)
{
    const char *key = m->key != NULL ? m->key : "";
    const char *value = m->payload != NULL ? m->payload : "";
    int rc = outbox_add(o, conf->kafka_dlq_topic, key, m->key_len, value, m->len, "reason", reason);
    if (rc != CP_OK) {
        log_error("poison event at %s[%" PRId32 "]@%" PRId64 ": cannot queue it for the DLQ: %s",
                  rd_kafka_topic_name(m->rkt), m->partition, m->offset, cp_strerror(rc));
        return rc;
    }
    log_warn("poison event at %s[%" PRId32 "]@%" PRId64 ": %s", rd_kafka_topic_name(m->rkt),
             m->partition, m->offset, reason);
    return CP_OK;
}

static int add_unknown_coupon(struct outbox *o, const struct cp_conf *conf,
                              const struct persist_item *it)
{
    char value[CP_EVENT_MAX_BYTES], key[48];
    int klen = event_key(&it->ev, key, sizeof key);
    int vlen = event_encode(&it->ev, value, sizeof value);
    int rc = klen > 0 && vlen > 0 ? CP_OK : CP_ERR_INTERNAL;
    if (rc == CP_OK)
        rc = outbox_add(o, conf->kafka_dlq_topic, key, (size_t)klen, value, (size_t)vlen, "reason",
                        "unknown coupon");
    if (rc != CP_OK) {
        log_error("event %s (coupon %" PRId64 " does not exist): cannot queue it for the DLQ: %s",
                  it->ev.event_id, it->ev.coupon_id, cp_strerror(rc));
        return rc;
    }
    log_warn("event %s: coupon %" PRId64 " does not exist; sent to the DLQ", it->ev.event_id,
             it->ev.coupon_id);
    return CP_OK;
}

int downstream_queue(struct outbox *o, const struct cp_conf *conf, rd_kafka_message_t *const *msgs,
                     size_t nmsgs, const char *const *reasons, const struct persist_item *items,
                     size_t n, struct downstream_counts *counts)
{
    int rc = CP_OK;
    counts->inserted = 0;
    counts->dlq = 0;
    for (size_t i = 0; i < nmsgs && rc == CP_OK; i++) {
        if (reasons[i] == NULL)
            continue;
        rc = add_dlq(o, conf, msgs[i], reasons[i]);
        counts->dlq += rc == CP_OK;
    }
    for (size_t i = 0; i < n && rc == CP_OK; i++) {
        const struct persist_item *it = &items[i];
        if (it->outcome == PERSIST_UNKNOWN_COUPON) {
            rc = add_unknown_coupon(o, conf, it);
            counts->dlq += rc == CP_OK;
        } else if (it->outcome == PERSIST_NEW) {
            counts->inserted++; /* its coupon.issued is an event_outbox row already */
        }
    }
    return rc;
}
