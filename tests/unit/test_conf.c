/*
 * test_conf.c - unit tests of common/conf: defaults, the file format (comments,
 * blank lines, unknown keys and bad values reported with file:line), the
 * COUPON_<KEY> environment override and conf_dump's masking of secrets.
 */
#include "first.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "conf.h"
#include "cp_err.h"

static char tmp_path[256];

/* Writes `text` to a fresh temporary file; its path is left in tmp_path. */
static const char *write_conf(const char *text)
{
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/test_conf.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp_path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    CU_ASSERT_FATAL(close(fd) == 0);
    return tmp_path;
}

static void remove_conf(void)
{
    if (tmp_path[0] != '\0')
        (void)unlink(tmp_path);
    tmp_path[0] = '\0';
}

/* The tests own the COUPON_* environment: none may leak in from the caller. */
static int suite_init(void)
{
    static const char *const names[] = {
        "COUPON_REDIS_PORT",  "COUPON_REDIS_HOST", "COUPON_DB_PASSWORD",
        "COUPON_ADMIN_TOKEN", "COUPON_THREADS",    "COUPON_KAFKA_TOPIC",
        "COUPON_LOG_LEVEL",   "COUPON_WORKERS",    NULL};
    for (size_t i = 0; names[i] != NULL; i++)
        unsetenv(names[i]);
    return 0;
}

static void conf_defaults_fill_every_documented_key(void)
{
    struct cp_conf c;
    memset(&c, 0x5a, sizeof c);
    conf_defaults(&c);
    CU_ASSERT_STRING_EQUAL(c.listen, "unix:/tmp/coupon-fcgi.sock");
    CU_ASSERT_EQUAL(c.workers, 0);
    CU_ASSERT_EQUAL(c.threads, 0); /* worker.c: 4 with issue_ack=redis, 64 with kafka */
    CU_ASSERT_EQUAL(c.request_slots, 0);
    CU_ASSERT_STRING_EQUAL(c.admin_token, "");
    CU_ASSERT_EQUAL(c.max_body_bytes, 4096);
    CU_ASSERT_STRING_EQUAL(c.redis_host, "127.0.0.1");
    CU_ASSERT_EQUAL(c.redis_port, 6379);
    CU_ASSERT_EQUAL(c.redis_timeout_ms, 1000);
    CU_ASSERT_STRING_EQUAL(c.kafka_brokers, "127.0.0.1:9092");
    CU_ASSERT_STRING_EQUAL(c.kafka_topic, "coupon.issue");
    CU_ASSERT_STRING_EQUAL(c.kafka_issued_topic, "coupon.issued");
    CU_ASSERT_STRING_EQUAL(c.kafka_dlq_topic, "coupon.issue.dlq");
    CU_ASSERT_EQUAL(c.kafka_delivery_timeout_ms, 5000);
    CU_ASSERT_EQUAL(c.db_port, 3306);
    CU_ASSERT_STRING_EQUAL(c.db_socket, "");
    CU_ASSERT_STRING_EQUAL(c.db_user, "coupon");
    CU_ASSERT_STRING_EQUAL(c.db_password, "");
    CU_ASSERT_STRING_EQUAL(c.db_name, "coupon");
    CU_ASSERT_EQUAL(c.l2_ttl_s, 1800);
    CU_ASSERT_STRING_EQUAL(c.consumer_group, "coupon-consumer-group");
    CU_ASSERT_EQUAL(c.consumer_batch_max, 2000);
    CU_ASSERT_STRING_EQUAL(c.log_level, "info");
    CU_ASSERT_EQUAL(c.issue_ack, CONF_ISSUE_ACK_REDIS);
    CU_ASSERT_EQUAL(c.outbox_max_pending, 100000);
    CU_ASSERT_EQUAL(c.soldout_holders_max, 20000);
    CU_ASSERT_EQUAL(c.kafka_linger_ms, 5);
    CU_ASSERT_EQUAL(c.kafka_async_linger_ms, 50);
}

