/*
 * test_credis.c - common/credis, every command on a coupon's keys, against a real
 * redis-server (tests/unit/redis_fixture) through rcli, as the programs use it: the
 * holders issue.lua records are read back (HGET, HEXISTS, HLEN, HSCAN, EXISTS); the
 * pipelined counts mark a refused entry and keep the others; pending records are
 * dropped with one HDEL per run of one coupon, across the per-command bound; the
 * scripts' argv is what the scripts read; restore and meta; the announcement reaches
 * a subscriber. Exit 77 (skipped) only when redis-server is not installed.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "credis.h"
#include "lua_scripts.h"
#include "redis_fixture.h"

static struct rcli *cli;
static redisContext *raw; /* the test's own look at the server */
static int64_t next_coupon = 1000;

static long long raw_integer(const char *fmt, int64_t coupon)
{
    redisReply *r = redisCommand(raw, fmt, coupon);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A fresh coupon with its meta (credis_meta_write): unlimited, open for an hour. */
static int64_t open_coupon(int64_t total)
{
    int64_t id = next_coupon++;
    redisReply *t = redisCommand(raw, "TIME");
    CU_ASSERT_FATAL(t != NULL && t->type == REDIS_REPLY_ARRAY);
    int64_t now = strtoll(t->element[0]->str, NULL, 10) * 1000;
    freeReplyObject(t);
    char why[128] = "";
    CU_ASSERT_EQUAL_FATAL(
        credis_meta_write(cli, id, total, now - 60000, now + 3600000, why, sizeof why), CP_OK);
    return id;
}

/* Runs a prepared script by its source (EVAL): what script.c does after NOSCRIPT. */
static redisReply *eval(struct credis_script *s, const char *source)
{
    s->argv[0] = "EVAL";
    s->argvlen[0] = 4;
    s->argv[1] = source;
    s->argvlen[1] = strlen(source);
    return rcli_command_argv(cli, s->argc, s->argv, s->argvlen);
}

/* A claim through lua/issue.lua with the argv credis built; its sequence. */
static long long claim(int64_t coupon, int64_t user)
{
    struct credis_script s;
    char event_id[CP_EVENT_ID_HEX + 1];
    snprintf(event_id, sizeof event_id, "%032" PRIx64, (uint64_t)user);
    CU_ASSERT_EQUAL_FATAL(credis_issue_script(&s, coupon, user, event_id, 100000), CP_OK);
    redisReply *r = eval(&s, lua_issue_script);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    CU_ASSERT_EQUAL(r->element[0]->integer, 1); /* issued */
    long long seq = r->element[1]->integer;
    freeReplyObject(r);
    return seq;
}

static void holders_are_read_as_issue_lua_writes_them(void)
{
    int64_t coupon = open_coupon(-1), other = next_coupon++;
    CU_ASSERT_EQUAL(claim(coupon, 7), 1);
    CU_ASSERT_EQUAL(claim(coupon, 9223372036854775807LL), 2);
    struct rkey_issuance v = {0};
    CU_ASSERT_EQUAL(credis_holder_get(cli, coupon, 7, &v), 1);
    CU_ASSERT_EQUAL(v.sequence, 1);
    CU_ASSERT_TRUE(v.issued_at_ms > 0);
    CU_ASSERT_EQUAL(credis_holder_get(cli, coupon, 8, &v), 0);
    CU_ASSERT_EQUAL(credis_holder_exists(cli, coupon, 9223372036854775807LL), 1);
    CU_ASSERT_EQUAL(credis_holder_exists(cli, coupon, 8), 0);
    int held = -1, pending = -1;
    CU_ASSERT_EQUAL(credis_claim_status(cli, coupon, 7, &held, &v, &pending), CP_OK);
    CU_ASSERT_EQUAL(held, 1);
    CU_ASSERT_EQUAL(pending, 1);
    CU_ASSERT_EQUAL(credis_claim_status(cli, coupon, 8, &held, &v, &pending), CP_OK);
    CU_ASSERT_EQUAL(held + pending, 0);
    long long n = 0;
    CU_ASSERT_EQUAL(credis_issued(cli, coupon, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(credis_state_exists(cli, coupon), 1);
    CU_ASSERT_EQUAL(credis_state_exists(cli, other), 0);
}

static void a_value_that_is_no_issuance_is_unavailable(void)
{
    int64_t coupon = next_coupon++;
    redisReply *r = redisCommand(raw, "HSET coupon:{%" PRId64 "}:users 5 garbage", coupon);
    freeReplyObject(r);
    struct rkey_issuance v;
    CU_ASSERT_EQUAL(credis_holder_get(cli, coupon, 5, &v), CP_ERR_UNAVAILABLE);
    int held = -1, pending = -1;
    CU_ASSERT_EQUAL(credis_claim_status(cli, coupon, 5, &held, &v, &pending), CP_OK);
    CU_ASSERT_EQUAL(held, 0); /* known to Redis, but not an issuance */
}

static int count_holder(void *arg, const struct credis_holder *h)
{
    long long *seen = arg;
    CU_ASSERT_TRUE(h->user_id >= 1 && h->sequence == h->user_id);
    (*seen)++;
    return CP_OK;
}

static int stop_after_ten(void *arg, const struct credis_holder *h)
{
    (void)h;
    return ++*(int *)arg == 10 ? CP_ERR_LIMIT : CP_OK;
}

static void restore_then_scan_sees_every_holder(void)
{
    int64_t coupon = next_coupon++;
    enum { N = 2500 };
    struct credis_holder *hs = calloc(N, sizeof *hs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hs);
    for (int i = 0; i < N; i++)
        hs[i] = (struct credis_holder){i + 1, i + 1, 1700000000000LL + i};
    long long added = 0;
    char why[128] = "";
    CU_ASSERT_EQUAL(credis_restore(cli, coupon, hs, N, &added, why, sizeof why), CP_OK);
    CU_ASSERT_EQUAL(added, N);
    CU_ASSERT_EQUAL(credis_restore(cli, coupon, hs, 10, &added, why, sizeof why), CP_OK);
    CU_ASSERT_EQUAL(added, N); /* idempotent */
    free(hs);
    /* 2,500 fields: a real hash table, so HSCAN answers page by page. */
    long long seen = 0;
    CU_ASSERT_EQUAL(credis_holders_scan(cli, coupon, count_holder, &seen), CP_OK);
    CU_ASSERT_TRUE(seen >= N); /* HSCAN may repeat, never miss */
    int calls = 0;
    CU_ASSERT_EQUAL(credis_holders_scan(cli, coupon, stop_after_ten, &calls), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(calls, 10);
    redisReply *seq = redisCommand(raw, "GET coupon:{%" PRId64 "}:seq", coupon);
    CU_ASSERT_FATAL(seq != NULL && seq->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(seq->str, "2500");
    freeReplyObject(seq);
}

static void counts_mark_a_refused_entry_and_keep_the_others(void)
{
    int64_t a = open_coupon(-1), b = next_coupon++, c = open_coupon(-1);
    claim(a, 1);
    claim(a, 2);
    claim(c, 3);
    redisReply *r = redisCommand(raw, "SET coupon:{%" PRId64 "}:users x", b); /* WRONGTYPE */
    freeReplyObject(r);
    int64_t ids[3] = {a, b, c};
    long long issued[3], pending[3];
    CU_ASSERT_EQUAL(credis_counts(cli, ids, 3, issued, pending), 1);
    CU_ASSERT_EQUAL(issued[0], 2);
    CU_ASSERT_EQUAL(issued[1], -1);
    CU_ASSERT_EQUAL(issued[2], 1);
    CU_ASSERT_EQUAL(pending[0], 2);
    CU_ASSERT_EQUAL(pending[1], 0);
    CU_ASSERT_EQUAL(pending[2], 1);
    CU_ASSERT_EQUAL(credis_counts(cli, ids, 3, NULL, pending), 0);
    CU_ASSERT_EQUAL(pending[0], 2);
}

static void pending_drop_sends_one_hdel_per_run_across_the_bound(void)
{
    int64_t a = open_coupon(-1), b = open_coupon(-1);
    enum { MANY = CREDIS_HDEL_FIELDS_MAX + 20 };
    struct credis_pending *recs = calloc(MANY + 3, sizeof *recs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(recs);
    for (int i = 0; i < MANY; i++) {
        claim(a, i + 1);
        recs[i] = (struct credis_pending){a, i + 1};
    }
    claim(b, 1);
    claim(b, 2);
    recs[MANY] = (struct credis_pending){b, 1};
    recs[MANY + 1] = (struct credis_pending){b, 99}; /* none: not counted */
    recs[MANY + 2] = (struct credis_pending){a, 1};  /* gone already */
    redisReply *reset = redisCommand(raw, "CONFIG RESETSTAT");
    freeReplyObject(reset);
    long long removed = -1;
    char why[64] = "";
    CU_ASSERT_EQUAL(credis_pending_drop(cli, recs, MANY + 3, &removed, why, sizeof why), 0);
    CU_ASSERT_EQUAL(removed, MANY + 1);
    CU_ASSERT_EQUAL(raw_integer("HLEN coupon:{%" PRId64 "}:pending", a), 0);
    CU_ASSERT_EQUAL(raw_integer("HLEN coupon:{%" PRId64 "}:pending", b), 1);
    CU_ASSERT_EQUAL(raw_integer("HLEN coupon:{%" PRId64 "}:users", a), MANY); /* claims stay */
    /* Runs: a (512), a (20), b (2), a (1) - four commands. */
    redisReply *st = redisCommand(raw, "INFO commandstats");
    CU_ASSERT_FATAL(st != NULL && st->type == REDIS_REPLY_STRING);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->str, "cmdstat_hdel:calls=4,"));
    freeReplyObject(st);
    free(recs);
    CU_ASSERT_EQUAL(credis_pending_drop(cli, NULL, 0, &removed, NULL, 0), 0);
    CU_ASSERT_EQUAL(removed, 0);
}

struct fields {
    int n;
    char last[32];
};

static int collect_field(void *arg, const char *field, size_t flen, const char *value, size_t vlen)
{
    struct fields *f = arg;
    struct rkey_pending p;
    CU_ASSERT_EQUAL(rkey_pending_decode(value, vlen, &p), CP_OK);
    f->n++;
    snprintf(f->last, sizeof f->last, "%.*s", (int)flen, field);
    return CP_OK;
}

static void pending_each_walks_and_drop_field_removes(void)
{
    int64_t coupon = open_coupon(-1);
    claim(coupon, 41);
    struct fields f = {0};
    CU_ASSERT_EQUAL(credis_pending_each(cli, coupon, collect_field, &f), CP_OK);
    CU_ASSERT_EQUAL(f.n, 1);
    CU_ASSERT_STRING_EQUAL(f.last, "41");
    CU_ASSERT_EQUAL(credis_pending_drop_field(cli, coupon, "41", 2), CP_OK);
    f.n = 0;
    CU_ASSERT_EQUAL(credis_pending_each(cli, coupon, collect_field, &f), CP_OK);
    CU_ASSERT_EQUAL(f.n, 0);
}

static void rollback_and_meta_update_argv_fit_their_scripts(void)
{
    int64_t coupon = open_coupon(1);
    long long seq = claim(coupon, 5);
    struct credis_script s;
    CU_ASSERT_EQUAL_FATAL(credis_rollback_script(&s, coupon, 5, seq), CP_OK);
    redisReply *r = eval(&s, lua_rollback_script);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(credis_holder_exists(cli, coupon, 5), 0);
    claim(coupon, 6); /* the stock came back */
    /* Total 0 is below the one issued: refused, with the holder count. */
    CU_ASSERT_EQUAL_FATAL(credis_meta_update_script(&s, coupon, 0, 0, 1), CP_OK);
    r = eval(&s, lua_meta_update_script);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    CU_ASSERT_EQUAL(r->element[0]->integer, 0);
    CU_ASSERT_EQUAL(r->element[1]->integer, 1);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(credis_issue_script(&s, 0, 1, "x", 1), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(credis_rollback_script(&s, 1, 0, 1), CP_ERR_INVALID);
}

static void doc_key_and_announcement(void)
{
    char key[RKEY_MAX];
    CU_ASSERT_EQUAL(credis_doc_key(key, sizeof key, 12), (int)strlen("coupon:{12}:doc"));
    CU_ASSERT_STRING_EQUAL(key, "coupon:{12}:doc");
    redisContext *sub = redis_fixture_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    redisReply *r = redisCommand(sub, "SUBSCRIBE " RKEY_INVALIDATE_CHANNEL);
    CU_ASSERT_PTR_NOT_NULL(r);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(credis_announce_change(cli, 77), CP_OK);
    void *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(redisGetReply(sub, &msg), REDIS_OK);
    r = msg;
    CU_ASSERT_FATAL(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    CU_ASSERT_STRING_EQUAL(r->element[2]->str, "77");
    freeReplyObject(r);
    redisFree(sub);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"holders_are_read_as_issue_lua_writes_them", holders_are_read_as_issue_lua_writes_them},
        {"a_value_that_is_no_issuance_is_unavailable", a_value_that_is_no_issuance_is_unavailable},
        {"restore_then_scan_sees_every_holder", restore_then_scan_sees_every_holder},
        {"counts_mark_a_refused_entry_and_keep_the_others",
         counts_mark_a_refused_entry_and_keep_the_others},
        {"pending_drop_sends_one_hdel_per_run_across_the_bound",
         pending_drop_sends_one_hdel_per_run_across_the_bound},
        {"pending_each_walks_and_drop_field_removes", pending_each_walks_and_drop_field_removes},
        {"rollback_and_meta_update_argv_fit_their_scripts",
         rollback_and_meta_update_argv_fit_their_scripts},
        {"doc_key_and_announcement", doc_key_and_announcement},
    };
    int started = redis_fixture_start();
    if (started == 77) {
        fprintf(stderr, "redis-server not found: skipped\n");
        return 77;
    }
    if (started != 0 || (raw = redis_fixture_connect()) == NULL ||
        (cli = redis_fixture_client()) == NULL) {
        fprintf(stderr, "could not start redis-server\n");
        if (raw != NULL)
            redisFree(raw);
        redis_fixture_stop();
        return 2;
    }
    int status = unit_run_suite("credis", NULL, UNIT_CASES(tests));
    rcli_free(cli);
    redisFree(raw);
    redis_fixture_stop();
    return status;
}
