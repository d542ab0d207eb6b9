/*
 * fuzz_rkey.c - libFuzzer target for common/rkey's decoders: the values of
 * coupon:{ID}:users and coupon:{ID}:pending, which the consumer's reconciler and
 * the read path parse from Redis (written by Lua, restored from MariaDB, or put
 * there by anyone with access to Redis), and user-id hash fields. Also
 * event_key_parse (the Kafka key the settler reads back from delivery reports).
 *
 * Invariants checked (abort when broken):
 *   - decoders accept only canonical text: whatever decodes, encodes back to
 *     exactly the same bytes (so C and Lua can never disagree about a value);
 *   - decoded sequences and ids are >= 1, times >= 0, event ids 32 lowercase hex.
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "event.h"
#include "rkey.h"

static void same_bytes(const char *in, size_t len, const char *out, int n)
{
    CHECK(n >= 0 && (size_t)n == len && memcmp(in, out, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[RKEY_VALUE_MAX + 8];
    struct rkey_issuance iss;
    if (rkey_issuance_decode(s, size, &iss) == CP_OK) {
        CHECK(iss.sequence >= 1 && iss.issued_at_ms >= 0);
        same_bytes(s, size, out, rkey_issuance_encode(&iss, out, sizeof out));
    }
    struct rkey_pending pend;
    if (rkey_pending_decode(s, size, &pend) == CP_OK) {
        CHECK(pend.sequence >= 1 && pend.issued_at_ms >= 0);
        CHECK(event_id_valid(pend.event_id, strlen(pend.event_id)));
        same_bytes(s, size, out, rkey_pending_encode(&pend, out, sizeof out));
    }
    int64_t user = 0;
    if (rkey_user_decode(s, size, &user) == CP_OK) {
        CHECK(user >= 1);
        same_bytes(s, size, out, rkey_user_encode(user, out, sizeof out));
    }
    int64_t coupon = 0;
    if (event_key_parse(s, size, &coupon, &user) == CP_OK) {
        struct issue_event ev = {.coupon_id = coupon, .user_id = user};
        same_bytes(s, size, out, event_key(&ev, out, sizeof out));
    }
    return 0;
}
