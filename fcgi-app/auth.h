/*
 * auth.h - who is asking (issue 24): turns a request's credentials into a
 * struct http_caller, and decides the admin routes.
 *
 * Modes (auth_mode):
 *   jwt     - `Authorization: Bearer <JWT>`, verified by common/jwtv against the
 *             keys of auth_jwks_file (iss, aud, exp/nbf with auth_leeway_s, the
 *             allowed algorithms). The file is stat()ed at most every
 *             AUTH_KEYS_CHECK_MS; a changed file is loaded and swapped in (a file
 *             that does not parse keeps the running keys, logged once), so keys
 *             rotate without a restart; SIGHUP starts a new generation of workers,
 *             which load it anew as well.
 *   gateway - the web server authenticated the user (nginx auth_request, lighttpd
 *             mod_auth) and passes the id in the FastCGI parameter
 *             auth_gateway_param. Parameters a client can set all begin with HTTP_
 *             (they are request headers), so a name without that prefix cannot come
 *             from a client; auth_new refuses an HTTP_ name.
 *   none    - nobody is identified (http_caller.verified = 0): the request names its
 *             user, as before issue 24. For benchmarks and local trials only.
 *
 * A token in the query string (access_token=) is refused in every mode: URLs end up
 * in logs and Referer headers (RFC 6750 5.3).
 *
 * Verified tokens are kept in a per-process LRU keyed by the SHA-256 of the token's
 * bytes (auth_token_cache entries), each entry never past the token's exp + leeway;
 * the cache is emptied whenever the keys change, so a removed key's tokens stop
 * working with the reload. Per-user rate limits (ratelimit.h) are taken here too, so
 * the handlers have one call for it.
 *
 * Admin routes accept the static admin_token (compared in constant time) or, with
 * auth_mode = jwt, a token whose scope holds coupon:admin.
 *
 * One struct auth per worker process, shared by its threads (the keys behind a
 * read-write lock, the cache has its own lock). Secrets and tokens are never logged.
 */
#ifndef COUPON_AUTH_H
#define COUPON_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http.h"
#include "metrics.h"
#include "ratelimit.h"

#define AUTH_KEYS_CHECK_MS 250 /* how often the JWKS file is checked for a change */

struct auth;

/* NULL with the reason in err (the JWKS file missing or unusable with auth_mode = jwt,
 * an unusable auth_gateway_param, ...). metrics may be NULL; rl may be NULL (no
 * limits). */
struct auth *auth_new(const struct cp_conf *conf, struct metrics *metrics, struct ratelimit *rl,
                      char *err, size_t errlen);
void auth_free(struct auth *a);

/* "jwt", "gateway" or "none". */
const char *auth_mode_name(const struct auth *a);

/*
 * Establishes who is asking. CP_OK with *out filled (verified = 0 under auth_mode =
 * none); CP_ERR_UNAUTHORIZED with the 401 problem and its WWW-Authenticate header set in
 * resp otherwise.
 */
int auth_identify(struct auth *a, const struct http_request *req, struct http_caller *out,
                  struct http_response *resp);

/* 1 when the request may use the admin API; otherwise 0 with the 401/403 problem set. */
int auth_admin(struct auth *a, const struct http_request *req, struct http_response *resp);

/* Takes one attempt of `user_id` from its RATELIMIT_* class: 1 allowed; 0 with the 429
 * problem and Retry-After set. */
int auth_rate(struct auth *a, enum ratelimit_class c, int64_t user_id, struct http_response *resp);

#endif
