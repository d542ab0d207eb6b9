/*
 * timefmt.h - RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).
 *
 * Output is always UTC with millisecond precision: 2026-11-24T19:31:41.123Z.
 * Input accepts any RFC 3339 date-time (fraction optional, 'Z' or +hh:mm/-hh:mm
 * offset, 'T' or 't'); anything else is CP_ERR_INVALID. Pure functions, thread-safe.
 */
#ifndef COUPON_TIMEFMT_H
#define COUPON_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN 25 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */

/* Writes the timestamp into buf (at least TIMEFMT_LEN bytes). Returns its length. */
int timefmt_format_ms(int64_t epoch_ms, char *buf, size_t cap);
/* Parses exactly `len` bytes of text. */
int timefmt_parse_ms(const char *text, size_t len, int64_t *epoch_ms);
/* Current wall-clock time in milliseconds. */
int64_t timefmt_now_ms(void);

#endif
