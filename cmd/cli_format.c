/* --format TEMPLATE for the commands that list or inspect things (see cli.h). */
#include "cmd/cli.h"

#include "common/cleanup.h"
#include "common/template.h"

#include <stdio.h>

int cli_render_template(const char *format, const json_t *items, const json_t *headers,
                        bool noheading, char **out, berth_error_t *err)
{
    cleanup_tmpl_report tmpl_report_t *r = NULL;
    if (tmpl_report_new(format, &r, err) < 0)
        return -1;
    if (tmpl_report_is_table(r) && headers && !noheading &&
        tmpl_report_headers(r, headers, err) < 0)
        return -1;
    if (tmpl_report_run(r, items, err) < 0)
        return -1;
    *out = tmpl_report_finish(r);
    return 0;
}

int cli_print_template(const char *format, const json_t *items, const json_t *headers,
                       bool noheading)
{
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *out = NULL;
    if (cli_render_template(format, items, headers, noheading, &out, &err) < 0)
        return cli_fail(&err);
    fputs(out, stdout);
    return 0;
}
