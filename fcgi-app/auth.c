#include "first.h"

#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/sha.h>

#include "clock.h"
#include "cp_err.h"
#include "decimal.h"
#include "jwks.h"
#include "jwtv.h"
#include "log.h"
#include "lru.h"
#include "problem.h"

/* What the cache keeps of a verified token. */
struct cached_identity {
    int64_t user_id;
    int64_t exp;
    unsigned scopes;
    unsigned keys_gen; /* the key set it was verified with (struct auth.keys_gen) */
};

/* The identity of a JWKS file on disk: any change of these means "load it again". */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct auth {
    const struct cp_conf *conf;
    struct metrics *metrics;
    struct ratelimit *rl;
    int mode; /* enum conf_auth_mode */
    /* auth_mode = jwt */
    struct jwtv_policy policy;
    pthread_rwlock_t keys_lock; /* guards keys: verifications read, a reload swaps */
    struct jwks *keys;
    pthread_mutex_t reload_lock; /* one reloader at a time; guards file and bad_file */
    struct file_id file;
    struct file_id bad_file; /* a version that did not load: logged once, not retried */
    _Atomic int64_t next_check_ms;
    /* Counts key-set swaps. An entry verified with an older set is a miss: a token
     * verified while the swap ran may reach the cache after lru_clear emptied it. */
    _Atomic unsigned keys_gen;
    struct lru *cache; /* SHA-256 of a token -> struct cached_identity; NULL: no cache */
    int locks_ready;
};

#define CACHE_MAX_TTL_MS (3600 * 1000) /* an entry lives at most this long, and never past exp */

static void count(struct auth *a, enum metrics_counter c)
{
    if (a->metrics != NULL)
        metrics_add(a->metrics, c, 1);
}

static int file_id_of(const char *path, struct file_id *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return CP_ERR_SYSTEM;
    *out = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
    return CP_OK;
}

static int file_id_equal(const struct file_id *x, const struct file_id *y)
{
    return x->dev == y->dev && x->ino == y->ino && x->size == y->size &&
           x->mtime.tv_sec == y->mtime.tv_sec && x->mtime.tv_nsec == y->mtime.tv_nsec &&
           x->ctime.tv_sec == y->ctime.tv_sec && x->ctime.tv_nsec == y->ctime.tv_nsec;
}

/* Loads the JWKS file if it changed since the last look; keeps the running keys when
 * the new version does not load. Called at most every AUTH_KEYS_CHECK_MS per process. */
static void keys_reload_if_changed(struct auth *a)
{
    int64_t now = clock_mono_ms();
    int64_t due = atomic_load_explicit(&a->next_check_ms, memory_order_relaxed);
    if (now < due ||
        !atomic_compare_exchange_strong(&a->next_check_ms, &due, now + AUTH_KEYS_CHECK_MS))
        return;
    if (pthread_mutex_trylock(&a->reload_lock) != 0)
        return;
    struct file_id now_file;
    if (file_id_of(a->conf->auth_jwks_file, &now_file) != CP_OK) {
        /* A rename-into-place leaves a moment without the file; keep what runs. */
        goto out;
    }
    if (file_id_equal(&now_file, &a->file) || file_id_equal(&now_file, &a->bad_file))
        goto out;
    char err[256];
    struct jwks *fresh = jwks_load(a->conf->auth_jwks_file, err, sizeof err);
    if (fresh == NULL) {
        log_error("auth: %s changed but cannot be used (%s); keeping the running keys",
                  a->conf->auth_jwks_file, err);
        a->bad_file = now_file;
        goto out;
    }
    pthread_rwlock_wrlock(&a->keys_lock);
    struct jwks *old = a->keys;
    a->keys = fresh;
    atomic_fetch_add(&a->keys_gen, 1);
    pthread_rwlock_unlock(&a->keys_lock);
    /* A removed key's tokens must stop working now, not when their entries expire. */
    if (a->cache != NULL)
        lru_clear(a->cache);
    a->file = now_file;
    jwks_free(old);
    count(a, M_AUTH_KEY_RELOADS);
    log_info("auth: loaded %zu keys from %s", jwks_count(fresh), a->conf->auth_jwks_file);
out:
    pthread_mutex_unlock(&a->reload_lock);
}

