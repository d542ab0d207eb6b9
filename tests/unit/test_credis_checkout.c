/*
 * test_credis_checkout.c - common/credis_checkout, the applier's commands on a
 * coupon's checkout keys, against a real redis-server (tests/unit/redis_fixture)
 * through rcli, as coupon-consumer uses them: the dirty set marked and taken (SADD,
 * SPOP with a count; members that are no id ignored); the pending records read page
 * by page (HSCAN ... COUNT) up to a bound, malformed ones counted and left; exactly
 * the records named dropped, across the per-command chunk; redeem.lua's sweep over
 * many coupons in pipelines, with a SCRIPT FLUSH between calls. Every command runs on
 * the server, so a format hiredis does not understand fails here, not in the
 * integration suite. Exit 77 (skipped) only when redis-server is not installed.
 */
#include "first.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "credis_checkout.h"
#include "lua_scripts.h"
#include "redis_fixture.h"

static struct rcli *cli;
static redisContext *raw; /* the test's own look at the server */
static int64_t next_coupon = 5000;

/* The server's clients, opened by the first case (redis_fixture_run starts the server). */
static void connect_once(void)
{
    if (raw == NULL)
        raw = redis_fixture_connect();
    if (cli == NULL)
        cli = redis_fixture_client();
    CU_ASSERT_FATAL(raw != NULL && cli != NULL);
}

/* The test's own command on raw: its reply (never an error), for the caller to free. */
static redisReply *raw_v(const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(raw, fmt, ap);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(r->type != REDIS_REPLY_ERROR);
    return r;
}

static redisReply *raw_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = raw_v(fmt, ap);
    va_end(ap);
    return r;
}

static void raw_do(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    freeReplyObject(raw_v(fmt, ap));
    va_end(ap);
}

