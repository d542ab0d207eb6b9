/*
 * test_jsonv.c - unit tests of common/jsonv, the strict parser of untrusted
 * request bodies: a table of bodies (accepted or rejected, with the error code
 * and reason), the id getter's exact range and type rules, string length in
 * characters, the member whitelist and the UTF-8 validator.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "cp_limits.h"
#include "jsonv.h"

/* A body with an explicit length (so NUL bytes can be inside); len 0 = strlen. */
struct body_row {
    const char *label;
    const char *body;
    size_t len;
    int rc;             /* expected return of jsonv_parse_object */
    const char *reason; /* expected reason (NULL = do not check) */
};

#define OK(label, body)             \
    {                               \
        label, body, 0, CP_OK, NULL \
    }
#define BAD(label, body, why)               \
    {                                       \
        label, body, 0, CP_ERR_INVALID, why \
    }
#define BADN(label, body, len, why)           \
    {                                         \
        label, body, len, CP_ERR_INVALID, why \
    }
#define LIMIT(label, body, why)           \
    {                                     \
        label, body, 0, CP_ERR_LIMIT, why \
    }

#define R_EMPTY "empty body"
#define R_NUL   "NUL byte in body"
#define R_UTF8  "body is not valid UTF-8"
#define R_DEEP  "nesting too deep"
#define R_MANY  "too many members"
#define R_DUP   "duplicate member name"
#define R_OBJ   "body must be a JSON object"
#define R_MAL   "malformed JSON"
#define R_CTRL  "control character inside a string"

