/*
 * dispatch.h - the webhook dispatcher of coupon-consumer (issue 27; docs/ARCHITECTURE.md,
 * "Webhooks"): one thread that turns downstream events into signed HTTP deliveries.
 *
 * 1. Fan-out, in every consumer: its own Kafka consumer (group webhook_group) reads
 *    coupon.issued and coupon.redemption; each event becomes one webhook_delivery row per
 *    enabled endpoint subscribed to its type (common/whstore: INSERT IGNORE on (endpoint,
 *    event), so a redelivered message creates nothing twice). Offsets are committed only
 *    after the rows of everything consumed are written: a crash means the events are
 *    read again, never lost.
 * 2. Delivery, in one consumer at a time (the MariaDB named lock
 *    "coupon_webhook_dispatch", leader.h): due deliveries (common/whstore: per endpoint
 *    and coupon only the oldest pending event, so one coupon's events reach an endpoint
 *    in order) are sent with libcurl's multi interface, at most DISPATCH_PER_ENDPOINT in
 *    flight per endpoint and DISPATCH_INFLIGHT in all: a slow or dead endpoint holds its
 *    own slots only. Each attempt re-resolves the host, checks every address against the
 *    SSRF rules (common/whurl) and connects to exactly the checked one (CURLOPT_RESOLVE);
 *    redirects are not followed, the response body is discarded, TLS is verified
 *    (webhook_ca_file). 2xx: delivered. Else retried after webhook_retry_base_ms doubled
 *    per attempt (capped at webhook_retry_max_ms, 50..100 % jitter) until
 *    webhook_retry_window_s passed, then failed (kept, redeliverable).
 * Headers per Standard Webhooks (common/whsig): webhook-id = the event id (the same on
 * every attempt), webhook-timestamp, webhook-signature (two during a rotation).
 *
 * dispatch_start/dispatch_stop from the main thread; dispatch_get_stats from any thread.
 */
#ifndef COUPON_DISPATCH_H
#define COUPON_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct dispatcher;

struct dispatch_stats {
    uint64_t created;    /* delivery rows written */
    uint64_t delivered;  /* deliveries answered 2xx */
    uint64_t retried;    /* attempts that failed and will be tried again */
    uint64_t failed;     /* deliveries given up on (the window passed) */
    uint64_t latency_ms; /* summed over delivered: from the row's creation to the 2xx */
    uint64_t oldest_pending_s;
    int leader;
};

struct dispatcher *dispatch_start(const struct cp_conf *conf, char *errbuf, size_t errlen);
void dispatch_stop(struct dispatcher *d);
void dispatch_get_stats(struct dispatcher *d, struct dispatch_stats *out);

#endif
