/*
 * test_rcli.c - the Redis Cluster routing of common/rcli over fake connections:
 * no server (the key space itself, common/rslot, is tests/unit/test_rslot.c). The fake cluster serves slots
 * from ports 7001..7004, answers -MOVED/-ASK/-TRYAGAIN as Redis does, and logs
 * every command written as "<port> <argv joined by spaces>" and every pause as
 * "pause <ms>", so each case asserts the exact sequence of (node, command) the
 * client sent and the replies it handed back. tests/unit/test_rcli_redis.c drives the single-server path against a
 * real redis-server.
 */
#include "first.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "conf.h"
#include "cp_err.h"
#include "rcli.h"
#include "rslot.h"
#include "unit_main.h"

#define PORT0    7000
#define NPORTS   5 /* 7001..7004 */
#define LOG_MAX  64
#define LINE_MAX 160
#define TRYAGAIN "TRYAGAIN Multiple keys request during rehashing of slot"

/* One fake connection: the commands written and not yet answered. */
struct fconn {
    int port;
    int asking; /* ASKING came before the next command */
    char queued[32][LINE_MAX];
    int head, tail;
};

/* The fake cluster. */
static struct {
    int owner[RSLOT_COUNT];  /* the port serving each slot */
    int ask_to[RSLOT_COUNT]; /* a slot migrating to this port (0: none) */
    int refuse[NPORTS];      /* connects refused */
    int fail_read[NPORTS];   /* the next read fails (the node died) */
    int closed[NPORTS];      /* the server closed the idle connection */
    int tryagain;            /* the importing node answers ASKING'd commands -TRYAGAIN this
                              * many more times (the keys of a script are split) */
    int tryagain_owner;      /* the migrating node too, before its -ASK (Redis 7.0.15: some
                              * of the keys still there, some not) */
    int moved_on_pause;      /* a pause ends every migration: ask_to becomes the owner */
    int ping_pong;           /* every keyed command is MOVED to the other of 7001/7002 */
    int no_cluster;          /* CLUSTER SLOTS: cluster support disabled */
    int connects[NPORTS], closes[NPORTS];
    int64_t now;
    char log[LOG_MAX][LINE_MAX];
    int nlog;
} w;

static void owner_range(int from, int to, int port)
{
    for (int s = from; s <= to; s++)
        w.owner[s] = port;
}

/* 7001 serves 0..8191 (bar: 5061), 7002 serves 8192..16383 (foo: 12182). */
static void world(void)
{
    memset(&w, 0, sizeof w);
    owner_range(0, 8191, 7001);
    owner_range(8192, RSLOT_COUNT - 1, 7002);
}

/* "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n" -> "GET foo". */
static void decode(const char *cmd, size_t len, char *out, size_t cap)
{
    const char *p = cmd + 1, *end = cmd + len;
    long argc = strtol(p, (char **)&p, 10);
    size_t n = 0;
    out[0] = '\0';
    for (long i = 0; i < argc && p < end; i++) {
        long l = strtol(p + 3, (char **)&p, 10); /* skip "\r\n$" */
        p += 2;
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? " " : "", (int)l, p);
        p += l;
    }
}

static redisReply *parse(const char *resp)
{
    redisReader *r = redisReaderCreate();
    void *out = NULL;
    CU_ASSERT_FATAL(r != NULL && redisReaderFeed(r, resp, strlen(resp)) == REDIS_OK);
    CU_ASSERT_FATAL(redisReaderGetReply(r, &out) == REDIS_OK && out != NULL);
    redisReaderFree(r);
    return out;
}

static void cluster_slots_reply(char *out, size_t cap)
{
    char entries[4096] = "";
    size_t n = 0;
    int count = 0;
    for (int s = 0; s < RSLOT_COUNT;) {
        int e = s;
        while (e + 1 < RSLOT_COUNT && w.owner[e + 1] == w.owner[s])
            e++;
        n += (size_t)snprintf(entries + n, sizeof entries - n,
                              "*3\r\n:%d\r\n:%d\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$2\r\nid\r\n", s,
                              e, w.owner[s]);
        count++;
        s = e + 1;
    }
    snprintf(out, cap, "*%d\r\n%s", count, entries);
}

