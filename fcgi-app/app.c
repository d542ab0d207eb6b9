#include "first.h"

#include "app.h"

#include <inttypes.h>
#include <stdio.h>

#include "cp_err.h"
#include "db.h"
#include "log.h"
#include "rkey.h"

void app_cache_configs(const struct cp_conf *conf, struct lru_config *l1, struct l2_config *l2)
{
    *l1 = (struct lru_config){.capacity = (size_t)conf->l1_capacity,
                              .ttl_ms = (int64_t)conf->l1_ttl_ms};
    *l2 = (struct l2_config){.ttl_ms = (int64_t)conf->l2_ttl_s * 1000,
                             .negative_ttl_ms = (int64_t)conf->l2_negative_ttl_s * 1000,
                             .lock_ttl_ms = 2000,
                             .wait_step_ms = 5};
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
    static const enum app_l1_kind kinds[] = {APP_L1_DOC, APP_L1_STOCK, APP_L1_FLAG};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char key[32];
        int n = app_l1_key(key, sizeof key, kinds[i], coupon_id);
        if (n > 0)
            (void)lru_delete(app->l1, key, (size_t)n);
    }
    if (app->holders != NULL)
        holders_forget(app->holders, coupon_id);
}

void app_publish_invalidation(struct app_thread *t, int64_t coupon_id)
{
    app_l1_forget_coupon(t->app, coupon_id);
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return;
    /* Any node: PUBLISH reaches every node of a cluster (rcli.h). */
    redisReply *reply = rcli_command(r, "PUBLISH " RKEY_INVALIDATE_CHANNEL " %" PRId64, coupon_id);
    if (reply == NULL)
        app_redis_failed(t);
    else
        freeReplyObject(reply);
}
