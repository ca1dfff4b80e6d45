/* berth build: for now only --print-ast (the parsed Containerfile as JSON); the builder itself
 * comes later. */
#include "build/containerfile.h"
#include "cmd/cli.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: berth build --print-ast [-f FILE] [CONTEXT]\n\n"
    "Parse a Containerfile and print its instructions as JSON (instruction, flags, arguments,\n"
    "heredocs, start and end line).\n\n"
    "Options:\n"
    "  -f, --file FILE   Containerfile to parse, relative to the current directory or else\n"
    "                    to CONTEXT (default: CONTEXT/Containerfile, then\n"
    "                    CONTEXT/Dockerfile; \"-\" reads standard input)\n"
    "      --print-ast   print the parsed file as JSON and exit\n"
    "  -h, --help        show this help\n";

static int cmd_build(struct berth_globals *g, int argc, char **argv)
{
    enum { OPT_PRINT_AST = 1000 };
    static const struct option opts[] = {{"file", required_argument, NULL, 'f'},
                                         {"print-ast", no_argument, NULL, OPT_PRINT_AST},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *file = NULL;
    bool print_ast = false;
    int c;
    while ((c = cli_getopt(argc, argv, "f:h", opts, false)) != -1) {
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case OPT_PRINT_AST:
            print_ast = true;
            break;
        case 'h':
            return cli_usage(usage);
        default:
            return cli_bad_option(argv[0], argc, argv);
        }
    }
    if (argc - optind > 1)
        return cli_nargs_error(argv[0], "at most one CONTEXT directory");
    if (!print_ast)
        return cli_failf("berth build: only --print-ast is implemented in this version");
    const char *context = optind < argc ? argv[optind] : ".";
    cleanup_free char *path = NULL;
    if (file) {
        /* as buildah: relative to the current directory, else to the context */
        if (strcmp(file, "-") != 0 && file[0] != '/' && access(file, F_OK) != 0) {
            char *p = xasprintf("%s/%s", context, file);
            if (access(p, F_OK) == 0)
                path = p;
            else
                free(p);
        }
        if (!path)
            path = xstrdup(file);
    } else {
        static const char *const names[] = {"Containerfile", "Dockerfile"};
        for (size_t i = 0; i < 2 && !path; i++) {
            char *p = xasprintf("%s/%s", context, names[i]);
            if (access(p, F_OK) == 0)
                path = p;
            else
                free(p);
        }
        if (!path)
            return cli_failf("no Containerfile or Dockerfile found in \"%s\" (use -f FILE)",
                             context);
    }
    cleanup_error berth_error_t err = NULL;
    struct containerfile *cf = NULL;
    if (containerfile_parse_file(path, &cf, &err) < 0)
        return cli_fail(&err);
    for (size_t i = 0; i < cf->nwarnings; i++)
        log_warn("%s", cf->warnings[i]);
    cleanup_json json_t *j = containerfile_to_json(cf);
    containerfile_free(cf);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s)
        return cli_failf("cannot encode the AST as JSON");
    puts(s);
    free(s);
    if (fflush(stdout) != 0)
        return cli_failf("write standard output: %s", strerror(errno));
    return 0;
}

BERTH_COMMAND(build, "build", "Build an image from a Containerfile (--print-ast only for now)",
              cmd_build);