static const struct body_row body_rows[] = {
    OK("flat object", "{\"userId\":1}"),
    OK("empty object", "{}"),
    OK("whitespace around", " \t\r\n{\"userId\":1}\r\n\t "),
    OK("whitespace inside", "{ \"couponId\" : 1 ,\n \"userId\" : 2 }"),
    OK("depth 4 objects", "{\"a\":{\"b\":{\"c\":{}}}}"),
    OK("depth 4 arrays", "{\"a\":[1,[2,[3]]]}"),
    OK("multibyte UTF-8 string", "{\"s\":\"\xed\x95\x9c\xea\xb8\x80 \xf0\x9f\x98\x80\"}"),
    OK("escaped unicode", "{\"s\":\"\\u00e9\\ud83d\\ude00\"}"),
    OK("escaped quote in a name", "{\"a\\\"b\":1}"),
    OK("same name in different nested objects", "{\"a\":{\"x\":1},\"b\":{\"x\":2}}"),
    OK("names differing only in case", "{\"a\":1,\"A\":2}"),
    OK("name prefix of another", "{\"user\":1,\"userId\":2}"),
    OK("all scalar types", "{\"i\":1,\"f\":1.5,\"s\":\"x\",\"t\":true,\"n\":null,\"z\":false}"),
    OK("braces inside strings", "{\"s\":\"{{{{{{[[[[\",\"t\":\"}]\"}"),

    BAD("empty", "", R_EMPTY),
    BAD("only whitespace", "   \n", R_MAL),
    BADN("NUL inside a string", "{\"a\":\"x\0y\"}", 12, R_NUL),
    BADN("NUL after the object", "{\"a\":1}\0", 8, R_NUL),
    BADN("NUL first", "\0{}", 3, R_NUL),
    BAD("overlong 2-byte (C0 AF)", "{\"s\":\"\xc0\xaf\"}", R_UTF8),
    BAD("overlong 2-byte (C1 BF)", "{\"s\":\"\xc1\xbf\"}", R_UTF8),
    BAD("overlong 3-byte", "{\"s\":\"\xe0\x80\xaf\"}", R_UTF8),
    BAD("overlong 4-byte", "{\"s\":\"\xf0\x80\x80\xaf\"}", R_UTF8),
    BAD("surrogate D800", "{\"s\":\"\xed\xa0\x80\"}", R_UTF8),
    BAD("surrogate DFFF", "{\"s\":\"\xed\xbf\xbf\"}", R_UTF8),
    BAD("truncated 3-byte inside a string", "{\"s\":\"\xe2\x82\"}", R_UTF8),
    BAD("truncated 3-byte at the end", "{\"s\":1}\xe2\x82", R_UTF8),
    BAD("truncated 4-byte at the end", "{}\xf0\x9f\x98", R_UTF8),
    BAD("lone continuation byte", "{\"s\":\"\x80\"}", R_UTF8),
    BAD("5-byte form", "{\"s\":\"\xf8\x88\x80\x80\x80\"}", R_UTF8),
    BAD("byte FE", "{\"s\":\"\xfe\"}", R_UTF8),
    BAD("byte FF", "{\"s\":\"\xff\"}", R_UTF8),
    BAD("above U+10FFFF", "{\"s\":\"\xf4\x90\x80\x80\"}", R_UTF8),
    BAD("latin-1 e-acute", "{\"s\":\"caf\xe9\"}", R_UTF8),
    LIMIT("depth 5 objects", "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", R_DEEP),
    LIMIT("depth 5 arrays", "{\"a\":[[[[1]]]]}", R_DEEP),
    LIMIT("deep arrays at the top", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
          R_DEEP),
    BAD("duplicate name", "{\"a\":1,\"a\":2}", R_DUP),
    BAD("duplicate name, not adjacent", "{\"a\":1,\"b\":2,\"a\":3}", R_DUP),
    BAD("duplicate userId", "{\"userId\":1,\"couponId\":2,\"userId\":1}", R_DUP),
    BAD("duplicate identical escaped text", "{\"a\\\"b\":1,\"a\\\"b\":2}", R_DUP),
    BAD("duplicate once unescaped (\\u0061)", "{\"a\":1,\"\\u0061\":2}", R_DUP),
    BAD("duplicate once unescaped (userId)", "{\"userId\":1,\"\\u0075serId\":2}", R_DUP),
    BAD("duplicate once unescaped (\\/)", "{\"a/b\":1,\"a\\/b\":2}", R_DUP),
    /* Trailing bytes: json-c's strict mode reports them before jsonv's own check. */
    BAD("trailing garbage letter", "{\"a\":1}x", NULL),
    BAD("trailing number", "{\"a\":1} 1", NULL),
    BAD("trailing null", "{\"a\":1}null", NULL),
    BAD("trailing string", "{\"a\":1}\"x\"", NULL),
    BAD("two objects", "{\"a\":1}{}", NULL),
    BAD("trailing comma after the object", "{\"a\":1},", NULL),
    BAD("form feed after the object", "{\"a\":1}\f", R_MAL),
    BAD("UTF-8 BOM first", "\xef\xbb\xbf{\"a\":1}", R_MAL),
    BAD("top-level empty array", "[]", R_OBJ),
    BAD("top-level array", "[{\"userId\":1}]", R_OBJ),
    BAD("top-level string", "\"x\"", R_OBJ),
    BAD("top-level number then space", "1 ", R_OBJ),
    BAD("top-level number", "1", NULL),
    BAD("top-level true", "true", NULL),
    BAD("top-level null", "null", NULL),
    BAD("unterminated object", "{", R_MAL),
    BAD("unterminated name", "{\"a", R_MAL),
    BAD("unterminated string value", "{\"a\":\"x}", R_MAL),
    BAD("close only", "}", R_MAL),
    BAD("name without value", "{\"a\"}", R_MAL),
    BAD("colon without value", "{\"a\":}", R_MAL),
    BAD("trailing comma inside", "{\"a\":1,}", R_MAL),
    BAD("missing comma", "{\"a\":1 \"b\":2}", R_MAL),
    BAD("single-quoted name", "{'a':1}", R_MAL),
    BAD("single-quoted name hiding a duplicate", "{'\"':0,\"a\":1,\"a\":2}", R_MAL),
    BAD("single-quoted value", "{\"a\":'x'}", R_MAL),
    BAD("bare name", "{a:1}", R_MAL),
    BAD("NaN", "{\"a\":NaN}", R_MAL),
    BAD("Infinity", "{\"a\":Infinity}", R_MAL),
    BAD("-Infinity", "{\"a\":-Infinity}", R_MAL),
    BAD("block comment", "{\"a\":1/*c*/}", R_MAL),
    BAD("line comment", "{\"a\":1//c\n}", R_MAL),
    BAD("leading zero", "{\"a\":01}", R_MAL),
    BAD("plus sign", "{\"a\":+1}", R_MAL),
    BAD("leading dot", "{\"a\":.5}", R_MAL),
    BAD("bad escape", "{\"a\":\"\\x41\"}", R_MAL),
    BAD("TRUE in capitals", "{\"a\":TRUE}", R_MAL),
    BAD("raw tab in a string", "{\"a\":\"x\ty\"}", R_CTRL),
    BAD("raw newline in a name", "{\"a\nb\":1}", R_CTRL),
    BAD("hex number", "{\"a\":0x10}", R_MAL),
};

