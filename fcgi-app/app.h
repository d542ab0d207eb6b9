/*
 * app.h - the state of one worker process (struct app) and of one request
 * thread (struct app_thread), and the lazily (re)connected per-thread
 * dependency handles.
 *
 * Ownership: struct app is built after fork (app_new, called by worker.c) and
 * shared read-mostly by the process's threads (producer, L1, L2 and metrics are
 * thread-safe themselves). Each struct app_thread (app_thread_new) belongs to
 * exactly one thread: its Redis client (common/rcli: one server or every node of
 * a cluster), its script SHAs (script.h) and its MariaDB client (common/db) are
 * never shared, so no lock is taken on the hot path. Both clients reconnect
 * themselves after an I/O error, at most once per back-off interval, so a dead
 * server costs one bounded connect attempt rather than one per request.
 */
#ifndef COUPON_APP_H
#define COUPON_APP_H

#include <stdint.h>

#include "conf.h"
#include "cp_limits.h"
#include "db.h"
#include "holders.h"
#include "http.h"
#include "l2.h"
#include "lru.h"
#include "metrics.h"
#include "producer.h"
#include "ratelimit.h"
#include "rcli.h"
#include "series.h"
#include "settle.h"
#include "stock.h"

struct auth;
struct defer;
struct script_cache;

struct app {
    const struct cp_conf *conf;
    struct auth *auth; /* who is asking (auth.h): identities, admin, per-user limits */
    struct producer *producer;
    struct settler *settler; /* issue_ack=redis only; NULL otherwise */
    struct lru *l1;
    struct holders *holders; /* sold-out holder snapshots; issue_ack=redis only, else NULL */
    struct l2 *l2;
    struct metrics *metrics;
    struct series *series; /* the console's per-second ring (series.h) */
    struct stock *stock;   /* the host's issued counts (stock.h), not owned; NULL: none */
};

struct app_thread {
    struct app *app;
    struct rcli *redis;           /* opened on first use (no I/O): see app_redis */
    struct db *db;                /* opened with the thread (no I/O): see app_db */
    struct script_cache *scripts; /* this thread's script SHAs (script.h) */
    struct defer *defer;          /* the worker loop's parking (defer.h); NULL: none */
    char body_buf[CP_MAX_BODY_BYTES + 1];
    char resp_buf[HTTP_RESPONSE_BODY_MAX];
};

/* Builds a worker process's state from the configuration: metrics, auth, caches,
 * the settler and holder snapshots (issue_ack=redis), the producer. rl: the host's
 * per-user limits (NULL = none); stock: the host's issued counts (NULL = every read
 * asks Redis). NULL on failure, logged. */
struct app *app_new(const struct cp_conf *conf, struct ratelimit *rl, struct stock *stock);
/* The producer first (its last flush still reports to the settler); NULL: no-op. */
void app_free(struct app *app);

/* A request thread's state; no I/O (connections open on first use). NULL when out
 * of memory. t->defer is the caller's to set. */
struct app_thread *app_thread_new(struct app *app);
/* Closes its connections, frees its SHAs; NULL: no-op. Not t->defer. */
void app_thread_free(struct app_thread *t);

/* Returns the thread's Redis client (NULL only when it could not be allocated), its
 * connections the server closed already dropped. Whether Redis is reachable shows in
 * the commands: NULL at once while a node is down (rcli.h). */
struct rcli *app_redis(struct app_thread *t);
/* After a NULL or unexpected reply: counted in metrics, and rcli_reset. */
void app_redis_failed(struct app_thread *t);
/* Returns the thread's MariaDB client, its connection dropped first when the server
 * closed it. Whether MariaDB is reachable shows in the calls (db.h). */
struct db *app_db(struct app_thread *t);
/* After a MariaDB call failed with rc: counted in metrics unless rc is an answer of
 * the data (not found, conflict, a refused value). */
void app_db_failed(struct app_thread *t, int rc);

/* The L1 and L2 settings from the configuration. Products of configuration values are
 * computed in 64 bits: the allowed l2_ttl_s (30 days) overflows an int in ms. */
void app_cache_configs(const struct cp_conf *conf, struct lru_config *l1, struct l2_config *l2);

/* Publishes "coupon changed" so every process drops its L1 entries for it. */
void app_publish_invalidation(struct app_thread *t, int64_t coupon_id);

/* The kinds of L1 entry one coupon has: its document, the issue path's fast-path flag
 * (issue_decide.h's enum issue_flag) and its checkout terms (read_coupon_terms). Its live
 * stock is the host's (stock.h). */
enum app_l1_kind { APP_L1_DOC = 'd', APP_L1_FLAG = 'f', APP_L1_TERMS = 't' };

/* The L1 key of one of a coupon's entries; returns its length or CP_ERR_LIMIT. */
int app_l1_key(char *buf, size_t cap, enum app_l1_kind kind, int64_t coupon_id);
/* Drops a coupon's L1 entries, its holder snapshot and its stock entry (an admin
 * changed it). */
void app_l1_forget_coupon(struct app *app, int64_t coupon_id);

#endif
