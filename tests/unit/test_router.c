/*
 * test_router.c - request parsing and validation as a table (issue 3's "each
 * bad input -> its status and code"): struct http_request values built by hand
 * go through router_dispatch() and each must come back with its status,
 * problem code, application/problem+json and, for 405, the exact Allow header.
 *
 * Only inputs rejected before any dependency is touched are here: the thread's
 * app has no Redis, Kafka, MariaDB, cache or metrics (a row that got past
 * validation would crash on the NULL handles, which is a test failure too).
 * Requests that need a live coupon are the integration suites' job.
 *
 * Also covered: the parsing helpers of fcgi-app/http.c (decimal_parse_id,
 * http_is_json, http_query_param) and fcgi-app/problem.c's document shape.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "app.h"
#include "auth.h"
#include "cp_err.h"
#include "decimal.h"
#include "http.h"
#include "metrics.h"
#include "problem.h"
#include "router.h"

struct row {
    enum http_method method;
    const char *method_text;
    const char *path;
    const char *content_type; /* NULL = header absent */
    const char *body;         /* NULL = no body */
    size_t body_len;          /* 0 = strlen(body) */
    int status;
    const char *code;
    const char *allow;       /* exact Allow header for 405; NULL = must be absent */
    const char *detail_part; /* text the detail must contain; NULL = not checked */
};

#define ROW(m, path, ct, body, status, code, allow, detail)          \
    {                                                                \
        HTTP_##m, #m, path, ct, body, 0, status, code, allow, detail \
    }

/* 404: no endpoint has this shape (whatever the method). */
#define NF(m, path)           ROW(m, path, NULL, NULL, 404, "NOT_FOUND", NULL, "no endpoint")
/* 405 with the route's Allow list. */
#define NA(m, path, allow)    ROW(m, path, NULL, NULL, 405, "METHOD_NOT_ALLOWED", allow, allow)
/* 400 from the path id. */
#define BADID(m, path, which) ROW(m, path, NULL, NULL, 400, "INVALID_REQUEST", NULL, which)
/* 415 on an issue endpoint (a body that would be valid, to show the type decides). */
#define UMT(path, ct, body) \
    ROW(POST, path, ct, body, 415, "UNSUPPORTED_MEDIA_TYPE", NULL, "application/json")
/* 400 from the body of POST /api/coupons/1/issue and of the reference path. */
#define BADB(body, detail)                                                                    \
    ROW(POST, "/api/coupons/1/issue", "application/json", body, 400, "INVALID_REQUEST", NULL, \
        detail)
#define BADR(body, detail) \
    ROW(POST, "/api/coupons/issue", "application/json", body, 400, "INVALID_REQUEST", NULL, detail)

#define ISSUE_ALLOW  "POST"
#define REDEEM_ALLOW "POST, DELETE"
#define ORDERID      "orderId must be"
#define CODE         "code must be"
#define O65          "ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo"
/* 400 from the body of POST /api/coupons/1/issues/2/redemption and of /api/redemptions. */
#define BADO(body, detail)                                                         \
    ROW(POST, "/api/coupons/1/issues/2/redemption", "application/json", body, 400, \
        "INVALID_REQUEST", NULL, detail)
#define BADC(body, detail) \
    ROW(POST, "/api/redemptions", "application/json", body, 400, "INVALID_REQUEST", NULL, detail)
#define COUPON_ALLOW "GET, HEAD, PATCH"
#define GET_ALLOW    "GET, HEAD"
#define PATH_ID      "the id in the path"
#define PATH_UID     "the user id in the path"
#define USERID       "userId must be"
#define COUPONID     "couponId must be"

