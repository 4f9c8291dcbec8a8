/* test_httpc_breaker.c — the circuit breaker and the retry rules of lib/httpc.c, against the
 * test server of test_support.h (an ephemeral port) and a port nobody listens on. Each Test runs
 * in its own process (Criterion), so every test starts with all circuits closed. */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/config.h"
#include "antar/error.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "test_support.h"

#define FAILURES 3
#define COOLDOWN_MS 200

/* What /flaky answers: 503 while down, 200 otherwise; /flaky-slow first waits 150 ms. */
static atomic_int down;

static void route(int fd, const test_req_t *r)
{
    if (strcmp(r->path, "/flaky-slow") == 0)
        usleep(150 * 1000);
    if (strcmp(r->path, "/flaky") == 0 || strcmp(r->path, "/flaky-slow") == 0) {
        if (atomic_load(&down))
            test_srv_reply(fd, 503, "application/json",
                           "{\"status\":503,\"result\":null,\"error\":{\"code\":\"x\"}}");
        else
            test_srv_reply(fd, 200, "application/json",
                           "{\"status\":200,\"result\":{},\"error\":null}");
    } else if (strcmp(r->path, "/bug") == 0) {
        test_srv_reply(fd, 500, "application/json", "{\"status\":500}");
    } else if (strcmp(r->path, "/slow") == 0) {
        sleep(2);
        test_srv_reply(fd, 200, "application/json", "{}");
    } else {
        test_srv_reply(fd, 404, "application/json", "{\"status\":404}");
    }
}

static antar_config_t cfg;

static int test_token(char *buf, size_t len)
{
    snprintf(buf, len, "svc-token-123");
    return 0;
}

static void setup(void)
{
    setenv("ANTAR_CB_FAILURES", "3", 1);
    setenv("ANTAR_CB_COOLDOWN_MS", "200", 1);
    setenv("ANTAR_CB_COOLDOWN_MAX_MS", "800", 1);
    setenv("ANTAR_HTTPC_RETRIES", "2", 1);
    setenv("ANTAR_HTTPC_RETRY_BUDGET_MS", "700", 1);
    setenv("ANTAR_HTTPC_BACKOFF_MS", "10", 1);
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    test_srv_start(0, route);
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d", test_srv.port);
    snprintf(cfg.driver_url, sizeof(cfg.driver_url), "http://127.0.0.1:%d", test_srv.port);
    snprintf(cfg.user_url, sizeof(cfg.user_url), "http://127.0.0.1:%d", test_srv_closed_port());
    cfg.connect_timeout_ms = 300;
    cfg.timeout_ms = 300;
    cr_assert(antar_httpc_init(&cfg) == 0);
    antar_httpc_set_token_provider(test_token);
    atomic_store(&down, 0);
}

static void teardown(void)
{
    antar_httpc_thread_end();
}

TestSuite(breaker, .init = setup, .fini = teardown);

/* One call; its error, its HTTP status in *status (may be NULL). */
static antar_err_t call(antar_svc_t t, const char *method, const char *path,
                        const char *const *hdrs, long *status)
{
    antar_httpc_res_t res;
    antar_err_t e = antar_httpc_call(t, method, path, NULL, hdrs, &res);
    if (status)
        *status = res.status;
    antar_httpc_res_clean(&res);
    return e;
}

/* POST without a key: never retried, so one call is one attempt. */
static void trip_core(void)
{
    atomic_store(&down, 1);
    for (int i = 0; i < FAILURES; i++) {
        long st = 0;
        cr_assert(call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, &st) == ANTAR_OK);
        cr_assert(st == 503);
    }
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_OPEN);
}

static bool metrics_has(const char *line)
{
    char *m = antar_metrics_render();
    bool has = m && strstr(m, line);
    free(m);
    return has;
}

Test(breaker, closed_until_n_consecutive_failures)
{
    atomic_store(&down, 1);
    for (int i = 0; i < FAILURES - 1; i++)
        call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
    /* A success in between resets the count: failures must be consecutive. */
    atomic_store(&down, 0);
    call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    atomic_store(&down, 1);
    for (int i = 0; i < FAILURES - 1; i++)
        call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
    call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_OPEN);
    /* Circuits are per upstream. */
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_DRIVER) == ANTAR_CIRCUIT_CLOSED);
    long st = 0;
    cr_assert(call(ANTAR_SVC_DRIVER, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 503);
}

