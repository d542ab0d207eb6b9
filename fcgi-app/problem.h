/*
 * problem.h - the one place where outcomes become HTTP errors (RFC 9457
 * application/problem+json with a stable `code`).
 *
 * Each enum problem has a fixed status, title and code. Handlers never pick a
 * problem themselves: they answer an outcome with problem_fail(resp, cp_err,
 * detail), and problem_from_err() - the one mapping - turns the shared cp_err
 * code into its problem (CP_ERR_SOLD_OUT -> 410, CP_ERR_UNAVAILABLE -> 503 with
 * Retry-After, ...). Stateless; thread-safe.
 */
#ifndef COUPON_PROBLEM_H
#define COUPON_PROBLEM_H

#include "http.h"

enum problem {
    PROBLEM_INVALID_REQUEST,        /* 400 */
    PROBLEM_UNAUTHORIZED,           /* 401 */
    PROBLEM_FORBIDDEN,              /* 403 */
    PROBLEM_NOT_FOUND,              /* 404: no such route */
    PROBLEM_COUPON_NOT_EXIST,       /* 404 */
    PROBLEM_ISSUE_NOT_FOUND,        /* 404: user has no issuance of that coupon */
    PROBLEM_METHOD_NOT_ALLOWED,     /* 405 + Allow */
    PROBLEM_DUPLICATED_ISSUE,       /* 409 */
    PROBLEM_QUANTITY_BELOW_ISSUED,  /* 409 */
    PROBLEM_CONFLICT,               /* 409: e.g. duplicate coupon code */
    PROBLEM_SOLD_OUT,               /* 410 */
    PROBLEM_BODY_TOO_LARGE,         /* 413 */
    PROBLEM_URI_TOO_LONG,           /* 414 */
    PROBLEM_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    PROBLEM_INVALID_DATE,           /* 422 */
    PROBLEM_CODE_NOT_FOUND,         /* 404: no issuance has this code */
    PROBLEM_ALREADY_REDEEMED,       /* 409: redeemed with another orderId */
    PROBLEM_ORDER_MISMATCH,         /* 409: cancel names another order than the redeeming one */
    PROBLEM_NOT_YET_PERSISTED,      /* 409 + Retry-After: issued, not yet in MariaDB */
    PROBLEM_EXPIRED,                /* 410: past the issuance's usableUntil */
    PROBLEM_INTERNAL,               /* 500: a bug; never expected */
    PROBLEM_SERVICE_UNAVAILABLE,    /* 503 + Retry-After */
    PROBLEM_NOT_REPLICATED,         /* 503 + Retry-After: the claim is on no Redis replica yet */
    PROBLEM_TOO_MANY_REQUESTS,      /* 429 + Retry-After (set by the caller): per-user limit */
    PROBLEM_INVALID_AMOUNT,         /* 400: an amount that is not one of its currency */
    PROBLEM_ORDER_BELOW_MINIMUM,    /* 422: a redemption's order below minOrderAmount */
    PROBLEM_HELD,                   /* 409: another order holds the issuance */
    PROBLEM_WEBHOOK_URL_REFUSED,    /* 422: a webhook URL outside the SSRF rules */
    PROBLEM_COUNT_
};

/* Fills resp with the problem document; detail is printf-style (escaped as JSON). */
void problem_set(struct http_response *resp, enum problem p, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* How every handler answers an error: the problem of a negative cp_err (through
 * problem_from_err, the one mapping) with a printf-style detail. */
void problem_fail(struct http_response *resp, int err, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* How every handler answers a failed MariaDB call (common/db's codes): a value the
 * server refused is 400, a bug 500, anything else 503 "database unavailable". */
void problem_db(struct http_response *resp, int err);
/* That 503's detail, for the paths that answer it later. */
extern const char problem_db_unavailable[];

/* Maps a negative cp_err to its problem (CP_ERR_UNAVAILABLE -> SERVICE_UNAVAILABLE ...). */
enum problem problem_from_err(int err);

int problem_status(enum problem p);
const char *problem_code(enum problem p);

/* Writes s as the inside of a JSON string (no quotes) into resp. */
int problem_json_escape(struct http_response *resp, const char *s, size_t len);

#endif
