/*
 * fuzz_check.h - what every fuzz target shares: its entry point's prototype and
 * CHECK(), which aborts (a finding for libFuzzer, a failure for replay.sh) when
 * an invariant of the code under test is broken.
 */
#ifndef COUPON_FUZZ_CHECK_H
#define COUPON_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

#endif
