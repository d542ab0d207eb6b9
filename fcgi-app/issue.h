/*
 * issue.h - POST /api/coupons/{id}/issue and POST /api/coupons/issue: the HTTP
 * handler of the issue path, and the real implementations (Redis, Kafka,
 * MariaDB, the L1 cache) behind issue_decide.h's function table.
 *
 * The decision itself - flags, the atomic script, the meta reload, what Kafka's
 * answer means in each issue_ack mode - lives in issue_decide.c and is unit-tested
 * with fakes. Here: parsing the body, the meta reload from MariaDB (refused when
 * Redis lost the issuance state itself: see reload_meta), and turning the outcome
 * into 201/202 or a problem through problem_from_err().
 * Thread-safe: uses only the calling thread's struct app_thread.
 */
#ifndef COUPON_ISSUE_H
#define COUPON_ISSUE_H

#include <stdint.h>

#include "app.h"
#include "http.h"

/*
 * path_coupon_id > 0: POST /api/coupons/{id}/issue; 0: POST /api/coupons/issue.
 * Inside a worker loop (t->defer set) a claim that needs its script is parked
 * (defer.h: resp untouched): the round's claims run their scripts in one pipeline
 * (one round trip per Redis node for all of them), then each is decided and
 * answered. Otherwise, and with redis_wait_replicas > 0 (each claim waits for its own
 * WAIT), it is decided and answered now.
 */
void issue_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                  int64_t path_coupon_id);

#endif
