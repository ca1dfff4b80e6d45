#include "common/progress.h"
#include "common/alloc.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH       30
#define REDRAW_INTERVAL 100000000LL /* ns: at most ten redraws a second per bar */

struct progress {
    FILE *out;
    bool quiet, tty;
    pthread_mutex_t mu;
    int lines; /* lines printed on a tty since the first bar (cursor sits below them) */
};

struct progress_bar {
    progress_t *p;
    char *label;
    int64_t total;
    uint64_t done;
    int line;
    int64_t last_draw;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

progress_t *progress_new(FILE *out, bool quiet)
{
    progress_t *p = xzalloc(sizeof(*p));
    p->out = out;
    p->quiet = quiet || out == NULL;
    if (!p->quiet) {
        const char *term = getenv("TERM");
        int fd = fileno(out);
        p->tty = fd >= 0 && isatty(fd) && !(term && strcmp(term, "dumb") == 0);
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void progress_free(progress_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

bool progress_is_tty(const progress_t *p)
{
    return p && p->tty;
}

void progress_message(progress_t *p, const char *fmt, ...)
{
    if (p == NULL || p->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    fprintf(p->out, "%s\n", msg);
    if (p->tty)
        p->lines++;
    fflush(p->out);
    pthread_mutex_unlock(&p->mu);
    free(msg);
}

static void human_size(uint64_t n, char *buf, size_t len)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 "b", n);
    else
        snprintf(buf, len, "%.1f%s", v, units[u]);
}

static int term_columns(progress_t *p)
{
    struct winsize ws;
    if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Formats the bar's line; final_word replaces the bar when the copy is over. */
static char *format_bar(const progress_bar_t *b, const char *final_word)
{
    char done[32], total[32];
    human_size(b->done, done, sizeof(done));
    if (final_word)
        return xasprintf("%s %s", b->label, final_word);
    if (b->total < 0)
        return xasprintf("%s %s", b->label, done);
    human_size((uint64_t)b->total, total, sizeof(total));
    char bar[BAR_WIDTH + 1];
    uint64_t filled = b->total > 0 ? b->done * BAR_WIDTH / (uint64_t)b->total : BAR_WIDTH;
    if (filled > BAR_WIDTH)
        filled = BAR_WIDTH;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = (uint64_t)i < filled ? '=' : (uint64_t)i == filled ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    return xasprintf("%s [%s] %s / %s", b->label, bar, done, total);
}

/* Redraws the bar's own line: up to it, rewrite, back down.  Called with the lock held. */
static void draw(progress_bar_t *b, const char *final_word)
{
    progress_t *p = b->p;
    char *line = format_bar(b, final_word);
    int cols = term_columns(p);
    /* never wrap: the cursor arithmetic assumes one terminal line per bar */
    if ((int)strlen(line) >= cols)
        line[cols > 1 ? cols - 1 : 0] = '\0';
    int up = p->lines - b->line;
    if (up > 0)
        fprintf(p->out, "\033[%dA\r%s\033[K\033[%dB\r", up, line, up);
    else
        fprintf(p->out, "\r%s\033[K", line);
    fflush(p->out);
    free(line);
    b->last_draw = now_ns();
}

progress_bar_t *progress_bar_start(progress_t *p, const char *label, int64_t total)
{
    if (p == NULL)
        return NULL;
    progress_bar_t *b = xzalloc(sizeof(*b));
    b->p = p;
    b->label = xstrdup(label ? label : "");
    b->total = total;
    if (p->quiet)
        return b;
    pthread_mutex_lock(&p->mu);
    if (p->tty) {
        b->line = p->lines;
        fputs("\n", p->out); /* reserve the bar's line */
        p->lines++;
        draw(b, NULL);
    } else {
        fprintf(p->out, "%s\n", b->label);
        fflush(p->out);
    }
    pthread_mutex_unlock(&p->mu);
    return b;
}

void progress_bar_add(progress_bar_t *b, uint64_t n)
{
    if (b == NULL)
        return;
    progress_t *p = b->p;
    pthread_mutex_lock(&p->mu);
    b->done += n;
    if (p->tty && now_ns() - b->last_draw >= REDRAW_INTERVAL)
        draw(b, NULL);
    pthread_mutex_unlock(&p->mu);
}

void progress_bar_done(progress_bar_t *b, const char *final_word)
{
    if (b == NULL)
        return;
    progress_t *p = b->p;
    pthread_mutex_lock(&p->mu);
    if (p->tty)
        draw(b, final_word ? final_word : "done");
    pthread_mutex_unlock(&p->mu);
    free(b->label);
    free(b);
}
