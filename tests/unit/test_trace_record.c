/* test_trace_record.c — lib/trace_record.c against a real Redis (ANTAR_TEST_REDIS_PORT, exported
 * by `make test`): spans and steps go in and come back in order, and the record keeps to its
 * bound whatever is written. The keys are deleted at the end, so the stack's record starts empty
 * for the integration tests that follow. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/trace.h"

static antar_config_t cfg;
static bool ready;

static void del_keys(void)
{
    redisReply *r =
        antar_kv_command("DEL %s %s", ANTAR_TRACE_RECORD_KEY, ANTAR_TRACE_RECORD_AGE_KEY);
    if (r)
        freeReplyObject(r);
}

static void setup(void)
{
    const char *port = getenv("ANTAR_TEST_REDIS_PORT");
    if (!port || !*port)
        return;
    setenv("ANTAR_REDIS_PORT", port, 1);
    if (getenv("ANTAR_TEST_REDIS_HOST"))
        setenv("ANTAR_REDIS_HOST", getenv("ANTAR_TEST_REDIS_HOST"), 1);
    setenv("ANTAR_TRACE_RECORD_MAX", "100", 1);
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    ready = antar_kv_init(&cfg) == 0;
    if (ready) {
        del_keys();
        antar_trace_record_start("user");
    }
}

static void teardown(void)
{
    if (!ready)
        return;
    antar_trace_record_stop();
    del_keys();
    antar_kv_thread_end();
}

#define NEED_KV()                                                                                  \
    do {                                                                                           \
        if (!ready)                                                                                \
            cr_skip_test("no test Redis (ANTAR_TEST_REDIS_PORT unset; run via make test)");        \
    } while (0)

TestSuite(trace_record, .init = setup, .fini = teardown);

static void span(const char *trace_id, const char *span_id, long long start_ms, const char *path)
{
    antar_trace_emit(&(antar_span_t){.kind = "call",
                                     .from = "user-service",
                                     .to = "core-service",
                                     .method = "POST",
                                     .path = path,
                                     .status = 200,
                                     .outcome = "ok",
                                     .start_ms = start_ms,
                                     .duration_us = 1500,
                                     .trace_id = trace_id,
                                     .span_id = span_id,
                                     .parent_span_id = "00f067aa0ba902b7"});
}

Test(trace_record, steps_and_spans_come_back_in_order)
{
    NEED_KV();
    const char *t1 = "4bf92f3577b34da6a3ce929d0e0e4736", *t2 = "4bf92f3577b34da6a3ce929d0e0e4737";
    antar_trace_t t;
    antar_trace_from_header(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    antar_trace_set_current(&t);
    cr_assert_eq(antar_trace_record_step(77, "searching"), ANTAR_OK);
    /* Appended out of time order (processes end their spans at different moments). */
    span(t1, "1111111111111111", 2000, "/internal/dispatch");
    span(t1, "2222222222222222", 1000, "http://127.0.0.1:9403/internal/fares/quote");
    antar_trace_from_header(&t, "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01");
    antar_trace_set_current(&t);
    cr_assert_eq(antar_trace_record_step(77, "accepted"), ANTAR_OK);
    span(t2, "3333333333333333", 3000, "/internal/orders/77/assign");
    antar_trace_set_current(NULL);
    antar_trace_record_flush(5000);

    json_t *steps = NULL, *spans = NULL;
    cr_assert_eq(antar_trace_record_read(77, NULL, &steps, &spans), ANTAR_OK);
    cr_assert_eq(json_array_size(steps), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(steps, 0), "status")),
                     "searching");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(steps, 1), "trace_id")), t2);
    cr_assert_eq(json_array_size(spans), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(spans, 0), "path")),
                     "/internal/fares/quote", "start order, and no address in the path");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(spans, 2), "trace_id")), t2);
    cr_assert_eq(json_real_value(json_object_get(json_array_get(spans, 0), "duration_ms")), 1.5);
    json_decref(steps);
    json_decref(spans);

    cr_assert_eq(antar_trace_record_read(0, t1, &steps, &spans), ANTAR_OK);
    cr_assert_eq(json_array_size(steps), 0);
    cr_assert_eq(json_array_size(spans), 2);
    json_decref(steps);
    json_decref(spans);
    /* Nothing recorded: empty, not an error. */
    cr_assert_eq(antar_trace_record_read(0, "0000000000000000000000000000000a", &steps, &spans),
                 ANTAR_OK);
    cr_assert_eq(json_array_size(spans), 0);
    json_decref(steps);
    json_decref(spans);
    cr_assert_eq(antar_trace_record_read(999999, NULL, &steps, &spans), ANTAR_OK);
    cr_assert_eq(json_array_size(steps), 0);
    json_decref(steps);
    json_decref(spans);
}

Test(trace_record, keeps_to_its_bound)
{
    NEED_KV();
    char tid[33];
    for (int i = 0; i < 250; i++) {
        snprintf(tid, sizeof tid, "%032x", i + 1);
        span(tid, "1111111111111111", 1000 + i, "/internal/dispatch");
    }
    antar_trace_record_flush(5000);
    redisReply *h = antar_kv_command("HLEN %s", ANTAR_TRACE_RECORD_KEY);
    redisReply *z = antar_kv_command("ZCARD %s", ANTAR_TRACE_RECORD_AGE_KEY);
    cr_assert(h && z);
    cr_assert_leq(h->integer, 100, "HLEN %lld", h->integer);
    cr_assert_eq(h->integer, z->integer);
    freeReplyObject(h);
    freeReplyObject(z);
    /* The newest stayed, the oldest went. */
    json_t *steps = NULL, *spans = NULL;
    cr_assert_eq(antar_trace_record_read(0, tid, &steps, &spans), ANTAR_OK);
    cr_assert_eq(json_array_size(spans), 1);
    json_decref(steps);
    json_decref(spans);
    cr_assert_eq(antar_trace_record_read(0, "00000000000000000000000000000001", &steps, &spans),
                 ANTAR_OK);
    cr_assert_eq(json_array_size(spans), 0);
    json_decref(steps);
    json_decref(spans);
    /* One trace cannot grow without end: past 64 KiB its spans are dropped. */
    for (int i = 0; i < 400; i++)
        span("0000000000000000000000000000beef", "1111111111111111", 5000 + i,
             "/internal/a-long-enough-path-to-fill-the-field-quickly");
    antar_trace_record_flush(5000);
    redisReply *n = antar_kv_command("HSTRLEN %s %s", ANTAR_TRACE_RECORD_KEY,
                                     "0000000000000000000000000000beef");
    cr_assert(n && n->integer <= 65536 + 1024, "HSTRLEN %lld", n ? n->integer : -1);
    freeReplyObject(n);
}
