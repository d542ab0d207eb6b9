/*
 * fuzz_event.c - libFuzzer target for common/event's strict decoder (what the
 * consumer runs on every Kafka message of coupon.issue, which anyone able to
 * produce to the topic controls) and for common/timefmt's parser.
 *
 * Invariants checked (abort when broken):
 *   - a decoded event has a 32-lowercase-hex id and positive ids and sequence;
 *   - encoding a decoded event and decoding that again gives the same event
 *     (the producer and the consumer can never disagree about a value);
 *   - timefmt: every parsed instant formats, and parses back to itself.
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "event.h"
#include "timefmt.h"

static void check_timefmt(const char *text, size_t len)
{
    int64_t ms = 0, back = 0;
    char out[TIMEFMT_LEN];
    if (len > 64 || timefmt_parse_ms(text, len, &ms) != CP_OK)
        return;
    CHECK(ms >= TIMEFMT_MIN_MS && ms <= TIMEFMT_MAX_MS);
    int n = timefmt_format_ms(ms, out, sizeof out);
    CHECK(n == TIMEFMT_LEN - 1 && strlen(out) == (size_t)n);
    CHECK(timefmt_parse_ms(out, (size_t)n, &back) == CP_OK);
    CHECK(back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct issue_event ev, again;
    const char *why = NULL;

    check_timefmt((const char *)data, size);

    memset(&ev, 0, sizeof ev);
    int rc = event_decode(data, size, &ev, &why);
    if (rc != CP_OK) {
        CHECK(rc == CP_ERR_INVALID && why != NULL);
        return 0;
    }
    CHECK(why == NULL);
    CHECK(strlen(ev.event_id) == CP_EVENT_ID_HEX);
    CHECK(strspn(ev.event_id, "0123456789abcdef") == CP_EVENT_ID_HEX);
    CHECK(ev.coupon_id >= 1 && ev.user_id >= 1 && ev.sequence >= 1);

    char buf[CP_EVENT_MAX_BYTES], key[48];
    int n = event_encode(&ev, buf, sizeof buf);
    CHECK(n > 0);
    CHECK(event_key(&ev, key, sizeof key) > 0);
    memset(&again, 0, sizeof again);
    CHECK(event_decode(buf, (size_t)n, &again, &why) == CP_OK);
    CHECK(memcmp(&ev, &again, sizeof ev) == 0);

    char issued[CP_EVENT_MAX_BYTES];
    CHECK(event_encode_issued(&ev, 1, ev.issued_at_ms, issued, sizeof issued) > 0);
    return 0;
}
