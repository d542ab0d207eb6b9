#include "first.h"

#include "validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "coupon_doc.h"
#include "coupon_store.h"
#include "cp_err.h"
#include "credis_checkout.h"
#include "jsonv.h"
#include "log.h"
#include "problem.h"
#include "redeem.h"
#include "redemption_store.h"
#include "timefmt.h"

int validate_parse_body(const char *body, size_t len, struct validate_body *out, const char **why)
{
    static const char *const keys[] = {"code", "couponId", "orderAmount", NULL};
    struct json_object *obj = NULL;
    memset(out, 0, sizeof *out);
    int rc = jsonv_parse_object(body, len, &obj, why);
    if (rc != CP_OK)
        return CP_ERR_INVALID;
    int has_code = json_object_object_get_ex(obj, "code", NULL);
    rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, keys, NULL))
        *why = "unknown member in body (expected code or couponId, and orderAmount)";
    else if (has_code == json_object_object_get_ex(obj, "couponId", NULL))
        *why = "give exactly one of code and couponId";
    else if (has_code)
        rc = redeem_take_code(obj, out->code, why);
    else if (jsonv_get_id(obj, "couponId", &out->coupon_id) == CP_OK)
        rc = CP_OK;
    else
        *why = "couponId must be an integer in 1..9223372036854775807";
    if (rc == CP_OK) {
        rc = redeem_take_amount(obj, out->amount, why);
        if (rc == CP_ERR_NOT_FOUND) {
            *why = "orderAmount is required: a string amount such as \"12.50\"";
            rc = CP_ERR_BAD_AMOUNT;
        }
    }
    json_object_put(obj);
    return rc;
}

enum validate_reason validate_decide(const struct validate_issuance *is, int64_t campaign_until_ms,
                                     int64_t now_ms, int money_outcome)
{
    if (!is->issued)
        return VALIDATE_NOT_ISSUED;
    if (is->redeemed)
        return VALIDATE_ALREADY_REDEEMED;
    if ((is->usable_until_ms >= 0 && is->usable_until_ms <= now_ms) ||
        (campaign_until_ms >= 0 && campaign_until_ms <= now_ms))
        return VALIDATE_EXPIRED;
    /* After the issuance's own state, before the order's. */
    if (is->held)
        return VALIDATE_HELD;
    if (money_outcome == MONEY_BELOW_MINIMUM)
        return VALIDATE_BELOW_MINIMUM;
    return VALIDATE_OK;
}

static const struct {
    const char *code;
    enum metrics_counter counter;
} reasons[] = {
    [VALIDATE_OK] = {NULL, M_VALIDATE_VALID},
    [VALIDATE_NOT_ISSUED] = {"COUPON_NOT_ISSUED", M_VALIDATE_NOT_ISSUED},
    [VALIDATE_ALREADY_REDEEMED] = {"COUPON_ALREADY_REDEEMED", M_VALIDATE_REDEEMED},
    [VALIDATE_EXPIRED] = {"COUPON_EXPIRED", M_VALIDATE_EXPIRED},
    [VALIDATE_HELD] = {"COUPON_HELD", M_VALIDATE_HELD},
    [VALIDATE_BELOW_MINIMUM] = {"ORDER_BELOW_MINIMUM", M_VALIDATE_BELOW_MINIMUM},
};

const char *validate_reason_code(enum validate_reason r)
{
    return reasons[r].code;
}

/* A refusal: counted under `counter` and answered as the problem of err. */
static void refuse(struct app_thread *t, struct http_response *resp, enum metrics_counter counter,
                   int err, const char *detail)
{
    metrics_add(t->app->metrics, counter, 1);
    if (err == CP_ERR_UNAVAILABLE)
        app_db_failed(t, err);
    problem_fail(resp, err, "%s", detail);
}

/* The issuance behind the body: *coupon_id and *user_id. 1 to go on; 0 with the
 * problem answered. A user's by-code attempts count against their redeem limit before
 * the look-up, as POST /api/redemptions does (guessing codes stays limited). */
