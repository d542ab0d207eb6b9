/*
 * fuzz_jsonv.c - libFuzzer target for common/jsonv, the strict parser of every
 * untrusted request body: jsonv_parse_object() on the raw bytes, then every
 * getter on every member it accepted. Besides crashes and sanitizer reports it
 * checks the parser's promises and aborts when one is broken:
 *   - an accepted body is valid UTF-8 with no NUL, an object of at most
 *     CP_MAX_JSON_KEYS members;
 *   - a rejected body leaves *out NULL and names a reason;
 *   - jsonv_get_id() only ever yields 1..INT64_MAX, jsonv_get_int_range() only
 *     values inside the range, jsonv_get_string() only valid UTF-8 of
 *     1..max_chars characters without NUL.
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "jsonv.h"

static void check_member(struct json_object *obj, const char *key)
{
    int64_t v = 0;
    int rc = jsonv_get_id(obj, key, &v);
    CHECK(rc == CP_OK || rc == CP_ERR_INVALID || rc == CP_ERR_NOT_FOUND);
    if (rc == CP_OK)
        CHECK(v >= 1);

    rc = jsonv_get_int_range(obj, key, -1000, 1000, &v);
    CHECK(rc == CP_OK || rc == CP_ERR_INVALID || rc == CP_ERR_NOT_FOUND);
    if (rc == CP_OK)
        CHECK(v >= -1000 && v <= 1000);

    rc = jsonv_get_int_range(obj, key, INT64_MIN, INT64_MAX, &v);
    CHECK(rc == CP_OK || rc == CP_ERR_INVALID || rc == CP_ERR_NOT_FOUND);

    static const size_t limits[] = {1, 8, CP_TITLE_MAX_CHARS};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        const char *s = NULL;
        size_t len = 0, chars = 0;
        rc = jsonv_get_string(obj, key, limits[i], &s, &len);
        CHECK(rc == CP_OK || rc == CP_ERR_INVALID || rc == CP_ERR_NOT_FOUND);
        if (rc != CP_OK)
            continue;
        CHECK(s != NULL && strlen(s) == len);
        CHECK(jsonv_utf8_chars(s, len, &chars) == CP_OK);
        CHECK(chars >= 1 && chars <= limits[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct json_object *obj = NULL;
    const char *why = NULL;
    size_t chars = 0;

    (void)jsonv_utf8_chars(buf, size, &chars);

    int rc = jsonv_parse_object(buf, size, &obj, &why);
    if (rc != CP_OK) {
        CHECK(obj == NULL && why != NULL);
        CHECK(rc == CP_ERR_INVALID || rc == CP_ERR_LIMIT || rc == CP_ERR_NOMEM);
        return 0;
    }
    CHECK(obj != NULL && why == NULL);
    CHECK(json_object_is_type(obj, json_type_object));
    CHECK(json_object_object_length(obj) <= CP_MAX_JSON_KEYS);
    CHECK(memchr(buf, '\0', size) == NULL);
    CHECK(jsonv_utf8_chars(buf, size, &chars) == CP_OK);

    /* The fixed names the handlers ask for, then every member actually present. */
    static const char *const fixed[] = {"userId", "couponId", "title", "totalQuantity", NULL};
    for (size_t i = 0; fixed[i] != NULL; i++)
        check_member(obj, fixed[i]);
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        check_member(obj, key);
    }
    const char *unknown = NULL;
    if (!jsonv_only_keys(obj, fixed, &unknown))
        CHECK(unknown != NULL);
    json_object_put(obj);
    return 0;
}