static void conf_load_without_file_gives_defaults(void)
{
    struct cp_conf loaded, defaults;
    char err[256] = "";
    conf_defaults(&defaults);
    CU_ASSERT_EQUAL(conf_load(&loaded, NULL, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(memcmp(&loaded, &defaults, sizeof loaded), 0);
}

static void conf_file_skips_comments_and_blank_lines(void)
{
    struct cp_conf c;
    char err[256] = "";
    const char *path = write_conf("# a comment\n"
                                  "\n"
                                  "   \t\n"
                                  "   # an indented comment = 1\n"
                                  "redis_port = 7000\n"
                                  "  kafka_topic=topic.x  \n"
                                  "db_password = p=w#rd\n"
                                  "threads\t=\t3\n"
                                  "log_level = debug"); /* no final newline */
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_port, 7000);
    CU_ASSERT_STRING_EQUAL(c.kafka_topic, "topic.x");
    CU_ASSERT_STRING_EQUAL(c.db_password, "p=w#rd"); /* split at the first '=' only */
    CU_ASSERT_EQUAL(c.threads, 3);
    CU_ASSERT_STRING_EQUAL(c.log_level, "debug");
    CU_ASSERT_EQUAL(c.db_port, 3306); /* untouched keys keep defaults */
    remove_conf();
}

static void conf_unknown_key_is_rejected_with_file_and_line(void)
{
    struct cp_conf c;
    char err[512] = "";
    char want[300];
    const char *path = write_conf("# header\nredis_port = 7000\nredis_prot = 7001\n");
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_ERR_INVALID);
    snprintf(want, sizeof want, "%s:3:", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "redis_prot"));
    remove_conf();
}

static void conf_line_without_equals_is_rejected_with_line(void)
{
    struct cp_conf c;
    char err[512] = "";
    char want[300];
    const char *path = write_conf("\n\nredis_port 7000\n");
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_ERR_INVALID);
    snprintf(want, sizeof want, "%s:3:", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    remove_conf();
}

static void conf_integer_values_are_range_checked(void)
{
    static const struct {
        const char *line;
        int ok;
    } rows[] = {
        {"redis_port = 1\n", 1},
        {"redis_port = 65535\n", 1},
        {"redis_port = 0\n", 0},
        {"redis_port = 65536\n", 0},
        {"redis_port = -1\n", 0},
        {"redis_port = abc\n", 0},
        {"redis_port = 12x\n", 0},
        {"redis_port = \n", 0},
        {"redis_port = 1.5\n", 0},
        {"redis_port = 99999999999999999999\n", 0},
        {"threads = -1\n", 0},
        {"threads = 0\n", 1},
        {"request_slots = 256\n", 1},
        {"request_slots = 257\n", 0},
        {"request_slots = -1\n", 0},
        {"threads = 1024\n", 1},
        {"threads = 1025\n", 0},
        {"max_body_bytes = 4097\n", 0},
        {"max_body_bytes = 63\n", 0},
        {"max_body_bytes = 64\n", 1},
        {"workers = 256\n", 1},
        {"workers = 257\n", 0},
        {"kafka_delivery_timeout_ms = 99\n", 0},
        {"consumer_batch_max = 5001\n", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cp_conf c;
        char err[512] = "";
        char want[300];
        const char *path = write_conf(rows[i].line);
        int rc = conf_load(&c, path, err, sizeof err);
        if ((rc == CP_OK) != rows[i].ok)
            fprintf(stderr, "\n  row %zu '%s': rc=%d err=%s\n", i, rows[i].line, rc, err);
        CU_ASSERT_EQUAL(rc, rows[i].ok ? CP_OK : CP_ERR_INVALID);
        if (!rows[i].ok) {
            snprintf(want, sizeof want, "%s:1:", path);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected an integer in"));
        }
        remove_conf();
    }
}

static void conf_string_longer_than_limit_is_rejected(void)
{
    struct cp_conf c;
    char err[512] = "";
    char line[CP_CONF_STR_MAX + 32];
    char value[CP_CONF_STR_MAX + 1];
    memset(value, 'h', CP_CONF_STR_MAX);
    value[CP_CONF_STR_MAX] = '\0'; /* one byte too many for the field */
    snprintf(line, sizeof line, "redis_host = %s\n", value);
    const char *path = write_conf(line);
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "redis_host"));
    remove_conf();

    value[CP_CONF_STR_MAX - 1] = '\0'; /* exactly fits */
    snprintf(line, sizeof line, "redis_host = %s\n", value);
    path = write_conf(line);
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(strlen(c.redis_host), CP_CONF_STR_MAX - 1);
    remove_conf();

    CU_ASSERT_EQUAL(conf_set(&c, "log_level", "0123456789abcdef", err, sizeof err),
                    CP_ERR_INVALID); /* log_level holds 15 bytes */
}