/* What node `port` answers to one command. */
static redisReply *answer(struct fconn *fc, const char *text)
{
    char resp[8192], cmd[LINE_MAX * 2];
    int slot = -1;
    /* Re-format to find the slot the way Redis does (from the key). */
    char *args[8];
    int argc = 0;
    char copy[LINE_MAX];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *t = strtok(copy, " "); t != NULL && argc < 8; t = strtok(NULL, " "))
        args[argc++] = t;
    char *formatted = NULL;
    int flen = redisFormatCommandArgv(&formatted, argc, (const char **)args, NULL);
    slot = rslot_of_command(formatted, (size_t)flen, NULL);
    redisFreeCommand(formatted);
    int asking = fc->asking;
    fc->asking = 0;
    if (strcmp(text, "CLUSTER SLOTS") == 0 && w.no_cluster) {
        snprintf(resp, sizeof resp, "-ERR This instance has cluster support disabled\r\n");
    } else if (strcmp(text, "CLUSTER SLOTS") == 0) {
        cluster_slots_reply(resp, sizeof resp);
    } else if (strcmp(text, "ASKING") == 0) {
        fc->asking = 1;
        snprintf(resp, sizeof resp, "+OK\r\n");
    } else if (strncmp(text, "WAIT", 4) == 0) {
        snprintf(resp, sizeof resp, ":%d\r\n", fc->port); /* says who answered */
    } else if (slot >= 0 && w.ping_pong) {
        snprintf(resp, sizeof resp, "-MOVED %d 127.0.0.1:%d\r\n", slot,
                 fc->port == 7001 ? 7002 : 7001);
    } else if (slot >= 0 && !(asking && w.ask_to[slot] == fc->port) && w.owner[slot] != fc->port) {
        snprintf(resp, sizeof resp, "-MOVED %d 127.0.0.1:%d\r\n", slot, w.owner[slot]);
    } else if (slot >= 0 && !asking && w.ask_to[slot] != 0 && w.tryagain_owner > 0) {
        w.tryagain_owner--;
        snprintf(resp, sizeof resp, "-%s\r\n", TRYAGAIN);
    } else if (slot >= 0 && !asking && w.ask_to[slot] != 0) {
        snprintf(resp, sizeof resp, "-ASK %d 127.0.0.1:%d\r\n", slot, w.ask_to[slot]);
    } else if (slot >= 0 && asking && w.ask_to[slot] == fc->port && w.tryagain > 0) {
        w.tryagain--;
        snprintf(resp, sizeof resp, "-%s\r\n", TRYAGAIN);
    } else {
        snprintf(cmd, sizeof cmd, "%d %s", fc->port, text);
        snprintf(resp, sizeof resp, "+%s\r\n", cmd);
    }
    return parse(resp);
}

static void *f_connect(const void *opaque, const char *host, int port, char *err, size_t errlen)
{
    (void)opaque;
    CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
    CU_ASSERT_FATAL(port > PORT0 && port < PORT0 + NPORTS);
    w.connects[port - PORT0]++;
    if (w.refuse[port - PORT0]) {
        snprintf(err, errlen, "connect to 127.0.0.1:%d: Connection refused", port);
        return NULL;
    }
    struct fconn *fc = calloc(1, sizeof *fc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fc);
    fc->port = port;
    return fc;
}

static int f_write(void *conn, const char *cmd, size_t len)
{
    struct fconn *fc = conn;
    CU_ASSERT_FATAL(w.nlog < LOG_MAX && fc->tail < 32);
    char text[LINE_MAX];
    decode(cmd, len, text, sizeof text);
    snprintf(w.log[w.nlog++], LINE_MAX, "%d %s", fc->port, text);
    snprintf(fc->queued[fc->tail++], LINE_MAX, "%s", text);
    return CP_OK;
}

static int f_flush(void *conn, char *err, size_t errlen)
{
    (void)conn, (void)err, (void)errlen;
    return CP_OK;
}

