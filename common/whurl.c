#include "first.h"

#include "whurl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"

/* Ranges no webhook reaches unless allow-listed (RFC 6890 and friends). */
static const struct {
    int family;
    const char *addr;
    int prefix;
} special[] = {
    {AF_INET, "0.0.0.0", 8},     {AF_INET, "10.0.0.0", 8},      {AF_INET, "100.64.0.0", 10},
    {AF_INET, "127.0.0.0", 8},   {AF_INET, "169.254.0.0", 16},  {AF_INET, "172.16.0.0", 12},
    {AF_INET, "192.0.0.0", 24},  {AF_INET, "192.0.2.0", 24},    {AF_INET, "192.168.0.0", 16},
    {AF_INET, "198.18.0.0", 15}, {AF_INET, "198.51.100.0", 24}, {AF_INET, "203.0.113.0", 24},
    {AF_INET, "224.0.0.0", 4},   {AF_INET, "240.0.0.0", 4},     {AF_INET6, "::", 96},
    {AF_INET6, "64:ff9b::", 96}, {AF_INET6, "100::", 64},       {AF_INET6, "2001:db8::", 32},
    {AF_INET6, "fc00::", 7},     {AF_INET6, "fe80::", 10},      {AF_INET6, "fec0::", 10},
    {AF_INET6, "ff00::", 8},
};

static int in_prefix(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static int in_cidr(int family, const unsigned char *a, const struct whurl_cidr *c)
{
    return c->family == family && in_prefix(a, c->addr, c->prefix);
}

int whurl_parse(const char *url, size_t len, struct whurl *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || len > CP_WEBHOOK_URL_MAX) {
        *why = "url must be 1..512 bytes";
        return CP_ERR_INVALID;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '#' ||
            url[i] == '\\') {
            *why = "url has a blank, control, non-ASCII, '#' or '\\' byte";
            return CP_ERR_INVALID;
        }
    size_t i;
    if (len > 8 && strncmp(url, "https://", 8) == 0) {
        out->https = 1;
        i = 8;
    } else if (len > 7 && strncmp(url, "http://", 7) == 0) {
        i = 7;
    } else {
        *why = "url must start with https:// (or http:// for an allow-listed address)";
        return CP_ERR_INVALID;
    }
    size_t auth_end = i;
    while (auth_end < len && url[auth_end] != '/' && url[auth_end] != '?')
        auth_end++;
    if (memchr(url + i, '@', auth_end - i) != NULL) {
        *why = "url must not carry user information";
        return CP_ERR_INVALID;
    }
    size_t h = i, h_end;
    const char *port_at = NULL;
    if (url[i] == '[') {
        const char *close = memchr(url + i, ']', auth_end - i);
        if (close == NULL) {
            *why = "url has an unclosed [";
            return CP_ERR_INVALID;
        }
        h = i + 1;
        h_end = (size_t)(close - url);
        if (h_end + 1 < auth_end) {
            if (url[h_end + 1] != ':') {
                *why = "url has bytes after ]";
                return CP_ERR_INVALID;
            }
            port_at = url + h_end + 2;
        }
    } else {
        const char *colon = memchr(url + i, ':', auth_end - i);
        h_end = colon != NULL ? (size_t)(colon - url) : auth_end;
        port_at = colon != NULL ? colon + 1 : NULL;
    }
    if (h_end == h || h_end - h >= sizeof out->host) {
        *why = "url must name a host of at most 255 bytes";
        return CP_ERR_INVALID;
    }
    for (size_t k = h; k < h_end; k++) {
        char c = url[k];
        int ok = isalnum((unsigned char)c) || c == '.' || c == '-' ||
                 (url[i] == '[' && (c == ':' || c == '%'));
        if (!ok) {
            *why = "url host has a character other than letters, digits, '.', '-'";
            return CP_ERR_INVALID;
        }
    }
    memcpy(out->host, url + h, h_end - h);
    out->host[h_end - h] = '\0';
    out->port = out->https ? 443 : 80;
    if (port_at != NULL) {
        long port = 0;
        const char *p = port_at;
        for (; p < url + auth_end && isdigit((unsigned char)*p) && port <= 65535; p++)
            port = port * 10 + (*p - '0');
        if (p == port_at || p != url + auth_end || port < 1 || port > 65535) {
            *why = "url port must be in 1..65535";
            return CP_ERR_INVALID;
        }
        out->port = (int)port;
    }
    return CP_OK;
}