static int resolve(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                   struct db *db, const struct validate_body *b, int64_t *coupon_id,
                   int64_t *user_id)
{
    const struct http_caller *who = &req->caller;
    *coupon_id = b->coupon_id;
    *user_id = who->user_id;
    if (b->code[0] == '\0')
        return 1; /* couponId: the caller's own (checked by validate_handle) */
    int any_code = !who->verified || (who->scopes & (HTTP_SCOPE_CHECKOUT | HTTP_SCOPE_ADMIN));
    if (!any_code && !auth_rate(t->app->auth, RATELIMIT_REDEEM, who->user_id, resp))
        return 0;
    int rc = redemption_store_find_code(db, b->code, coupon_id, user_id);
    /* Another user's code answers as an unknown one (redeem.c does the same). */
    if (rc == CP_OK && !any_code && *user_id != who->user_id)
        rc = CP_ERR_NOT_FOUND;
    if (rc == CP_OK)
        return 1;
    if (rc == CP_ERR_NOT_FOUND)
        refuse(t, resp, M_VALIDATE_NOT_FOUND, CP_ERR_NO_CODE,
               "no issuance has this code (an issuance's code is known once it is persisted, "
               "usually within a second of its 201)");
    else if (rc == CP_ERR_CONFLICT)
        refuse(t, resp, M_VALIDATE_NOT_FOUND, CP_ERR_CONFLICT,
               "this code is shared by two issuances; validate by couponId");
    else
        refuse(t, resp, M_VALIDATE_UNAVAILABLE, CP_ERR_UNAVAILABLE, "database unavailable");
    return 0;
}

/* Redeemed or held now, from Redis' checkout state (lua/redeem.lua decides both there,
 * MariaDB follows): 1 to go on, 0 with the 503 answered. */
static int checkout_state(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                          int64_t user_id, struct validate_issuance *st)
{
    struct rkey_checkout_state cs;
    struct rcli *r = app_redis(t);
    int rc = r != NULL ? credis_checkout_state(r, coupon_id, user_id, &cs) : CP_ERR_UNAVAILABLE;
    if (rc < 0) {
        app_redis_failed(t);
        refuse(t, resp, M_VALIDATE_UNAVAILABLE, CP_ERR_UNAVAILABLE, "issuance state unavailable");
        return 0;
    }
    if (rc == 1) { /* else no change yet: the row's used_at (an issuance from before) */
        st->redeemed = cs.state == 'R';
        st->held = cs.state == 'H' && cs.until_ms > timefmt_now_ms();
    }
    return 1;
}

/* The issuance's state: from its row, else (by couponId) from Redis' claim; then its
 * checkout state from Redis. 1 to go on. */
static int issuance_state(struct app_thread *t, struct http_response *resp, struct db *db,
                          int64_t coupon_id, int64_t user_id, int by_code,
                          struct validate_issuance *st)
{
    struct issuance row;
    memset(st, 0, sizeof *st);
    st->usable_until_ms = -1;
    int rc = coupon_store_issue_get(db, coupon_id, user_id, &row);
    if (rc == CP_OK) {
        st->issued = 1;
        st->redeemed = row.used_ms >= 0;
        st->usable_until_ms = row.usable_until_ms;
        return checkout_state(t, resp, coupon_id, user_id, st);
    }
    if (rc != CP_ERR_NOT_FOUND) {
        refuse(t, resp, M_VALIDATE_UNAVAILABLE, CP_ERR_UNAVAILABLE, "database unavailable");
        return 0;
    }
    if (by_code)
        return 1; /* the row of the code went away: not issued */
    int claimed = redeem_claimed_in_redis(t, coupon_id, user_id);
    if (claimed < 0) {
        metrics_add(t->app->metrics, M_VALIDATE_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "issuance state unavailable");
        return 0;
    }
    st->issued = claimed; /* claimed moments ago: its own deadline not yet known here */
    return !claimed || checkout_state(t, resp, coupon_id, user_id, st);
}

