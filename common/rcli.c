#include "first.h"

#include "rcli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "log.h"
#include "rnodes.h"
#include "rslot.h"

#define REDIRECTS_MAX 5 /* re-sends after the first -MOVED/-ASK */
#define TRYAGAIN_MAX  5 /* re-sends of a command answered -TRYAGAIN */

/* The pause before each -TRYAGAIN re-send: 250 ms in all. Enough for a reshard to move a
 * coupon's few keys and close the slot; a WAIT after the command still fits in
 * redis_timeout_ms, and a slot that takes longer to move is the caller's 503. */
static const int tryagain_pause_ms[TRYAGAIN_MAX] = {10, 20, 40, 80, 100};

/* One command of a cluster pipeline. */
struct cmd {
    char *buf; /* formatted by hiredis; kept to re-send after a redirect */
    size_t len;
    int slot; /* -1: no key */
    enum rslot_kind kind;
    int node;          /* where it was sent */
    int anchor;        /* the keyed command it travels with (itself when keyed); -1 none */
    int in_tx;         /* between MULTI and EXEC: never re-sent alone */
    redisReply *reply; /* NULL: its node failed, or handed out */
};

struct rcli {
    const struct cp_conf *conf;
    struct rnodes *nodes;
    int cluster;
    size_t pending;  /* single server: replies appended and not yet read */
    struct cmd *q;   /* cluster: the pipeline */
    size_t nq, qcap; /* commands queued, room for */
    size_t taken;    /* replies handed out */
    int executed;    /* sent and answered */
    size_t rotation; /* rcli_connect_next's next node */
};

/* ------------------------------------------------------ cluster pipeline ---- */

/* Forgets the pipeline: its commands, and the replies not handed out. */
static void discard(struct rcli *c)
{
    for (size_t i = 0; i < c->nq; i++) {
        if (c->q[i].reply != NULL)
            freeReplyObject(c->q[i].reply);
        redisFreeCommand(c->q[i].buf);
    }
    c->nq = c->taken = 0;
    c->executed = 0;
}

/* Appends a formatted command (taking buf) to the pipeline. */
static int queue(struct rcli *c, char *buf, int len)
{
    if (len < 0 || buf == NULL) {
        rnodes_error(c->nodes, "redis: command not formatted");
        return len == -2 ? CP_ERR_NOMEM : CP_ERR_INVALID;
    }
    if (c->executed)
        discard(c); /* an earlier pipeline the caller stopped reading */
    if (c->nq == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 16;
        struct cmd *q = realloc(c->q, cap * sizeof *q);
        if (q == NULL) {
            redisFreeCommand(buf);
            rnodes_error(c->nodes, "redis: out of memory");
            return CP_ERR_NOMEM;
        }
        c->q = q;
        c->qcap = cap;
    }
    struct cmd *m = &c->q[c->nq++];
    memset(m, 0, sizeof *m);
    m->buf = buf;
    m->len = (size_t)len;
    m->slot = rslot_of_command(buf, (size_t)len, &m->kind);
    return CP_OK;
}

/* The keyed command before i (or after it, when after_first), else on the other
 * side; -1 when the pipeline has none. */
static int nearest_keyed(const struct rcli *c, size_t i, int after_first)
{
    int before = -1, after = -1;
    for (size_t k = i; k-- > 0 && before < 0;)
        if (c->q[k].slot >= 0)
            before = (int)k;
    for (size_t k = i + 1; k < c->nq && after < 0; k++)
        if (c->q[k].slot >= 0)
            after = (int)k;
    if (after_first)
        return after >= 0 ? after : before;
    return before >= 0 ? before : after;
}

/* Decides every command's node (the header says how keyless ones and transactions go). */
static void place(struct rcli *c)
{
    for (size_t i = 0; i < c->nq; i++) {
        struct cmd *m = &c->q[i];
        if (m->kind == RSLOT_MULTI) {
            size_t end = i;
            while (end + 1 < c->nq && c->q[end].kind != RSLOT_END)
                end++;
            int k = nearest_keyed(c, i, 1);
            int u = k >= 0 ? rnodes_slot_node(c->nodes, c->q[k].slot) : rnodes_any(c->nodes);
            for (size_t j = i; j <= end; j++) {
                c->q[j].node = u;
                c->q[j].anchor = k;
                c->q[j].in_tx = 1;
            }
            i = end;
        } else if (m->slot >= 0) {
            m->node = rnodes_slot_node(c->nodes, m->slot);
            m->anchor = (int)i;
        } else {
            m->anchor = nearest_keyed(c, i, 0);
            if (m->anchor < 0)
                m->node = rnodes_any(c->nodes);
            else if ((size_t)m->anchor < i)
                m->node = c->q[m->anchor].node;
            else
                m->node = rnodes_slot_node(c->nodes, c->q[m->anchor].slot);
        }
    }
}

