#include "first.h"

#include "issue.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "coupon_store.h"
#include "cp_err.h"
#include "credis.h"
#include "defer.h"
#include "event.h"
#include "auth.h"
#include "issue_decide.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "problem.h"
#include "script.h"
#include "timefmt.h"

/* ---------------------------------------------------------------- L1 flags ---- */

static int op_flag_get(void *ctx, int64_t coupon_id, char *flag)
{
    struct app_thread *t = ctx;
    char key[32];
    size_t len;
    int n = app_l1_key(key, sizeof key, APP_L1_FLAG, coupon_id);
    if (n < 0)
        return CP_ERR_NOT_FOUND;
    return lru_get(t->app->l1, key, (size_t)n, flag, 1, &len);
}

static void op_flag_set(void *ctx, int64_t coupon_id, char flag, int64_t ttl_ms)
{
    struct app_thread *t = ctx;
    char key[32];
    if (ttl_ms <= 0)
        return;
    int n = app_l1_key(key, sizeof key, APP_L1_FLAG, coupon_id);
    if (n > 0)
        (void)lru_put_ttl(t->app->l1, key, (size_t)n, &flag, 1, ttl_ms);
}

/* ------------------------------------------------------------------- Redis ---- */

/* A holder lookup through Redis: one HGET of the user's entry. */
static int holder_from_redis(struct app_thread *t, int64_t coupon_id, int64_t user_id, int64_t *seq,
                             int64_t *at)
{
    struct rcli *r = app_redis(t);
    struct rkey_issuance v;
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = credis_holder_get(r, coupon_id, user_id, &v);
    if (rc < 0) {
        app_redis_failed(t); /* no reply, or an error reply (CLUSTERDOWN, LOADING, ...) */
        return CP_ERR_UNAVAILABLE;
    }
    if (rc == 1) {
        *seq = v.sequence;
        *at = v.issued_at_ms;
    }
    return rc;
}

/* A fetch taking longer than this has failed; another thread may then try. */
#define HOLDERS_LEASE_MS 2000

/* A snapshot in the making: the holders read so far, at most max. */
struct holders_read {
    struct holder *members;
    size_t n, cap, max;
};

/* credis_holder_fn: one more holder; CP_ERR_LIMIT past max, or CP_ERR_NOMEM. */
static int holders_add(void *arg, const struct credis_holder *h)
{
    struct holders_read *hr = arg;
    if (hr->n == hr->max)
        return CP_ERR_LIMIT;
    if (hr->n == hr->cap) {
        size_t grown = hr->cap == 0 ? 1024 : hr->cap * 2;
        struct holder *m = realloc(hr->members, grown * sizeof *m);
        if (m == NULL)
            return CP_ERR_NOMEM;
        hr->members = m;
        hr->cap = grown;
    }
    hr->members[hr->n++] = (struct holder){h->user_id, h->sequence, h->issued_at_ms};
    return CP_OK;
}

/*
 * Reads a sold-out coupon's holders into a snapshot (holders.h) for this process,
 * page by page (credis_holders_scan); a hash larger than soldout_holders_max is not
 * read at all. HSCAN may return a field twice, never miss one that exists throughout -
 * and while a coupon is sold out in issue_ack=redis nobody is added or removed. Any
 * failure gives the lease back: the caller answers through HGET as before.
 */
static void holders_fetch(struct app_thread *t, int64_t coupon_id, uint64_t lease)
{
    struct holders *hs = t->app->holders;
    struct holders_read hr = {.max = holders_capacity(hs)};
    struct rcli *r = app_redis(t);
    long long holders_now = 0;
    int rc = CP_ERR_UNAVAILABLE;
    if (r == NULL)
        goto out;
    if (credis_issued(r, coupon_id, &holders_now) != CP_OK) {
        app_redis_failed(t); /* as for any failed command: counted, the client reset */
        goto out;
    }
    if (holders_now < 0 || (unsigned long long)holders_now > hr.max) {
        rc = CP_ERR_LIMIT;
        goto out;
    }
    rc = credis_holders_scan(r, coupon_id, holders_add, &hr);
    if (rc == CP_ERR_UNAVAILABLE)
        app_redis_failed(t); /* an error reply, or not a page of a holder hash */
    if (rc != CP_OK)
        goto out;
    /* holders_put drops HSCAN's repeats; members is its from here. */
    rc = holders_put(hs, lease, hr.members, hr.n, clock_mono_ms() + ISSUE_FLAG_TTL_MS,
                     clock_mono_ms());
    if (rc == CP_OK)
        log_debug("coupon %" PRId64 " sold out: %zu holders kept for %d ms", coupon_id, hr.n,
                  ISSUE_FLAG_TTL_MS);
    return;
out:
    free(hr.members);
    if (rc == CP_ERR_LIMIT) /* too many: answer through Redis until the flag's next round */
        (void)holders_put(hs, lease, NULL, hr.max + 1, clock_mono_ms() + ISSUE_FLAG_TTL_MS,
                          clock_mono_ms());
    else
        holders_abort(hs, lease);
}

