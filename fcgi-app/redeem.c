#include "first.h"

#include "redeem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cp_err.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "problem.h"
#include "redemption_store.h"
#include "credis.h"
#include "timefmt.h"

int redeem_order_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > CP_ORDER_ID_MAX_CHARS)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static const char order_why[] = "orderId must be a string of 1..64 characters of [A-Za-z0-9._:-]";

/* The orderId member of obj into order. */
static int take_order(struct json_object *obj, char order[CP_ORDER_ID_MAX_CHARS + 1],
                      const char **why)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, "orderId", CP_ORDER_ID_MAX_CHARS, &s, &len) != CP_OK ||
        !redeem_order_id_valid(s, len)) {
        *why = order_why;
        return CP_ERR_INVALID;
    }
    memcpy(order, s, len);
    order[len] = '\0';
    return CP_OK;
}

int redeem_parse_order_body(const char *body, size_t len, char order[CP_ORDER_ID_MAX_CHARS + 1],
                            const char **why)
{
    static const char *const keys[] = {"orderId", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, keys, NULL)) {
        *why = "unknown member in body (expected only orderId)";
        goto out;
    }
    rc = take_order(obj, order, why);
out:
    json_object_put(obj);
    return rc;
}

int redeem_parse_code_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], const char **why)
{
    static const char *const keys[] = {"code", "orderId", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    const char *s;
    size_t slen;
    if (!jsonv_only_keys(obj, keys, NULL)) {
        *why = "unknown member in body (expected code and orderId)";
        goto out;
    }
    if (jsonv_get_string(obj, "code", CP_ISSUE_CODE_INPUT_MAX, &s, &slen) != CP_OK ||
        issuecode_normalise(s, slen, code) != CP_OK) {
        *why = "code must be the 12 characters of an issuance's code (Crockford base32)";
        goto out;
    }
    rc = take_order(obj, order, why);
out:
    json_object_put(obj);
    return rc;
}

/* The thread's MariaDB connection, or NULL with the 503 answered and counted. */
static MYSQL *redemption_db(struct app_thread *t, struct http_response *resp)
{
    MYSQL *db = app_db(t);
    if (db == NULL) {
        metrics_add(t->app->metrics, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "database unavailable");
    }
    return db;
}

/* 1 when Redis holds the claim of (coupon, user), 0 when not, CP_ERR_UNAVAILABLE. */
static int claimed_in_redis(struct app_thread *t, int64_t coupon_id, int64_t user_id)
{
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int claimed = credis_holder_exists(r, coupon_id, user_id);
    if (claimed < 0)
        app_redis_failed(t); /* an error reply too: CLUSTERDOWN re-discovers the map */
    return claimed;
}

static int content_is_json(const struct http_request *req, struct http_response *resp)
{
    if (http_is_json(req->content_type))
        return 1;
    problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
    return 0;
}

/* A JSON time or null. */
static void time_or_null(int64_t ms, char *buf, size_t cap)
{
    char t[TIMEFMT_LEN];
    if (ms < 0 || timefmt_format_ms(ms, t, sizeof t) < 0)
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "\"%s\"", t);
}

static void send_redemption(struct http_response *resp, int status, int64_t coupon_id,
                            int64_t user_id, const struct redemption *red)
{
    char redeemed[TIMEFMT_LEN + 2], until[TIMEFMT_LEN + 2], code[CP_ISSUE_CODE_CHARS + 3];
    time_or_null(red->is.used_ms, redeemed, sizeof redeemed);
    time_or_null(red->is.usable_until_ms, until, sizeof until);
    if (red->is.code[0] != '\0')
        snprintf(code, sizeof code, "\"%s\"", red->is.code);
    else
        snprintf(code, sizeof code, "null");
    resp->status = status;
    /* orderId passed redeem_order_id_valid and the discount is MariaDB's DECIMAL text:
     * neither needs escaping. */
    (void)http_response_printf(resp,
                               "{\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                               ",\"status\":\"REDEEMED\",\"orderId\":\"%s\",\"redeemedAt\":%s,"
                               "\"code\":%s,\"usableUntil\":%s,"
                               "\"discount\":{\"type\":\"%s\",\"value\":%s}}",
                               coupon_id, user_id, red->is.order_id, redeemed, code, until,
                               red->discount_type,
                               red->discount_value[0] ? red->discount_value : "null");
    http_response_header(resp, "Location", "/api/coupons/%" PRId64 "/issues/%" PRId64 "/redemption",
                         coupon_id, user_id);
}