static int setup_jwt(struct auth *a, char *err, size_t errlen)
{
    const struct cp_conf *c = a->conf;
    if (c->auth_jwks_file[0] == '\0' || c->auth_issuer[0] == '\0' || c->auth_audience[0] == '\0') {
        snprintf(err, errlen,
                 "auth_mode = jwt needs auth_jwks_file, auth_issuer and "
                 "auth_audience");
        return CP_ERR_INVALID;
    }
    unsigned algs = 0;
    if (jwtv_algs_parse(c->auth_algorithms, &algs) != CP_OK) {
        snprintf(err, errlen, "auth_algorithms: '%s' is not a list of RS256, ES256, PS256",
                 c->auth_algorithms);
        return CP_ERR_INVALID;
    }
    a->policy = (struct jwtv_policy){algs, c->auth_issuer, c->auth_audience, c->auth_user_claim,
                                     c->auth_leeway_s};
    if (jwtv_policy_check(&a->policy) != CP_OK) {
        snprintf(err, errlen, "auth_user_claim or auth_leeway_s cannot be used");
        return CP_ERR_INVALID;
    }
    if (file_id_of(c->auth_jwks_file, &a->file) != CP_OK) {
        snprintf(err, errlen, "auth_jwks_file %s: %s", c->auth_jwks_file, strerror(errno));
        return CP_ERR_SYSTEM;
    }
    char why[256];
    a->keys = jwks_load(c->auth_jwks_file, why, sizeof why);
    if (a->keys == NULL) {
        snprintf(err, errlen, "auth_jwks_file %s: %s", c->auth_jwks_file, why);
        return CP_ERR_INVALID;
    }
    if (c->auth_token_cache > 0) {
        struct lru_config lc = {(size_t)c->auth_token_cache, CACHE_MAX_TTL_MS, NULL, NULL};
        a->cache = lru_new(&lc);
        if (a->cache == NULL) {
            snprintf(err, errlen, "out of memory for the token cache");
            return CP_ERR_NOMEM;
        }
    }
    atomic_store(&a->next_check_ms, clock_mono_ms() + AUTH_KEYS_CHECK_MS);
    return CP_OK;
}

struct auth *auth_new(const struct cp_conf *conf, struct metrics *metrics, struct ratelimit *rl,
                      char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->conf = conf;
    a->metrics = metrics;
    a->rl = rl;
    a->mode = conf->auth_mode;
    if (pthread_rwlock_init(&a->keys_lock, NULL) != 0) {
        snprintf(err, errlen, "pthread_rwlock_init failed");
        free(a);
        return NULL;
    }
    if (pthread_mutex_init(&a->reload_lock, NULL) != 0) {
        snprintf(err, errlen, "pthread_mutex_init failed");
        pthread_rwlock_destroy(&a->keys_lock);
        free(a);
        return NULL;
    }
    a->locks_ready = 1;
    int rc = CP_OK;
    switch (a->mode) {
    case CONF_AUTH_JWT: rc = setup_jwt(a, err, errlen); break;
    case CONF_AUTH_GATEWAY:
        if (conf->auth_gateway_param[0] == '\0' ||
            strncasecmp(conf->auth_gateway_param, "HTTP_", 5) == 0) {
            snprintf(err, errlen,
                     "auth_gateway_param '%s': a client can set any HTTP_ "
                     "parameter (it is a request header); use a name the web "
                     "server alone sets, e.g. COUPON_USER_ID",
                     conf->auth_gateway_param);
            rc = CP_ERR_INVALID;
        }
        break;
    default: break;
    }
    if (rc != CP_OK) {
        auth_free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    lru_free(a->cache);
    jwks_free(a->keys);
    if (a->locks_ready) {
        pthread_rwlock_destroy(&a->keys_lock);
        pthread_mutex_destroy(&a->reload_lock);
    }
    free(a);
}

const char *auth_mode_name(const struct auth *a)
{
    switch (a->mode) {
    case CONF_AUTH_JWT: return "jwt";
    case CONF_AUTH_GATEWAY: return "gateway";
    default: return "none";
    }
}

/* The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 9110 11.1),
 * or NULL. */
static const char *bearer_token(const struct http_request *req, size_t *len)
{
    static const char scheme[] = "Bearer";
    const char *h = req->authorization;
    if (h == NULL || strncasecmp(h, scheme, sizeof scheme - 1) != 0 || h[sizeof scheme - 1] != ' ')
        return NULL;
    const char *token = h + sizeof scheme - 1;
    while (*token == ' ')
        token++;
    *len = strnlen(token, CP_MAX_HEADER_BYTES + 1);
    return *len > 0 ? token : NULL;
}

/* 401 for a request without usable credentials: RFC 6750 3.1 - no error code when none
 * were sent, error="invalid_token" (and what was wrong) when they were refused. */
static int refuse(struct auth *a, struct http_response *resp, const char *reason,
                  const char *detail)
{
    count(a, M_AUTH_REFUSED);
    problem_fail(resp, CP_ERR_UNAUTHORIZED, "%s", detail);
    if (reason == NULL)
        http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"coupon\"");
    else
        http_response_header(resp, "WWW-Authenticate",
                             "Bearer realm=\"coupon\", error=\"invalid_token\", "
                             "error_description=\"%s\"",
                             reason);
    return CP_ERR_UNAUTHORIZED;
}

