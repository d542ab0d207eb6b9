/*
 * test_producer.c - fcgi-app/producer against librdkafka's mock cluster, with
 * broker errors injected: the outcome producer_send_sync() reports decides
 * between 201, rollback + 503 and pending + 202 on the issue path, so each
 * outcome is provoked here deterministically:
 *
 *   healthy broker                          -> PRODUCER_DELIVERED
 *   retriable errors, then success          -> PRODUCER_DELIVERED (retried inside)
 *   permanent Produce error (not written)   -> PRODUCER_NOT_PERSISTED
 *   broker down, message timed out          -> PRODUCER_POSSIBLY_PERSISTED (local error:
 *                                              librdkafka's status is not trusted)
 *   response delayed past the timeout       -> PRODUCER_POSSIBLY_PERSISTED (sent, no answer)
 *   connection lost after the write         -> PRODUCER_POSSIBLY_PERSISTED (it is in the log)
 *   fatal idempotence error                 -> PRODUCER_POSSIBLY_PERSISTED, handle replaced
 *   all brokers down / back                 -> producer_is_up() false / true
 *
 * Each test gets its own one-broker mock cluster (no network beyond loopback)
 * and its own producer; kafka_delivery_timeout_ms is short so the whole suite
 * stays well under 30 s.
 */
#include "first.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "conf.h"
#include "cp_err.h"
#include "log.h"
#include "producer.h"

#define PRODUCE_API_KEY     0 /* Kafka protocol ApiKey of ProduceRequest */
#define TOPIC               "coupon.issue"
#define DELIVERY_TIMEOUT_MS 1500

struct fixture {
    rd_kafka_t *mock_rk; /* owns the mock cluster's bookkeeping */
    rd_kafka_mock_cluster_t *mcluster;
    int ack_mode; /* enum conf_issue_ack of the producer under test */
    struct cp_conf conf;
    struct producer *p;
};

static struct fixture fx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until producer_is_up() == want; returns 1 if it got there in time. */
static int wait_up(int want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (!!producer_is_up(fx.p) == want)
            return 1;
        sleep_ms(20);
    }
    return !!producer_is_up(fx.p) == want;
}

/* Reports of asynchronous sends, as the settler would get them. */
static struct {
    pthread_mutex_t lock;
    int delivered, not_persisted, possibly;
    char last_key[32];
} reports = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void record_report(void *opaque, const void *key, size_t klen, enum producer_outcome outcome)
{
    (void)opaque;
    pthread_mutex_lock(&reports.lock);
    if (outcome == PRODUCER_DELIVERED)
        reports.delivered++;
    else if (outcome == PRODUCER_NOT_PERSISTED)
        reports.not_persisted++;
    else
        reports.possibly++;
    size_t n = klen < sizeof reports.last_key - 1 ? klen : sizeof reports.last_key - 1;
    memcpy(reports.last_key, key, n);
    reports.last_key[n] = '\0';
    pthread_mutex_unlock(&reports.lock);
}

static int reports_delivered(void)
{
    pthread_mutex_lock(&reports.lock);
    int n = reports.delivered;
    pthread_mutex_unlock(&reports.lock);
    return n;
}

