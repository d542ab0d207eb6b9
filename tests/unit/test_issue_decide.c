/*
 * test_issue_decide.c - the issue path's decision (fcgi-app/issue_decide.c) against
 * fake Redis, Kafka, MariaDB and L1 behind its function table: which effects each
 * outcome has in each issue_ack mode, and what it answers. The integration suites
 * drive the same code against the real servers.
 */
#include "first.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "issue_decide.h"
#include "unit_main.h"

/* What the fakes answer, and what they were asked. */
struct fake {
    int has_flag;
    char flag;
    int holder; /* 1, 0 or an error */
    long long replies[2][3];
    int nreplies, script_rc;
    long long acked; /* what WAIT reports */
    int reload_rc;
    int producer_up, has_room;
    enum producer_outcome sync_outcome;
    int async_rc;
    /* recorded */
    int scripts, reloads, rollbacks, cleared, invalidated, syncs, asyncs, holder_calls;
    int waited_for; /* the wait_replicas of the last script run */
    char flag_set;
    int64_t flag_ttl;
    char last_key[48];
    int counts[M_COUNTER_COUNT_];
};

static struct fake fk;

static int f_flag_get(void *ctx, int64_t c, char *flag)
{
    (void)ctx, (void)c;
    if (!fk.has_flag)
        return CP_ERR_NOT_FOUND;
    *flag = fk.flag;
    return CP_OK;
}

static void f_flag_set(void *ctx, int64_t c, char flag, int64_t ttl)
{
    (void)ctx, (void)c;
    fk.flag_set = flag;
    fk.flag_ttl = ttl;
}

static int f_holder(void *ctx, int64_t c, int64_t u, int64_t *seq, int64_t *at)
{
    (void)ctx, (void)c, (void)u;
    fk.holder_calls++;
    if (fk.holder == 1) {
        *seq = 17;
        *at = 1234;
    }
    return fk.holder;
}

static int f_run_script(void *ctx, int64_t c, int64_t u, const char *event_id, int wait_replicas,
                        long long r[3], long long *acked)
{
    (void)ctx, (void)c, (void)u;
    CU_ASSERT_EQUAL(strlen(event_id), 32);
    int i = fk.scripts < fk.nreplies ? fk.scripts : fk.nreplies - 1;
    fk.scripts++;
    fk.waited_for = wait_replicas;
    if (fk.script_rc != CP_OK)
        return fk.script_rc;
    memcpy(r, fk.replies[i], sizeof fk.replies[i]);
    *acked = fk.acked;
    return CP_OK;
}

static int f_reload(void *ctx, int64_t c, const char **detail)
{
    (void)ctx, (void)c;
    fk.reloads++;
    *detail = "fake reload failed";
    return fk.reload_rc;
}

static int f_rollback(void *ctx, int64_t c, int64_t u, int64_t s)
{
    (void)ctx, (void)c, (void)u, (void)s;
    fk.rollbacks++;
    return CP_OK;
}

static void f_clear(void *ctx, int64_t c, int64_t u)
{
    (void)ctx, (void)c, (void)u;
    fk.cleared++;
}

static void f_invalidate(void *ctx, int64_t c)
{
    (void)ctx, (void)c;
    fk.invalidated++;
}

static int f_up(void *ctx)
{
    (void)ctx;
    return fk.producer_up;
}

static int f_room(void *ctx)
{
    (void)ctx;
    return fk.has_room;
}

static enum producer_outcome f_sync(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)ctx, (void)v, (void)vl;
    fk.syncs++;
    snprintf(fk.last_key, sizeof fk.last_key, "%.*s", (int)kl, k);
    return fk.sync_outcome;
}

static int f_async(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)ctx, (void)v, (void)vl;
    fk.asyncs++;
    snprintf(fk.last_key, sizeof fk.last_key, "%.*s", (int)kl, k);
    return fk.async_rc;
}

static int f_event_id(char out[CP_EVENT_ID_HEX + 1])
{
    memset(out, 'a', CP_EVENT_ID_HEX);
    out[CP_EVENT_ID_HEX] = '\0';
    return CP_OK;
}

static void f_count(void *ctx, enum metrics_counter c)
{
    (void)ctx;
    fk.counts[c]++;
}

