/*
 * script.h - runs the embedded Lua scripts (the files of lua/) by SHA on a request
 * thread's Redis connection.
 *
 * Each thread keeps the SHA of every script it has loaded (struct app_thread's
 * script_sha, cleared when its connection is replaced): the first use on a
 * connection costs one SCRIPT LOAD, every later one is a plain EVALSHA, and a
 * NOSCRIPT (Redis restarted, SCRIPT FLUSH) reloads once and retries. Thread-safe
 * in the sense of app.h: a thread only touches its own struct app_thread.
 */
#ifndef COUPON_SCRIPT_H
#define COUPON_SCRIPT_H

#include <stddef.h>

#include <hiredis/hiredis.h>

enum script_id { SCRIPT_ISSUE, SCRIPT_ROLLBACK, SCRIPT_META_UPDATE, SCRIPT_COUNT_ };

struct app_thread;

/*
 * argv[0] and argv[1] (EVALSHA and the SHA) are filled here; argv[2..] are numkeys,
 * the keys and the arguments. Returns the reply (the caller frees it), or NULL when
 * Redis is unreachable or the connection dropped (app_redis_failed was called).
 */
redisReply *script_run(struct app_thread *t, enum script_id id, int argc, const char **argv,
                       size_t *argvlen);

#endif
