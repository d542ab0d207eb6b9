/*
 * test_redeem_lua.c - every outcome of lua/redeem.lua, the checkout decision of an
 * issuance (redeem, hold, release, cancel, sweep of lapsed holds), on a real
 * redis-server this program starts (tests/unit/redis_fixture.h).
 *
 * The script is the whole decision, so each reply is provoked here with the exact
 * state and outbox records it must leave: versions count up by one per change,
 * a lapse is recorded before whatever change follows it, refusals write nothing.
 * Exit 77 (skipped) only when redis-server is not installed.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <hiredis/hiredis.h>

#include "lua_scripts.h"
#include "redis_fixture.h"

static redisContext *rc;
static int64_t next_coupon = 1;

struct reply {
    long long code, a, b, sequence, issued_at;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static redisReply *cmd(const char *fmt, int64_t coupon, const char *field)
{
    redisReply *r = redisCommand(rc, fmt, coupon, field);
    CU_ASSERT_FATAL(r != NULL);
    return r;
}

/* A coupon with users 1..n issued ("<user>:<issuedAt>", sequence = user). */
static int64_t coupon_with_users(int n, long long issued_at_ms)
{
    int64_t id = next_coupon++;
    for (int u = 1; u <= n; u++) {
        redisReply *r =
            redisCommand(rc, "HSET coupon:{%" PRId64 "}:users %d %d:%lld", id, u, u, issued_at_ms);
        CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
    return id;
}

static long long now_ms(void)
{
    redisReply *r = redisCommand(rc, "TIME");
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    long long ms =
        strtoll(r->element[0]->str, NULL, 10) * 1000 + strtoll(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    return ms;
}

/* Runs an operation with every limit given; the reply's five integers. */
static struct reply run_full(int64_t c, const char *op, int user, const char *order, long ttl_ms,
                             long long usable_ms, long long until_ms, long long bound)
{
    struct reply out = {0};
    redisReply *r = redisCommand(
        rc,
        "EVAL %s 4 coupon:{%" PRId64 "}:users coupon:{%" PRId64 "}:redeem coupon:{%" PRId64
        "}:holds coupon:{%" PRId64 "}:rpending %s %d %s %ld %lld %lld %lld",
        lua_redeem_script, c, c, c, c, op, user, order, ttl_ms, usable_ms, until_ms, bound);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_ARRAY && r->elements == 5);
    long long *v[5] = {&out.code, &out.a, &out.b, &out.sequence, &out.issued_at};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(r->element[i]->type == REDIS_REPLY_INTEGER);
        *v[i] = r->element[i]->integer;
    }
    freeReplyObject(r);
    return out;
}

static struct reply run(int64_t c, const char *op, int user, const char *order, long ttl_ms)
{
    return run_full(c, op, user, order, ttl_ms, -1, -1, 1000000);
}

