#include "first.h"

#include "issue.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "coupon_store.h"
#include "cp_err.h"
#include "event.h"
#include "auth.h"
#include "issue_decide.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "problem.h"
#include "rkey.h"
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
    char key[RKEY_MAX], uid[24];
    struct rcli *r = app_redis(t);
    if (r == NULL || rkey_coupon(key, sizeof key, RKEY_USERS, coupon_id) < 0 ||
        rkey_user_encode(user_id, uid, sizeof uid) < 0)
        return CP_ERR_UNAVAILABLE;
    redisReply *reply = rcli_command(r, "HGET %s %s", key, uid);
    if (reply == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_ERR_UNAVAILABLE;
    struct rkey_issuance v;
    if (reply->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (reply->type == REDIS_REPLY_STRING &&
               rkey_issuance_decode(reply->str, reply->len, &v) == CP_OK) {
        *seq = v.sequence;
        *at = v.issued_at_ms;
        rc = 1;
    } else {
        app_redis_failed(t); /* an error reply (CLUSTERDOWN, LOADING, ...) */
    }
    freeReplyObject(reply);
    return rc;
}

/* A fetch taking longer than this has failed; another thread may then try. */
#define HOLDERS_LEASE_MS   2000
/* HSCAN's page: each call keeps Redis busy for a fraction of a millisecond, where one
 * HGETALL of 20,000 holders would stall every other client for several. */
#define HOLDERS_SCAN_COUNT "1000"

/* Appends one HSCAN page's field/value pairs to *members; CP_OK, CP_ERR_LIMIT (more
 * than max holders), CP_ERR_NOMEM, or CP_ERR_UNAVAILABLE (not a holder hash page). */
static int holders_page(const redisReply *page, struct holder **members, size_t *n, size_t *cap,
                        size_t max)
{
    if (page->type != REDIS_REPLY_ARRAY || page->elements % 2 != 0)
        return CP_ERR_UNAVAILABLE;
    for (size_t i = 0; i < page->elements; i += 2) {
        const redisReply *f = page->element[i], *v = page->element[i + 1];
        struct rkey_issuance iss;
        int64_t user;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            rkey_user_decode(f->str, f->len, &user) != CP_OK ||
            rkey_issuance_decode(v->str, v->len, &iss) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        if (*n == max)
            return CP_ERR_LIMIT;
        if (*n == *cap) {
            size_t grown = *cap == 0 ? 1024 : *cap * 2;
            struct holder *m = realloc(*members, grown * sizeof *m);
            if (m == NULL)
                return CP_ERR_NOMEM;
            *members = m;
            *cap = grown;
        }
        (*members)[(*n)++] = (struct holder){user, iss.sequence, iss.issued_at_ms};
    }
    return CP_OK;
}

/*
 * Reads a sold-out coupon's holders into a snapshot (holders.h) for this process,
 * page by page; a hash larger than soldout_holders_max is not read at all. HSCAN may
 * return a field twice, never miss one that exists throughout - and while a coupon is
 * sold out in issue_ack=redis nobody is added or removed. Any failure gives the lease
 * back: the caller answers through HGET as before.
 */
static void holders_fetch(struct app_thread *t, int64_t coupon_id, uint64_t lease)
{
    struct holders *hs = t->app->holders;
    size_t max = holders_capacity(hs), n = 0, cap = 0;
    struct holder *members = NULL;
    char key[RKEY_MAX], cursor[24] = "0";
    struct rcli *r = app_redis(t);
    int rc = CP_ERR_UNAVAILABLE;
    if (r == NULL || rkey_coupon(key, sizeof key, RKEY_USERS, coupon_id) < 0)
        goto out;
    redisReply *len = rcli_command(r, "HLEN %s", key);
    if (len == NULL || len->type != REDIS_REPLY_INTEGER) {
        if (len != NULL)
            freeReplyObject(len);
        app_redis_failed(t); /* as for any failed command: counted, the client reset */
        goto out;
    }
    long long holders_now = len->integer;
    freeReplyObject(len);
    if (holders_now < 0 || (unsigned long long)holders_now > max) {
        rc = CP_ERR_LIMIT;
        goto out;
    }
    do {
        redisReply *page = rcli_command(r, "HSCAN %s %s COUNT " HOLDERS_SCAN_COUNT, key, cursor);
        if (page == NULL) {
            app_redis_failed(t);
            goto out;
        }
        rc = CP_ERR_UNAVAILABLE;
        if (page->type == REDIS_REPLY_ARRAY && page->elements == 2 &&
            page->element[0]->type == REDIS_REPLY_STRING && page->element[0]->len < sizeof cursor) {
            memcpy(cursor, page->element[0]->str, page->element[0]->len);
            cursor[page->element[0]->len] = '\0';
            rc = holders_page(page->element[1], &members, &n, &cap, max);
        }
        freeReplyObject(page);
        if (rc == CP_ERR_UNAVAILABLE)
            app_redis_failed(t); /* an error reply, or not a page of a holder hash */
        if (rc != CP_OK)
            goto out;
    } while (strcmp(cursor, "0") != 0);
    /* holders_put drops HSCAN's repeats; members is its from here. */
    rc = holders_put(hs, lease, members, n, clock_mono_ms() + ISSUE_FLAG_TTL_MS, clock_mono_ms());
    if (rc == CP_OK)
        log_debug("coupon %" PRId64 " sold out: %zu holders kept for %d ms", coupon_id, n,
                  ISSUE_FLAG_TTL_MS);
    return;
out:
    free(members);
    if (rc == CP_ERR_LIMIT) /* too many: answer through Redis until the flag's next round */
        (void)holders_put(hs, lease, NULL, (size_t)max + 1, clock_mono_ms() + ISSUE_FLAG_TTL_MS,
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

/* lua/issue.lua's arguments for one claim: argv[2..10] (numkeys, the 5 keys, the user,
 * the event id, the outbox bound); argv[0..1] are the caller's (EVALSHA and the SHA). */
struct issue_script_args {
    char keys[5][RKEY_MAX], uid[24], bound[16];
    const char *argv[11];
    size_t argvlen[11];
};

static int issue_script_args(const struct app_thread *t, int64_t coupon_id, int64_t user_id,
                             const char *event_id, struct issue_script_args *a)
{
    static const enum rkey_kind kinds[5] = {RKEY_META, RKEY_USERS, RKEY_SEQ, RKEY_FREE,
                                            RKEY_PENDING};
    a->argv[2] = "5";
    a->argvlen[2] = 1;
    for (int i = 0; i < 5; i++) {
        int n = rkey_coupon(a->keys[i], sizeof a->keys[i], kinds[i], coupon_id);
        if (n < 0)
            return CP_ERR_INTERNAL;
        a->argv[3 + i] = a->keys[i];
        a->argvlen[3 + i] = (size_t)n;
    }
    int ulen = rkey_user_encode(user_id, a->uid, sizeof a->uid);
    if (ulen < 0)
        return CP_ERR_INTERNAL;
    a->argv[8] = a->uid;
    a->argvlen[8] = (size_t)ulen;
    a->argv[9] = event_id;
    a->argvlen[9] = CP_EVENT_ID_HEX;
    a->argvlen[10] =
        (size_t)snprintf(a->bound, sizeof a->bound, "%d", t->app->conf->outbox_max_pending);
    a->argv[10] = a->bound;
    return CP_OK;
}

static int op_run_script(void *ctx, int64_t coupon_id, int64_t user_id, const char *event_id,
                         int wait_replicas, long long out[3], long long *acked)
{
    struct app_thread *t = ctx;
    struct issue_script_args a;
    if (issue_script_args(t, coupon_id, user_id, event_id, &a) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    /* With WAIT: in the same round trip, on the connection that ran the script. */
    redisReply *r = script_run_wait(t, SCRIPT_ISSUE, 11, a.argv, a.argvlen, wait_replicas,
                                    t->app->conf->redis_wait_timeout_ms, acked);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
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
    char keys[3][RKEY_MAX], uid[24], seq[24], nkeys[] = "3";
    const char *argv[8] = {NULL, NULL, nkeys, keys[0], keys[1], keys[2], uid, seq};
    size_t argvlen[8] = {0, 0, 1};
    static const enum rkey_kind kinds[3] = {RKEY_USERS, RKEY_FREE, RKEY_PENDING};
    for (int i = 0; i < 3; i++) {
        int n = rkey_coupon(keys[i], sizeof keys[i], kinds[i], coupon_id);
        if (n < 0)
            return CP_ERR_INTERNAL;
        argvlen[3 + i] = (size_t)n;
    }
    argvlen[6] = (size_t)rkey_user_encode(user_id, uid, sizeof uid);
    argvlen[7] = (size_t)snprintf(seq, sizeof seq, "%" PRId64, sequence);
    redisReply *r = script_run(t, SCRIPT_ROLLBACK, 8, argv, argvlen);
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
    char key[RKEY_MAX], uid[24];
    struct rcli *r = app_redis(t);
    if (r == NULL || rkey_coupon(key, sizeof key, RKEY_PENDING, coupon_id) < 0 ||
        rkey_user_encode(user_id, uid, sizeof uid) < 0)
        return;
    redisReply *reply = rcli_command(r, "HDEL %s %s", key, uid);
    if (reply == NULL)
        app_redis_failed(t);
    else
        freeReplyObject(reply);
}

static void op_invalidate(void *ctx, int64_t coupon_id)
{
    app_publish_invalidation(ctx, coupon_id);
}

/* 1 when Redis still holds the coupon's issuance state (its users or its sequence),
 * 0 when not, CP_ERR_UNAVAILABLE. */
static int issuance_state_exists(struct app_thread *t, int64_t coupon_id)
{
    char users[RKEY_MAX], seq[RKEY_MAX];
    struct rcli *r = app_redis(t);
    if (r == NULL || rkey_coupon(users, sizeof users, RKEY_USERS, coupon_id) < 0 ||
        rkey_coupon(seq, sizeof seq, RKEY_SEQ, coupon_id) < 0)
        return CP_ERR_UNAVAILABLE;
    /* Two keys in one command: one coupon's, so one slot ({ID}). */
    redisReply *reply = rcli_command(r, "EXISTS %s %s", users, seq);
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply != NULL)
            freeReplyObject(reply);
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int exists = reply->integer > 0;
    freeReplyObject(reply);
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
    if (coupon_meta_write(r, &c) != CP_OK) {
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

void issue_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                  int64_t path_coupon_id, struct issue_call *later)
{
    int64_t coupon_id = 0, user_id = 0;
    const char *why = NULL;
    if (later != NULL)
        later->waiting = 0;
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
    if (later == NULL || mode.wait_replicas > 0) {
        rc = issue_decide(&real_ops, t, &mode, coupon_id, user_id, &res);
    } else {
        rc = issue_decide_begin(&real_ops, t, &mode, coupon_id, user_id, &later->claim, &res);
        if (rc == ISSUE_RUN_SCRIPT) {
            later->waiting = 1; /* issue_run_scripts, then issue_finish */
            return;
        }
    }
    answer(t, resp, rc, coupon_id, user_id, &res);
}

/* issue_run_scripts' mark for a claim whose node lacked the script (NOSCRIPT):
 * issue_finish runs it through script_run, which sends the source. */
#define SCRIPT_RUN_AGAIN 1

/* Appends lua/issue.lua for one claim to the thread's pipeline (the SHA is known). */
static int append_issue_script(struct app_thread *t, const struct issue_claim *c)
{
    struct issue_script_args a;
    if (issue_script_args(t, c->coupon_id, c->user_id, c->event_id, &a) != CP_OK)
        return CP_ERR_INTERNAL;
    a.argv[0] = "EVALSHA";
    a.argvlen[0] = 7;
    a.argv[1] = t->script_sha[SCRIPT_ISSUE];
    a.argvlen[1] = 40;
    return rcli_append_argv(t->redis, 11, a.argv, a.argvlen);
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

void issue_run_scripts(struct app_thread *t, struct issue_call *const *calls, int n)
{
    int queued = 0, failed = 0;
    for (int i = 0; i < n; i++)
        calls[i]->run = (struct issue_script_run){.rc = CP_ERR_UNAVAILABLE};
    /* The SHA is learnt (SCRIPT LOAD) before the first command is queued. */
    if (app_redis(t) == NULL || script_prepare(t, SCRIPT_ISSUE) != CP_OK)
        return;
    while (queued < n && append_issue_script(t, &calls[queued]->claim) == CP_OK)
        queued++;
    for (int i = 0; i < queued; i++) {
        redisReply *r = NULL;
        if (rcli_get_reply(t->redis, &r) != CP_OK)
            failed = 1;
        else
            failed |= take_script_reply(&calls[i]->run, r);
        if (r != NULL)
            freeReplyObject(r);
    }
    /* Once for the pipeline, after its last reply: a reset forgets unread replies. */
    if (failed || queued < n)
        app_redis_failed(t);
}

void issue_finish(struct app_thread *t, struct issue_call *call, struct http_response *resp)
{
    const struct issue_mode mode = mode_of(t->app);
    const struct issue_claim *c = &call->claim;
    if (call->run.rc == SCRIPT_RUN_AGAIN)
        call->run.rc = op_run_script(t, c->coupon_id, c->user_id, c->event_id, 0, call->run.reply,
                                     &call->run.acked);
    struct issue_result res;
    memset(&res, 0, sizeof res);
    int rc = issue_decide_end(&real_ops, t, &mode, c, &call->run, &res);
    answer(t, resp, rc, c->coupon_id, c->user_id, &res);
    call->waiting = 0;
}
