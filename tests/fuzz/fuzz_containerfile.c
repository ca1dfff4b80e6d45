/* Containerfile parser, stage split, variable expansion and RUN --mount values: everything the
 * builder does with a Containerfile before it touches the filesystem. */
#include "fuzz.h"

#include "build/containerfile.h"
#include "build/expand.h"
#include "common/cleanup.h"

#include <jansson.h>
#include <strings.h>

static void expand_stage(const struct containerfile *cf, const struct cf_stage *st,
                         struct build_args *ba)
{
    struct stage_env se;
    stage_env_init(&se, ba, NULL, 0);
    for (size_t i = st->first; i < st->end; i++) {
        const struct cf_instruction *in = &cf->insts[i];
        cleanup_error berth_error_t err = NULL;
        if (strcasecmp(in->keyword, "ARG") == 0) {
            IGNORE_RESULT(stage_env_apply_arg(&se, in, &err));
            continue;
        }
        if (strcasecmp(in->keyword, "ENV") == 0) {
            IGNORE_RESULT(stage_env_apply_env(&se, in, &err));
            continue;
        }
        struct cf_instruction *x = NULL;
        if (stage_env_expand_instruction(&se, in, &x, &err) < 0)
            continue;
        for (size_t f = 0; f < x->nflags; f++) {
            if (strcmp(x->flags[f].name, "mount") != 0 || !x->flags[f].value)
                continue;
            cleanup_error berth_error_t merr = NULL;
            struct cf_mount m = {0};
            if (cf_parse_mount(x->flags[f].value, &m, &merr) == 0)
                cf_mount_clear(&m);
        }
        cf_instruction_free(x);
    }
    char **env = stage_env_run_env(&se);
    for (char **p = env; p && *p; p++)
        free(*p);
    free(env);
    stage_env_clear(&se);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_containerfile struct containerfile *cf = NULL;
    if (containerfile_parse((const char *)data, size, "Containerfile", &cf, &err) < 0)
        return 0;
    json_t *ast = containerfile_to_json(cf);
    json_decref(ast);

    cleanup_cf_stages struct cf_stages *stages = NULL;
    if (containerfile_stages(cf, &stages, &err) < 0)
        return 0;
    cleanup_build_args struct build_args *ba = NULL;
    if (build_args_new(NULL, "linux/amd64", "linux/amd64", &ba, &err) < 0)
        return 0;
    for (size_t g = 0; g < stages->nglobal_args; g++) {
        cleanup_error berth_error_t gerr = NULL;
        IGNORE_RESULT(build_args_apply_global(ba, &cf->insts[stages->global_args[g]], &gerr));
    }
    for (size_t s = 0; s < stages->n; s++) {
        cleanup_free char *base = NULL;
        cleanup_error berth_error_t berr = NULL;
        IGNORE_RESULT(build_args_expand_global(ba, stages->stages[s].base, &base, &berr));
        expand_stage(cf, &stages->stages[s], ba);
    }
    return 0;
}
