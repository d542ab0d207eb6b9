/*
 * redis_fixture.h - a private redis-server for unit tests that need the real
 * thing (Lua scripts, the L2 cache): started on a unix socket in a fresh
 * temporary folder, no persistence, stopped and removed at the end.
 */
#ifndef COUPON_REDIS_FIXTURE_H
#define COUPON_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>

/* 0 started, 77 redis-server not installed (skip), -1 failure. */
int redis_fixture_start(void);
void redis_fixture_stop(void);
/* A new connection to it (NULL on failure); the caller frees it. */
redisContext *redis_fixture_connect(void);

#endif