static int f_read(void *conn, redisReply **reply, char *err, size_t errlen)
{
    struct fconn *fc = conn;
    CU_ASSERT_FATAL(fc->head < fc->tail); /* never a read without a command */
    if (w.fail_read[fc->port - PORT0]) {
        w.fail_read[fc->port - PORT0] = 0;
        snprintf(err, errlen, "Connection reset by peer");
        return CP_ERR_UNAVAILABLE;
    }
    *reply = answer(fc, fc->queued[fc->head++]);
    return CP_OK;
}

static int f_closed(void *conn)
{
    return w.closed[((struct fconn *)conn)->port - PORT0];
}

static void f_close(void *conn)
{
    w.closes[((struct fconn *)conn)->port - PORT0]++;
    free(conn);
}

static int64_t f_now(const void *opaque)
{
    (void)opaque;
    return w.now;
}

static void f_sleep(const void *opaque, int ms)
{
    (void)opaque;
    CU_ASSERT_FATAL(w.nlog < LOG_MAX);
    snprintf(w.log[w.nlog++], LINE_MAX, "pause %d", ms);
    w.now += ms;
    for (int s = 0; s < RSLOT_COUNT && w.moved_on_pause; s++)
        if (w.ask_to[s] != 0) {
            w.owner[s] = w.ask_to[s];
            w.ask_to[s] = 0;
        }
}

static const struct rconn_ops fake_ops = {
    .connect = f_connect,
    .write = f_write,
    .flush = f_flush,
    .read = f_read,
    .closed = f_closed,
    .close = f_close,
    .now_ms = f_now,
    .sleep_ms = f_sleep,
};

static struct cp_conf conf;

static struct rcli *client(const char *seeds)
{
    char err[200];
    struct rcli *c = NULL;
    conf_defaults(&conf);
    CU_ASSERT_EQUAL_FATAL(conf_set(&conf, "redis_cluster", seeds, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(rcli_open_cluster(&conf, &fake_ops, NULL, &c, err, sizeof err), CP_OK);
    return c;
}

/* The log since the last call, as one text ("7001 GET a | 7002 GET b"). */
static const char *sent(void)
{
    static char out[LOG_MAX * LINE_MAX];
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < w.nlog; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? " | " : "", w.log[i]);
    w.nlog = 0;
    return out;
}

/* The reply's text (status, error or integer), freed. */
static const char *text_of(redisReply *r)
{
    static char out[LINE_MAX];
    if (r == NULL)
        snprintf(out, sizeof out, "(null)");
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf(out, sizeof out, "%lld", r->integer);
    else
        snprintf(out, sizeof out, "%s", r->str);
    if (r != NULL)
        freeReplyObject(r);
    return out;
}

static const char *command(struct rcli *c, const char *fmt, const char *arg)
{
    return text_of(rcli_command(c, fmt, arg));
}

static const char *next_reply(struct rcli *c)
{
    redisReply *r = NULL;
    int rc = rcli_get_reply(c, &r);
    CU_ASSERT_EQUAL(rc, r != NULL ? CP_OK : CP_ERR_UNAVAILABLE);
    return text_of(r);
}

/* --------------------------------------------------------------- routing ---- */

static void the_first_command_loads_the_map_then_goes_to_its_slot(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7002 GET foo");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 GET bar"); /* the map is known now */
    /* Without a key: a node already connected, no map needed. */
    CU_ASSERT_STRING_EQUAL(command(c, "PUBLISH coupon:invalidate %s", "5"),
                           "7001 PUBLISH coupon:invalidate 5");
    CU_ASSERT_EQUAL(w.connects[1] + w.connects[2], 2);
    rcli_free(c);
    CU_ASSERT_EQUAL(w.closes[1] + w.closes[2], 2);
}

static void moved_retries_on_the_new_node_and_refreshes_the_map(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    (void)sent();
    w.owner[12182] = 7001; /* resharded behind the client's back */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7001 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 GET foo | 7001 GET foo");
    /* The slot is right at once; the whole map is asked for again, but not at once. */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7001 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 GET foo");
    w.now += 200;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7001 GET bar");
    w.now += 200;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 GET bar"); /* fresh again */
    rcli_free(c);
}

