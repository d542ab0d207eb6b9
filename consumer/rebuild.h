/*
 * rebuild.h - coupon-admin rebuild-redis: restores the issuance state of every
 * coupon (or one) in Redis from MariaDB after Redis lost its data.
 *
 * For each coupon: coupon:{ID}:meta from the coupon row, then every
 * coupon_issue row merged into coupon:{ID}:users and :seq through
 * lua/restore.lua in chunks (existing entries win, so running it twice, or
 * while the sale goes on, never removes or duplicates an issuance). Run it once
 * the consumer has caught up, so MariaDB holds every issuance Redis lost.
 */
#ifndef COUPON_REBUILD_H
#define COUPON_REBUILD_H

#include <stdint.h>
#include <stdio.h>

#include "conf.h"

/* coupon_id 0 = every coupon. Progress lines go to `out`. CP_OK or an error. */
int rebuild_redis(const struct cp_conf *conf, int64_t coupon_id, FILE *out);

#endif
