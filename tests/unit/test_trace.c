/* traceparent parsing and generation; random ids; time helpers; metrics rendering; log lines. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

static bool is_hex(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

Test(trace, valid_header)
{
    antar_trace_t t;
    cr_assert(
        antar_trace_from_header(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    cr_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    cr_assert_str_eq(t.parent_id, "00f067aa0ba902b7");
    cr_assert_str_eq(t.flags, "01");
    cr_assert(is_hex(t.span_id, 16));
    cr_assert_str_neq(t.span_id, "00f067aa0ba902b7");
}

Test(trace, invalid_headers_start_fresh)
{
    const char *bad[] = {
        NULL,
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        antar_trace_t t;
        cr_assert_not(antar_trace_from_header(&t, bad[i]), "accepted %s", bad[i]);
        cr_assert(is_hex(t.trace_id, 32));
        cr_assert(is_hex(t.span_id, 16));
        cr_assert_str_eq(t.parent_id, "");
        cr_assert_str_eq(t.flags, "01");
        cr_assert_str_neq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}

Test(trace, child_header_and_current)
{
    antar_trace_t t;
    antar_trace_new(&t);
    char hdr[56], child[17];
    antar_trace_child_header(&t, hdr, child);
    cr_assert_eq(strlen(hdr), 55);
    cr_assert(is_hex(child, 16));
    antar_trace_t back;
    cr_assert(antar_trace_from_header(&back, hdr));
    cr_assert_str_eq(back.trace_id, t.trace_id);
    cr_assert_str_eq(back.parent_id, child);

    cr_assert_null(antar_trace_current());
    antar_trace_set_current(&t);
    cr_assert_str_eq(antar_trace_current()->trace_id, t.trace_id);
    antar_trace_set_current(NULL);
    cr_assert_null(antar_trace_current());
    antar_trace_begin();
    cr_assert_not_null(antar_trace_current());
}

Test(util, time_format_and_parse)
{
    char buf[32];
    antar_time_rfc3339(1795249800123LL, buf);
    cr_assert_str_eq(buf, "2026-11-21T08:30:00.123Z");
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00.123Z"), 1795249800123LL);
    cr_assert_eq(antar_time_parse("2026-11-21T15:30:00.123+07:00"), 1795249800123LL);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00Z"), 1795249800000LL);
    cr_assert_eq(antar_time_parse("2026-11-21 08:30:00Z"), -1);
    cr_assert_eq(antar_time_parse("2026-02-30T08:30:00Z"), -1);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00"), -1);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00Zx"), -1);
    cr_assert_eq(antar_time_parse(NULL), -1);
    cr_assert(antar_now_ms() > 1700000000000LL);
    cr_assert(antar_mono_ms() >= 0);
}

Test(metrics, render)
{
    antar_metrics_request("/orders/{id}", "GET", 200, 0.003);
    antar_metrics_request("/orders/{id}", "GET", 200, 0.2);
    antar_metrics_call("core-service", "ok", 0.01);
    antar_metrics_count("antar_orders_total", "status", "created");
    char *t = antar_metrics_render();
    cr_assert_not_null(t);
    cr_assert(strstr(t, "antar_http_requests_total{route=\"/orders/{id}\",method=\"GET\","
                        "status=\"200\"} 2\n"),
              "%s", t);
    cr_assert(strstr(t, "antar_http_request_duration_seconds_bucket{route=\"/orders/{id}\","
                        "le=\"0.005\"} 1\n"),
              "%s", t);
    cr_assert(strstr(t, "antar_http_request_duration_seconds_bucket{route=\"/orders/{id}\","
                        "le=\"+Inf\"} 2\n"));
    cr_assert(strstr(t, "antar_calls_total{target=\"core-service\",outcome=\"ok\"} 1\n"));
    cr_assert(strstr(t, "antar_orders_total{status=\"created\"} 1\n"));
    free(t);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(trace, random_ids_are_hex_and_distinct)
{
    enum { N = 2000 };
    static char ids[N][33];
    static char *p[N];
    for (int i = 0; i < N; i++) {
        antar_random_hex(ids[i], 16);
        cr_assert(is_hex(ids[i], 32), "%s", ids[i]);
        p[i] = ids[i];
    }
    qsort(p, N, sizeof(*p), cmp_str);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(p[i - 1], p[i]);
    char small[3];
    antar_random_hex(small, 1);
    cr_assert(is_hex(small, 2));
}

static void *thread_id(void *out)
{
    antar_random_hex(out, 16);
    return NULL;
}

Test(trace, random_ids_differ_across_threads_and_fork)
{
    char a[33], b[33], mine[33];
    pthread_t t1, t2;
    antar_random_hex(mine, 16);
    pthread_create(&t1, NULL, thread_id, a);
    pthread_create(&t2, NULL, thread_id, b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_str_neq(a, b);
    cr_assert_str_neq(a, mine);

    /* A forked child must not repeat what the parent draws next. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char c[33];
        antar_random_hex(c, 16);
        ssize_t w = write(fds[1], c, 33);
        _exit(w == 33 ? 0 : 1);
    }
    char child[33] = "", parent[33];
    antar_random_hex(parent, 16);
    cr_assert_eq(read(fds[0], child, 33), 33);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    cr_assert(is_hex(child, 32));
    cr_assert_str_neq(child, parent);
}

Test(metrics, series_lookup_with_long_labels)
{
    char longroute[200];
    memset(longroute, 'r', sizeof(longroute) - 1);
    longroute[0] = '/';
    longroute[sizeof(longroute) - 1] = '\0';
    /* Alternating series on one thread: the per-thread hint must never count into the wrong
     * one; labels longer than the table keeps are cut and still match themselves. */
    for (int i = 0; i < 3; i++) {
        antar_metrics_request("/a", "GET", 200, 0.001);
        antar_metrics_request("/b", "GET", 200, 0.001);
        antar_metrics_request("/a", "GET", 404, 0.001);
        antar_metrics_request(longroute, "POST", 201, 0.001);
    }
    char *t = antar_metrics_render();
    cr_assert_not_null(t);
    cr_assert(strstr(t, "{route=\"/a\",method=\"GET\",status=\"200\"} 3\n"), "%s", t);
    cr_assert(strstr(t, "{route=\"/b\",method=\"GET\",status=\"200\"} 3\n"), "%s", t);
    cr_assert(strstr(t, "{route=\"/a\",method=\"GET\",status=\"404\"} 3\n"), "%s", t);
    cr_assert(strstr(t, "antar_http_request_duration_seconds_count{route=\"/a\"} 6\n"), "%s", t);
    char want[160];
    snprintf(want, sizeof(want), "{route=\"%.95s\",method=\"POST\",status=\"201\"} 3\n", longroute);
    cr_assert(strstr(t, want), "%s", t);
    free(t);
}

