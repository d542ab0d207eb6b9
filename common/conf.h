/*
 * conf.h - configuration shared by coupon-fcgi, coupon-consumer and coupon-admin.
 *
 * One file format for all programs: `key = value` lines, `#` comments, blank
 * lines ignored. Unknown keys are an error (a typo must not silently fall back
 * to a default). After the file, every key can be overridden by the
 * environment variable COUPON_<KEY> (upper case), e.g. COUPON_REDIS_PORT.
 * Every key, its default and meaning is listed in conf.c's table and in the
 * README; conf_dump() prints them with secrets masked.
 *
 * The struct is plain data: load it once, then pass it (const) to modules.
 */
#ifndef COUPON_CONF_H
#define COUPON_CONF_H

#include <stdio.h>

#include "cp_limits.h"

/*
 * issue_ack: when a 201 is sent.
 *   REDIS - once lua/issue.lua recorded the claim and its pending (outbox) record;
 *           the Kafka event is produced off the request thread.
 *   KAFKA - once the broker acknowledged the event (acks=all).
 */
enum conf_issue_ack { CONF_ISSUE_ACK_REDIS, CONF_ISSUE_ACK_KAFKA };

/*
 * auth_mode: who is asking (fcgi-app/auth.h).
 *   JWT     - coupon-fcgi verifies `Authorization: Bearer <JWT>` against auth_jwks_file.
 *   GATEWAY - the web server authenticated the user and passes the id in the FastCGI
 *             parameter auth_gateway_param (never a client header).
 *   NONE    - no identity: the request names its user (benchmarks, local trials only).
 */
enum conf_auth_mode { CONF_AUTH_JWT, CONF_AUTH_GATEWAY, CONF_AUTH_NONE };