static void answer(struct app_thread *t, struct http_response *resp, const struct coupon *c,
                   enum validate_reason reason, int64_t discount, int exp)
{
    char amount[MONEY_TEXT_MAX], code[32] = "null", currency[8] = "null";
    if (money_format(reason == VALIDATE_OK ? discount : 0, exp, amount, sizeof amount) < 0) {
        refuse(t, resp, M_VALIDATE_UNAVAILABLE, CP_ERR_INTERNAL, "discount out of range");
        return;
    }
    if (reasons[reason].code != NULL)
        snprintf(code, sizeof code, "\"%s\"", reasons[reason].code);
    if (c->currency[0] != '\0')
        snprintf(currency, sizeof currency, "\"%s\"", c->currency);
    metrics_add(t->app->metrics, reasons[reason].counter, 1);
    resp->status = 200;
    (void)http_response_printf(resp,
                               "{\"valid\":%s,\"discountAmount\":\"%s\",\"reason\":%s,"
                               "\"couponId\":%" PRId64 ",\"currency\":%s}",
                               reason == VALIDATE_OK ? "true" : "false", amount, code, c->id,
                               currency);
}

void validate_handle(struct app_thread *t, const struct http_request *req,
                     struct http_response *resp)
{
    struct validate_body b;
    const char *why = "invalid body";
    if (!http_is_json(req->content_type)) {
        refuse(t, resp, M_VALIDATE_BAD_REQUEST, CP_ERR_MEDIA_TYPE,
               "send the body as application/json");
        return;
    }
    int rc = validate_parse_body(req->body, req->body_len, &b, &why);
    if (rc != CP_OK) {
        refuse(t, resp, M_VALIDATE_BAD_REQUEST, rc, why);
        return;
    }
    const struct http_caller *who = &req->caller;
    /* couponId names the caller's own issuance: a user's token, never a service's. */
    if (b.coupon_id > 0 && (!who->verified || who->user_id <= 0 ||
                            (who->scopes & (HTTP_SCOPE_CHECKOUT | HTTP_SCOPE_ADMIN)))) {
        refuse(t, resp, M_VALIDATE_BAD_REQUEST, who->verified ? CP_ERR_FORBIDDEN : CP_ERR_INVALID,
               "couponId validates the caller's own issuance and needs a user's token; "
               "validate by code instead");
        return;
    }
    struct db *db = app_db(t);
    int64_t coupon_id, user_id, discount = 0;
    if (!resolve(t, req, resp, db, &b, &coupon_id, &user_id))
        return;
    struct coupon c;
    rc = coupon_store_get(db, coupon_id, &c);
    if (rc != CP_OK) {
        refuse(t, resp, rc == CP_ERR_NOT_FOUND ? M_VALIDATE_NOT_FOUND : M_VALIDATE_UNAVAILABLE,
               rc == CP_ERR_NOT_FOUND ? CP_ERR_NO_COUPON : CP_ERR_UNAVAILABLE,
               rc == CP_ERR_NOT_FOUND ? "no coupon has this id" : "database unavailable");
        return;
    }
    int exp = MONEY_EXP_DEFAULT;
    int priced = coupon_doc_discount(&c, b.amount, &discount, &exp, &why);
    if (priced < 0) {
        if (priced == CP_ERR_INTERNAL)
            log_error("coupon %" PRId64 ": %s", coupon_id, why);
        refuse(t, resp,
               priced == CP_ERR_BAD_AMOUNT ? M_VALIDATE_BAD_REQUEST : M_VALIDATE_UNAVAILABLE,
               priced, why);
        return;
    }
    struct validate_issuance st;
    if (!issuance_state(t, resp, db, coupon_id, user_id, b.code[0] != '\0', &st))
        return;
    answer(t, resp, &c, validate_decide(&st, c.usable_until_ms, timefmt_now_ms(), priced), discount,
           exp);
}