/* Writes every node its commands, then reads every node's replies: one round trip
 * per node, the nodes in parallel. A node that fails leaves its replies NULL. */
static void send_all(struct rcli *c)
{
    size_t n = rnodes_count(c->nodes);
    unsigned char *sent = calloc(n, 1);
    if (sent == NULL) {
        rnodes_error(c->nodes, "redis: out of memory");
        return;
    }
    for (size_t u = 0; u < n; u++) {
        int used = 0, ok = 1;
        for (size_t i = 0; i < c->nq && ok; i++)
            if (c->q[i].node == (int)u) {
                used = 1;
                ok = rnodes_write(c->nodes, (int)u, c->q[i].buf, c->q[i].len) == CP_OK;
            }
        sent[u] = used && ok && rnodes_flush(c->nodes, (int)u) == CP_OK;
    }
    for (size_t u = 0; u < n; u++)
        for (size_t i = 0; i < c->nq && sent[u]; i++)
            if (c->q[i].node == (int)u)
                sent[u] = rnodes_read(c->nodes, (int)u, &c->q[i].reply) == CP_OK;
    free(sent);
}

/* Command i was answered -MOVED/-ASK: sends it where it belongs, following at most
 * REDIRECTS_MAX redirects. Returns the node that finally answered, or -1. */
static int redirect(struct rcli *c, size_t i)
{
    struct cmd *m = &c->q[i];
    char host[CP_REDIS_HOST_MAX];
    int ask, slot, port;
    for (int hop = 0; hop <= REDIRECTS_MAX; hop++) {
        if (!rslot_redirect(m->reply, rnodes_host(c->nodes, m->node), &ask, &slot, host,
                            sizeof host, &port))
            return m->node;
        if (hop == REDIRECTS_MAX)
            break;
        int u = rnodes_add(c->nodes, host, port);
        if (u < 0)
            return -1;
        log_debug("redis cluster: slot %d %s %s:%d", slot, ask ? "asked to" : "moved to", host,
                  port);
        if (!ask)
            rnodes_moved(c->nodes, slot, u);
        freeReplyObject(m->reply);
        m->reply = rnodes_send(c->nodes, u, ask, m->buf, m->len);
        m->node = u;
        if (m->reply == NULL)
            return -1;
    }
    log_warn("redis cluster: slot %d still redirected after %d hops", slot, REDIRECTS_MAX);
    return -1;
}

/* -TRYAGAIN: a multi-key command found some of its keys missing on a node of a slot
 * being migrated - the migrating node while it still has some, the importing node while
 * any is still on the other side or does not exist at all. */
static int is_tryagain(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
           memcmp(r->str, "TRYAGAIN", 8) == 0;
}

/* Command i was answered -MOVED, -ASK or -TRYAGAIN: follows the redirects, and re-sends
 * it after a -TRYAGAIN at most TRYAGAIN_MAX times, a pause before each. Redis ran nothing
 * when it answered -TRYAGAIN, so a re-send is safe. Each re-send starts from the slot
 * map (not the node that said TRYAGAIN): while the slot migrates its source answers -ASK
 * again, once it has moved -MOVED. The map is not re-loaded here: that may renumber the
 * nodes the rest of the pipeline went to. Returns the node that finally answered, or -1. */
static int settle(struct rcli *c, size_t i)
{
    struct cmd *m = &c->q[i];
    int u = redirect(c, i);
    for (int t = 0; u >= 0 && is_tryagain(m->reply); t++) {
        if (t == TRYAGAIN_MAX) {
            log_warn("redis cluster: slot %d still answers TRYAGAIN after %d re-sends", m->slot,
                     TRYAGAIN_MAX);
            break;
        }
        log_debug("redis cluster: slot %d answered TRYAGAIN; again in %d ms", m->slot,
                  tryagain_pause_ms[t]);
        rnodes_pause(c->nodes, tryagain_pause_ms[t]);
        freeReplyObject(m->reply);
        m->node = rnodes_slot_node(c->nodes, m->slot);
        m->reply = rnodes_send(c->nodes, m->node, 0, m->buf, m->len);
        u = m->reply != NULL ? redirect(c, i) : -1;
    }
    return u;
}

/* Settles the redirected and TRYAGAIN replies of a pipeline; the keyless commands that
 * went after such a command go after it to the node that answered it (their first
 * replies dropped: a WAIT must count the node that ran the write). */
