/*
 * handlers.h - the endpoint handlers the router dispatches to. Each fills the
 * response (status, body) or a problem; none writes to the FastCGI stream.
 * Path parameters arrive already validated as positive 64-bit ids.
 */
#ifndef COUPON_HANDLERS_H
#define COUPON_HANDLERS_H

#include <stdint.h>

#include "app.h"
#include "checkout.h"
#include "coupon_store.h"
#include "http.h"

/* read.c */
void read_coupon_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id);
void read_issue_status_handle(struct app_thread *t, const struct http_request *req,
                              struct http_response *resp, int64_t coupon_id, int64_t user_id);
void read_user_coupons_handle(struct app_thread *t, const struct http_request *req,
                              struct http_response *resp, int64_t user_id);
/* What checkout needs of a campaign, from its document (L1 -> L2 -> MariaDB): its
 * validity after issuance, and in `money` the discount fields coupon_doc_discount reads
 * (discount type and value as the document writes them, currency, minOrderAmount,
 * maxDiscountAmount; the rest zero). Set at creation, never changed: a cached copy is
 * exact. */
struct coupon_terms {
    struct checkout_terms terms;
    struct coupon money;
};
/* CP_OK, CP_ERR_NOT_FOUND (no such coupon), CP_ERR_UNAVAILABLE or CP_ERR_INTERNAL. */
int read_coupon_terms(struct app_thread *t, int64_t coupon_id, struct coupon_terms *out);
/* admin.c */
void admin_create_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp);
void admin_patch_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id);
void admin_stats_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id);
/* 1 when the request carries the admin token; otherwise the 401/403 problem is set. */
int admin_authorised(struct app_thread *t, const struct http_request *req,
                     struct http_response *resp);
/* console_api.c */
void console_list_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp);
void console_series_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp, int64_t coupon_id);
/* webhooks_api.c (admin): GET list / POST create; DELETE disable; POST rotate; GET
 * deliveries; POST redeliver */
void webhooks_collection_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp);
void webhooks_disable_handle(struct app_thread *t, const struct http_request *req,
                             struct http_response *resp, int64_t id);
void webhooks_rotate_handle(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp, int64_t id);
void webhooks_deliveries_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp, int64_t id);
void webhooks_redeliver_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t id, int64_t delivery_id);
/* health.c */
void health_handle(struct app_thread *t, const struct http_request *req,
                   struct http_response *resp);
void health_metrics_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp);

#endif
