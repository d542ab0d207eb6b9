/*
 * router.h - maps (method, path) to a handler. The route table is the one list
 * of endpoints; an unknown path is 404, a known path with another method is
 * 405 with an Allow header, a malformed id in the path is 400. HEAD is served
 * wherever GET is. Stateless; thread-safe.
 */
#ifndef COUPON_ROUTER_H
#define COUPON_ROUTER_H

#include "app.h"
#include "http.h"
#include "issue.h"
#include "metrics.h"

/* Handles the request; returns the route for metrics. */
enum metrics_route router_dispatch(struct app_thread *t, const struct http_request *req,
                                   struct http_response *resp);

/* The same, except that an issue claim that needs its script is parked in *later
 * (later->waiting = 1, resp untouched: issue.h's issue_run_scripts and issue_finish
 * complete it). */
enum metrics_route router_dispatch_deferring(struct app_thread *t, const struct http_request *req,
                                             struct http_response *resp, struct issue_call *later);

#endif