static long long sweep(int64_t c, int max)
{
    redisReply *r =
        redisCommand(rc,
                     "EVAL %s 4 coupon:{%" PRId64 "}:users coupon:{%" PRId64
                     "}:redeem coupon:{%" PRId64 "}:holds coupon:{%" PRId64 "}:rpending sweep %d",
                     lua_redeem_script, c, c, c, c, max);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* The state record of a user ("" when none), compared without its timestamps:
 * "<ver>:<S>:<orderId>". */
static void expect_state(int64_t c, const char *user, const char *want)
{
    redisReply *r = cmd("HGET coupon:{%" PRId64 "}:redeem %s", c, user);
    char got[160] = "";
    if (r->type == REDIS_REPLY_STRING) {
        long long ver = 0, at = 0, until = 0;
        char s = 0;
        int off = 0;
        CU_ASSERT_FATAL(sscanf(r->str, "%lld:%c:%lld:%lld:%n", &ver, &s, &at, &until, &off) == 4);
        snprintf(got, sizeof got, "%lld:%c:%s", ver, s, r->str + off);
    }
    freeReplyObject(r);
    CU_ASSERT_STRING_EQUAL(got, want);
}

/* The outbox record "<userId>:<ver>" as "<T>:<orderId>" ("" when none). */
static void expect_record(int64_t c, const char *field, const char *want)
{
    redisReply *r = cmd("HGET coupon:{%" PRId64 "}:rpending %s", c, field);
    char got[160] = "";
    if (r->type == REDIS_REPLY_STRING) {
        char t = 0;
        long long at = 0, until = 0;
        int off = 0;
        CU_ASSERT_FATAL(sscanf(r->str, "%c:%lld:%lld:%n", &t, &at, &until, &off) == 3);
        snprintf(got, sizeof got, "%c:%s", t, r->str + off);
    }
    freeReplyObject(r);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static long long hlen(int64_t c, const char *kind)
{
    redisReply *r = cmd("HLEN coupon:{%" PRId64 "}:%s", c, kind);
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static long long zcard_holds(int64_t c)
{
    redisReply *r = redisCommand(rc, "ZCARD coupon:{%" PRId64 "}:holds", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void redeem_once_then_replay_then_conflict(void)
{
    long long before = now_ms();
    int64_t c = coupon_with_users(2, before - 1000);
    struct reply r = run(c, "redeem", 1, "o-1", 0);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT(r.a >= before && r.a <= now_ms());
    CU_ASSERT_EQUAL(r.b, 1); /* version */
    CU_ASSERT_EQUAL(r.sequence, 1);
    CU_ASSERT_EQUAL(r.issued_at, before - 1000);
    struct reply again = run(c, "redeem", 1, "o-1", 0);
    CU_ASSERT_EQUAL(again.code, 2);
    CU_ASSERT_EQUAL(again.a, r.a); /* the original redemption's time */
    struct reply other = run(c, "redeem", 1, "o-2", 0);
    CU_ASSERT_EQUAL(other.code, -8);
    CU_ASSERT_EQUAL(other.a, r.a);
    expect_state(c, "1", "1:R:o-1");
    expect_record(c, "1:1", "R:o-1");
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 1); /* replays and refusals record nothing */
}

static void redeem_needs_an_issuance(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    struct reply r = run(c, "redeem", 2, "o-1", 0);
    CU_ASSERT_EQUAL(r.code, -1);
    r = run(c, "hold", 2, "o-1", 60000);
    CU_ASSERT_EQUAL(r.code, -1);
    r = run(c, "cancel", 2, "o-1", 0);
    CU_ASSERT_EQUAL(r.code, -1);
    CU_ASSERT_EQUAL(hlen(c, "redeem"), 0);
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 0);
}

static void expiry_is_the_earlier_of_days_and_until(void)
{
    long long now = now_ms();
    int64_t c = coupon_with_users(3, now - 10000);
    /* usable 5 s after issuance: over 5 s ago */
    struct reply r = run_full(c, "redeem", 1, "o", 0, 5000, -1, 1000000);
    CU_ASSERT_EQUAL(r.code, -7);
    CU_ASSERT_EQUAL(r.a, now - 10000 + 5000);
    /* usable 60 s after issuance, but the campaign's until is past */
    r = run_full(c, "redeem", 2, "o", 0, 60000, now - 1, 1000000);
    CU_ASSERT_EQUAL(r.code, -7);
    CU_ASSERT_EQUAL(r.a, now - 1);
    /* both in the future: redeemable */
    r = run_full(c, "hold", 3, "o", 1000, 60000, now + 60000, 1000000);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 1);
}

static void outbox_bound_refuses_new_changes_only(void)
{
    int64_t c = coupon_with_users(3, now_ms());
    CU_ASSERT_EQUAL(run_full(c, "redeem", 1, "a", 0, -1, -1, 1).code, 1);
    CU_ASSERT_EQUAL(run_full(c, "redeem", 2, "b", 0, -1, -1, 1).code, -6);
    /* an undo is never refused: the consumer applies it after the redemption */
    CU_ASSERT_EQUAL(run_full(c, "cancel", 1, "a", 0, -1, -1, 1).code, 1);
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 2);
    expect_state(c, "2", "");
}

static void hold_then_confirm_then_cancel_then_another_order(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    struct reply h = run(c, "hold", 1, "o-1", 60000);
    CU_ASSERT_EQUAL(h.code, 1);
    CU_ASSERT_EQUAL(h.b, 1);
    CU_ASSERT_EQUAL(zcard_holds(c), 1);
    struct reply again = run(c, "hold", 1, "o-1", 900000);
    CU_ASSERT_EQUAL(again.code, 2);
    CU_ASSERT_EQUAL(again.a, h.a); /* extends nothing */
    CU_ASSERT_EQUAL(run(c, "hold", 1, "o-2", 60000).code, -9);
    CU_ASSERT_EQUAL(run(c, "redeem", 1, "o-2", 0).code, -9);
    struct reply conf = run(c, "redeem", 1, "o-1", 0);
    CU_ASSERT_EQUAL(conf.code, 1);
    CU_ASSERT_EQUAL(conf.b, 2);
    CU_ASSERT_EQUAL(zcard_holds(c), 0);
    CU_ASSERT_EQUAL(run(c, "cancel", 1, "o-2", 0).code, -10);
    CU_ASSERT_EQUAL(run(c, "cancel", 1, "o-1", 0).code, 1);
    CU_ASSERT_EQUAL(run(c, "cancel", 1, "o-1", 0).code, 0); /* idempotent */
    struct reply r = run(c, "redeem", 1, "o-2", 0);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT_EQUAL(r.b, 4);
    expect_record(c, "1:1", "H:o-1");
    expect_record(c, "1:2", "R:o-1");
    expect_record(c, "1:3", "C:o-1");
    expect_record(c, "1:4", "R:o-2");
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 4);
    expect_state(c, "1", "4:R:o-2");
}