static const struct row rows[] = {
    /* ---- 404: unknown paths ---- */
    NF(GET, ""),
    NF(GET, "/"),
    NF(GET, "api/coupons/issue"),
    NF(GET, "/api"),
    NF(GET, "/api/"),
    NF(GET, "/api/coupons/"),
    NF(POST, "/api/coupons/issue/"),
    NF(POST, "/api/coupons/1/issue/"),
    NF(GET, "//api/coupons"),
    NF(GET, "/api//coupons"),
    NF(GET, "/API/coupons/1"),
    NF(GET, "/api/Coupons/1"),
    NF(GET, "/api/coupon/1"),
    NF(POST, "/api/coupons/1/Issue"),
    NF(POST, "/api/coupons/1/issue/extra"),
    NF(GET, "/api/coupons/1/issues"),
    NF(GET, "/api/coupons/1/issues/2/x"),
    NF(GET, "/api/coupons/1/stats"),
    NF(GET, "/api/users/1"),
    NF(GET, "/api/users/1/coupons/x"),
    NF(GET, "/api/users/coupons"),
    NF(GET, "/api/admin/coupons/1"),
    NF(GET, "/api/admin/coupons/1/stat"),
    NF(GET, "/api/admin/coupons/stats"),
    NF(GET, "/api/admin/coupons/"),
    NF(GET, "/api/admin/coupons/1/serie"),
    NF(GET, "/api/admin/coupons/1/series/1"),
    NF(GET, "/api/health/x"),
    NF(GET, "/health"),
    NF(GET, "/metrics/"),
    NF(GET, "/metricsx"),
    NF(GET, "/api/metrics"),
    NF(GET, "/favicon.ico"),
    NF(GET, "/a/b/c/d/e/f/g/h/i"),
    NF(POST, "/api/coupons/issue/1"),
    NF(OTHER, "/nope"),
    NF(DELETE, "/api/users/1/coupon"),

    /* ---- 405 + Allow: every other method on every route ---- */
    NA(GET, "/api/coupons/issue", ISSUE_ALLOW),
    NA(HEAD, "/api/coupons/issue", ISSUE_ALLOW),
    NA(PUT, "/api/coupons/issue", ISSUE_ALLOW),
    NA(PATCH, "/api/coupons/issue", ISSUE_ALLOW),
    NA(DELETE, "/api/coupons/issue", ISSUE_ALLOW),
    NA(OPTIONS, "/api/coupons/issue", ISSUE_ALLOW),
    NA(OTHER, "/api/coupons/issue", ISSUE_ALLOW),
    NA(GET, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(HEAD, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(PUT, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(PATCH, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(DELETE, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(OPTIONS, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(OTHER, "/api/coupons/1/issue", ISSUE_ALLOW),
    NA(GET, "/api/coupons", ISSUE_ALLOW),
    NA(HEAD, "/api/coupons", ISSUE_ALLOW),
    NA(PUT, "/api/coupons", ISSUE_ALLOW),
    NA(PATCH, "/api/coupons", ISSUE_ALLOW),
    NA(DELETE, "/api/coupons", ISSUE_ALLOW),
    NA(OPTIONS, "/api/coupons", ISSUE_ALLOW),
    NA(OTHER, "/api/coupons", ISSUE_ALLOW),
    NA(POST, "/api/coupons/1", COUPON_ALLOW),
    NA(PUT, "/api/coupons/1", COUPON_ALLOW),
    NA(DELETE, "/api/coupons/1", COUPON_ALLOW),
    NA(OPTIONS, "/api/coupons/1", COUPON_ALLOW),
    NA(OTHER, "/api/coupons/1", COUPON_ALLOW),
    NA(POST, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(PUT, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(PATCH, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(DELETE, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(OPTIONS, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(OTHER, "/api/coupons/1/issues/2", GET_ALLOW),
    NA(POST, "/api/users/1/coupons", GET_ALLOW),
    NA(PUT, "/api/users/1/coupons", GET_ALLOW),
    NA(PATCH, "/api/users/1/coupons", GET_ALLOW),
    NA(DELETE, "/api/users/1/coupons", GET_ALLOW),
    NA(OPTIONS, "/api/users/1/coupons", GET_ALLOW),
    NA(OTHER, "/api/users/1/coupons", GET_ALLOW),
    NA(POST, "/api/admin/coupons", GET_ALLOW),
    NA(PATCH, "/api/admin/coupons", GET_ALLOW),
    NA(POST, "/api/admin/coupons/1/series", GET_ALLOW),
    NA(DELETE, "/api/admin/coupons/1/series", GET_ALLOW),
    NA(POST, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(PUT, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(PATCH, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(DELETE, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(OPTIONS, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(OTHER, "/api/admin/coupons/1/stats", GET_ALLOW),
    NA(POST, "/api/health", GET_ALLOW),
    NA(PUT, "/api/health", GET_ALLOW),
    NA(PATCH, "/api/health", GET_ALLOW),
    NA(DELETE, "/api/health", GET_ALLOW),
    NA(OPTIONS, "/api/health", GET_ALLOW),
    NA(OTHER, "/api/health", GET_ALLOW),
    NA(POST, "/metrics", GET_ALLOW),
    NA(PUT, "/metrics", GET_ALLOW),
    NA(PATCH, "/metrics", GET_ALLOW),
    NA(DELETE, "/metrics", GET_ALLOW),
    NA(OPTIONS, "/metrics", GET_ALLOW),
    NA(OTHER, "/metrics", GET_ALLOW),
    /* The method is checked before the id: a wrong method wins over a bad id. */
    NA(GET, "/api/coupons/0/issue", ISSUE_ALLOW),
    NA(DELETE, "/api/coupons/abc", COUPON_ALLOW),
    NA(POST, "/api/users/-1/coupons", GET_ALLOW),

    /* ---- 400: malformed ids in the path ---- */
    BADID(POST, "/api/coupons/0/issue", PATH_ID),
    BADID(POST, "/api/coupons/-1/issue", PATH_ID),
    BADID(POST, "/api/coupons/01/issue", PATH_ID),
    BADID(POST, "/api/coupons/9223372036854775808/issue", PATH_ID),
    BADID(POST, "/api/coupons/abc/issue", PATH_ID),
    BADID(POST, "/api/coupons/1.5/issue", PATH_ID),
    BADID(POST, "/api/coupons/99999999999999999999/issue", PATH_ID),
    BADID(POST, "/api/coupons/18446744073709551616/issue", PATH_ID),
    BADID(POST, "/api/coupons/+1/issue", PATH_ID),
    BADID(POST, "/api/coupons/%31/issue", PATH_ID),
    BADID(POST, "/api/coupons/1e3/issue", PATH_ID),
    BADID(POST, "/api/coupons/0x1/issue", PATH_ID),
    BADID(POST, "/api/coupons/%20/issue", PATH_ID),
    BADID(POST, "/api/coupons/1%00/issue", PATH_ID),
    BADID(POST, "/api/coupons/\xd9\xa1/issue", PATH_ID),     /* ARABIC-INDIC DIGIT ONE */
    BADID(POST, "/api/coupons/\xef\xbc\x91/issue", PATH_ID), /* FULLWIDTH DIGIT ONE */
    BADID(GET, "/api/coupons/0", PATH_ID),
    BADID(GET, "/api/coupons/-1", PATH_ID),
    BADID(GET, "/api/coupons/01", PATH_ID),
    BADID(GET, "/api/coupons/9223372036854775808", PATH_ID),
    BADID(GET, "/api/coupons/abc", PATH_ID),
    BADID(GET, "/api/coupons/1.5", PATH_ID),
    BADID(HEAD, "/api/coupons/0", PATH_ID),
    BADID(PATCH, "/api/coupons/0", PATH_ID),
    BADID(PATCH, "/api/coupons/-1", PATH_ID),
    BADID(PATCH, "/api/coupons/01", PATH_ID),
    BADID(PATCH, "/api/coupons/9223372036854775808", PATH_ID),
    BADID(PATCH, "/api/coupons/abc", PATH_ID),
    BADID(PATCH, "/api/coupons/1.5", PATH_ID),
    BADID(GET, "/api/coupons/0/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/-1/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/01/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/9223372036854775808/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/abc/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/1.5/issues/1", PATH_ID),
    BADID(GET, "/api/coupons/1/issues/0", PATH_UID),
    BADID(GET, "/api/coupons/1/issues/-1", PATH_UID),
    BADID(GET, "/api/coupons/1/issues/01", PATH_UID),
    BADID(GET, "/api/coupons/1/issues/9223372036854775808", PATH_UID),
    BADID(GET, "/api/coupons/1/issues/abc", PATH_UID),
    BADID(GET, "/api/coupons/1/issues/1.5", PATH_UID),
    BADID(HEAD, "/api/coupons/1/issues/0", PATH_UID),
    BADID(GET, "/api/users/0/coupons", PATH_UID),
    BADID(GET, "/api/users/-1/coupons", PATH_UID),
    BADID(GET, "/api/users/01/coupons", PATH_UID),
    BADID(GET, "/api/users/9223372036854775808/coupons", PATH_UID),
    BADID(GET, "/api/users/abc/coupons", PATH_UID),
    BADID(GET, "/api/users/1.5/coupons", PATH_UID),
    /* 'me' is the caller: with auth_mode = none there is none. */
    BADID(GET, "/api/users/me/coupons", "auth_mode = none identifies nobody"),
    BADID(GET, "/api/coupons/1/issues/me", "auth_mode = none identifies nobody"),
    BADID(GET, "/api/admin/coupons/0/series", PATH_ID),
    BADID(GET, "/api/admin/coupons/x/series", PATH_ID),
    BADID(GET, "/api/admin/coupons/0/stats", PATH_ID),
    BADID(GET, "/api/admin/coupons/-1/stats", PATH_ID),
    BADID(GET, "/api/admin/coupons/01/stats", PATH_ID),
    BADID(GET, "/api/admin/coupons/9223372036854775808/stats", PATH_ID),
    BADID(GET, "/api/admin/coupons/abc/stats", PATH_ID),
    BADID(GET, "/api/admin/coupons/1.5/stats", PATH_ID),

    /* ---- 415: the issue endpoints take application/json only ---- */
    UMT("/api/coupons/1/issue", NULL, "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "text/plain", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "text/json", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/x-www-form-urlencoded", "userId=1"),
    UMT("/api/coupons/1/issue", "multipart/form-data; boundary=x", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/jsonx", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/json-patch+json", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/problem+json", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/jso", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "json", "{\"userId\":1}"),
    UMT("/api/coupons/1/issue", "application/xml", "<userId>1</userId>"),
    UMT("/api/coupons/1/issue", NULL, NULL),
    UMT("/api/coupons/issue", NULL, "{\"couponId\":1,\"userId\":1}"),
    UMT("/api/coupons/issue", "text/plain", "{\"couponId\":1,\"userId\":1}"),
    UMT("/api/coupons/issue", "application/json5", "{\"couponId\":1,\"userId\":1}"),
    UMT("/api/coupons/issue", "application/x-www-form-urlencoded", "couponId=1&userId=1"),

    /* ---- 400: bad bodies, POST /api/coupons/{id}/issue {"userId"} ---- */
    BADB(NULL, "empty body"),
    BADB("", "empty body"),
    BADB("{", "malformed JSON"),
    BADB("}", "malformed JSON"),
    BADB("{\"userId\":}", "malformed JSON"),
    BADB("{\"userId\":1,}", "malformed JSON"),
    BADB("{'userId':1}", "malformed JSON"),
    BADB("{userId:1}", "malformed JSON"),
    BADB("{\"userId\":NaN}", "malformed JSON"),
    BADB("{\"userId\":01}", "malformed JSON"),
    BADB("{\"userId\":+1}", "malformed JSON"),
    BADB("userId=1", "malformed JSON"),
    BADB("{}", USERID),
    BADB("{\"user_id\":1}", "unknown member"),
    BADB("{\"userid\":1}", "unknown member"),
    BADB("{\"userId\":0}", USERID),
    BADB("{\"userId\":-1}", USERID),
    BADB("{\"userId\":-0}", USERID),
    BADB("{\"userId\":1.5}", USERID),
    BADB("{\"userId\":1.0}", USERID),
    BADB("{\"userId\":1e3}", USERID),
    BADB("{\"userId\":\"7\"}", USERID),
    BADB("{\"userId\":null}", USERID),
    BADB("{\"userId\":true}", USERID),
    BADB("{\"userId\":[1]}", USERID),
    BADB("{\"userId\":{}}", USERID),
    BADB("{\"userId\":9223372036854775808}", USERID),
    BADB("{\"userId\":-9223372036854775808}", USERID),
    BADB("{\"userId\":-9223372036854775809}", USERID),
    BADB("{\"userId\":18446744073709551616}", USERID),
    BADB("{\"userId\":1,\"x\":1}", "unknown member"),
    BADB("{\"userId\":1,\"couponId\":1}", "unknown member"),
    BADB("{\"userId\":1,\"userId\":2}", "duplicate member name"),
    BADB("{\"userId\":1,\"\\u0075serId\":2}", "duplicate member name"),
    BADB("{\"userId\":1}x", NULL),
    BADB("{\"userId\":1}{}", NULL),
    BADB("{\"userId\":1} 1", NULL),
    BADB("[{\"userId\":1}]", "body must be a JSON object"),
    BADB("[]", "body must be a JSON object"),
    BADB("\"userId\"", "body must be a JSON object"),
    BADB("1 ", "body must be a JSON object"),
    BADB("null", NULL),
    BADB("{\"userId\":{\"a\":{\"b\":{\"c\":{\"d\":1}}}}}", "nesting too deep"),
    BADB("{\"userId\":[[[[1]]]]}", "nesting too deep"),
    BADB("{\"userId\":\"\xc0\xaf\"}", "not valid UTF-8"),
    BADB("{\"userId\":\"\xed\xa0\x80\"}", "not valid UTF-8"),
    BADB("{\"userId\":1}\xe2\x82", "not valid UTF-8"),
    BADB("{\"userId\":\"a\tb\"}", "control character"),
    {HTTP_POST, "POST", "/api/coupons/1/issue", "application/json", "{\"userId\":1\0}", 13, 400,
     "INVALID_REQUEST", NULL, "NUL byte"},
    ROW(POST, "/api/coupons/9223372036854775807/issue", "application/json; charset=utf-8",
        "{\"userId\":0}", 400, "INVALID_REQUEST", NULL, USERID),
    ROW(POST, "/api/coupons/1/issue", "APPLICATION/JSON", "{}", 400, "INVALID_REQUEST", NULL,
        USERID),
    ROW(POST, "/api/coupons/1/issue", "application/json;charset=UTF-8", "{}", 400,
        "INVALID_REQUEST", NULL, USERID),
    ROW(POST, "/api/coupons/1/issue", " application/json", "{}", 400, "INVALID_REQUEST", NULL,
        USERID),

    /* ---- 400: bad bodies, POST /api/coupons/issue {"couponId","userId"} ---- */
    BADR(NULL, "empty body"),
    BADR("{", "malformed JSON"),
    BADR("{}", COUPONID),
    BADR("{\"userId\":1}", COUPONID),
    BADR("{\"couponId\":1}", USERID),
    BADR("{\"couponId\":0,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":-1,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":1.5,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":\"1\",\"userId\":1}", COUPONID),
    BADR("{\"couponId\":null,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":true,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":9223372036854775808,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":1e3,\"userId\":1}", COUPONID),
    BADR("{\"couponId\":1,\"userId\":0}", USERID),
    BADR("{\"couponId\":1,\"userId\":\"7\"}", USERID),
    BADR("{\"couponId\":1,\"userId\":9223372036854775808}", USERID),
    BADR("{\"couponId\":1,\"userId\":1,\"x\":0}", "unknown member"),
    BADR("{\"couponId\":1,\"userId\":1,\"couponId\":2}", "duplicate member name"),
    BADR("{\"couponId\":1,\"userId\":1}x", NULL),
    BADR("[{\"couponId\":1,\"userId\":1}]", "body must be a JSON object"),
    BADR("{\"couponId\":[[[[1]]]],\"userId\":1}", "nesting too deep"),

    /* ---- redemption routes (issue 13): shape, method, ids, type and body ---- */
    NF(POST, "/api/coupons/1/issues/2/redemption/x"),
    NF(POST, "/api/coupons/1/issues/2/Redemption"),
    NF(POST, "/api/coupons/1/issues/2/redemptions"),
    NF(POST, "/api/coupons/1/issue/2/redemption"),
    NF(POST, "/api/redemption"),
    NF(POST, "/api/redemptions/1"),
    NA(GET, "/api/coupons/1/issues/2/redemption", REDEEM_ALLOW),
    NA(PUT, "/api/coupons/1/issues/2/redemption", REDEEM_ALLOW),
    NA(PATCH, "/api/coupons/1/issues/2/redemption", REDEEM_ALLOW),
    NA(HEAD, "/api/coupons/1/issues/2/redemption", REDEEM_ALLOW),
    NA(GET, "/api/redemptions", ISSUE_ALLOW),
    NA(DELETE, "/api/redemptions", ISSUE_ALLOW),
    BADID(POST, "/api/coupons/0/issues/2/redemption", PATH_ID),
    BADID(POST, "/api/coupons/1/issues/0/redemption", PATH_UID),
    BADID(DELETE, "/api/coupons/1/issues/01/redemption", PATH_UID),
    UMT("/api/coupons/1/issues/2/redemption", NULL, "{\"orderId\":\"o-1\"}"),
    UMT("/api/coupons/1/issues/2/redemption", "text/plain", "{\"orderId\":\"o-1\"}"),
    UMT("/api/redemptions", NULL, "{\"code\":\"0123456789AB\",\"orderId\":\"o-1\"}"),
    ROW(DELETE, "/api/coupons/1/issues/2/redemption", "text/plain", "{\"orderId\":\"o\"}", 415,
        "UNSUPPORTED_MEDIA_TYPE", NULL, "application/json"),
    BADO(NULL, "empty body"),
    BADO("{", "malformed JSON"),
    BADO("{}", ORDERID),
    BADO("{\"orderId\":\"\"}", ORDERID),
    BADO("{\"orderId\":1}", ORDERID),
    BADO("{\"orderId\":null}", ORDERID),
    BADO("{\"orderId\":\"a b\"}", ORDERID),
    BADO("{\"orderId\":\"a/b\"}", ORDERID),
    BADO("{\"orderId\":\"\u00e9\"}", ORDERID),
    BADO("{\"orderId\":\"o\\\"1\"}", ORDERID),
    BADO("{\"orderId\":\"" O65 "\"}", ORDERID),
    BADO("{\"orderId\":\"o-1\",\"x\":1}", "unknown member"),
    BADO("{\"orderId\":\"o-1\",\"orderId\":\"o-2\"}", "duplicate member name"),
    BADO("[\"o-1\"]", "body must be a JSON object"),
    ROW(DELETE, "/api/coupons/1/issues/2/redemption", "application/json", "{}", 400,
        "INVALID_REQUEST", NULL, ORDERID),
    ROW(DELETE, "/api/coupons/1/issues/2/redemption", "application/json", NULL, 400,
        "INVALID_REQUEST", NULL, "empty body"),
    BADC("{\"orderId\":\"o-1\"}", CODE),
    BADC("{\"code\":\"0123456789AB\"}", ORDERID),
    BADC("{\"code\":\"0123456789A\",\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":\"0123456789ABC\",\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":\"0123456789AU\",\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":\"0123 456789AB\",\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":\"------------------------------------\",\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":123456789012,\"orderId\":\"o\"}", CODE),
    BADC("{\"code\":\"0123456789AB\",\"orderId\":\"o\",\"userId\":1}", "unknown member"),
};

#define NROWS (sizeof rows / sizeof rows[0])

static struct app test_app;           /* no dependencies at all */
static struct app_thread test_thread; /* large (buffers): static */
static char body_copy[CP_MAX_BODY_BYTES + 1];
static char resp_buf[HTTP_RESPONSE_BODY_MAX];

static void build_request(const struct row *r, struct http_request *req)
{
    memset(req, 0, sizeof *req);
    req->method = r->method;
    req->method_text = r->method == HTTP_OTHER ? "BREW" : r->method_text;
    req->path_len = strlen(r->path);
    memcpy(req->path, r->path, req->path_len + 1);
    req->query = "";
    req->content_type = r->content_type;
    req->request_id = "test";
    size_t len = r->body == NULL ? 0 : r->body_len ? r->body_len : strlen(r->body);
    if (len > 0)
        memcpy(body_copy, r->body, len);
    body_copy[len] = '\0';
    req->body = body_copy;
    req->body_len = len;
    req->body_present = len > 0;
}

static const char *header_value(const struct http_response *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* Checks one row; returns a description of the first mismatch or NULL. */
static const char *check_row(const struct row *r, const struct http_response *resp)
{
    static char why[256];
    char want[128];
    if (resp->status != r->status) {
        snprintf(why, sizeof why, "status %d, want %d", resp->status, r->status);
        return why;
    }
    if (resp->content_type == NULL || strcmp(resp->content_type, "application/problem+json") != 0)
        return "content type is not application/problem+json";
    if (resp->body_len != strlen(resp->body))
        return "body_len does not match the body";
    snprintf(want, sizeof want, "\"code\":\"%s\"", r->code);
    if (strstr(resp->body, want) == NULL)
        return "problem code differs";
    snprintf(want, sizeof want, "\"status\":%d,", r->status);
    if (strstr(resp->body, want) == NULL)
        return "problem status member differs";
    if (strncmp(resp->body, "{\"type\":\"", 9) != 0 || strstr(resp->body, "\"title\":\"") == NULL ||
        strstr(resp->body, "\"detail\":\"") == NULL || resp->body[resp->body_len - 1] != '}')
        return "problem document lacks type/title/detail";
    const char *allow = header_value(resp, "Allow");
    if (r->allow == NULL && allow != NULL)
        return "unexpected Allow header";
    if (r->allow != NULL && (allow == NULL || strcmp(allow, r->allow) != 0)) {
        snprintf(why, sizeof why, "Allow '%s', want '%s'", allow ? allow : "(none)", r->allow);
        return why;
    }
    if (header_value(resp, "Retry-After") != NULL)
        return "a 4xx must not carry Retry-After";
    if (r->detail_part != NULL && strstr(resp->body, r->detail_part) == NULL)
        return "detail does not name the problem";
    return NULL;
}

static void router_rejects_each_bad_request_with_its_problem(void)
{
    size_t failures = 0;
    for (size_t i = 0; i < NROWS; i++) {
        struct http_request req;
        struct http_response resp;
        build_request(&rows[i], &req);
        http_response_init(&resp, resp_buf, sizeof resp_buf);
        (void)router_dispatch(&test_thread, &req, &resp);
        const char *why = check_row(&rows[i], &resp);
        if (why != NULL) {
            failures++;
            fprintf(stderr, "\n  row %zu: %s %s [%s] body=%.60s: %s\n    got: %s\n", i,
                    req.method_text, rows[i].path,
                    rows[i].content_type ? rows[i].content_type : "no content type",
                    rows[i].body ? rows[i].body : "(none)", why, resp.body);
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    printf("\n  %zu request rows checked\n", NROWS);
}

static void router_reports_the_route_for_metrics(void)
{
    static const struct {
        enum http_method m;
        const char *path;
        enum metrics_route route;
    } mrows[] = {
        {HTTP_GET, "/nope", ROUTE_UNKNOWN},
        {HTTP_GET, "/api/coupons/issue", ROUTE_ISSUE_REF},
        {HTTP_GET, "/api/coupons/1/issue", ROUTE_ISSUE},
        {HTTP_POST, "/api/coupons/0/issue", ROUTE_ISSUE},
        {HTTP_GET, "/api/coupons", ROUTE_COUPON_CREATE},
        {HTTP_GET, "/api/coupons/0", ROUTE_COUPON_GET},
        {HTTP_PATCH, "/api/coupons/0", ROUTE_COUPON_PATCH},
        {HTTP_GET, "/api/coupons/1/issues/0", ROUTE_ISSUE_STATUS},
        {HTTP_GET, "/api/users/0/coupons", ROUTE_USER_COUPONS},
        {HTTP_GET, "/api/admin/coupons/0/stats", ROUTE_ADMIN_STATS},
        {HTTP_POST, "/api/admin/coupons", ROUTE_ADMIN_LIST},
        {HTTP_GET, "/api/admin/coupons/0/series", ROUTE_ADMIN_SERIES},
        {HTTP_POST, "/api/health", ROUTE_HEALTH},
        {HTTP_POST, "/metrics", ROUTE_METRICS},
    };
    for (size_t i = 0; i < sizeof mrows / sizeof mrows[0]; i++) {
        struct row r = {mrows[i].m, "M", mrows[i].path, NULL, NULL, 0, 0, NULL, NULL, NULL};
        struct http_request req;
        struct http_response resp;
        build_request(&r, &req);
        http_response_init(&resp, resp_buf, sizeof resp_buf);
        enum metrics_route got = router_dispatch(&test_thread, &req, &resp);
        if (got != mrows[i].route)
            fprintf(stderr, "\n  %s: route %d want %d\n", mrows[i].path, got, mrows[i].route);
        CU_ASSERT_EQUAL(got, mrows[i].route);
        CU_ASSERT(resp.status >= 400 && resp.status < 500);
    }
}

static void problem_set_never_overflows_a_small_response_buffer(void)
{
    /* A response buffer too small for the problem document: no overflow, a 4xx status. */
    char small[32];
    struct http_request req;
    struct http_response resp;
    struct row r = ROW(GET, "/nope", NULL, NULL, 404, "NOT_FOUND", NULL, NULL);
    build_request(&r, &req);
    memset(small, 'x', sizeof small);
    http_response_init(&resp, small, sizeof small);
    (void)router_dispatch(&test_thread, &req, &resp);
    CU_ASSERT_EQUAL(resp.status, 404);
    CU_ASSERT(resp.body_len < sizeof small);
    CU_ASSERT_EQUAL(strlen(small), resp.body_len);
}

static void decimal_parse_id_accepts_exactly_1_to_int64_max(void)
{
    static const struct {
        const char *s;
        int rc;
        int64_t v;
    } idrows[] = {
        {"1", CP_OK, 1},
        {"42", CP_OK, 42},
        {"9223372036854775807", CP_OK, INT64_MAX},
        {"1000000000000000000", CP_OK, 1000000000000000000},
        {"", CP_ERR_INVALID, 0},
        {"0", CP_ERR_INVALID, 0},
        {"00", CP_ERR_INVALID, 0},
        {"01", CP_ERR_INVALID, 0},
        {"-1", CP_ERR_INVALID, 0},
        {"+1", CP_ERR_INVALID, 0},
        {" 1", CP_ERR_INVALID, 0},
        {"1 ", CP_ERR_INVALID, 0},
        {"1.5", CP_ERR_INVALID, 0},
        {"1e3", CP_ERR_INVALID, 0},
        {"abc", CP_ERR_INVALID, 0},
        {"9223372036854775808", CP_ERR_INVALID, 0},
        {"9999999999999999999", CP_ERR_INVALID, 0},
        {"10000000000000000000", CP_ERR_INVALID, 0},
        {"18446744073709551617", CP_ERR_INVALID, 0},
    };
    for (size_t i = 0; i < sizeof idrows / sizeof idrows[0]; i++) {
        int64_t v = -5;
        int rc = decimal_parse_id(idrows[i].s, strlen(idrows[i].s), &v);
        if (rc != idrows[i].rc)
            fprintf(stderr, "\n  '%s': rc %d\n", idrows[i].s, rc);
        CU_ASSERT_EQUAL(rc, idrows[i].rc);
        CU_ASSERT_EQUAL(v, idrows[i].rc == CP_OK ? idrows[i].v : -5);
    }
    /* Exactly len bytes: "12" out of "123", and a NUL inside is not a digit. */
    int64_t v = 0;
    CU_ASSERT_EQUAL(decimal_parse_id("123", 2, &v), CP_OK);
    CU_ASSERT_EQUAL(v, 12);
    CU_ASSERT_EQUAL(decimal_parse_id("1\0002", 3, &v), CP_ERR_INVALID);
}

static void http_is_json_accepts_only_application_json(void)
{
    static const struct {
        const char *ct;
        int json;
    } ctrows[] = {
        {"application/json", 1},
        {"application/json; charset=utf-8", 1},
        {"application/json;charset=UTF-8", 1},
        {"Application/JSON", 1},
        {"  application/json", 1},
        {"application/json ", 1},
        {NULL, 0},
        {"", 0},
        {"application/jso", 0},
        {"application/jsonx", 0},
        {"application/json-seq", 0},
        {"application/json+x", 0},
        {"application/problem+json", 0},
        {"text/json", 0},
        {"text/plain; application/json", 0},
        {"\tapplication/json", 0},
    };
    for (size_t i = 0; i < sizeof ctrows / sizeof ctrows[0]; i++) {
        int got = http_is_json(ctrows[i].ct);
        if (got != ctrows[i].json)
            fprintf(stderr, "\n  '%s': %d\n", ctrows[i].ct ? ctrows[i].ct : "(null)", got);
        CU_ASSERT_EQUAL(got, ctrows[i].json);
    }
}

static void http_query_param_finds_one_value_and_rejects_repeats(void)
{
    const char *v = NULL;
    size_t n = 99;
    CU_ASSERT_EQUAL(http_query_param("limit=20&cursor=5", "limit", &v, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(strncmp(v, "20", n), 0);
    CU_ASSERT_EQUAL(http_query_param("limit=20&cursor=5", "cursor", &v, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(*v, '5');
    CU_ASSERT_EQUAL(http_query_param("limit=", "limit", &v, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(http_query_param("limit", "limit", &v, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(http_query_param("", "limit", &v, &n), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(http_query_param("limits=1&xlimit=2", "limit", &v, &n), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(http_query_param("lim=1", "limit", &v, &n), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(http_query_param("limit=1&limit=2", "limit", &v, &n), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(http_query_param("limit&limit=2", "limit", &v, &n), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(http_query_param("&&limit=3&&", "limit", &v, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(*v, '3');
}

static void problem_document_escapes_its_detail(void)
{
    struct http_response resp;
    http_response_init(&resp, resp_buf, sizeof resp_buf);
    problem_set(&resp, PROBLEM_INVALID_REQUEST, "quote \" backslash \\ newline \n tab \t end");
    CU_ASSERT_EQUAL(resp.status, 400);
    CU_ASSERT_STRING_EQUAL(resp.content_type, "application/problem+json");
    CU_ASSERT_PTR_NOT_NULL(strstr(
        resp.body, "\"detail\":\"quote \\\" backslash \\\\ newline \\u000a tab \\u0009 end\"}"));
    CU_ASSERT_EQUAL(resp.nheaders, 0);

    http_response_init(&resp, resp_buf, sizeof resp_buf);
    problem_set(&resp, PROBLEM_SERVICE_UNAVAILABLE, "x");
    CU_ASSERT_EQUAL(resp.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(resp.body, "\"code\":\"SERVICE_UNAVAILABLE\""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(header_value(&resp, "Retry-After"));
    CU_ASSERT_STRING_EQUAL(header_value(&resp, "Retry-After"), "1");
}

static void problem_codes_and_statuses_are_stable(void)
{
    static const struct {
        enum problem p;
        int status;
        const char *code;
    } prows[] = {
        {PROBLEM_INVALID_REQUEST, 400, "INVALID_REQUEST"},
        {PROBLEM_COUPON_NOT_EXIST, 404, "COUPON_NOT_EXIST"},
        {PROBLEM_METHOD_NOT_ALLOWED, 405, "METHOD_NOT_ALLOWED"},
        {PROBLEM_DUPLICATED_ISSUE, 409, "DUPLICATED_COUPON_ISSUE"},
        {PROBLEM_SOLD_OUT, 410, "INVALID_COUPON_ISSUE_QUANTITY"},
        {PROBLEM_BODY_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE"},
        {PROBLEM_UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE"},
        {PROBLEM_INVALID_DATE, 422, "INVALID_COUPON_ISSUE_DATE"},
        {PROBLEM_SERVICE_UNAVAILABLE, 503, "SERVICE_UNAVAILABLE"},
    };
    for (size_t i = 0; i < sizeof prows / sizeof prows[0]; i++) {
        CU_ASSERT_EQUAL(problem_status(prows[i].p), prows[i].status);
        CU_ASSERT_STRING_EQUAL(problem_code(prows[i].p), prows[i].code);
    }
    /* The one mapping every handler's error goes through (problem_fail): each outcome
     * its status and stable code. */
    static const struct {
        int err, status;
        const char *code;
    } erows[] = {
        {CP_ERR_INVALID, 400, "INVALID_REQUEST"},
        {CP_ERR_UNAUTHORIZED, 401, "UNAUTHORIZED"},
        {CP_ERR_FORBIDDEN, 403, "FORBIDDEN"},
        {CP_ERR_NOT_FOUND, 404, "NOT_FOUND"},
        {CP_ERR_NO_COUPON, 404, "COUPON_NOT_EXIST"},
        {CP_ERR_NO_ISSUANCE, 404, "COUPON_ISSUE_NOT_FOUND"},
        {CP_ERR_NO_CODE, 404, "COUPON_CODE_NOT_FOUND"},
        {CP_ERR_METHOD, 405, "METHOD_NOT_ALLOWED"},
        {CP_ERR_DUPLICATE, 409, "DUPLICATED_COUPON_ISSUE"},
        {CP_ERR_BELOW_ISSUED, 409, "QUANTITY_BELOW_ISSUED"},
        {CP_ERR_CONFLICT, 409, "CONFLICT"},
        {CP_ERR_ALREADY_REDEEMED, 409, "COUPON_ALREADY_REDEEMED"},
        {CP_ERR_ORDER_MISMATCH, 409, "REDEMPTION_ORDER_MISMATCH"},
        {CP_ERR_NOT_PERSISTED, 409, "COUPON_NOT_YET_PERSISTED"},
        {CP_ERR_SOLD_OUT, 410, "INVALID_COUPON_ISSUE_QUANTITY"},
        {CP_ERR_EXPIRED, 410, "COUPON_EXPIRED"},
        {CP_ERR_LIMIT, 413, "PAYLOAD_TOO_LARGE"},
        {CP_ERR_URI_TOO_LONG, 414, "URI_TOO_LONG"},
        {CP_ERR_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE"},
        {CP_ERR_NOT_STARTED, 422, "INVALID_COUPON_ISSUE_DATE"},
        {CP_ERR_ENDED, 422, "INVALID_COUPON_ISSUE_DATE"},
        {CP_ERR_INTERNAL, 500, "INTERNAL_ERROR"},
        {CP_ERR_UNAVAILABLE, 503, "SERVICE_UNAVAILABLE"},
        {CP_ERR_TIMEOUT, 503, "SERVICE_UNAVAILABLE"},
        {CP_ERR_NOMEM, 503, "SERVICE_UNAVAILABLE"},
        {CP_ERR_NOT_REPLICATED, 503, "REDIS_NOT_REPLICATED"},
    };
    for (size_t i = 0; i < sizeof erows / sizeof erows[0]; i++) {
        enum problem p = problem_from_err(erows[i].err);
        if (problem_status(p) != erows[i].status || strcmp(problem_code(p), erows[i].code))
            fprintf(stderr, "\n  %s -> %d %s\n", cp_strerror(erows[i].err), problem_status(p),
                    problem_code(p));
        CU_ASSERT_EQUAL(problem_status(p), erows[i].status);
        CU_ASSERT_STRING_EQUAL(problem_code(p), erows[i].code);
    }
    /* problem_fail writes that problem, with its detail. */
    char buf[512];
    struct http_response resp;
    http_response_init(&resp, buf, sizeof buf);
    problem_fail(&resp, CP_ERR_NOT_PERSISTED, "coupon %d not yet persisted", 7);
    CU_ASSERT_EQUAL(resp.status, 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"detail\":\"coupon 7 not yet persisted\""));
    /* Not replicated is a 503 the client retries, like any unavailable dependency. */
    http_response_init(&resp, buf, sizeof buf);
    problem_fail(&resp, CP_ERR_NOT_REPLICATED, "no replica");
    CU_ASSERT_EQUAL(resp.status, 503);
    CU_ASSERT_EQUAL_FATAL(resp.nheaders, 1);
    CU_ASSERT_STRING_EQUAL(resp.headers[0].name, "Retry-After");
}

/* The table behind --print-routes (the integration suites' route lists) matches the
 * router: every route once, each path reaching its route. */
static void route_table_lists_every_route_once(void)
{
    char why[160] = "";
    CU_ASSERT_EQUAL(router_table_check(why, sizeof why), CP_OK);
    if (why[0] != '\0')
        fprintf(stderr, "router_table_check: %s\n", why);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"router_rejects_each_bad_request_with_its_problem",
         router_rejects_each_bad_request_with_its_problem},
        {"router_reports_the_route_for_metrics", router_reports_the_route_for_metrics},
        {"problem_set_never_overflows_a_small_response_buffer",
         problem_set_never_overflows_a_small_response_buffer},
        {"decimal_parse_id_accepts_exactly_1_to_int64_max",
         decimal_parse_id_accepts_exactly_1_to_int64_max},
        {"http_is_json_accepts_only_application_json", http_is_json_accepts_only_application_json},
        {"http_query_param_finds_one_value_and_rejects_repeats",
         http_query_param_finds_one_value_and_rejects_repeats},
        {"problem_document_escapes_its_detail", problem_document_escapes_its_detail},
        {"problem_codes_and_statuses_are_stable", problem_codes_and_statuses_are_stable},
        {"route_table_lists_every_route_once", route_table_lists_every_route_once},
    };
    /* auth_mode = none: the rows name their users (who is asking has its own suites:
     * test_jwtv, and test_auth against the real servers). */
    static struct cp_conf conf;
    char err[256];
    conf_defaults(&conf);
    conf.auth_mode = CONF_AUTH_NONE;
    test_app.conf = &conf;
    test_app.auth = auth_new(&conf, NULL, NULL, err, sizeof err);
    if (test_app.auth == NULL) {
        fprintf(stderr, "auth_new: %s\n", err);
        return 2;
    }
    test_thread.app = &test_app;
    int rc = unit_run_suite("router", NULL, UNIT_CASES(tests));
    auth_free(test_app.auth);
    return rc;
}