static const struct issue_ops fake_ops = {
    .flag_get = f_flag_get,
    .flag_set = f_flag_set,
    .holder = f_holder,
    .run_script = f_run_script,
    .reload_meta = f_reload,
    .rollback = f_rollback,
    .clear_pending = f_clear,
    .invalidate = f_invalidate,
    .producer_up = f_up,
    .producer_has_room = f_room,
    .send_sync = f_sync,
    .send_async = f_async,
    .new_event_id = f_event_id,
    .count = f_count,
};

/* A healthy world whose script answers `code, a, b`. */
static void world(long long code, long long a, long long b)
{
    memset(&fk, 0, sizeof fk);
    fk.replies[0][0] = code;
    fk.replies[0][1] = a;
    fk.replies[0][2] = b;
    fk.nreplies = 1;
    fk.producer_up = fk.has_room = 1;
    fk.sync_outcome = PRODUCER_DELIVERED;
}

static int decide(int ack_kafka, struct issue_result *res)
{
    const struct issue_mode mode = {.ack_kafka = ack_kafka};
    return issue_decide(&fake_ops, NULL, &mode, 42, 7, res);
}

/* With redis_wait_replicas = wait. */
static int decide_waiting(int ack_kafka, int wait, struct issue_result *res)
{
    const struct issue_mode mode = {.ack_kafka = ack_kafka, .wait_replicas = wait};
    return issue_decide(&fake_ops, NULL, &mode, 42, 7, res);
}

static void redis_mode_answers_201_after_the_script_and_sends_asynchronously(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    fk.producer_up = 0; /* Kafka down does not stop a sale in issue_ack=redis */
    CU_ASSERT_EQUAL(decide(0, &res), CP_OK);
    CU_ASSERT_EQUAL(res.sequence, 5);
    CU_ASSERT_EQUAL(res.issued_at_ms, 1000);
    CU_ASSERT_EQUAL(fk.asyncs, 1);
    CU_ASSERT_EQUAL(fk.syncs, 0);
    CU_ASSERT_STRING_EQUAL(fk.last_key, "42:7");
    CU_ASSERT_EQUAL(fk.cleared, 0); /* the settler drops the record on the ack */
    CU_ASSERT_EQUAL(fk.counts[M_ISSUED], 1);
    /* librdkafka refusing the send changes nothing about the claim: still a 201. */
    world(1, 6, 1000);
    fk.async_rc = CP_ERR_UNAVAILABLE;
    CU_ASSERT_EQUAL(decide(0, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.counts[M_KAFKA_ERRORS], 1);
    CU_ASSERT_EQUAL(fk.rollbacks, 0);
}

static void redis_mode_refuses_when_the_local_queue_is_full(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    fk.has_room = 0;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.scripts, 0); /* nothing reserved */
    CU_ASSERT_EQUAL(fk.counts[M_OUTBOX_FULL], 1);
    /* The script's own per-coupon bound (-6) likewise records nothing. */
    world(-6, 0, 0);
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "wait for the event log"));
    CU_ASSERT_EQUAL(fk.asyncs, 0);
    CU_ASSERT_EQUAL(fk.counts[M_OUTBOX_FULL], 1);
}