static long long raw_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = raw_v(fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Calls of a command since the last CONFIG RESETSTAT (INFO commandstats). */
static long calls_of(const char *command)
{
    char want[64];
    snprintf(want, sizeof want, "cmdstat_%s:calls=", command);
    redisReply *r = raw_cmd("INFO commandstats");
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_STRING);
    const char *at = strstr(r->str, want);
    long n = at != NULL ? strtol(at + strlen(want), NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

/* users from..to of coupon get record "<user>:<version>" -> "<type>:<at>:<until>:o-<user>". */
static void put_records(int64_t coupon, int from, int to, int version, const char *type)
{
    for (int u = from; u <= to; u++)
        CU_ASSERT_FATAL(
            redisAppendCommand(raw, "HSET coupon:{%" PRId64 "}:rpending %d:%d %s:%d:%d:o-%d",
                               coupon, u, version, type, 1000 + u, 2000 + u, u) == REDIS_OK);
    for (int u = from; u <= to; u++) {
        void *r = NULL;
        CU_ASSERT_FATAL(redisGetReply(raw, &r) == REDIS_OK);
        freeReplyObject(r);
    }
}

static void marked_coupons_are_taken_up_to_the_count(void)
{
    connect_once();
    raw_do("DEL " RKEY_CHECKOUT_DIRTY);
    size_t n = 9;
    int64_t ids[16];
    CU_ASSERT_EQUAL(credis_checkout_take(cli, ids, 16, &n), CP_OK); /* none: nil or empty */
    CU_ASSERT_EQUAL(n, 0);
    for (int64_t id = 1; id <= 9; id++)
        CU_ASSERT_EQUAL(credis_checkout_mark(cli, id), CP_OK);
    CU_ASSERT_EQUAL(credis_checkout_mark(cli, INT64_MAX), CP_OK);
    CU_ASSERT_EQUAL(credis_checkout_mark(cli, 3), CP_OK); /* marked twice: one member */
    CU_ASSERT_EQUAL(raw_int("SCARD " RKEY_CHECKOUT_DIRTY), 10);
    CU_ASSERT_EQUAL(credis_checkout_take(cli, ids, 3, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(raw_int("SCARD " RKEY_CHECKOUT_DIRTY), 7);
    int64_t seen = 0;
    size_t m = 0;
    CU_ASSERT_EQUAL(credis_checkout_take(cli, ids + 3, 13, &m), CP_OK);
    CU_ASSERT_EQUAL(m, 7);
    int found_max = 0;
    for (size_t i = 0; i < 10; i++) {
        if (ids[i] == INT64_MAX) {
            found_max = 1;
            continue;
        }
        CU_ASSERT_FATAL(ids[i] >= 1 && ids[i] <= 9);
        CU_ASSERT_EQUAL(seen & ((int64_t)1 << ids[i]), 0); /* each once */
        seen |= (int64_t)1 << ids[i];
    }
    CU_ASSERT_TRUE(found_max);
    CU_ASSERT_EQUAL(seen, 0x3fe);
    CU_ASSERT_EQUAL(raw_int("EXISTS " RKEY_CHECKOUT_DIRTY), 0);
}

static void members_that_are_no_id_are_ignored(void)
{
    connect_once();
    raw_do("DEL " RKEY_CHECKOUT_DIRTY);
    raw_do("SADD " RKEY_CHECKOUT_DIRTY " abc 0 -5 12x 007 9223372036854775808 77");
    int64_t ids[16];
    size_t n = 0;
    CU_ASSERT_EQUAL(credis_checkout_take(cli, ids, 16, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(ids[0], 77);
    CU_ASSERT_EQUAL(raw_int("EXISTS " RKEY_CHECKOUT_DIRTY), 0);
    /* A dirty key of another type: the caller's failure, nothing taken. */
    raw_do("SET " RKEY_CHECKOUT_DIRTY " x");
    n = 9;
    CU_ASSERT_EQUAL(credis_checkout_take(cli, ids, 16, &n), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(credis_checkout_mark(cli, 5), CP_ERR_UNAVAILABLE);
    raw_do("DEL " RKEY_CHECKOUT_DIRTY);
}

enum { MANY = 2500 };

struct seen {
    unsigned char user[MANY + 1];
    int calls, stop_at;
};

static int see(void *arg, const struct rkey_change *c)
{
    struct seen *s = arg;
    CU_ASSERT_FATAL(c->user_id >= 1 && c->user_id <= MANY);
    CU_ASSERT_EQUAL(c->version, 1);
    CU_ASSERT_EQUAL(c->type, RKEY_CHANGE_HELD);
    CU_ASSERT_EQUAL(c->at_ms, 1000 + c->user_id);
    CU_ASSERT_EQUAL(c->until_ms, 2000 + c->user_id);
    char order[32];
    snprintf(order, sizeof order, "o-%" PRId64, c->user_id);
    CU_ASSERT_STRING_EQUAL(c->order_id, order);
    s->user[c->user_id]++;
    return ++s->calls == s->stop_at ? CP_ERR_LIMIT : CP_OK;
}

static void records_are_read_page_by_page_and_malformed_ones_left(void)
{
    connect_once();
    int64_t coupon = next_coupon++;
    put_records(coupon, 1, MANY, 1, "H");
    raw_do("HSET coupon:{%" PRId64
           "}:rpending x:1 H:1:2:o 5:1x H:1:2:o 9001:1 Z:1:2:o 9002:2 H:1:2:o/",
           coupon);
    struct seen *s = calloc(1, sizeof *s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    raw_do("CONFIG RESETSTAT");
    size_t bad = 0;
    CU_ASSERT_EQUAL(credis_checkout_records(cli, coupon, 100000, see, s, &bad), CP_OK);
    CU_ASSERT_EQUAL(s->calls, MANY);
    for (int u = 1; u <= MANY; u++)
        CU_ASSERT_EQUAL_FATAL(s->user[u], 1);
    CU_ASSERT_EQUAL(bad, 4);
    CU_ASSERT_TRUE(calls_of("hscan") >= 3); /* COUNT 1000: at least three pages */
    CU_ASSERT_EQUAL(raw_int("HLEN coupon:{%" PRId64 "}:rpending", coupon), MANY + 4); /* left */
    /* At most max records, across pages. */
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL(credis_checkout_records(cli, coupon, 1500, see, s, &bad), CP_OK);
    CU_ASSERT_EQUAL(s->calls, 1500);
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL(credis_checkout_records(cli, coupon, 7, see, s, &bad), CP_OK);
    CU_ASSERT_EQUAL(s->calls, 7);
    /* fn's refusal stops the walk and is the answer. */
    memset(s, 0, sizeof *s);
    s->stop_at = 10;
    CU_ASSERT_EQUAL(credis_checkout_records(cli, coupon, 100000, see, s, &bad), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(s->calls, 10);
    /* None at all; a key of another type. */
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL(credis_checkout_records(cli, next_coupon++, 10, see, s, &bad), CP_OK);
    CU_ASSERT_EQUAL(s->calls + (int)bad, 0);
    int64_t wrong = next_coupon++;
    raw_do("SET coupon:{%" PRId64 "}:rpending x", wrong);
    CU_ASSERT_EQUAL(credis_checkout_records(cli, wrong, 10, see, s, &bad), CP_ERR_UNAVAILABLE);
    free(s);
}

static void drop_removes_exactly_the_named_records_across_chunks(void)
{
    connect_once();
    int64_t coupon = next_coupon++;
    enum { TOTAL = 1100, DROP = 1030 };
    put_records(coupon, 1, TOTAL, 1, "R");
    put_records(coupon, 1, 3, 2, "C"); /* later versions of users 1..3: kept */
    struct credis_change_id *ids = calloc(DROP + 5, sizeof *ids);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    for (int i = 0; i < DROP; i++)
        ids[i] = (struct credis_change_id){i + 1, 1};
    for (int i = 0; i < 5; i++)
        ids[DROP + i] = (struct credis_change_id){INT64_MAX - i, 9}; /* not there */
    raw_do("CONFIG RESETSTAT");
    CU_ASSERT_EQUAL(credis_checkout_drop(cli, coupon, ids, DROP + 5), CP_OK);
    CU_ASSERT_EQUAL(calls_of("hdel"),
                    (DROP + 5 + CREDIS_CHECKOUT_DROP_CHUNK - 1) / CREDIS_CHECKOUT_DROP_CHUNK);
    CU_ASSERT_EQUAL(raw_int("HLEN coupon:{%" PRId64 "}:rpending", coupon), TOTAL - DROP + 3);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 1030:1", coupon), 0);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 1031:1", coupon), 1);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 1100:1", coupon), 1);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 1:2", coupon), 1);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 3:2", coupon), 1);
    raw_do("CONFIG RESETSTAT");
    CU_ASSERT_EQUAL(credis_checkout_drop(cli, coupon, ids, 0), CP_OK);
    CU_ASSERT_EQUAL(calls_of("hdel"), 0);
    int64_t wrong = next_coupon++;
    raw_do("SET coupon:{%" PRId64 "}:rpending x", wrong);
    CU_ASSERT_EQUAL(credis_checkout_drop(cli, wrong, ids, 2), CP_ERR_UNAVAILABLE);
    free(ids);
}

/* A hold of user by order, ending at until_ms (1000: long past), as redeem.lua keeps it. */
static void hold(int64_t coupon, int user, long long until_ms)
{
    raw_do("HSET coupon:{%" PRId64 "}:redeem %d 1:H:500:%lld:o-%d", coupon, user, until_ms, user);
    raw_do("ZADD coupon:{%" PRId64 "}:holds %lld %d", coupon, until_ms, user);
}

static void sweep_lapses_holds_and_lists_coupons_with_records(void)
{
    connect_once();
    enum { N = 300 }; /* more than one pipeline */
    int64_t *ids = calloc(N, sizeof *ids), with[N];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    for (int i = 0; i < N; i++)
        ids[i] = next_coupon++;
    int64_t a = ids[280], c = ids[10], b = ids[20];
    hold(a, 1, 1000);
    hold(a, 2, 1000);
    hold(a, 3, 32503680000000LL); /* year 3000: stays held */
    put_records(c, 1, 1, 4, "R");
    hold(b, 1, 32503680000000LL);
    char sha[41] = "";
    long long lapsed = 0;
    size_t nwith = 0;
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, N, 1000, &lapsed, with, N, &nwith), CP_OK);
    CU_ASSERT_EQUAL(strlen(sha), 40);
    redisReply *l = raw_cmd("SCRIPT LOAD %s", lua_redeem_script);
    CU_ASSERT_STRING_EQUAL(sha, l->str); /* the script's own SHA */
    freeReplyObject(l);
    CU_ASSERT_EQUAL(lapsed, 2);
    CU_ASSERT_EQUAL(nwith, 2);
    CU_ASSERT_EQUAL(with[0], c); /* in the order given */
    CU_ASSERT_EQUAL(with[1], a);
    CU_ASSERT_EQUAL(raw_int("ZCARD coupon:{%" PRId64 "}:holds", a), 1);
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 1:2", a), 1); /* the lapse */
    CU_ASSERT_EQUAL(raw_int("HEXISTS coupon:{%" PRId64 "}:rpending 2:2", a), 1);
    CU_ASSERT_EQUAL(raw_int("HLEN coupon:{%" PRId64 "}:rpending", a), 2);
    /* Nothing lapses twice; cap bounds the list; max bounds one coupon's lapses. */
    lapsed = 0;
    nwith = 0;
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, N, 1000, &lapsed, with, 1, &nwith), CP_OK);
    CU_ASSERT_EQUAL(lapsed, 0);
    CU_ASSERT_EQUAL(nwith, 1);
    CU_ASSERT_EQUAL(with[0], c);
    int64_t d = next_coupon++;
    hold(d, 1, 1000);
    hold(d, 2, 1000);
    hold(d, 3, 1000);
    lapsed = 0;
    nwith = 0;
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, &d, 1, 2, &lapsed, with, N, &nwith), CP_OK);
    CU_ASSERT_EQUAL(lapsed, 2);
    CU_ASSERT_EQUAL(raw_int("ZCARD coupon:{%" PRId64 "}:holds", d), 1);
    free(ids);
}

