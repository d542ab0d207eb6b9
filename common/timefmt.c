#include "first.h"

#include "timefmt.h"

#include <stdio.h>
#include <time.h>

#include "cp_err.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int timefmt_format_ms(int64_t epoch_ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL)
        return CP_ERR_INVALID;
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return CP_ERR_INVALID; /* RFC 3339 has four-digit years only */
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CP_ERR_INVALID;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return CP_OK;
}

int timefmt_parse_ms(const char *s, size_t len, int64_t *epoch_ms)
{
    int y, mo, d, h, mi, sec;
    /* YYYY-MM-DDTHH:MM:SS is 19 bytes; then fraction and offset. */
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return CP_ERR_INVALID;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return CP_ERR_INVALID;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return CP_ERR_INVALID;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return CP_ERR_INVALID;
    if (sec == 60)
        sec = 59; /* leap second: clamp, the epoch has none */
    size_t i = 19;
    int ms = 0;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3)
                ms = ms * 10 + (s[i] - '0');
            i++;
        }
        if (i == start || i - start > 9)
            return CP_ERR_INVALID;
        for (size_t k = i - start; k < 3; k++)
            ms *= 10;
    }
    int offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return CP_ERR_INVALID;
        offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return CP_ERR_INVALID;
    }
    if (i != len)
        return CP_ERR_INVALID;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    int64_t result = secs * 1000 + ms;
    /* An offset can push 0000-01-01 / 9999-12-31 out of the four-digit years;
     * such an instant could never be formatted back, so it is refused here. */
    if (result < TIMEFMT_MIN_MS || result > TIMEFMT_MAX_MS)
        return CP_ERR_INVALID;
    *epoch_ms = result;
    return CP_OK;
}

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
