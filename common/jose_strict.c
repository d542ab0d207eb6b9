/*
 * jose_strict.c - canonical base64url, algorithm names and string members for
 * common/jwks and common/jwtv (see jose_strict.h).
 *
 * Why our own base64url check before cjose's decoder (cjose 0.6.2.1, Debian 12):
 * cjose accepts '=' padding at import and non-canonical trailing bits (a second
 * spelling of a valid token then verifies), and its decoder assert()s on a '='
 * inside the text (found by tests/fuzz/fuzz_jwtv): cjose_jws_import() of
 * "eyJhbGciOiJSUzI1NiJ9.e=yJ.c2ln" aborts the process. So cjose never sees a token
 * part or key member that jose_b64u_canonical() has not passed.
 */
#include "first.h"

#include "jose_strict.h"

#include <string.h>

#include <cjose/cjose.h>
#include <json-c/json.h>

#include "cp_err.h"

static const struct {
    const char *name;
    unsigned bit;
} alg_names[] = {
    {"RS256", JOSE_ALG_RS256},
    {"ES256", JOSE_ALG_ES256},
    {"PS256", JOSE_ALG_PS256},
};

unsigned jose_alg_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++) {
        if (strlen(alg_names[i].name) == len && memcmp(alg_names[i].name, name, len) == 0)
            return alg_names[i].bit;
    }
    return 0;
}

static int b64u_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Non-empty, only the base64url alphabet (no '=', no blanks), a length that
 * encodes whole bytes, and zero unused bits in the last symbol: exactly one text
 * per byte string, so a token cannot be re-spelled while keeping its signature.
 */
bool jose_b64u_canonical(const char *p, size_t len)
{
    if (len == 0 || len % 4 == 1)
        return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        v = b64u_value((unsigned char)p[i]);
        if (v < 0)
            return false;
    }
    if (len % 4 == 2)
        return (v & 0x0F) == 0;
    if (len % 4 == 3)
        return (v & 0x03) == 0;
    return true;
}

size_t jose_b64u_decoded_len(size_t len)
{
    return len / 4 * 3 + (len % 4 != 0 ? len % 4 - 1 : 0);
}

int jose_b64u_decode(const char *p, size_t len, uint8_t **out, size_t *outlen)
{
    cjose_err cerr = {0};
    *out = NULL;
    if (!jose_b64u_canonical(p, len))
        return CP_ERR_INVALID;
    if (!cjose_base64url_decode(p, len, out, outlen, &cerr)) {
        *out = NULL;
        return cerr.code == CJOSE_ERR_NO_MEMORY ? CP_ERR_NOMEM : CP_ERR_INVALID;
    }
    /* Cannot happen: our reading would differ from cjose's. */
    if (*outlen != jose_b64u_decoded_len(len)) {
        cjose_get_dealloc()(*out);
        *out = NULL;
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

const char *jose_member_str(struct json_object *obj, const char *name, size_t *len)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}
