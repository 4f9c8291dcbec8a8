/* lib/log.c: one JSON object per line — the header fields, the trace, escaping, the
 * hand-built fast path against jansson, antar_logf with bytes that are not UTF-8. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "test_support.h"

/* Runs fn with stdout sent to a temporary file; returns what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
    test_capture_t c;
    test_capture_begin(&c, STDOUT_FILENO);
    fn();
    return test_capture_end(&c);
}

static const char *const odd = "a\"b\\c\b\f\n\r\t\x01\x1f\x7f/é€😀";

static void log_by_hand(void)
{
    antar_log_field_t f[] = {
        {"s", ANTAR_LOG_STR, odd, 0, 0},
        {"bad_utf8", ANTAR_LOG_STR, "\xc3\x28", 0, 0},
        {"none", ANTAR_LOG_STR, NULL, 0, 0},
        {"i", ANTAR_LOG_INT, NULL, -9007199254740993LL, 0},
        {"r1", ANTAR_LOG_REAL, NULL, 0, 0.1},
        {"r2", ANTAR_LOG_REAL, NULL, 0, 1e-7},
        {"r3", ANTAR_LOG_REAL, NULL, 0, 1e21},
        {"r4", ANTAR_LOG_REAL, NULL, 0, 12.0},
        {"r5", ANTAR_LOG_REAL, NULL, 0, -2.5e-300},
        {"ms0", ANTAR_LOG_MS, NULL, 0, 0},
        {"ms1", ANTAR_LOG_MS, NULL, 267, 0},
        {"ms2", ANTAR_LOG_MS, NULL, 1000, 0},
        {"ms3", ANTAR_LOG_MS, NULL, 1234560, 0},
        {"ms4", ANTAR_LOG_MS, NULL, 5000000001LL, 0},
        {"n", ANTAR_LOG_NULL, NULL, 0, 0},
    };
    antar_log_fields("warn", "ev\"t", f, sizeof(f) / sizeof(*f));
}

static void log_by_jansson(void)
{
    json_t *o = json_object();
    json_object_set_new(o, "s", json_string(odd));
    json_object_set_new(o, "bad_utf8", json_string("\xc3\x28")); /* NULL: not set */
    json_object_set_new(o, "none", json_null());
    json_object_set_new(o, "i", json_integer(-9007199254740993LL));
    json_object_set_new(o, "r1", json_real(0.1));
    json_object_set_new(o, "r2", json_real(1e-7));
    json_object_set_new(o, "r3", json_real(1e21));
    json_object_set_new(o, "r4", json_real(12.0));
    json_object_set_new(o, "r5", json_real(-2.5e-300));
    json_object_set_new(o, "ms0", json_real(0 / 1e3));
    json_object_set_new(o, "ms1", json_real(267 / 1e3));
    json_object_set_new(o, "ms2", json_real(1000 / 1e3));
    json_object_set_new(o, "ms3", json_real(1234560 / 1e3));
    json_object_set_new(o, "ms4", json_real(5000000001LL / 1e3));
    json_object_set_new(o, "n", json_null());
    antar_log_json("warn", "ev\"t", o);
}

Test(log, fields_by_hand_match_jansson)
{
    antar_log_init("unit");
    antar_trace_t t;
    antar_trace_new(&t);
    for (int with_trace = 0; with_trace < 2; with_trace++) {
        antar_trace_set_current(with_trace ? &t : NULL);
        char *a = capture(log_by_hand), *b = capture(log_by_jansson);
        /* Same text after the timestamp (which both write as 24 characters). */
        cr_assert(strncmp(a, "{\"ts\":\"", 7) == 0 && strlen(a) > 33, "%s", a);
        cr_assert_str_eq(a + 33, b + 33);
        cr_assert_eq(a[strlen(a) - 1], '\n');
        json_error_t e;
        json_t *j = json_loads(a, 0, &e);
        cr_assert_not_null(j, "%s: %s", e.text, a);
        cr_assert_str_eq(json_string_value(json_object_get(j, "s")), odd);
        cr_assert_null(json_object_get(j, "bad_utf8"));
        cr_assert(antar_time_parse(json_string_value(json_object_get(j, "ts"))) > 0);
        json_decref(j);
        free(a);
        free(b);
    }
    antar_trace_set_current(NULL);
}

static char *read_fd_file(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

Test(log, set_fd_header_fields_and_logf)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    antar_log_init("unit");
    antar_log_set_fd(fileno(f));
    antar_logf("error", "%s failed after %d tries", "core-service", 3);
    antar_logf(NULL, "bytes \xff\xfe here");
    antar_log_json("debug", NULL, NULL);
    char *text = read_fd_file(f);
    fclose(f);
    char *line2 = strchr(text, '\n');
    cr_assert_not_null(line2, "%s", text);
    *line2++ = '\0';
    char *line3 = strchr(line2, '\n');
    cr_assert_not_null(line3);
    *line3++ = '\0';
    json_error_t e;
    json_t *a = json_loads(text, 0, &e), *b = json_loads(line2, 0, &e),
           *c = json_loads(line3, 0, &e);
    cr_assert(a && b && c, "%s", e.text);
    cr_assert_str_eq(json_string_value(json_object_get(a, "level")), "error");
    cr_assert_str_eq(json_string_value(json_object_get(a, "service")), "unit");
    cr_assert_str_eq(json_string_value(json_object_get(a, "event")), "message");
    cr_assert_str_eq(json_string_value(json_object_get(a, "msg")),
                     "core-service failed after 3 tries");
    cr_assert(antar_time_parse(json_string_value(json_object_get(a, "ts"))) > 0);
    cr_assert_null(json_object_get(a, "trace_id"), "no trace on this thread");
    /* Not UTF-8: the line is kept, the bad bytes replaced. */
    cr_assert_str_eq(json_string_value(json_object_get(b, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(b, "msg")), "bytes ?? here");
    cr_assert_str_eq(json_string_value(json_object_get(c, "event")), "message");
    json_decref(a);
    json_decref(b);
    json_decref(c);
    free(text);
}
