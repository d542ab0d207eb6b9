/*
 * fuzz_router.c - libFuzzer target for request parsing and routing in
 * coupon-fcgi: router_dispatch() (path splitting, route match, method check,
 * path ids), the issue and redemption endpoints' validation (Content-Type,
 * strict body), the problem+json writer, and the helpers decimal_parse_id,
 * http_is_json and
 * http_query_param.
 *
 * Input layout: byte 0 picks the method (low 3 bits) and whether a
 * Content-Type is present (bit 3); the rest is "path \n content-type \n body"
 * (missing parts are empty). The path is cut at CP_MAX_URI_BYTES and the body
 * at CP_MAX_BODY_BYTES, as http_request_read() does.
 *
 * Limit (by design): nothing here may touch Redis, Kafka or MariaDB. The
 * handlers that need them are replaced at link time (-Wl,--wrap=...) by stubs
 * that only check what the router promises them (ids already validated, > 0)
 * and answer 200. The issue endpoints run for real up to their validation; a
 * request whose Content-Type and body are valid would go on to issue a coupon,
 * so for those the stub answers instead (see __wrap_issue_handle). What lies
 * behind validation is covered by the integration suites, not by this target.
 *
 * Invariants checked (abort when broken): every answer is 200 (a stub) or a
 * 4xx problem+json whose body is valid JSON with the status and a code, 405
 * carries Allow, and a handler never receives an id <= 0.
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "auth.h"
#include "cp_err.h"
#include "cp_limits.h"
#include "handlers.h"
#include "issue.h"
#include "decimal.h"
#include "http.h"
#include "issue.h"
#include "jsonv.h"
#include "redeem.h"
#include "router.h"
#include "validate.h"

/* ---- link-time replacements of the handlers behind validation ---- */

void __wrap_read_coupon_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id);
void __wrap_read_issue_status_handle(struct app_thread *t, const struct http_request *req,
                                     struct http_response *resp, int64_t coupon_id,
                                     int64_t user_id);
void __wrap_read_user_coupons_handle(struct app_thread *t, const struct http_request *req,
                                     struct http_response *resp, int64_t user_id);
void __wrap_admin_create_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp);
void __wrap_admin_patch_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id);
void __wrap_admin_stats_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id);
void __wrap_health_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp);
void __wrap_health_metrics_handle(struct app_thread *t, const struct http_request *req,
                                  struct http_response *resp);
void __wrap_issue_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp, int64_t path_coupon_id);
void __real_issue_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp, int64_t path_coupon_id);

static void stub_ok(struct http_response *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body_len = 0;
    (void)http_response_printf(resp, "{}");
}

void __wrap_read_coupon_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id)
{
    (void)t;
    CHECK(coupon_id > 0 && (req->method == HTTP_GET || req->method == HTTP_HEAD));
    stub_ok(resp);
}

void __wrap_read_issue_status_handle(struct app_thread *t, const struct http_request *req,
                                     struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    (void)t;
    (void)req;
    CHECK(coupon_id > 0 && user_id > 0);
    stub_ok(resp);
}

void __wrap_read_user_coupons_handle(struct app_thread *t, const struct http_request *req,
                                     struct http_response *resp, int64_t user_id)
{
    (void)t;
    (void)req;
    CHECK(user_id > 0);
    stub_ok(resp);
}

void __wrap_admin_create_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp)
{
    (void)t;
    CHECK(req->method == HTTP_POST);
    stub_ok(resp);
}

void __wrap_admin_patch_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id)
{
    (void)t;
    CHECK(coupon_id > 0 && req->method == HTTP_PATCH);
    stub_ok(resp);
}

void __wrap_admin_stats_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t coupon_id)
{
    (void)t;
    (void)req;
    CHECK(coupon_id > 0);
    stub_ok(resp);
}

void __wrap_health_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp)
{
    (void)t;
    (void)req;
    stub_ok(resp);
}

void __wrap_health_metrics_handle(struct app_thread *t, const struct http_request *req,
                                  struct http_response *resp)
{
    (void)t;
    (void)req;
    stub_ok(resp);
}

/* Would issue_handle() get past validation? Mirrors its checks: a request that
 * passes them here is answered by the stub; one that fails them runs the real
 * handler, which must reject it (if the two disagreed, the real handler would go
 * on to issue_coupon() with no dependencies and crash: a finding). */
