#include "first.h"

#include "unit_main.h"

#include <CUnit/Basic.h>

int unit_run_suite(const char *suite_name, CU_InitializeFunc init, const struct unit_case *cases,
                   size_t n_cases)
{
    int status = 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite(suite_name, init, NULL);
    if (suite == NULL)
        goto out;
    for (size_t i = 0; i < n_cases; i++)
        if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL)
            goto out;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto out;
    status = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed() == 0 ? 0 : 1;
out:
    CU_cleanup_registry();
    return status;
}
