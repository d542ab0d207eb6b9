/*
 * test_whurl.c - the SSRF rules of webhook URLs (common/whurl): the URL parser's
 * refusals, the special address ranges (also IPv4-mapped), the allow-list, and plain
 * http only for allow-listed addresses. Addresses only: no DNS.
 */
#include "first.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "unit_main.h"
#include "whurl.h"

static int check(const char *addr, const char *allow, int https)
{
    struct whurl_cidrs cidrs;
    char err[128];
    const char *why = NULL;
    if (whurl_cidrs_parse(allow, &cidrs, err, sizeof err) != CP_OK)
        return -100;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(addr, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            return -101;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return -101;
    }
    return whurl_addr_check((struct sockaddr *)&ss, &cidrs, https, &why);
}

static void whurl_refuses_special_addresses_by_default(void)
{
    static const char *const refused[] = {"127.0.0.1",
                                          "127.1.2.3",
                                          "10.0.0.1",
                                          "172.16.0.1",
                                          "172.31.255.255",
                                          "192.168.1.1",
                                          "169.254.169.254",
                                          "100.64.0.1",
                                          "0.0.0.0",
                                          "224.0.0.1",
                                          "240.0.0.1",
                                          "255.255.255.255",
                                          "::1",
                                          "::",
                                          "fe80::1",
                                          "fc00::1",
                                          "fd12:3456::1",
                                          "ff02::1",
                                          "::ffff:127.0.0.1",
                                          "::ffff:10.1.2.3",
                                          "64:ff9b::a00:1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CU_ASSERT_EQUAL(check(refused[i], "", 1), CP_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(check("93.184.216.34", "", 1), CP_OK);
    CU_ASSERT_EQUAL(check("172.32.0.1", "", 1), CP_OK);
    CU_ASSERT_EQUAL(check("2606:2800:220:1::1", "", 1), CP_OK);
    CU_ASSERT_EQUAL(check("::ffff:93.184.216.34", "", 1), CP_OK);
}

static void whurl_allow_list_admits_and_allows_plain_http(void)
{
    CU_ASSERT_EQUAL(check("127.0.0.1", "127.0.0.1/32", 1), CP_OK);
    CU_ASSERT_EQUAL(check("127.0.0.1", "127.0.0.1", 0), CP_OK);
    CU_ASSERT_EQUAL(check("127.0.0.2", "127.0.0.1/32", 1), CP_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(check("10.9.8.7", "192.168.0.0/16, 10.0.0.0/8", 0), CP_OK);
    CU_ASSERT_EQUAL(check("::1", "::1/128", 1), CP_OK);
    CU_ASSERT_EQUAL(check("::1", "127.0.0.0/8", 1), CP_ERR_FORBIDDEN);
    /* Plain http to a public address is refused; https to it is fine. */
    CU_ASSERT_EQUAL(check("93.184.216.34", "", 0), CP_ERR_FORBIDDEN);
}

static void whurl_cidrs_parse_is_strict(void)
{
    struct whurl_cidrs c;
    char err[128];
    CU_ASSERT_EQUAL(whurl_cidrs_parse("", &c, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    CU_ASSERT_EQUAL(whurl_cidrs_parse("10.0.0.0/8,fd00::/8", &c, err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT_EQUAL(whurl_cidrs_parse("10.0.0.0/33", &c, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whurl_cidrs_parse("10.0.0/8", &c, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whurl_cidrs_parse("10.0.0.0/", &c, err, sizeof err), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whurl_cidrs_parse("example.com/8", &c, err, sizeof err), CP_ERR_INVALID);
}

static void whurl_parse_takes_only_plain_http_urls(void)
{
    struct whurl u;
    const char *why;
    const char *url = "https://hooks.example.com:8443/in?x=1";
    CU_ASSERT_EQUAL(whurl_parse(url, strlen(url), &u, &why), CP_OK);
    CU_ASSERT(u.https);
    CU_ASSERT_STRING_EQUAL(u.host, "hooks.example.com");
    CU_ASSERT_EQUAL(u.port, 8443);
    url = "http://[::1]/x";
    CU_ASSERT_EQUAL(whurl_parse(url, strlen(url), &u, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(u.host, "::1");
    CU_ASSERT_EQUAL(u.port, 80);
    static const char *const bad[] = {"ftp://example.com/",
                                      "https://",
                                      "https://user:pw@example.com/",
                                      "https://exa mple.com/",
                                      "https://example.com:0/",
                                      "https://example.com:99999/",
                                      "https://example.com/#frag",
                                      "https://[::1/",
                                      "//example.com/",
                                      "https://exa_mple.com/",
                                      "HTTPS://example.com/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(whurl_parse(bad[i], strlen(bad[i]), &u, &why), CP_ERR_INVALID);
}

int main(void)
{
    static const struct unit_case cases[] = {
        {"whurl_refuses_special_addresses_by_default", whurl_refuses_special_addresses_by_default},
        {"whurl_allow_list_admits_and_allows_plain_http",
         whurl_allow_list_admits_and_allows_plain_http},
        {"whurl_cidrs_parse_is_strict", whurl_cidrs_parse_is_strict},
        {"whurl_parse_takes_only_plain_http_urls", whurl_parse_takes_only_plain_http_urls},
    };
    return unit_run_suite("whurl", NULL, UNIT_CASES(cases));
}