Test(breaker, a_500_or_4xx_does_not_count)
{
    for (int i = 0; i < FAILURES * 2; i++) {
        long st = 0;
        cr_assert(call(ANTAR_SVC_CORE, "GET", "/bug", NULL, &st) == ANTAR_OK && st == 500);
        cr_assert(call(ANTAR_SVC_CORE, "GET", "/missing", NULL, &st) == ANTAR_OK && st == 404);
    }
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
    cr_assert(test_srv_count("/bug") == FAILURES * 2, "a 500 is not retried");
}

Test(breaker, refused_connections_open_it)
{
    for (int i = 0; i < FAILURES; i++)
        cr_assert(call(ANTAR_SVC_USER, "POST", "/x", NULL, NULL) == ANTAR_E_UNAVAILABLE);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_USER) == ANTAR_CIRCUIT_OPEN);
}

/* A peer whose process is gone refuses at once: probing costs nothing, so the circuit looks
 * again after ANTAR_CB_REFUSED_COOLDOWN_MS (100 ms, jittered into [50, 100]) every time instead
 * of a growing cooldown that would fail callers for seconds after the peer is back. */
Test(breaker, refused_only_reopens_after_a_short_cooldown_that_does_not_grow)
{
    for (int i = 0; i < FAILURES; i++)
        cr_assert(call(ANTAR_SVC_USER, "POST", "/x", NULL, NULL) == ANTAR_E_UNAVAILABLE);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_USER) == ANTAR_CIRCUIT_OPEN);
    long w = antar_httpc_circuit_wait_ms(ANTAR_SVC_USER);
    cr_assert(w > 0 && w <= 100, "wait %ld", w);
    for (int k = 0; k < 4; k++) {
        usleep((int)(antar_httpc_circuit_wait_ms(ANTAR_SVC_USER) + 5) * 1000);
        cr_assert(call(ANTAR_SVC_USER, "POST", "/x", NULL, NULL) == ANTAR_E_UNAVAILABLE);
        cr_assert(antar_httpc_circuit_state(ANTAR_SVC_USER) == ANTAR_CIRCUIT_OPEN);
        w = antar_httpc_circuit_wait_ms(ANTAR_SVC_USER);
        cr_assert(w > 0 && w <= 100, "probe %d: wait %ld, it grew", k, w);
    }
}

/* One costly failure (here the peer's 503) in the current run of failures is enough for the
 * growing cooldown. */
Test(breaker, a_costly_failure_brings_the_long_cooldown_back)
{
    trip_core();
    long w = antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE);
    cr_assert(w > COOLDOWN_MS / 2 - 10 && w <= COOLDOWN_MS, "wait %ld", w);
}

Test(breaker, open_fails_fast_without_sending_and_names_the_upstream)
{
    trip_core();
    antar_trace_begin();
    int before = test_srv.nreq;
    long long t0 = antar_mono_ms();
    for (int i = 0; i < 20; i++)
        cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, NULL) == ANTAR_E_UNAVAILABLE);
    long long took = antar_mono_ms() - t0;
    cr_assert(test_srv.nreq == before, "nothing sent while open");
    cr_assert(took < 50, "20 fast failures took %lld ms", took);
    const char *up, *why;
    long retry_ms = 0;
    cr_assert(antar_err_noted_upstream(&up, &why, &retry_ms));
    cr_assert_str_eq(up, "core-service");
    cr_assert_str_eq(why, "circuit_open");
    cr_assert(retry_ms > 0 && retry_ms <= COOLDOWN_MS, "retry after %ld", retry_ms);
    cr_assert(antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE) > 0, "the outbox is told to wait");
    cr_assert(metrics_has("antar_circuit_state{upstream=\"core-service\"} 1\n"));
    cr_assert(metrics_has("antar_circuit_state{upstream=\"driver-service\"} 0\n"));
    cr_assert(
        metrics_has("antar_circuit_transitions_total{upstream=\"core-service\",to=\"open\"} 1\n"));
    cr_assert(!metrics_has("antar_circuit_state{upstream=\"user-service\"}"), "not itself");
    cr_assert(
        metrics_has("antar_calls_total{target=\"core-service\",outcome=\"circuit_open\"} 20\n"));
    /* A note belongs to its request: the next one does not inherit it. */
    antar_trace_begin();
    cr_assert(!antar_err_noted_upstream(&up, &why, &retry_ms));
    antar_trace_set_current(NULL);
}

