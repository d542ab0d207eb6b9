/*
 * script.h - runs the embedded Lua scripts (the files of lua/) by SHA on a
 * request thread's Redis client, with the thread's own cache of their SHAs.
 *
 * A script's SHA depends on its text only, so it is the same on every node of a
 * cluster and after every reconnect: each thread learns it with one SCRIPT LOAD
 * (on any node) and keeps it in its struct script_cache. EVALSHA is routed by the
 * script's first key like any command; a node that does not have the script (a
 * restart, SCRIPT FLUSH, a node that never ran it) answers NOSCRIPT, and the same
 * call is made once as EVAL with the source, which also caches the script on
 * that node. What a script is given - numkeys, a coupon's keys, the arguments -
 * common/credis builds (struct credis_script); this module only runs it.
 *
 * Failures: a NULL reply means no reply (Redis unreachable, the connection
 * dropped) or a script that could not be loaded; the caller counts it and resets
 * its client (app_redis_failed). A cache belongs to one thread.
 */
#ifndef COUPON_SCRIPT_H
#define COUPON_SCRIPT_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "metrics.h"
#include "rcli.h"

enum script_id { SCRIPT_ISSUE, SCRIPT_ROLLBACK, SCRIPT_META_UPDATE, SCRIPT_REDEEM, SCRIPT_COUNT_ };

/* One thread's SHAs. */
struct script_cache;

/* An empty cache; each (re)load is counted in metrics (M_SCRIPT_RELOADS, may be NULL).
 * NULL when out of memory. */
struct script_cache *script_cache_new(struct metrics *metrics);
/* NULL: no-op. */
void script_cache_free(struct script_cache *sc);

/*
 * argv[0] and argv[1] (EVALSHA and the SHA) are filled here; argv[2..] are numkeys,
 * the keys and the arguments. Returns the reply (the caller frees it), or NULL.
 */
redisReply *script_run(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                       const char **argv, size_t *argvlen);

/*
 * script_run followed by WAIT replicas timeout_ms in the same round trip, on the
 * same connection (so WAIT covers the script's writes): *acked is the number of
 * replicas WAIT reported, 0 when it answered anything else. NULL as script_run.
 */
redisReply *script_run_wait(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                            const char **argv, size_t *argvlen, int replicas, int timeout_ms,
                            long long *acked);

/*
 * A pipeline of one script's runs (the issue path's, one per worker loop round):
 * script_prepare learns the SHA (one SCRIPT LOAD unless known) - before the first
 * command is queued; script_append queues one EVALSHA (argv[0..1] filled here, as
 * script_run); script_reply takes the next reply, in order (rcli_get_reply).
 * CP_OK, or CP_ERR_UNAVAILABLE.
 */
int script_prepare(struct script_cache *sc, struct rcli *r, enum script_id id);
int script_append(struct script_cache *sc, struct rcli *r, enum script_id id, int argc,
                  const char **argv, size_t *argvlen);
int script_reply(struct rcli *r, redisReply **out);
/* True for the NOSCRIPT error: the node lacks the script; run it with script_run. */
int script_is_noscript(const redisReply *r);

#endif