static void follow_redirects(struct rcli *c)
{
    char host[CP_REDIS_HOST_MAX];
    int ask, slot, port;
    for (size_t i = 0; i < c->nq; i++) {
        struct cmd *m = &c->q[i];
        if (!rslot_redirect(m->reply, rnodes_host(c->nodes, m->node), &ask, &slot, host,
                            sizeof host, &port) &&
            !is_tryagain(m->reply))
            continue;
        if (m->in_tx || m->slot < 0) {
            rnodes_stale(c->nodes); /* EXEC answers EXECABORT; the caller's retry is routed */
            continue;
        }
        int u = settle(c, i);
        for (size_t j = i + 1; j < c->nq && u >= 0; j++) {
            struct cmd *f = &c->q[j];
            if (f->anchor != (int)i || f->slot >= 0 || f->in_tx)
                continue;
            if (f->reply != NULL)
                freeReplyObject(f->reply);
            f->reply = rnodes_send(c->nodes, u, 0, f->buf, f->len);
            f->node = u;
        }
    }
}

static void execute(struct rcli *c)
{
    c->executed = 1;
    for (size_t i = 0; i < c->nq; i++)
        if (c->q[i].slot >= 0) {
            rnodes_refresh(c->nodes); /* before placing: it may renumber the nodes */
            break;
        }
    place(c);
    send_all(c);
    follow_redirects(c);
}

/* Hands out the next reply of the pipeline, executing it first. */
static int take(struct rcli *c, redisReply **out)
{
    if (c->taken >= c->nq) {
        rnodes_error(c->nodes, "redis: no reply outstanding");
        return CP_ERR_INTERNAL;
    }
    if (!c->executed)
        execute(c);
    struct cmd *m = &c->q[c->taken++];
    *out = m->reply;
    m->reply = NULL;
    if (c->taken == c->nq)
        discard(c);
    return *out != NULL ? CP_OK : CP_ERR_UNAVAILABLE;
}

static redisReply *cluster_command(struct rcli *c, char *buf, int len)
{
    if (c->nq > 0)
        discard(c); /* appended and never read: no business of this command */
    redisReply *r = NULL;
    if (queue(c, buf, len) != CP_OK || take(c, &r) != CP_OK)
        return NULL;
    return r;
}

/* -------------------------------------------------------- single server ---- */

/* The connection for a command; a pipeline left unread is dropped with it (its
 * replies would otherwise answer this command). */
static redisContext *single_conn(struct rcli *c)
{
    if (c->pending > 0) {
        if (rnodes_open_conn(c->nodes, 0) != NULL)
            log_error("redis: %zu replies left unread; connection dropped", c->pending);
        rnodes_close(c->nodes, 0);
        c->pending = 0;
    }
    return rnodes_conn(c->nodes, 0);
}

static void single_failed(struct rcli *c, const redisContext *ctx)
{
    rnodes_failed(c->nodes, 0, ctx->errstr[0] ? ctx->errstr : "no reply");
    c->pending = 0;
}

/* ------------------------------------------------------------------ API ---- */

static redisReply *vcommand(struct rcli *c, const char *fmt, va_list ap)
{
    if (c->cluster) {
        char *buf = NULL;
        int len = redisvFormatCommand(&buf, fmt, ap);
        return cluster_command(c, buf, len);
    }
    redisContext *ctx = single_conn(c);
    if (ctx == NULL)
        return NULL;
    redisReply *r = redisvCommand(ctx, fmt, ap);
    if (r == NULL)
        single_failed(c, ctx);
    return r;
}

