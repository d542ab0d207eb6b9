/*
 * issue_insert.h - the coupon_issue rows of one chunk (persist.h): which exist
 * already, the multi-row INSERT of the others, and their new ids.
 *
 * Each row gets its code (issuecode.h, under code_secret) and its usable_until
 * (coupon_cache.h), computed here once and never again. Values are bound
 * parameters; the statement text has one "(?, ...)" per row (sqltext.h), so a
 * full chunk's INSERT is the same text every time and prepared once per
 * connection by common/db. The scratch buffers for PERSIST_CHUNK_ROWS rows are
 * allocated once, with the object. Runs inside persist's transaction; one
 * thread.
 */
#ifndef COUPON_ISSUE_INSERT_H
#define COUPON_ISSUE_INSERT_H

#include "db.h"
#include "persist.h"

struct issue_insert;

/* NULL: out of memory. */
struct issue_insert *issue_insert_new(void);
void issue_insert_free(struct issue_insert *w);

/* Marks the chunk's PERSIST_NEW items whose row exists already PERSIST_DUPLICATE
 * (one SELECT): CP_OK or db.h's codes. */
int issue_insert_mark_existing(struct issue_insert *w, struct db *db, struct persist_chunk *c);

/* Inserts the chunk's PERSIST_NEW items in one statement, their codes under code_secret:
 * how many, or CP_ERR_CONFLICT (a duplicate key), CP_ERR_INTERNAL (no code_secret; the
 * server counted other rows than sent) or db.h's codes. */
int issue_insert_rows(struct issue_insert *w, struct db *db, struct persist_chunk *c,
                      const char *code_secret);

/* After issue_insert_rows: the new items' row_id. consecutive (idalloc.h): from the
 * INSERT's first id on, in the order sent; else one SELECT. CP_OK or db.h's codes. */
int issue_insert_ids(struct issue_insert *w, struct db *db, struct persist_chunk *c,
                     int consecutive);

#endif
