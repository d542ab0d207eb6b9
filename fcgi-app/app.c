#include "first.h"

#include "app.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "cp_err.h"
#include "db.h"
#include "log.h"
#include "rkey.h"

#define RECONNECT_INTERVAL_MS 250

void app_cache_configs(const struct cp_conf *conf, struct lru_config *l1, struct l2_config *l2)
{
    *l1 = (struct lru_config){.capacity = (size_t)conf->l1_capacity,
                              .ttl_ms = (int64_t)conf->l1_ttl_ms};
    *l2 = (struct l2_config){.ttl_ms = (int64_t)conf->l2_ttl_s * 1000,
                             .negative_ttl_ms = (int64_t)conf->l2_negative_ttl_s * 1000,
                             .lock_ttl_ms = 2000,
                             .wait_step_ms = 5};
}

/*
 * A connection the server closed (a restart) shows as readable or hung up while
 * idle between requests. Checking costs one poll(2) and saves the request that
 * would otherwise fail on it: a command is never sent on a dead socket. (Redis'
 * connections are checked by rcli, at most every 100 ms each.)
 */
static int connection_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) != 0;
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

MYSQL *app_db(struct app_thread *t)
{
    if (t->db != NULL && connection_closed((int)mysql_get_socket(t->db))) {
        log_info("mariadb connection closed by the server; reconnecting");
        mysql_close(t->db);
        t->db = NULL;
        t->db_retry_at_ms = 0;
    }
    if (t->db != NULL)
        return t->db;
    int64_t now = clock_mono_ms();
    if (now < t->db_retry_at_ms)
        return NULL;
    char err[512];
    if (db_connect(t->app->conf, &t->db, err, sizeof err) != CP_OK) {
        t->db_retry_at_ms = now + RECONNECT_INTERVAL_MS;
        metrics_add(t->app->metrics, M_DB_ERRORS, 1);
        log_warn("%s", err);
        return NULL;
    }
    return t->db;
}

void app_db_failed(struct app_thread *t)
{
    metrics_add(t->app->metrics, M_DB_ERRORS, 1);
    if (t->db != NULL) {
        log_warn("mariadb connection dropped: %s", mysql_error(t->db));
        mysql_close(t->db);
        t->db = NULL;
    }
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