redisReply *rcli_command(struct rcli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcommand(c, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *rcli_command_argv(struct rcli *c, int argc, const char **argv, const size_t *argvlen)
{
    if (c->cluster) {
        char *buf = NULL;
        int len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
        return cluster_command(c, buf, len);
    }
    redisContext *ctx = single_conn(c);
    if (ctx == NULL)
        return NULL;
    redisReply *r = redisCommandArgv(ctx, argc, argv, argvlen);
    if (r == NULL)
        single_failed(c, ctx);
    return r;
}

static int vappend(struct rcli *c, const char *fmt, va_list ap)
{
    if (c->cluster) {
        char *buf = NULL;
        int len = redisvFormatCommand(&buf, fmt, ap);
        return queue(c, buf, len);
    }
    redisContext *ctx = rnodes_conn(c->nodes, 0);
    if (ctx == NULL)
        return CP_ERR_UNAVAILABLE;
    if (redisvAppendCommand(ctx, fmt, ap) != REDIS_OK) {
        rnodes_error(c->nodes, "redis: command not formatted");
        return CP_ERR_INVALID;
    }
    c->pending++;
    return CP_OK;
}

int rcli_append(struct rcli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vappend(c, fmt, ap);
    va_end(ap);
    return rc;
}

int rcli_append_argv(struct rcli *c, int argc, const char **argv, const size_t *argvlen)
{
    if (c->cluster) {
        char *buf = NULL;
        int len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
        return queue(c, buf, len);
    }
    redisContext *ctx = rnodes_conn(c->nodes, 0);
    if (ctx == NULL)
        return CP_ERR_UNAVAILABLE;
    if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK) {
        rnodes_error(c->nodes, "redis: out of memory");
        return CP_ERR_NOMEM;
    }
    c->pending++;
    return CP_OK;
}

int rcli_get_reply(struct rcli *c, redisReply **out)
{
    *out = NULL;
    if (c->cluster)
        return take(c, out);
    if (c->pending == 0) {
        rnodes_error(c->nodes, "redis: no reply outstanding");
        return CP_ERR_INTERNAL;
    }
    c->pending--;
    redisContext *ctx = rnodes_open_conn(c->nodes, 0);
    if (ctx == NULL)
        return CP_ERR_UNAVAILABLE; /* lost earlier in this pipeline */
    void *r = NULL;
    if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL) {
        single_failed(c, ctx);
        return CP_ERR_UNAVAILABLE;
    }
    *out = r;
    return CP_OK;
}

void rcli_drop_closed(struct rcli *c)
{
    /* Replies on their way make a connection readable: only idle ones are looked at. */
    if (c->pending == 0)
        (void)rnodes_drop_closed(c->nodes);
}

void rcli_reset(struct rcli *c)
{
    discard(c);
    rnodes_stale(c->nodes);
    if (!c->cluster) {
        rnodes_close(c->nodes, 0);
        c->pending = 0;
    }
}

const char *rcli_errstr(const struct rcli *c)
{
    return rnodes_errstr(c->nodes);
}

int rcli_connect_next(struct rcli *c, redisContext **out, char *errbuf, size_t errlen)
{
    if (c->cluster) {
        /* Learn the masters of today, so the turn is not only over the seeds (which may
         * all be gone after failovers). */
        rnodes_stale(c->nodes);
        rnodes_refresh(c->nodes);
    }
    int u = (int)(c->rotation++ % rnodes_count(c->nodes));
    return rconn_connect_to(c->conf, rnodes_host(c->nodes, u), rnodes_port(c->nodes, u), out,
                            errbuf, errlen);
}

static int open_client(const struct cp_conf *conf, const struct rconn_ops *ops, const void *opaque,
                       struct rcli **out, char *errbuf, size_t errlen)
{
    struct conf_endpoint seeds[CP_REDIS_SEEDS_MAX];
    size_t n = 0;
    *out = NULL;
    int rc =
        conf_endpoints_parse(conf->redis_cluster, seeds, CP_REDIS_SEEDS_MAX, &n, errbuf, errlen);
    if (rc != CP_OK)
        return rc;
    struct rcli *c = calloc(1, sizeof *c);
    if (c == NULL)
        goto nomem;
    c->conf = conf;
    c->cluster = n > 0;
    if (!c->cluster) {
        snprintf(seeds[0].host, sizeof seeds[0].host, "%s", conf->redis_host);
        seeds[0].port = conf->redis_port;
        n = 1;
    }
    if (rnodes_new(ops, opaque, seeds, n, c->cluster, &c->nodes) != CP_OK)
        goto nomem;
    *out = c;
    return CP_OK;
nomem:
    rcli_free(c);
    snprintf(errbuf, errlen, "redis client: out of memory");
    return CP_ERR_NOMEM;
}

int rcli_open(const struct cp_conf *conf, struct rcli **out, char *errbuf, size_t errlen)
{
    return open_client(conf, &rconn_hiredis_ops, conf, out, errbuf, errlen);
}

int rcli_open_cluster(const struct cp_conf *conf, const struct rconn_ops *ops, const void *opaque,
                      struct rcli **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (conf->redis_cluster[0] == '\0') {
        snprintf(errbuf, errlen, "redis_cluster names no seeds");
        return CP_ERR_INVALID;
    }
    return open_client(conf, ops, opaque, out, errbuf, errlen);
}

void rcli_free(struct rcli *c)
{
    if (c == NULL)
        return;
    if (c->nodes != NULL)
        discard(c);
    rnodes_free(c->nodes);
    free(c->q);
    free(c);
}
