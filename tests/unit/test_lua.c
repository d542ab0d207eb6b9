/*
 * test_lua.c - every outcome of the embedded Lua scripts (lua/issue.lua,
 * rollback.lua, restore.lua) on a real redis-server that this program starts
 * on a unix socket in a private temporary folder and stops at the end.
 *
 * The scripts are the whole of the issue decision, so each reply code is
 * provoked here: issued, duplicate (with the first issuance's sequence),
 * sold out, not started, ended, unlimited, meta missing; rollback returns the
 * sequence to the free set and the next issuance reuses it; rollback of a
 * reservation that is not (or no longer) there changes nothing; restore is
 * idempotent. Exit 77 (skipped) only when redis-server is not installed.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"
#include <hiredis/hiredis.h>

#include "lua_scripts.h"
#include "redis_fixture.h"

static redisContext *rc;
static int64_t next_coupon = 1;

static int64_t redis_now_ms(void)
{
    redisReply *r = redisCommand(rc, "TIME");
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    int64_t ms =
        strtoll(r->element[0]->str, NULL, 10) * 1000 + strtoll(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    return ms;
}

/* A fresh coupon id with its meta written (total -1 = unlimited). */
static int64_t coupon_with_meta(int64_t total, int64_t start_offset_ms, int64_t end_offset_ms)
{
    int64_t id = next_coupon++;
    int64_t now = redis_now_ms();
    redisReply *r = redisCommand(
        rc, "HSET coupon:{%" PRId64 "}:meta total %" PRId64 " start_ms %" PRId64 " end_ms %" PRId64,
        id, total, now + start_offset_ms, now + end_offset_ms);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    return id;
}

/* Runs issue.lua with an outbox bound (event id derived from the user); reply {code, a, b}. */
static void run_issue_bounded(int64_t coupon, int64_t user, long long max_pending, long long out[3])
{
    char event_id[33];
    snprintf(event_id, sizeof event_id, "%032" PRIx64, (uint64_t)user);
    redisReply *r = redisCommand(
        rc,
        "EVAL %s 5 coupon:{%" PRId64 "}:meta coupon:{%" PRId64 "}:users coupon:{%" PRId64
        "}:seq coupon:{%" PRId64 "}:free coupon:{%" PRId64 "}:pending %" PRId64 " %s %lld",
        lua_issue_script, coupon, coupon, coupon, coupon, coupon, user, event_id, max_pending);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(r->element[i]->type == REDIS_REPLY_INTEGER);
        out[i] = r->element[i]->integer;
    }
    freeReplyObject(r);
}

/* Reply {code, sequence, issuedAtMs} with a bound that never bites. */
static void run_issue(int64_t coupon, int64_t user, long long out[3])
{
    run_issue_bounded(coupon, user, 1000000, out);
}