/* The redemption of (coupon, user) by order, answered in resp. */
static void redeem(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                   int64_t user_id, const char *order)
{
    struct metrics *m = t->app->metrics;
    MYSQL *db = redemption_db(t, resp);
    if (db == NULL)
        return;
    enum redeem_outcome outcome = REDEEM_NO_ROW;
    struct redemption red;
    int rc = redemption_store_redeem(db, t->app->conf->kafka_redemption_topic, coupon_id, user_id,
                                     order, timefmt_now_ms(), &outcome, &red);
    if (rc != CP_OK) {
        if (rc == CP_ERR_UNAVAILABLE)
            app_db_failed(t);
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "database unavailable");
        return;
    }
    switch (outcome) {
    case REDEEM_NEW:
        metrics_add(m, M_REDEEM_REDEEMED, 1);
        send_redemption(resp, 201, coupon_id, user_id, &red);
        return;
    case REDEEM_REPLAY:
        metrics_add(m, M_REDEEM_REPLAYED, 1);
        send_redemption(resp, 200, coupon_id, user_id, &red);
        return;
    case REDEEM_CONFLICT:
        metrics_add(m, M_REDEEM_CONFLICT, 1);
        problem_fail(resp, CP_ERR_ALREADY_REDEEMED,
                     "coupon %" PRId64 " of user %" PRId64 " is redeemed by another order",
                     coupon_id, user_id);
        return;
    case REDEEM_EXPIRED: {
        char until[TIMEFMT_LEN] = "";
        (void)timefmt_format_ms(red.is.usable_until_ms, until, sizeof until);
        metrics_add(m, M_REDEEM_EXPIRED, 1);
        problem_fail(resp, CP_ERR_EXPIRED,
                     "coupon %" PRId64 " of user %" PRId64 " was usable until %s", coupon_id,
                     user_id, until);
        return;
    }
    case REDEEM_NO_ROW: break;
    }
    int claimed = claimed_in_redis(t, coupon_id, user_id);
    if (claimed < 0) {
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "issuance state unavailable");
    } else if (claimed) {
        metrics_add(m, M_REDEEM_NOT_PERSISTED, 1);
        problem_fail(resp, CP_ERR_NOT_PERSISTED,
                     "coupon %" PRId64 " was issued to user %" PRId64
                     " moments ago and is being persisted; retry after the Retry-After delay",
                     coupon_id, user_id);
    } else {
        metrics_add(m, M_REDEEM_NOT_FOUND, 1);
        problem_fail(resp, CP_ERR_NO_ISSUANCE,
                     "user %" PRId64 " holds no issuance of coupon %" PRId64, user_id, coupon_id);
    }
}

