#include "first.h"

#include "sqltext.h"

#include <string.h>

#include "cp_err.h"

size_t sqltext_size(const char *head, const char *item, size_t n, const char *tail)
{
    return strlen(head) + n * strlen(item) + (n > 0 ? n - 1 : 0) + strlen(tail) + 1;
}

int sqltext_list(char *buf, size_t cap, const char *head, const char *item, size_t n,
                 const char *tail)
{
    if (cap == 0 || sqltext_size(head, item, n, tail) > cap) {
        if (cap > 0)
            buf[0] = '\0';
        return CP_ERR_LIMIT;
    }
    size_t hlen = strlen(head), ilen = strlen(item), off = hlen;
    memcpy(buf, head, hlen);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf[off++] = ',';
        memcpy(buf + off, item, ilen);
        off += ilen;
    }
    memcpy(buf + off, tail, strlen(tail) + 1);
    return CP_OK;
}
