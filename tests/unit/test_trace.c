/* traceparent parsing and generation; time helpers; metrics rendering. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

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
