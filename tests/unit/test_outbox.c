/* test_outbox.c — lib/outbox.c: delivery to a receiver started inside the test (127.0.0.1,
 * ephemeral port), against the real test database (ANTAR_TEST_DB_*, exported by `make test`). */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/db.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/outbox.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "test_support.h"

/* ---- what the test receiver answers ------------------------------------------------------ */

/* /t/flaky/… fails twice then succeeds, /t/dead/… is refused for good (422), /t/conflict/…
 * answers 409 (counts as delivered); anything else is taken (200). */
static void route(int fd, const test_req_t *r)
{
    int seen = test_srv_count(r->path); /* this one included */
    if (strncmp(r->path, "/t/flaky/", 9) == 0 && seen <= 2)
        test_srv_reply(fd, 503, "application/json", "{\"status\":503}");
    else if (strncmp(r->path, "/t/dead/", 8) == 0)
        test_srv_reply(fd, 422, "application/json", "{\"status\":422}");
    else if (strncmp(r->path, "/t/conflict/", 12) == 0)
        test_srv_reply(fd, 409, "application/json", "{\"status\":409}");
    else
        test_srv_reply(fd, 200, "application/json", "{\"status\":200,\"result\":{}}");
}

/* ---- the tests --------------------------------------------------------------------------- */

static antar_config_t cfg;
static bool ready;
static char run_id[17]; /* makes this run's paths unique in a shared table */

static int test_token(char *buf, size_t len)
{
    snprintf(buf, len, "svc-token");
    return 0;
}

static void setup(void)
{
    if (!test_db_env())
        return;
    setenv("ANTAR_CONNECT_TIMEOUT_MS", "300", 1);
    setenv("ANTAR_TIMEOUT_MS", "1000", 1);
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    antar_random_hex(run_id, 8);
    if (antar_db_init(&cfg) != 0 || antar_httpc_init(&cfg) != 0)
        return;
    antar_httpc_set_token_provider(test_token);
    if (antar_db_migrate(NULL) != ANTAR_OK)
        return;
    /* Leftovers of earlier runs must not be delivered to this run's receivers. */
    antar_db_exec("UPDATE outbox SET status = 'dead', last_error = 'test reset' WHERE status ="
                  " 'pending'",
                  ANTAR_DB_NOARGS, NULL, NULL);
    ready = true;
}

static void teardown(void)
{
    if (!ready)
        return;
    antar_outbox_stop();
    antar_httpc_thread_end();
    antar_db_cleanup();
}

#define NEED_DB()                                                                                  \
    do {                                                                                           \
        if (!ready)                                                                                \
            cr_skip_test("no test database (ANTAR_TEST_DB_* unset; run via make test)");           \
    } while (0)

TestSuite(outbox, .init = setup, .fini = teardown);

static void point_core_at(int port)
{
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d", port);
}

static bool wait_for(const char *path, int n, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        if (test_srv_count(path) >= n)
            return true;
        usleep(50000);
    }
    return false;
}

static json_t *row_for(const char *path)
{
    json_t *row = NULL;
    cr_assert(antar_db_query_one("SELECT event_id, status, attempts, traceparent, last_error FROM"
                                 " outbox WHERE path = ?",
                                 ANTAR_DB_ARGS(ANTAR_DB_S(path)), &row) == ANTAR_OK,
              "row for %s", path);
    return row;
}

/* Each message its own key (the path), unless the test is about order. */
static void add_committed(const char *path, json_t *body)
{
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, path, "POST", path, body) == ANTAR_OK);
    cr_assert(antar_db_commit() == ANTAR_OK);
}

