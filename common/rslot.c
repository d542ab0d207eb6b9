#include "first.h"

#include "rslot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint16_t rslot_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int rslot_of_key(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return rslot_crc16(open + 1, (size_t)(close - open - 1)) % RSLOT_COUNT;
    }
    return rslot_crc16(key, len) % RSLOT_COUNT;
}

/* A RESP length ("123\r\n") at *p; advances past it. -1 when malformed. */
static long resp_number(const char **p, const char *end)
{
    long n = 0;
    const char *s = *p;
    while (s < end && *s >= '0' && *s <= '9' && n < 1000000000L)
        n = n * 10 + (*s++ - '0');
    if (s == *p || end - s < 2 || s[0] != '\r' || s[1] != '\n')
        return -1;
    *p = s + 2;
    return n;
}

/* The first `max` arguments of a formatted command; returns its argc, or -1. */
static int command_args(const char *cmd, size_t len, const char **arg, size_t *alen, int max)
{
    const char *p = cmd, *end = cmd + len;
    if (p == end || *p++ != '*')
        return -1;
    long argc = resp_number(&p, end);
    if (argc < 0 || argc > 1000000)
        return -1;
    for (int i = 0; i < argc && i < max; i++) {
        long l;
        if (p == end || *p++ != '$' || (l = resp_number(&p, end)) < 0 || end - p < l + 2)
            return -1;
        arg[i] = p;
        alen[i] = (size_t)l;
        p += l + 2;
    }
    return (int)argc;
}

static int name_in(const char *arg, size_t len, const char *const *names)
{
    for (; *names != NULL; names++)
        if (strlen(*names) == len && strncasecmp(arg, *names, len) == 0)
            return 1;
    return 0;
}

/* Commands whose argv[1], if any, is not a key. */
static const char *const keyless[] = {
    "PING",         "ECHO",      "SCRIPT",  "PUBLISH",   "WAIT",       "MULTI",     "EXEC",
    "DISCARD",      "INFO",      "TIME",    "CLUSTER",   "ASKING",     "CLIENT",    "DBSIZE",
    "AUTH",         "SELECT",    "HELLO",   "QUIT",      "READONLY",   "READWRITE", "CONFIG",
    "COMMAND",      "FLUSHALL",  "FLUSHDB", "SUBSCRIBE", "PSUBSCRIBE", "PUBSUB",    "UNSUBSCRIBE",
    "PUNSUBSCRIBE", "RANDOMKEY", "ROLE",    "LASTSAVE",  "SLOWLOG",    "LATENCY",   "MEMORY",
    "FUNCTION",     "ACL",       "DEBUG",   "SHUTDOWN",  "MONITOR",    "SAVE",      "BGSAVE",
    "BGREWRITEAOF", "SWAPDB",    NULL};
/* Commands with numkeys at argv[2] and their first key at argv[3]. */
static const char *const with_numkeys[] = {"EVAL",  "EVALSHA",  "EVAL_RO", "EVALSHA_RO",
                                           "FCALL", "FCALL_RO", NULL};
static const char *const multi[] = {"MULTI", NULL};
static const char *const tx_end[] = {"EXEC", "DISCARD", NULL};

int rslot_of_command(const char *cmd, size_t len, enum rslot_kind *kind)
{
    const char *arg[4];
    size_t alen[4];
    int argc = command_args(cmd, len, arg, alen, 4);
    if (kind != NULL)
        *kind = argc < 1                           ? RSLOT_PLAIN
                : name_in(arg[0], alen[0], multi)  ? RSLOT_MULTI
                : name_in(arg[0], alen[0], tx_end) ? RSLOT_END
                                                   : RSLOT_PLAIN;
    if (argc < 1)
        return -1;
    if (name_in(arg[0], alen[0], with_numkeys)) {
        if (argc < 4 || alen[2] == 0 || (alen[2] == 1 && arg[2][0] == '0'))
            return -1;
        return rslot_of_key(arg[3], alen[3]);
    }
    if (argc < 2 || name_in(arg[0], alen[0], keyless))
        return -1;
    return rslot_of_key(arg[1], alen[1]);
}

int rslot_redirect(const redisReply *r, const char *self, int *ask, int *slot, char *host,
                   size_t cap, int *port)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return 0;
    const char *s = r->str;
    if (strncmp(s, "MOVED ", 6) == 0) {
        *ask = 0;
        s += 6;
    } else if (strncmp(s, "ASK ", 4) == 0) {
        *ask = 1;
        s += 4;
    } else {
        return 0;
    }
    char *end;
    long v = strtol(s, &end, 10);
    const char *colon = strrchr(end, ':');
    if (end == s || *end != ' ' || v < 0 || v >= RSLOT_COUNT || colon == NULL)
        return 0;
    const char *h = end + 1;
    size_t hlen = (size_t)(colon - h);
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
        return 0;
    if (hlen == 0) {
        h = self;
        hlen = strlen(self);
    }
    if (hlen >= cap)
        return 0;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *slot = (int)v;
    *port = (int)p;
    return 1;
}

int rslot_range(const redisReply *e, const char *asked, const char **host, int *port, int *from,
                int *to)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER)
        return 0;
    const redisReply *m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
        return 0;
    long long a = e->element[0]->integer, b = e->element[1]->integer, p = m->element[1]->integer;
    if (a < 0 || b >= RSLOT_COUNT || a > b || p < 1 || p > 65535)
        return 0;
    *host = m->element[0]->len == 0 ? asked : m->element[0]->str;
    /* "?": the node does not know the endpoint (Redis 7, cluster-preferred-endpoint-type). */
    if (strcmp(*host, "?") == 0)
        return 0;
    *from = (int)a;
    *to = (int)b;
    *port = (int)p;
    return 1;
}