static void jsonv_body_table(void)
{
    for (size_t i = 0; i < sizeof body_rows / sizeof body_rows[0]; i++) {
        const struct body_row *r = &body_rows[i];
        size_t len = r->len ? r->len : strlen(r->body);
        struct json_object *sentinel = (struct json_object *)&sentinel;
        struct json_object *obj = sentinel; /* must be reset by the parser */
        const char *why = "unset";
        int rc = jsonv_parse_object(r->body, len, &obj, &why);
        int bad = rc != r->rc;
        if (r->rc == CP_OK)
            bad |= obj == NULL || why != NULL;
        else
            bad |= obj != NULL || why == NULL || (r->reason != NULL && strcmp(why, r->reason) != 0);
        if (bad)
            fprintf(stderr, "\n  row %zu (%s): rc %d want %d, reason '%s' want '%s'\n", i, r->label,
                    rc, r->rc, why ? why : "(null)", r->reason ? r->reason : "(any)");
        CU_ASSERT_FALSE(bad);
        if (rc == CP_OK && obj != sentinel)
            json_object_put(obj);
    }
}

/* {"k1":0,...,"kN":0} */
static char *members(int n)
{
    size_t cap = 16 + (size_t)n * 16;
    char *s = malloc(cap);
    size_t len = 0;
    s[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"k%d\":%d", i ? "," : "", i, i);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static void jsonv_member_count_is_limited(void)
{
    struct json_object *obj = NULL;
    const char *why = NULL;
    char *at = members(CP_MAX_JSON_KEYS);
    CU_ASSERT_EQUAL(jsonv_parse_object(at, strlen(at), &obj, &why), CP_OK);
    CU_ASSERT_EQUAL(json_object_object_length(obj), CP_MAX_JSON_KEYS);
    json_object_put(obj);
    obj = NULL;
    char *over = members(CP_MAX_JSON_KEYS + 1);
    CU_ASSERT_EQUAL(jsonv_parse_object(over, strlen(over), &obj, &why), CP_ERR_LIMIT);
    CU_ASSERT_PTR_NULL(obj);
    CU_ASSERT_STRING_EQUAL(why, R_MANY);
    /* Nested members do not count towards the top-level limit. */
    char nested[1024];
    size_t n = (size_t)snprintf(nested, sizeof nested, "{\"a\":%s}", at);
    CU_ASSERT_EQUAL(jsonv_parse_object(nested, n, &obj, &why), CP_OK);
    json_object_put(obj);
    free(at);
    free(over);
}

static void jsonv_reason_may_be_null(void)
{
    struct json_object *obj = NULL;
    CU_ASSERT_EQUAL(jsonv_parse_object("[]", 2, &obj, NULL), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(jsonv_parse_object("{}", 2, &obj, NULL), CP_OK);
    json_object_put(obj);
}

struct id_row {
    const char *value; /* JSON text of the member value; NULL = member absent */
    int rc;
    int64_t id;
};

static int get_id_of(const char *value, int64_t *id)
{
    char body[128];
    struct json_object *obj = NULL;
    const char *why;
    if (value != NULL)
        snprintf(body, sizeof body, "{\"id\":%s}", value);
    else
        snprintf(body, sizeof body, "{\"other\":1}");
    if (jsonv_parse_object(body, strlen(body), &obj, &why) != CP_OK)
        return 99; /* the body itself was rejected */
    int rc = jsonv_get_id(obj, "id", id);
    json_object_put(obj);
    return rc;
}

static void jsonv_get_id_accepts_exactly_positive_int64(void)
{
    static const struct id_row rows[] = {
        {"1", CP_OK, 1},
        {"42", CP_OK, 42},
        {"9223372036854775807", CP_OK, INT64_MAX},
        {"9223372036854775806", CP_OK, INT64_MAX - 1},
        {"0", CP_ERR_INVALID, 0},
        {"-0", CP_ERR_INVALID, 0},
        {"-1", CP_ERR_INVALID, 0},
        {"9223372036854775808", CP_ERR_INVALID, 0},
        {"18446744073709551615", CP_ERR_INVALID, 0},
        {"18446744073709551616", CP_ERR_INVALID, 0},
        {"99999999999999999999999999", CP_ERR_INVALID, 0},
        {"-9223372036854775807", CP_ERR_INVALID, 0},
        {"-9223372036854775808", CP_ERR_INVALID, 0},
        {"-9223372036854775809", CP_ERR_INVALID, 0},
        {"1.0", CP_ERR_INVALID, 0},
        {"1.5", CP_ERR_INVALID, 0},
        {"1e3", CP_ERR_INVALID, 0},
        {"1E3", CP_ERR_INVALID, 0},
        {"1e0", CP_ERR_INVALID, 0},
        {"\"1\"", CP_ERR_INVALID, 0},
        {"\"\"", CP_ERR_INVALID, 0},
        {"true", CP_ERR_INVALID, 0},
        {"false", CP_ERR_INVALID, 0},
        {"[1]", CP_ERR_INVALID, 0},
        {"{}", CP_ERR_INVALID, 0},
        {"null", CP_ERR_NOT_FOUND, 0}, /* null counts as absent */
        {NULL, CP_ERR_NOT_FOUND, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t id = -7;
        int rc = get_id_of(rows[i].value, &id);
        int64_t want = rows[i].rc == CP_OK ? rows[i].id : -7; /* untouched on failure */
        if (rc != rows[i].rc || id != want)
            fprintf(stderr, "\n  row %zu (%s): rc %d want %d, id %" PRId64 "\n", i,
                    rows[i].value ? rows[i].value : "(absent)", rc, rows[i].rc, id);
        CU_ASSERT_EQUAL(rc, rows[i].rc);
        CU_ASSERT_EQUAL(id, want);
    }
}

static void jsonv_get_int_range_checks_both_bounds(void)
{
    static const struct {
        const char *body;
        int rc;
    } rows[] = {
        {"{\"n\":0}", CP_OK},
        {"{\"n\":100}", CP_OK},
        {"{\"n\":-1}", CP_ERR_INVALID},
        {"{\"n\":101}", CP_ERR_INVALID},
        {"{\"n\":50.0}", CP_ERR_INVALID},
        {"{\"n\":\"50\"}", CP_ERR_INVALID},
        {"{}", CP_ERR_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct json_object *obj = NULL;
        int64_t v = -1;
        CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(rows[i].body, strlen(rows[i].body), &obj, NULL),
                              CP_OK);
        int rc = jsonv_get_int_range(obj, "n", 0, 100, &v);
        if (rc != rows[i].rc)
            fprintf(stderr, "\n  row %zu (%s): rc %d\n", i, rows[i].body, rc);
        CU_ASSERT_EQUAL(rc, rows[i].rc);
        json_object_put(obj);
    }
    /* The widest range: INT64_MIN is refused because json-c saturates below it. */
    struct json_object *obj = NULL;
    int64_t v = 0;
    const char *b = "{\"lo\":-9223372036854775807,\"min\":-9223372036854775808,"
                    "\"under\":-9223372036854775809,\"hi\":9223372036854775807}";
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(b, strlen(b), &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_get_int_range(obj, "lo", INT64_MIN, INT64_MAX, &v), CP_OK);
    CU_ASSERT_EQUAL(v, -INT64_MAX);
    CU_ASSERT_EQUAL(jsonv_get_int_range(obj, "min", INT64_MIN, INT64_MAX, &v), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(jsonv_get_int_range(obj, "under", INT64_MIN, INT64_MAX, &v), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(jsonv_get_int_range(obj, "hi", INT64_MIN, INT64_MAX, &v), CP_OK);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    json_object_put(obj);
}

static void jsonv_get_string_counts_characters_not_bytes(void)
{
    static const struct {
        const char *value;
        size_t max_chars;
        int rc;
        size_t bytes;
    } rows[] = {
        {"\"abc\"", 3, CP_OK, 3},
        {"\"abc\"", 2, CP_ERR_INVALID, 0},
        {"\"\xed\x95\x9c\xea\xb8\x80\"", 2, CP_OK, 6}, /* 2 Hangul syllables */
        {"\"\xed\x95\x9c\xea\xb8\x80\"", 1, CP_ERR_INVALID, 0},
        {"\"\xf0\x9f\x98\x80\"", 1, CP_OK, 4}, /* one emoji */
        {"\"\\ud83d\\ude00\"", 1, CP_OK, 4},   /* same, escaped */
        {"\"\\u00e9t\\u00e9\"", 3, CP_OK, 5},
        {"\"caf\xc3\xa9\"", 4, CP_OK, 5},
        {"\"\"", 10, CP_ERR_INVALID, 0},        /* empty */
        {"\"\\u0000\"", 10, CP_ERR_INVALID, 0}, /* NUL inside */
        {"\"a\\u0000b\"", 10, CP_ERR_INVALID, 0},
        {"1", 10, CP_ERR_INVALID, 0},
        {"true", 10, CP_ERR_INVALID, 0},
        {"[\"a\"]", 10, CP_ERR_INVALID, 0},
        {"null", 10, CP_ERR_NOT_FOUND, 0},
        {NULL, 10, CP_ERR_NOT_FOUND, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char body[128];
        struct json_object *obj = NULL;
        if (rows[i].value)
            snprintf(body, sizeof body, "{\"s\":%s}", rows[i].value);
        else
            snprintf(body, sizeof body, "{}");
        CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(body, strlen(body), &obj, NULL), CP_OK);
        const char *s = NULL;
        size_t n = 0;
        int rc = jsonv_get_string(obj, "s", rows[i].max_chars, &s, &n);
        if (rc != rows[i].rc || (rc == CP_OK && n != rows[i].bytes))
            fprintf(stderr, "\n  row %zu (%s): rc %d len %zu\n", i, body, rc, n);
        CU_ASSERT_EQUAL(rc, rows[i].rc);
        if (rows[i].rc == CP_OK) {
            CU_ASSERT_EQUAL(n, rows[i].bytes);
            CU_ASSERT_PTR_NOT_NULL(s);
            if (s != NULL)
                CU_ASSERT_EQUAL(strlen(s), rows[i].bytes);
        } else {
            CU_ASSERT_PTR_NULL(s);
        }
        json_object_put(obj);
    }
    /* len may be NULL. */
    struct json_object *obj = NULL;
    const char *s = NULL;
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object("{\"s\":\"x\"}", 9, &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_get_string(obj, "s", 1, &s, NULL), CP_OK);
    CU_ASSERT_STRING_EQUAL(s, "x");
    json_object_put(obj);
}

static void jsonv_get_string_enforces_max_chars_exactly(void)
{
    /* CP_TITLE_MAX_CHARS three-byte characters: 600 bytes, at the limit. */
    char body[4 * CP_TITLE_MAX_CHARS + 32];
    size_t len = 0;
    len += (size_t)snprintf(body, sizeof body, "{\"t\":\"");
    for (int i = 0; i < CP_TITLE_MAX_CHARS; i++) {
        memcpy(body + len, "\xea\xb0\x80", 3); /* U+AC00 */
        len += 3;
    }
    len += (size_t)snprintf(body + len, sizeof body - len, "\"}");
    struct json_object *obj = NULL;
    const char *s;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(body, len, &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_get_string(obj, "t", CP_TITLE_MAX_CHARS, &s, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 3 * CP_TITLE_MAX_CHARS);
    CU_ASSERT_EQUAL(jsonv_get_string(obj, "t", CP_TITLE_MAX_CHARS - 1, &s, &n), CP_ERR_INVALID);
    json_object_put(obj);
}

static void jsonv_only_keys_reports_the_unknown_member(void)
{
    static const char *const allowed[] = {"couponId", "userId", NULL};
    struct json_object *obj = NULL;
    const char *unknown = NULL;
    const char *ok = "{\"userId\":1,\"couponId\":2}";
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(ok, strlen(ok), &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_only_keys(obj, allowed, &unknown), 1);
    CU_ASSERT_PTR_NULL(unknown);
    json_object_put(obj);
    const char *subset = "{\"userId\":1}";
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(subset, strlen(subset), &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_only_keys(obj, allowed, NULL), 1);
    json_object_put(obj);
    const char *extra = "{\"userId\":1,\"userid\":2}";
    CU_ASSERT_EQUAL_FATAL(jsonv_parse_object(extra, strlen(extra), &obj, NULL), CP_OK);
    CU_ASSERT_EQUAL(jsonv_only_keys(obj, allowed, &unknown), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(unknown);
    CU_ASSERT_STRING_EQUAL(unknown, "userid");
    CU_ASSERT_EQUAL(jsonv_only_keys(obj, allowed, NULL), 0);
    json_object_put(obj);
}

static void jsonv_utf8_chars_validates_and_counts(void)
{
    static const struct {
        const char *s;
        int rc;
        size_t chars;
    } rows[] = {
        {"", CP_OK, 0},
        {"abc", CP_OK, 3},
        {"\xc2\x80", CP_OK, 1},         /* U+0080, smallest 2-byte */
        {"\xdf\xbf", CP_OK, 1},         /* U+07FF */
        {"\xe0\xa0\x80", CP_OK, 1},     /* U+0800, smallest 3-byte */
        {"\xed\x9f\xbf", CP_OK, 1},     /* U+D7FF, just below surrogates */
        {"\xee\x80\x80", CP_OK, 1},     /* U+E000, just above */
        {"\xef\xbf\xbf", CP_OK, 1},     /* U+FFFF */
        {"\xf0\x90\x80\x80", CP_OK, 1}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", CP_OK, 1}, /* U+10FFFF, the last */
        {"a\xc3\xa9z\xf0\x9f\x98\x80", CP_OK, 4},
        {"\xc0\x80", CP_ERR_INVALID, 0}, /* overlong NUL */
        {"\xc1\xbf", CP_ERR_INVALID, 0},
        {"\xe0\x9f\xbf", CP_ERR_INVALID, 0},     /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", CP_ERR_INVALID, 0}, /* overlong U+FFFF */
        {"\xed\xa0\x80", CP_ERR_INVALID, 0},     /* U+D800 */
        {"\xed\xb0\x80", CP_ERR_INVALID, 0},     /* U+DC00 */
        {"\xf4\x90\x80\x80", CP_ERR_INVALID, 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", CP_ERR_INVALID, 0},
        {"\xc3", CP_ERR_INVALID, 0}, /* truncated */
        {"\xe2\x82", CP_ERR_INVALID, 0},
        {"\xf0\x9f\x98", CP_ERR_INVALID, 0},
        {"\xc3\x28", CP_ERR_INVALID, 0}, /* bad continuation */
        {"\xe2\x28\xa1", CP_ERR_INVALID, 0},
        {"\x80", CP_ERR_INVALID, 0},
        {"\xbf", CP_ERR_INVALID, 0},
        {"\xf8\x88\x80\x80\x80", CP_ERR_INVALID, 0},
        {"\xfc\x84\x80\x80\x80\x80", CP_ERR_INVALID, 0},
        {"\xfe", CP_ERR_INVALID, 0},
        {"\xff", CP_ERR_INVALID, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t chars = 999;
        int rc = jsonv_utf8_chars(rows[i].s, strlen(rows[i].s), &chars);
        if (rc != rows[i].rc || (rc == CP_OK && chars != rows[i].chars))
            fprintf(stderr, "\n  row %zu: rc %d chars %zu\n", i, rc, chars);
        CU_ASSERT_EQUAL(rc, rows[i].rc);
        if (rows[i].rc == CP_OK)
            CU_ASSERT_EQUAL(chars, rows[i].chars);
    }
    /* Only `len` bytes are read: a 2-byte sequence cut by len is truncated. */
    size_t chars;
    CU_ASSERT_EQUAL(jsonv_utf8_chars("a\xc3\xa9", 2, &chars), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(jsonv_utf8_chars("a\xc3\xa9", 3, &chars), CP_OK);
    CU_ASSERT_EQUAL(chars, 2);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"jsonv_body_table", jsonv_body_table},
        {"jsonv_member_count_is_limited", jsonv_member_count_is_limited},
        {"jsonv_reason_may_be_null", jsonv_reason_may_be_null},
        {"jsonv_get_id_accepts_exactly_positive_int64",
         jsonv_get_id_accepts_exactly_positive_int64},
        {"jsonv_get_int_range_checks_both_bounds", jsonv_get_int_range_checks_both_bounds},
        {"jsonv_get_string_counts_characters_not_bytes",
         jsonv_get_string_counts_characters_not_bytes},
        {"jsonv_get_string_enforces_max_chars_exactly",
         jsonv_get_string_enforces_max_chars_exactly},
        {"jsonv_only_keys_reports_the_unknown_member", jsonv_only_keys_reports_the_unknown_member},
        {"jsonv_utf8_chars_validates_and_counts", jsonv_utf8_chars_validates_and_counts},
    };
    int status = unit_run_suite("jsonv", NULL, UNIT_CASES(tests));
    fprintf(stdout, "jsonv body table: %zu rows\n", sizeof body_rows / sizeof body_rows[0]);
    return status;
}