int whurl_cidrs_parse(const char *text, struct whurl_cidrs *out, char *errbuf, size_t errlen)
{
    out->n = 0;
    const char *s = text;
    while (*s != '\0') {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        const char *end = s;
        while (*end != '\0' && *end != ',' && *end != ' ')
            end++;
        char item[64];
        if ((size_t)(end - s) >= sizeof item || out->n == CP_WEBHOOK_CIDRS_MAX) {
            snprintf(errbuf, errlen, "%s",
                     out->n == CP_WEBHOOK_CIDRS_MAX ? "more than 16 CIDRs"
                                                    : "a CIDR longer than 63 bytes");
            return CP_ERR_INVALID;
        }
        memcpy(item, s, (size_t)(end - s));
        item[end - s] = '\0';
        struct whurl_cidr *c = &out->v[out->n];
        char *slash = strchr(item, '/');
        if (slash != NULL)
            *slash = '\0';
        c->family = strchr(item, ':') != NULL ? AF_INET6 : AF_INET;
        int max = c->family == AF_INET ? 32 : 128;
        memset(c->addr, 0, sizeof c->addr);
        char *pend = NULL;
        long prefix = slash != NULL ? strtol(slash + 1, &pend, 10) : max;
        if (inet_pton(c->family, item, c->addr) != 1 ||
            (slash != NULL && (pend == slash + 1 || *pend != '\0')) || prefix < 0 || prefix > max) {
            snprintf(errbuf, errlen, "'%.*s' is not an address/prefix", (int)(end - s), s);
            return CP_ERR_INVALID;
        }
        c->prefix = (int)prefix;
        out->n++;
        s = end;
    }
    return CP_OK;
}

/* 1 when a (of family) is in a special range. IPv4-mapped IPv6 is judged as IPv4. */
static int is_special(int family, const unsigned char *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(a, mapped, sizeof mapped) == 0)
        return is_special(AF_INET, a + 12);
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        unsigned char net[16] = {0};
        if (special[i].family != family || inet_pton(family, special[i].addr, net) != 1)
            continue;
        if (in_prefix(a, net, special[i].prefix))
            return 1;
    }
    return family == AF_INET && a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255;
}

int whurl_addr_check(const struct sockaddr *sa, const struct whurl_cidrs *allow, int https,
                     const char **why)
{
    const unsigned char *a;
    int family = sa->sa_family;
    if (family == AF_INET)
        a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (family == AF_INET6)
        a = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    else {
        *why = "the host resolves to an address that is neither IPv4 nor IPv6";
        return CP_ERR_FORBIDDEN;
    }
    for (size_t i = 0; i < allow->n; i++)
        if (in_cidr(family, a, &allow->v[i]))
            return CP_OK;
    if (is_special(family, a)) {
        *why = "the host resolves to a loopback, private, link-local or otherwise special "
               "address not in webhook_allow_cidrs";
        return CP_ERR_FORBIDDEN;
    }
    if (!https) {
        *why = "plain http:// is accepted only for addresses in webhook_allow_cidrs";
        return CP_ERR_FORBIDDEN;
    }
    return CP_OK;
}

int whurl_resolve(const struct whurl *u, const struct whurl_cidrs *allow, char *addr, size_t cap,
                  const char **why)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(u->host, NULL, &hints, &res) != 0 || res == NULL) {
        *why = "the host does not resolve";
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_OK;
    for (const struct addrinfo *ai = res; ai != NULL && rc == CP_OK; ai = ai->ai_next)
        rc = whurl_addr_check(ai->ai_addr, allow, u->https, why);
    if (rc == CP_OK) {
        const void *a =
            res->ai_family == AF_INET
                ? (const void *)&((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr
                : (const void *)&((const struct sockaddr_in6 *)(const void *)res->ai_addr)
                      ->sin6_addr;
        if (inet_ntop(res->ai_family, a, addr, (socklen_t)cap) == NULL)
            rc = CP_ERR_INTERNAL;
    }
    freeaddrinfo(res);
    return rc;
}