struct cp_conf {
    /* coupon-fcgi */
    char listen[CP_CONF_STR_MAX]; /* unix:/path or host:port; empty = fd 0 (spawn-fcgi) */
    int workers;                  /* pre-forked processes; 0 = number of CPUs */
    int threads;                  /* request threads per worker; 0 = auto (fcgi-app/worker.h) */
    int request_slots;            /* FastCGI connections per thread; 0 = auto (fcgi-app/worker.h) */
    char metrics_path[CP_CONF_STR_MAX]; /* shared-memory file for aggregated metrics */
    char admin_token[CP_CONF_STR_MAX];  /* secret; empty disables the admin API */
    int max_body_bytes;
    /* who is asking (issue 24) */
    int auth_mode;                            /* enum conf_auth_mode */
    char auth_jwks_file[CP_CONF_STR_MAX];     /* JWKS of the keys tokens are signed with */
    char auth_issuer[CP_CONF_STR_MAX];        /* the "iss" every token must carry */
    char auth_audience[CP_CONF_STR_MAX];      /* a value "aud" must hold */
    char auth_algorithms[CP_CONF_STR_MAX];    /* allowed JWS algorithms, e.g. RS256,ES256 */
    char auth_user_claim[CP_CONF_STR_MAX];    /* the claim holding the user id */
    int auth_leeway_s;                        /* clock skew allowed on exp/nbf */
    int auth_token_cache;                     /* verified tokens kept per worker; 0 = none */
    char auth_gateway_param[CP_CONF_STR_MAX]; /* FastCGI parameter of auth_mode=gateway */
    int ratelimit_issue_per_s;  /* claims per user and second, per host; 0 = no limit */
    int ratelimit_issue_burst;  /* claims one user may make at once */
    int ratelimit_redeem_per_s; /* redemption attempts per user and second; 0 = no limit */
    int ratelimit_redeem_burst;
    /* Redis */
    char redis_host[CP_CONF_STR_MAX];
    int redis_port;
    int redis_timeout_ms;
    char redis_cluster[CP_REDIS_CLUSTER_MAX]; /* seeds host:port,...; empty = one server */
    int redis_wait_replicas;   /* issue path: WAIT for this many replicas; 0 = no WAIT */
    int redis_wait_timeout_ms; /* WAIT's time-out; below redis_timeout_ms */
    /* Kafka */
    char kafka_brokers[CP_CONF_STR_MAX];
    char kafka_topic[CP_CONF_STR_MAX];            /* coupon.issue */
    char kafka_issued_topic[CP_CONF_STR_MAX];     /* coupon.issued */
    char kafka_dlq_topic[CP_CONF_STR_MAX];        /* coupon.issue.dlq */
    char kafka_redemption_topic[CP_CONF_STR_MAX]; /* coupon.redemption (redeemed, cancelled) */
    int kafka_delivery_timeout_ms;
    int kafka_linger_ms;
    int kafka_async_linger_ms; /* issue_ack=redis: no request waits, so batch longer */
    int issue_ack;             /* enum conf_issue_ack: when the issue path answers 201 */
    int outbox_max_pending;    /* pending records one coupon may hold before 503 */
    /* MariaDB */
    char db_host[CP_CONF_STR_MAX];
    int db_port;
    char db_socket[CP_CONF_STR_MAX];
    char db_user[CP_CONF_STR_MAX];
    char db_password[CP_CONF_STR_MAX]; /* secret */
    char db_name[CP_CONF_STR_MAX];
    int db_timeout_ms;
    /* caches */
    int l1_capacity;
    int l1_ttl_ms;
    int l2_ttl_s;
    int l2_negative_ttl_s;
    int soldout_holders_max; /* issue_ack=redis: holders a sold-out snapshot may hold; 0 = none */
    /* coupon-consumer */
    char consumer_group[CP_CONF_STR_MAX];
    int consumer_batch_max;
    int consumer_batch_ms;
    int consumer_backoff_max_ms;
    int reconcile_after_s; /* re-produce PENDING issuances older than this */
    int relay_batch_max;   /* outbox rows the relay publishes per round */
    int relay_poll_ms;     /* relay's pause when the outbox is empty */
    /* webhooks (issue 27; docs/ARCHITECTURE.md, "Webhooks") */
    char webhook_allow_cidrs[CP_CONF_STR_MAX]; /* CIDRs exempt from the SSRF rules; "" = none */
    char webhook_ca_file[CP_CONF_STR_MAX];     /* CA bundle for receivers; "" = the system's */
    char webhook_group[CP_CONF_STR_MAX];       /* the dispatcher's Kafka consumer group */
    int webhook_connect_timeout_ms;
    int webhook_timeout_ms;     /* one attempt, connect to last byte */
    int webhook_retry_base_ms;  /* the first retry's delay; doubled per attempt, jittered */
    int webhook_retry_max_ms;   /* the longest delay between attempts */
    int webhook_retry_window_s; /* then the delivery is failed (kept, redeliverable) */
    int webhook_poll_ms;        /* the dispatcher's pause when nothing is due */
    /* coupon-fcgi and coupon-consumer */
    char code_secret[CP_CONF_STR_MAX]; /* secret: MAC key of the issuance codes */
    /* all */
    char log_level[16];
};

/* One host:port of a list such as redis_cluster. */
struct conf_endpoint {
    char host[CP_REDIS_HOST_MAX];
    int port;
};

/*
 * Parses "host:port,host:port,..." (redis_cluster; blanks around entries allowed, an
 * IPv6 address in brackets) into out[0..*n), at most `max` entries; "" gives none.
 * CP_ERR_INVALID with the reason in errbuf for an empty entry, a host of other
 * characters or too long, a port outside 1..65535, or more than `max` entries. The one
 * parser of the list: conf validates the key with it, rcli takes its seeds from it.
 */
int conf_endpoints_parse(const char *text, struct conf_endpoint *out, size_t max, size_t *n,
                         char *errbuf, size_t errlen);

/* Fills every field with its default. */
void conf_defaults(struct cp_conf *conf);

/*
 * Loads `path` (NULL = defaults only) then applies COUPON_* environment
 * overrides. On failure returns CP_ERR_INVALID / CP_ERR_SYSTEM and writes a
 * message naming the file, line and key into errbuf.
 */
int conf_load(struct cp_conf *conf, const char *path, char *errbuf, size_t errlen);

/* Sets one key from text (same validation as the file). */
int conf_set(struct cp_conf *conf, const char *key, const char *value, char *errbuf, size_t errlen);

/* Writes every key = value, secrets masked, to `out` (for --print-config). */
void conf_dump(const struct cp_conf *conf, FILE *out);

#endif
