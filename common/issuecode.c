#include "first.h"

#include "issuecode.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cp_err.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char domain[] = "cpn-code-v1";

void issuecode_base32(uint64_t bits, size_t n_chars, char *out)
{
    for (size_t i = 0; i < n_chars; i++)
        out[i] = alphabet[(bits >> (5 * (n_chars - 1 - i))) & 31];
    out[n_chars] = '\0';
}

static void put_be64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (56 - 8 * i));
}

int issuecode_compute(const char *secret, size_t secret_len, int64_t coupon_id, int64_t user_id,
                      int64_t sequence, char out[CP_ISSUE_CODE_CHARS + 1])
{
    if (secret == NULL || secret_len == 0)
        return CP_ERR_INVALID;
    unsigned char msg[sizeof domain - 1 + 24], mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    memcpy(msg, domain, sizeof domain - 1);
    put_be64(msg + sizeof domain - 1, coupon_id);
    put_be64(msg + sizeof domain - 1 + 8, user_id);
    put_be64(msg + sizeof domain - 1 + 16, sequence);
    /* OpenSSL's libcrypto (HMAC-SHA256, RFC 2104); the vectors of FIPS 180 and RFC 4231
     * in tests/unit/test_issuecode.c hold it to the standard. */
    if (secret_len > INT_MAX ||
        HMAC(EVP_sha256(), secret, (int)secret_len, msg, sizeof msg, mac, &mac_len) == NULL ||
        mac_len < 8)
        return CP_ERR_INTERNAL;
    uint64_t top = 0;
    for (int i = 0; i < 8; i++)
        top = top << 8 | mac[i];
    /* The first 60 bits, as 12 symbols of 5 bits (top bit of the 64 first). */
    issuecode_base32(top >> 4, CP_ISSUE_CODE_CHARS, out);
    return CP_OK;
}

/* Value 0..31 of a typed symbol, -1 for a hyphen (skipped), -2 for anything else. */
static int symbol(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        c = (unsigned char)(c - 'a' + 'A');
    switch (c) {
    case '-': return -1;
    case 'O': return 0;
    case 'I':
    case 'L': return 1;
    case 'U': return -2;
    default: break;
    }
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p == NULL ? -2 : (int)(p - alphabet);
}

int issuecode_normalise(const char *in, size_t len, char out[CP_ISSUE_CODE_CHARS + 1])
{
    if (in == NULL || len == 0 || len > CP_ISSUE_CODE_INPUT_MAX)
        return CP_ERR_INVALID;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = symbol((unsigned char)in[i]);
        if (v == -1)
            continue;
        if (v < 0 || n == CP_ISSUE_CODE_CHARS)
            return CP_ERR_INVALID;
        out[n++] = alphabet[v];
    }
    if (n != CP_ISSUE_CODE_CHARS)
        return CP_ERR_INVALID;
    out[n] = '\0';
    return CP_OK;
}

int issuecode_equal(const char a[CP_ISSUE_CODE_CHARS], const char b[CP_ISSUE_CODE_CHARS])
{
    unsigned diff = 0;
    for (size_t i = 0; i < CP_ISSUE_CODE_CHARS; i++)
        diff |= (unsigned)((unsigned char)a[i] ^ (unsigned char)b[i]);
    /* No branch on diff until here; volatile keeps the compiler from an early exit. */
    volatile unsigned d = diff;
    return d == 0;
}
