#include "first.h"

#include "issue.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coupon_store.h"
#include "cp_err.h"
#include "event.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "lua_scripts.h"
#include "problem.h"
#include "timefmt.h"

#define FLAG_TTL_MS 1000 /* fast-path flags: "clears within a second" */
/* A flag whose answer stops being true at a known moment (startAt, endAt) expires
 * this much before it: the moment was measured by Redis, the flag is set once the
 * reply has travelled back. */
#define FLAG_EDGE_MARGIN_MS 10

static int load_script(struct app_thread *t, char sha[41], const char *source)
{
    redisReply *r = redisCommand(t->redis, "SCRIPT LOAD %s", source);
    if (r == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(sha, r->str, 41);
        metrics_add(t->app->metrics, M_SCRIPT_RELOADS, 1);
        rc = CP_OK;
    } else {
        log_error("SCRIPT LOAD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }
    freeReplyObject(r);
    return rc;
}

redisReply *issue_run_script(struct app_thread *t, char sha[41], const char *source, int argc,
                             const char **argv, size_t *argvlen)
{
    if (app_redis(t) == NULL)
        return NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sha[0] == '\0' && load_script(t, sha, source) != CP_OK)
            return NULL;
        argv[0] = "EVALSHA";
        argvlen[0] = 7;
        argv[1] = sha;
        argvlen[1] = 40;
        redisReply *r = redisCommandArgv(t->redis, argc, argv, argvlen);
        if (r == NULL) {
            app_redis_failed(t);
            return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            sha[0] = '\0';
            continue;
        }
        return r;
    }
    return NULL;
}

static void flag_set(struct app *app, int64_t coupon_id, char flag, int64_t ttl_ms)
{
    char key[32];
    if (ttl_ms <= 0)
        return;
    int n = app_l1_key(key, sizeof key, 'f', coupon_id);
    if (n > 0)
        (void)lru_put_ttl(app->l1, key, (size_t)n, &flag, 1, ttl_ms);
}

static int flag_get(struct app *app, int64_t coupon_id, char *flag)
{
    char key[32];
    size_t len;
    int n = app_l1_key(key, sizeof key, 'f', coupon_id);
    if (n < 0)
        return CP_ERR_NOT_FOUND;
    return lru_get(app->l1, key, (size_t)n, flag, 1, &len);
}

/* Reply of issue.lua: {code, a, b} (see lua/issue.lua). */
static int run_issue_script(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                            const char *event_id, long long out[3])
{
    char keys[5][48], uid[24], bound[16], nkeys[] = "5";
    const char *argv[11];
    size_t argvlen[11];
    static const char *const suffix[5] = {"meta", "users", "seq", "free", "pending"};
    argv[2] = nkeys;
    argvlen[2] = 1;
    for (int i = 0; i < 5; i++) {
        int n = snprintf(keys[i], sizeof keys[i], "coupon:{%" PRId64 "}:%s", coupon_id, suffix[i]);
        argv[3 + i] = keys[i];
        argvlen[3 + i] = (size_t)n;
    }
    argvlen[8] = (size_t)snprintf(uid, sizeof uid, "%" PRId64, user_id);
    argv[8] = uid;
    argv[9] = event_id;
    argvlen[9] = CP_EVENT_ID_HEX;
    argvlen[10] = (size_t)snprintf(bound, sizeof bound, "%d", t->app->conf->outbox_max_pending);
    argv[10] = bound;
    argvlen[0] = argvlen[1] = 0;
    redisReply *r = issue_run_script(t, t->issue_sha, lua_issue_script, 11, argv, argvlen);
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
        metrics_add(t->app->metrics, M_REDIS_ERRORS, 1);
    }
    freeReplyObject(r);
    return rc;
}

