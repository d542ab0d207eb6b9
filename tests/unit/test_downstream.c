/*
 * test_downstream.c - consumer/downstream: which messages a persisted batch
 * queues (a DLQ entry with its reason per poison message and per unknown coupon,
 * nothing for a new row - its coupon.issued is an event_outbox row - or a
 * duplicate), and that a message
 * the outbox refuses fails the whole call instead of being logged and skipped
 * (the consumer then commits nothing). The outbox is replaced at link time by
 * the recording fake below, which can be told to fail its Nth call.
 */
#include "first.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "cp_err.h"
#include "downstream.h"
#include "log.h"
#include "outbox.h"

#define MAX_CALLS 16

struct call {
    char topic[CP_CONF_STR_MAX], key[64], reason[64];
};

static struct {
    struct call calls[MAX_CALLS];
    int n;       /* outbox_add calls so far */
    int fail_at; /* 1-based call that fails with fail_rc; 0: none */
    int fail_rc;
} fake;

/* The fake outbox: records what would be queued. */
int outbox_add(struct outbox *o, const char *topic, const char *key, size_t klen, const char *value,
               size_t vlen, const char *header_name, const char *header_value)
{
    (void)o;
    (void)value;
    (void)vlen;
    if (++fake.n == fake.fail_at)
        return fake.fail_rc;
    if (fake.n > MAX_CALLS)
        return CP_ERR_LIMIT;
    struct call *c = &fake.calls[fake.n - 1];
    snprintf(c->topic, sizeof c->topic, "%s", topic);
    snprintf(c->key, sizeof c->key, "%.*s", (int)klen, key);
    snprintf(c->reason, sizeof c->reason, "%s",
             header_name != NULL && strcmp(header_name, "reason") == 0 ? header_value : "");
    return CP_OK;
}

static struct cp_conf conf;
static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;

/* A batch of four messages: a poison one, then events of a new row, a duplicate and
 * an unknown coupon (decoded into items[0..3)). */
static rd_kafka_message_t msg_storage[4];
static rd_kafka_message_t *msgs[4];
static const char *reasons[4];
static struct persist_item items[3];

static int suite_init(void)
{
    char err[512];
    conf_defaults(&conf);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "log_level", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    /* Only to name the poison message's topic in log lines: never connects. */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    rkt = rd_kafka_topic_new(rk, conf.kafka_topic, NULL);
    return rkt == NULL ? -1 : 0;
}

static void batch_setup(void)
{
    memset(&fake, 0, sizeof fake);
    memset(msg_storage, 0, sizeof msg_storage);
    for (int i = 0; i < 4; i++) {
        msg_storage[i].rkt = rkt;
        msg_storage[i].offset = 100 + i;
        msgs[i] = &msg_storage[i];
        reasons[i] = NULL;
    }
    static char poison[] = "not json";
    static char poison_key[] = "poison:1";
    msg_storage[0].payload = poison;
    msg_storage[0].len = sizeof poison - 1;
    msg_storage[0].key = poison_key;
    msg_storage[0].key_len = sizeof poison_key - 1;
    reasons[0] = "undecodable event";
    memset(items, 0, sizeof items);
    const enum persist_outcome outcomes[3] = {PERSIST_NEW, PERSIST_DUPLICATE,
                                              PERSIST_UNKNOWN_COUPON};
    for (int i = 0; i < 3; i++) {
        struct issue_event *ev = &items[i].ev;
        snprintf(ev->event_id, sizeof ev->event_id, "%031x%d", 0, i);
        ev->coupon_id = 10 + i;
        ev->user_id = 20 + i;
        ev->sequence = 1;
        ev->issued_at_ms = 1796000000000LL;
        items[i].outcome = outcomes[i];
        items[i].row_id = outcomes[i] == PERSIST_NEW ? 555 : 0;
    }
}

static int run(struct downstream_counts *counts)
{
    return downstream_queue(NULL, &conf, msgs, 4, reasons, items, 3, counts);
}

/* coupon.issued is not queued here any more: persist.c writes it to event_outbox in
 * the batch's transaction. New rows are counted; poison and unknown coupons go to the
 * DLQ. */
static void downstream_counts_new_rows_and_queues_dlq_for_poison_and_unknown(void)
{
    batch_setup();
    struct downstream_counts counts;
    CU_ASSERT_EQUAL_FATAL(run(&counts), CP_OK);
    CU_ASSERT_EQUAL(counts.inserted, 1);
    CU_ASSERT_EQUAL(counts.dlq, 2);
    CU_ASSERT_EQUAL_FATAL(fake.n, 2);
    CU_ASSERT_STRING_EQUAL(fake.calls[0].topic, conf.kafka_dlq_topic);
    CU_ASSERT_STRING_EQUAL(fake.calls[0].key, "poison:1");
    CU_ASSERT_STRING_EQUAL(fake.calls[0].reason, "undecodable event");
    CU_ASSERT_STRING_EQUAL(fake.calls[1].topic, conf.kafka_dlq_topic);
    CU_ASSERT_STRING_EQUAL(fake.calls[1].key, "12:22");
    CU_ASSERT_STRING_EQUAL(fake.calls[1].reason, "unknown coupon");
}

/* Each of the two messages refused in turn: the call fails with the outbox's code
 * and queues nothing after it. */
static void downstream_fails_when_any_message_cannot_be_queued(void)
{
    for (int at = 1; at <= 2; at++) {
        batch_setup();
        fake.fail_at = at;
        fake.fail_rc = CP_ERR_NOMEM;
        struct downstream_counts counts;
        CU_ASSERT_EQUAL(run(&counts), CP_ERR_NOMEM);
        CU_ASSERT_EQUAL(fake.n, at);
    }
}

static void downstream_passes_the_outbox_error_on(void)
{
    batch_setup();
    fake.fail_at = 2; /* the unknown coupon's DLQ entry */
    fake.fail_rc = CP_ERR_LIMIT;
    struct downstream_counts counts;
    CU_ASSERT_EQUAL(run(&counts), CP_ERR_LIMIT);
}

static void downstream_queues_nothing_for_duplicates(void)
{
    batch_setup();
    reasons[0] = NULL;
    items[0].outcome = PERSIST_DUPLICATE;
    items[2].outcome = PERSIST_DUPLICATE;
    struct downstream_counts counts;
    CU_ASSERT_EQUAL(run(&counts), CP_OK);
    CU_ASSERT_EQUAL(fake.n, 0);
    CU_ASSERT_EQUAL(counts.inserted, 0);
    CU_ASSERT_EQUAL(counts.dlq, 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"downstream_counts_new_rows_and_queues_dlq_for_poison_and_unknown",
         downstream_counts_new_rows_and_queues_dlq_for_poison_and_unknown},
        {"downstream_fails_when_any_message_cannot_be_queued",
         downstream_fails_when_any_message_cannot_be_queued},
        {"downstream_passes_the_outbox_error_on", downstream_passes_the_outbox_error_on},
        {"downstream_queues_nothing_for_duplicates", downstream_queues_nothing_for_duplicates},
    };
    log_init("test_downstream", LOG_LEVEL_ERROR);
    int rc = unit_run_suite("downstream", suite_init, UNIT_CASES(tests));
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return rc;
}
