/*
 * clock.h - the monotonic clock and sleeping, for intervals, deadlines and
 * back-offs (never for timestamps that leave the process: timefmt_now_ms is the
 * wall clock). One copy instead of one per module. Thread-safe.
 */
#ifndef COUPON_CLOCK_H
#define COUPON_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_ms(void);
/* Microseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_us(void);
/* Sleeps ms milliseconds (<= 0: returns at once), resuming after a signal. */
void clock_sleep_ms(int64_t ms);

#endif
