/* containers-policy.json(5): strict parsing of every requirement type. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "transport/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_policy struct policy *p = NULL;
    IGNORE_RESULT(policy_parse((const char *)data, size, "policy.json", &p, &err));
    return 0;
}