static int fixture_setup_mode(int ack_mode)
{
    char err[512];
    memset(&fx, 0, sizeof fx);
    fx.ack_mode = ack_mode;
    pthread_mutex_lock(&reports.lock);
    reports.delivered = reports.not_persisted = reports.possibly = 0;
    reports.last_key[0] = '\0';
    pthread_mutex_unlock(&reports.lock);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "log_level", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    fx.mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
    if (fx.mock_rk == NULL) {
        fprintf(stderr, "mock handle: %s\n", err);
        rd_kafka_conf_destroy(kc);
        return -1;
    }
    fx.mcluster = rd_kafka_mock_cluster_new(fx.mock_rk, 1);
    if (fx.mcluster == NULL)
        return -1;
    if (rd_kafka_mock_topic_create(fx.mcluster, TOPIC, 6, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    conf_defaults(&fx.conf);
    snprintf(fx.conf.kafka_brokers, sizeof fx.conf.kafka_brokers, "%s",
             rd_kafka_mock_cluster_bootstraps(fx.mcluster));
    snprintf(fx.conf.kafka_topic, sizeof fx.conf.kafka_topic, "%s", TOPIC);
    fx.conf.kafka_delivery_timeout_ms = DELIVERY_TIMEOUT_MS;
    fx.conf.kafka_linger_ms = 0;
    fx.conf.kafka_async_linger_ms = 0;
    fx.conf.issue_ack = fx.ack_mode;
    fx.p = producer_new(&fx.conf, record_report, NULL, err, sizeof err);
    if (fx.p == NULL) {
        fprintf(stderr, "producer_new: %s\n", err);
        return -1;
    }
    return 0;
}

/* The synchronous sends of issue_ack=kafka. */
static int fixture_setup(void)
{
    return fixture_setup_mode(CONF_ISSUE_ACK_KAFKA);
}

static void fixture_teardown(void)
{
    if (fx.mcluster != NULL)
        (void)rd_kafka_mock_broker_set_up(fx.mcluster, -1); /* let the final flush finish */
    producer_free(fx.p);
    if (fx.mcluster != NULL)
        rd_kafka_mock_cluster_destroy(fx.mcluster);
    if (fx.mock_rk != NULL)
        rd_kafka_destroy(fx.mock_rk);
    memset(&fx, 0, sizeof fx);
}

/* Messages the mock broker holds in TOPIC: the sum of the partitions' high
 * watermarks, read through a separate client. -1 if it cannot be read. */
static int64_t messages_in_topic(void)
{
    char err[512];
    int64_t total = 0;
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", fx.conf.kafka_brokers, err, sizeof err) !=
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
    for (int32_t part = 0; part < 6; part++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, TOPIC, part, &lo, &hi, 5000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            total = -1;
            break;
        }
        total += hi;
    }
    rd_kafka_destroy(rk);
    return total;
}

static enum producer_outcome send_one(const char *key)
{
    static const char value[] = "{\"eventId\":\"0123456789abcdef0123456789abcdef\","
                                "\"couponId\":1,\"userId\":2,\"sequence\":1,"
                                "\"issuedAt\":\"2026-11-24T19:31:41.123Z\"}";
    return producer_send_sync(fx.p, key, strlen(key), value, sizeof value - 1);
}

static const char *outcome_name(enum producer_outcome o)
{
    switch (o) {
    case PRODUCER_DELIVERED: return "DELIVERED";
    case PRODUCER_NOT_PERSISTED: return "NOT_PERSISTED";
    case PRODUCER_POSSIBLY_PERSISTED: return "POSSIBLY_PERSISTED";
    }
    return "?";
}

#define ASSERT_OUTCOME(got, want)                                                                 \
    do {                                                                                          \
        enum producer_outcome got_ = (got);                                                       \
        if (got_ != (want))                                                                       \
            fprintf(stderr, "\n  outcome %s, want %s\n", outcome_name(got_), outcome_name(want)); \
        CU_ASSERT_EQUAL(got_, (want));                                                            \
    } while (0)

static void producer_delivers_to_a_healthy_broker(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    CU_ASSERT_TRUE(producer_is_up(fx.p));
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_DELIVERED);
    ASSERT_OUTCOME(send_one("1:3"), PRODUCER_DELIVERED);
    CU_ASSERT_TRUE(producer_is_up(fx.p));
    fixture_teardown();
}

static void producer_retries_retriable_errors_then_delivers(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED); /* connected, metadata known */
    rd_kafka_mock_push_request_errors(fx.mcluster, PRODUCE_API_KEY, 2,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_DELIVERED);
    fixture_teardown();
}

