/* traceparent parsing and generation; random ids. (Time helpers: test_util.c; metrics:
 * test_metrics.c; log lines: test_log.c.) */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
