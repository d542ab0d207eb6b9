/*
 * log.h - the one logging module: one line per event on stderr,
 *   2026-11-24T19:31:41.123Z level=info pid=123 req=ab12 msg="..."
 *
 * The level and program name are set once at start (log_init) before threads
 * exist; the request id is per thread (log_set_request_id), so concurrent
 * requests never mix ids. Never pass a secret to these functions.
 * All functions are safe from several threads after log_init.
 */
#ifndef COUPON_LOG_H
#define COUPON_LOG_H

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_init(const char *program, enum log_level level);
/* Parses "debug" | "info" | "warn" | "error"; returns CP_ERR_INVALID otherwise. */
int log_level_parse(const char *text, enum log_level *out);
/* Sets (or clears with NULL) this thread's request id, copied. */
void log_set_request_id(const char *request_id);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
