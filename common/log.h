/* Logging to stderr.  Levels follow podman's --log-level names. Credentials must never be passed
 * to these functions. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

typedef enum {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
    LOG_LEVEL_TRACE = 4,
} berth_log_level_t;

/* Returns -1 for an unknown name ("error", "warn", "warning", "info", "debug", "trace",
 * also "fatal"/"panic" which map to error). */
int berth_log_parse_level(const char *name, berth_log_level_t *out);
void berth_log_set_level(berth_log_level_t level);
berth_log_level_t berth_log_get_level(void);
void berth_log(berth_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) berth_log(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  berth_log(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  berth_log(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) berth_log(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_trace(...) berth_log(LOG_LEVEL_TRACE, __VA_ARGS__)

#endif
