/* test_httpc.c — lib/httpc.c against a tiny HTTP server started inside the test on 127.0.0.1
 * (an ephemeral port, so parallel runs do not collide). Needs no database. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/util.h"
#include "antar/trace.h"
#include "test_support.h"

/* ---- what the test server answers -------------------------------------------------------- */

static void route(int fd, const test_req_t *r)
{
    if (strcmp(r->path, "/ok") == 0) {
        test_srv_reply(fd, 200, "application/json",
                       "{\"status\":200,\"result\":{\"id\":17,\"name\":\"Sari\"},\"error\":null}");
    } else if (strcmp(r->path, "/echo") == 0) {
        test_srv_reply(fd, 201, "application/json", r->body[0] ? r->body : "null");
    } else if (strcmp(r->path, "/notjson") == 0) {
        test_srv_reply(fd, 200, "text/plain", "hello");
    } else if (strcmp(r->path, "/fail") == 0) {
        test_srv_reply(fd, 503, "application/json",
                       "{\"status\":503,\"result\":null,\"error\":{\"code\":\"x\"}}");
    } else if (strcmp(r->path, "/slow") == 0) {
        sleep(2);
        test_srv_reply(fd, 200, "application/json", "{}");
    } else if (strcmp(r->path, "/big") == 0) {
        size_t n = 2 * 1024 * 1024;
        char *big = malloc(n + 1);
        memset(big, 'a', n);
        big[0] = '"';
        big[n - 1] = '"';
        big[n] = '\0';
        test_srv_reply(fd, 200, "application/json", big);
        free(big);
    } else if (strcmp(r->path, "/oauth/token") == 0) {
        test_srv_reply(fd, 200, "application/json",
                       "{\"access_token\":\"abc\",\"expires_in\":600}");
    } else {
        test_srv_reply(fd, 404, "application/json", "{\"status\":404}");
    }
}

/* ---- the tests --------------------------------------------------------------------------- */

static antar_config_t cfg;
static int token_calls;

static int test_token(char *buf, size_t len)
{
    token_calls++;
    snprintf(buf, len, "svc-token-123");
    return 0;
}

static int no_token(char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return -1;
}

static void setup(void)
{
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    test_srv_start(0, route);
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d", test_srv.port);
    snprintf(cfg.driver_url, sizeof(cfg.driver_url), "http://127.0.0.1:%d/", test_srv.port);
    snprintf(cfg.user_url, sizeof(cfg.user_url), "http://127.0.0.1:%d", test_srv_closed_port());
    cfg.connect_timeout_ms = 300;
    cfg.timeout_ms = 500;
    cr_assert(antar_httpc_init(&cfg) == 0);
    antar_httpc_set_token_provider(test_token);
}

static void teardown(void)
{
    antar_httpc_thread_end();
}

TestSuite(httpc, .init = setup, .fini = teardown);

Test(httpc, target_names)
{
    cr_assert_str_eq(antar_httpc_target_name(ANTAR_SVC_USER), "user-service");
    cr_assert_str_eq(antar_httpc_target_name(ANTAR_SVC_DRIVER), "driver-service");
    cr_assert_str_eq(antar_httpc_target_name(ANTAR_SVC_CORE), "core-service");
}

Test(httpc, json_call_headers_and_result)
{
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK);
    cr_assert(res.status == 200, "status %ld", res.status);
    json_t *result = antar_httpc_result(&res);
    cr_assert(json_is_object(result));
    cr_assert(json_integer_value(json_object_get(result, "id")) == 17);
    antar_httpc_res_clean(&res);

    test_req_t r = test_srv_last();
    char v[256];
    cr_assert_str_eq(r.method, "GET");
    cr_assert_str_eq(r.path, "/ok");
    cr_assert_str_eq(test_srv_header(&r, "Authorization", v, sizeof(v)), "Bearer svc-token-123");
    cr_assert_str_eq(test_srv_header(&r, "Accept", v, sizeof(v)), "application/json");
    cr_assert_str_eq(test_srv_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    cr_assert(test_srv_header(&r, "traceparent", v, sizeof(v)) != NULL, "traceparent sent");
    cr_assert(strlen(v) == 55 && strncmp(v, "00-", 3) == 0, "traceparent %s", v);
}