static void release_frees_and_is_idempotent(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    CU_ASSERT_EQUAL(run(c, "hold", 1, "o-1", 60000).code, 1);
    CU_ASSERT_EQUAL(run(c, "release", 1, "o-2", 0).code, -10);
    struct reply r = run(c, "release", 1, "o-1", 0);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT_EQUAL(r.b, 2);
    CU_ASSERT_EQUAL(run(c, "release", 1, "o-1", 0).code, 0);
    CU_ASSERT_EQUAL(zcard_holds(c), 0);
    expect_record(c, "1:2", "X:o-1");
    CU_ASSERT_EQUAL(run(c, "hold", 1, "o-2", 60000).code, 1);
    expect_state(c, "1", "3:H:o-2");
}

/* A lapsed hold frees the coupon; whoever comes next records the lapse first. */
static void a_lapsed_hold_is_recorded_before_the_next_change(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    CU_ASSERT_EQUAL(run(c, "hold", 1, "o-1", 30).code, 1);
    sleep_ms(80);
    struct reply r = run(c, "hold", 1, "o-2", 60000);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT_EQUAL(r.b, 3);
    expect_record(c, "1:1", "H:o-1");
    expect_record(c, "1:2", "L:o-1");
    expect_record(c, "1:3", "H:o-2");
    CU_ASSERT_EQUAL(zcard_holds(c), 1);
    /* the first order comes back too late: held by another */
    CU_ASSERT_EQUAL(run(c, "redeem", 1, "o-1", 0).code, -9);
}

static void sweep_releases_exactly_the_lapsed_holds(void)
{
    int64_t c = coupon_with_users(4, now_ms());
    CU_ASSERT_EQUAL(run(c, "hold", 1, "a", 30).code, 1);
    CU_ASSERT_EQUAL(run(c, "hold", 2, "b", 30).code, 1);
    CU_ASSERT_EQUAL(run(c, "hold", 3, "c", 30).code, 1);
    CU_ASSERT_EQUAL(run(c, "hold", 4, "d", 60000).code, 1);
    sleep_ms(80);
    CU_ASSERT_EQUAL(sweep(c, 2), 2); /* at most max per call */
    CU_ASSERT_EQUAL(sweep(c, 10), 1);
    CU_ASSERT_EQUAL(sweep(c, 10), 0);
    CU_ASSERT_EQUAL(zcard_holds(c), 1);
    expect_state(c, "1", "2:F:a");
    expect_state(c, "3", "2:F:c");
    expect_state(c, "4", "1:H:d");
    expect_record(c, "2:2", "L:b");
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 7); /* 4 held + 3 lapsed */
    /* after the sweep, redeem by anyone is a plain redemption */
    struct reply r = run(c, "redeem", 1, "z", 0);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT_EQUAL(r.b, 3);
}