static int issue_request_is_valid(const struct http_request *req, int64_t path_coupon_id)
{
    static const char *const path_keys[] = {"userId", NULL};
    static const char *const ref_keys[] = {"couponId", "userId", NULL};
    struct json_object *obj = NULL;
    int64_t id;
    int ok = 0;
    if (!http_is_json(req->content_type))
        return 0;
    if (jsonv_parse_object(req->body, req->body_len, &obj, NULL) != CP_OK)
        return 0;
    ok = jsonv_only_keys(obj, path_coupon_id > 0 ? path_keys : ref_keys, NULL) &&
         (path_coupon_id > 0 || jsonv_get_id(obj, "couponId", &id) == CP_OK) &&
         jsonv_get_id(obj, "userId", &id) == CP_OK;
    json_object_put(obj);
    return ok;
}

void __wrap_issue_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp, int64_t path_coupon_id)
{
    CHECK(path_coupon_id >= 0 && req->method == HTTP_POST && t->defer == NULL);
    if (issue_request_is_valid(req, path_coupon_id)) {
        stub_ok(resp);
        return;
    }
    __real_issue_handle(t, req, resp, path_coupon_id);
    CHECK(resp->status == 400 || resp->status == 415);
}

/* The redemption endpoints the same way: a valid body is answered by the stub, any
 * other runs the real handler, which must reject it before touching a dependency. */
void __wrap_redeem_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id);
void __real_redeem_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id);
void __wrap_redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                                 struct http_response *resp, int64_t coupon_id, int64_t user_id);
void __real_redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                                 struct http_response *resp, int64_t coupon_id, int64_t user_id);
void __wrap_redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                                  struct http_response *resp);
void __real_redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                                  struct http_response *resp);

/* with_amount: the body of a redemption (an optional orderAmount), else of a cancel. */
static int order_body_is_valid(const struct http_request *req, int with_amount)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = NULL;
    return http_is_json(req->content_type) &&
           redeem_parse_order_body(req->body, req->body_len, order, with_amount ? amount : NULL,
                                   &why) == CP_OK;
}

void __wrap_redeem_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    CHECK(coupon_id > 0 && user_id > 0 && req->method == HTTP_POST);
    if (order_body_is_valid(req, 1)) {
        stub_ok(resp);
        return;
    }
    __real_redeem_handle(t, req, resp, coupon_id, user_id);
    CHECK(resp->status == 400 || resp->status == 415);
}

void __wrap_redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                                 struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    CHECK(coupon_id > 0 && user_id > 0 && req->method == HTTP_DELETE);
    if (order_body_is_valid(req, 0)) {
        stub_ok(resp);
        return;
    }
    __real_redeem_cancel_handle(t, req, resp, coupon_id, user_id);
    CHECK(resp->status == 400 || resp->status == 415);
}

void __wrap_redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                                  struct http_response *resp)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = NULL;
    CHECK(req->method == HTTP_POST);
    if (http_is_json(req->content_type) &&
        redeem_parse_code_body(req->body, req->body_len, code, order, amount, &why) == CP_OK) {
        stub_ok(resp);
        return;
    }
    __real_redeem_by_code_handle(t, req, resp);
    CHECK(resp->status == 400 || resp->status == 415);
}

void __wrap_validate_handle(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp);
void __real_validate_handle(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp);

void __wrap_validate_handle(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp)
{
    struct validate_body b;
    const char *why = NULL;
    CHECK(req->method == HTTP_POST);
    if (http_is_json(req->content_type) &&
        validate_parse_body(req->body, req->body_len, &b, &why) == CP_OK) {
        CHECK((b.code[0] != '\0') != (b.coupon_id > 0) && b.amount[0] != '\0');
        stub_ok(resp);
        return;
    }
    __real_validate_handle(t, req, resp);
    CHECK(resp->status == 400 || resp->status == 415);
}

/* ---- the target ---- */

static struct app fuzz_app;           /* no dependencies */
static struct app_thread fuzz_thread; /* large: static */
static char body_buf[CP_MAX_BODY_BYTES + 1];
static char ct_buf[CP_MAX_HEADER_BYTES + 1];
static char resp_buf[HTTP_RESPONSE_BODY_MAX];