static void a_script_flush_empties_the_sha_and_the_next_call_loads_it(void)
{
    connect_once();
    int64_t ids[2];
    ids[0] = next_coupon++;
    ids[1] = next_coupon++;
    char sha[41] = "";
    long long lapsed = 0;
    int64_t with[2];
    size_t nwith = 0;
    /* No hold due anywhere: two plain commands per coupon, no script, nothing loaded. */
    raw_do("CONFIG RESETSTAT");
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, 2, 10, &lapsed, with, 2, &nwith), CP_OK);
    CU_ASSERT_STRING_EQUAL(sha, "");
    CU_ASSERT_EQUAL(calls_of("evalsha") + calls_of("script|load") + calls_of("script"), 0);
    CU_ASSERT_EQUAL(calls_of("zcount"), 2);
    hold(ids[0], 1, 1000);
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, 2, 10, &lapsed, with, 2, &nwith), CP_OK);
    CU_ASSERT_EQUAL_FATAL(strlen(sha), 40);
    CU_ASSERT_EQUAL(lapsed, 1);
    lapsed = 0;
    nwith = 0;
    raw_do("DEL coupon:{%" PRId64 "}:rpending", ids[0]); /* as if the applier took it */
    char loaded[41];
    memcpy(loaded, sha, sizeof loaded);
    hold(ids[1], 1, 1000);
    raw_do("SCRIPT FLUSH");
    raw_do("CONFIG RESETSTAT");
    /* NOSCRIPT: nothing ran, no failure, the SHA forgotten. */
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, 2, 10, &lapsed, with, 2, &nwith), CP_OK);
    CU_ASSERT_STRING_EQUAL(sha, "");
    CU_ASSERT_EQUAL(lapsed, 0);
    CU_ASSERT_EQUAL(nwith, 0);
    CU_ASSERT_EQUAL(raw_int("ZCARD coupon:{%" PRId64 "}:holds", ids[1]), 1);
    CU_ASSERT_EQUAL(calls_of("script|load") + calls_of("script"), 0);
    /* The next call loads it and sweeps. */
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, 2, 10, &lapsed, with, 2, &nwith), CP_OK);
    CU_ASSERT_STRING_EQUAL(sha, loaded);
    CU_ASSERT_EQUAL(calls_of("script|load") + calls_of("script"), 1);
    CU_ASSERT_EQUAL(lapsed, 1);
    CU_ASSERT_EQUAL(nwith, 1);
    CU_ASSERT_EQUAL(with[0], ids[1]);
}