static void ask_goes_to_the_importing_node_without_changing_the_map(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.ask_to[12182] = 7003; /* foo's slot is migrating from 7002 to 7003 */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7003 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 GET foo | 7003 ASKING | 7003 GET foo");
    w.now += 1000;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7003 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 GET foo | 7003 ASKING | 7003 GET foo"); /* no refresh */
    rcli_free(c);
}

/* A client that knows the map, and foo's slot (12182) migrating from 7002 to 7003. */
static struct rcli *client_migrating_foo(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.ask_to[12182] = 7003;
    return c;
}

static void tryagain_is_sent_again_from_the_map_with_its_wait(void)
{
    struct rcli *c = client_migrating_foo();
    w.tryagain = 2; /* 7003 lacks some of the script's keys, twice */
    CU_ASSERT_EQUAL(rcli_append(c, "EVALSHA abc 1 foo u"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "WAIT 1 100"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7003 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7003"); /* WAIT counted the node that ran it */
    /* Each try from the map's node (7002 asks again), a longer pause before each. */
    CU_ASSERT_STRING_EQUAL(sent(), "7002 EVALSHA abc 1 foo u | 7002 WAIT 1 100 | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u | pause 10 | "
                                   "7002 EVALSHA abc 1 foo u | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u | pause 20 | "
                                   "7002 EVALSHA abc 1 foo u | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u | 7003 WAIT 1 100");
    CU_ASSERT_EQUAL(w.now, 30);
    rcli_free(c);
}

static void tryagain_of_the_migrating_node_is_sent_again_too(void)
{
    struct rcli *c = client_migrating_foo();
    w.tryagain_owner = 1; /* the keys are split: 7002 has some, 7003 the others */
    w.tryagain = 1;       /* then 7002 has none left, but 7003 lacks one that never existed */
    CU_ASSERT_STRING_EQUAL(command(c, "EVALSHA abc 1 %s u", "foo"), "7003 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 EVALSHA abc 1 foo u | pause 10 | "
                                   "7002 EVALSHA abc 1 foo u | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u | pause 20 | "
                                   "7002 EVALSHA abc 1 foo u | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u");
    rcli_free(c);
}

static void tryagain_follows_moved_once_the_migration_is_over(void)
{
    struct rcli *c = client_migrating_foo();
    w.tryagain = 1;
    w.moved_on_pause = 1; /* SETSLOT NODE: the slot is 7003's after the pause */
    CU_ASSERT_STRING_EQUAL(command(c, "EVALSHA abc 1 %s u", "foo"), "7003 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 EVALSHA abc 1 foo u | 7003 ASKING | "
                                   "7003 EVALSHA abc 1 foo u | pause 10 | "
                                   "7002 EVALSHA abc 1 foo u | 7003 EVALSHA abc 1 foo u");
    /* The -MOVED put the slot on 7003 in the map. */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7003 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7003 GET foo");
    rcli_free(c);
}

static void tryagain_is_the_reply_after_five_resends(void)
{
    static const char try[] = "7002 EVALSHA abc 1 foo u | 7003 ASKING | 7003 EVALSHA abc 1 foo u";
    struct rcli *c = client_migrating_foo();
    w.tryagain = 100; /* a migration that outlasts every re-send */
    CU_ASSERT_STRING_EQUAL(command(c, "EVALSHA abc 1 %s u", "foo"), TRYAGAIN);
    char want[LOG_MAX * LINE_MAX];
    snprintf(want, sizeof want,
             "%s | pause 10 | %s | pause 20 | %s | pause 40 | %s | pause 80 | %s | pause 100 | %s",
             try, try, try, try, try, try);
    CU_ASSERT_STRING_EQUAL(sent(), want);
    CU_ASSERT_EQUAL(w.now, 250); /* well under redis_timeout_ms */
    CU_ASSERT_EQUAL(w.tryagain, 100 - 6);
    /* The next command tries again as many times: no state is kept between commands. */
    w.tryagain = 0;
    CU_ASSERT_STRING_EQUAL(command(c, "EVALSHA abc 1 %s u", "foo"), "7003 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(sent(), try);
    rcli_free(c);
}

static void redirects_stop_after_five(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.ping_pong = 1;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "MOVED 12182 127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 GET foo | 7001 GET foo | 7002 GET foo | 7001 GET foo | "
                                   "7002 GET foo | 7001 GET foo");
    rcli_free(c);
}

static void a_failed_node_answers_null_and_the_map_is_found_again(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    (void)sent();
    w.fail_read[2] = 1; /* 7002 dies */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "(null)");
    CU_ASSERT_PTR_NOT_NULL(strstr(rcli_errstr(c), "127.0.0.1:7002"));
    CU_ASSERT_EQUAL(w.closes[2], 1);
    CU_ASSERT_STRING_EQUAL(sent(), "7002 GET foo");
    /* Its replica 7003 takes over; 7002 refuses connections. Within the refresh
     * interval the old map still says 7002: one refused connect, then NULL at once. */
    w.refuse[2] = 1;
    owner_range(8192, RSLOT_COUNT - 1, 7003);
    w.now += 10;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "(null)");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "(null)");
    CU_ASSERT_EQUAL(w.connects[2], 2); /* the first connect, and one refused */
    CU_ASSERT_STRING_EQUAL(sent(), "");
    w.now += 300;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7003 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7003 GET foo");
    /* 7002 comes back as the master (a failback): found by the -MOVED. */
    w.refuse[2] = 0;
    owner_range(8192, RSLOT_COUNT - 1, 7002);
    w.now += 300;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7003 GET foo | 7002 GET foo");
    rcli_free(c);
}

