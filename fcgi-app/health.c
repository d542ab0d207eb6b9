/*
 * health.c - GET /api/health and GET /metrics.
 *
 * Health uses the calling thread's own connections (PING, db_ping; opened
 * only if the thread has none yet, as for any request) and the producer's broker
 * state, so polling it every second adds no connection per poll.
 * /metrics renders the shared-memory counters of all workers, then appends the
 * consumers' samples that each coupon-consumer keeps in Redis
 * (coupon:metrics:{consumers}:<instance>, rkey.h), labelled by instance. In a
 * cluster the PING goes to any node: Redis is up when the thread reaches one.
 */
#include "first.h"

#include <string.h>

#include "auth.h"
#include "cp_err.h"
#include "handlers.h"
#include "problem.h"
#include "rkey.h"

static int check_redis(struct app_thread *t, const char **why)
{
    struct rcli *r = app_redis(t);
    redisReply *reply = r != NULL ? rcli_command(r, "PING") : NULL;
    if (reply == NULL) {
        app_redis_failed(t);
        *why = "unreachable";
        return 0;
    }
    int ok = reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    *why = ok ? NULL : "unexpected PING reply";
    return ok;
}

static int check_db(struct app_thread *t, const char **why)
{
    struct db *db = app_db(t);
    int had_connection = db_session(db) != 0;
    int rc = db_ping(db);
    if (rc != CP_OK) {
        app_db_failed(t, rc);
        *why = had_connection ? "connection lost" : "unreachable";
        return 0;
    }
    *why = NULL;
    return 1;
}

static void component(struct http_response *resp, const char *name, int up, const char *why,
                      int last)
{
    (void)http_response_printf(resp, "\"%s\":{\"status\":\"%s\"", name, up ? "UP" : "DOWN");
    if (!up)
        (void)http_response_printf(resp, ",\"error\":\"%s\"", why ? why : "down");
    (void)http_response_printf(resp, "}%s", last ? "" : ",");
}

void health_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    const char *redis_why, *db_why;
    int redis_up = check_redis(t, &redis_why);
    int kafka_up = producer_is_up(t->app->producer);
    int db_up = check_db(t, &db_why);
    int all = redis_up && kafka_up && db_up;
    resp->status = all ? 200 : 503;
    (void)http_response_printf(resp, "{\"status\":\"%s\",\"components\":{", all ? "UP" : "DOWN");
    component(resp, "redis", redis_up, redis_why, 0);
    component(resp, "kafka", kafka_up, "no broker reachable", 0);
    component(resp, "mariadb", db_up, db_why, 1);
    /* Who is asking: an unauthenticated deployment says so wherever it is looked at. */
    const char *mode = auth_mode_name(t->app->auth);
    (void)http_response_printf(resp, "},\"auth\":{\"mode\":\"%s\"%s}}", mode,
                               strcmp(mode, "none") == 0
                                   ? ",\"warning\":\"UNAUTHENTICATED: any client acts as any "
                                     "user (auth_mode = none is for benchmarks and local trials "
                                     "only)\""
                                   : "");
    if (!all)
        http_response_header(resp, "Retry-After", "1");
}

/* Appends one consumer's hash as samples with an instance label. */
static void render_consumer(struct http_response *resp, const char *instance, const redisReply *h)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len > 128 ||
            v->len > 32)
            continue;
        const char *brace = memchr(k->str, '{', k->len);
        if (brace == NULL)
            (void)http_response_printf(resp, "%.*s{instance=\"%s\"} %.*s\n", (int)k->len, k->str,
                                       instance, (int)v->len, v->str);
        else
            (void)http_response_printf(
                resp, "%.*s{instance=\"%s\",%.*s %.*s\n", (int)(brace - k->str), k->str, instance,
                (int)(k->len - (size_t)(brace - k->str) - 1), brace + 1, (int)v->len, v->str);
    }
}

/*
 * Consumers register their instance name in the set RKEY_CONSUMERS_SET and
 * refresh a hash with a 15 s expiry; a member whose hash expired (the consumer is
 * gone) is removed here. A set, not KEYS/SCAN, so /metrics costs O(consumers), never
 * a walk over the keyspace.
 */
static void render_consumers(struct app_thread *t, struct http_response *resp)
{
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return;
    redisReply *members = rcli_command(r, "SMEMBERS " RKEY_CONSUMERS_SET);
    if (members == NULL) {
        app_redis_failed(t);
        return;
    }
    int header = 0;
    for (size_t i = 0; members->type == REDIS_REPLY_ARRAY && i < members->elements && i < 64; i++) {
        const redisReply *m = members->element[i];
        if (m->type != REDIS_REPLY_STRING || m->len > RKEY_INSTANCE_MAX ||
            memchr(m->str, '"', m->len) || memchr(m->str, '\\', m->len) ||
            memchr(m->str, '\n', m->len))
            continue; /* would break the label syntax */
        char key[RKEY_CONSUMER_KEY_MAX];
        int klen = rkey_consumer_metrics(key, sizeof key, m->str, m->len);
        redisReply *h = klen < 0 ? NULL : rcli_command(r, "HGETALL %b", key, (size_t)klen);
        if (h == NULL) {
            app_redis_failed(t);
            break;
        }
        if (h->type == REDIS_REPLY_ARRAY && h->elements == 0) {
            redisReply *gone = rcli_command(r, "SREM " RKEY_CONSUMERS_SET " %b", m->str, m->len);
            if (gone == NULL) {
                freeReplyObject(h);
                app_redis_failed(t);
                break;
            }
            freeReplyObject(gone);
        } else if (h->type == REDIS_REPLY_ARRAY) {
            if (!header)
                (void)http_response_printf(resp,
                                           "# Samples reported by coupon-consumer instances.\n");
            header = 1;
            char instance[RKEY_INSTANCE_MAX + 1];
            memcpy(instance, m->str, m->len);
            instance[m->len] = '\0';
            render_consumer(resp, instance, h);
        }
        freeReplyObject(h);
    }
    freeReplyObject(members);
}

void health_metrics_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp)
{
    (void)req;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (metrics_render(t->app->metrics, resp) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "metrics output exceeds the response buffer");
        return;
    }
    /* 1/0 per dependency as this worker sees it now, for the "dependency down" alert
     * (the same checks as /api/health). */
    const char *why;
    int up[3] = {check_redis(t, &why), producer_is_up(t->app->producer), check_db(t, &why)};
    (void)http_response_printf(resp,
                               "# HELP coupon_dependency_up Whether the answering worker reaches "
                               "the dependency (1) or not (0).\n"
                               "# TYPE coupon_dependency_up gauge\n"
                               "coupon_dependency_up{dependency=\"redis\"} %d\n"
                               "coupon_dependency_up{dependency=\"kafka\"} %d\n"
                               "coupon_dependency_up{dependency=\"mariadb\"} %d\n",
                               up[0], up[1], up[2]);
    render_consumers(t, resp);
}
