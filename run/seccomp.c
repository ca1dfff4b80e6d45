/* Loading a runtime-spec linux.seccomp profile with libseccomp. */
#include "run/internal.h"

#include "common/alloc.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>

static int parse_action(const char *name, const json_t *rule, uint32_t *out)
{
    int64_t ret = EPERM;
    json_t *er = rule ? json_object_get(rule, "errnoRet") : NULL;
    if (json_is_integer(er))
        ret = json_integer_value(er);
    if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO((uint16_t)ret);
    else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL;
    else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(name, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
        *out = SCMP_ACT_TRACE((uint16_t)ret);
    else
        return -1;
    return 0;
}

static const struct {
    const char *name;
    enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

int seccomp_load_spec(const json_t *sc, berth_error_t *err)
{
    const char *def = json_string_value(json_object_get(sc, "defaultAction"));
    uint32_t defact;
    if (!def || parse_action(def, sc, &defact) < 0)
        return berth_error_make_status(err, EINVAL, "unknown defaultAction \"%s\"", def ? def : "");
    scmp_filter_ctx ctx = seccomp_init(defact);
    if (!ctx)
        return berth_error_make_status(err, ENOMEM, "seccomp_init failed");
    size_t i, j;
    json_t *a;
    json_array_foreach(json_object_get(sc, "architectures"), i, a)
    {
        const char *n = json_string_value(a);
        if (!n || strncmp(n, "SCMP_ARCH_", 10) != 0)
            continue;
        char lower[32];
        size_t k = 0;
        for (const char *p = n + 10; *p && k < sizeof(lower) - 1; p++)
            lower[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        lower[k] = '\0';
        uint32_t arch = seccomp_arch_resolve_name(lower);
        if (arch && arch != seccomp_arch_native())
            seccomp_arch_add(ctx, arch); /* EEXIST or unsupported: ignore */
    }
    json_t *rule;
    json_array_foreach(json_object_get(sc, "syscalls"), i, rule)
    {
        const char *an = json_string_value(json_object_get(rule, "action"));
        uint32_t act;
        if (!an || parse_action(an, rule, &act) < 0) {
            seccomp_release(ctx);
            return berth_error_make_status(err, EINVAL, "unknown seccomp action \"%s\"",
                                           an ? an : "");
        }
        if (act == defact)
            continue;
        struct scmp_arg_cmp cmps[6];
        unsigned ncmp = 0;
        json_t *arg;
        json_array_foreach(json_object_get(rule, "args"), j, arg)
        {
            if (ncmp >= 6)
                break;
            const char *opn = json_string_value(json_object_get(arg, "op"));
            enum scmp_compare op = 0;
            for (size_t k = 0; opn && k < sizeof(ops) / sizeof(ops[0]); k++)
                if (strcmp(opn, ops[k].name) == 0)
                    op = ops[k].op;
            if (!op) {
                seccomp_release(ctx);
                return berth_error_make_status(err, EINVAL, "unknown seccomp operator \"%s\"",
                                               opn ? opn : "");
            }
            cmps[ncmp].arg = (unsigned)json_integer_value(json_object_get(arg, "index"));
            cmps[ncmp].op = op;
            cmps[ncmp].datum_a = (scmp_datum_t)json_integer_value(json_object_get(arg, "value"));
            cmps[ncmp].datum_b = (scmp_datum_t)json_integer_value(json_object_get(arg, "valueTwo"));
            ncmp++;
        }
        json_t *name;
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            const char *s = json_string_value(name);
            int nr = s ? seccomp_syscall_resolve_name(s) : __NR_SCMP_ERROR;
            if (nr == __NR_SCMP_ERROR)
                continue; /* not a syscall on this architecture */
            int r = seccomp_rule_add_array(ctx, act, nr, ncmp, cmps);
            if (r < 0 && r != -EEXIST) {
                seccomp_release(ctx);
                return berth_error_make(err, -r, "seccomp rule for \"%s\"", s);
            }
        }
    }
    int r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r < 0)
        return berth_error_make(err, -r, "load the seccomp filter");
    return 0;
}
