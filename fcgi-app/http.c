#include "first.h"

#include "http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cp_err.h"

static enum http_method method_of(const char *m)
{
    static const struct {
        const char *name;
        enum http_method m;
    } table[] = {
        {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},   {"POST", HTTP_POST},
        {"PUT", HTTP_PUT},         {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE},
        {"OPTIONS", HTTP_OPTIONS},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(m, table[i].name) == 0)
            return table[i].m;
    return HTTP_OTHER;
}

enum http_read_error http_request_read(FCGX_Request *fcgi, struct http_request *req, char *body_buf,
                                       size_t body_cap, size_t max_body)
{
    memset(req, 0, sizeof *req);
    const char *m = FCGX_GetParam("REQUEST_METHOD", fcgi->envp);
    req->method_text = m ? m : "";
    req->method = method_of(req->method_text);
    const char *uri = FCGX_GetParam("REQUEST_URI", fcgi->envp);
    if (uri == NULL)
        uri = FCGX_GetParam("SCRIPT_NAME", fcgi->envp);
    if (uri == NULL)
        uri = "";
    size_t uri_len = strnlen(uri, CP_MAX_URI_BYTES + 1);
    const char *q = FCGX_GetParam("QUERY_STRING", fcgi->envp);
    req->query = q ? q : "";
    req->content_type = FCGX_GetParam("CONTENT_TYPE", fcgi->envp);
    req->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fcgi->envp);
    req->params = fcgi->envp;
    req->request_id = FCGX_GetParam("HTTP_X_REQUEST_ID", fcgi->envp);
    if (req->request_id != NULL && strnlen(req->request_id, 65) > 64)
        req->request_id = NULL;
    if (uri_len > CP_MAX_URI_BYTES ||
        strnlen(req->query, CP_MAX_QUERY_BYTES + 1) > CP_MAX_QUERY_BYTES)
        return HTTP_READ_URI_TOO_LONG;
    const char *qmark = memchr(uri, '?', uri_len);
    req->path_len = qmark ? (size_t)(qmark - uri) : uri_len;
    memcpy(req->path, uri, req->path_len);
    req->path[req->path_len] = '\0';

    req->body = body_buf;
    body_buf[0] = '\0';
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", fcgi->envp);
    if (cl == NULL || cl[0] == '\0')
        return HTTP_READ_OK;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(cl, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0 || cl[0] == '-' || cl[0] == '+')
        return HTTP_READ_BAD_LENGTH;
    if ((unsigned long long)n > max_body || (size_t)n >= body_cap)
        return HTTP_READ_BODY_TOO_LARGE;
    req->body_present = n > 0;
    size_t want = (size_t)n, got = 0;
    while (got < want) {
        int r = FCGX_GetStr(body_buf + got, (int)(want - got), fcgi->in);
        if (r <= 0)
            return HTTP_READ_IO;
        got += (size_t)r;
    }
    body_buf[got] = '\0';
    req->body_len = got;
    return HTTP_READ_OK;
}

void http_response_init(struct http_response *resp, char *buf, size_t cap)
{
    resp->status = 500;
    resp->content_type = "application/json";
    resp->nheaders = 0;
    resp->body = buf;
    resp->body_len = 0;
    resp->body_cap = cap;
    if (cap > 0)
        buf[0] = '\0';
}

void http_response_header(struct http_response *resp, const char *name, const char *fmt, ...)
{
    if (resp->nheaders >= HTTP_MAX_EXTRA_HEADERS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->headers[resp->nheaders].value, sizeof resp->headers[0].value, fmt, ap);
    va_end(ap);
    resp->headers[resp->nheaders].name = name;
    resp->nheaders++;
}

int http_response_printf(struct http_response *resp, const char *fmt, ...)
{
    size_t room = resp->body_cap - resp->body_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(resp->body + resp->body_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        resp->body[resp->body_len] = '\0';
        return CP_ERR_LIMIT;
    }
    resp->body_len += (size_t)n;
    return CP_OK;
}

int http_response_append(struct http_response *resp, const char *data, size_t len)
{
    if (len >= resp->body_cap - resp->body_len)
        return CP_ERR_LIMIT;
    memcpy(resp->body + resp->body_len, data, len);
    resp->body_len += len;
    resp->body[resp->body_len] = '\0';
    return CP_OK;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

int http_response_send(FCGX_Request *fcgi, const struct http_response *resp, int head_only)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n",
                     resp->status, http_reason(resp->status), resp->content_type, resp->body_len);
    for (int i = 0; i < resp->nheaders && n > 0 && (size_t)n < sizeof head; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s: %s\r\n", resp->headers[i].name,
                      resp->headers[i].value);
    if (n < 0 || (size_t)n + 3 > sizeof head)
        return CP_ERR_LIMIT;
    head[n++] = '\r';
    head[n++] = '\n';
    if (FCGX_PutStr(head, n, fcgi->out) != n)
        return CP_ERR_SYSTEM;
    if (!head_only && resp->body_len > 0 &&
        FCGX_PutStr(resp->body, (int)resp->body_len, fcgi->out) != (int)resp->body_len)
        return CP_ERR_SYSTEM;
    return CP_OK;
}

int http_is_json(const char *ct)
{
    static const char json[] = "application/json";
    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, json, sizeof json - 1) != 0)
        return 0;
    char next = ct[sizeof json - 1];
    return next == '\0' || next == ';' || next == ' ';
}

int http_query_param(const char *query, const char *name, const char **value, size_t *len)
{
    size_t nlen = strlen(name);
    int found = 0;
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            if (found)
                return CP_ERR_INVALID;
            found = 1;
            *value = p + nlen + 1;
            *len = seg - nlen - 1;
        } else if (seg == nlen && strncmp(p, name, nlen) == 0) {
            if (found)
                return CP_ERR_INVALID;
            found = 1;
            *value = p + nlen;
            *len = 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return found ? CP_OK : CP_ERR_NOT_FOUND;
}