/* What a client is told of a refusal (error_description): what it can act on - get a
 * new token, fix its clock, send a shorter one - and nothing that tells a forger which
 * of its attempts came closer (the exact reason is logged at debug level). */
static const char *public_reason(enum jwtv_refusal r)
{
    switch (r) {
    case JWTV_EXPIRED: return "expired";
    case JWTV_NOT_YET_VALID: return "not yet valid";
    case JWTV_TOO_LARGE: return "too large";
    default: return "invalid";
    }
}

/* Verifies a bearer token through the cache. CP_OK, or CP_ERR_INVALID with *why. */
static int verify_token(struct auth *a, const char *token, size_t len, struct http_caller *out,
                        const char **why)
{
    int64_t now_s = (int64_t)time(NULL);
    if (len > CP_MAX_TOKEN_BYTES) {
        *why = public_reason(JWTV_TOO_LARGE);
        return CP_ERR_INVALID;
    }
    keys_reload_if_changed(a);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct cached_identity ci;
    size_t got = 0;
    if (a->cache != NULL) {
        SHA256((const unsigned char *)token, len, digest);
        if (lru_get(a->cache, digest, sizeof digest, &ci, sizeof ci, &got) == CP_OK &&
            got == sizeof ci && now_s <= ci.exp + a->policy.leeway_s &&
            ci.keys_gen == atomic_load(&a->keys_gen)) {
            count(a, M_AUTH_CACHED);
            *out = (struct http_caller){1, ci.user_id, ci.scopes};
            return CP_OK;
        }
    }
    struct jwtv_claims claims;
    enum jwtv_refusal refusal = JWTV_OK;
    pthread_rwlock_rdlock(&a->keys_lock);
    int rc = jwtv_verify(a->keys, &a->policy, token, len, now_s, &claims, &refusal);
    unsigned keys_gen = atomic_load(&a->keys_gen); /* stable while the read lock is held */
    pthread_rwlock_unlock(&a->keys_lock);
    if (rc != CP_OK) {
        *why = rc == CP_ERR_INVALID ? public_reason(refusal) : "invalid";
        log_debug("auth: bearer token refused: %s",
                  rc == CP_ERR_INVALID ? jwtv_refusal_name(refusal) : cp_strerror(rc));
        return CP_ERR_INVALID;
    }
    count(a, M_AUTH_VERIFIED);
    unsigned scopes = 0;
    if (claims.scopes & JWTV_SCOPE_ADMIN)
        scopes |= HTTP_SCOPE_ADMIN;
    if (claims.scopes & JWTV_SCOPE_CHECKOUT)
        scopes |= HTTP_SCOPE_CHECKOUT;
    *out = (struct http_caller){1, claims.user_id, scopes};
    int64_t ttl_ms = (claims.exp + a->policy.leeway_s - now_s) * 1000;
    if (a->cache != NULL && ttl_ms > 0) {
        ci = (struct cached_identity){claims.user_id, claims.exp, scopes, keys_gen};
        if (ttl_ms > CACHE_MAX_TTL_MS)
            ttl_ms = CACHE_MAX_TTL_MS;
        (void)lru_put_ttl(a->cache, digest, sizeof digest, &ci, sizeof ci, ttl_ms);
    }
    return CP_OK;
}

/* Constant time in the length of the configured token, whatever is given. */
static int token_equal(const char *expected, const char *given, size_t given_len)
{
    size_t n = strlen(expected);
    unsigned diff = (unsigned)(n ^ given_len);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
    return diff == 0;
}

/* 1 when the query string carries an access_token (refused: RFC 6750 5.3). */
static int token_in_query(const struct http_request *req)
{
    const char *v;
    size_t n;
    int rc = http_query_param(req->query, "access_token", &v, &n);
    return rc == CP_OK || rc == CP_ERR_INVALID;
}

