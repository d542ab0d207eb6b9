#include "first.h"

#include "script.h"

#include <string.h>

#include "app.h"
#include "cp_err.h"
#include "log.h"
#include "lua_scripts.h"

static const char *const sources[SCRIPT_COUNT_] = {
    [SCRIPT_ISSUE] = lua_issue_script,
    [SCRIPT_ROLLBACK] = lua_rollback_script,
    [SCRIPT_META_UPDATE] = lua_meta_update_script,
    [SCRIPT_REDEEM] = lua_redeem_script,
};

/* Learns the script's SHA (the node keeps the script too). */
static int load(struct app_thread *t, enum script_id id)
{
    redisReply *r = rcli_command(t->redis, "SCRIPT LOAD %s", sources[id]);
    if (r == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(t->script_sha[id], r->str, 41);
        metrics_add(t->app->metrics, M_SCRIPT_RELOADS, 1);
        rc = CP_OK;
    } else {
        log_error("SCRIPT LOAD failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }
    freeReplyObject(r);
    return rc;
}

int script_is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

int script_prepare(struct app_thread *t, enum script_id id)
{
    if (t->script_sha[id][0] != '\0')
        return CP_OK;
    return app_redis(t) == NULL ? CP_ERR_UNAVAILABLE : load(t, id);
}

/* One attempt: the script (EVALSHA or EVAL) and, when replicas > 0, WAIT after it. */
static redisReply *attempt(struct app_thread *t, int argc, const char **argv, const size_t *argvlen,
                           int replicas, int timeout_ms, long long *acked)
{
    if (replicas <= 0)
        return rcli_command_argv(t->redis, argc, argv, argvlen);
    redisReply *r = NULL, *w = NULL;
    if (rcli_append_argv(t->redis, argc, argv, argvlen) != CP_OK ||
        rcli_append(t->redis, "WAIT %d %d", replicas, timeout_ms) != CP_OK)
        return NULL;
    int rc = rcli_get_reply(t->redis, &r);
    if (rcli_get_reply(t->redis, &w) == CP_OK && rc == CP_OK && w->type == REDIS_REPLY_INTEGER)
        *acked = w->integer;
    if (w != NULL)
        freeReplyObject(w);
    return r;
}

redisReply *script_run_wait(struct app_thread *t, enum script_id id, int argc, const char **argv,
                            size_t *argvlen, int replicas, int timeout_ms, long long *acked)
{
    *acked = 0;
    if (app_redis(t) == NULL)
        return NULL;
    char *sha = t->script_sha[id];
    if (sha[0] == '\0' && load(t, id) != CP_OK)
        return NULL;
    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = sha;
    argvlen[1] = 40;
    redisReply *r = attempt(t, argc, argv, argvlen, replicas, timeout_ms, acked);
    if (r != NULL && script_is_noscript(r)) {
        /* This node lacks the script: the source once, which caches it there. */
        freeReplyObject(r);
        metrics_add(t->app->metrics, M_SCRIPT_RELOADS, 1);
        argv[0] = "EVAL";
        argvlen[0] = 4;
        argv[1] = sources[id];
        argvlen[1] = strlen(sources[id]);
        r = attempt(t, argc, argv, argvlen, replicas, timeout_ms, acked);
    }
    if (r == NULL)
        app_redis_failed(t);
    return r;
}

redisReply *script_run(struct app_thread *t, enum script_id id, int argc, const char **argv,
                       size_t *argvlen)
{
    long long unused;
    return script_run_wait(t, id, argc, argv, argvlen, 0, 0, &unused);
}