Test(outbox, committed_message_delivered_once_with_key_and_trace)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    cr_assert(antar_outbox_start() == 0);
    char path[96];
    snprintf(path, sizeof(path), "/t/ok/%s/1", run_id);
    antar_trace_t t;
    antar_trace_new(&t);
    antar_trace_set_current(&t);
    json_t *body = json_pack("{s:i,s:s}", "order_id", 42, "note", "'; DROP TABLE outbox; --");
    add_committed(path, body);
    antar_trace_set_current(NULL);
    antar_outbox_kick();
    cr_assert(wait_for(path, 1, 5000), "delivered");
    usleep(1500000); /* a second round must not send it again */
    cr_assert(test_srv_count(path) == 1, "delivered exactly once, got %d", test_srv_count(path));

    test_req_t r = test_srv_find(path);
    json_t *row = row_for(path);
    char v[128];
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "delivered");
    cr_assert_str_eq(test_srv_header(&r, "Idempotency-Key", v, sizeof(v)),
                     json_string_value(json_object_get(row, "event_id")));
    cr_assert(strlen(v) == 32);
    cr_assert_str_eq(test_srv_header(&r, "Authorization", v, sizeof(v)), "Bearer svc-token");
    test_srv_header(&r, "traceparent", v, sizeof(v));
    cr_assert(strncmp(v + 3, t.trace_id, 32) == 0, "the delivery continues the trace: %s", v);
    json_t *got = json_loads(r.body, 0, NULL);
    cr_assert(json_equal(got, body), "body as queued: %s", r.body);
    json_decref(got);
    json_decref(body);
    json_decref(row);
}

Test(outbox, rolled_back_message_never_delivered)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    cr_assert(antar_outbox_start() == 0);
    char path[96], path2[96];
    snprintf(path, sizeof(path), "/t/ok/%s/rolled-back", run_id);
    snprintf(path2, sizeof(path2), "/t/ok/%s/after", run_id);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, "k", "POST", path, NULL) == ANTAR_OK);
    antar_db_rollback();
    add_committed(path2, NULL);
    antar_outbox_kick();
    cr_assert(wait_for(path2, 1, 5000), "the committed one arrives");
    usleep(300000);
    cr_assert(test_srv_count(path) == 0, "the rolled-back one never does");
    json_t *row = NULL;
    cr_assert(antar_db_query_one("SELECT id FROM outbox WHERE path = ?",
                                 ANTAR_DB_ARGS(ANTAR_DB_S(path)), &row) == ANTAR_E_NOT_FOUND);
}

Test(outbox, add_outside_transaction_is_refused)
{
    NEED_DB();
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, "k", "POST", "/t/x", NULL) == ANTAR_E_INTERNAL);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, "k", "BREW", "/t/x", NULL) == ANTAR_E_INTERNAL);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, "k", "POST", "no-slash", NULL) == ANTAR_E_INTERNAL);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, NULL, "POST", "/t/x", NULL) == ANTAR_E_INTERNAL);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, "", "POST", "/t/x", NULL) == ANTAR_E_INTERNAL);
    char long_key[66];
    memset(long_key, 'k', 65);
    long_key[65] = 0;
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, long_key, "POST", "/t/x", NULL) == ANTAR_E_INTERNAL);
    antar_db_rollback();
}

Test(outbox, receiver_down_then_up_is_delivered_after_retry)
{
    NEED_DB();
    int port = test_srv_closed_port();
    point_core_at(port);
    cr_assert(antar_outbox_start() == 0);
    char path[96];
    snprintf(path, sizeof(path), "/t/ok/%s/later", run_id);
    add_committed(path, NULL);
    antar_outbox_kick();
    usleep(1200000); /* a few failed attempts (0.5 s, 1 s backoff) */
    json_t *row = row_for(path);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "pending");
    cr_assert(json_integer_value(json_object_get(row, "attempts")) >= 1);
    json_decref(row);
    test_srv_start(port, route);
    cr_assert(wait_for(path, 1, 6000), "delivered once the receiver is up");
    usleep(200000);
    row = row_for(path);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "delivered");
    cr_assert(json_integer_value(json_object_get(row, "attempts")) >= 2);
    json_decref(row);
}

