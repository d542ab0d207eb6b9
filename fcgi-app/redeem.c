#include "first.h"

#include "redeem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "coupon_doc.h"
#include "cp_err.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "money.h"
#include "problem.h"
#include "redemption_store.h"
#include "rkey.h"
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

int redeem_take_code(struct json_object *obj, char code[CP_ISSUE_CODE_CHARS + 1], const char **why)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, "code", CP_ISSUE_CODE_INPUT_MAX, &s, &len) != CP_OK ||
        issuecode_normalise(s, len, code) != CP_OK) {
        *why = "code must be the 12 characters of an issuance's code (Crockford base32)";
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

int redeem_take_amount(struct json_object *obj, char amount[MONEY_TEXT_MAX], const char **why)
{
    const char *s;
    size_t len;
    int64_t ignored;
    amount[0] = '\0';
    int rc = jsonv_get_string(obj, "orderAmount", MONEY_TEXT_MAX - 1, &s, &len);
    if (rc == CP_ERR_NOT_FOUND && !json_object_object_get_ex(obj, "orderAmount", NULL))
        return CP_ERR_NOT_FOUND;
    if (rc != CP_OK || money_parse(s, len, MONEY_EXP_MAX, &ignored) != CP_OK) {
        *why = "orderAmount must be a string amount >= 0 such as \"12.50\": digits, at most "
               "12 before the point and the currency's decimals after it";
        return CP_ERR_BAD_AMOUNT;
    }
    memcpy(amount, s, len);
    amount[len] = '\0';
    return CP_OK;
}

/* The optional orderAmount of a redemption body (amount NULL: not accepted). */
static int take_optional_amount(struct json_object *obj, char *amount, const char **why)
{
    if (amount == NULL)
        return CP_OK;
    int rc = redeem_take_amount(obj, amount, why);
    return rc == CP_ERR_NOT_FOUND ? CP_OK : rc;
}

int redeem_parse_order_body(const char *body, size_t len, char order[CP_ORDER_ID_MAX_CHARS + 1],
                            char *amount, const char **why)
{
    static const char *const keys[] = {"orderId", NULL};
    static const char *const keys_amount[] = {"orderId", "orderAmount", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, amount != NULL ? keys_amount : keys, NULL)) {
        *why = amount != NULL ? "unknown member in body (expected orderId and orderAmount)"
                              : "unknown member in body (expected only orderId)";
        goto out;
    }
    rc = take_order(obj, order, why);
    if (rc == CP_OK)
        rc = take_optional_amount(obj, amount, why);
out:
    json_object_put(obj);
    return rc;
}

int redeem_parse_code_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], char amount[MONEY_TEXT_MAX],
                           const char **why)
{
    static const char *const keys[] = {"code", "orderId", "orderAmount", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, keys, NULL)) {
        *why = "unknown member in body (expected code, orderId and orderAmount)";
        goto out;
    }
    rc = redeem_take_code(obj, code, why);
    if (rc == CP_OK)
        rc = take_order(obj, order, why);
    if (rc == CP_OK)
        rc = take_optional_amount(obj, amount, why);
out:
    json_object_put(obj);
    return rc;
}

/* A MariaDB call of a redemption failed with rc: counted, and answered 503. */
static void redemption_failed(struct app_thread *t, struct http_response *resp, int rc)
{
    app_db_failed(t, rc);
    metrics_add(t->app->metrics, M_REDEEM_UNAVAILABLE, 1);
    problem_db(resp, CP_ERR_UNAVAILABLE);
}

int redeem_claimed_in_redis(struct app_thread *t, int64_t coupon_id, int64_t user_id)
{
    char users[RKEY_MAX], uid[24];
    struct rcli *r = app_redis(t);
    if (r == NULL || rkey_coupon(users, sizeof users, RKEY_USERS, coupon_id) < 0 ||
        rkey_user_encode(user_id, uid, sizeof uid) < 0)
        return CP_ERR_UNAVAILABLE;
    redisReply *reply = rcli_command(r, "HEXISTS %s %s", users, uid);
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply != NULL)
            freeReplyObject(reply);
        app_redis_failed(t); /* an error reply too: CLUSTERDOWN re-discovers the map */
        return CP_ERR_UNAVAILABLE;
    }
    int claimed = reply->integer == 1;
    freeReplyObject(reply);
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

/* What an orderAmount of a redemption comes to (given = 0: the body had none). */
struct order_discount {
    int given, exp;
    int64_t discount;
};

static void send_redemption(struct http_response *resp, int status, int64_t coupon_id,
                            int64_t user_id, const struct redemption *red,
                            const struct order_discount *od)
{
    char redeemed[TIMEFMT_LEN + 2], until[TIMEFMT_LEN + 2], code[CP_ISSUE_CODE_CHARS + 3];
    char value[MONEY_TEXT_MAX], discount[MONEY_TEXT_MAX], amount[MONEY_TEXT_MAX + 24] = "";
    /* The stored DECIMAL at the value's scale: a percentage with two decimals, money with
     * its currency's. */
    int scale = strcmp(red->discount_type, "PERCENTAGE") == 0 ? MONEY_PERCENT_EXP
                                                              : money_exponent(red->currency);
    if (money_restate(red->discount_value, strlen(red->discount_value), scale, value,
                      sizeof value) < 0)
        snprintf(value, sizeof value, "null");
    if (od->given && money_format(od->discount, od->exp, discount, sizeof discount) >= 0)
        snprintf(amount, sizeof amount, ",\"discountAmount\":\"%s\"", discount);
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
                               "\"discount\":{\"type\":\"%s\",\"value\":%s}%s}",
                               coupon_id, user_id, red->is.order_id, redeemed, code, until,
                               red->discount_type, value, amount);
    http_response_header(resp, "Location", "/api/coupons/%" PRId64 "/issues/%" PRId64 "/redemption",
                         coupon_id, user_id);
}

