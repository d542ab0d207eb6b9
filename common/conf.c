#include "first.h"

#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "whurl.h"

enum key_type { KEY_STR, KEY_INT, KEY_CHOICE };

struct key_desc {
    const char *name;
    enum key_type type;
    size_t offset, size; /* of the field in struct cp_conf */
    const char *default_value;
    long min, max; /* for KEY_INT */
    int secret;
    /* KEY_CHOICE: the allowed words, NULL-terminated; the int field holds the index.
     * KEY_STR with choices: the text must be one of them. */
    const char *const *choices;
    /* KEY_STR: a further check of the text (NULL: any text that fits). */
    int (*check)(const char *value, char *errbuf, size_t errlen);
};

static const char *const issue_ack_words[] = {"redis", "kafka", NULL};
static const char *const auth_mode_words[] = {"jwt", "gateway", "none", NULL};
static const char *const log_level_words[] = {"debug", "info", "warn", "error", NULL};

static int check_endpoints(const char *value, char *errbuf, size_t errlen);
static int check_cidrs(const char *value, char *errbuf, size_t errlen);

#define FIELD(f) offsetof(struct cp_conf, f), sizeof(((struct cp_conf *)0)->f)
#define STR(f, d)                                     \
    {                                                 \
#f, KEY_STR, FIELD(f), d, 0, 0, 0, NULL, NULL \
    }
#define SECRET(f, d)                                  \
    {                                                 \
#f, KEY_STR, FIELD(f), d, 0, 0, 1, NULL, NULL \
    }
#define INT(f, d, lo, hi)                               \
    {                                                   \
#f, KEY_INT, FIELD(f), d, lo, hi, 0, NULL, NULL \
    }
#define CHOICE(f, d, words)                               \
    {                                                     \
#f, KEY_CHOICE, FIELD(f), d, 0, 0, 0, words, NULL \
    }
#define WORD(f, d, words)                              \
    {                                                  \
#f, KEY_STR, FIELD(f), d, 0, 0, 0, words, NULL \
    }
#define CHECKED(f, d, fn)                           \
    {                                               \
#f, KEY_STR, FIELD(f), d, 0, 0, 0, NULL, fn \
    }

