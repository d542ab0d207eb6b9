#include "first.h"

#include "jsonv.h"

#include <string.h>

#include "cp_err.h"
#include "cp_limits.h"

int jsonv_utf8_chars(const char *str, size_t len, size_t *chars)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t need;
        unsigned min;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, min = 0x10000, c &= 0x07;
        } else {
            return CP_ERR_INVALID;
        }
        if (len - i <= need)
            return CP_ERR_INVALID;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return CP_ERR_INVALID;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return CP_ERR_INVALID;
        i += need + 1;
        n++;
    }
    *chars = n;
    return CP_OK;
}

/*
 * Bytes that may appear outside strings in JSON: whitespace, structure,
 * number characters and the letters of true/false/null. json-c's tokenizer
 * accepts more even in strict mode ('single-quoted' member names, NaN,
 * Infinity); rejecting them here also keeps this scan in step with it.
 */
static int json_bare_byte(char c)
{
    return c != '\0' && strchr(" \t\r\n{}[],:0123456789+-.eEtrufalsn", c) != NULL;
}

/*
 * One pass over the raw bytes: nesting depth, and duplicate names among the
 * top-level members (compared as raw escaped text, which is what a client
 * sending the same key twice produces; names equal only once unescaped are
 * caught by the caller comparing *nnames_out with json-c's member count).
 * Member count is bounded by CP_MAX_JSON_KEYS so the quadratic comparison
 * stays tiny.
 */
static int scan_structure(const char *buf, size_t len, size_t *nnames_out, const char **reason)
{
    struct {
        size_t off, len;
    } names[CP_MAX_JSON_KEYS];
    size_t nnames = 0;
    int depth = 0;
    int expect_name = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '"') {
            size_t start = i + 1;
            i++;
            while (i < len && buf[i] != '"') {
                if ((unsigned char)buf[i] < 0x20) {
                    *reason = "control character inside a string"; /* json-c lets it pass */
                    return CP_ERR_INVALID;
                }
                if (buf[i] == '\\')
                    i++;
                i++;
            }
            if (i >= len) {
                *nnames_out = nnames;
                return CP_OK; /* unterminated: the tokenizer reports it */
            }
            if (depth == 1 && expect_name) {
                if (nnames == CP_MAX_JSON_KEYS) {
                    *reason = "too many members";
                    return CP_ERR_LIMIT;
                }
                for (size_t k = 0; k < nnames; k++) {
                    if (names[k].len == i - start &&
                        memcmp(buf + names[k].off, buf + start, i - start) == 0) {
                        *reason = "duplicate member name";
                        return CP_ERR_INVALID;
                    }
                }
                names[nnames].off = start;
                names[nnames].len = i - start;
                nnames++;
                expect_name = 0;
            }
        } else if (c == '{' || c == '[') {
            if (++depth > CP_MAX_JSON_DEPTH) {
                *reason = "nesting too deep";
                return CP_ERR_LIMIT;
            }
            expect_name = (c == '{' && depth == 1);
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect_name = 1;
        } else if (!json_bare_byte(c)) {
            *reason = "malformed JSON";
            return CP_ERR_INVALID;
        }
    }
    *nnames_out = nnames;
    return CP_OK;
}

int jsonv_parse_object(const char *buf, size_t len, struct json_object **out, const char **reason)
{
    const char *why = "malformed JSON";
    int rc = CP_ERR_INVALID;
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    size_t chars, nnames = 0;

    *out = NULL;
    if (len == 0) {
        why = "empty body";
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        why = "NUL byte in body";
        goto out;
    }
    if (jsonv_utf8_chars(buf, len, &chars) != CP_OK) {
        why = "body is not valid UTF-8";
        goto out;
    }
    rc = scan_structure(buf, len, &nnames, &why);
    if (rc != CP_OK)
        goto out;
    rc = CP_ERR_INVALID;
    tok = json_tokener_new_ex(CP_MAX_JSON_DEPTH + 1);
    if (tok == NULL) {
        rc = CP_ERR_NOMEM;
        why = "out of memory";
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        why = "malformed JSON";
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') {
            why = "trailing bytes after the JSON document";
            goto out;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        why = "body must be a JSON object";
        goto out;
    }
    if ((size_t)json_object_object_length(obj) != nnames) {
        why = "duplicate member name"; /* e.g. "a" and "\u0061": json-c kept one */
        goto out;
    }
    *out = obj;
    obj = NULL;
    rc = CP_OK;
    why = NULL;
out:
    json_object_put(obj);
    if (tok != NULL)
        json_tokener_free(tok);
    if (reason != NULL)
        *reason = why;
    return rc;
}

int jsonv_get_int_range(struct json_object *obj, const char *key, int64_t min, int64_t max,
                        int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return CP_ERR_NOT_FOUND;
    if (!json_object_is_type(v, json_type_int))
        return CP_ERR_INVALID;
    /* json-c keeps integers above INT64_MAX as uint64 and saturates get_int64. */
    int64_t iv = json_object_get_int64(v);
    if (iv == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
        return CP_ERR_INVALID;
    /* Below INT64_MIN json-c saturates silently and re-prints the saturated
     * value, so an overflow cannot be told from INT64_MIN itself: reject both. */
    if (iv == INT64_MIN)
        return CP_ERR_INVALID;
    if (iv < min || iv > max)
        return CP_ERR_INVALID;
    *out = iv;
    return CP_OK;
}

int jsonv_get_id(struct json_object *obj, const char *key, int64_t *out)
{
    return jsonv_get_int_range(obj, key, 1, INT64_MAX, out);
}

int jsonv_get_string(struct json_object *obj, const char *key, size_t max_chars, const char **out,
                     size_t *len)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return CP_ERR_NOT_FOUND;
    if (!json_object_is_type(v, json_type_string))
        return CP_ERR_INVALID;
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    size_t chars;
    if (memchr(s, '\0', n) != NULL || jsonv_utf8_chars(s, n, &chars) != CP_OK)
        return CP_ERR_INVALID;
    if (chars == 0 || chars > max_chars)
        return CP_ERR_INVALID;
    *out = s;
    if (len != NULL)
        *len = n;
    return CP_OK;
}

int jsonv_only_keys(struct json_object *obj, const char *const *allowed, const char **unknown)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        int found = 0;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            if (unknown != NULL)
                *unknown = key;
            return 0;
        }
    }
    return 1;
}