/* With an orderAmount (amount not ""): its discount from the campaign, before anything
 * is written - an amount the currency cannot have is a 400, an order below the
 * campaign's minimum a 422. 1 to go on, 0 with the problem answered. */
static int price_order(struct app_thread *t, struct http_response *resp, struct db *db,
                       int64_t coupon_id, const char *amount, struct order_discount *od)
{
    struct metrics *m = t->app->metrics;
    struct coupon c;
    const char *why = "";
    od->given = 0;
    if (amount[0] == '\0')
        return 1;
    int rc = coupon_store_get(db, coupon_id, &c);
    if (rc == CP_ERR_NOT_FOUND)
        return 1; /* no campaign, no issuance: the redemption answers 404 */
    if (rc != CP_OK) {
        redemption_failed(t, resp, rc);
        return 0;
    }
    rc = coupon_doc_discount(&c, amount, &od->discount, &od->exp, &why);
    if (rc == MONEY_APPLIES) {
        od->given = 1;
        return 1;
    }
    if (rc == MONEY_BELOW_MINIMUM) {
        metrics_add(m, M_REDEEM_BELOW_MINIMUM, 1);
        problem_fail(resp, CP_ERR_BELOW_MINIMUM,
                     "coupon %" PRId64 " needs an order of at least its minOrderAmount; nothing "
                     "was redeemed",
                     coupon_id);
        return 0;
    }
    metrics_add(m, rc == CP_ERR_BAD_AMOUNT ? M_REDEEM_BAD_AMOUNT : M_REDEEM_UNAVAILABLE, 1);
    problem_fail(resp, rc, "%s", why);
    return 0;
}

/* The redemption of (coupon, user) by order, answered in resp; amount: the body's
 * orderAmount or "". */
static void redeem(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                   int64_t user_id, const char *order, const char *amount)
{
    struct metrics *m = t->app->metrics;
    struct order_discount od;
    if (!price_order(t, resp, app_db(t), coupon_id, amount, &od))
        return;
    enum redeem_outcome outcome = REDEEM_NO_ROW;
    struct redemption red;
    int rc = redemption_store_redeem(app_db(t), t->app->conf->kafka_redemption_topic, coupon_id,
                                     user_id, order, timefmt_now_ms(), &outcome, &red);
    if (rc != CP_OK) {
        redemption_failed(t, resp, rc);
        return;
    }
    switch (outcome) {
    case REDEEM_NEW:
        metrics_add(m, M_REDEEM_REDEEMED, 1);
        send_redemption(resp, 201, coupon_id, user_id, &red, &od);
        return;
    case REDEEM_REPLAY:
        metrics_add(m, M_REDEEM_REPLAYED, 1);
        send_redemption(resp, 200, coupon_id, user_id, &red, &od);
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
    int claimed = redeem_claimed_in_redis(t, coupon_id, user_id);
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
    char order[CP_ORDER_ID_MAX_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    int rc = redeem_parse_order_body(req->body, req->body_len, order, amount, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    redeem(t, resp, coupon_id, user_id, order, amount);
}

/* A code redeems for its owner only, unless a coupon:checkout service redeems it. */
static int code_owner_matches(const struct http_caller *who, int64_t owner)
{
    return !who->verified || (who->scopes & HTTP_SCOPE_CHECKOUT) || who->user_id == owner;
}

void redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    int rc = redeem_parse_code_body(req->body, req->body_len, code, order, amount, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return;
    }
    const struct http_caller *who = &req->caller;
    /* A user's attempts count before the look-up, so that guessing codes is limited too;
     * without a user (auth_mode = none, a service) the owner's count after it. */
    int user_caller = who->verified && who->user_id > 0 && !(who->scopes & HTTP_SCOPE_CHECKOUT);
    if (user_caller && !auth_rate(t->app->auth, RATELIMIT_REDEEM, who->user_id, resp))
        return;
    struct metrics *m = t->app->metrics;
    int64_t coupon_id = 0, user_id = 0;
    rc = redemption_store_find_code(app_db(t), code, &coupon_id, &user_id);
    /* Another user's code answers as an unknown one: whether a code exists is not
     * something a guesser should learn. */
    if (rc == CP_OK && !code_owner_matches(who, user_id))
        rc = CP_ERR_NOT_FOUND;
    switch (rc) {
    case CP_OK:
        if (!user_caller && !auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
            return;
        redeem(t, resp, coupon_id, user_id, order, amount);
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
    default: redemption_failed(t, resp, rc); return;
    }
}

void redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    if (redeem_parse_order_body(req->body, req->body_len, order, NULL, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    struct metrics *m = t->app->metrics;
    enum cancel_outcome outcome = CANCEL_NO_ROW;
    int rc = redemption_store_cancel(app_db(t), t->app->conf->kafka_redemption_topic, coupon_id,
                                     user_id, order, timefmt_now_ms(), &outcome);
    if (rc != CP_OK) {
        redemption_failed(t, resp, rc);
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
        claimed = redeem_claimed_in_redis(t, coupon_id, user_id);
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