static const struct key_desc keys[] = {
    STR(listen, "unix:/tmp/coupon-fcgi.sock"),
    INT(workers, "0", 0, 256),
    INT(threads, "0", 0, 1024),
    INT(request_slots, "0", 0, 256),
    STR(metrics_path, "/dev/shm/coupon-fcgi.metrics"),
    SECRET(admin_token, ""),
    INT(max_body_bytes, "4096", 64, CP_MAX_BODY_BYTES),
    CHOICE(auth_mode, "jwt", auth_mode_words),
    STR(auth_jwks_file, ""),
    STR(auth_issuer, ""),
    STR(auth_audience, ""),
    STR(auth_algorithms, "RS256,ES256"),
    STR(auth_user_claim, "sub"),
    INT(auth_leeway_s, "30", 0, 300),
    INT(auth_token_cache, "10000", 0, 1000000),
    STR(auth_gateway_param, "COUPON_USER_ID"),
    INT(ratelimit_issue_per_s, "5", 0, 1000000),
    INT(ratelimit_issue_burst, "10", 1, 1000000),
    INT(ratelimit_redeem_per_s, "5", 0, 1000000),
    INT(ratelimit_redeem_burst, "10", 1, 1000000),
    STR(redis_host, "127.0.0.1"),
    INT(redis_port, "6379", 1, 65535),
    INT(redis_timeout_ms, "1000", 10, 60000),
    CHECKED(redis_cluster, "", check_endpoints),
    INT(redis_wait_replicas, "0", 0, 5),
    INT(redis_wait_timeout_ms, "200", 1, 59999),
    STR(kafka_brokers, "127.0.0.1:9092"),
    STR(kafka_topic, "coupon.issue"),
    STR(kafka_issued_topic, "coupon.issued"),
    STR(kafka_dlq_topic, "coupon.issue.dlq"),
    STR(kafka_redemption_topic, "coupon.redemption"),
    INT(kafka_delivery_timeout_ms, "5000", 100, 300000),
    INT(kafka_linger_ms, "5", 0, 1000),
    INT(kafka_async_linger_ms, "50", 0, 1000),
    CHOICE(issue_ack, "redis", issue_ack_words),
    INT(outbox_max_pending, "100000", 1, 100000000),
    STR(db_host, "127.0.0.1"),
    INT(db_port, "3306", 1, 65535),
    STR(db_socket, ""),
    STR(db_user, "coupon"),
    SECRET(db_password, ""),
    STR(db_name, "coupon"),
    INT(db_timeout_ms, "2000", 100, 60000),
    INT(l1_capacity, "1000", 1, 10000000),
    INT(l1_ttl_ms, "10000", 1, 86400000),
    INT(l2_ttl_s, "1800", 1, 86400 * 30),
    INT(l2_negative_ttl_s, "5", 1, 3600),
    INT(soldout_holders_max, "20000", 0, 1000000),
    STR(consumer_group, "coupon-consumer-group"),
    INT(consumer_batch_max, "2000", 1, CP_BATCH_MAX_EVENTS),
    INT(consumer_batch_ms, "50", 1, 10000),
    INT(consumer_backoff_max_ms, "5000", 10, 600000),
    INT(reconcile_after_s, "30", 1, 86400),
    INT(relay_batch_max, "1000", 1, CP_RELAY_BATCH_MAX),
    INT(relay_poll_ms, "20", 1, 10000),
    CHECKED(webhook_allow_cidrs, "", check_cidrs),
    STR(webhook_ca_file, ""),
    STR(webhook_group, "coupon-webhooks"),
    INT(webhook_connect_timeout_ms, "3000", 10, 60000),
    INT(webhook_timeout_ms, "10000", 100, 120000),
    INT(webhook_retry_base_ms, "5000", 10, 3600000),
    INT(webhook_retry_max_ms, "3600000", 10, 86400000),
    INT(webhook_retry_window_s, "86400", 1, 86400 * 30),
    INT(webhook_poll_ms, "200", 1, 10000),
    SECRET(code_secret, ""),
    WORD(log_level, "info", log_level_words),
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key_desc *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Index of value in words, or -1. */
static int choice_index(const char *const *words, const char *value)
{
    for (int i = 0; words[i] != NULL; i++)
        if (strcmp(words[i], value) == 0)
            return i;
    return -1;
}

static void choice_error(const struct key_desc *k, char *errbuf, size_t errlen)
{
    size_t n = (size_t)snprintf(errbuf, errlen, "%s: expected ", k->name);
    for (int i = 0; k->choices[i] != NULL && n < errlen; i++)
        n += (size_t)snprintf(errbuf + n, errlen - n, "%s%s", i ? "|" : "", k->choices[i]);
}

/* A host as a list entry may name it: a DNS name or IPv4 address, or an IPv6 address
 * (in brackets in the list, so its colons are not the port's). */
static int host_char(char ch, int bracketed)
{
    if (isalnum((unsigned char)ch) || ch == '.')
        return 1;
    return bracketed ? ch == ':' || ch == '%' : ch == '-' || ch == '_';
}

/* One entry, [s, end) without surrounding blanks, into *ep. */
static int parse_endpoint(const char *s, const char *end, struct conf_endpoint *ep, char *errbuf,
                          size_t errlen)
{
    const char *colon = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == ':')
            colon = p;
    if (s == end) {
        snprintf(errbuf, errlen, "empty entry (expected host:port,host:port,...)");
        return CP_ERR_INVALID;
    }
    const char *host = s, *host_end = colon;
    int bracketed = colon != NULL && *s == '[' && colon > s + 1 && colon[-1] == ']';
    if (bracketed) {
        host++;
        host_end--;
    }
    if (colon == NULL || host == host_end) {
        snprintf(errbuf, errlen, "'%.*s': expected host:port", (int)(end - s), s);
        return CP_ERR_INVALID;
    }
    for (const char *p = host; p < host_end; p++)
        if (!host_char(*p, bracketed)) {
            snprintf(errbuf, errlen, "'%.*s': not a host name or address", (int)(end - s), s);
            return CP_ERR_INVALID;
        }
    if ((size_t)(host_end - host) >= sizeof ep->host) {
        snprintf(errbuf, errlen, "host longer than %zu bytes", sizeof ep->host - 1);
        return CP_ERR_INVALID;
    }
    long port = 0;
    const char *p = colon + 1;
    for (; p < end && isdigit((unsigned char)*p) && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    if (p == colon + 1 || p != end || port < 1 || port > 65535) {
        snprintf(errbuf, errlen, "'%.*s': port must be in 1..65535", (int)(end - s), s);
        return CP_ERR_INVALID;
    }
    memcpy(ep->host, host, (size_t)(host_end - host));
    ep->host[host_end - host] = '\0';
    ep->port = (int)port;
    return CP_OK;
}

int conf_endpoints_parse(const char *text, struct conf_endpoint *out, size_t max, size_t *n,
                         char *errbuf, size_t errlen)
{
    *n = 0;
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return CP_OK;
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma != NULL ? comma : s + strlen(s);
        const char *a = s, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (*n == max) {
            snprintf(errbuf, errlen, "more than %zu entries", max);
            return CP_ERR_INVALID;
        }
        if (parse_endpoint(a, b, &out[*n], errbuf, errlen) != CP_OK)
            return CP_ERR_INVALID;
        (*n)++;
        if (comma == NULL)
            return CP_OK;
        s = comma + 1;
    }
}

static int check_endpoints(const char *value, char *errbuf, size_t errlen)
{
    struct conf_endpoint seeds[CP_REDIS_SEEDS_MAX];
    size_t n;
    return conf_endpoints_parse(value, seeds, CP_REDIS_SEEDS_MAX, &n, errbuf, errlen);
}

