/*
 * sqltext.h - the text of statements whose length follows their data: an IN
 * list of n placeholders, a multi-row INSERT of n rows.
 *
 * A statement is head + n copies of item joined by "," + tail, e.g.
 *   "DELETE FROM event_outbox WHERE id IN (" "?" ")"
 *   "INSERT INTO t (a, b) VALUES " "(?, ?)" ""
 * The values themselves are always bound parameters, never text. common/db
 * prepares a text once per connection and keeps the most recently used, so the
 * full-size statement of a drain (the same n again and again) is parsed once.
 * Stateless; thread-safe.
 */
#ifndef COUPON_SQLTEXT_H
#define COUPON_SQLTEXT_H

#include <stddef.h>

/* Bytes the text of n items takes, with its terminating NUL. */
size_t sqltext_size(const char *head, const char *item, size_t n, const char *tail);

/* Writes the text into buf (cap bytes): CP_OK, or CP_ERR_LIMIT when it does not fit
 * (buf then holds ""). */
int sqltext_list(char *buf, size_t cap, const char *head, const char *item, size_t n,
                 const char *tail);

#endif