void redeem_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                   int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    if (redeem_parse_order_body(req->body, req->body_len, order, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    redeem(t, resp, coupon_id, user_id, order);
}

/* A code redeems for its owner only, unless a coupon:checkout service redeems it. */
static int code_owner_matches(const struct http_caller *who, int64_t owner)
{
    return !who->verified || (who->scopes & HTTP_SCOPE_CHECKOUT) || who->user_id == owner;
}

void redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    if (redeem_parse_code_body(req->body, req->body_len, code, order, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why ? why : "invalid body");
        return;
    }
    const struct http_caller *who = &req->caller;
    /* A user's attempts count before the look-up, so that guessing codes is limited too;
     * without a user (auth_mode = none, a service) the owner's count after it. */
    int user_caller = who->verified && who->user_id > 0 && !(who->scopes & HTTP_SCOPE_CHECKOUT);
    if (user_caller && !auth_rate(t->app->auth, RATELIMIT_REDEEM, who->user_id, resp))
        return;
    struct metrics *m = t->app->metrics;
    MYSQL *db = redemption_db(t, resp);
    if (db == NULL)
        return;
    int64_t coupon_id = 0, user_id = 0;
    int rc = redemption_store_find_code(db, code, &coupon_id, &user_id);
    /* Another user's code answers as an unknown one: whether a code exists is not
     * something a guesser should learn. */
    if (rc == CP_OK && !code_owner_matches(who, user_id))
        rc = CP_ERR_NOT_FOUND;
    switch (rc) {
    case CP_OK:
        if (!user_caller && !auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
            return;
        redeem(t, resp, coupon_id, user_id, order);
        return;
    case CP_ERR_NOT_FOUND:
        metrics_add(m, M_REDEEM_NOT_FOUND, 1);
        /* The code itself is not echoed: a problem document may end up in logs. */
        problem_fail(resp, CP_ERR_NO_CODE,
                     "no issuance has this code (an issuance's code is redeemable once it is "
                     "persisted, usually within a second of its 201)");
        return;
    case CP_ERR_CONFLICT:
        metrics_add(m, M_REDEEM_AMBIGUOUS, 1);
        log_warn("a redemption code is shared by two issuances (a MAC collision)");
        problem_fail(resp, CP_ERR_CONFLICT,
                     "this code is shared by two issuances; redeem through "
                     "/api/coupons/{id}/issues/{userId}/redemption");
        return;
    default:
        if (rc == CP_ERR_UNAVAILABLE)
            app_db_failed(t);
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "database unavailable");
        return;
    }
}

void redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    if (redeem_parse_order_body(req->body, req->body_len, order, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    struct metrics *m = t->app->metrics;
    MYSQL *db = redemption_db(t, resp);
    if (db == NULL)
        return;
    enum cancel_outcome outcome = CANCEL_NO_ROW;
    int rc = redemption_store_cancel(db, t->app->conf->kafka_redemption_topic, coupon_id, user_id,
                                     order, timefmt_now_ms(), &outcome);
    if (rc != CP_OK) {
        if (rc == CP_ERR_UNAVAILABLE)
            app_db_failed(t);
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "database unavailable");
        return;
    }
    int claimed = 1;
    switch (outcome) {
    case CANCEL_DONE:
        metrics_add(m, M_REDEEM_CANCELLED, 1);
        resp->status = 204;
        return;
    case CANCEL_NOOP:
        metrics_add(m, M_REDEEM_CANCEL_NOOP, 1);
        resp->status = 204;
        return;
    case CANCEL_MISMATCH:
        metrics_add(m, M_REDEEM_CANCEL_CONFLICT, 1);
        problem_fail(resp, CP_ERR_ORDER_MISMATCH,
                     "coupon %" PRId64 " of user %" PRId64 " is redeemed by another order",
                     coupon_id, user_id);
        return;
    case CANCEL_NO_ROW:
        /* Not in MariaDB: an issuance not yet persisted cannot have been redeemed, so
         * there is nothing to cancel (204); without any issuance the path is wrong. */
        claimed = claimed_in_redis(t, coupon_id, user_id);
        break;
    }
    if (claimed < 0) {
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "issuance state unavailable");
    } else if (claimed) {
        metrics_add(m, M_REDEEM_CANCEL_NOOP, 1);
        resp->status = 204;
    } else {
        metrics_add(m, M_REDEEM_NOT_FOUND, 1);
        problem_fail(resp, CP_ERR_NO_ISSUANCE,
                     "user %" PRId64 " holds no issuance of coupon %" PRId64, user_id, coupon_id);
    }
}