static int check_cidrs(const char *value, char *errbuf, size_t errlen)
{
    struct whurl_cidrs cidrs;
    return whurl_cidrs_parse(value, &cidrs, errbuf, errlen);
}

static int set_value(struct cp_conf *conf, const struct key_desc *k, const char *value,
                     char *errbuf, size_t errlen)
{
    char *field = (char *)conf + k->offset;
    if (k->choices != NULL && choice_index(k->choices, value) < 0) {
        choice_error(k, errbuf, errlen);
        return CP_ERR_INVALID;
    }
    if (k->type == KEY_CHOICE) {
        *(int *)(void *)field = choice_index(k->choices, value);
        return CP_OK;
    }
    if (k->type == KEY_STR) {
        if (strlen(value) >= k->size) {
            snprintf(errbuf, errlen, "%s: value longer than %zu bytes", k->name, k->size - 1);
            return CP_ERR_INVALID;
        }
        if (k->check != NULL) {
            char msg[160];
            if (k->check(value, msg, sizeof msg) != CP_OK) {
                snprintf(errbuf, errlen, "%s: %s", k->name, msg);
                return CP_ERR_INVALID;
            }
        }
        memcpy(field, value, strlen(value) + 1);
        return CP_OK;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < k->min || v > k->max) {
        snprintf(errbuf, errlen, "%s: expected an integer in %ld..%ld", k->name, k->min, k->max);
        return CP_ERR_INVALID;
    }
    *(int *)(void *)field = (int)v;
    return CP_OK;
}

void conf_defaults(struct cp_conf *conf)
{
    char err[64];
    memset(conf, 0, sizeof *conf);
    for (size_t i = 0; i < NKEYS; i++)
        (void)set_value(conf, &keys[i], keys[i].default_value, err, sizeof err);
}

int conf_set(struct cp_conf *conf, const char *key, const char *value, char *errbuf, size_t errlen)
{
    const struct key_desc *k = find_key(key);
    if (k == NULL) {
        snprintf(errbuf, errlen, "unknown key '%s'", key);
        return CP_ERR_INVALID;
    }
    return set_value(conf, k, value, errbuf, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int load_file(struct cp_conf *conf, const char *path, char *errbuf, size_t errlen)
{
    int rc = CP_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return CP_ERR_SYSTEM;
    }
    char line[CP_CONF_LINE_MAX];
    int lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(errbuf, errlen, "%s:%d: line too long", path, lineno);
            rc = CP_ERR_INVALID;
            goto out;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(errbuf, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = CP_ERR_INVALID;
            goto out;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        char msg[200];
        if (conf_set(conf, key, value, msg, sizeof msg) != CP_OK) {
            snprintf(errbuf, errlen, "%s:%d: %s", path, lineno, msg);
            rc = CP_ERR_INVALID;
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(errbuf, errlen, "%s: read error", path);
        rc = CP_ERR_SYSTEM;
    }
out:
    fclose(f);
    return rc;
}

int conf_load(struct cp_conf *conf, const char *path, char *errbuf, size_t errlen)
{
    conf_defaults(conf);
    if (path != NULL) {
        int rc = load_file(conf, path, errbuf, errlen);
        if (rc != CP_OK)
            return rc;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        char env_name[96] = "COUPON_";
        size_t n = strlen(env_name);
        for (const char *p = keys[i].name; *p && n < sizeof env_name - 1; p++)
            env_name[n++] = (char)toupper((unsigned char)*p);
        env_name[n] = '\0';
        const char *value = getenv(env_name);
        if (value == NULL)
            continue;
        char msg[200];
        if (set_value(conf, &keys[i], value, msg, sizeof msg) != CP_OK) {
            snprintf(errbuf, errlen, "environment %s: %s", env_name, msg);
            return CP_ERR_INVALID;
        }
    }
    /* WAIT holds the connection for its time-out: a reply later than the read time-out
     * would drop a healthy connection instead of answering "not replicated". */
    if (conf->redis_wait_timeout_ms >= conf->redis_timeout_ms) {
        snprintf(errbuf, errlen, "redis_wait_timeout_ms (%d) must be below redis_timeout_ms (%d)",
                 conf->redis_wait_timeout_ms, conf->redis_timeout_ms);
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

void conf_dump(const struct cp_conf *conf, FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *field = (const char *)conf + keys[i].offset;
        if (keys[i].type == KEY_INT)
            fprintf(out, "%s = %d\n", keys[i].name, *(const int *)(const void *)field);
        else if (keys[i].type == KEY_CHOICE)
            fprintf(out, "%s = %s\n", keys[i].name,
                    keys[i].choices[*(const int *)(const void *)field]);
        else if (keys[i].secret)
            fprintf(out, "%s = %s\n", keys[i].name, field[0] ? "********" : "");
        else
            fprintf(out, "%s = %s\n", keys[i].name, field);
    }
}