static void kafka_mode_waits_for_the_ack_and_settles_its_record(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    CU_ASSERT_EQUAL(decide(1, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.syncs, 1);
    CU_ASSERT_EQUAL(fk.asyncs, 0);
    CU_ASSERT_EQUAL(fk.cleared, 1);
    /* Kafka known down: refused before anything is reserved. */
    world(1, 5, 1000);
    fk.producer_up = 0;
    CU_ASSERT_EQUAL(decide(1, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.scripts, 0);
}

static void kafka_mode_rolls_back_only_what_the_broker_refused(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    fk.sync_outcome = PRODUCER_NOT_PERSISTED;
    CU_ASSERT_EQUAL(decide(1, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.rollbacks, 1);
    CU_ASSERT_EQUAL(fk.invalidated, 1); /* stock came back: other workers drop flags */
    CU_ASSERT_EQUAL(fk.cleared, 0);
    world(1, 5, 1000);
    fk.sync_outcome = PRODUCER_POSSIBLY_PERSISTED;
    CU_ASSERT_EQUAL(decide(1, &res), CP_ERR_AMBIGUOUS); /* 202: kept, never rolled back */
    CU_ASSERT_EQUAL(fk.rollbacks, 0);
    CU_ASSERT_EQUAL(fk.counts[M_PENDING], 1);
    CU_ASSERT_EQUAL(res.sequence, 5);
}

static void sold_out_flag_still_tells_a_holder_their_sequence(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    fk.has_flag = 1;
    fk.flag = ISSUE_FLAG_SOLD_OUT;
    fk.holder = 1;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(res.sequence, 17);
    CU_ASSERT_EQUAL(fk.scripts, 0);
    fk.holder = 0;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_SOLD_OUT);
    fk.holder = CP_ERR_UNAVAILABLE;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.holder_calls, 3);
    /* The other flags answer without any lookup. */
    static const struct {
        char flag;
        int want;
    } rows[] = {{ISSUE_FLAG_ENDED, CP_ERR_ENDED},
                {ISSUE_FLAG_NOT_STARTED, CP_ERR_NOT_STARTED},
                {ISSUE_FLAG_NO_COUPON, CP_ERR_NO_COUPON}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        world(1, 5, 1000);
        fk.has_flag = 1;
        fk.flag = rows[i].flag;
        CU_ASSERT_EQUAL(decide(0, &res), rows[i].want);
        CU_ASSERT_EQUAL(fk.scripts + fk.holder_calls, 0);
    }
}

static void flags_never_outlive_the_moment_their_answer_changes(void)
{
    struct issue_result res;
    world(-4, 0, 300); /* not started, 300 ms until startAt */
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_NOT_STARTED);
    CU_ASSERT_EQUAL(fk.flag_set, ISSUE_FLAG_NOT_STARTED);
    CU_ASSERT_EQUAL(fk.flag_ttl, 300 - ISSUE_FLAG_EDGE_MARGIN_MS);
    world(-4, 0, 60000); /* far away: the ordinary one-second flag */
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_NOT_STARTED);
    CU_ASSERT_EQUAL(fk.flag_ttl, ISSUE_FLAG_TTL_MS);
    world(-4, 0, 4); /* within the margin: no flag that lives at all */
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_NOT_STARTED);
    CU_ASSERT(fk.flag_ttl <= 0);
    world(-3, 0, 500); /* sold out, endAt in 500 ms */
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_SOLD_OUT);
    CU_ASSERT_EQUAL(fk.flag_set, ISSUE_FLAG_SOLD_OUT);
    CU_ASSERT_EQUAL(fk.flag_ttl, 500 - ISSUE_FLAG_EDGE_MARGIN_MS);
    world(-5, 0, 0);
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_ENDED);
    CU_ASSERT_EQUAL(fk.flag_set, ISSUE_FLAG_ENDED);
    world(-2, 3, 999); /* duplicate: no flag, the holder's own issuance */
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(fk.flag_set, 0);
    CU_ASSERT_EQUAL((int)res.sequence * 1000 + (int)res.issued_at_ms, 3999);
    CU_ASSERT_EQUAL(fk.asyncs + fk.syncs, 0);
}

static void missing_meta_is_reloaded_once(void)
{
    struct issue_result res;
    world(0, 0, 0);
    fk.replies[1][0] = 1;
    fk.replies[1][1] = 1;
    fk.replies[1][2] = 5;
    fk.nreplies = 2;
    CU_ASSERT_EQUAL(decide(0, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.reloads, 1);
    CU_ASSERT_EQUAL(fk.scripts, 2);
    /* Still missing after the reload: unavailable, not a loop. */
    world(0, 0, 0);
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.scripts, 2);
    /* The reload's own answers pass through. */
    world(0, 0, 0);
    fk.reload_rc = CP_ERR_NO_COUPON;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_NO_COUPON);
    world(0, 0, 0);
    fk.reload_rc = CP_ERR_UNAVAILABLE;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(res.detail, "fake reload failed");
    /* Redis down: unavailable, nothing sent. */
    world(1, 1, 1);
    fk.script_rc = CP_ERR_UNAVAILABLE;
    CU_ASSERT_EQUAL(decide(0, &res), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.asyncs, 0);
}