static void conf_line_longer_than_limit_is_rejected(void)
{
    struct cp_conf c;
    char err[512] = "";
    static char text[CP_CONF_LINE_MAX + 64];
    memset(text, ' ', sizeof text);
    memcpy(text, "# ", 2);
    text[sizeof text - 2] = '\n';
    text[sizeof text - 1] = '\0';
    const char *path = write_conf(text);
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line too long"));
    remove_conf();
}

static void conf_missing_file_is_a_system_error(void)
{
    struct cp_conf c;
    char err[512] = "";
    CU_ASSERT_EQUAL(conf_load(&c, "/nonexistent/coupon.conf", err, sizeof err), CP_ERR_SYSTEM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/coupon.conf"));
}

static void conf_env_override_wins_over_file(void)
{
    struct cp_conf c;
    char err[512] = "";
    const char *path = write_conf("redis_port = 7000\nredis_host = file.example\n");
    CU_ASSERT_EQUAL_FATAL(setenv("COUPON_REDIS_PORT", "7777", 1), 0);
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_port, 7777);
    CU_ASSERT_STRING_EQUAL(c.redis_host, "file.example"); /* not overridden */
    CU_ASSERT_EQUAL(conf_load(&c, NULL, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_port, 7777); /* also without a file */
    CU_ASSERT_EQUAL(unsetenv("COUPON_REDIS_PORT"), 0);
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_port, 7000);
    remove_conf();
}

static void conf_invalid_env_override_is_rejected_and_named(void)
{
    struct cp_conf c;
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(setenv("COUPON_REDIS_PORT", "70000", 1), 0);
    CU_ASSERT_EQUAL(conf_load(&c, NULL, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "COUPON_REDIS_PORT"));
    CU_ASSERT_EQUAL(unsetenv("COUPON_REDIS_PORT"), 0);
}