Test(httpc, post_body_extra_headers_and_trailing_slash_base)
{
    json_t *body = json_pack("{s:i,s:s}", "order_id", 5, "note", "caf\xC3\xA9");
    const char *hdrs[] = {"Idempotency-Key: abc123", NULL};
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "POST", "/echo", body, hdrs, &res) == ANTAR_OK);
    cr_assert(res.status == 201);
    cr_assert(json_equal(res.body, body), "body echoed back");
    antar_httpc_res_clean(&res);
    json_decref(body);
    test_req_t r = test_srv_last();
    char v[256];
    cr_assert_str_eq(r.path, "/echo", "no double slash from the base URL");
    cr_assert_str_eq(test_srv_header(&r, "Idempotency-Key", v, sizeof(v)), "abc123");

    /* PUT and DELETE without a body. */
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "PUT", "/echo", NULL, NULL, &res) == ANTAR_OK);
    cr_assert_str_eq(test_srv_last().method, "PUT");
    antar_httpc_res_clean(&res);
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "DELETE", "/ok", NULL, NULL, &res) == ANTAR_OK);
    cr_assert_str_eq(test_srv_last().method, "DELETE");
    antar_httpc_res_clean(&res);
}

Test(httpc, traceparent_is_child_of_current_trace)
{
    antar_trace_t t;
    antar_trace_new(&t);
    antar_trace_set_current(&t);
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK);
    antar_httpc_res_clean(&res);
    test_req_t r = test_srv_last();
    char v[128], want[64];
    test_srv_header(&r, "traceparent", v, sizeof(v));
    snprintf(want, sizeof(want), "00-%s-", t.trace_id);
    cr_assert(strncmp(v, want, strlen(want)) == 0, "same trace id: %s vs %s", v, t.trace_id);
    cr_assert(strncmp(v + 36, t.span_id, 16) != 0, "a new child span id");
    antar_trace_set_current(NULL);
}

Test(httpc, status_codes_and_non_json)
{
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/fail", NULL, NULL, &res) == ANTAR_OK,
              "an HTTP answer is OK at this layer");
    cr_assert(res.status == 503);
    cr_assert(antar_httpc_result(&res) == NULL);
    antar_httpc_res_clean(&res);
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/missing", NULL, NULL, &res) == ANTAR_OK);
    cr_assert(res.status == 404);
    antar_httpc_res_clean(&res);
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/notjson", NULL, NULL, &res) == ANTAR_OK);
    cr_assert(res.status == 200 && res.body == NULL);
    antar_httpc_res_clean(&res);
}

Test(httpc, keep_alive_reuses_one_connection)
{
    antar_httpc_res_t res;
    int before = test_srv.nconn;
    for (int i = 0; i < 5; i++) {
        cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK);
        antar_httpc_res_clean(&res);
    }
    cr_assert(test_srv.nconn - before == 1, "one connection for 5 calls, got %d",
              test_srv.nconn - before);
}

Test(httpc, timeout)
{
    antar_httpc_res_t res;
    antar_err_t e = antar_httpc_call(ANTAR_SVC_CORE, "GET", "/slow", NULL, NULL, &res);
    cr_assert(e == ANTAR_E_TIMEOUT, "got %s", antar_err_code(e));
    cr_assert(res.status == 0 && res.body == NULL);
}

Test(httpc, closed_port_is_unavailable)
{
    antar_httpc_res_t res;
    antar_err_t e = antar_httpc_call(ANTAR_SVC_USER, "GET", "/ok", NULL, NULL, &res);
    cr_assert(e == ANTAR_E_UNAVAILABLE, "got %s", antar_err_code(e));
}