static void a_claim_on_too_few_replicas_is_503_and_produces_no_event(void)
{
    struct issue_result res;
    for (int ack_kafka = 0; ack_kafka < 2; ack_kafka++) {
        world(1, 5, 1000);
        fk.acked = 1;
        CU_ASSERT_EQUAL(decide_waiting(ack_kafka, 2, &res), CP_ERR_NOT_REPLICATED);
        CU_ASSERT_EQUAL(fk.waited_for, 2); /* WAIT asked in the script's round trip */
        CU_ASSERT_EQUAL(fk.asyncs + fk.syncs, 0);
        /* Nothing undone: the claim and its pending record are the reconciler's. */
        CU_ASSERT_EQUAL(fk.rollbacks + fk.cleared + fk.invalidated, 0);
        CU_ASSERT_EQUAL(fk.counts[M_NOT_REPLICATED], 1);
        CU_ASSERT_EQUAL(fk.counts[M_ISSUED], 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "replicas"));
        world(1, 5, 1000);
        fk.acked = 0;
        CU_ASSERT_EQUAL(decide_waiting(ack_kafka, 1, &res), CP_ERR_NOT_REPLICATED);
        CU_ASSERT_PTR_NOT_NULL(strstr(res.detail, "no Redis replica"));
    }
}