Test(breaker, half_open_probe_success_closes)
{
    trip_core();
    usleep((COOLDOWN_MS + 20) * 1000);
    atomic_store(&down, 0);
    cr_assert(antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE) == 0, "a probe may go");
    long st = 0;
    cr_assert(call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, &st) == ANTAR_OK && st == 200);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
    cr_assert(metrics_has(
        "antar_circuit_transitions_total{upstream=\"core-service\",to=\"half_open\"} 1\n"));
    cr_assert(metrics_has(
        "antar_circuit_transitions_total{upstream=\"core-service\",to=\"closed\"} 1\n"));
    /* Closed again means the count starts over. */
    atomic_store(&down, 1);
    for (int i = 0; i < FAILURES - 1; i++)
        call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
}

Test(breaker, failed_probe_reopens_with_a_longer_cooldown)
{
    trip_core();
    usleep((COOLDOWN_MS + 20) * 1000);
    long st = 0;
    cr_assert(call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, &st) == ANTAR_OK && st == 503);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_OPEN);
    /* The second cooldown is 2 × 200 ms, jittered into [200, 400]. */
    long w = antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE);
    cr_assert(w > COOLDOWN_MS - 30 && w <= 2 * COOLDOWN_MS, "wait %ld", w);
    /* Growth is bounded by ANTAR_CB_COOLDOWN_MAX_MS (800): after more failed probes, ≤ 800. */
    for (int k = 0; k < 3; k++) {
        usleep((int)(antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE) + 20) * 1000);
        call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
        w = antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE);
        cr_assert(w > 0 && w <= 800, "wait %ld", w);
    }
    cr_assert(
        metrics_has("antar_circuit_transitions_total{upstream=\"core-service\",to=\"open\"} 5\n"));
}

typedef struct {
    antar_err_t err;
    long long took_ms;
} probe_res_t;

static void *racer(void *arg)
{
    probe_res_t *r = arg;
    long long t0 = antar_mono_ms();
    antar_httpc_res_t res;
    r->err = antar_httpc_call(ANTAR_SVC_CORE, "GET", "/flaky-slow", NULL, NULL, &res);
    r->took_ms = antar_mono_ms() - t0;
    antar_httpc_res_clean(&res);
    antar_httpc_thread_end();
    return NULL;
}

Test(breaker, exactly_one_probe_under_concurrency)
{
    trip_core();
    usleep((COOLDOWN_MS + 20) * 1000);
    atomic_store(&down, 0);
    enum { N = 8 };
    pthread_t th[N];
    probe_res_t r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, racer, &r[i]);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    int ok = 0, fast = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].err == ANTAR_OK)
            ok++;
        else if (r[i].err == ANTAR_E_UNAVAILABLE && r[i].took_ms < 100)
            fast++;
    }
    cr_assert(test_srv_count("/flaky-slow") == 1, "one probe, got %d",
              test_srv_count("/flaky-slow"));
    cr_assert(ok == 1 && fast == N - 1, "ok %d fast %d", ok, fast);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
}

