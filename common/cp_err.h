/*
 * cp_err.h - the one error convention of the codebase.
 *
 * Every function that can fail returns 0 (or a non-negative value) on success
 * and a negative enum cp_err on failure. Where a caller needs the why as text,
 * it comes one of two ways: a client object that lives across calls keeps its
 * last error in the object (rcli_errstr, the way hiredis does); a constructor or
 * a parser writes it into a caller's buffer (`char *err, size_t errlen`:
 * conf_load, metrics_open, auth_new, jwks_parse, ...) or points at a static
 * reason (`const char **why`: jsonv, the body parsers). HTTP statuses are derived
 * from these codes in exactly one place (fcgi-app/problem.c); nothing else maps
 * errors to HTTP.
 */
#ifndef COUPON_CP_ERR_H
#define COUPON_CP_ERR_H

enum cp_err {
    CP_OK = 0,
    CP_ERR_NOMEM = -1,       /* allocation failed */
    CP_ERR_INVALID = -2,     /* input rejected: malformed, out of range, wrong type */
    CP_ERR_NOT_FOUND = -3,   /* the thing asked for does not exist */
    CP_ERR_CONFLICT = -4,    /* state forbids it (duplicate, below issued, ...) */
    CP_ERR_UNAVAILABLE = -5, /* a dependency (Redis, Kafka, MariaDB) is unreachable */
    CP_ERR_TIMEOUT = -6,     /* a dependency did not answer in time */
    CP_ERR_LIMIT = -7,       /* a named limit was exceeded (size, depth, count) */
    CP_ERR_AMBIGUOUS = -8,   /* outcome unknown: may or may not have happened */
    CP_ERR_SYSTEM = -9,      /* an OS call failed; errno-level detail in errstr */
    CP_ERR_INTERNAL = -10,   /* a bug or broken invariant */
    /* Outcomes of the coupon domain, each its own HTTP problem (fcgi-app/problem.c). */
    CP_ERR_NO_COUPON = -11,    /* no such coupon */
    CP_ERR_NO_ISSUANCE = -12,  /* the user holds no issuance of that coupon */
    CP_ERR_DUPLICATE = -13,    /* the user already holds the coupon */
    CP_ERR_SOLD_OUT = -14,     /* no stock left */
    CP_ERR_NOT_STARTED = -15,  /* before the issuance window */
    CP_ERR_ENDED = -16,        /* after the issuance window */
    CP_ERR_BELOW_ISSUED = -17, /* a total quantity below what is already issued */
    /* Outcomes of the HTTP layer. */
    CP_ERR_MEDIA_TYPE = -18,   /* the body is not application/json */
    CP_ERR_UNAUTHORIZED = -19, /* no credentials */
    CP_ERR_FORBIDDEN = -20,    /* wrong credentials, or not allowed at all */
    CP_ERR_METHOD = -21,       /* the method is not one the resource accepts */
    CP_ERR_URI_TOO_LONG = -22, /* request URI or query string over its limit */
    /* Outcomes of redemption. */
    CP_ERR_NO_CODE = -23,          /* no issuance has this code */
    CP_ERR_ALREADY_REDEEMED = -24, /* redeemed with another orderId */
    CP_ERR_ORDER_MISMATCH = -25,   /* a cancel names another order than the redeeming one */
    CP_ERR_NOT_PERSISTED = -26,    /* issued, not yet in MariaDB: retry shortly */
    CP_ERR_EXPIRED = -27,          /* past the issuance's usableUntil */
    /* Outcome of the issue path with redis_wait_replicas. */
    CP_ERR_NOT_REPLICATED = -28, /* claimed, but not yet on enough Redis replicas */
    /* Outcome of the per-user limits (issue 24). */
    CP_ERR_RATE_LIMITED = -29, /* this user made too many attempts: retry later */
    /* Outcomes of money (issue 26). */
    CP_ERR_BAD_AMOUNT = -30,    /* an amount that is not one of its currency (400) */
    CP_ERR_BELOW_MINIMUM = -31, /* an order below the campaign's minOrderAmount */
    /* Outcome of checkout holds (issue 26). */
    CP_ERR_HELD = -32, /* another order holds the issuance while its payment runs */
    /* Outcome of webhooks (issue 27). */
    CP_ERR_URL_REFUSED = -33, /* a webhook URL the SSRF rules refuse (common/whurl.h) */
};

/* Short stable name of an error code ("invalid", "unavailable", ...). */
const char *cp_strerror(int err);

#endif