static void enough_replicas_is_a_201_as_without_wait(void)
{
    struct issue_result res;
    world(1, 5, 1000);
    fk.acked = 2;
    CU_ASSERT_EQUAL(decide_waiting(0, 2, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.asyncs, 1);
    CU_ASSERT_EQUAL(fk.counts[M_ISSUED], 1);
    CU_ASSERT_EQUAL(res.sequence, 5);
    world(1, 5, 1000);
    fk.acked = 3; /* more than asked is as good */
    CU_ASSERT_EQUAL(decide_waiting(1, 2, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.syncs, 1);
    CU_ASSERT_EQUAL(fk.cleared, 1);
    /* Without redis_wait_replicas no WAIT is asked and its count means nothing. */
    world(1, 5, 1000);
    CU_ASSERT_EQUAL(decide(0, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.waited_for, 0);
}

static void refusals_need_no_replica(void)
{
    /* Nothing was written: WAIT's count does not matter; each keeps its answer. */
    struct issue_result res;
    static const struct {
        long long code;
        int want;
    } rows[] = {{-2, CP_ERR_DUPLICATE},
                {-3, CP_ERR_SOLD_OUT},
                {-4, CP_ERR_NOT_STARTED},
                {-5, CP_ERR_ENDED},
                {-6, CP_ERR_UNAVAILABLE}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        world(rows[i].code, 3, 500);
        CU_ASSERT_EQUAL(decide_waiting(0, 1, &res), rows[i].want);
        CU_ASSERT_EQUAL(fk.counts[M_NOT_REPLICATED], 0);
    }
    /* The duplicate's sequence is the user's 409, with or without a replica. */
    world(-2, 3, 999);
    CU_ASSERT_EQUAL(decide_waiting(0, 1, &res), CP_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(res.sequence, 3);
    /* Redis down: unavailable as ever (not "not replicated"). */
    world(1, 1, 1);
    fk.script_rc = CP_ERR_UNAVAILABLE;
    CU_ASSERT_EQUAL(decide_waiting(0, 1, &res), CP_ERR_UNAVAILABLE);
}

/* issue_decide_begin and _end, with the script run between them by the caller (a
 * pipeline): the same answers and effects as one issue_decide call. */
static void the_two_halves_decide_as_one_call(void)
{
    const struct issue_mode redis_mode = {0}, waiting = {.wait_replicas = 1};
    struct issue_claim claim;
    struct issue_result res;
    world(1, 5, 1000);
    CU_ASSERT_EQUAL(issue_decide_begin(&fake_ops, NULL, &redis_mode, 42, 7, &claim, &res),
                    ISSUE_RUN_SCRIPT);
    CU_ASSERT_EQUAL(fk.scripts, 0); /* the caller runs it */
    CU_ASSERT_EQUAL(claim.coupon_id, 42);
    CU_ASSERT_EQUAL(claim.user_id, 7);
    CU_ASSERT_EQUAL(strlen(claim.event_id), CP_EVENT_ID_HEX);
    struct issue_script_run run = {.rc = CP_OK, .reply = {1, 5, 1000}};
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &redis_mode, &claim, &run, &res), CP_OK);
    CU_ASSERT_EQUAL(res.sequence, 5);
    CU_ASSERT_EQUAL(res.issued_at_ms, 1000);
    CU_ASSERT_EQUAL(fk.scripts, 0);
    CU_ASSERT_EQUAL(fk.asyncs, 1);
    CU_ASSERT_STRING_EQUAL(fk.last_key, "42:7");
    CU_ASSERT_EQUAL(fk.counts[M_ISSUED], 1);

    /* A flag or a full queue answers in begin: no claim to run. */
    world(1, 5, 1000);
    fk.has_flag = 1;
    fk.flag = ISSUE_FLAG_SOLD_OUT;
    fk.holder = 1;
    CU_ASSERT_EQUAL(issue_decide_begin(&fake_ops, NULL, &redis_mode, 42, 7, &claim, &res),
                    CP_ERR_DUPLICATE);
    CU_ASSERT_EQUAL(res.sequence, 17);
    world(1, 5, 1000);
    fk.has_room = 0;
    CU_ASSERT_EQUAL(issue_decide_begin(&fake_ops, NULL, &redis_mode, 42, 7, &claim, &res),
                    CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.counts[M_OUTBOX_FULL], 1);

    /* The pipeline failed: unavailable, nothing produced. */
    world(1, 5, 1000);
    CU_ASSERT_EQUAL(issue_decide_begin(&fake_ops, NULL, &redis_mode, 42, 7, &claim, &res),
                    ISSUE_RUN_SCRIPT);
    run = (struct issue_script_run){.rc = CP_ERR_UNAVAILABLE};
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &redis_mode, &claim, &run, &res),
                    CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fk.asyncs, 0);
    CU_ASSERT_EQUAL(fk.counts[M_ISSUED], 0);

    /* Meta missing in the pipelined run: end reloads it and runs the script itself. */
    world(1, 9, 2000);
    run = (struct issue_script_run){.rc = CP_OK, .reply = {0, 0, 0}};
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &redis_mode, &claim, &run, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.reloads, 1);
    CU_ASSERT_EQUAL(fk.scripts, 1);
    CU_ASSERT_EQUAL(res.sequence, 9);
    CU_ASSERT_EQUAL(fk.asyncs, 1);

    /* A refusal from the pipelined run sets its flag as the one-call path does. */
    world(1, 1, 1);
    run = (struct issue_script_run){.rc = CP_OK, .reply = {-3, 0, 60000}};
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &redis_mode, &claim, &run, &res),
                    CP_ERR_SOLD_OUT);
    CU_ASSERT_EQUAL(fk.flag_set, ISSUE_FLAG_SOLD_OUT);

    /* The WAIT queued behind the script counted too few replicas: 503, no event. */
    world(1, 1, 1);
    run = (struct issue_script_run){.rc = CP_OK, .reply = {1, 3, 1000}, .acked = 0};
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &waiting, &claim, &run, &res),
                    CP_ERR_NOT_REPLICATED);
    CU_ASSERT_EQUAL(fk.asyncs, 0);
    run.acked = 1;
    CU_ASSERT_EQUAL(issue_decide_end(&fake_ops, NULL, &waiting, &claim, &run, &res), CP_OK);
    CU_ASSERT_EQUAL(fk.asyncs, 1);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"redis_mode_answers_201_after_the_script_and_sends_asynchronously",
         redis_mode_answers_201_after_the_script_and_sends_asynchronously},
        {"redis_mode_refuses_when_the_local_queue_is_full",
         redis_mode_refuses_when_the_local_queue_is_full},
        {"kafka_mode_waits_for_the_ack_and_settles_its_record",
         kafka_mode_waits_for_the_ack_and_settles_its_record},
        {"kafka_mode_rolls_back_only_what_the_broker_refused",
         kafka_mode_rolls_back_only_what_the_broker_refused},
        {"sold_out_flag_still_tells_a_holder_their_sequence",
         sold_out_flag_still_tells_a_holder_their_sequence},
        {"flags_never_outlive_the_moment_their_answer_changes",
         flags_never_outlive_the_moment_their_answer_changes},
        {"missing_meta_is_reloaded_once", missing_meta_is_reloaded_once},
        {"a_claim_on_too_few_replicas_is_503_and_produces_no_event",
         a_claim_on_too_few_replicas_is_503_and_produces_no_event},
        {"enough_replicas_is_a_201_as_without_wait", enough_replicas_is_a_201_as_without_wait},
        {"refusals_need_no_replica", refusals_need_no_replica},
        {"the_two_halves_decide_as_one_call", the_two_halves_decide_as_one_call},
    };
    return unit_run_suite("issue_decide", NULL, UNIT_CASES(tests));
}
