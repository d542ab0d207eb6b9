#include "first.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cp_err.h"

/* Module-owned state: written once by log_init before any thread starts. */
static char log_program[32] = "coupon";
static enum log_level log_min_level = LOG_LEVEL_INFO;
static _Thread_local char log_request_id[40];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program, enum log_level level)
{
    snprintf(log_program, sizeof log_program, "%s", program ? program : "coupon");
    log_min_level = level;
}

int log_level_parse(const char *text, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return CP_OK;
        }
    }
    return CP_ERR_INVALID;
}

void log_set_request_id(const char *request_id)
{
    if (request_id == NULL)
        log_request_id[0] = '\0';
    else
        snprintf(log_request_id, sizeof log_request_id, "%s", request_id);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (level < log_min_level)
        return;
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s level=%s pid=%d req=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000L, log_program, level_names[level], (int)getpid(),
                     log_request_id[0] ? log_request_id : "-");
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 3)
        len = sizeof line - 3;
    /* One line per event: fold any newline a message carries. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '"';
    line[len++] = '\n';
    /* A single write(2) keeps lines from concurrent threads/processes whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
