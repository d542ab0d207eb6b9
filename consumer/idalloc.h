/*
 * idalloc.h - whether the server hands a multi-row INSERT consecutive ids.
 *
 * It does when innodb_autoinc_lock_mode is 0 or 1 and auto_increment_increment
 * is 1: the ids of one such INSERT are then LAST_INSERT_ID() on, in the order
 * of its rows, and persist.c may insert a batch without first looking for the
 * rows that exist (the optimistic path). Asked once per connection (the
 * settings are the session's), and logged when learnt. One thread.
 */
#ifndef COUPON_IDALLOC_H
#define COUPON_IDALLOC_H

#include <stdint.h>

#include "db.h"

struct idalloc;

/* NULL: out of memory. */
struct idalloc *idalloc_new(void);
void idalloc_free(struct idalloc *a);

/* 1: consecutive ids, 0: not, or db.h's codes. */
int idalloc_consecutive(struct idalloc *a, struct db *db);

#endif
