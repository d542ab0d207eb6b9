/*
 * whurl.h - which URLs a webhook may be delivered to (the SSRF rules).
 *
 * A webhook URL is http:// or https://, a host (DNS name, IPv4, or [IPv6]), an
 * optional port and path; no user info, no fragment, no blanks or control bytes,
 * at most CP_WEBHOOK_URL_MAX bytes. Its addresses - checked at registration AND at
 * every delivery after resolving, so a name that later resolves elsewhere (DNS
 * rebinding) is caught - must each be public: loopback, private (RFC 1918, CGNAT),
 * link-local, unique-local, unspecified, multicast, reserved and documentation
 * ranges are refused, also when written IPv4-mapped in IPv6, unless the address is
 * inside one of the allow-list's CIDRs (configuration key webhook_allow_cidrs).
 * Plain http:// is accepted only for allow-listed addresses. The caller connects to
 * exactly the address whurl_resolve returned (libcurl CURLOPT_RESOLVE), never to a
 * second resolution. Stateless; thread-safe (getaddrinfo).
 */
#ifndef COUPON_WHURL_H
#define COUPON_WHURL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cp_limits.h"

struct whurl {
    int https;
    char host[CP_WEBHOOK_HOST_MAX]; /* without brackets */
    int port;                       /* 443 or 80 when the URL names none */
};

struct whurl_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

struct whurl_cidrs {
    size_t n;
    struct whurl_cidr v[CP_WEBHOOK_CIDRS_MAX];
};

/* Parses url[0..len): CP_OK, or CP_ERR_INVALID with *why set (static text). */
int whurl_parse(const char *url, size_t len, struct whurl *out, const char **why);

/* "a.b.c.d/n, x:y::/n, ..." (a bare address is /32 or /128; "" gives none):
 * CP_OK or CP_ERR_INVALID with the reason in errbuf. */
int whurl_cidrs_parse(const char *text, struct whurl_cidrs *out, char *errbuf, size_t errlen);

/* Whether a delivery may connect to sa (AF_INET/AF_INET6) for a URL of that scheme:
 * CP_OK, or CP_ERR_FORBIDDEN with *why set. */
int whurl_addr_check(const struct sockaddr *sa, const struct whurl_cidrs *allow, int https,
                     const char **why);

/* Resolves u->host and checks every address: CP_OK with the first one as text in addr
 * (cap >= 46), CP_ERR_FORBIDDEN (*why), or CP_ERR_UNAVAILABLE (no address). */
int whurl_resolve(const struct whurl *u, const struct whurl_cidrs *allow, char *addr, size_t cap,
                  const char **why);

#endif
