/* --format TEMPLATE for the commands that list or inspect things (see cli.h). */
#include "cmd/cli.h"

#include "common/cleanup.h"
#include "common/template.h"

#include <stdio.h>
#include <time.h>

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
    return tmpl_report_finish(r, out, err);
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

void cli_human_duration(long long d, char *buf, size_t len)
{
    long long h = (d * 2 + 3600) / 7200; /* hours, rounded */
    if (d < 1)
        snprintf(buf, len, "Less than a second");
    else if (d == 1)
        snprintf(buf, len, "1 second");
    else if (d < 60)
        snprintf(buf, len, "%lld seconds", d);
    else if (d / 60 == 1)
        snprintf(buf, len, "About a minute");
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes", d / 60);
    else if (h == 1)
        snprintf(buf, len, "About an hour");
    else if (h < 48)
        snprintf(buf, len, "%lld hours", h);
    else if (h < 24 * 7 * 2)
        snprintf(buf, len, "%lld days", h / 24);
    else if (h < 24 * 30 * 2)
        snprintf(buf, len, "%lld weeks", h / 24 / 7);
    else if (h < 24 * 365 * 2)
        snprintf(buf, len, "%lld months", h / 24 / 30);
    else
        snprintf(buf, len, "%lld years", d / 3600 / 24 / 365);
}

void cli_go_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S %z %Z", &tm) == 0)
        snprintf(buf, len, "%lld", t);
}

json_t *cli_template_headers(const char *const pairs[][2], size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, pairs[i][0], json_string(pairs[i][1]));
    return o;
}
