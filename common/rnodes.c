#include "first.h"

#include "rnodes.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "log.h"
#include "rslot.h"

#define NODES_MAX       64   /* seeds + the masters of the map + -MOVED targets since */
#define NO_NODE         0xFF /* a slot no node serves (as far as the map knows) */
#define RECONNECT_MS    250  /* a node that refused a connect rests this long */
#define REFRESH_MIN_MS  100  /* CLUSTER SLOTS at most this often while the map is stale */
/* A connection is polled for a server-side close at most this often. A Redis restart
 * (kill, start, AOF load) takes longer, and a connection in use meanwhile learns of it
 * from its own failed command; under load this spares a poll(2) per request. */
#define CLOSED_CHECK_MS 100

struct node {
    char host[CP_REDIS_HOST_MAX];
    int port;
    void *conn;            /* NULL: not connected */
    int64_t retry_at_ms;   /* after a refused connect: no attempt before */
    int64_t checked_at_ms; /* the connect, or the last poll for a server-side close */
    int seed;              /* from the configuration: kept when the map no longer names it */
};

struct rnodes {
    const struct rconn_ops *ops;
    const void *opaque;
    struct node *nodes;
    size_t n, cap;
    uint8_t *map, *next_map; /* cluster: the node of every slot; next_map: a refresh's */
    int map_loaded, map_stale;
    int asked;               /* CLUSTER SLOTS was tried at least once */
    int64_t refreshed_at_ms; /* when it was last tried */
    char errstr[256];
};

static const char cluster_slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
static const char asking[] = "*1\r\n$6\r\nASKING\r\n";

void rnodes_error(struct rnodes *ns, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(ns->errstr, sizeof ns->errstr, fmt, ap);
    va_end(ap);
}

const char *rnodes_errstr(const struct rnodes *ns)
{
    return ns->errstr;
}

size_t rnodes_count(const struct rnodes *ns)
{
    return ns->n;
}

const char *rnodes_host(const struct rnodes *ns, int u)
{
    return ns->nodes[u].host;
}

int rnodes_port(const struct rnodes *ns, int u)
{
    return ns->nodes[u].port;
}

void rnodes_close(struct rnodes *ns, int u)
{
    struct node *n = &ns->nodes[u];
    if (n->conn != NULL) {
        ns->ops->close(n->conn);
        n->conn = NULL;
    }
}

void *rnodes_open_conn(const struct rnodes *ns, int u)
{
    return ns->nodes[u].conn;
}

void *rnodes_conn(struct rnodes *ns, int u)
{
    struct node *n = &ns->nodes[u];
    if (n->conn != NULL)
        return n->conn;
    int64_t now = ns->ops->now_ms(ns->opaque);
    if (now < n->retry_at_ms) {
        rnodes_error(ns, "redis %s:%d refused a connection %lld ms ago", n->host, n->port,
                     (long long)(now - n->retry_at_ms + RECONNECT_MS));
        return NULL;
    }
    char err[200];
    n->conn = ns->ops->connect(ns->opaque, n->host, n->port, err, sizeof err);
    n->checked_at_ms = now;
    if (n->conn == NULL) {
        n->retry_at_ms = now + RECONNECT_MS;
        ns->map_stale = 1;
        rnodes_error(ns, "%s", err);
        log_warn("%s", err);
    }
    return n->conn;
}

/* hiredis cannot resynchronise a connection after an I/O error, so it goes. No back-off:
 * the next use reconnects at once (a restart is usually over by then). */
void rnodes_failed(struct rnodes *ns, int u, const char *why)
{
    rnodes_error(ns, "redis %s:%d: %s", ns->nodes[u].host, ns->nodes[u].port, why);
    log_warn("%s", ns->errstr);
    rnodes_close(ns, u);
    ns->map_stale = 1;
}

int rnodes_drop_closed(struct rnodes *ns)
{
    int dropped = 0;
    int64_t now = ns->ops->now_ms(ns->opaque);
    for (size_t u = 0; u < ns->n; u++) {
        struct node *n = &ns->nodes[u];
        if (n->conn == NULL || now - n->checked_at_ms < CLOSED_CHECK_MS)
            continue;
        n->checked_at_ms = now;
        if (!ns->ops->closed(n->conn))
            continue;
        log_info("redis %s:%d closed the connection; reconnecting", n->host, n->port);
        rnodes_close(ns, (int)u);
        ns->map_stale = 1;
        dropped = 1;
    }
    return dropped;
}

