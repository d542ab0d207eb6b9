/*
 * timefmt.h - RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).
 *
 * Output is always UTC with millisecond precision: 2026-11-24T19:31:41.123Z.
 * Input accepts any RFC 3339 date-time (fraction optional, 'Z' or +hh:mm/-hh:mm
 * offset, 'T' or 't'); anything else is CP_ERR_INVALID. Both directions are limited
 * to the instants RFC 3339 can write in UTC (TIMEFMT_MIN_MS..TIMEFMT_MAX_MS), so every
 * parsed time formats and every formatted time parses. Pure functions, thread-safe.
 */
#ifndef COUPON_TIMEFMT_H
#define COUPON_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN    25                  /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */
#define TIMEFMT_MIN_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define TIMEFMT_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/* Writes the timestamp into buf (at least TIMEFMT_LEN bytes). Returns its length. */
int timefmt_format_ms(int64_t epoch_ms, char *buf, size_t cap);
/* Parses exactly `len` bytes of text. */
int timefmt_parse_ms(const char *text, size_t len, int64_t *epoch_ms);
/* Current wall-clock time in milliseconds. */
int64_t timefmt_now_ms(void);

#endif