static void a_coupon_the_script_fails_on_fails_the_sweep_and_keeps_the_others(void)
{
    connect_once();
    int64_t ids[2];
    ids[0] = next_coupon++;
    ids[1] = next_coupon++;
    hold(ids[0], 1, 1000);
    raw_do("SET coupon:{%" PRId64 "}:holds x", ids[1]); /* WRONGTYPE inside the script */
    char sha[41] = "";
    long long lapsed = 0;
    int64_t with[2];
    size_t nwith = 0;
    CU_ASSERT_EQUAL(credis_checkout_sweep(cli, sha, ids, 2, 10, &lapsed, with, 2, &nwith),
                    CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(lapsed, 1);
    CU_ASSERT_EQUAL(nwith, 1);
    CU_ASSERT_EQUAL(strlen(sha), 40); /* not a NOSCRIPT: kept */
    /* The client is usable after it: every reply of the pipeline was read. */
    CU_ASSERT_EQUAL(credis_checkout_mark(cli, 1), CP_OK);
    raw_do("DEL " RKEY_CHECKOUT_DIRTY);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"marked_coupons_are_taken_up_to_the_count", marked_coupons_are_taken_up_to_the_count},
        {"members_that_are_no_id_are_ignored", members_that_are_no_id_are_ignored},
        {"records_are_read_page_by_page_and_malformed_ones_left",
         records_are_read_page_by_page_and_malformed_ones_left},
        {"drop_removes_exactly_the_named_records_across_chunks",
         drop_removes_exactly_the_named_records_across_chunks},
        {"sweep_lapses_holds_and_lists_coupons_with_records",
         sweep_lapses_holds_and_lists_coupons_with_records},
        {"a_script_flush_empties_the_sha_and_the_next_call_loads_it",
         a_script_flush_empties_the_sha_and_the_next_call_loads_it},
        {"a_coupon_the_script_fails_on_fails_the_sweep_and_keeps_the_others",
         a_coupon_the_script_fails_on_fails_the_sweep_and_keeps_the_others},
    };
    int status = redis_fixture_run("credis_checkout", UNIT_CASES(tests));
    rcli_free(cli);
    if (raw != NULL)
        redisFree(raw);
    return status;
}