static const char *method_names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                     "PATCH", "DELETE", "OPTIONS", "BREW"};

/* Length of the bytes from p up to the next '\n' (or the end). */
static size_t take_line(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? (size_t)(nl - p) : (size_t)(end - p);
}

static void check_problem(const struct http_response *resp)
{
    CHECK(resp->status >= 400 && resp->status < 500);
    CHECK(strcmp(resp->content_type, "application/problem+json") == 0);
    CHECK(resp->body_len == strlen(resp->body));
    struct json_tokener *tok = json_tokener_new();
    CHECK(tok != NULL);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *doc = json_tokener_parse_ex(tok, resp->body, (int)resp->body_len);
    CHECK(doc != NULL && json_tokener_get_error(tok) == json_tokener_success);
    struct json_object *status, *code, *detail;
    CHECK(json_object_object_get_ex(doc, "status", &status));
    CHECK(json_object_get_int(status) == resp->status);
    CHECK(json_object_object_get_ex(doc, "code", &code));
    CHECK(json_object_is_type(code, json_type_string));
    CHECK(json_object_object_get_ex(doc, "detail", &detail));
    json_object_put(doc);
    json_tokener_free(tok);
    int has_allow = 0;
    for (int i = 0; i < resp->nheaders; i++)
        has_allow |= strcmp(resp->headers[i].name, "Allow") == 0;
    CHECK(has_allow == (resp->status == 405));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_thread.app = &fuzz_app;
    if (fuzz_app.auth == NULL) {
        /* auth_mode = none: the router's own checks, each user route reaching its
         * (wrapped) handler; token verification has its own target (fuzz_jwtv). */
        static struct cp_conf conf;
        char err[256];
        conf_defaults(&conf);
        conf.auth_mode = CONF_AUTH_NONE;
        fuzz_app.conf = &conf;
        fuzz_app.auth = auth_new(&conf, NULL, NULL, err, sizeof err);
        CHECK(fuzz_app.auth != NULL);
    }
    const uint8_t *p = data + 1, *end = data + size;
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = (enum http_method)(data[0] & 7);
    req.method_text = method_names[data[0] & 7];

    size_t n = take_line(p, end);
    req.path_len = n > CP_MAX_URI_BYTES ? CP_MAX_URI_BYTES : n;
    memcpy(req.path, p, req.path_len);
    req.path[req.path_len] = '\0';
    p += n < (size_t)(end - p) ? n + 1 : n;

    n = take_line(p, end);
    size_t ct_len = n > CP_MAX_HEADER_BYTES ? CP_MAX_HEADER_BYTES : n;
    memcpy(ct_buf, p, ct_len);
    ct_buf[ct_len] = '\0';
    req.content_type = (data[0] & 8) ? ct_buf : NULL;
    p += n < (size_t)(end - p) ? n + 1 : n;

    size_t body_len = (size_t)(end - p);
    if (body_len > CP_MAX_BODY_BYTES)
        body_len = CP_MAX_BODY_BYTES;
    memcpy(body_buf, p, body_len);
    body_buf[body_len] = '\0';
    req.body = body_buf;
    req.body_len = body_len;
    req.body_present = body_len > 0;
    req.query = ct_buf; /* also exercise the query parser on the same bytes */
    req.request_id = "fuzz";

    /* Parsing helpers on the same bytes. */
    int64_t id;
    if (decimal_parse_id(req.path, req.path_len, &id) == CP_OK)
        CHECK(id > 0);
    (void)http_is_json(ct_buf);
    const char *v;
    size_t vlen;
    static const char *const names[] = {"limit", "cursor", "status", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (http_query_param(ct_buf, names[i], &v, &vlen) == CP_OK)
            CHECK(v >= ct_buf && v + vlen <= ct_buf + ct_len);

    struct http_response resp;
    http_response_init(&resp, resp_buf, sizeof resp_buf);
    enum metrics_route route = router_dispatch(&fuzz_thread, &req, &resp);
    CHECK((unsigned)route < (unsigned)ROUTE_COUNT_);
    if (resp.status != 200)
        check_problem(&resp);
    return 0;
}
