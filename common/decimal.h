/*
 * decimal.h - strict decimal integers from untrusted text (path segments, Redis
 * values, Kafka keys): digits only, no sign, no spaces, no leading zero, at most
 * INT64_MAX. The one parser every module uses, so "01", "+1" or "1 " are refused
 * the same way everywhere. Pure; thread-safe.
 */
#ifndef COUPON_DECIMAL_H
#define COUPON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* An id: 1..INT64_MAX. CP_OK, or CP_ERR_INVALID (out untouched). */
int decimal_parse_id(const char *s, size_t len, int64_t *out);

/* 0..INT64_MAX ("0" itself allowed). CP_OK, or CP_ERR_INVALID (out untouched). */
int decimal_parse_u63(const char *s, size_t len, int64_t *out);

#endif
