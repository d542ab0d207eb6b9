/*
 * test_kafka_log.c - common/kafka_log: librdkafka's syslog severities map to our
 * levels, and a client whose configuration went through kafka_log_install()
 * writes its lines (here: a refused connection to a closed loopback port) in
 * the log module's format on stderr - never librdkafka's own "%3|...|FAIL|".
 */
#include "first.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <librdkafka/rdkafka.h>

#include "kafka_log.h"
#include "log.h"

#define WAIT_MS 10000

static void kafka_log_maps_syslog_severities_to_our_levels(void)
{
    for (int s = 0; s <= 3; s++)
        CU_ASSERT_EQUAL(kafka_log_level(s), LOG_LEVEL_ERROR);
    CU_ASSERT_EQUAL(kafka_log_level(4), LOG_LEVEL_WARN);
    CU_ASSERT_EQUAL(kafka_log_level(5), LOG_LEVEL_INFO);
    CU_ASSERT_EQUAL(kafka_log_level(6), LOG_LEVEL_INFO);
    CU_ASSERT_EQUAL(kafka_log_level(7), LOG_LEVEL_DEBUG);
    CU_ASSERT_EQUAL(kafka_log_level(-1), LOG_LEVEL_ERROR);
    CU_ASSERT_EQUAL(kafka_log_level(8), LOG_LEVEL_DEBUG);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What stderr received so far, NUL-terminated, into buf. */
static void read_back(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    if (fseek(f, 0, SEEK_SET) == 0)
        n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
}

static void kafka_log_routes_librdkafka_lines_through_the_log_module(void)
{
    static char seen[1 << 16];
    char err[512];
    FILE *capture = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(capture);
    int saved = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    CU_ASSERT_FATAL(dup2(fileno(capture), STDERR_FILENO) == STDERR_FILENO);

    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    kafka_log_install(kc);
    /* Port 1 on loopback refuses; idempotence makes the producer connect at once. */
    int conf_ok =
        rd_kafka_conf_set(kc, "bootstrap.servers", "127.0.0.1:1", err, sizeof err) ==
            RD_KAFKA_CONF_OK &&
        rd_kafka_conf_set(kc, "enable.idempotence", "true", err, sizeof err) == RD_KAFKA_CONF_OK;
    rd_kafka_t *rk = conf_ok ? rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err) : NULL;
    if (rk == NULL)
        rd_kafka_conf_destroy(kc);
    for (int waited = 0; rk != NULL && waited < WAIT_MS; waited += 50) {
        read_back(capture, seen, sizeof seen);
        if (strstr(seen, "FAIL") != NULL)
            break;
        sleep_ms(50);
    }
    if (rk != NULL)
        rd_kafka_destroy(rk);
    read_back(capture, seen, sizeof seen);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fclose(capture);

    CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
    const char *line = strstr(seen, "test_kafka_log level=error");
    CU_ASSERT_PTR_NOT_NULL(line);
    CU_ASSERT_PTR_NOT_NULL(strstr(seen, "FAIL: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(seen, "msg=\"kafka rdkafka#producer-"));
    CU_ASSERT_PTR_NULL(strstr(seen, "%3|"));
    if (line == NULL || strstr(seen, "%3|") != NULL)
        fprintf(stderr, "stderr was:\n%s\n", seen);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"kafka_log_maps_syslog_severities_to_our_levels",
         kafka_log_maps_syslog_severities_to_our_levels},
        {"kafka_log_routes_librdkafka_lines_through_the_log_module",
         kafka_log_routes_librdkafka_lines_through_the_log_module},
    };
    log_init("test_kafka_log", LOG_LEVEL_INFO);
    return unit_run_suite("kafka_log", NULL, UNIT_CASES(tests));
}
