/*
 * redis_fixture.h - a private redis-server for unit tests that need the real
 * thing (Lua scripts, the L2 cache, rcli's single-server path): started in a
 * fresh temporary folder on a unix socket and on a free loopback TCP port, no
 * persistence, stopped and removed at the end.
 */
#ifndef COUPON_REDIS_FIXTURE_H
#define COUPON_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>

#include "rcli.h"
#include "unit_main.h"

/* 0 started, 77 redis-server not installed (skip), -1 failure. */
int redis_fixture_start(void);
void redis_fixture_stop(void);
/* A new connection to it (NULL on failure); the caller frees it. */
redisContext *redis_fixture_connect(void);
/* Its TCP port on 127.0.0.1. */
int redis_fixture_port(void);
/* A new single-server client of it (NULL on failure); the caller rcli_frees it. */
struct rcli *redis_fixture_client(void);
/* Starts the server, runs the suite (unit_main.h) and stops it: the suite's exit status,
 * 77 (skipped) without redis-server, 2 when it would not start. */
int redis_fixture_run(const char *suite, const struct unit_case *cases, size_t n);

#endif