static int identify_gateway(struct auth *a, const struct http_request *req, struct http_caller *out,
                            struct http_response *resp)
{
    const char *v =
        req->params != NULL ? FCGX_GetParam(a->conf->auth_gateway_param, req->params) : NULL;
    if (v == NULL || v[0] == '\0')
        return refuse(a, resp, NULL, "the gateway identified nobody: sign in first");
    int64_t id = 0;
    size_t n = strnlen(v, 21);
    if (n > 20 || decimal_parse_id(v, n, &id) != CP_OK) {
        log_warn("auth: the gateway's %s is not a user id (1..2^63-1); refused",
                 a->conf->auth_gateway_param);
        return refuse(a, resp, "bad gateway identity", "the gateway's identity is not a user id");
    }
    *out = (struct http_caller){1, id, 0};
    return CP_OK;
}

int auth_identify(struct auth *a, const struct http_request *req, struct http_caller *out,
                  struct http_response *resp)
{
    *out = (struct http_caller){0, 0, 0};
    if (token_in_query(req))
        return refuse(a, resp, "token in URL",
                      "tokens in the URL are refused (RFC 6750 5.3): send Authorization: Bearer");
    switch (a->mode) {
    case CONF_AUTH_NONE: return CP_OK;
    case CONF_AUTH_GATEWAY: return identify_gateway(a, req, out, resp);
    default: break;
    }
    size_t len = 0;
    const char *token = bearer_token(req, &len);
    if (token == NULL)
        return refuse(a, resp, NULL, "send Authorization: Bearer <token>");
    /* The operator's static token is an admin's identity on user routes too (the
     * console reads any user's issuance with it); it names no user, so it claims
     * nothing and redeems nothing. */
    if (a->conf->admin_token[0] != '\0' && token_equal(a->conf->admin_token, token, len)) {
        *out = (struct http_caller){1, 0, HTTP_SCOPE_ADMIN};
        return CP_OK;
    }
    const char *why = "invalid token";
    if (verify_token(a, token, len, out, &why) != CP_OK)
        return refuse(a, resp, why, "the bearer token was refused");
    return CP_OK;
}

int auth_admin(struct auth *a, const struct http_request *req, struct http_response *resp)
{
    const char *static_token = a->conf->admin_token;
    int jwt = a->mode == CONF_AUTH_JWT;
    if (static_token[0] == '\0' && !jwt) {
        count(a, M_AUTH_FORBIDDEN);
        problem_fail(resp, CP_ERR_FORBIDDEN, "the admin API is disabled (no admin_token)");
        return 0;
    }
    size_t len = 0;
    const char *token = bearer_token(req, &len);
    if (token == NULL || token_in_query(req)) {
        count(a, M_AUTH_REFUSED);
        problem_fail(resp, CP_ERR_UNAUTHORIZED, "send Authorization: Bearer <admin token>");
        http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"coupon-admin\"");
        return 0;
    }
    if (static_token[0] != '\0' && token_equal(static_token, token, len))
        return 1;
    struct http_caller who;
    const char *why = NULL;
    if (jwt && memchr(token, '.', len) != NULL) {
        if (verify_token(a, token, len, &who, &why) != CP_OK) {
            (void)refuse(a, resp, why, "the bearer token was refused");
            return 0;
        }
        if (who.scopes & HTTP_SCOPE_ADMIN)
            return 1;
        count(a, M_AUTH_FORBIDDEN);
        problem_fail(resp, CP_ERR_FORBIDDEN, "the token lacks the scope coupon:admin");
        return 0;
    }
    count(a, M_AUTH_FORBIDDEN);
    problem_fail(resp, CP_ERR_FORBIDDEN, "wrong admin token");
    return 0;
}

int auth_rate(struct auth *a, enum ratelimit_class c, int64_t user_id, struct http_response *resp)
{
    if (a->rl == NULL)
        return 1;
    int64_t retry_ms = 0;
    if (ratelimit_take(a->rl, c, user_id, clock_mono_ms(), &retry_ms) == CP_OK)
        return 1;
    count(a, M_RATE_LIMITED);
    int64_t retry_s = (retry_ms + 999) / 1000;
    problem_fail(resp, CP_ERR_RATE_LIMITED, "too many attempts by user %lld; retry in %lld s",
                 (long long)user_id, (long long)(retry_s < 1 ? 1 : retry_s));
    http_response_header(resp, "Retry-After", "%lld", (long long)(retry_s < 1 ? 1 : retry_s));
    return 0;
}
