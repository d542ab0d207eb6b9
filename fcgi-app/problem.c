#include "first.h"

#include "problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"

#define RETRY_AFTER_SECONDS 1

static const struct {
    int status;
    const char *code;
    const char *title;
} problems[PROBLEM_COUNT_] = {
    [PROBLEM_INVALID_REQUEST] = {400, "INVALID_REQUEST", "Invalid request"},
    [PROBLEM_UNAUTHORIZED] = {401, "UNAUTHORIZED", "Authentication required"},
    [PROBLEM_FORBIDDEN] = {403, "FORBIDDEN", "Not allowed"},
    [PROBLEM_NOT_FOUND] = {404, "NOT_FOUND", "No such resource"},
    [PROBLEM_COUPON_NOT_EXIST] = {404, "COUPON_NOT_EXIST", "Coupon does not exist"},
    [PROBLEM_ISSUE_NOT_FOUND] = {404, "COUPON_ISSUE_NOT_FOUND", "No such issuance"},
    [PROBLEM_METHOD_NOT_ALLOWED] = {405, "METHOD_NOT_ALLOWED", "Method not allowed"},
    [PROBLEM_DUPLICATED_ISSUE] = {409, "DUPLICATED_COUPON_ISSUE",
                                  "Coupon already issued to this user"},
    [PROBLEM_QUANTITY_BELOW_ISSUED] = {409, "QUANTITY_BELOW_ISSUED",
                                       "Total quantity below what is already issued"},
    [PROBLEM_CONFLICT] = {409, "CONFLICT", "Conflicts with the current state"},
    [PROBLEM_SOLD_OUT] = {410, "INVALID_COUPON_ISSUE_QUANTITY", "Coupon sold out"},
    [PROBLEM_BODY_TOO_LARGE] = {413, "PAYLOAD_TOO_LARGE", "Request body too large"},
    [PROBLEM_URI_TOO_LONG] = {414, "URI_TOO_LONG", "Request URI too long"},
    [PROBLEM_UNSUPPORTED_MEDIA_TYPE] = {415, "UNSUPPORTED_MEDIA_TYPE",
                                        "Content-Type must be application/json"},
    [PROBLEM_INVALID_DATE] = {422, "INVALID_COUPON_ISSUE_DATE",
                              "Outside the coupon's issuance window"},
    [PROBLEM_CODE_NOT_FOUND] = {404, "COUPON_CODE_NOT_FOUND", "No issuance has this code"},
    [PROBLEM_ALREADY_REDEEMED] = {409, "COUPON_ALREADY_REDEEMED",
                                  "Coupon already redeemed by another order"},
    [PROBLEM_ORDER_MISMATCH] = {409, "REDEMPTION_ORDER_MISMATCH",
                                "The redemption belongs to another order"},
    [PROBLEM_NOT_YET_PERSISTED] = {409, "COUPON_NOT_YET_PERSISTED",
                                   "Issued but not yet redeemable; retry shortly"},
    [PROBLEM_EXPIRED] = {410, "COUPON_EXPIRED", "The issued coupon is no longer usable"},
    [PROBLEM_INTERNAL] = {500, "INTERNAL_ERROR", "Internal error"},
    [PROBLEM_SERVICE_UNAVAILABLE] = {503, "SERVICE_UNAVAILABLE",
                                     "A dependency is unavailable; retry later"},
    [PROBLEM_TOO_MANY_REQUESTS] = {429, "TOO_MANY_REQUESTS",
                                   "Too many attempts by this user; retry later"},
    [PROBLEM_NOT_REPLICATED] = {503, "REDIS_NOT_REPLICATED",
                                "The claim is not yet on enough Redis replicas; retry shortly"},
    [PROBLEM_INVALID_AMOUNT] = {400, "INVALID_AMOUNT", "Invalid amount"},
    [PROBLEM_ORDER_BELOW_MINIMUM] = {422, "ORDER_BELOW_MINIMUM",
                                     "The order is below the coupon's minimum order amount"},
    [PROBLEM_HELD] = {409, "COUPON_HELD", "Another order holds the coupon"},
    [PROBLEM_WEBHOOK_URL_REFUSED] = {422, "WEBHOOK_URL_REFUSED",
                                     "The webhook URL is not one deliveries may go to"},
};

int problem_status(enum problem p)
{
    return problems[p].status;
}

const char *problem_code(enum problem p)
{
    return problems[p].code;
}

