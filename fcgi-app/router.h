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
#include "metrics.h"

/* Handles the request; returns the route for metrics. */
enum metrics_route router_dispatch(struct app_thread *t, const struct http_request *req,
                                   struct http_response *resp);

#endif
