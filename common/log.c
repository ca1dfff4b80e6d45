#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static berth_log_level_t current_level = LOG_LEVEL_WARN;

static const char *const level_names[] = {"error", "warning", "info", "debug", "trace"};

int berth_log_parse_level(const char *name, berth_log_level_t *out)
{
    static const struct {
        const char *name;
        berth_log_level_t level;
    } table[] = {
        {"panic", LOG_LEVEL_ERROR}, {"fatal", LOG_LEVEL_ERROR},  {"error", LOG_LEVEL_ERROR},
        {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN}, {"info", LOG_LEVEL_INFO},
        {"debug", LOG_LEVEL_DEBUG}, {"trace", LOG_LEVEL_TRACE},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(name, table[i].name) == 0) {
            *out = table[i].level;
            return 0;
        }
    }
    return -1;
}

void berth_log_set_level(berth_log_level_t level)
{
    current_level = level;
}

berth_log_level_t berth_log_get_level(void)
{
    return current_level;
}

void berth_log(berth_log_level_t level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* one fprintf so concurrent writers do not interleave within a line */
    fprintf(stderr, "%s: %s\n", level_names[level], buf);
}