static void conf_set_rejects_unknown_key(void)
{
    struct cp_conf c;
    char err[256] = "";
    conf_defaults(&c);
    CU_ASSERT_EQUAL(conf_set(&c, "no_such_key", "1", err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no_such_key"));
    CU_ASSERT_EQUAL(conf_set(&c, "redis_port", "6380", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_port, 6380);
}

static char *dump_to_string(const struct cp_conf *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    conf_dump(c, f);
    CU_ASSERT_EQUAL(fclose(f), 0);
    return text;
}

static void conf_dump_masks_secrets(void)
{
    struct cp_conf c;
    char err[256] = "";
    conf_defaults(&c);
    CU_ASSERT_EQUAL(conf_set(&c, "db_password", "s3cret-db-Pa55", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(conf_set(&c, "admin_token", "tok-XYZZY-0123", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(conf_set(&c, "code_secret", "code-QWERTY-987", err, sizeof err), CP_OK);
    char *text = dump_to_string(&c);
    CU_ASSERT_PTR_NULL(strstr(text, "s3cret"));
    CU_ASSERT_PTR_NULL(strstr(text, "XYZZY"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "db_password = ********\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "admin_token = ********\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "code_secret = ********\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "QWERTY"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "redis_port = 6379\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "kafka_topic = coupon.issue\n"));
    free(text);

    /* An unset secret shows as empty, so an operator can tell "not set". */
    conf_defaults(&c);
    text = dump_to_string(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "db_password = \n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "admin_token = \n"));
    free(text);
}

static void conf_dump_lists_every_key_once(void)
{
    struct cp_conf c;
    conf_defaults(&c);
    char *text = dump_to_string(&c);
    /* One "key = value" line per key, no key twice, every documented key present. */
    size_t lines = 0;
    for (char *line = text; *line != '\0'; lines++) {
        char *nl = strchr(line, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
        char *eq = strstr(line, " = ");
        CU_ASSERT_FATAL(eq != NULL && eq < nl);
        char key[64];
        size_t klen = (size_t)(eq - line);
        CU_ASSERT_FATAL(klen > 0 && klen < sizeof key);
        memcpy(key, line, klen);
        key[klen] = '\0';
        char again[80];
        snprintf(again, sizeof again, "\n%s = ", key);
        CU_ASSERT_PTR_NULL(strstr(nl, again)); /* not repeated below */
        line = nl + 1;
    }
    static const char *const documented[] = {
        "listen",      "workers",        "threads",     "admin_token", "redis_host",
        "redis_port",  "kafka_brokers",  "kafka_topic", "db_host",     "db_password",
        "l1_capacity", "consumer_group", "log_level"};
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s = ", documented[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    }
    CU_ASSERT(lines >= sizeof documented / sizeof documented[0]);
    /* Every dumped line loads back to the same configuration. */
    const char *path = write_conf(text);
    struct cp_conf back;
    char err[256] = "";
    CU_ASSERT_EQUAL(conf_load(&back, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(memcmp(&back, &c, sizeof c), 0);
    remove_conf();
    free(text);
}

/* Words, not free text: a typo must not become a silent default. */
static void conf_choice_keys_take_only_their_words(void)
{
    struct cp_conf c;
    char err[256] = "";
    conf_defaults(&c);
    CU_ASSERT_EQUAL(conf_set(&c, "issue_ack", "kafka", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.issue_ack, CONF_ISSUE_ACK_KAFKA);
    CU_ASSERT_EQUAL(conf_set(&c, "issue_ack", "redis", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.issue_ack, CONF_ISSUE_ACK_REDIS);
    CU_ASSERT_EQUAL(conf_set(&c, "issue_ack", "Kafka", err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "issue_ack: expected redis|kafka"));
    CU_ASSERT_EQUAL(conf_set(&c, "issue_ack", "", err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(c.issue_ack, CONF_ISSUE_ACK_REDIS);
    /* log_level: every program rejects what coupon-fcgi rejects (the consumer did not). */
    CU_ASSERT_EQUAL(conf_set(&c, "log_level", "verbose", err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "debug|info|warn|error"));
    CU_ASSERT_EQUAL(conf_set(&c, "log_level", "warn", err, sizeof err), CP_OK);
    CU_ASSERT_STRING_EQUAL(c.log_level, "warn");
    char *text = dump_to_string(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nissue_ack = redis\n"));
    free(text);
}

static void conf_redis_cluster_is_a_checked_list_of_seeds(void)
{
    static const struct {
        const char *value;
        int ok;
        const char *why;
    } rows[] = {
        {"", 1, NULL},
        {"10.0.0.1:7000", 1, NULL},
        {"a.example:7000, b-2.example:7001 ,c_3:65535", 1, NULL},
        {"[::1]:7000,[fe80::1%eth0]:7001", 1, NULL},
        {"10.0.0.1", 0, "expected host:port"},
        {":7000", 0, "expected host:port"},
        {"a:0", 0, "1..65535"},
        {"a:65536", 0, "1..65535"},
        {"a:70x", 0, "1..65535"},
        {"a:7000,", 0, "empty entry"},
        {"a:1,,b:2", 0, "empty entry"},
        {"a b:7000", 0, "not a host"},
        {"::1:7000", 0, "not a host"},
        {"a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10,a:11,a:12,a:13,a:14,a:15,a:16", 1, NULL},
        {"a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10,a:11,a:12,a:13,a:14,a:15,a:16,a:17", 0,
         "more than 16"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cp_conf c;
        char err[512] = "";
        conf_defaults(&c);
        int rc = conf_set(&c, "redis_cluster", rows[i].value, err, sizeof err);
        if ((rc == CP_OK) != rows[i].ok || (rows[i].why != NULL && !strstr(err, rows[i].why)))
            fprintf(stderr, "\n  row %zu '%s': rc=%d err=%s\n", i, rows[i].value, rc, err);
        CU_ASSERT_EQUAL(rc, rows[i].ok ? CP_OK : CP_ERR_INVALID);
        if (!rows[i].ok) {
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "redis_cluster: "));
            CU_ASSERT_PTR_NOT_NULL(strstr(err, rows[i].why));
        }
    }
    /* What rcli takes its seeds from: the same parser. */
    struct conf_endpoint ep[CP_REDIS_SEEDS_MAX];
    size_t n = 0;
    char err[200];
    CU_ASSERT_EQUAL(
        conf_endpoints_parse(" a:1 , [::1]:2", ep, CP_REDIS_SEEDS_MAX, &n, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT(strcmp(ep[0].host, "a") == 0 && ep[0].port == 1);
    CU_ASSERT(strcmp(ep[1].host, "::1") == 0 && ep[1].port == 2);
    /* A host as long as the limit allows is refused, not cut. */
    char big[CP_REDIS_HOST_MAX + 8];
    memset(big, 'h', CP_REDIS_HOST_MAX);
    snprintf(big + CP_REDIS_HOST_MAX, 8, ":1");
    CU_ASSERT_EQUAL(conf_endpoints_parse(big, ep, CP_REDIS_SEEDS_MAX, &n, err, sizeof err),
                    CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "longer than"));
}

static void conf_redis_wait_is_bounded_by_the_command_timeout(void)
{
    struct cp_conf c;
    char err[512] = "";
    CU_ASSERT_EQUAL(conf_load(&c, NULL, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_wait_replicas, 0);
    CU_ASSERT_EQUAL(c.redis_wait_timeout_ms, 200);
    CU_ASSERT_STRING_EQUAL(c.redis_cluster, "");
    CU_ASSERT_EQUAL(conf_set(&c, "redis_wait_replicas", "6", err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(conf_set(&c, "redis_wait_replicas", "5", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(conf_set(&c, "redis_wait_timeout_ms", "0", err, sizeof err), CP_ERR_INVALID);
    /* WAIT must answer before the read time-out would drop the connection. */
    const char *path = write_conf("redis_timeout_ms = 500\nredis_wait_timeout_ms = 500\n");
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "redis_wait_timeout_ms (500) must be below"));
    remove_conf();
    path = write_conf("redis_timeout_ms = 500\nredis_wait_timeout_ms = 499\n"
                      "redis_wait_replicas = 1\n");
    CU_ASSERT_EQUAL(conf_load(&c, path, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.redis_wait_replicas, 1);
    remove_conf();
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"conf_defaults_fill_every_documented_key", conf_defaults_fill_every_documented_key},
        {"conf_load_without_file_gives_defaults", conf_load_without_file_gives_defaults},
        {"conf_file_skips_comments_and_blank_lines", conf_file_skips_comments_and_blank_lines},
        {"conf_unknown_key_is_rejected_with_file_and_line",
         conf_unknown_key_is_rejected_with_file_and_line},
        {"conf_line_without_equals_is_rejected_with_line",
         conf_line_without_equals_is_rejected_with_line},
        {"conf_integer_values_are_range_checked", conf_integer_values_are_range_checked},
        {"conf_string_longer_than_limit_is_rejected", conf_string_longer_than_limit_is_rejected},
        {"conf_line_longer_than_limit_is_rejected", conf_line_longer_than_limit_is_rejected},
        {"conf_missing_file_is_a_system_error", conf_missing_file_is_a_system_error},
        {"conf_env_override_wins_over_file", conf_env_override_wins_over_file},
        {"conf_invalid_env_override_is_rejected_and_named",
         conf_invalid_env_override_is_rejected_and_named},
        {"conf_set_rejects_unknown_key", conf_set_rejects_unknown_key},
        {"conf_dump_masks_secrets", conf_dump_masks_secrets},
        {"conf_dump_lists_every_key_once", conf_dump_lists_every_key_once},
        {"conf_choice_keys_take_only_their_words", conf_choice_keys_take_only_their_words},
        {"conf_redis_cluster_is_a_checked_list_of_seeds",
         conf_redis_cluster_is_a_checked_list_of_seeds},
        {"conf_redis_wait_is_bounded_by_the_command_timeout",
         conf_redis_wait_is_bounded_by_the_command_timeout},
    };
    return unit_run_suite("conf", suite_init, UNIT_CASES(tests));
}
