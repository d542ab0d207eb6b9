/*
 * test_rcli_redis.c - common/rcli's single-server path against a real
 * redis-server (tests/unit/redis_fixture): commands and pipelines answer as
 * hiredis does, a connection the server closed is dropped before the next
 * command, an unreachable server costs one connect per back-off, a pipeline
 * left unread never answers the next command, and WAIT without replicas says 0
 * (what redis_wait_replicas meets on a server without replicas).
 * tests/unit/test_rcli.c covers the cluster routing over fake connections.
 */
#include "first.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "clock.h"
#include "conf.h"
#include "cp_err.h"
#include "rcli.h"
#include "redis_fixture.h"
#include "unit_main.h"

/* The reply's text or integer as text, freed; "(null)" for NULL. */
static const char *text_of(redisReply *r)
{
    static char out[128];
    if (r == NULL)
        snprintf(out, sizeof out, "(null)");
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf(out, sizeof out, "%lld", r->integer);
    else if (r->type == REDIS_REPLY_NIL)
        snprintf(out, sizeof out, "(nil)");
    else
        snprintf(out, sizeof out, "%.*s", (int)r->len, r->str);
    if (r != NULL)
        freeReplyObject(r);
    return out;
}

static long long client_id(struct rcli *c)
{
    redisReply *r = rcli_command(c, "CLIENT ID");
    long long id = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return id;
}

static void commands_and_pipelines_answer_as_hiredis(void)
{
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "SET %s %b", "r:a", "1\0x", (size_t)3)), "OK");
    const char *argv[] = {"HSET", "r:h", "f", "v"};
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command_argv(c, 4, argv, NULL)), "1");
    CU_ASSERT_EQUAL(rcli_append(c, "GET r:a"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append_argv(c, 4, argv, NULL), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET r:none"), CP_OK);
    redisReply *r = NULL;
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    CU_ASSERT(r != NULL && r->len == 3 && memcmp(r->str, "1\0x", 3) == 0);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    CU_ASSERT_STRING_EQUAL(text_of(r), "0");
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    CU_ASSERT_STRING_EQUAL(text_of(r), "(nil)");
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_ERR_INTERNAL); /* none outstanding */
    CU_ASSERT_PTR_NULL(r);
    /* Error replies are replies: the caller decides. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text_of(rcli_command(c, "HGET r:a f")), "WRONGTYPE"));
    rcli_free(c);
}

static void a_connection_the_server_closed_is_replaced_before_the_next_command(void)
{
    struct rcli *c = redis_fixture_client();
    redisContext *admin = redis_fixture_connect();
    CU_ASSERT_FATAL(c != NULL && admin != NULL);
    long long id = client_id(c);
    CU_ASSERT_FATAL(id > 0);
    redisReply *k = redisCommand(admin, "CLIENT KILL ID %lld", id);
    CU_ASSERT(k != NULL && k->type == REDIS_REPLY_INTEGER && k->integer == 1);
    freeReplyObject(k);
    clock_sleep_ms(110); /* rcli asks an idle connection at most every 100 ms */
    rcli_drop_closed(c); /* what app_redis does before a request */
    long long next = client_id(c);
    CU_ASSERT(next > id); /* a new connection, and the command did not fail */
    /* Without the check the command meets the dead socket: NULL, then a new one. */
    k = redisCommand(admin, "CLIENT KILL ID %lld", next);
    freeReplyObject(k);
    clock_sleep_ms(20);
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "PING")), "(null)");
    CU_ASSERT(client_id(c) > next);
    /* rcli_reset (after an unexpected reply) reconnects too: a name may move. */
    long long before = client_id(c);
    rcli_reset(c);
    CU_ASSERT(client_id(c) > before);
    redisFree(admin);
    rcli_free(c);
}

static void an_unreachable_server_costs_one_connect_per_backoff(void)
{
    static struct cp_conf conf; /* outlives the client */
    char err[256];
    struct rcli *c = NULL;
    conf_defaults(&conf);
    CU_ASSERT_EQUAL_FATAL(conf_set(&conf, "redis_port", "1", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(rcli_open(&conf, &c, err, sizeof err), CP_OK); /* no I/O */
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "PING")), "(null)");
    CU_ASSERT_PTR_NOT_NULL(strstr(rcli_errstr(c), "127.0.0.1:1"));
    int64_t t0 = clock_mono_us();
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "PING")), "(null)");
    CU_ASSERT_EQUAL(rcli_append(c, "PING"), CP_ERR_UNAVAILABLE);
    CU_ASSERT(clock_mono_us() - t0 < 5000); /* at once: no connect attempted */
    CU_ASSERT_PTR_NOT_NULL(strstr(rcli_errstr(c), "refused a connection"));
    rcli_free(c);
}

static void a_pipeline_left_unread_never_answers_the_next_command(void)
{
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "SET r:b b")), "OK");
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "SET r:c c")), "OK");
    CU_ASSERT_EQUAL(rcli_append(c, "GET r:a") + rcli_append(c, "GET r:b"), CP_OK);
    redisReply *r = NULL;
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    freeReplyObject(r);
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "GET r:c")), "c");
    /* rcli_reset forgets them too. */
    CU_ASSERT_EQUAL(rcli_append(c, "GET r:b"), CP_OK);
    rcli_reset(c);
    CU_ASSERT_STRING_EQUAL(text_of(rcli_command(c, "GET r:c")), "c");
    rcli_free(c);
}

static void wait_without_replicas_counts_none(void)
{
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(rcli_append(c, "SET r:w 1") + rcli_append(c, "WAIT 1 20"), CP_OK);
    redisReply *r = NULL;
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    CU_ASSERT_STRING_EQUAL(text_of(r), "OK");
    CU_ASSERT_EQUAL(rcli_get_reply(c, &r), CP_OK);
    CU_ASSERT_STRING_EQUAL(text_of(r), "0"); /* so redis_wait_replicas >= 1 answers 503 */
    rcli_free(c);
}

static void a_subscriber_connects_to_the_server(void)
{
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    for (int i = 0; i < 2; i++) {
        redisContext *sub = NULL;
        CU_ASSERT_EQUAL_FATAL(rcli_connect_next(c, &sub, err, sizeof err), CP_OK);
        CU_ASSERT_STRING_EQUAL(text_of(redisCommand(sub, "PING")), "PONG");
        redisFree(sub);
    }
    rcli_free(c);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"commands_and_pipelines_answer_as_hiredis", commands_and_pipelines_answer_as_hiredis},
        {"a_connection_the_server_closed_is_replaced_before_the_next_command",
         a_connection_the_server_closed_is_replaced_before_the_next_command},
        {"an_unreachable_server_costs_one_connect_per_backoff",
         an_unreachable_server_costs_one_connect_per_backoff},
        {"a_pipeline_left_unread_never_answers_the_next_command",
         a_pipeline_left_unread_never_answers_the_next_command},
        {"wait_without_replicas_counts_none", wait_without_replicas_counts_none},
        {"a_subscriber_connects_to_the_server", a_subscriber_connects_to_the_server},
    };
    return redis_fixture_run("rcli_redis", UNIT_CASES(tests));
}