static int find(const struct rnodes *ns, const char *host, int port)
{
    for (size_t u = 0; u < ns->n; u++)
        if (ns->nodes[u].port == port && strcmp(ns->nodes[u].host, host) == 0)
            return (int)u;
    return -1;
}

int rnodes_add(struct rnodes *ns, const char *host, int port)
{
    int u = find(ns, host, port);
    if (u >= 0 || ns->n == ns->cap || strlen(host) >= CP_REDIS_HOST_MAX)
        return u;
    struct node *n = &ns->nodes[ns->n];
    memset(n, 0, sizeof *n);
    memcpy(n->host, host, strlen(host) + 1);
    n->port = port;
    return (int)ns->n++;
}

int rnodes_any(struct rnodes *ns)
{
    for (size_t u = 0; u < ns->n; u++)
        if (ns->nodes[u].conn != NULL)
            return (int)u;
    /* None connected: the first that accepts, so a dead seed in front of the list does
     * not fail the command (each refusal rests that node). */
    int64_t now = ns->ops->now_ms(ns->opaque);
    for (size_t u = 0; u < ns->n; u++)
        if (now >= ns->nodes[u].retry_at_ms && rnodes_conn(ns, (int)u) != NULL)
            return (int)u;
    return 0; /* every node rests: it fails at once */
}

int rnodes_slot_node(struct rnodes *ns, int slot)
{
    if (ns->map_loaded && ns->map[slot] != NO_NODE)
        return ns->map[slot];
    return rnodes_any(ns); /* it answers -MOVED, or CLUSTERDOWN when no node serves it */
}

void rnodes_moved(struct rnodes *ns, int slot, int u)
{
    if (ns->map_loaded)
        ns->map[slot] = (uint8_t)u;
    ns->map_stale = 1;
}

void rnodes_stale(struct rnodes *ns)
{
    ns->map_stale = 1;
}

