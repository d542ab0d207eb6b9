/*
 * series.h - the last minutes of the issue path, second by second, for the console.
 *
 * A file-backed shared mapping (<metrics_path>.series) beside the metrics one holds:
 *   - a campaign table of SERIES_CAMPAIGNS slots {coupon id, claims so far}: every
 *     worker adds one to its campaign's slot on each claim (a 201, or a 202 under
 *     issue_ack=kafka) with a relaxed atomic - an open-addressed probe from
 *     id % SERIES_CAMPAIGNS, a free slot taken by compare-and-swap;
 *   - a ring of SERIES_SECONDS samples, one per wall-clock second: the claims of each
 *     slot and the issue endpoints' answers by status (from metrics.c's counters, the
 *     same numbers /metrics shows) in that second.
 * One sampler writes the ring: the standalone master, once a second between signals
 * (series_sample). Readers (GET /api/admin/coupons/{id}/series) read the ring and
 * never ask a worker anything, whatever the number of workers.
 *
 * Invariants and costs: a ring entry is valid for second S when its `sec` word reads
 * S before and after its counts were read (the sampler stores `sec` last, with
 * release order, after zeroing it first). A slot whose campaign had no claim during
 * the whole ring window is released by the sampler (its ring column zeroed), so
 * the table follows the campaigns on sale; with more than SERIES_CAMPAIGNS campaigns
 * claiming within one window the extra ones are not tracked (series_read says so).
 * A claim racing with the release of its idle slot may be counted for the next
 * campaign that takes the slot: one claim, once per idle period. Under spawn-fcgi
 * there is no master, so nothing samples and the series stay empty.
 *
 * Thread- and process-safe: series_claim from any thread of any worker, series_sample
 * from the one sampler, series_read from anywhere.
 */
#ifndef COUPON_SERIES_H
#define COUPON_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define SERIES_SECONDS   300
#define SERIES_CAMPAIGNS 64
#define SERIES_STATUSES  24 /* status slots kept per second (metrics.c has fewer) */

struct series;

/* Maps <metrics_path>.series; create: truncate and zero (the master). NULL + errbuf on
 * failure. */
struct series *series_open(const char *metrics_path, int create, char *errbuf, size_t errlen);
void series_close(struct series *s);

/* One claim of coupon_id (a worker, on the issue path). */
void series_claim(struct series *s, int64_t coupon_id);

/* The sampler: closes the seconds up to now_sec - 1 with the claims and the issue
 * endpoints' answers (read from m) since the previous call. The first call only takes
 * a baseline. Only one process may call it. */
void series_sample(struct series *s, struct metrics *m, int64_t now_sec);

/* What a reader gets: `seconds` samples ending at `last_sec` (oldest first). */
struct series_view {
    int64_t last_sec; /* newest complete second, 0 when nothing was sampled yet */
    int seconds;
    int tracked; /* the campaign has a slot now (else claims are zeros) */
    uint32_t claims[SERIES_SECONDS];
    int nstatus;
    int status_code[SERIES_STATUSES]; /* 0 = any status metrics.c has no slot for */
    uint32_t answers[SERIES_STATUSES][SERIES_SECONDS];
};

/* Fills v with the last `seconds` (1..SERIES_SECONDS) seconds of coupon_id.
 * CP_ERR_INVALID for seconds out of range. */
int series_read(struct series *s, int64_t coupon_id, int seconds, struct series_view *v);

#endif
