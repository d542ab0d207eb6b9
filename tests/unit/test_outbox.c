/*
 * test_outbox.c - consumer/outbox against librdkafka's mock cluster: a message
 * reaches the topic it was queued for, whatever the name's length up to the
 * configuration's limit (CP_CONF_STR_MAX - 1 characters), and a longer name is
 * refused rather than cut short (a cut name is another topic), and
 * outbox_discard never drops a message a flush has sent. One one-broker
 * mock cluster for the suite (loopback only); a flush that does not finish is
 * stopped by an alarm, the way SIGTERM stops the consumer's.
 */
#include "first.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "conf.h"
#include "cp_err.h"
#include "cp_limits.h"
#include "log.h"
#include "outbox.h"

#define FLUSH_LIMIT_S 20

static rd_kafka_t *mock_rk; /* owns the mock cluster's bookkeeping */
static rd_kafka_mock_cluster_t *mcluster;
static struct cp_conf conf;
static volatile sig_atomic_t stop;

static void on_alarm(int sig)
{
    (void)sig;
    stop = 1;
}

static int suite_init(void)
{
    char err[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "log_level", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
    if (mock_rk == NULL) {
        fprintf(stderr, "mock handle: %s\n", err);
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    mcluster = rd_kafka_mock_cluster_new(mock_rk, 1);
    if (mcluster == NULL)
        return -1;
    conf_defaults(&conf);
    snprintf(conf.kafka_brokers, sizeof conf.kafka_brokers, "%s",
             rd_kafka_mock_cluster_bootstraps(mcluster));
    conf.kafka_linger_ms = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGALRM, &sa, NULL);
}

/* A topic name of `len` characters: "coupon.dlq." then x... */
static void topic_name(char *buf, size_t len)
{
    memset(buf, 'x', len);
    memcpy(buf, "coupon.dlq.", 11);
    buf[len] = '\0';
}

/* Messages the mock broker holds in `topic` (one partition), -1 if unreadable. */
static int64_t messages_in(const char *topic)
{
    char err[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", conf.kafka_brokers, err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "log_level", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    int64_t lo = 0, hi = -1;
    if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 5000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        hi = -1;
    rd_kafka_destroy(rk);
    return hi;
}

/* Kafka allows 249 characters in a topic name; the old outbox kept 63. */
static void outbox_delivers_to_a_topic_name_longer_than_63_chars(void)
{
    char topic[201], err[512];
    topic_name(topic, 200);
    CU_ASSERT_EQUAL_FATAL(rd_kafka_mock_topic_create(mcluster, topic, 1, 1),
                          RD_KAFKA_RESP_ERR_NO_ERROR);
    struct outbox *o = outbox_new(&conf, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(outbox_add(o, topic, "k", 1, "v", 1, "reason", "test"), CP_OK);
    stop = 0;
    alarm(FLUSH_LIMIT_S);
    CU_ASSERT_EQUAL(outbox_flush(o, &stop), CP_OK);
    alarm(0);
    CU_ASSERT_EQUAL(outbox_delivered(o), 1);
    CU_ASSERT_EQUAL(messages_in(topic), 1);
    outbox_free(o);
}

static void outbox_accepts_a_topic_name_of_the_configuration_limit(void)
{
    char topic[CP_CONF_STR_MAX], err[512];
    topic_name(topic, CP_CONF_STR_MAX - 1); /* the longest a config value can be */
    struct outbox *o = outbox_new(&conf, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(outbox_add(o, topic, "k", 1, "v", 1, NULL, NULL), CP_OK);
    outbox_free(o); /* queued, never sent: Kafka itself would refuse 255 characters */
}

static void outbox_refuses_a_topic_name_it_would_have_to_cut(void)
{
    char topic[CP_CONF_STR_MAX + 1], err[512];
    topic_name(topic, CP_CONF_STR_MAX);
    struct outbox *o = outbox_new(&conf, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(outbox_add(o, topic, "k", 1, "v", 1, NULL, NULL), CP_ERR_LIMIT);
    /* Nothing was queued: the flush has nothing to wait for. */
    stop = 0;
    alarm(FLUSH_LIMIT_S);
    CU_ASSERT_EQUAL(outbox_flush(o, &stop), CP_OK);
    alarm(0);
    CU_ASSERT_EQUAL(outbox_delivered(o), 0);
    outbox_free(o);
}

/* A flush stopped while the broker is down keeps its messages in flight; discarding
 * afterwards drops only what was queued since, and the next flush delivers the rest. */
static void outbox_discard_drops_only_messages_no_flush_has_sent(void)
{
    char err[512];
    const char *topic = "coupon.discard";
    CU_ASSERT_EQUAL_FATAL(rd_kafka_mock_topic_create(mcluster, topic, 1, 1),
                          RD_KAFKA_RESP_ERR_NO_ERROR);
    struct outbox *o = outbox_new(&conf, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(mcluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(outbox_add(o, topic, "a", 1, "sent", 4, NULL, NULL), CP_OK);
    stop = 0;
    alarm(2);
    CU_ASSERT_EQUAL(outbox_flush(o, &stop), CP_ERR_UNAVAILABLE);
    alarm(0);
    CU_ASSERT_EQUAL(outbox_add(o, topic, "b", 1, "dropped", 7, NULL, NULL), CP_OK);
    outbox_discard(o);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_up(mcluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    stop = 0;
    alarm(FLUSH_LIMIT_S);
    CU_ASSERT_EQUAL(outbox_flush(o, &stop), CP_OK);
    alarm(0);
    CU_ASSERT_EQUAL(outbox_delivered(o), 1);
    CU_ASSERT_EQUAL(messages_in(topic), 1);
    outbox_free(o);
}

static void outbox_free_accepts_null(void)
{
    outbox_free(NULL);
    CU_PASS("outbox_free(NULL) is a no-op");
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"outbox_delivers_to_a_topic_name_longer_than_63_chars",
         outbox_delivers_to_a_topic_name_longer_than_63_chars},
        {"outbox_accepts_a_topic_name_of_the_configuration_limit",
         outbox_accepts_a_topic_name_of_the_configuration_limit},
        {"outbox_refuses_a_topic_name_it_would_have_to_cut",
         outbox_refuses_a_topic_name_it_would_have_to_cut},
        {"outbox_discard_drops_only_messages_no_flush_has_sent",
         outbox_discard_drops_only_messages_no_flush_has_sent},
        {"outbox_free_accepts_null", outbox_free_accepts_null},
    };
    log_init("test_outbox", LOG_LEVEL_WARN);
    int rc = unit_run_suite("outbox", suite_init, UNIT_CASES(tests));
    if (mcluster != NULL)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (mock_rk != NULL)
        rd_kafka_destroy(mock_rk);
    return rc;
}
