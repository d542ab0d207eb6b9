#include "first.h"

#include "script.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "log.h"
#include "lua_scripts.h"

static const char *const sources[SCRIPT_COUNT_] = {
    [SCRIPT_ISSUE] = lua_issue_script,
    [SCRIPT_ROLLBACK] = lua_rollback_script,
    [SCRIPT_META_UPDATE] = lua_meta_update_script,
    [SCRIPT_REDEEM] = lua_redeem_script,
};

struct script_cache {
    struct metrics *metrics;
    char sha[SCRIPT_COUNT_][41]; /* "" = not learnt yet */
};

struct script_cache *script_cache_new(struct metrics *metrics)
{
    struct script_cache *sc = calloc(1, sizeof *sc);
    if (sc != NULL)
        sc->metrics = metrics;
    return sc;
}

void script_cache_free(struct script_cache *sc)
{
    free(sc);
}

static void count_reload(struct script_cache *sc)
{
    if (sc->metrics != NULL)
        metrics_add(sc->metrics, M_SCRIPT_RELOADS, 1);
}

/* Learns the script's SHA (the node keeps the script too). */
static int load(struct script_cache *sc, struct rcli *r, enum script_id id)
{
    redisReply *reply = rcli_command(r, "SCRIPT LOAD %s", sources[id]);
    if (reply == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_ERR_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(sc->sha[id], reply->str, 41);
        count_reload(sc);
        rc = CP_OK;
    } else {
        log_error("SCRIPT LOAD failed: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
    }
    freeReplyObject(reply);
    return rc;
}

int script_is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

int script_prepare(struct script_cache *sc, struct rcli *r, enum script_id id)
{
    if (sc->sha[id][0] != '\0')
        return CP_OK;
    return r == NULL ? CP_ERR_UNAVAILABLE : load(sc, r, id);
}

/* argv[0..1]: EVALSHA and the (known) SHA. */
static void by_sha(const struct script_cache *sc, enum script_id id, const char **argv,
                   size_t *argvlen)
{
    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = sc->sha[id];
    argvlen[1] = 40;
}

int script_append(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                  const char **argv, size_t *argvlen)
{
    if (sc->sha[id][0] == '\0')
        return CP_ERR_UNAVAILABLE; /* script_prepare first */
    by_sha(sc, id, argv, argvlen);
    return rcli_append_argv(r, argc, argv, argvlen);
}

int script_reply(struct rcli *r, redisReply **out)
{
    return rcli_get_reply(r, out);
}

/* One attempt: the script (EVALSHA or EVAL) and, when replicas > 0, WAIT after it. */
static redisReply *attempt(struct rcli *c, int argc, const char **argv, const size_t *argvlen,
                           int replicas, int timeout_ms, long long *acked)
{
    if (replicas <= 0)
        return rcli_command_argv(c, argc, argv, argvlen);
    redisReply *r = NULL, *w = NULL;
    if (rcli_append_argv(c, argc, argv, argvlen) != CP_OK ||
        rcli_append(c, "WAIT %d %d", replicas, timeout_ms) != CP_OK)
        return NULL;
    int rc = rcli_get_reply(c, &r);
    if (rcli_get_reply(c, &w) == CP_OK && rc == CP_OK && w->type == REDIS_REPLY_INTEGER)
        *acked = w->integer;
    if (w != NULL)
        freeReplyObject(w);
    return r;
}

redisReply *script_run_wait(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                            const char **argv, size_t *argvlen, int replicas, int timeout_ms,
                            long long *acked)
{
    *acked = 0;
    if (r == NULL || script_prepare(sc, r, id) != CP_OK)
        return NULL;
    by_sha(sc, id, argv, argvlen);
    redisReply *reply = attempt(r, argc, argv, argvlen, replicas, timeout_ms, acked);
    if (reply != NULL && script_is_noscript(reply)) {
        /* This node lacks the script: the source once, which caches it there. */
        freeReplyObject(reply);
        count_reload(sc);
        argv[0] = "EVAL";
        argvlen[0] = 4;
        argv[1] = sources[id];
        argvlen[1] = strlen(sources[id]);
        reply = attempt(r, argc, argv, argvlen, replicas, timeout_ms, acked);
    }
    return reply;
}

redisReply *script_run(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                       const char **argv, size_t *argvlen)
{
    long long unused;
    return script_run_wait(sc, r, id, argc, argv, argvlen, 0, 0, &unused);
}
