/*
 * cp_limits.h - every hard limit on untrusted input (request sizes, string
 * lengths, page sizes, event sizes, configuration text) and the sizes shared by
 * several modules, in one place. Parsers enforce these before using a byte of
 * input. Constants private to one module (its queue length, poll interval,
 * timeouts) are named at the top of that module's .c instead.
 */
#ifndef COUPON_CP_LIMITS_H
#define COUPON_CP_LIMITS_H

/* HTTP request handling (the web server configs enforce the same or smaller). */
#define CP_MAX_BODY_BYTES   4096 /* request body; larger -> 413 */
#define CP_MAX_URI_BYTES    2048 /* REQUEST_URI incl. query string -> 414/400 */
#define CP_MAX_QUERY_BYTES  512  /* QUERY_STRING */
#define CP_MAX_HEADER_BYTES 4096 /* any single header value we read */
#define CP_MAX_JSON_DEPTH   4    /* request documents are flat objects */
#define CP_MAX_JSON_KEYS    32   /* members in one request object */

/* Coupon fields. */
#define CP_TITLE_MAX_CHARS       200
#define CP_CODE_MAX_CHARS        64
#define CP_DESCRIPTION_MAX_CHARS 2000
#define CP_DOC_MAX_BYTES         8192 /* one serialised coupon document */

/* Paging on the user's coupon list. */
#define CP_PAGE_LIMIT_MIN         1
#define CP_PAGE_LIMIT_MAX         100
#define CP_PAGE_LIMIT_DEFAULT     20
/* Paging on the console's campaign list (GET /api/admin/coupons): 50 rows of the
 * longest titles still fit one response buffer. */
#define CP_ADMIN_PAGE_LIMIT_MAX   50
/* The console's time series: 10 s .. the whole ring (fcgi-app/series.h). */
#define CP_SERIES_SECONDS_MIN     10
#define CP_SERIES_SECONDS_DEFAULT 120

/* Kafka events. */
#define CP_EVENT_MAX_BYTES 512
#define CP_EVENT_ID_HEX    32 /* 128-bit random id, hex */

/* Redemption (issue 13). */
#define CP_ORDER_ID_MAX_CHARS    64   /* orderId: 1..64 of [A-Za-z0-9._:-] */
#define CP_ISSUE_CODE_CHARS      12   /* a code per issuance: 12 Crockford base32 symbols */
#define CP_ISSUE_CODE_INPUT_MAX  32   /* a typed code, hyphens included, before normalising */
#define CP_USABLE_DAYS_MAX       3650 /* usableDays of a campaign: 1..3650 */
#define CP_CODE_SECRET_MIN_BYTES 16   /* code_secret: the MAC key of the codes */
#define CP_HOLD_TTL_MAX_S        900  /* a hold's ttlSeconds: 1..900 (issue 26) */

/* Transactional outbox (event_outbox) and its relay in coupon-consumer. */
#define CP_OUTBOX_PAYLOAD_MAX 1024 /* one outbox row's payload (VARBINARY(1024)) */
#define CP_OUTBOX_KEY_MAX     64   /* its message key */
#define CP_OUTBOX_TOPIC_MAX   64   /* its topic name */
#define CP_RELAY_BATCH_MAX    5000 /* rows the relay reads, publishes and deletes at once */

/* Webhooks (issue 27): an endpoint's URL and host, the allow-list's entries, the event
 * types one endpoint subscribes to, the deliveries one page lists, and the payload one
 * delivery carries (a downstream event wrapped in {"type","timestamp","data"}). */
#define CP_WEBHOOK_URL_MAX        512
#define CP_WEBHOOK_HOST_MAX       256 /* NUL included */
#define CP_WEBHOOK_CIDRS_MAX      16
#define CP_WEBHOOK_EVENTS_MAX     8
#define CP_WEBHOOK_LIST_MAX       100 /* endpoints listed at once */
#define CP_WEBHOOK_DELIVERIES_MAX 50  /* deliveries listed at once */
#define CP_WEBHOOK_PAYLOAD_MAX    2048

/* Consumer batching bounds (configuration is clamped to these). */
#define CP_BATCH_MAX_EVENTS   5000
/* Events one worker process may hold unacknowledged in librdkafka's queue
 * (issue_ack=redis: Kafka down or slow); above it the issue path answers 503. */
#define CP_PRODUCER_QUEUE_MAX 200000

/* Bearer tokens (common/jwtv): a JWT larger than CP_MAX_TOKEN_BYTES is refused before
 * any decoding (an RS256 token with a normal set of claims is ~700 bytes; the header
 * limit above still caps the whole Authorization line). The JWKS is read from a file of
 * at most CP_JWKS_MAX_BYTES holding at most CP_JWKS_MAX_KEYS keys, each named by a kid of
 * 1..CP_JWK_KID_MAX_CHARS characters. */
#define CP_MAX_TOKEN_BYTES   3072
#define CP_JWKS_MAX_KEYS     32
#define CP_JWKS_MAX_BYTES    65536
#define CP_JWK_KID_MAX_CHARS 64

/* Configuration file. */
#define CP_CONF_LINE_MAX 1024
#define CP_CONF_STR_MAX  256

/* Redis Cluster seeds (redis_cluster = host:port,...): the whole list, one host name or
 * address, and how many entries. */
#define CP_REDIS_CLUSTER_MAX 1024 /* the list's text, NUL included */
#define CP_REDIS_HOST_MAX    256  /* one host, NUL included */
#define CP_REDIS_SEEDS_MAX   16

#endif