static void hold_of_a_redeemed_issuance_is_refused(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    CU_ASSERT_EQUAL(run(c, "redeem", 1, "o-1", 0).code, 1);
    CU_ASSERT_EQUAL(run(c, "hold", 1, "o-1", 60000).code, -8);
    CU_ASSERT_EQUAL(run(c, "release", 1, "o-1", 0).code, 0);
    CU_ASSERT_EQUAL(hlen(c, "rpending"), 1);
}

static void big_user_ids_and_colons_in_orders_survive(void)
{
    int64_t c = next_coupon++;
    redisReply *r =
        redisCommand(rc, "HSET coupon:{%" PRId64 "}:users 9223372036854775807 7:1000", c);
    CU_ASSERT_FATAL(r != NULL);
    freeReplyObject(r);
    r = redisCommand(rc,
                     "EVAL %s 4 coupon:{%" PRId64 "}:users coupon:{%" PRId64
                     "}:redeem coupon:{%" PRId64 "}:holds coupon:{%" PRId64
                     "}:rpending redeem 9223372036854775807 shop:order:42 0 -1 -1 100",
                     lua_redeem_script, c, c, c, c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 1);
    CU_ASSERT_EQUAL(r->element[3]->integer, 7);
    freeReplyObject(r);
    expect_state(c, "9223372036854775807", "1:R:shop:order:42");
    expect_record(c, "9223372036854775807:1", "R:shop:order:42");
}

static void unknown_operation_is_an_error(void)
{
    int64_t c = coupon_with_users(1, now_ms());
    redisReply *r = redisCommand(rc,
                                 "EVAL %s 4 coupon:{%" PRId64 "}:users coupon:{%" PRId64
                                 "}:redeem coupon:{%" PRId64 "}:holds coupon:{%" PRId64
                                 "}:rpending steal 1 o 0 -1 -1 100",
                                 lua_redeem_script, c, c, c, c);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(hlen(c, "redeem"), 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"redeem_once_then_replay_then_conflict", redeem_once_then_replay_then_conflict},
        {"redeem_needs_an_issuance", redeem_needs_an_issuance},
        {"expiry_is_the_earlier_of_days_and_until", expiry_is_the_earlier_of_days_and_until},
        {"outbox_bound_refuses_new_changes_only", outbox_bound_refuses_new_changes_only},
        {"hold_then_confirm_then_cancel_then_another_order",
         hold_then_confirm_then_cancel_then_another_order},
        {"release_frees_and_is_idempotent", release_frees_and_is_idempotent},
        {"a_lapsed_hold_is_recorded_before_the_next_change",
         a_lapsed_hold_is_recorded_before_the_next_change},
        {"sweep_releases_exactly_the_lapsed_holds", sweep_releases_exactly_the_lapsed_holds},
        {"hold_of_a_redeemed_issuance_is_refused", hold_of_a_redeemed_issuance_is_refused},
        {"big_user_ids_and_colons_in_orders_survive", big_user_ids_and_colons_in_orders_survive},
        {"unknown_operation_is_an_error", unknown_operation_is_an_error},
    };
    int started = redis_fixture_start();
    if (started == 77) {
        fprintf(stderr, "redis-server not found: skipped\n");
        return 77;
    }
    if (started != 0 || (rc = redis_fixture_connect()) == NULL) {
        fprintf(stderr, "could not start redis-server\n");
        redis_fixture_stop();
        return 2;
    }
    int status = unit_run_suite("redeem_lua", NULL, UNIT_CASES(tests));
    redisFree(rc);
    redis_fixture_stop();
    return status;
}
