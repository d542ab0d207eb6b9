#include "first.h"

#include "app.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cp_err.h"
#include "credis.h"
#include "db.h"
#include "log.h"
#include "script.h"

void app_cache_configs(const struct cp_conf *conf, struct lru_config *l1, struct l2_config *l2)
{
    *l1 = (struct lru_config){.capacity = (size_t)conf->l1_capacity,
                              .ttl_ms = (int64_t)conf->l1_ttl_ms};
    *l2 = (struct l2_config){.ttl_ms = (int64_t)conf->l2_ttl_s * 1000,
                             .negative_ttl_ms = (int64_t)conf->l2_negative_ttl_s * 1000,
                             .lock_ttl_ms = 2000,
                             .wait_step_ms = 5};
}

/* Everything issue_ack=redis adds: the settler, and the holder snapshots. */
static int app_new_redis_ack(struct app *app, const struct cp_conf *conf)
{
    app->settler = settler_new(conf, app->metrics);
    if (app->settler == NULL) {
        log_error("worker start failed: cannot start the pending-record settler");
        return CP_ERR_NOMEM;
    }
    /* Only here: with issue_ack=kafka a claim can be rolled back after a sell-out,
     * and a snapshot could then call a user a holder who no longer is one. */
    if (conf->soldout_holders_max > 0) {
        app->holders = holders_new((size_t)conf->soldout_holders_max);
        if (app->holders == NULL) {
            log_error("worker start failed: out of memory for the holder snapshots");
            return CP_ERR_NOMEM;
        }
    }
    return CP_OK;
}

struct app *app_new(const struct cp_conf *conf, struct ratelimit *rl, struct stock *stock)
{
    char err[512];
    struct app *app = calloc(1, sizeof *app);
    if (app == NULL) {
        log_error("worker start failed: out of memory");
        return NULL;
    }
    app->conf = conf;
    app->stock = stock;
    app->metrics = metrics_open(conf->metrics_path, 0, err, sizeof err);
    if (app->metrics == NULL) {
        log_error("%s", err);
        goto fail;
    }
    app->auth = auth_new(conf, app->metrics, rl, err, sizeof err);
    if (app->auth == NULL) {
        log_error("worker start failed: %s", err);
        goto fail;
    }
    /* The console's ring (the master samples it); a worker serves without it. */
    app->series = series_open(conf->metrics_path, 0, err, sizeof err);
    if (app->series == NULL)
        log_warn("%s; the console's time series stay empty", err);
    struct lru_config lc;
    struct l2_config l2c;
    app_cache_configs(conf, &lc, &l2c);
    app->l1 = lru_new(&lc);
    app->l2 = l2_new(&l2c, &l2_redis_ops);
    if (app->l1 == NULL || app->l2 == NULL) {
        log_error("worker start failed: out of memory for the caches");
        goto fail;
    }
    if (conf->issue_ack == CONF_ISSUE_ACK_REDIS && app_new_redis_ack(app, conf) != CP_OK)
        goto fail;
    app->producer = producer_new(conf, app->settler != NULL ? settler_on_report : NULL,
                                 app->settler, err, sizeof err);
    if (app->producer == NULL) {
        log_error("worker start failed: %s", err);
        goto fail;
    }
    return app;
fail:
    app_free(app);
    return NULL;
}

void app_free(struct app *app)
{
    if (app == NULL)
        return;
    /* The producer first: its final flush still reports to the settler. */
    producer_free(app->producer);
    settler_free(app->settler);
    holders_free(app->holders);
    l2_free(app->l2);
    lru_free(app->l1);
    auth_free(app->auth);
    series_close(app->series);
    metrics_close(app->metrics);
    free(app);
}

struct app_thread *app_thread_new(struct app *app)
{
    struct app_thread *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->app = app;
    char err[256];
    t->scripts = script_cache_new(app->metrics);
    if (t->scripts == NULL || db_open(app->conf, &t->db, err, sizeof err) != CP_OK) {
        log_error("starting a request thread: %s", t->scripts == NULL ? "out of memory" : err);
        app_thread_free(t);
        return NULL;
    }
    return t;
}

void app_thread_free(struct app_thread *t)
{
    if (t == NULL)
        return;
    rcli_free(t->redis);
    db_free(t->db);
    script_cache_free(t->scripts);
    free(t);
}

struct rcli *app_redis(struct app_thread *t)
{
    if (t->redis == NULL) {
        char err[256];
        if (rcli_open(t->app->conf, &t->redis, err, sizeof err) != CP_OK) {
            log_error("%s", err);
            return NULL;
        }
    }
    rcli_drop_closed(t->redis);
    return t->redis;
}

/* rcli has logged what failed (a lost connection, a refused connect) once, where it
 * happened; a request answered 503 meanwhile is counted here, not logged again. */
void app_redis_failed(struct app_thread *t)
{
    metrics_add(t->app->metrics, M_REDIS_ERRORS, 1);
    if (t->redis != NULL)
        rcli_reset(t->redis);
}

struct db *app_db(struct app_thread *t)
{
    db_drop_closed(t->db);
    return t->db;
}

/* db has logged what failed, once, where it happened. */
void app_db_failed(struct app_thread *t, int rc)
{
    if (rc == CP_ERR_UNAVAILABLE || rc == CP_ERR_TIMEOUT)
        metrics_add(t->app->metrics, M_DB_ERRORS, 1);
}

int app_l1_key(char *buf, size_t cap, enum app_l1_kind kind, int64_t coupon_id)
{
    int n = snprintf(buf, cap, "%c:%" PRId64, (char)kind, coupon_id);
    return (n < 0 || (size_t)n >= cap) ? CP_ERR_LIMIT : n;
}

void app_l1_forget_coupon(struct app *app, int64_t coupon_id)
{
    static const enum app_l1_kind kinds[] = {APP_L1_DOC, APP_L1_FLAG, APP_L1_TERMS};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char key[32];
        int n = app_l1_key(key, sizeof key, kinds[i], coupon_id);
        if (n > 0)
            (void)lru_delete(app->l1, key, (size_t)n);
    }
    if (app->holders != NULL)
        holders_forget(app->holders, coupon_id);
    stock_forget(app->stock, coupon_id);
}

void app_publish_invalidation(struct app_thread *t, int64_t coupon_id)
{
    app_l1_forget_coupon(t->app, coupon_id);
    struct rcli *r = app_redis(t);
    if (r != NULL && credis_announce_change(r, coupon_id) != CP_OK)
        app_redis_failed(t);
}
