/* test_events.c — lib/events.c: stream ids, and publishing against a real Redis
 * (ANTAR_TEST_REDIS_PORT, exported by `make test`; those tests are skipped without it). */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/events.h"
#include "antar/kv.h"
#include "antar/log.h"

Test(events_id, ok)
{
    cr_assert(antar_events_id_ok("1733212345678-0"));
    cr_assert(antar_events_id_ok("0-0"));
    cr_assert(antar_events_id_ok("18446744073709551615-18446744073709551615"));
    static const char *bad[] = {"",
                                "-",
                                "1-",
                                "-1",
                                "1",
                                "1-2-3",
                                "a-1",
                                "1-a",
                                " 1-1",
                                "1-1 ",
                                "123456789012345678901-0",
                                "1-0\n",
                                "+1-0",
                                "1.5-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!antar_events_id_ok(bad[i]), "accepted \"%s\"", bad[i]);
    cr_assert(!antar_events_id_ok(NULL));
}

Test(events_id, order)
{
    /* Numeric, not textual: 9 < 10 in both parts. */
    cr_assert_lt(antar_events_id_cmp("9-0", "10-0"), 0);
    cr_assert_lt(antar_events_id_cmp("10-9", "10-10"), 0);
    cr_assert_gt(antar_events_id_cmp("11-0", "10-99"), 0);
    cr_assert_eq(antar_events_id_cmp("10-1", "10-1"), 0);
    /* A malformed id sorts before every good one, so it is never "after" anything. */
    cr_assert_lt(antar_events_id_cmp("", "0-0"), 0);
    cr_assert_gt(antar_events_id_cmp("0-0", "garbage"), 0);
}

static antar_config_t cfg;
static bool ready;

static void setup(void)
{
    const char *port = getenv("ANTAR_TEST_REDIS_PORT");
    if (!port || !*port)
        return;
    setenv("ANTAR_REDIS_PORT", port, 1);
    if (getenv("ANTAR_TEST_REDIS_HOST"))
        setenv("ANTAR_REDIS_HOST", getenv("ANTAR_TEST_REDIS_HOST"), 1);
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    ready = antar_kv_init(&cfg) == 0 && antar_kv_ping() == ANTAR_OK;
}

static void teardown(void)
{
    antar_kv_thread_end();
}

static long long xlen(void)
{
    redisReply *r = antar_kv_command("XLEN %s", ANTAR_EVENTS_KEY);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* The newest entry's field value, copied into out ("" when missing). */
static void newest_field(const char *field, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = antar_kv_command("XREVRANGE %s + - COUNT 1", ANTAR_EVENTS_KEY);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *f = r->element[0]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (strcmp(f->element[i]->str, field) == 0)
                snprintf(out, n, "%s", f->element[i + 1]->str);
    }
    if (r)
        freeReplyObject(r);
}

Test(events_publish, one_event_one_entry, .init = setup, .fini = teardown)
{
    if (!ready)
        cr_skip_test("no test Redis (ANTAR_TEST_REDIS_PORT)");
    long long before = xlen();
    json_t *d = json_pack("{s:I, s:s}", "order_id", (json_int_t)7, "status", "searching");
    cr_assert_eq(antar_events_publish("order_status", "unit:test", d), ANTAR_OK);
    json_decref(d);
    cr_assert_eq(xlen(), before + 1);
    char v[256];
    newest_field("t", v, sizeof v);
    cr_assert_str_eq(v, "order_status");
    newest_field("a", v, sizeof v);
    cr_assert_str_eq(v, "unit:test");
    newest_field("d", v, sizeof v);
    cr_assert_str_eq(v, "{\"order_id\":7,\"status\":\"searching\"}");
}

Test(events_publish, many_in_one_pipeline, .init = setup, .fini = teardown)
{
    if (!ready)
        cr_skip_test("no test Redis (ANTAR_TEST_REDIS_PORT)");
    long long before = xlen();
    antar_event_t ev[3];
    for (int i = 0; i < 3; i++) {
        ev[i].type = "driver_position";
        snprintf(ev[i].aud, sizeof ev[i].aud, "order:%d", 100 + i);
        ev[i].data = json_pack("{s:i, s:f}", "order_id", 100 + i, "lat", -6.2);
    }
    cr_assert_eq(antar_events_publish_many(ev, 3), 3);
    for (int i = 0; i < 3; i++)
        json_decref(ev[i].data);
    cr_assert_eq(xlen(), before + 3);
    char v[64];
    newest_field("a", v, sizeof v);
    cr_assert_str_eq(v, "order:102", "the pipeline keeps the order: %s", v);
    cr_assert_eq(antar_events_publish_many(ev, 0), 0);
}