static void nodes_that_left_the_map_are_closed(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001"); /* 7002 is learnt from the map */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    owner_range(8192, RSLOT_COUNT - 1, 7004);
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7004 GET foo");
    w.now += 200;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7002 GET foo | 7002 GET foo | "
                                   "7004 GET foo | 7001 CLUSTER SLOTS | 7001 GET bar");
    CU_ASSERT_EQUAL(w.closes[2], 1); /* no longer a master, not a seed */
    CU_ASSERT_EQUAL(w.closes[4], 0);
    rcli_free(c);
}

static void closed_connections_are_dropped_and_reset_keeps_healthy_ones(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.closed[2] = 1;
    /* Asked at most every 100 ms per connection: not yet, 99 ms after the connect. */
    w.now += 99;
    rcli_drop_closed(c);
    CU_ASSERT_EQUAL(w.closes[2], 0);
    w.now += 1;
    rcli_drop_closed(c);
    CU_ASSERT_EQUAL(w.closes[2], 1);
    w.closed[2] = 0;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    CU_ASSERT_EQUAL(w.connects[2], 2);
    /* After an error reply the caller resets: connections stay, the map is asked again. */
    rcli_reset(c);
    w.now += 200;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_EQUAL(w.connects[1] + w.connects[2], 3);
    CU_ASSERT_EQUAL(w.closes[1], 0);
    /* The drop left the map stale 100 ms after its last refresh: asked again first. */
    CU_ASSERT_STRING_EQUAL(sent(),
                           "7001 CLUSTER SLOTS | 7002 GET foo | 7001 CLUSTER SLOTS | 7001 GET bar");
    rcli_free(c);
}

/* -------------------------------------------------------------- pipelines ---- */

static void a_pipeline_goes_to_each_node_once_and_answers_in_order(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET bar"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "SET {foo}x 1"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "HLEN {bar}y"), CP_OK);
    CU_ASSERT_STRING_EQUAL(sent(), ""); /* nothing before the first reply is asked for */
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(),
                           "7001 GET bar | 7001 HLEN {bar}y | 7002 GET foo | 7002 SET {foo}x 1");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 SET {foo}x 1");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 HLEN {bar}y");
    redisReply *none = NULL;
    CU_ASSERT_EQUAL(rcli_get_reply(c, &none), CP_ERR_INTERNAL);
    /* A node failing takes its own replies only. */
    w.fail_read[2] = 1;
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo") + rcli_append(c, "GET bar"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "(null)");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET bar");
    rcli_free(c);
}

