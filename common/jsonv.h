/*
 * jsonv.h - strict parsing of untrusted JSON request bodies (json-c underneath).
 *
 * Request documents are small flat objects. jsonv_parse_object() rejects, before
 * any field is read: empty input, NUL bytes, invalid UTF-8, nesting deeper than
 * CP_MAX_JSON_DEPTH, more than CP_MAX_JSON_KEYS members, duplicate member names
 * (json-c would silently keep the last one), anything but an object at the top,
 * and trailing bytes other than whitespace. Field getters then check types and
 * ranges exactly (an id is a JSON integer in 1..2^63-1; 1.0, "1" and 2^63 are not).
 * Stateless; thread-safe.
 */
#ifndef COUPON_JSONV_H
#define COUPON_JSONV_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* On success *out holds a new reference the caller puts. */
int jsonv_parse_object(const char *buf, size_t len, struct json_object **out, const char **reason);

/* A positive 64-bit id. CP_ERR_NOT_FOUND if the member is absent, CP_ERR_INVALID
 * if it is present but not an integer in range. */
int jsonv_get_id(struct json_object *obj, const char *key, int64_t *out);

/* Any JSON integer in [min, max]; same absent/invalid convention. INT64_MIN itself
 * is always rejected: json-c saturates smaller numbers to it without telling. */
int jsonv_get_int_range(struct json_object *obj, const char *key, int64_t min, int64_t max,
                        int64_t *out);

/* A string member of 1..max_chars Unicode characters (not bytes). Pointer is owned
 * by obj. Same absent/invalid convention; JSON null counts as absent. */
int jsonv_get_string(struct json_object *obj, const char *key, size_t max_chars, const char **out,
                     size_t *len);

/* Returns 1 if every member of obj is in the NULL-terminated list `allowed`. */
int jsonv_only_keys(struct json_object *obj, const char *const *allowed, const char **unknown);

/* Counts Unicode code points of valid UTF-8; returns CP_ERR_INVALID if not valid. */
int jsonv_utf8_chars(const char *s, size_t len, size_t *chars);

#endif