static int run_rollback_script(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                               int64_t sequence)
{
    char users[48], free_key[48], pending[48], uid[24], seq[24], nkeys[] = "3";
    const char *argv[8] = {NULL, NULL, nkeys, users, free_key, pending, uid, seq};
    size_t argvlen[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    argvlen[3] = (size_t)snprintf(users, sizeof users, "coupon:{%" PRId64 "}:users", coupon_id);
    argvlen[4] = (size_t)snprintf(free_key, sizeof free_key, "coupon:{%" PRId64 "}:free",
                                  coupon_id);
    argvlen[5] = (size_t)snprintf(pending, sizeof pending, "coupon:{%" PRId64 "}:pending",
                                  coupon_id);
    argvlen[6] = (size_t)snprintf(uid, sizeof uid, "%" PRId64, user_id);
    argvlen[7] = (size_t)snprintf(seq, sizeof seq, "%" PRId64, sequence);
    redisReply *r = issue_run_script(t, t->rollback_sha, lua_rollback_script, 8, argv, argvlen);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = r->type == REDIS_REPLY_INTEGER ? CP_OK : CP_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return rc;
}

/* Kafka has the event: the pending record issue.lua wrote is no longer needed. A
 * failure is harmless - the consumer removes it when it persists the event. */
static void clear_pending(struct app_thread *t, int64_t coupon_id, int64_t user_id)
{
    redisContext *r = app_redis(t);
    if (r == NULL)
        return;
    redisReply *reply = redisCommand(r, "HDEL coupon:{%" PRId64 "}:pending %" PRId64, coupon_id,
                                     user_id);
    if (reply == NULL)
        app_redis_failed(t);
    else
        freeReplyObject(reply);
}

/* 1 when Redis still holds the coupon's issuance state (its users or its sequence),
 * 0 when not, CP_ERR_UNAVAILABLE. */
static int issuance_state_exists(struct app_thread *t, int64_t coupon_id)
{
    redisContext *r = app_redis(t);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    redisReply *reply = redisCommand(r, "EXISTS coupon:{%" PRId64 "}:users coupon:{%" PRId64
                                        "}:seq",
                                     coupon_id, coupon_id);
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply == NULL)
            app_redis_failed(t);
        else
            freeReplyObject(reply);
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
static int reload_meta(struct app_thread *t, int64_t coupon_id, struct issue_result *out)
{
    const char **detail = &out->detail;
    struct coupon c;
    MYSQL *db = app_db(t);
    if (db == NULL) {
        *detail = "database unavailable";
        out->kind = ISSUE_UNAVAILABLE;
        return CP_ERR_UNAVAILABLE;
    }
    int rc = coupon_store_get(db, coupon_id, &c);
    if (rc == CP_ERR_NOT_FOUND) {
        flag_set(t->app, coupon_id, 'X', FLAG_TTL_MS);
        out->kind = ISSUE_NOT_EXIST;
        return CP_ERR_NOT_FOUND;
    }
    if (rc == CP_OK)
        rc = coupon_store_has_issues(db, coupon_id);
    if (rc < 0) {
        app_db_failed(t);
        *detail = "database unavailable";
        out->kind = ISSUE_UNAVAILABLE;
        return CP_ERR_UNAVAILABLE;
    }
    if (rc == 1) {
        int state = issuance_state_exists(t, coupon_id);
        if (state < 0) {
            *detail = "redis unavailable";
            out->kind = ISSUE_UNAVAILABLE;
            return CP_ERR_UNAVAILABLE;
        }
        if (state == 1)
            rc = 0; /* only meta is missing: reload it */
    }
    if (rc == 1) {
        /* Issuances exist but Redis has no state for them: issuing now could
         * hand out a second coupon to someone. Wait for rebuild-redis. */
        log_error("coupon %" PRId64 ": issuance state missing in Redis while MariaDB has "
                  "issuances; run coupon-admin rebuild-redis",
                  coupon_id);
        *detail = "issuance state is being rebuilt";
        out->kind = ISSUE_UNAVAILABLE;
        return CP_ERR_UNAVAILABLE;
    }
    if (coupon_meta_write(t->redis, &c) != CP_OK) {
        app_redis_failed(t);
        *detail = "redis unavailable";
        out->kind = ISSUE_UNAVAILABLE;
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK; /* meta written: run the script again */
}

/*
 * The sold-out flag answers for everyone who does not hold the coupon; a holder
 * must still learn their sequence (409), so the flag costs one HGET instead of
 * the script. CP_OK with out->kind set, or CP_ERR_UNAVAILABLE.
 */
static int answer_sold_out(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                           struct issue_result *out)
{
    redisContext *r = app_redis(t);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    redisReply *reply = redisCommand(r, "HGET coupon:{%" PRId64 "}:users %" PRId64, coupon_id,
                                     user_id);
    if (reply == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_OK;
    long long seq = 0, at = 0;
    if (reply->type == REDIS_REPLY_NIL) {
        out->kind = ISSUE_SOLD_OUT;
    } else if (reply->type == REDIS_REPLY_STRING &&
               sscanf(reply->str, "%lld:%lld", &seq, &at) == 2) {
        out->kind = ISSUE_DUPLICATE;
        out->sequence = seq;
        out->issued_at_ms = at;
    } else {
        metrics_add(t->app->metrics, M_REDIS_ERRORS, 1);
        rc = CP_ERR_UNAVAILABLE;
    }
    freeReplyObject(reply);
    return rc;
}

/* L1 flags: CP_OK with out->kind when a flag decided, CP_ERR_NOT_FOUND to go on. */
static int fast_path(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                     struct issue_result *out)
{
    char flag;
    if (flag_get(t->app, coupon_id, &flag) != CP_OK)
        return CP_ERR_NOT_FOUND;
    metrics_add(t->app->metrics, M_FASTPATH_REJECTS, 1);
    switch (flag) {
    case 'S':
        if (answer_sold_out(t, coupon_id, user_id, out) != CP_OK) {
            out->kind = ISSUE_UNAVAILABLE;
            out->detail = "redis unavailable";
        }
        return CP_OK;
    case 'E': out->kind = ISSUE_ENDED; return CP_OK;
    case 'N': out->kind = ISSUE_NOT_STARTED; return CP_OK;
    default: out->kind = ISSUE_NOT_EXIST; return CP_OK;
    }
}

/* issue_ack=kafka: wait for the broker; roll back only what it certainly refused. */
static void make_durable_in_kafka(struct app_thread *t, const struct issue_event *ev,
                                  const char *json, size_t jlen, const char *key, size_t klen,
                                  struct issue_result *out)
{
    struct app *app = t->app;
    switch (producer_send_sync(app->producer, key, klen, json, jlen)) {
    case PRODUCER_DELIVERED:
        clear_pending(t, ev->coupon_id, ev->user_id);
        metrics_add(app->metrics, M_ISSUED, 1);
        out->kind = ISSUE_ISSUED;
        return;
    case PRODUCER_NOT_PERSISTED:
        metrics_add(app->metrics, M_KAFKA_ERRORS, 1);
        if (run_rollback_script(t, ev->coupon_id, ev->user_id, ev->sequence) == CP_OK) {
            metrics_add(app->metrics, M_ROLLBACKS, 1);
            app_publish_invalidation(t, ev->coupon_id); /* stock came back: clear flags */
        } else {
            /* Redis went away too: the reservation stays; the user can't retry
             * it (409) - logged so an operator can release it. */
            log_error("rollback of coupon %" PRId64 " user %" PRId64 " seq %" PRId64 " failed",
                      ev->coupon_id, ev->user_id, ev->sequence);
        }
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "event log (Kafka) did not accept the issuance";
        return;
    case PRODUCER_POSSIBLY_PERSISTED:
        metrics_add(app->metrics, M_KAFKA_ERRORS, 1);
        metrics_add(app->metrics, M_PENDING, 1);
        /* issue.lua recorded it as pending already; the consumer settles it. */
        log_warn("issuance %s (coupon %" PRId64 ", user %" PRId64 ") pending: Kafka's answer "
                 "is unknown",
                 ev->event_id, ev->coupon_id, ev->user_id);
        out->kind = ISSUE_PENDING;
        return;
    }
}

/*
 * issue_ack=redis: the claim and its pending record are in Redis (written to its
 * AOF before the script's reply): that is the acknowledgement. The event only
 * has to reach Kafka eventually - the settler drops the record on the broker's
 * ack, and a record that never gets one is produced again by the reconciler.
 */
static void hand_event_to_kafka(struct app_thread *t, const struct issue_event *ev,
                                const char *json, size_t jlen, const char *key, size_t klen,
                                struct issue_result *out)
{
    struct app *app = t->app;
    if (producer_send_async(app->producer, key, klen, json, jlen) != CP_OK) {
        metrics_add(app->metrics, M_KAFKA_ERRORS, 1);
        log_warn("issuance %s (coupon %" PRId64 ", user %" PRId64 "): event not queued; the "
                 "reconciler produces it from its pending record",
                 ev->event_id, ev->coupon_id, ev->user_id);
    }
    metrics_add(app->metrics, M_ISSUED, 1);
    out->kind = ISSUE_ISSUED;
}

void issue_coupon(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                  struct issue_result *out)
{
    struct app *app = t->app;
    int ack_kafka = app->conf->issue_ack == CONF_ISSUE_ACK_KAFKA;
    memset(out, 0, sizeof *out);
    if (fast_path(t, coupon_id, user_id, out) == CP_OK)
        return;
    if (ack_kafka && !producer_is_up(app->producer)) {
        /* Reserving stock we cannot make durable would only be rolled back. */
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "event log (Kafka) unavailable";
        return;
    }
    if (!ack_kafka && !producer_has_room(app->producer)) {
        metrics_add(app->metrics, M_OUTBOX_FULL, 1);
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "too many issuance events wait for the event log (Kafka)";
        return;
    }
    struct issue_event ev = {.coupon_id = coupon_id, .user_id = user_id};
    if (event_new_id(ev.event_id) != CP_OK) {
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "no randomness for the event id";
        return;
    }
    long long reply[3];
    for (int attempt = 0;; attempt++) {
        if (run_issue_script(t, coupon_id, user_id, ev.event_id, reply) != CP_OK) {
            out->kind = ISSUE_UNAVAILABLE;
            out->detail = "redis unavailable";
            return;
        }
        if (reply[0] != 0 || attempt == 1)
            break;
        if (reload_meta(t, coupon_id, out) != CP_OK)
            return;
    }
    switch (reply[0]) {
    case 1: break;
    case -2:
        out->kind = ISSUE_DUPLICATE;
        out->sequence = reply[1];
        out->issued_at_ms = reply[2];
        return;
    case -3: /* sold out until endAt at most (then it has ended) */
        flag_set(app, coupon_id, 'S',
                 reply[2] < FLAG_TTL_MS ? reply[2] - FLAG_EDGE_MARGIN_MS : FLAG_TTL_MS);
        out->kind = ISSUE_SOLD_OUT;
        return;
    case -4: /* not started: true until startAt, and not a millisecond longer */
        flag_set(app, coupon_id, 'N',
                 reply[2] < FLAG_TTL_MS ? reply[2] - FLAG_EDGE_MARGIN_MS : FLAG_TTL_MS);
        out->kind = ISSUE_NOT_STARTED;
        return;
    case -5:
        flag_set(app, coupon_id, 'E', FLAG_TTL_MS);
        out->kind = ISSUE_ENDED;
        return;
    case -6:
        metrics_add(app->metrics, M_OUTBOX_FULL, 1);
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "too many issuance events wait for the event log (Kafka)";
        return;
    default:
        out->kind = ISSUE_UNAVAILABLE;
        out->detail = "issuance state missing";
        return;
    }

    ev.sequence = reply[1];
    ev.issued_at_ms = reply[2];
    out->sequence = ev.sequence;
    out->issued_at_ms = ev.issued_at_ms;
    char json[CP_EVENT_MAX_BYTES], key[48];
    int jlen = event_encode(&ev, json, sizeof json);
    int klen = event_key(&ev, key, sizeof key);
    if (jlen < 0 || klen < 0) {
        /* Cannot happen for ids in range; the pending record lets the reconciler try. */
        log_error("cannot build the event for coupon %" PRId64, coupon_id);
        if (ack_kafka)
            (void)run_rollback_script(t, coupon_id, user_id, ev.sequence);
        out->kind = ack_kafka ? ISSUE_UNAVAILABLE : ISSUE_ISSUED;
        out->detail = "internal event error";
        return;
    }
    if (ack_kafka)
        make_durable_in_kafka(t, &ev, json, (size_t)jlen, key, (size_t)klen, out);
    else
        hand_event_to_kafka(t, &ev, json, (size_t)jlen, key, (size_t)klen, out);
}

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
    if (jsonv_get_id(obj, "userId", user_id) != CP_OK) {
        *why = "userId must be an integer in 1..9223372036854775807";
        goto out;
    }
    rc = CP_OK;
out:
    json_object_put(obj);
    return rc;
}

void issue_handle(struct app_thread *t, const struct http_request *req,
                  struct http_response *resp, int64_t path_coupon_id)
{
    int64_t coupon_id = 0, user_id = 0;
    const char *why = NULL;
    if (!http_is_json(req->content_type)) {
        problem_set(resp, PROBLEM_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json");
        return;
    }
    if (parse_issue_body(req, path_coupon_id, &coupon_id, &user_id, &why) != CP_OK) {
        problem_set(resp, PROBLEM_INVALID_REQUEST, "%s", why ? why : "invalid body");
        return;
    }
    struct issue_result res;
    issue_coupon(t, coupon_id, user_id, &res);
    char at[TIMEFMT_LEN] = "";
    if (res.issued_at_ms > 0)
        (void)timefmt_format_ms(res.issued_at_ms, at, sizeof at);
    switch (res.kind) {
    case ISSUE_ISSUED:
    case ISSUE_PENDING: {
        /* The consumer stores the same code with the row (same secret, same MAC). */
        const char *secret = t->app->conf->code_secret;
        char code[CP_ISSUE_CODE_CHARS + 1] = "";
        if (issuecode_compute(secret, strlen(secret), coupon_id, user_id, res.sequence,
                              code) != CP_OK)
            code[0] = '\0';
        resp->status = res.kind == ISSUE_ISSUED ? 201 : 202;
        (void)http_response_printf(resp,
                                   "{\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                                   ",\"sequence\":%" PRId64 ",\"status\":\"%s\","
                                   "\"issuedAt\":\"%s\",\"code\":%s%s%s}",
                                   coupon_id, user_id, res.sequence,
                                   res.kind == ISSUE_ISSUED ? "ISSUED" : "PENDING", at,
                                   code[0] ? "\"" : "", code[0] ? code : "null",
                                   code[0] ? "\"" : "");
        http_response_header(resp, "Location", "/api/coupons/%" PRId64 "/issues/%" PRId64,
                             coupon_id, user_id);
        return;
    }
    case ISSUE_NOT_EXIST:
        problem_set(resp, PROBLEM_COUPON_NOT_EXIST, "coupon %" PRId64 " does not exist",
                    coupon_id);
        return;
    case ISSUE_DUPLICATE:
        problem_set(resp, PROBLEM_DUPLICATED_ISSUE,
                    "user %" PRId64 " already holds coupon %" PRId64 " (sequence %" PRId64 ")",
                    user_id, coupon_id, res.sequence);
        return;
    case ISSUE_SOLD_OUT:
        problem_set(resp, PROBLEM_SOLD_OUT, "coupon %" PRId64 " is sold out", coupon_id);
        return;
    case ISSUE_NOT_STARTED:
        problem_set(resp, PROBLEM_INVALID_DATE, "issuance of coupon %" PRId64 " has not started",
                    coupon_id);
        return;
    case ISSUE_ENDED:
        problem_set(resp, PROBLEM_INVALID_DATE, "issuance of coupon %" PRId64 " has ended",
                    coupon_id);
        return;
    case ISSUE_UNAVAILABLE:
        problem_set(resp, PROBLEM_SERVICE_UNAVAILABLE, "%s",
                    res.detail ? res.detail : "dependency unavailable");
        return;
    }
}