Test(outbox, open_circuit_holds_messages_without_counting_attempts)
{
    NEED_DB();
    setenv("ANTAR_CB_COOLDOWN_MS", "1500", 1);
    /* Refusals alone keep a circuit open only briefly (httpc.c); long enough here to look. */
    setenv("ANTAR_CB_REFUSED_COOLDOWN_MS", "1500", 1);
    cr_assert(antar_httpc_init(&cfg) == 0);
    int port = test_srv_closed_port();
    point_core_at(port);
    /* Refused calls (each retried twice) open core-service's circuit. */
    for (int i = 0; i < 3; i++)
        antar_httpc_call(ANTAR_SVC_CORE, "POST", "/t/probe", NULL, NULL, NULL);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_OPEN);
    char path[96];
    snprintf(path, sizeof(path), "/t/ok/%s/held", run_id);
    add_committed(path, NULL);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    usleep(400000);
    json_t *row = row_for(path);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "pending");
    cr_assert(json_integer_value(json_object_get(row, "attempts")) == 0,
              "an open circuit is not an attempt");
    cr_assert_str_eq(json_string_value(json_object_get(row, "last_error")), "circuit_open");
    json_decref(row);
    /* The receiver comes back: after the cooldown the delivery is the probe, and closes it. */
    test_srv_start(port, route);
    cr_assert(wait_for(path, 1, 5000), "delivered after the cooldown");
    usleep(200000);
    row = row_for(path);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "delivered");
    cr_assert(json_integer_value(json_object_get(row, "attempts")) == 1);
    json_decref(row);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
}

/* Where path a was seen last and path b first in the receiver's log, and how often a. */
static void seen_order(const char *a, const char *b, int *last_a, int *first_b, int *na)
{
    pthread_mutex_lock(&test_srv.mu);
    *first_b = -1, *last_a = -1, *na = 0;
    for (int i = 0; i < test_srv.nreq; i++) {
        if (strcmp(test_srv.reqs[i].path, a) == 0) {
            *last_a = i;
            (*na)++;
        }
        if (strcmp(test_srv.reqs[i].path, b) == 0 && *first_b < 0)
            *first_b = i;
    }
    pthread_mutex_unlock(&test_srv.mu);
}

Test(outbox, order_per_key_is_kept_across_retries)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    char a[96], b[96], key[48];
    snprintf(a, sizeof(a), "/t/flaky/%s/a", run_id); /* 503 twice, then 200 */
    snprintf(b, sizeof(b), "/t/ok/%s/b", run_id);
    snprintf(key, sizeof(key), "order:%s", run_id);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, key, "POST", a, NULL) == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, key, "POST", b, NULL) == ANTAR_OK);
    cr_assert(antar_db_commit() == ANTAR_OK);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    cr_assert(wait_for(b, 1, 8000), "b delivered in the end");
    int first_b, last_a, na;
    seen_order(a, b, &last_a, &first_b, &na);
    cr_assert(na == 3, "a tried 3 times, got %d", na);
    cr_assert(last_a < first_b, "b only after a succeeded (a last at %d, b first at %d)", last_a,
              first_b);
}

Test(outbox, a_retrying_message_holds_back_only_its_own_key)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    char a[96], b[96], ka[48], kb[48];
    snprintf(a, sizeof(a), "/t/flaky/%s/a", run_id); /* 503 twice, then 200 */
    snprintf(b, sizeof(b), "/t/ok/%s/b", run_id);
    snprintf(ka, sizeof(ka), "order:%s-a", run_id);
    snprintf(kb, sizeof(kb), "order:%s-b", run_id);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, ka, "POST", a, NULL) == ANTAR_OK);
    cr_assert(antar_outbox_add(ANTAR_SVC_CORE, kb, "POST", b, NULL) == ANTAR_OK);
    cr_assert(antar_db_commit() == ANTAR_OK);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    cr_assert(wait_for(b, 1, 3000), "b delivered");
    cr_assert(wait_for(a, 3, 8000), "a delivered in the end");
    int first_b, last_a, na;
    seen_order(a, b, &last_a, &first_b, &na);
    cr_assert(first_b < last_a, "b did not wait for a's retries (a last at %d, b first at %d)",
              last_a, first_b);
}

