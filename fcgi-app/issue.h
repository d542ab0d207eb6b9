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
#include "issue_decide.h"

/*
 * An issue request whose claim waits for its script: fcgi-app/worker.c collects the
 * claims of every request a thread has read, runs their scripts in one pipeline
 * (issue_run_scripts: one round trip per Redis node for all of them) and then
 * finishes each (issue_finish). Owned by the caller; nothing in it needs freeing.
 */
struct issue_call {
    int waiting; /* 1: issue_handle parked the claim here and wrote no response */
    struct issue_claim claim;
    struct issue_script_run run;
};

/*
 * path_coupon_id > 0: POST /api/coupons/{id}/issue; 0: POST /api/coupons/issue.
 * later NULL: decided and answered now. Otherwise a claim that needs the script is
 * parked in *later (later->waiting = 1, resp untouched); any other answer is in resp.
 * With redis_wait_replicas > 0 nothing is parked (each claim waits for its own WAIT).
 */
void issue_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                  int64_t path_coupon_id, struct issue_call *later);

/* Runs the scripts of n parked claims in one pipeline; each call's run gets its
 * outcome. A failed pipeline is counted and its client reset once. */
void issue_run_scripts(struct app_thread *t, struct issue_call *const *calls, int n);
/* After issue_run_scripts: the rest of the decision (issue_decide_end) and the
 * response. May run Redis and MariaDB commands (a meta reload, a NOSCRIPT re-run). */
void issue_finish(struct app_thread *t, struct issue_call *call, struct http_response *resp);

#endif
