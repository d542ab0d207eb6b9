/*
 * router.h - maps (method, path) to a handler. The route table is the one list
 * of endpoints; an unknown path is 404, a known path with another method is
 * 405 with an Allow header, a malformed id in the path is 400. HEAD is served
 * wherever GET is. Before a user route's handler runs, the router establishes who
 * is asking (auth.h) into req->caller and checks that the caller may act for the
 * user the path names ("me" stands for the caller); the handlers check what only
 * the body or the store knows (a claim's userId, a code's owner). Stateless;
 * thread-safe.
 */
#ifndef COUPON_ROUTER_H
#define COUPON_ROUTER_H

#include <stddef.h>
#include <stdio.h>

#include "app.h"
#include "http.h"
#include "metrics.h"

/* Handles the request; returns the route for metrics. A handler may have parked the
 * request instead of answering it (defer.h: resp untouched, t->defer says so). */
enum metrics_route router_dispatch(struct app_thread *t, struct http_request *req,
                                   struct http_response *resp);

/* Every route and method, one "METHOD PATH ACCESS" line each (ACCESS: public, admin,
 * claim, read, redeem), for coupon-fcgi --print-routes. */
void router_print_routes(FILE *out);

/* CP_OK when the route list matches the router exactly (each path its route, every route
 * once); CP_ERR_INTERNAL with the reason in why otherwise. */
int router_table_check(char *why, size_t cap);

#endif