static void moved_inside_a_pipeline_resends_that_command_alone(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.owner[12182] = 7001;
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET bar"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET {foo}x"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET foo");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET {foo}x");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 GET bar | 7002 GET foo | 7002 GET {foo}x | "
                                   "7001 GET foo | 7001 GET {foo}x");
    rcli_free(c);
}

static void keyless_commands_go_with_their_keyed_neighbours(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    /* A transaction goes whole to the node of its first key. */
    static const char *const tx[] = {"MULTI", "DEL {foo}a", "HSET {foo}b f v", "EXPIRE {foo}b 15",
                                     "EXEC"};
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(rcli_append(c, tx[i]), CP_OK);
    for (size_t i = 0; i < 5; i++) {
        char want[LINE_MAX];
        snprintf(want, sizeof want, "7002 %s", tx[i]);
        CU_ASSERT_STRING_EQUAL(next_reply(c), want);
    }
    CU_ASSERT_STRING_EQUAL(sent(), "7002 MULTI | 7002 DEL {foo}a | 7002 HSET {foo}b f v | "
                                   "7002 EXPIRE {foo}b 15 | 7002 EXEC");
    /* WAIT follows the write before it, on the same connection. */
    CU_ASSERT_EQUAL(rcli_append(c, "EVALSHA abc 1 foo u"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "WAIT 1 100"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET bar"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 GET bar | 7002 EVALSHA abc 1 foo u | 7002 WAIT 1 100");
    /* Nothing keyed before it: the one after it. */
    CU_ASSERT_EQUAL(rcli_append(c, "PING"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 PING");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 PING | 7002 GET foo");
    rcli_free(c);
}

static void a_moved_write_takes_its_wait_along(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.owner[12182] = 7001; /* the master of foo's slot changed */
    CU_ASSERT_EQUAL(rcli_append(c, "EVALSHA abc 1 foo u"), CP_OK);
    CU_ASSERT_EQUAL(rcli_append(c, "WAIT 1 100"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001 EVALSHA abc 1 foo u");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7001"); /* WAIT counted the node that wrote */
    CU_ASSERT_STRING_EQUAL(sent(), "7002 EVALSHA abc 1 foo u | 7002 WAIT 1 100 | "
                                   "7001 EVALSHA abc 1 foo u | 7001 WAIT 1 100");
    rcli_free(c);
}

static void moved_inside_a_transaction_is_not_resent(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    (void)sent();
    w.owner[12182] = 7001;
    CU_ASSERT_EQUAL(rcli_append(c, "MULTI") + rcli_append(c, "SET foo 1") + rcli_append(c, "EXEC"),
                    CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 MULTI");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "MOVED 12182 127.0.0.1:7001");
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 EXEC"); /* Redis: EXECABORT */
    CU_ASSERT_STRING_EQUAL(sent(), "7002 MULTI | 7002 SET foo 1 | 7002 EXEC");
    w.now += 200; /* the caller's retry: the map is asked again */
    CU_ASSERT_STRING_EQUAL(command(c, "SET %s 1", "foo"), "7001 SET foo 1");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7001 SET foo 1");
    rcli_free(c);
}

static void an_unread_pipeline_is_forgotten(void)
{
    world();
    struct rcli *c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo") + rcli_append(c, "GET bar"), CP_OK);
    CU_ASSERT_STRING_EQUAL(next_reply(c), "7002 GET foo");
    /* The caller stops reading: the next command is not answered by "GET bar". */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "{bar}z"), "7001 GET {bar}z");
    CU_ASSERT_EQUAL(rcli_append(c, "GET foo"), CP_OK);
    rcli_reset(c); /* appended, never read */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    rcli_free(c);
}

static void seeds_come_from_the_configuration(void)
{
    char err[200];
    struct rcli *c = NULL;
    conf_defaults(&conf);
    CU_ASSERT_EQUAL(rcli_open_cluster(&conf, &fake_ops, NULL, &c, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_PTR_NULL(c);
    world();
    w.refuse[1] = 1;
    c = client("127.0.0.1:7001, 127.0.0.1:7002,127.0.0.1:7001");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7002 GET foo");
    CU_ASSERT_STRING_EQUAL(sent(), "7002 CLUSTER SLOTS | 7002 GET foo"); /* 7001 refused */
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "(null)");       /* 7001 rests */
    CU_ASSERT_EQUAL(w.connects[1], 1); /* listed twice, one node, one attempt */
    rcli_free(c);
    /* A command without a key is not failed by a dead seed in front of the list. */
    world();
    w.refuse[1] = 1;
    c = client("127.0.0.1:7001,127.0.0.1:7002");
    CU_ASSERT_STRING_EQUAL(command(c, "SCRIPT LOAD %s", "x"), "7002 SCRIPT LOAD x");
    CU_ASSERT_EQUAL(w.connects[1] + w.connects[2], 2);
    rcli_free(c);
    rcli_free(NULL);
}

static void without_a_map_the_seeds_are_asked_at_most_every_100_ms(void)
{
    world();
    w.no_cluster = 1; /* redis_cluster names a server that is no cluster */
    owner_range(0, RSLOT_COUNT - 1, 7001);
    struct rcli *c = client("127.0.0.1:7001");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "foo"), "7001 GET foo");
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7001 GET foo | 7001 GET bar");
    w.now += 100;
    CU_ASSERT_STRING_EQUAL(command(c, "GET %s", "bar"), "7001 GET bar");
    CU_ASSERT_STRING_EQUAL(sent(), "7001 CLUSTER SLOTS | 7001 GET bar");
    rcli_free(c);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"the_first_command_loads_the_map_then_goes_to_its_slot",
         the_first_command_loads_the_map_then_goes_to_its_slot},
        {"moved_retries_on_the_new_node_and_refreshes_the_map",
         moved_retries_on_the_new_node_and_refreshes_the_map},
        {"ask_goes_to_the_importing_node_without_changing_the_map",
         ask_goes_to_the_importing_node_without_changing_the_map},
        {"tryagain_is_sent_again_from_the_map_with_its_wait",
         tryagain_is_sent_again_from_the_map_with_its_wait},
        {"tryagain_of_the_migrating_node_is_sent_again_too",
         tryagain_of_the_migrating_node_is_sent_again_too},
        {"tryagain_follows_moved_once_the_migration_is_over",
         tryagain_follows_moved_once_the_migration_is_over},
        {"tryagain_is_the_reply_after_five_resends", tryagain_is_the_reply_after_five_resends},
        {"redirects_stop_after_five", redirects_stop_after_five},
        {"a_failed_node_answers_null_and_the_map_is_found_again",
         a_failed_node_answers_null_and_the_map_is_found_again},
        {"nodes_that_left_the_map_are_closed", nodes_that_left_the_map_are_closed},
        {"closed_connections_are_dropped_and_reset_keeps_healthy_ones",
         closed_connections_are_dropped_and_reset_keeps_healthy_ones},
        {"a_pipeline_goes_to_each_node_once_and_answers_in_order",
         a_pipeline_goes_to_each_node_once_and_answers_in_order},
        {"moved_inside_a_pipeline_resends_that_command_alone",
         moved_inside_a_pipeline_resends_that_command_alone},
        {"keyless_commands_go_with_their_keyed_neighbours",
         keyless_commands_go_with_their_keyed_neighbours},
        {"a_moved_write_takes_its_wait_along", a_moved_write_takes_its_wait_along},
        {"moved_inside_a_transaction_is_not_resent", moved_inside_a_transaction_is_not_resent},
        {"an_unread_pipeline_is_forgotten", an_unread_pipeline_is_forgotten},
        {"seeds_come_from_the_configuration", seeds_come_from_the_configuration},
        {"without_a_map_the_seeds_are_asked_at_most_every_100_ms",
         without_a_map_the_seeds_are_asked_at_most_every_100_ms},
    };
    return unit_run_suite("rcli", NULL, UNIT_CASES(tests));
}