Test(outbox, many_messages_waiting_do_not_hide_a_due_one)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    /* 300 messages of other orders waiting a minute for their retry, ahead of a due one. */
    cr_assert(antar_db_begin() == ANTAR_OK);
    for (int i = 0; i < 300; i++) {
        char p[96], k[48];
        snprintf(p, sizeof(p), "/t/ok/%s/waiting/%d", run_id, i);
        snprintf(k, sizeof(k), "order:%s-w%d", run_id, i);
        cr_assert(antar_outbox_add(ANTAR_SVC_CORE, k, "POST", p, NULL) == ANTAR_OK);
    }
    cr_assert(
        antar_db_exec("UPDATE outbox SET next_at = UTC_TIMESTAMP(3) + INTERVAL 60 SECOND"
                      " WHERE status = 'pending' AND path LIKE CONCAT('/t/ok/', ?, '/waiting/%')",
                      ANTAR_DB_ARGS(ANTAR_DB_S(run_id)), NULL, NULL) == ANTAR_OK);
    cr_assert(antar_db_commit() == ANTAR_OK);
    char due[96];
    snprintf(due, sizeof(due), "/t/ok/%s/due", run_id);
    add_committed(due, NULL);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    cr_assert(wait_for(due, 1, 3000), "the due message is found behind the waiting ones");
    char p0[96];
    snprintf(p0, sizeof(p0), "/t/ok/%s/waiting/0", run_id);
    cr_assert(test_srv_count(p0) == 0, "a waiting message is not sent before its time");
    /* Leave nothing pending for the next tests. */
    antar_db_exec("UPDATE outbox SET status = 'dead', last_error = 'test reset' WHERE status ="
                  " 'pending'",
                  ANTAR_DB_NOARGS, NULL, NULL);
}

Test(outbox, permanent_4xx_is_dead_and_409_is_delivered)
{
    NEED_DB();
    test_srv_start(0, route);
    point_core_at(test_srv.port);
    char dead[96], conflict[96];
    snprintf(dead, sizeof(dead), "/t/dead/%s", run_id);
    snprintf(conflict, sizeof(conflict), "/t/conflict/%s", run_id);
    add_committed(dead, NULL);
    add_committed(conflict, NULL);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    cr_assert(wait_for(conflict, 1, 5000));
    usleep(1500000);
    cr_assert(test_srv_count(dead) == 1, "a dead message is not retried");
    json_t *row = row_for(dead);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "dead");
    cr_assert_str_eq(json_string_value(json_object_get(row, "last_error")), "http 422");
    json_decref(row);
    row = row_for(conflict);
    cr_assert_str_eq(json_string_value(json_object_get(row, "status")), "delivered");
    json_decref(row);
}

Test(outbox, inbox_claim_twice_is_duplicate)
{
    NEED_DB();
    char id[33];
    antar_random_hex(id, 16);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_inbox_claim(id) == ANTAR_OK);
    antar_db_rollback();
    /* The rolled-back claim left nothing behind. */
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_inbox_claim(id) == ANTAR_OK);
    cr_assert(antar_db_commit() == ANTAR_OK);
    cr_assert(antar_db_begin() == ANTAR_OK);
    cr_assert(antar_inbox_claim(id) == ANTAR_E_DUPLICATE);
    antar_db_rollback();
    cr_assert(antar_inbox_claim("") == ANTAR_E_BAD_REQUEST);
}

Test(outbox, start_stop_kick_are_safe)
{
    NEED_DB();
    antar_outbox_kick(); /* before start: a no-op */
    antar_outbox_stop();
    cr_assert(antar_outbox_start() == 0);
    cr_assert(antar_outbox_start() == 0);
    antar_outbox_kick();
    antar_outbox_stop();
    antar_outbox_stop();
}