static void producer_reports_not_persisted_on_a_permanent_broker_error(void)
{
    /* Permanent Produce errors: the broker wrote nothing. `then_ok`: the next send
     * delivers (an authorization failure also fails the topic in the client's
     * metadata, so sends are refused up front until the next metadata refresh). */
    static const struct {
        rd_kafka_resp_err_t err;
        int then_ok;
    } rows[] = {
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 1},
        {RD_KAFKA_RESP_ERR_INVALID_MSG, 1},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CU_ASSERT_FATAL(fixture_setup() == 0);
        ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
        rd_kafka_mock_push_request_errors(fx.mcluster, PRODUCE_API_KEY, 1, rows[i].err);
        enum producer_outcome o = send_one("1:2");
        if (o != PRODUCER_NOT_PERSISTED)
            fprintf(stderr, "\n  %s -> %s\n", rd_kafka_err2name(rows[i].err), outcome_name(o));
        CU_ASSERT_EQUAL(o, PRODUCER_NOT_PERSISTED);
        ASSERT_OUTCOME(send_one("1:3"),
                       rows[i].then_ok ? PRODUCER_DELIVERED : PRODUCER_NOT_PERSISTED);
        /* NOT_PERSISTED held: the broker has the warm-up (and the follow-up) only. */
        CU_ASSERT_EQUAL(messages_in_topic(), rows[i].then_ok ? 2 : 1);
        fixture_teardown();
    }
}

/*
 * A send that times out is "possibly written", even here where the broker was down
 * the whole time and the message never left the client: librdkafka's NOT_PERSISTED
 * for a timed-out message is not reliable (see failed_delivery_outcome), and
 * keeping a reservation that Kafka did not get costs a re-produce by the
 * reconciler, while rolling back one it did get oversells.
 */
static void producer_reports_a_timed_out_send_as_possibly_persisted(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t t0 = now_ms();
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_POSSIBLY_PERSISTED);
    int64_t took = now_ms() - t0;
    /* Bounded by the delivery timeout (plus the 1 s timeout scan granularity). */
    CU_ASSERT(took >= DELIVERY_TIMEOUT_MS - 100);
    CU_ASSERT(took < DELIVERY_TIMEOUT_MS + 2500);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_up(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(messages_in_topic(), 1); /* the timed-out message was never written */
    fixture_teardown();
}

static void producer_reports_possibly_persisted_when_no_broker_was_ever_reached(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    /* Down before the first send: no metadata, the message waits unpartitioned and
     * times out - a local error, so "possibly written" like any other time-out. */
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_POSSIBLY_PERSISTED);
    fixture_teardown();
}

/* The broker writes the next Produce request's messages but answers only long
 * after the delivery timeout. */
static void hold_next_produce_answer(void)
{
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_push_request_error_rtts(fx.mcluster, 1, PRODUCE_API_KEY, 1,
                                                                 RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                 DELIVERY_TIMEOUT_MS * 3),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void producer_reports_possibly_persisted_when_the_answer_never_comes(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
    /* The broker takes (and keeps) the message but answers after the timeout. */
    hold_next_produce_answer();
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_POSSIBLY_PERSISTED);
    /* The same producer goes on delivering once the broker answers in time. */
    CU_ASSERT_TRUE(wait_up(1, 5000));
    ASSERT_OUTCOME(send_one("1:3"), PRODUCER_DELIVERED);
    /* And "possibly" was right to be cautious: the broker did write the message
     * it never acknowledged (rolling it back would have lost an issuance). Exactly
     * once: the idempotent producer did not write anything twice. */
    CU_ASSERT_EQUAL(messages_in_topic(), 3);
    fixture_teardown();
}

struct background_send {
    pthread_t thread;
    enum producer_outcome outcome;
};

static void *background_send_main(void *arg)
{
    struct background_send *bs = arg;
    bs->outcome = send_one("1:2");
    return NULL;
}

/*
 * The broker wrote the message, the connection closed before the answer, and the
 * retry timed out while the broker stayed down: the message is in the log, so the
 * outcome must not be NOT_PERSISTED (a rollback would oversell by one).
 */
