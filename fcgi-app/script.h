/*
 * script.h - runs the embedded Lua scripts (the files of lua/) by SHA through a
 * request thread's Redis client.
 *
 * A script's SHA depends on its text only, so it is the same on every node of a
 * cluster and after every reconnect: each thread learns it with one SCRIPT LOAD
 * (on any node) and keeps it (struct app_thread's script_sha). EVALSHA is routed
 * by the script's first key like any command; a node that does not have the
 * script (a restart, SCRIPT FLUSH, a node that never ran it) answers NOSCRIPT,
 * and the same call is made once as EVAL with the source, which also caches the
 * script on that node. Thread-safe in the sense of app.h: a thread only touches
 * its own struct app_thread.
 */
#ifndef COUPON_SCRIPT_H
#define COUPON_SCRIPT_H

#include <stddef.h>

#include <hiredis/hiredis.h>

enum script_id { SCRIPT_ISSUE, SCRIPT_ROLLBACK, SCRIPT_META_UPDATE, SCRIPT_REDEEM, SCRIPT_COUNT_ };

struct app_thread;

/*
 * argv[0] and argv[1] (EVALSHA and the SHA) are filled here; argv[2..] are numkeys,
 * the keys and the arguments. Returns the reply (the caller frees it), or NULL when
 * Redis is unreachable or the connection dropped (app_redis_failed was called).
 */
redisReply *script_run(struct app_thread *t, enum script_id id, int argc, const char **argv,
                       size_t *argvlen);

/*
 * script_run followed by WAIT replicas timeout_ms in the same round trip, on the
 * same connection (so WAIT covers the script's writes): *acked is the number of
 * replicas WAIT reported, 0 when it answered anything else. NULL as script_run.
 */
redisReply *script_run_wait(struct app_thread *t, enum script_id id, int argc, const char **argv,
                            size_t *argvlen, int replicas, int timeout_ms, long long *acked);

/*
 * For a caller that queues EVALSHA itself (a pipeline: fcgi-app/issue.c): learns the
 * SHA into t->script_sha[id] unless known, with one SCRIPT LOAD - so call it before
 * the first command of the pipeline. CP_OK or CP_ERR_UNAVAILABLE.
 */
int script_prepare(struct app_thread *t, enum script_id id);
/* True for the NOSCRIPT error: the node lacks the script; run it with script_run. */
int script_is_noscript(const redisReply *r);

#endif