/* Runs fn with stdout sent to a temporary file; returns what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    fn();
    dup2(saved, STDOUT_FILENO);
    close(saved);
    long n = ftell(tmp);
    if (n <= 0) {
        fseek(tmp, 0, SEEK_END);
        n = ftell(tmp);
    }
    rewind(tmp);
    char *buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
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

/* ---- spans (the trace record's feed) ----------------------------------------------------------
 */

static int g_spans;
static char g_last_path[64];

static void count_sink(const antar_span_t *s)
{
    g_spans++;
    snprintf(g_last_path, sizeof g_last_path, "%s", s->path);
}

Test(trace, spans_reach_the_sink_and_are_counted_per_thread)
{
    antar_span_t s = {.kind = "call",
                      .from = "user-service",
                      .to = "core-service",
                      .method = "POST",
                      .path = "/internal/dispatch",
                      .outcome = "ok",
                      .trace_id = "0af7651916cd43dd8448eb211c80319c",
                      .span_id = "b7ad6b7169203331",
                      .parent_span_id = ""};
    g_spans = 0;
    (void)antar_trace_emitted_take();
    antar_trace_set_sink(NULL);
    antar_trace_emit(&s); /* no sink: dropped, not counted */
    cr_assert_eq(antar_trace_emitted_take(), 0);
    antar_trace_set_sink(count_sink);
    antar_trace_emit(&s);
    antar_trace_emit(&s);
    cr_assert_eq(g_spans, 2);
    cr_assert_str_eq(g_last_path, "/internal/dispatch");
    /* A span without a trace id is no span. */
    s.trace_id = "";
    antar_trace_emit(&s);
    cr_assert_eq(g_spans, 2);
    antar_trace_note_async();
    cr_assert_eq(antar_trace_emitted_take(), 3, "two spans and one queued call");
    cr_assert_eq(antar_trace_emitted_take(), 0, "the count resets");
    antar_trace_set_sink(NULL);
}
