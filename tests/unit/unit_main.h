/*
 * unit_main: how every CUnit program in tests/unit registers and runs its cases.
 *
 * Each program is one suite. The exit status follows the automake test driver:
 * 0 every case passed, 1 a case or the suite's init failed, 2 CUnit itself failed
 * (registry, allocation), so a broken harness is never read as a test failure.
 */
#ifndef COUPON_TESTS_UNIT_MAIN_H
#define COUPON_TESTS_UNIT_MAIN_H

#include <stddef.h>

#include <CUnit/CUnit.h>

struct unit_case {
    const char *name;
    CU_TestFunc fn;
};

#define UNIT_CASES(array) (array), (sizeof(array) / sizeof((array)[0]))

/* Runs `cases` as the suite `suite` (init may be NULL), verbose, and returns the
 * exit status described above. */
int unit_run_suite(const char *suite, CU_InitializeFunc init, const struct unit_case *cases,
                   size_t n_cases);

#endif