Test(breaker, get_is_retried)
{
    atomic_store(&down, 1);
    long st = 0;
    cr_assert(call(ANTAR_SVC_DRIVER, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 503);
    cr_assert(test_srv_count("/flaky") == 3, "1 + 2 retries, got %d", test_srv_count("/flaky"));
}

Test(breaker, post_without_key_is_not_retried)
{
    atomic_store(&down, 1);
    long st = 0;
    cr_assert(call(ANTAR_SVC_DRIVER, "POST", "/flaky", NULL, &st) == ANTAR_OK && st == 503);
    cr_assert(test_srv_count("/flaky") == 1, "got %d", test_srv_count("/flaky"));
    /* Nor on a timeout: it may have been applied. */
    cr_assert(call(ANTAR_SVC_DRIVER, "POST", "/slow", NULL, NULL) == ANTAR_E_TIMEOUT);
    cr_assert(test_srv_count("/slow") == 1, "got %d", test_srv_count("/slow"));
}

Test(breaker, post_with_idempotency_key_is_retried)
{
    atomic_store(&down, 1);
    const char *hdrs[] = {"Idempotency-Key: k-1", NULL};
    long st = 0;
    cr_assert(call(ANTAR_SVC_DRIVER, "POST", "/flaky", hdrs, &st) == ANTAR_OK && st == 503);
    cr_assert(test_srv_count("/flaky") == 3, "got %d", test_srv_count("/flaky"));
}

Test(breaker, refused_post_is_retried)
{
    /* Nothing was sent, so even a POST without a key is safe to send again. */
    cr_assert(call(ANTAR_SVC_USER, "POST", "/x", NULL, NULL) == ANTAR_E_UNAVAILABLE);
    cr_assert(
        metrics_has("antar_calls_total{target=\"user-service\",outcome=\"unreachable\"} 3\n"));
}

Test(breaker, retries_stay_within_the_budget)
{
    /* timeout 300 ms, budget 700 ms: attempt 1 times out at ~300, attempt 2 at ~600, and a
     * third only gets what is left of the budget as its timeout. */
    long long t0 = antar_mono_ms();
    cr_assert(call(ANTAR_SVC_DRIVER, "GET", "/slow", NULL, NULL) == ANTAR_E_TIMEOUT);
    long long took = antar_mono_ms() - t0;
    cr_assert(took < 700 + 60, "took %lld ms", took);
    int n = test_srv_count("/slow");
    cr_assert(n >= 2 && n <= 3, "got %d", n);
}

Test(breaker, no_retry_when_the_first_timeout_eats_the_budget)
{
    /* A timeout as long as the budget leaves no room: one attempt only. */
    setenv("ANTAR_HTTPC_RETRY_BUDGET_MS", "300", 1);
    cr_assert(antar_httpc_init(&cfg) == 0);
    long long t0 = antar_mono_ms();
    cr_assert(call(ANTAR_SVC_DRIVER, "GET", "/slow", NULL, NULL) == ANTAR_E_TIMEOUT);
    cr_assert(antar_mono_ms() - t0 < 400);
    cr_assert(test_srv_count("/slow") == 1, "got %d", test_srv_count("/slow"));
}

Test(breaker, retries_stop_when_the_circuit_opens)
{
    /* 3 failures open the circuit; a GET that already failed twice does not get a third
     * attempt past an open circuit, and the next call fails fast. */
    atomic_store(&down, 1);
    call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, NULL);
    antar_err_t e = call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, NULL);
    cr_assert(e == ANTAR_E_UNAVAILABLE, "got %s", antar_err_code(e));
    cr_assert(test_srv_count("/flaky") == 3, "got %d", test_srv_count("/flaky"));
}

Test(breaker, a_refused_retry_does_not_hide_an_ambiguous_attempt)
{
    /* Two failures, then a keyed POST that times out (third failure: the circuit opens) and
     * whose retry is refused by the open circuit: the caller must learn "maybe applied". */
    atomic_store(&down, 1);
    call(ANTAR_SVC_DRIVER, "POST", "/flaky", NULL, NULL);
    call(ANTAR_SVC_DRIVER, "POST", "/flaky", NULL, NULL);
    const char *hdrs[] = {"Idempotency-Key: k-2", NULL};
    antar_err_t e = call(ANTAR_SVC_DRIVER, "POST", "/slow", hdrs, NULL);
    cr_assert(e == ANTAR_E_TIMEOUT, "got %s", antar_err_code(e));
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_DRIVER) == ANTAR_CIRCUIT_OPEN);
    cr_assert(test_srv_count("/slow") == 1);
    /* Open and nothing ambiguous before: "not applied". */
    cr_assert(call(ANTAR_SVC_DRIVER, "POST", "/slow", hdrs, NULL) == ANTAR_E_UNAVAILABLE);
}

Test(breaker, a_thread_can_turn_retries_off)
{
    antar_httpc_thread_retries(false);
    atomic_store(&down, 1);
    call(ANTAR_SVC_DRIVER, "GET", "/flaky", NULL, NULL);
    cr_assert(test_srv_count("/flaky") == 1, "got %d", test_srv_count("/flaky"));
    antar_httpc_thread_retries(true);
}

/* ---- several instances of a peer ---------------------------------------------------------- */

/* How many requests so far carried this Host header. */
static int host_count(const char *host)
{
    int n = 0;
    pthread_mutex_lock(&test_srv.mu);
    for (int i = 0; i < test_srv.nreq; i++) {
        char v[128];
        if (test_srv_header(&test_srv.reqs[i], "Host", v, sizeof v) && strcmp(v, host) == 0)
            n++;
    }
    pthread_mutex_unlock(&test_srv.mu);
    return n;
}

Test(breaker, calls_are_shared_round_robin_over_instances)
{
    /* Two names for the one test server: the Host header tells the instances apart. */
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d, http://localhost:%d/",
             test_srv.port, test_srv.port);
    for (int i = 0; i < 10; i++) {
        long st = 0;
        cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 200);
    }
    char a[64], b[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", test_srv.port);
    snprintf(b, sizeof b, "localhost:%d", test_srv.port);
    cr_assert(host_count(a) == 5 && host_count(b) == 5, "5 and 5, got %d and %d", host_count(a),
              host_count(b));
}