static int op_holder(void *ctx, int64_t coupon_id, int64_t user_id, int64_t *seq, int64_t *at)
{
    struct app_thread *t = ctx;
    struct holders *hs = t->app->holders;
    if (hs != NULL) {
        int64_t now = clock_mono_ms();
        int held = holders_lookup(hs, coupon_id, user_id, now, seq, at);
        uint64_t lease;
        if (held == CP_ERR_NOT_FOUND &&
            holders_begin_fetch(hs, coupon_id, now, HOLDERS_LEASE_MS, &lease) == CP_OK) {
            holders_fetch(t, coupon_id, lease);
            held = holders_lookup(hs, coupon_id, user_id, clock_mono_ms(), seq, at);
        }
        if (held >= 0)
            return held;
    }
    return holder_from_redis(t, coupon_id, user_id, seq, at);
}

static int op_run_script(void *ctx, int64_t coupon_id, int64_t user_id, const char *event_id,
                         int wait_replicas, long long out[3], long long *acked)
{
    struct app_thread *t = ctx;
    struct credis_script a;
    if (credis_issue_script(&a, coupon_id, user_id, event_id, t->app->conf->outbox_max_pending) !=
        CP_OK)
        return CP_ERR_UNAVAILABLE;
    /* With WAIT: in the same round trip, on the connection that ran the script. */
    redisReply *r =
        script_run_wait(t->scripts, app_redis(t), SCRIPT_ISSUE, a.argc, a.argv, a.argvlen,
                        wait_replicas, t->app->conf->redis_wait_timeout_ms, acked);
    if (r == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        for (int i = 0; i < 3; i++)
            out[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
        rc = CP_OK;
    } else {
        log_error("issue script: unexpected reply: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        app_redis_failed(t);
    }
    freeReplyObject(r);
    return rc;
}

static int op_rollback(void *ctx, int64_t coupon_id, int64_t user_id, int64_t sequence)
{
    struct app_thread *t = ctx;
    struct credis_script a;
    redisReply *r = NULL;
    if (credis_rollback_script(&a, coupon_id, user_id, sequence) != CP_OK)
        return CP_ERR_INTERNAL;
    r = script_run(t->scripts, app_redis(t), SCRIPT_ROLLBACK, a.argc, a.argv, a.argvlen);
    if (r == NULL)
        app_redis_failed(t);
    int rc = r != NULL && r->type == REDIS_REPLY_INTEGER ? CP_OK : CP_ERR_UNAVAILABLE;
    if (r != NULL)
        freeReplyObject(r);
    if (rc != CP_OK)
        /* Redis went away too: the reservation stays; the user can't retry it (409) -
         * logged so an operator can release it. */
        log_error("rollback of coupon %" PRId64 " user %" PRId64 " seq %" PRId64 " failed",
                  coupon_id, user_id, sequence);
    return rc;
}

/* Kafka has the event: the pending record issue.lua wrote is no longer needed. A
 * failure is harmless - the consumer removes it when it persists the event. */
static void op_clear_pending(void *ctx, int64_t coupon_id, int64_t user_id)
{
    struct app_thread *t = ctx;
    struct rcli *r = app_redis(t);
    const struct credis_pending record = {.coupon_id = coupon_id, .user_id = user_id};
    long long removed;
    if (r != NULL && credis_pending_drop(r, &record, 1, &removed, NULL, 0) < 0)
        app_redis_failed(t);
}

static void op_invalidate(void *ctx, int64_t coupon_id)
{
    app_publish_invalidation(ctx, coupon_id);
}

/* 1 when Redis still holds the coupon's issuance state (its users or its sequence),
 * 0 when not, CP_ERR_UNAVAILABLE. */
static int issuance_state_exists(struct app_thread *t, int64_t coupon_id)
{
    struct rcli *r = app_redis(t);
    int exists = r == NULL ? CP_ERR_UNAVAILABLE : credis_state_exists(r, coupon_id);
    if (r != NULL && exists < 0)
        app_redis_failed(t);
    return exists;
}

/*
 * coupon:{ID}:meta is missing: bring it from MariaDB unless that would be unsafe.
 * Unsafe means Redis lost the issuance state itself: rows in MariaDB while Redis has
 * neither the coupon's users nor its sequence. Meta alone missing (deleted, or a cold
 * start where faster requests have issued - and the consumer persisted - meanwhile)
 * is only the parameters, which MariaDB holds.
 */
static int op_reload_meta(void *ctx, int64_t coupon_id, const char **detail)
{
    struct app_thread *t = ctx;
    struct coupon c;
    struct db *db = app_db(t);
    *detail = problem_db_unavailable;
    int rc = coupon_store_get(db, coupon_id, &c);
    if (rc == CP_ERR_NOT_FOUND) {
        op_flag_set(t, coupon_id, ISSUE_FLAG_NO_COUPON, ISSUE_FLAG_TTL_MS);
        return CP_ERR_NO_COUPON;
    }
    if (rc == CP_OK)
        rc = coupon_store_has_issues(db, coupon_id);
    if (rc < 0) {
        app_db_failed(t, rc);
        return CP_ERR_UNAVAILABLE;
    }
    *detail = "redis unavailable";
    if (rc == 1) {
        int state = issuance_state_exists(t, coupon_id);
        if (state < 0)
            return CP_ERR_UNAVAILABLE;
        if (state == 0) {
            /* Issuances exist but Redis has no state for them: issuing now could
             * hand out a second coupon to someone. Wait for rebuild-redis. */
            log_error("coupon %" PRId64 ": issuance state missing in Redis while MariaDB "
                      "has issuances; run coupon-admin rebuild-redis",
                      coupon_id);
            *detail = "issuance state is being rebuilt";
            return CP_ERR_UNAVAILABLE;
        }
    }
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    if (credis_meta_write(r, c.id, c.total_quantity, c.start_ms, c.end_ms, NULL, 0) != CP_OK) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------- Kafka ---- */

static int op_producer_up(void *ctx)
{
    return producer_is_up(((struct app_thread *)ctx)->app->producer);
}

static int op_producer_has_room(void *ctx)
{
    return producer_has_room(((struct app_thread *)ctx)->app->producer);
}

static enum producer_outcome op_send_sync(void *ctx, const char *key, size_t klen,
                                          const char *value, size_t vlen)
{
    return producer_send_sync(((struct app_thread *)ctx)->app->producer, key, klen, value, vlen);
}

static int op_send_async(void *ctx, const char *key, size_t klen, const char *value, size_t vlen)
{
    int rc = producer_send_async(((struct app_thread *)ctx)->app->producer, key, klen, value, vlen);
    if (rc != CP_OK)
        log_warn("issuance %.*s: event not queued; the reconciler produces it from its "
                 "pending record",
                 (int)klen, key);
    return rc;
}

static void op_count(void *ctx, enum metrics_counter counter)
{
    metrics_add(((struct app_thread *)ctx)->app->metrics, counter, 1);
}

static const struct issue_ops real_ops = {
    .flag_get = op_flag_get,
    .flag_set = op_flag_set,
    .holder = op_holder,
    .run_script = op_run_script,
    .reload_meta = op_reload_meta,
    .rollback = op_rollback,
    .clear_pending = op_clear_pending,
    .invalidate = op_invalidate,
    .producer_up = op_producer_up,
    .producer_has_room = op_producer_has_room,
    .send_sync = op_send_sync,
    .send_async = op_send_async,
    .new_event_id = event_new_id,
    .count = op_count,
};

/* -------------------------------------------------------------------- HTTP ---- */

static int parse_issue_body(const struct http_request *req, int64_t path_coupon_id,
                            int64_t *coupon_id, int64_t *user_id, const char **why)
{
    static const char *const path_keys[] = {"userId", NULL};
    static const char *const ref_keys[] = {"couponId", "userId", NULL};
    struct json_object *obj = NULL;
    const char *unknown = NULL;
    int rc = jsonv_parse_object(req->body, req->body_len, &obj, why);
    if (rc != CP_OK)
        return CP_ERR_INVALID;
    rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, path_coupon_id > 0 ? path_keys : ref_keys, &unknown)) {
        *why = "unknown member in body";
        goto out;
    }
    if (path_coupon_id > 0) {
        *coupon_id = path_coupon_id;
    } else if (jsonv_get_id(obj, "couponId", coupon_id) != CP_OK) {
        *why = "couponId must be an integer in 1..9223372036854775807";
        goto out;
    }
    /* With a verified caller the claim is the caller's: userId may be left out, and
     * when it is given it must name the caller (the reference body keeps working). */
    int got = jsonv_get_id(obj, "userId", user_id);
    if (got == CP_ERR_NOT_FOUND && req->caller.verified) {
        *user_id = req->caller.user_id;
    } else if (got != CP_OK) {
        *why = "userId must be an integer in 1..9223372036854775807";
        goto out;
    } else if (req->caller.verified && *user_id != req->caller.user_id) {
        rc = CP_ERR_FORBIDDEN;
        *why = "userId names another user than the token's";
        goto out;
    }
    rc = CP_OK;
out:
    json_object_put(obj);
    return rc;
}

/* The problem for a refused claim (its status from problem_from_err), with its detail. */
static void answer_refusal(struct http_response *resp, int rc, int64_t coupon_id, int64_t user_id,
                           const struct issue_result *res)
{
    switch (rc) {
    case CP_ERR_NO_COUPON:
        problem_fail(resp, rc, "coupon %" PRId64 " does not exist", coupon_id);
        return;
    case CP_ERR_DUPLICATE:
        problem_fail(resp, rc,
                     "user %" PRId64 " already holds coupon %" PRId64 " (sequence %" PRId64 ")",
                     user_id, coupon_id, res->sequence);
        return;
    case CP_ERR_SOLD_OUT:
        problem_fail(resp, rc, "coupon %" PRId64 " is sold out", coupon_id);
        return;
    case CP_ERR_NOT_STARTED:
        problem_fail(resp, rc, "issuance of coupon %" PRId64 " has not started", coupon_id);
        return;
    case CP_ERR_ENDED:
        problem_fail(resp, rc, "issuance of coupon %" PRId64 " has ended", coupon_id);
        return;
    default:
        problem_fail(resp, rc, "%s", res->detail ? res->detail : "dependency unavailable");
        return;
    }
}

static struct issue_mode mode_of(const struct app *app)
{
    return (struct issue_mode){.ack_kafka = app->conf->issue_ack == CONF_ISSUE_ACK_KAFKA,
                               .wait_replicas = app->conf->redis_wait_replicas};
}

/* The response for a decided claim: 201/202 with the issuance, or the refusal. */
static void answer(struct app_thread *t, struct http_response *resp, int rc, int64_t coupon_id,
                   int64_t user_id, const struct issue_result *res)
{
    if (rc != CP_OK && rc != CP_ERR_AMBIGUOUS) {
        answer_refusal(resp, rc, coupon_id, user_id, res);
        return;
    }
    char at[TIMEFMT_LEN] = "";
    (void)timefmt_format_ms(res->issued_at_ms, at, sizeof at);
    /* The consumer stores the same code with the row (same secret, same MAC). */
    const char *secret = t->app->conf->code_secret;
    char code[CP_ISSUE_CODE_CHARS + 1] = "";
    if (issuecode_compute(secret, strlen(secret), coupon_id, user_id, res->sequence, code) != CP_OK)
        code[0] = '\0';
    resp->status = rc == CP_OK ? 201 : 202;
    series_claim(t->app->series, coupon_id); /* the console's claims per second */
    (void)http_response_printf(resp,
                               "{\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                               ",\"sequence\":%" PRId64 ",\"status\":\"%s\","
                               "\"issuedAt\":\"%s\",\"code\":%s%s%s}",
                               coupon_id, user_id, res->sequence,
                               rc == CP_OK ? "ISSUED" : "PENDING", at, code[0] ? "\"" : "",
                               code[0] ? code : "null", code[0] ? "\"" : "");
    http_response_header(resp, "Location", "/api/coupons/%" PRId64 "/issues/%" PRId64, coupon_id,
                         user_id);
}

/*
 * A claim parked until the end of its worker loop round (defer.h): every parked
 * claim's script goes to Redis in one pipeline (run_scripts: one round trip per node
 * for all of them), then each is decided and answered (finish_claim).
 */
struct issue_call {
    struct issue_claim claim;
    struct issue_script_run run;
};

static void run_scripts(struct app_thread *t, void *const *states, int n);
static void finish_claim(struct app_thread *t, void *state, struct http_response *resp);

static const struct defer_ops claims_later = {.flush = run_scripts, .finish = finish_claim};

_Static_assert(sizeof(struct issue_call) <= DEFER_STATE_MAX, "a parked claim fits its slot");

void issue_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                  int64_t path_coupon_id)
{
    int64_t coupon_id = 0, user_id = 0;
    const char *why = NULL;
    if (!http_is_json(req->content_type)) {
        problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
        return;
    }
    int parsed = parse_issue_body(req, path_coupon_id, &coupon_id, &user_id, &why);
    if (parsed != CP_OK) {
        if (parsed == CP_ERR_FORBIDDEN)
            metrics_add(t->app->metrics, M_AUTH_FORBIDDEN, 1);
        problem_fail(resp, parsed, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_ISSUE, user_id, resp))
        return;
    struct issue_result res;
    const struct issue_mode mode = mode_of(t->app);
    int rc;
    /* With redis_wait_replicas every claim keeps its own WAIT round trip: a WAIT per
     * claim inside a pipeline would add up to one time-out each while a replica lags. */
    if (t->defer == NULL || mode.wait_replicas > 0) {
        rc = issue_decide(&real_ops, t, &mode, coupon_id, user_id, &res);
    } else {
        struct issue_call call;
        rc = issue_decide_begin(&real_ops, t, &mode, coupon_id, user_id, &call.claim, &res);
        if (rc == ISSUE_RUN_SCRIPT) {
            if (defer_park(t->defer, &claims_later, &call, sizeof call) == CP_OK)
                return; /* run_scripts, then finish_claim */
            /* Not parked (cannot happen with one kind per slot): decided now. */
            call.run = (struct issue_script_run){0};
            call.run.rc = op_run_script(t, coupon_id, user_id, call.claim.event_id, 0,
                                        call.run.reply, &call.run.acked);
            memset(&res, 0, sizeof res);
            rc = issue_decide_end(&real_ops, t, &mode, &call.claim, &call.run, &res);
        }
    }
    answer(t, resp, rc, coupon_id, user_id, &res);
}