int rnodes_write(struct rnodes *ns, int u, const char *cmd, size_t len)
{
    void *conn = rnodes_conn(ns, u);
    if (conn == NULL)
        return CP_ERR_UNAVAILABLE;
    if (ns->ops->write(conn, cmd, len) != CP_OK) {
        rnodes_failed(ns, u, "out of memory");
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

int rnodes_flush(struct rnodes *ns, int u)
{
    char err[200];
    void *conn = ns->nodes[u].conn;
    if (conn == NULL)
        return CP_ERR_UNAVAILABLE;
    if (ns->ops->flush(conn, err, sizeof err) != CP_OK) {
        rnodes_failed(ns, u, err);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

int rnodes_read(struct rnodes *ns, int u, redisReply **reply)
{
    char err[200];
    void *conn = ns->nodes[u].conn;
    *reply = NULL;
    if (conn == NULL)
        return CP_ERR_UNAVAILABLE;
    if (ns->ops->read(conn, reply, err, sizeof err) != CP_OK) {
        *reply = NULL;
        rnodes_failed(ns, u, err);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

redisReply *rnodes_send(struct rnodes *ns, int u, int ask, const char *cmd, size_t len)
{
    redisReply *reply = NULL, *ok = NULL;
    if ((ask && rnodes_write(ns, u, asking, sizeof asking - 1) != CP_OK) ||
        rnodes_write(ns, u, cmd, len) != CP_OK)
        return NULL;
    if (ask && rnodes_read(ns, u, &ok) != CP_OK)
        return NULL;
    if (ok != NULL)
        freeReplyObject(ok);
    if (rnodes_read(ns, u, &reply) != CP_OK)
        return NULL;
    return reply;
}

void rnodes_pause(struct rnodes *ns, int ms)
{
    ns->ops->sleep_ms(ns->opaque, ms);
}

/* Drops the nodes that are neither seeds nor masters of the reply (connections of the
 * others stay open), then maps every range of the reply to its master. */
static int apply_slots(struct rnodes *ns, const redisReply *r, const char *asked)
{
    const char *host;
    int port, from, to;
    for (size_t u = 0; u < ns->n;) {
        struct node *n = &ns->nodes[u];
        int named = 0;
        for (size_t i = 0; i < r->elements && !named; i++)
            named = rslot_range(r->element[i], asked, &host, &port, &from, &to) &&
                    port == n->port && strcmp(host, n->host) == 0;
        if (named || n->seed) {
            u++;
            continue;
        }
        rnodes_close(ns, (int)u);
        memmove(n, n + 1, (ns->n - u - 1) * sizeof *n);
        ns->n--;
    }
    memset(ns->next_map, NO_NODE, RSLOT_COUNT);
    for (size_t i = 0; i < r->elements; i++) {
        if (!rslot_range(r->element[i], asked, &host, &port, &from, &to))
            continue;
        int u = rnodes_add(ns, host, port);
        if (u < 0) {
            ns->map_loaded = 0; /* the old map's node numbers moved: load it whole again */
            rnodes_error(ns, "redis cluster: more than %d nodes", NODES_MAX);
            log_error("%s", ns->errstr);
            return CP_ERR_LIMIT;
        }
        memset(ns->next_map + from, u, (size_t)(to - from + 1));
    }
    uint8_t *old = ns->map;
    ns->map = ns->next_map;
    ns->next_map = old;
    return CP_OK;
}

static int load_map_from(struct rnodes *ns, int u)
{
    char asked[CP_REDIS_HOST_MAX];
    int port = ns->nodes[u].port;
    memcpy(asked, ns->nodes[u].host, sizeof asked);
    redisReply *r = rnodes_send(ns, u, 0, cluster_slots, sizeof cluster_slots - 1);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        rc = apply_slots(ns, r, asked);
    } else {
        rnodes_error(ns, "redis %s:%d: CLUSTER SLOTS: %s", asked, port,
                     r->type == REDIS_REPLY_ERROR ? r->str : "no slots");
        log_warn("%s", ns->errstr);
    }
    freeReplyObject(r);
    return rc;
}

void rnodes_refresh(struct rnodes *ns)
{
    int64_t now = ns->ops->now_ms(ns->opaque);
    if (ns->map == NULL || (ns->map_loaded && !ns->map_stale))
        return;
    /* Also without a map: seeds that all refuse, or answer that they are no cluster,
     * are not asked again by every command. */
    if (ns->asked && now - ns->refreshed_at_ms < REFRESH_MIN_MS)
        return;
    ns->asked = 1;
    ns->refreshed_at_ms = now;
    for (int pass = 0; pass < 2; pass++)
        for (size_t u = 0; u < ns->n; u++) {
            const struct node *n = &ns->nodes[u];
            int connected = n->conn != NULL;
            if (pass == 0 ? !connected : connected || now < n->retry_at_ms)
                continue;
            if (load_map_from(ns, (int)u) == CP_OK) {
                ns->map_loaded = 1;
                ns->map_stale = 0;
                return;
            }
        }
}

int rnodes_new(const struct rconn_ops *ops, const void *opaque, const struct conf_endpoint *seeds,
               size_t n, int cluster, struct rnodes **out)
{
    *out = NULL;
    struct rnodes *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return CP_ERR_NOMEM;
    ns->ops = ops;
    ns->opaque = opaque;
    ns->cap = cluster ? NODES_MAX : 1;
    ns->nodes = calloc(ns->cap, sizeof *ns->nodes);
    if (cluster) {
        ns->map = malloc(RSLOT_COUNT);
        ns->next_map = malloc(RSLOT_COUNT);
    }
    if (ns->nodes == NULL || (cluster && (ns->map == NULL || ns->next_map == NULL))) {
        rnodes_free(ns);
        return CP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n && i < ns->cap; i++) {
        int u = rnodes_add(ns, seeds[i].host, seeds[i].port);
        if (u >= 0)
            ns->nodes[u].seed = 1; /* a seed listed twice is one node */
    }
    *out = ns;
    return CP_OK;
}

void rnodes_free(struct rnodes *ns)
{
    if (ns == NULL)
        return;
    for (size_t u = 0; ns->nodes != NULL && u < ns->n; u++)
        rnodes_close(ns, (int)u);
    free(ns->map);
    free(ns->next_map);
    free(ns->nodes);
    free(ns);
}
