#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/progress.h"

#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(FILE *f)
{
    fflush(f);
    long len = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    return buf;
}

static void test_not_a_tty(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    progress_t *p = progress_new(f, false);
    assert_false(progress_is_tty(p));
    progress_bar_t *b = progress_bar_start(p, "Copying blob sha256:abcd", 100);
    progress_bar_add(b, 50);
    progress_bar_add(b, 50);
    progress_bar_done(b, "done");
    progress_message(p, "Writing manifest to image destination");
    progress_free(p);
    cleanup_free char *out = slurp(f);
    fclose(f);
    assert_string_equal(out, "Copying blob sha256:abcd\nWriting manifest to image destination\n");
}

static void test_quiet_and_null(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    progress_t *p = progress_new(f, true);
    progress_bar_t *b = progress_bar_start(p, "Copying blob x", -1);
    progress_bar_add(b, 5);
    progress_bar_done(b, NULL);
    progress_message(p, "hello %d", 1);
    progress_free(p);
    cleanup_free char *out = slurp(f);
    fclose(f);
    assert_string_equal(out, "");
    /* NULL everywhere is a no-op */
    progress_message(NULL, "x");
    assert_null(progress_bar_start(NULL, "x", 1));
    progress_bar_add(NULL, 1);
    progress_bar_done(NULL, "done");
    progress_free(NULL);
}

struct worker {
    progress_t *p;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char label[64];
    snprintf(label, sizeof(label), "Copying blob sha256:%04d", w->id);
    progress_bar_t *b = progress_bar_start(w->p, label, 1000);
    for (int i = 0; i < 100; i++)
        progress_bar_add(b, 10);
    progress_bar_done(b, "done");
    return NULL;
}

static void test_tty(void **state)
{
    (void)state;
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
        skip();
    FILE *out = fdopen(slave, "w");
    assert_non_null(out);
    progress_t *p = progress_new(out, false);
    assert_true(progress_is_tty(p));
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){p, i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    progress_message(p, "Writing manifest");
    progress_free(p);
    fclose(out);
    char buf[65536];
    size_t got = 0;
    ssize_t n;
    fcntl(master, F_SETFL, O_NONBLOCK);
    while (got < sizeof(buf) - 1 && (n = read(master, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(master);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof(want), "Copying blob sha256:%04d done", i);
        if (strstr(buf, want) == NULL)
            fail_msg("missing \"%s\" in tty output", want);
    }
    assert_non_null(strstr(buf, "\033["));
    assert_non_null(strstr(buf, "Writing manifest"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_a_tty),
        cmocka_unit_test(test_quiet_and_null),
        cmocka_unit_test(test_tty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
