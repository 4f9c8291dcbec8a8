/* lib/metrics.c: the Prometheus exposition — request and call counters and histograms, named
 * counters, label escaping, extra sources. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/metrics.h"

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

Test(metrics, named_counters_one_type_line_per_family_and_escaped_values)
{
    antar_metrics_count("antar_orders_total", "status", "created");
    antar_metrics_count("antar_orders_total", "status", "created");
    antar_metrics_count("antar_orders_total", "status", "cancelled");
    antar_metrics_count("antar_odd_total", "why", "a\"b\\c\nd");
    antar_metrics_count("bad name{}", "la bel", "x");
    char *t = antar_metrics_render();
    cr_assert_not_null(t);
    cr_assert(strstr(t, "antar_orders_total{status=\"created\"} 2\n"), "%s", t);
    cr_assert(strstr(t, "antar_orders_total{status=\"cancelled\"} 1\n"), "%s", t);
    const char *first = strstr(t, "# TYPE antar_orders_total counter\n");
    cr_assert_not_null(first, "%s", t);
    cr_assert_null(strstr(first + 1, "# TYPE antar_orders_total counter"), "two TYPE lines");
    cr_assert(strstr(t, "antar_odd_total{why=\"a\\\"b\\\\c\\nd\"} 1\n"), "%s", t);
    /* A name with characters outside [a-zA-Z0-9_:] never reaches the text as given. */
    cr_assert_null(strstr(t, "bad name{}"), "%s", t);
    cr_assert_null(strstr(t, "la bel"), "%s", t);
    free(t);
}

Test(metrics, call_outcomes_and_histogram_sums)
{
    antar_metrics_call("driver-service", "ok", 0.25);
    antar_metrics_call("driver-service", "timeout", 3.0);
    char *t = antar_metrics_render();
    cr_assert_not_null(t);
    cr_assert(strstr(t, "antar_calls_total{target=\"driver-service\",outcome=\"ok\"} 1\n"), "%s",
              t);
    cr_assert(strstr(t, "antar_calls_total{target=\"driver-service\",outcome=\"timeout\"} 1\n"),
              "%s", t);
    cr_assert(strstr(t, "antar_call_duration_seconds_sum{target=\"driver-service\"} 3.250000\n"),
              "%s", t);
    cr_assert(strstr(t, "antar_call_duration_seconds_count{target=\"driver-service\"} 2\n"), "%s",
              t);
    free(t);
}

static int renders;
static char *extra_source(void)
{
    renders++;
    return strdup("# TYPE antar_extra gauge\nantar_extra 7\n");
}

static char *empty_source(void)
{
    return NULL;
}

Test(metrics, extra_sources_render_once_each)
{
    antar_metrics_add_source(extra_source);
    antar_metrics_add_source(extra_source); /* the same function again: no second copy */
    antar_metrics_add_source(empty_source);
    char *t = antar_metrics_render();
    cr_assert_not_null(t);
    cr_assert_eq(renders, 1);
    const char *at = strstr(t, "antar_extra 7\n");
    cr_assert_not_null(at, "%s", t);
    cr_assert_null(strstr(at + 1, "antar_extra 7\n"), "rendered twice");
    cr_assert(strstr(t, "antar_metrics_dropped_total 0\n"), "%s", t);
    free(t);
}