static void producer_reports_possibly_persisted_when_the_connection_drops_after_the_write(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
    /* The broker writes the next message but holds its answer back... */
    hold_next_produce_answer();
    struct background_send bs = {.outcome = PRODUCER_DELIVERED};
    CU_ASSERT_FATAL(pthread_create(&bs.thread, NULL, background_send_main, &bs) == 0);
    sleep_ms(300);
    /* ...and goes down before sending it, staying down past the delivery timeout. */
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(pthread_join(bs.thread, NULL), 0);
    ASSERT_OUTCOME(bs.outcome, PRODUCER_POSSIBLY_PERSISTED);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_up(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(messages_in_topic(), 2); /* it was written: a rollback would oversell */
    fixture_teardown();
}

static void producer_replaces_its_handle_after_a_fatal_idempotence_error(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
    /* A sequence desynchronisation is fatal for an idempotent producer: librdkafka
     * 2.0.2 fails the message as POSSIBLY_PERSISTED (never as delivered); the poll
     * thread then replaces the handle and sends work again. */
    rd_kafka_mock_push_request_errors(fx.mcluster, PRODUCE_API_KEY, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_POSSIBLY_PERSISTED);
    CU_ASSERT_TRUE(wait_up(1, 5000));
    ASSERT_OUTCOME(send_one("1:3"), PRODUCER_DELIVERED);
    fixture_teardown();
}

static void producer_is_down_while_all_brokers_are_down_and_recovers(void)
{
    CU_ASSERT_FATAL(fixture_setup() == 0);
    ASSERT_OUTCOME(send_one("1:1"), PRODUCER_DELIVERED);
    CU_ASSERT_TRUE(producer_is_up(fx.p));
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_TRUE(wait_up(0, 5000));
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_up(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_TRUE(wait_up(1, 8000)); /* the poll thread probes metadata once a second */
    ASSERT_OUTCOME(send_one("1:2"), PRODUCER_DELIVERED);
    CU_ASSERT_TRUE(producer_is_up(fx.p));
    fixture_teardown();
}

static int send_async(const char *key)
{
    static const char value[] = "{\"eventId\":\"0123456789abcdef0123456789abcdef\","
                                "\"couponId\":1,\"userId\":2,\"sequence\":1,"
                                "\"issuedAt\":\"2026-11-24T19:31:41.123Z\"}";
    return producer_send_async(fx.p, key, strlen(key), value, sizeof value - 1);
}

/* Waits until `want` asynchronous sends were reported delivered; 1 if in time. */
static int wait_delivered(int want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (reports_delivered() >= want)
            return 1;
        sleep_ms(20);
    }
    return reports_delivered() >= want;
}

static void producer_reports_each_async_send_with_its_key(void)
{
    CU_ASSERT_FATAL(fixture_setup_mode(CONF_ISSUE_ACK_REDIS) == 0);
    CU_ASSERT_EQUAL(send_async("7:1"), CP_OK);
    CU_ASSERT_EQUAL(send_async("7:2"), CP_OK);
    CU_ASSERT_EQUAL(send_async("7:3"), CP_OK);
    CU_ASSERT_TRUE(wait_delivered(3, 10000));
    pthread_mutex_lock(&reports.lock);
    CU_ASSERT_EQUAL(reports.delivered, 3);
    CU_ASSERT_EQUAL(reports.not_persisted + reports.possibly, 0);
    CU_ASSERT(strncmp(reports.last_key, "7:", 2) == 0);
    pthread_mutex_unlock(&reports.lock);
    CU_ASSERT_EQUAL(messages_in_topic(), 3);
    CU_ASSERT_TRUE(producer_has_room(fx.p));
    fixture_teardown();
}

/*
 * issue_ack=redis: a claim is already acknowledged, so its event must outlast an
 * outage far longer than kafka_delivery_timeout_ms - no time-out, no failure
 * report - and be delivered, once, when the broker is back.
 */
static void producer_keeps_async_sends_through_an_outage(void)
{
    CU_ASSERT_FATAL(fixture_setup_mode(CONF_ISSUE_ACK_REDIS) == 0);
    CU_ASSERT_EQUAL(send_async("8:1"), CP_OK);
    CU_ASSERT_TRUE(wait_delivered(1, 10000));
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_down(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(send_async("8:2"), CP_OK);
    CU_ASSERT_EQUAL(send_async("8:3"), CP_OK);
    sleep_ms(DELIVERY_TIMEOUT_MS * 3);
    pthread_mutex_lock(&reports.lock);
    CU_ASSERT_EQUAL(reports.delivered, 1);
    CU_ASSERT_EQUAL(reports.not_persisted + reports.possibly, 0);
    pthread_mutex_unlock(&reports.lock);
    CU_ASSERT_EQUAL(rd_kafka_mock_broker_set_up(fx.mcluster, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_TRUE(wait_delivered(3, 20000));
    CU_ASSERT_EQUAL(messages_in_topic(), 3);
    fixture_teardown();
}

/* A refusal by the broker is reported (the pending record stays for the reconciler). */
static void producer_reports_an_async_refusal_as_not_persisted(void)
{
    CU_ASSERT_FATAL(fixture_setup_mode(CONF_ISSUE_ACK_REDIS) == 0);
    CU_ASSERT_EQUAL(send_async("9:1"), CP_OK);
    CU_ASSERT_TRUE(wait_delivered(1, 10000));
    rd_kafka_mock_push_request_errors(fx.mcluster, PRODUCE_API_KEY, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    CU_ASSERT_EQUAL(send_async("9:2"), CP_OK);
    int seen = 0;
    for (int waited = 0; waited < 10000 && !seen; waited += 20) {
        pthread_mutex_lock(&reports.lock);
        seen = reports.not_persisted;
        pthread_mutex_unlock(&reports.lock);
        sleep_ms(20);
    }
    CU_ASSERT_EQUAL(seen, 1);
    CU_ASSERT_STRING_EQUAL(reports.last_key, "9:2");
    fixture_teardown();
}

static void producer_free_accepts_null(void)
{
    producer_free(NULL);
    CU_PASS("producer_free(NULL) is a no-op");
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"producer_delivers_to_a_healthy_broker", producer_delivers_to_a_healthy_broker},
        {"producer_retries_retriable_errors_then_delivers",
         producer_retries_retriable_errors_then_delivers},
        {"producer_reports_not_persisted_on_a_permanent_broker_error",
         producer_reports_not_persisted_on_a_permanent_broker_error},
        {"producer_reports_a_timed_out_send_as_possibly_persisted",
         producer_reports_a_timed_out_send_as_possibly_persisted},
        {"producer_reports_possibly_persisted_when_no_broker_was_ever_reached",
         producer_reports_possibly_persisted_when_no_broker_was_ever_reached},
        {"producer_reports_possibly_persisted_when_the_answer_never_comes",
         producer_reports_possibly_persisted_when_the_answer_never_comes},
        {"producer_reports_possibly_persisted_when_the_connection_drops_after_the_write",
         producer_reports_possibly_persisted_when_the_connection_drops_after_the_write},
        {"producer_replaces_its_handle_after_a_fatal_idempotence_error",
         producer_replaces_its_handle_after_a_fatal_idempotence_error},
        {"producer_is_down_while_all_brokers_are_down_and_recovers",
         producer_is_down_while_all_brokers_are_down_and_recovers},
        {"producer_reports_each_async_send_with_its_key",
         producer_reports_each_async_send_with_its_key},
        {"producer_keeps_async_sends_through_an_outage",
         producer_keeps_async_sends_through_an_outage},
        {"producer_reports_an_async_refusal_as_not_persisted",
         producer_reports_an_async_refusal_as_not_persisted},
        {"producer_free_accepts_null", producer_free_accepts_null},
    };
    log_init("test_producer", LOG_LEVEL_WARN);
    return unit_run_suite("producer", NULL, UNIT_CASES(tests));
}
