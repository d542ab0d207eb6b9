/*
 * http.h - one HTTP exchange as the FastCGI program sees it.
 *
 * http_request_read() turns the FastCGI parameters and stdin of one request
 * into a struct http_request, enforcing every limit of cp_limits.h before a
 * byte is used: method, URI and query length, Content-Type, Content-Length
 * against the body limit (the body is not read when too large). Its strings
 * point into the FastCGI request's environment or into the thread's body
 * buffer, so a request lives exactly as long as the FastCGI request.
 *
 * struct http_response is filled by handlers (status, content type, a few
 * headers, body in a per-thread buffer) and written once by http_response_send.
 * Errors become problem+json only through problem.h. Not shared between threads.
 */
#ifndef COUPON_HTTP_H
#define COUPON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "cp_limits.h"

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_OTHER
};

/* Why a request could not even be read; turned into a problem by the caller. */
enum http_read_error {
    HTTP_READ_OK = 0,
    HTTP_READ_URI_TOO_LONG,
    HTTP_READ_BODY_TOO_LARGE,
    HTTP_READ_BAD_LENGTH,
    HTTP_READ_IO
};

/* Who is asking, as fcgi-app/auth.c established it before the request is dispatched. */
enum http_scope { HTTP_SCOPE_ADMIN = 1u << 0, HTTP_SCOPE_CHECKOUT = 1u << 1 };
struct http_caller {
    int verified;    /* 0: auth_mode = none, nobody was identified (the request names a user) */
    int64_t user_id; /* the verified user; 0 for a service or admin token naming none */
    unsigned scopes; /* enum http_scope bits */
};

struct http_request {
    enum http_method method;
    const char *method_text;
    char path[CP_MAX_URI_BYTES + 1]; /* REQUEST_URI up to '?', not decoded */
    size_t path_len;
    const char *query;         /* QUERY_STRING, may be "" */
    const char *content_type;  /* may be NULL */
    const char *authorization; /* may be NULL; a secret: never log it */
    const char *request_id;
    char *body; /* NUL-terminated copy, body_len bytes */
    size_t body_len;
    int body_present;          /* CONTENT_LENGTH given and > 0 */
    FCGX_ParamArray params;    /* every FastCGI parameter; NULL in unit tests */
    struct http_caller caller; /* filled by the router (auth_identify) on user routes */
};

#define HTTP_MAX_EXTRA_HEADERS 4
#define HTTP_RESPONSE_BODY_MAX 65536

struct http_response {
    int status;
    const char *content_type;
    struct {
        const char *name;
        char value[160];
    } headers[HTTP_MAX_EXTRA_HEADERS];
    int nheaders;
    char *body; /* caller-provided buffer of body_cap bytes */
    size_t body_len, body_cap;
};

/* Reads parameters and body (body into body_buf of body_cap bytes). */
enum http_read_error http_request_read(FCGX_Request *fcgi, struct http_request *req, char *body_buf,
                                       size_t body_cap, size_t max_body);

void http_response_init(struct http_response *resp, char *buf, size_t cap);
/* Adds a header; value is copied (truncated to fit). */
void http_response_header(struct http_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends formatted text to the body; returns CP_ERR_LIMIT if it does not fit. */
int http_response_printf(struct http_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int http_response_append(struct http_response *resp, const char *data, size_t len);
/* Writes status line, headers and body to the FastCGI output stream. */
int http_response_send(FCGX_Request *fcgi, const struct http_response *resp, int head_only);

const char *http_reason(int status);

/* True if the Content-Type is application/json (any parameters, e.g. charset, allowed). */
int http_is_json(const char *content_type);

/* Finds `name` in an application/x-www-form-urlencoded query; returns CP_ERR_NOT_FOUND,
 * CP_ERR_INVALID for a repeated name, else points value and len at the raw value. */
int http_query_param(const char *query, const char *name, const char **value, size_t *len);

#endif