Test(httpc, oversized_response_is_upstream_error)
{
    antar_httpc_res_t res;
    antar_err_t e = antar_httpc_call(ANTAR_SVC_CORE, "GET", "/big", NULL, NULL, &res);
    cr_assert(e == ANTAR_E_UPSTREAM, "got %s", antar_err_code(e));
}

Test(httpc, header_injection_is_refused)
{
    const char *hdrs[] = {"Idempotency-Key: x\r\nX-Evil: 1", NULL};
    int before = test_srv.nreq;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, hdrs, &res) ==
              ANTAR_E_BAD_REQUEST);
    cr_assert(test_srv.nreq == before, "nothing was sent");
}

Test(httpc, no_token_means_no_call)
{
    antar_httpc_set_token_provider(no_token);
    int before = test_srv.nreq;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) ==
              ANTAR_E_UNAUTHORIZED);
    antar_httpc_set_token_provider(NULL);
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) ==
              ANTAR_E_UNAUTHORIZED);
    cr_assert(test_srv.nreq == before, "nothing was sent");
}

Test(httpc, raw_request_form_body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/oauth/token", test_srv.port);
    int before = token_calls;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_request("POST", url, "application/x-www-form-urlencoded",
                                  "grant_type=client_credentials&scope=internal",
                                  "Basic dXNlcjpwdw==", &res) == ANTAR_OK);
    cr_assert(res.status == 200);
    cr_assert_str_eq(json_string_value(json_object_get(res.body, "access_token")), "abc");
    antar_httpc_res_clean(&res);
    cr_assert(token_calls == before, "the raw request does not fetch a service token");
    test_req_t r = test_srv_last();
    char v[128];
    cr_assert_str_eq(r.body, "grant_type=client_credentials&scope=internal");
    cr_assert_str_eq(test_srv_header(&r, "Content-Type", v, sizeof(v)),
                     "application/x-www-form-urlencoded");
    cr_assert_str_eq(test_srv_header(&r, "Authorization", v, sizeof(v)), "Basic dXNlcjpwdw==");
}

static void *thread_call(void *arg)
{
    int *ok = arg;
    antar_httpc_res_t res;
    for (int i = 0; i < 5; i++) {
        if (antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK &&
            res.status == 200)
            (*ok)++;
        antar_httpc_res_clean(&res);
    }
    antar_httpc_thread_end();
    return NULL;
}

Test(httpc, threads_have_their_own_handles)
{
    int a = 0, b = 0;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, thread_call, &a);
    pthread_create(&t2, NULL, thread_call, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert(a == 5 && b == 5, "a=%d b=%d", a, b);
}

/* The rule that keeps blocking calls acyclic (util.h): a thread of an internal listener never
 * waits on a peer. Refused calls never reach the network nor the token provider. */
Test(httpc, internal_listener_threads_are_refused_peer_calls)
{
    int before = test_srv.nreq, tokens = token_calls;
    antar_httpc_res_t res;

    antar_thread_set_internal(true);
    cr_assert(antar_thread_is_internal());
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_E_INTERNAL);
    cr_assert(res.status == 0 && res.body == NULL);
    cr_assert(antar_httpc_call(ANTAR_SVC_USER, "GET", "/ok", NULL, NULL, &res) == ANTAR_E_INTERNAL);
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "GET", "/ok", NULL, NULL, &res) ==
              ANTAR_E_INTERNAL);
    cr_assert_eq(test_srv.nreq, before, "nothing was sent");
    cr_assert_eq(token_calls, tokens, "no token was even asked for");
    char *m = antar_metrics_render();
    cr_assert(strstr(m, "antar_calls_refused_total{target=\"core-service\"}"), "%s", m);
    cr_assert(strstr(m, "antar_calls_refused_total{target=\"driver-service\"}"), "%s", m);
    free(m);

    /* Public listeners and background workers may call any peer. */
    antar_thread_set_internal(false);
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK);
    cr_assert_eq(res.status, 200);
    antar_httpc_res_clean(&res);
}
