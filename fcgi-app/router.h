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
#include "issue.h"
#include "metrics.h"

/* Handles the request; returns the route for metrics. */
enum metrics_route router_dispatch(struct app_thread *t, struct http_request *req,
                                   struct http_response *resp);

/* The same, except that an issue claim that needs its script is parked in *later
 * (later->waiting = 1, resp untouched: issue.h's issue_run_scripts and issue_finish
 * complete it). */
enum metrics_route router_dispatch_deferring(struct app_thread *t, struct http_request *req,
                                             struct http_response *resp, struct issue_call *later);

/* Every route and method, one "METHOD PATH ACCESS" line each (ACCESS: public, admin,
 * claim, read, redeem), for coupon-fcgi --print-routes. */
void router_print_routes(FILE *out);

/* CP_OK when the route list matches the router exactly (each path its route, every route
 * once); CP_ERR_INTERNAL with the reason in why otherwise. */
int router_table_check(char *why, size_t cap);

#endif
