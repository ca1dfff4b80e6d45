/* The Go template engine of --format: any text a user passes must parse or fail cleanly, and
 * execution over a fixed document (a struct with strings, numbers, lists and maps) must stay
 * within its bounds. */
#include "fuzz.h"

#include "common/cleanup.h"
#include "common/strutil.h"
#include "common/template.h"

#include <stdlib.h>
#include <string.h>

static json_t *fixture(void)
{
    json_t *o = tmpl_struct_new("fuzz.T");
    json_object_set_new(o, "Name", json_string("a/b:c"));
    json_object_set_new(o, "N", json_integer(42));
    json_object_set_new(o, "F", json_real(2.5));
    json_object_set_new(o, "B", json_true());
    json_object_set_new(o, "Nil", json_null());
    json_object_set_new(o, "NilMap", tmpl_nil_map());
    json_t *l = json_array();
    for (int i = 0; i < 4; i++)
        json_array_append_new(l, json_string(i % 2 ? "x y" : "z"));
    json_object_set_new(o, "List", l);
    json_t *m = json_object();
    json_object_set_new(m, "k", json_string("v"));
    json_object_set_new(m, "n", json_integer(-1));
    json_object_set_new(o, "Map", m);
    json_t *items = json_array();
    json_array_append_new(items, o);
    json_array_append(items, o);
    return items;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *items;
    if (!items)
        items = fixture();
    cleanup_free char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    /* as a report (podman's normalisation, range wrapper, table) */
    cleanup_error berth_error_t err = NULL;
    tmpl_report_t *r = NULL;
    if (strlen(text) == size && tmpl_report_new(text, &r, &err) == 0) {
        json_t *h = json_object();
        json_object_set_new(h, "Name", json_string("NAME"));
        if (tmpl_report_is_table(r))
            IGNORE_RESULT(tmpl_report_headers(r, h, &err));
        berth_error_release(&err);
        IGNORE_RESULT(tmpl_report_run(r, items, &err));
        berth_error_release(&err);
        char *out = NULL;
        if (tmpl_report_finish(r, &out, &err) == 0)
            free(out);
        berth_error_release(&err);
        json_decref(h);
        tmpl_report_free(r);
    }
    berth_error_release(&err);
    /* as a plain template */
    tmpl_t *t = NULL;
    if (tmpl_parse((const char *)data, size, &t, &err) == 0) {
        struct strbuf b = STRBUF_INIT;
        if (tmpl_execute(t, json_array_get(items, 0), &b, &err) == 0 && b.len > TMPL_MAX_OUTPUT)
            abort();
        strbuf_release(&b);
        tmpl_free(t);
    }
    return 0;
}