static long long run_rollback(int64_t coupon, int64_t user, long long sequence)
{
    redisReply *r = redisCommand(rc,
                                 "EVAL %s 3 coupon:{%" PRId64 "}:users coupon:{%" PRId64
                                 "}:free coupon:{%" PRId64 "}:pending %" PRId64 " %lld",
                                 lua_rollback_script, coupon, coupon, coupon, user, sequence);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long hlen_pending(int64_t coupon)
{
    redisReply *r = redisCommand(rc, "HLEN coupon:{%" PRId64 "}:pending", coupon);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long hlen_users(int64_t coupon)
{
    redisReply *r = redisCommand(rc, "HLEN coupon:{%" PRId64 "}:users", coupon);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void issue_records_user_with_sequence_and_redis_time(void)
{
    int64_t c = coupon_with_meta(3, -1000, 60000);
    int64_t before = redis_now_ms();
    long long out[3];
    run_issue(c, 7, out);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 1);
    CU_ASSERT(out[2] >= before && out[2] <= redis_now_ms());
    redisReply *r = redisCommand(rc, "HGET coupon:{%" PRId64 "}:users 7", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_STRING);
    char want[64];
    snprintf(want, sizeof want, "1:%lld", out[2]);
    CU_ASSERT_STRING_EQUAL(r->str, want);
    freeReplyObject(r);
    r = redisCommand(rc, "TTL coupon:{%" PRId64 "}:users", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    CU_ASSERT_EQUAL(r->integer, -1); /* issuance state never expires */
    freeReplyObject(r);
    /* The pending record names the event, written in the same atomic step. */
    r = redisCommand(rc, "HGET coupon:{%" PRId64 "}:pending 7", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_STRING);
    snprintf(want, sizeof want, "%032x:1:%lld", 7, out[2]);
    CU_ASSERT_STRING_EQUAL(r->str, want);
    freeReplyObject(r);
}

static void issue_duplicate_returns_the_first_issuance(void)
{
    int64_t c = coupon_with_meta(5, -1000, 60000);
    long long first[3], again[3];
    run_issue(c, 11, first);
    run_issue(c, 12, again);
    run_issue(c, 11, again);
    CU_ASSERT_EQUAL(again[0], -2);
    CU_ASSERT_EQUAL(again[1], first[1]);
    CU_ASSERT_EQUAL(again[2], first[2]);
    CU_ASSERT_EQUAL(hlen_users(c), 2);
}

static void issue_sold_out_after_exactly_total(void)
{
    int64_t c = coupon_with_meta(2, -1000, 60000);
    long long out[3];
    run_issue(c, 1, out);
    CU_ASSERT_EQUAL(out[0], 1);
    run_issue(c, 2, out);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 2);
    run_issue(c, 3, out);
    CU_ASSERT_EQUAL(out[0], -3);
    run_issue(c, 1, out); /* a holder asking again is told duplicate, not sold out */
    CU_ASSERT_EQUAL(out[0], -2);
    CU_ASSERT_EQUAL(hlen_users(c), 2);
    CU_ASSERT_EQUAL(hlen_pending(c), 2); /* only the two accepted claims */
}

/* The in-process flags live only as long as the reply says the answer stays true. */
static void refusals_say_how_long_they_stay_true(void)
{
    long long out[3];
    int64_t early = coupon_with_meta(5, 60000, 120000);
    run_issue(early, 1, out);
    CU_ASSERT_EQUAL(out[0], -4);
    CU_ASSERT(out[2] > 59000 && out[2] <= 60000); /* ms until startAt */
    int64_t c = coupon_with_meta(1, -1000, 30000);
    run_issue(c, 1, out);
    run_issue(c, 2, out);
    CU_ASSERT_EQUAL(out[0], -3);
    CU_ASSERT(out[2] > 29000 && out[2] <= 30000); /* ms until endAt */
}

/* Kafka far behind: the outbox bound refuses new claims, recording nothing - but a
 * holder is still told their sequence, and the bound is per coupon. */
static void issue_refuses_beyond_the_outbox_bound(void)
{
    int64_t c = coupon_with_meta(-1, -1000, 60000);
    long long out[3];
    run_issue_bounded(c, 1, 2, out);
    CU_ASSERT_EQUAL(out[0], 1);
    run_issue_bounded(c, 2, 2, out);
    CU_ASSERT_EQUAL(out[0], 1);
    run_issue_bounded(c, 3, 2, out);
    CU_ASSERT_EQUAL(out[0], -6);
    run_issue_bounded(c, 1, 2, out);
    CU_ASSERT_EQUAL(out[0], -2);
    CU_ASSERT_EQUAL(out[1], 1);
    CU_ASSERT_EQUAL(hlen_users(c), 2);
    CU_ASSERT_EQUAL(hlen_pending(c), 2);
    /* Kafka acknowledged one event: its record goes, and room comes back. */
    redisReply *r = redisCommand(rc, "HDEL coupon:{%" PRId64 "}:pending 1", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    run_issue_bounded(c, 3, 2, out);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 3);
    int64_t other = coupon_with_meta(-1, -1000, 60000);
    run_issue_bounded(other, 3, 2, out);
    CU_ASSERT_EQUAL(out[0], 1);
}

static void issue_refuses_outside_the_window(void)
{
    long long out[3];
    int64_t early = coupon_with_meta(5, 60000, 120000);
    run_issue(early, 1, out);
    CU_ASSERT_EQUAL(out[0], -4);
    int64_t late = coupon_with_meta(5, -120000, -60000);
    run_issue(late, 1, out);
    CU_ASSERT_EQUAL(out[0], -5);
    /* end is exclusive */
    int64_t ended_now = coupon_with_meta(5, -120000, 0);
    run_issue(ended_now, 1, out);
    CU_ASSERT_EQUAL(out[0], -5);
    CU_ASSERT_EQUAL(hlen_users(early) + hlen_users(late) + hlen_users(ended_now), 0);
    CU_ASSERT_EQUAL(hlen_pending(early) + hlen_pending(late) + hlen_pending(ended_now), 0);
}

static void issue_unlimited_never_sells_out(void)
{
    int64_t c = coupon_with_meta(-1, -1000, 60000);
    long long out[3];
    for (int64_t u = 1; u <= 300; u++) {
        run_issue(c, u, out);
        CU_ASSERT_EQUAL(out[0], 1);
        CU_ASSERT_EQUAL(out[1], u);
    }
    CU_ASSERT_EQUAL(hlen_users(c), 300);
}

static void issue_without_meta_asks_for_a_reload(void)
{
    int64_t c = next_coupon++;
    long long out[3];
    run_issue(c, 1, out);
    CU_ASSERT_EQUAL(out[0], 0);
    CU_ASSERT_EQUAL(hlen_users(c), 0);
}

static void issue_handles_user_ids_beyond_lua_number_precision(void)
{
    int64_t c = coupon_with_meta(5, -1000, 60000);
    long long out[3];
    run_issue(c, INT64_MAX, out);
    CU_ASSERT_EQUAL(out[0], 1);
    run_issue(c, INT64_MAX - 1, out); /* equal as doubles; distinct as hash fields */
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(hlen_users(c), 2);
}

static void rollback_returns_stock_and_the_sequence_is_reused(void)
{
    int64_t c = coupon_with_meta(2, -1000, 60000);
    long long a[3], b[3], x[3];
    run_issue(c, 1, a);
    run_issue(c, 2, b);
    run_issue(c, 3, x);
    CU_ASSERT_EQUAL(x[0], -3);
    CU_ASSERT_EQUAL(hlen_pending(c), 2);
    CU_ASSERT_EQUAL(run_rollback(c, 1, a[1]), 1);
    CU_ASSERT_EQUAL(hlen_users(c), 1);
    CU_ASSERT_EQUAL(hlen_pending(c), 1); /* the record went with the reservation */
    run_issue(c, 3, x);
    CU_ASSERT_EQUAL(x[0], 1);
    CU_ASSERT_EQUAL(x[1], a[1]); /* numbering stays within 1..total */
    CU_ASSERT_EQUAL(hlen_users(c), 2);
}

static void rollback_of_a_missing_or_foreign_reservation_changes_nothing(void)
{
    int64_t c = coupon_with_meta(5, -1000, 60000);
    long long a[3];
    run_issue(c, 1, a);
    CU_ASSERT_EQUAL(run_rollback(c, 2, a[1]), 0);     /* user 2 holds nothing */
    CU_ASSERT_EQUAL(run_rollback(c, 1, a[1] + 1), 0); /* not that reservation */
    CU_ASSERT_EQUAL(run_rollback(c, 1, a[1]), 1);
    CU_ASSERT_EQUAL(run_rollback(c, 1, a[1]), 0); /* twice = once */
    redisReply *r = redisCommand(rc, "ZCARD coupon:{%" PRId64 "}:free", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    CU_ASSERT_EQUAL(r->integer, 1);
    freeReplyObject(r);
}

/* meta_update.lua: {written, issued}. */
static void run_meta_update(int64_t coupon, long long total, long long start_ms, long long end_ms,
                            long long out[2])
{
    redisReply *r = redisCommand(
        rc, "EVAL %s 2 coupon:{%" PRId64 "}:meta coupon:{%" PRId64 "}:users %lld %lld %lld",
        lua_meta_update_script, coupon, coupon, total, start_ms, end_ms);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    out[0] = r->element[0]->integer;
    out[1] = r->element[1]->integer;
    freeReplyObject(r);
}

/* A PATCH never lowers the total below what is issued, whatever races it. */
static void meta_update_refuses_a_total_below_issued_and_writes_otherwise(void)
{
    int64_t c = coupon_with_meta(5, -1000, 60000);
    long long a[3], m[2];
    run_issue(c, 1, a);
    run_issue(c, 2, a);
    run_issue(c, 3, a);
    int64_t now = redis_now_ms();
    run_meta_update(c, 2, now - 1000, now + 60000, m);
    CU_ASSERT_EQUAL(m[0], 0);
    CU_ASSERT_EQUAL(m[1], 3);
    redisReply *r = redisCommand(rc, "HGET coupon:{%" PRId64 "}:meta total", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(r->str, "5"); /* refused: nothing written */
    freeReplyObject(r);
    run_meta_update(c, 3, now - 1000, now + 60000, m); /* exactly issued: allowed */
    CU_ASSERT_EQUAL(m[0], 1);
    run_issue(c, 4, a);
    CU_ASSERT_EQUAL(a[0], -3);                          /* the new total holds at once */
    run_meta_update(c, -1, now - 1000, now + 60000, m); /* unlimited */
    CU_ASSERT_EQUAL(m[0], 1);
    run_issue(c, 4, a);
    CU_ASSERT_EQUAL(a[0], 1);
    run_meta_update(c, -1, now + 60000, now + 120000, m); /* the window moves too */
    run_issue(c, 5, a);
    CU_ASSERT_EQUAL(a[0], -4);
}

static void restore_merges_idempotently_and_raises_seq(void)
{
    int64_t c = coupon_with_meta(10, -1000, 60000);
    long long a[3];
    run_issue(c, 100, a); /* already in Redis: kept as it is */
    for (int pass = 0; pass < 2; pass++) {
        redisReply *r = redisCommand(rc,
                                     "EVAL %s 2 coupon:{%" PRId64 "}:users coupon:{%" PRId64
                                     "}:seq 4 100 9:1 200 2:1000 300 4:2000",
                                     lua_restore_script, c, c);
        CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
        CU_ASSERT_EQUAL(r->integer, pass == 0 ? 2 : 0);
        freeReplyObject(r);
    }
    CU_ASSERT_EQUAL(hlen_users(c), 3);
    redisReply *r = redisCommand(rc, "HGET coupon:{%" PRId64 "}:users 100", c);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_STRING);
    CU_ASSERT(strncmp(r->str, "1:", 2) == 0);
    freeReplyObject(r);
    long long out[3];
    run_issue(c, 400, out);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 5); /* after the highest restored sequence */
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"issue_records_user_with_sequence_and_redis_time",
         issue_records_user_with_sequence_and_redis_time},
        {"issue_duplicate_returns_the_first_issuance", issue_duplicate_returns_the_first_issuance},
        {"issue_sold_out_after_exactly_total", issue_sold_out_after_exactly_total},
        {"issue_refuses_outside_the_window", issue_refuses_outside_the_window},
        {"refusals_say_how_long_they_stay_true", refusals_say_how_long_they_stay_true},
        {"issue_refuses_beyond_the_outbox_bound", issue_refuses_beyond_the_outbox_bound},
        {"issue_unlimited_never_sells_out", issue_unlimited_never_sells_out},
        {"issue_without_meta_asks_for_a_reload", issue_without_meta_asks_for_a_reload},
        {"issue_handles_user_ids_beyond_lua_number_precision",
         issue_handles_user_ids_beyond_lua_number_precision},
        {"rollback_returns_stock_and_the_sequence_is_reused",
         rollback_returns_stock_and_the_sequence_is_reused},
        {"rollback_of_a_missing_or_foreign_reservation_changes_nothing",
         rollback_of_a_missing_or_foreign_reservation_changes_nothing},
        {"restore_merges_idempotently_and_raises_seq", restore_merges_idempotently_and_raises_seq},
        {"meta_update_refuses_a_total_below_issued_and_writes_otherwise",
         meta_update_refuses_a_total_below_issued_and_writes_otherwise},
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
    int status = unit_run_suite("lua", NULL, UNIT_CASES(tests));
    redisFree(rc);
    redis_fixture_stop();
    return status;
}