/* run_scripts' mark for a claim whose node lacked the script (NOSCRIPT):
 * finish_claim runs it through script_run, which sends the source. */
#define SCRIPT_RUN_AGAIN 1

/* Appends lua/issue.lua for one claim to the thread's pipeline (the SHA is known). */
static int append_issue_script(struct app_thread *t, struct rcli *r, const struct issue_claim *c)
{
    struct credis_script a;
    if (credis_issue_script(&a, c->coupon_id, c->user_id, c->event_id,
                            t->app->conf->outbox_max_pending) != CP_OK)
        return CP_ERR_INTERNAL;
    return script_append(t->scripts, r, SCRIPT_ISSUE, a.argc, a.argv, a.argvlen);
}

/* One claim's script reply into its run; 0, or 1 when it means the connection (or
 * the node) failed: an error reply other than NOSCRIPT, or one of the wrong shape. */
static int take_script_reply(struct issue_script_run *run, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        for (int i = 0; i < 3; i++)
            run->reply[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
        run->rc = CP_OK;
        return 0;
    }
    if (script_is_noscript(r)) {
        run->rc = SCRIPT_RUN_AGAIN;
        return 0;
    }
    log_error("issue script: unexpected reply: %s",
              r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
    return 1;
}

/* defer_ops.flush: the scripts of the round's n parked claims in one pipeline; each
 * call's run gets its outcome. A failed pipeline is counted and its client reset once. */
static void run_scripts(struct app_thread *t, void *const *states, int n)
{
    int queued = 0, failed = 0;
    for (int i = 0; i < n; i++)
        ((struct issue_call *)states[i])->run = (struct issue_script_run){.rc = CP_ERR_UNAVAILABLE};
    /* The SHA is learnt (SCRIPT LOAD) before the first command is queued. */
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return;
    if (script_prepare(t->scripts, r, SCRIPT_ISSUE) != CP_OK) {
        app_redis_failed(t);
        return;
    }
    while (queued < n &&
           append_issue_script(t, r, &((struct issue_call *)states[queued])->claim) == CP_OK)
        queued++;
    for (int i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        if (script_reply(r, &reply) != CP_OK)
            failed = 1;
        else
            failed |= take_script_reply(&((struct issue_call *)states[i])->run, reply);
        if (reply != NULL)
            freeReplyObject(reply);
    }
    /* Once for the pipeline, after its last reply: a reset forgets unread replies. */
    if (failed || queued < n)
        app_redis_failed(t);
}

/* defer_ops.finish: the rest of the decision (issue_decide_end) and the response. May
 * run Redis and MariaDB commands (a meta reload, a NOSCRIPT re-run). */
static void finish_claim(struct app_thread *t, void *state, struct http_response *resp)
{
    struct issue_call *call = state;
    const struct issue_mode mode = mode_of(t->app);
    const struct issue_claim *c = &call->claim;
    if (call->run.rc == SCRIPT_RUN_AGAIN)
        call->run.rc = op_run_script(t, c->coupon_id, c->user_id, c->event_id, 0, call->run.reply,
                                     &call->run.acked);
    struct issue_result res;
    memset(&res, 0, sizeof res);
    int rc = issue_decide_end(&real_ops, t, &mode, c, &call->run, &res);
    answer(t, resp, rc, c->coupon_id, c->user_id, &res);
}