int problem_json_escape(struct http_response *resp, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        int rc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = http_response_append(resp, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = http_response_append(resp, esc, 6);
        } else {
            rc = http_response_append(resp, (const char *)&s[i], 1);
        }
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

static void problem_vset(struct http_response *resp, enum problem p, const char *fmt, va_list ap)
{
    char detail[512];
    if (vsnprintf(detail, sizeof detail, fmt, ap) < 0)
        detail[0] = '\0';
    resp->status = problems[p].status;
    resp->content_type = "application/problem+json";
    resp->body_len = 0;
    (void)http_response_printf(resp,
                               "{\"type\":\"https://coupon.example/problems/%s\",\"title\":\"%s\","
                               "\"status\":%d,\"code\":\"%s\",\"detail\":\"",
                               problems[p].code, problems[p].title, problems[p].status,
                               problems[p].code);
    (void)problem_json_escape(resp, detail, strlen(detail));
    (void)http_response_append(resp, "\"}", 2);
    if (p == PROBLEM_SERVICE_UNAVAILABLE || p == PROBLEM_NOT_YET_PERSISTED ||
        p == PROBLEM_NOT_REPLICATED)
        http_response_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
}

void problem_set(struct http_response *resp, enum problem p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vset(resp, p, fmt, ap);
    va_end(ap);
}

void problem_fail(struct http_response *resp, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vset(resp, problem_from_err(err), fmt, ap);
    va_end(ap);
}

const char problem_db_unavailable[] = "database unavailable";

void problem_db(struct http_response *resp, int err)
{
    if (err == CP_ERR_INVALID)
        problem_fail(resp, err, "the database refused the values");
    else
        problem_fail(resp, err == CP_ERR_INTERNAL ? err : CP_ERR_UNAVAILABLE, "%s",
                     problem_db_unavailable);
}

enum problem problem_from_err(int err)
{
    switch (err) {
    case CP_ERR_INVALID: return PROBLEM_INVALID_REQUEST;
    case CP_ERR_NOT_FOUND: return PROBLEM_NOT_FOUND;
    case CP_ERR_CONFLICT: return PROBLEM_CONFLICT;
    case CP_ERR_LIMIT: return PROBLEM_BODY_TOO_LARGE;
    case CP_ERR_UNAVAILABLE:
    case CP_ERR_TIMEOUT:
    case CP_ERR_NOMEM: return PROBLEM_SERVICE_UNAVAILABLE;
    case CP_ERR_NO_COUPON: return PROBLEM_COUPON_NOT_EXIST;
    case CP_ERR_NO_ISSUANCE: return PROBLEM_ISSUE_NOT_FOUND;
    case CP_ERR_DUPLICATE: return PROBLEM_DUPLICATED_ISSUE;
    case CP_ERR_SOLD_OUT: return PROBLEM_SOLD_OUT;
    case CP_ERR_NOT_STARTED:
    case CP_ERR_ENDED: return PROBLEM_INVALID_DATE;
    case CP_ERR_BELOW_ISSUED: return PROBLEM_QUANTITY_BELOW_ISSUED;
    case CP_ERR_MEDIA_TYPE: return PROBLEM_UNSUPPORTED_MEDIA_TYPE;
    case CP_ERR_UNAUTHORIZED: return PROBLEM_UNAUTHORIZED;
    case CP_ERR_FORBIDDEN: return PROBLEM_FORBIDDEN;
    case CP_ERR_METHOD: return PROBLEM_METHOD_NOT_ALLOWED;
    case CP_ERR_URI_TOO_LONG: return PROBLEM_URI_TOO_LONG;
    case CP_ERR_NO_CODE: return PROBLEM_CODE_NOT_FOUND;
    case CP_ERR_ALREADY_REDEEMED: return PROBLEM_ALREADY_REDEEMED;
    case CP_ERR_ORDER_MISMATCH: return PROBLEM_ORDER_MISMATCH;
    case CP_ERR_NOT_PERSISTED: return PROBLEM_NOT_YET_PERSISTED;
    case CP_ERR_EXPIRED: return PROBLEM_EXPIRED;
    case CP_ERR_NOT_REPLICATED: return PROBLEM_NOT_REPLICATED;
    case CP_ERR_RATE_LIMITED: return PROBLEM_TOO_MANY_REQUESTS;
    case CP_ERR_BAD_AMOUNT: return PROBLEM_INVALID_AMOUNT;
    case CP_ERR_BELOW_MINIMUM: return PROBLEM_ORDER_BELOW_MINIMUM;
    case CP_ERR_HELD: return PROBLEM_HELD;
    case CP_ERR_URL_REFUSED: return PROBLEM_WEBHOOK_URL_REFUSED;
    default: return PROBLEM_INTERNAL;
    }
}