Test(breaker, a_refused_instance_is_skipped_at_once_then_ejected)
{
    int dead = test_srv_closed_port();
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead,
             test_srv.port);
    /* A POST without a key is never retried on the same instance, but a refusal sent nothing:
     * the sibling takes it, so no call fails. */
    for (int i = 0; i < 4 * FAILURES; i++) {
        long st = 0;
        cr_assert(call(ANTAR_SVC_CORE, "POST", "/flaky", NULL, &st) == ANTAR_OK && st == 200,
                  "call %d", i);
    }
    cr_assert(test_srv_count("/flaky") == 4 * FAILURES, "each call sent once");
    char line[128];
    snprintf(line, sizeof line,
             "antar_peer_state{upstream=\"core-service\",instance=\"http://127.0.0.1:%d\"} 1",
             dead);
    cr_assert(metrics_has(line), "the dead instance is ejected (open)");
    snprintf(line, sizeof line,
             "antar_peer_state{upstream=\"core-service\",instance=\"http://127.0.0.1:%d\"} 0",
             test_srv.port);
    cr_assert(metrics_has(line), "the live one is closed");
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_CLOSED);
    cr_assert(antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE) == 0);
}

Test(breaker, the_peer_is_open_only_when_every_instance_is)
{
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d,http://127.0.0.1:%d",
             test_srv_closed_port(), test_srv_closed_port());
    for (int i = 0; i < 2 * FAILURES; i++)
        cr_assert(call(ANTAR_SVC_CORE, "POST", "/x", NULL, NULL) == ANTAR_E_UNAVAILABLE);
    cr_assert(antar_httpc_circuit_state(ANTAR_SVC_CORE) == ANTAR_CIRCUIT_OPEN);
    cr_assert(antar_httpc_circuit_wait_ms(ANTAR_SVC_CORE) > 0);
    cr_assert(metrics_has("antar_circuit_state{upstream=\"core-service\"} 1"));
}

Test(breaker, a_timed_out_get_is_retried_on_the_other_instance)
{
    /* /slow answers after 2 s (timeout 300 ms) on both names; the retry goes to the other one. */
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d,http://localhost:%d",
             test_srv.port, test_srv.port);
    cr_assert(call(ANTAR_SVC_CORE, "GET", "/slow", NULL, NULL) == ANTAR_E_TIMEOUT);
    char a[64], b[64];
    snprintf(a, sizeof a, "127.0.0.1:%d", test_srv.port);
    snprintf(b, sizeof b, "localhost:%d", test_srv.port);
    cr_assert(host_count(a) >= 1 && host_count(b) >= 1, "both tried: %d, %d", host_count(a),
              host_count(b));
}

Test(breaker, malformed_instance_lists_stop_the_start)
{
    const char *bad[] = {"http://127.0.0.1:1,,http://127.0.0.1:2", "ftp://127.0.0.1:1", "",
                         "http://127.0.0.1:1,", "http://a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cfg.core_url, sizeof(cfg.core_url), "%s", bad[i]);
        cr_assert(antar_httpc_init(&cfg) == -1, "refused: '%s'", bad[i]);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(breaker, the_peers_file_wins_and_is_reloaded)
{
    char path[] = "/tmp/antar-peers-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char text[256];
    int dead = test_srv_closed_port();
    snprintf(text, sizeof text, "# core has moved\ncore http://127.0.0.1:%d\n", dead);
    write_file(path, text);
    snprintf(cfg.peers_file, sizeof cfg.peers_file, "%s", path);
    cr_assert(antar_httpc_reload_peers() == 0);
    cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, NULL) == ANTAR_E_UNAVAILABLE,
              "the file's instance, not cfg's URL, is called");
    long st = 0;
    cr_assert(call(ANTAR_SVC_DRIVER, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 200,
              "a peer the file does not name keeps cfg's URL");
    snprintf(text, sizeof text, "core http://127.0.0.1:%d\ncore http://localhost:%d\n",
             test_srv.port, test_srv.port);
    write_file(path, text);
    cr_assert(antar_httpc_reload_peers() == 0);
    cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 200);
    /* A malformed file changes nothing. */
    write_file(path, "core ftp://127.0.0.1:1\n");
    cr_assert(antar_httpc_reload_peers() == -1);
    write_file(path, "kitchen http://127.0.0.1:1\n");
    cr_assert(antar_httpc_reload_peers() == -1);
    cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 200);
    unlink(path);
    cr_assert(antar_httpc_reload_peers() == -1, "a missing file is an error");
    cr_assert(call(ANTAR_SVC_CORE, "GET", "/flaky", NULL, &st) == ANTAR_OK && st == 200);
}
