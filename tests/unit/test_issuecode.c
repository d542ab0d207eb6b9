/*
 * test_issuecode.c - unit tests of libcrypto's SHA-256 as we link it (FIPS 180-2 examples and the
 * RFC 4231 HMAC-SHA256 test cases) and common/issuecode (known answers
 * computed independently with Python's hmac module, Crockford normalisation,
 * the constant-time comparison), plus the redemption body validators of
 * fcgi-app/redeem.c (orderId, code).
 */
#include "first.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "cp_limits.h"
#include "issuecode.h"
#include "redeem.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha256_matches_the_fips_180_examples(void)
{
    static const struct {
        const char *msg, *want;
    } rows[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        char h[2 * SHA256_DIGEST_LENGTH + 1];
        CU_ASSERT_PTR_NOT_NULL(SHA256((const unsigned char *)rows[i].msg, strlen(rows[i].msg), d));
        hex(d, SHA256_DIGEST_LENGTH, h);
        CU_ASSERT_STRING_EQUAL(h, rows[i].want);
    }
}

static void sha256_of_a_million_a_in_odd_pieces(void)
{
    /* Updates of 1, 63, 64, 65 ... bytes cross every block-boundary case. */
    static char a[1100]; /* the longest piece is 1059 bytes */
    memset(a, 'a', sizeof a);
    EVP_MD_CTX *s = EVP_MD_CTX_new();
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(EVP_DigestInit_ex(s, EVP_sha256(), NULL), 1);
    size_t left = 1000000, step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        CU_ASSERT_EQUAL(EVP_DigestUpdate(s, a, n), 1);
        left -= n;
        step = step % 997 + 63;
    }
    unsigned char d[SHA256_DIGEST_LENGTH];
    char h[2 * SHA256_DIGEST_LENGTH + 1];
    unsigned int dlen = 0;
    CU_ASSERT_EQUAL(EVP_DigestFinal_ex(s, d, &dlen), 1);
    CU_ASSERT_EQUAL(dlen, SHA256_DIGEST_LENGTH);
    EVP_MD_CTX_free(s);
    hex(d, SHA256_DIGEST_LENGTH, h);
    CU_ASSERT_STRING_EQUAL(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void hmac_sha256_matches_rfc_4231(void)
{
    unsigned char k1[20], k3[20], k4[25], k6[131], d3[50], d4[50];
    memset(k1, 0x0b, sizeof k1);
    memset(k3, 0xaa, sizeof k3);
    for (int i = 0; i < 25; i++)
        k4[i] = (unsigned char)(i + 1);
    memset(k6, 0xaa, sizeof k6);
    memset(d3, 0xdd, sizeof d3);
    memset(d4, 0xcd, sizeof d4);
    static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char m7[] = "This is a test using a larger than block-size key and a larger "
                             "than block-size data. The key needs to be hashed before being "
                             "used by the HMAC algorithm.";
    const struct {
        const void *key;
        size_t klen;
        const void *msg;
        size_t mlen;
        const char *want;
    } rows[] = {
        {k1, sizeof k1, "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {k3, sizeof k3, d3, sizeof d3,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k4, sizeof k4, d4, sizeof d4,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {k6, sizeof k6, m6, sizeof m6 - 1,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {k6, sizeof k6, m7, sizeof m7 - 1,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned char d[EVP_MAX_MD_SIZE];
        char h[2 * SHA256_DIGEST_LENGTH + 1];
        unsigned int dlen = 0;
        CU_ASSERT_PTR_NOT_NULL(HMAC(EVP_sha256(), rows[i].key, (int)rows[i].klen, rows[i].msg,
                                    rows[i].mlen, d, &dlen));
        CU_ASSERT_EQUAL(dlen, SHA256_DIGEST_LENGTH);
        hex(d, SHA256_DIGEST_LENGTH, h);
        if (strcmp(h, rows[i].want) != 0)
            fprintf(stderr, "\n  RFC 4231 case %zu: %s\n", i + 1, h);
        CU_ASSERT_STRING_EQUAL(h, rows[i].want);
    }
}

#define SECRET "test-secret-0123456789"

static void issuecode_matches_independent_known_answers(void)
{
    /* Python: hmac.new(secret, b"cpn-code-v1" + struct.pack(">qqq", c, u, s), sha256),
     * first 60 bits in Crockford base32. */
    static const struct {
        int64_t c, u, s;
        const char *want;
    } rows[] = {
        {42, 7, 1, "W1851Y4XDJQW"},
        {1, 1, 1, "C29SWKD243D2"},
        {INT64_MAX, INT64_MAX, INT64_MAX, "FBXYJ308R1PT"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char code[CP_ISSUE_CODE_CHARS + 1];
        CU_ASSERT_EQUAL(
            issuecode_compute(SECRET, strlen(SECRET), rows[i].c, rows[i].u, rows[i].s, code),
            CP_OK);
        CU_ASSERT_STRING_EQUAL(code, rows[i].want);
    }
}

static void issuecode_depends_on_every_input_and_the_secret(void)
{
    char a[13], b[13], c[13], d[13], e[13];
    CU_ASSERT_EQUAL(issuecode_compute(SECRET, strlen(SECRET), 42, 7, 1, a), CP_OK);
    CU_ASSERT_EQUAL(issuecode_compute(SECRET, strlen(SECRET), 43, 7, 1, b), CP_OK);
    CU_ASSERT_EQUAL(issuecode_compute(SECRET, strlen(SECRET), 42, 8, 1, c), CP_OK);
    CU_ASSERT_EQUAL(issuecode_compute(SECRET, strlen(SECRET), 42, 7, 2, d), CP_OK);
    CU_ASSERT_EQUAL(issuecode_compute("another-secret-xyz", 18, 42, 7, 1, e), CP_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_STRING_NOT_EQUAL(a, c);
    CU_ASSERT_STRING_NOT_EQUAL(a, d);
    CU_ASSERT_STRING_NOT_EQUAL(a, e);
    CU_ASSERT_EQUAL(strspn(a, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), CP_ISSUE_CODE_CHARS);
    CU_ASSERT_EQUAL(issuecode_compute("", 0, 42, 7, 1, a), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(issuecode_compute(NULL, 0, 42, 7, 1, a), CP_ERR_INVALID);
}

static void issuecode_normalise_reads_codes_the_crockford_way(void)
{
    static const struct {
        const char *in, *want; /* want NULL: invalid */
    } rows[] = {
        {"W1851Y4XDJQW", "W1851Y4XDJQW"},
        {"w1851y4xdjqw", "W1851Y4XDJQW"},
        {"W185-1Y4X-DJQW", "W1851Y4XDJQW"},
        {"-W185--1Y4XDJQW-", "W1851Y4XDJQW"},
        {"WI85lY4XDJQW", "W1851Y4XDJQW"}, /* I and l read as 1 */
        {"oOOOOOOOOOOO", "000000000000"}, /* O and o read as 0 */
        {"W1851Y4XDJQ", NULL},            /* 11 symbols */
        {"W1851Y4XDJQWX", NULL},          /* 13 */
        {"W1851Y4XDJQU", NULL},           /* U is not Crockford */
        {"W1851Y4XDJQ*", NULL},
        {"W1851 Y4XDJQW", NULL},
        {"W1851Y4XDJQ\xc3\xa9", NULL},
        {"", NULL},
        {"------------", NULL},
        {"W-1-8-5-1-Y-4-X-D-J-Q-W-------------", NULL}, /* longer than the input limit */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[CP_ISSUE_CODE_CHARS + 1] = "";
        int rc = issuecode_normalise(rows[i].in, strlen(rows[i].in), out);
        if (rows[i].want == NULL) {
            CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
        } else {
            CU_ASSERT_EQUAL(rc, CP_OK);
            CU_ASSERT_STRING_EQUAL(out, rows[i].want);
        }
    }
    char out[CP_ISSUE_CODE_CHARS + 1];
    CU_ASSERT_EQUAL(issuecode_normalise("W1851Y4X\0JQW", 12, out), CP_ERR_INVALID);
}

static void issuecode_equal_compares_every_position(void)
{
    CU_ASSERT_TRUE(issuecode_equal("W1851Y4XDJQW", "W1851Y4XDJQW"));
    CU_ASSERT_FALSE(issuecode_equal("W1851Y4XDJQW", "X1851Y4XDJQW"));
    CU_ASSERT_FALSE(issuecode_equal("W1851Y4XDJQW", "W1851Y4XDJQX"));
    CU_ASSERT_FALSE(issuecode_equal("W1851Y4XDJQW", "W1851Y5XDJQW"));
}

static void redeem_order_id_accepts_only_its_alphabet(void)
{
    char o64[65], o65[66];
    memset(o64, 'a', 64);
    o64[64] = '\0';
    memset(o65, 'a', 65);
    o65[65] = '\0';
    CU_ASSERT_TRUE(redeem_order_id_valid("o-1", 3));
    CU_ASSERT_TRUE(redeem_order_id_valid("Order.2026:11_24-x", 18));
    CU_ASSERT_TRUE(redeem_order_id_valid(o64, 64));
    CU_ASSERT_FALSE(redeem_order_id_valid(o65, 65));
    CU_ASSERT_FALSE(redeem_order_id_valid("", 0));
    CU_ASSERT_FALSE(redeem_order_id_valid("a b", 3));
    CU_ASSERT_FALSE(redeem_order_id_valid("a/b", 3));
    CU_ASSERT_FALSE(redeem_order_id_valid("a\"b", 3));
    CU_ASSERT_FALSE(redeem_order_id_valid("\xc3\xa9", 2));
    CU_ASSERT_FALSE(redeem_order_id_valid("a\0b", 3));
}

static void redeem_body_parsers_take_exactly_their_members(void)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = NULL;
    const char *ok = "{\"orderId\":\"o-1\"}";
    CU_ASSERT_EQUAL(redeem_parse_order_body(ok, strlen(ok), order, NULL, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(order, "o-1");
    const char *bad[] = {"",
                         "{}",
                         "{\"orderId\":\"\"}",
                         "{\"orderId\":7}",
                         "{\"orderId\":\"o\",\"x\":1}",
                         "{\"orderId\":\"o\"} x",
                         "{\"orderId\":\"o o\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CU_ASSERT_EQUAL(redeem_parse_order_body(bad[i], strlen(bad[i]), order, NULL, &why),
                        CP_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(why);
    }
    /* orderAmount: accepted only where the caller asks for it (not on a cancel). */
    const char *with = "{\"orderId\":\"o-1\",\"orderAmount\":\"12.50\"}";
    CU_ASSERT_EQUAL(redeem_parse_order_body(with, strlen(with), order, NULL, &why), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(redeem_parse_order_body(with, strlen(with), order, amount, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(amount, "12.50");
    CU_ASSERT_EQUAL(redeem_parse_order_body(ok, strlen(ok), order, amount, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(amount, "");
    const char *abad[] = {
        "{\"orderId\":\"o\",\"orderAmount\":12.5}", "{\"orderId\":\"o\",\"orderAmount\":\"-1\"}",
        "{\"orderId\":\"o\",\"orderAmount\":\"1.0001\"}",
        "{\"orderId\":\"o\",\"orderAmount\":null}", "{\"orderId\":\"o\",\"orderAmount\":\"1e3\"}"};
    for (size_t i = 0; i < sizeof abad / sizeof abad[0]; i++)
        CU_ASSERT_EQUAL(redeem_parse_order_body(abad[i], strlen(abad[i]), order, amount, &why),
                        CP_ERR_BAD_AMOUNT);
    const char *c = "{\"code\":\"w185-1y4x-djqw\",\"orderId\":\"o:9\"}";
    CU_ASSERT_EQUAL(redeem_parse_code_body(c, strlen(c), code, order, amount, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(code, "W1851Y4XDJQW");
    CU_ASSERT_STRING_EQUAL(order, "o:9");
    const char *cbad[] = {"{\"code\":\"W1851Y4XDJQW\"}", "{\"orderId\":\"o\"}",
                          "{\"code\":\"W1851Y4XDJQ\",\"orderId\":\"o\"}",
                          "{\"code\":\"W1851Y4XDJQW\",\"orderId\":\"o\",\"couponId\":1}"};
    for (size_t i = 0; i < sizeof cbad / sizeof cbad[0]; i++)
        CU_ASSERT_EQUAL(redeem_parse_code_body(cbad[i], strlen(cbad[i]), code, order, amount, &why),
                        CP_ERR_INVALID);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"sha256_matches_the_fips_180_examples", sha256_matches_the_fips_180_examples},
        {"sha256_of_a_million_a_in_odd_pieces", sha256_of_a_million_a_in_odd_pieces},
        {"hmac_sha256_matches_rfc_4231", hmac_sha256_matches_rfc_4231},
        {"issuecode_matches_independent_known_answers",
         issuecode_matches_independent_known_answers},
        {"issuecode_depends_on_every_input_and_the_secret",
         issuecode_depends_on_every_input_and_the_secret},
        {"issuecode_normalise_reads_codes_the_crockford_way",
         issuecode_normalise_reads_codes_the_crockford_way},
        {"issuecode_equal_compares_every_position", issuecode_equal_compares_every_position},
        {"redeem_order_id_accepts_only_its_alphabet", redeem_order_id_accepts_only_its_alphabet},
        {"redeem_body_parsers_take_exactly_their_members",
         redeem_body_parsers_take_exactly_their_members},
    };
    return unit_run_suite("issuecode", NULL, UNIT_CASES(tests));
}
