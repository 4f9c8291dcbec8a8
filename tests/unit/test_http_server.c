/* A real antar_server on 127.0.0.1:8290 (port offset 200 range), hit with libcurl: status,
 * headers and envelope for every path of the pipeline. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "antar/httpc.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "../../lib/http_internal.h"

#define PORT "8290"
#define BASE "http://127.0.0.1:" PORT
#define IPORT "8291"
#define IBASE "http://127.0.0.1:" IPORT

static antar_config_t cfg;
static antar_server_t *srv;
static antar_err_t fake_health = ANTAR_OK;

static void h_echo(antar_req_t *req)
{
    const char *name = NULL;
    long long n = 0;
    antar_field_t f[] = {
        {"name", ANTAR_FIELD_STRING, true, 1, 20, NULL, &name, NULL},
        {"n", ANTAR_FIELD_INT, false, 0, 10, NULL, &n, NULL},
    };
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    if (antar_req_fields(req, f, 2) != ANTAR_OK)
        return;
    antar_http_reply(req, 201,
                     json_pack("{s:I,s:s,s:I,s:b,s:s}", "id", id, "name", name, "n", n, "form",
                               antar_req_is_form(req), "route", antar_req_route(req)));
}

static void h_secure(antar_req_t *req)
{
    antar_http_reply(req, 200, json_pack("{s:s}", "sub", antar_req_principal(req)->sub));
}

static void h_noreply(antar_req_t *req)
{
    (void)req;
}

static void h_trace(antar_req_t *req)
{
    const antar_trace_t *t = antar_trace_current();
    antar_http_reply(req, 200,
                     json_pack("{s:s,s:s,s:s?}", "trace_id", t->trace_id, "parent_id", t->parent_id,
                               "q", antar_req_query(req, "q")));
}

static void h_ip(antar_req_t *req)
{
    antar_http_reply(req, 200, json_pack("{s:s}", "ip", antar_req_client_ip(req)));
}

static void h_raw(antar_req_t *req)
{
    size_t len;
    const char *raw = antar_req_raw_body(req, &len);
    antar_http_reply_raw(req, 200, "text/plain", raw, len);
}

/* Tries a peer call from inside a request and answers with what came of it, and whether the
 * thread was marked as an internal listener's. */
static void h_peer(antar_req_t *req)
{
    antar_httpc_res_t res;
    antar_err_t e = antar_httpc_call(ANTAR_SVC_CORE, "GET", "/x", NULL, NULL, &res);
    antar_httpc_res_clean(&res);
    antar_http_reply(
        req, 200,
        json_pack("{s:s,s:b}", "call", antar_err_code(e), "internal", antar_thread_is_internal()));
}

static const antar_route_t routes[] = {
    {"GET", "/internal/peer", h_peer, 0, NULL, 0},
    {"GET", "/peer", h_peer, 0, NULL, 0},
    {"POST", "/echo/{id}", h_echo, 0, NULL, 0},
    {"PUT", "/echo/{id}", h_echo, 0, NULL, 0},
    {"GET", "/secure", h_secure, ANTAR_AUTH_USER, NULL, 0},
    {"GET", "/noreply", h_noreply, 0, NULL, 0},
    {"GET", "/trace", h_trace, 0, NULL, 0},
    {"GET", "/ip", h_ip, 0, NULL, 0},
    {"POST", "/raw", h_raw, 0, NULL, ANTAR_ROUTE_RAW},
};

static antar_err_t hook(antar_req_t *req, const antar_route_t *route)
{
    (void)route;
    const char *a = antar_req_header(req, "Authorization");
    if (!a)
        return ANTAR_E_UNAUTHORIZED;
    if (strcmp(a, "Bearer good") != 0)
        return ANTAR_E_INVALID_TOKEN;
    snprintf(antar_req_principal_mut(req)->sub, 64, "user:17");
    return ANTAR_OK;
}

static antar_err_t health_ok(void)
{
    return ANTAR_OK;
}

static antar_err_t health_fake(void)
{
    return fake_health;
}

/* The served files' folder, removed with them when the test ends (stop), so that test runs leave
 * no folders behind in /tmp. */
static char dir[] = "/tmp/libhttp-test-XXXXXX";

static void remove_dir(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/api.json", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/swagger-ui.css", dir);
    unlink(path);
    rmdir(dir);
}

static void start(void)
{
    cr_assert_not_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/api.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"openapi\":\"3.1.0\"}", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/swagger-ui.css", dir);
    f = fopen(path, "w");
    fputs("body{}", f);
    fclose(f);
    setenv("ANTAR_PORT", PORT, 1);
    setenv("ANTAR_THREADS", "2", 1);
    setenv("ANTAR_INTERNAL_PORT", IPORT, 1);
    setenv("ANTAR_INTERNAL_THREADS", "2", 1);
    setenv("ANTAR_BODY_LIMIT", "1024", 1);
    snprintf(path, sizeof(path), "%s/api.json", dir);
    setenv("ANTAR_API_FILE", path, 1);
    setenv("ANTAR_DOCS_DIR", dir, 1);
    antar_config_load(&cfg, "user");
    /* Peer calls go to a port nobody listens on, with no token provider: a call that is let
     * through fails "unauthorized" without touching the network. */
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:9");
    cr_assert_eq(antar_httpc_init(&cfg), 0);
    antar_httpc_set_token_provider(NULL);
    srv = antar_server_new(&cfg);
    antar_server_add_routes(srv, routes, sizeof(routes) / sizeof(*routes));
    antar_server_add_health_check(srv, "mariadb", health_ok);
    antar_server_add_health_check(srv, "redis", health_fake);
    antar_server_set_auth_hook(srv, hook);
    cr_assert_eq(antar_server_start(srv), 0);
}

static void stop(void)
{
    antar_server_free(srv);
    remove_dir();
}

TestSuite(server, .init = start, .fini = stop);

/* The same server behind an edge that is not on loopback (ANTAR_TRUSTED_PROXIES names another
 * network): the tests' loopback peer is then no proxy. */
static void start_untrusted(void)
{
    setenv("ANTAR_TRUSTED_PROXIES", "10.0.0.0/8", 1);
    start();
    unsetenv("ANTAR_TRUSTED_PROXIES");
}

typedef struct {
    long status;
    char body[65536];
    size_t len;
    char headers[8192];
    size_t hlen;
    json_t *json;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof(r->body)) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
    }
    return k;
}

static CURLcode last_curl;

/* Performs one request on base; extra is a NULL-terminated list of header lines. When may_fail,
 * a transport error is returned in last_curl (status 0) instead of failing the test. */
static resp_t *call_at(const char *base, bool may_fail, const char *method, const char *path,
                       const char *ct, const char *body, const char *const *extra)
{
    static resp_t r;
    json_decref(r.json);
    memset(&r, 0, sizeof(r));
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512], line[256];
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (ct) {
        snprintf(line, sizeof(line), "Content-Type: %s", ct);
        h = curl_slist_append(h, line);
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    h = curl_slist_append(h, "Expect:");
    for (const char *const *e = extra; e && *e; e++)
        h = curl_slist_append(h, *e);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    CURLcode rc = curl_easy_perform(c);
    last_curl = rc;
    if (!may_fail)
        cr_assert_eq(rc, CURLE_OK, "curl: %s", curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r.json = json_loadb(r.body, r.len, 0, NULL);
    return &r;
}

static resp_t *call(const char *method, const char *path, const char *ct, const char *body,
                    const char *const *extra)
{
    return call_at(BASE, false, method, path, ct, body, extra);
}

static resp_t *icall(const char *method, const char *path)
{
    return call_at(IBASE, false, method, path, NULL, NULL, NULL);
}

static bool has_header(const resp_t *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

/* Asserts an error envelope: status, code, field (NULL = null). */
static void assert_error(const resp_t *r, long status, const char *code, const char *field)
{
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    cr_assert_not_null(r->json, "not JSON: %s", r->body);
    cr_assert_eq(json_integer_value(json_object_get(r->json, "status")), status);
    cr_assert(json_is_null(json_object_get(r->json, "result")));
    json_t *e = json_object_get(r->json, "error");
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code, "%s", r->body);
    if (field)
        cr_assert_str_eq(json_string_value(json_object_get(e, "field")), field, "%s", r->body);
    else
        cr_assert(json_is_null(json_object_get(e, "field")), "%s", r->body);
    cr_assert(has_header(r, "Content-Type: application/json; charset=utf-8"));
    cr_assert(has_header(r, "Cache-Control: no-store"));
    cr_assert(has_header(r, "X-Request-Id: "));
    cr_assert(has_header(r, "traceparent: 00-"));
}

Test(server, json_and_form_same_result)
{
    resp_t *r = call("POST", "/echo/5", "application/json", "{\"name\":\"Sari\",\"n\":3}", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_assert_str_eq(r->body, "{\"status\":201,\"result\":{\"id\":5,\"name\":\"Sari\",\"n\":3,"
                              "\"form\":false,\"route\":\"/echo/{id}\"},\"error\":null}");
    cr_assert(has_header(r, "Cache-Control: no-store"));
    r = call("POST", "/echo/5", "application/x-www-form-urlencoded", "name=Sari&n=3", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_assert_str_eq(r->body, "{\"status\":201,\"result\":{\"id\":5,\"name\":\"Sari\",\"n\":3,"
                              "\"form\":true,\"route\":\"/echo/{id}\"},\"error\":null}");
}

Test(server, not_found_and_method_not_allowed)
{
    resp_t *r = call("GET", "/nope", NULL, NULL, NULL);
    assert_error(r, 404, "not_found", NULL);
    r = call("DELETE", "/echo/5", NULL, NULL, NULL);
    assert_error(r, 405, "method_not_allowed", NULL);
    cr_assert(has_header(r, "Allow: POST, PUT"), "%s", r->headers);
    r = call("POST", "/echo/abc", "application/json", "{\"name\":\"x\"}", NULL);
    assert_error(r, 404, "not_found", "id");
    r = call("POST", "/echo/0", "application/json", "{\"name\":\"x\"}", NULL);
    assert_error(r, 404, "not_found", "id");
}

Test(server, body_errors)
{
    assert_error(call("POST", "/echo/1", "application/json", "{\"name\":", NULL), 400,
                 "malformed_json", NULL);
    assert_error(call("POST", "/echo/1", "application/json", "[1]", NULL), 400, "bad_request",
                 NULL);
    assert_error(call("POST", "/echo/1", "text/plain", "name=x", NULL), 415,
                 "unsupported_media_type", NULL);
    assert_error(call("POST", "/echo/1", NULL, "name=x", NULL), 415, "unsupported_media_type",
                 NULL);
    assert_error(
        call("POST", "/echo/1", "application/x-www-form-urlencoded", "name=a&name=b", NULL), 400,
        "bad_request", "name");
    assert_error(call("POST", "/echo/1", "application/x-www-form-urlencoded", "name=%zz", NULL),
                 400, "bad_request", NULL);
    /* an empty write is an empty object: the handler reports the missing field */
    assert_error(call("PUT", "/echo/1", "text/plain", "", NULL), 422, "missing_field", "name");
    assert_error(call("POST", "/echo/1", "application/x-www-form-urlencoded", "name=a&n=5x", NULL),
                 422, "invalid_field", "n");
    assert_error(call("POST", "/echo/1", "application/json", "{\"name\":\"a\",\"zz\":1}", NULL),
                 422, "unknown_field", "zz");
}

Test(server, too_large)
{
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "name=", 5);
    /* declared Content-Length over the limit: answered before the body is read */
    assert_error(call("POST", "/echo/1", "application/x-www-form-urlencoded", big, NULL), 413,
                 "payload_too_large", NULL);
    /* chunked, so the size is only known while reading */
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    assert_error(call("POST", "/echo/1", "application/x-www-form-urlencoded", big, chunked), 413,
                 "payload_too_large", NULL);
    /* exactly at the limit is fine (and then fails validation: name too long) */
    big[1024] = '\0';
    assert_error(call("POST", "/echo/1", "application/x-www-form-urlencoded", big, NULL), 422,
                 "invalid_field", "name");
}

Test(server, auth_hook)
{
    resp_t *r = call("GET", "/secure", NULL, NULL, NULL);
    assert_error(r, 401, "unauthorized", NULL);
    cr_assert(has_header(r, "WWW-Authenticate: Bearer"));
    const char *bad[] = {"Authorization: Bearer bad", NULL};
    assert_error(call("GET", "/secure", NULL, NULL, bad), 401, "invalid_token", NULL);
    const char *good[] = {"Authorization: Bearer good", NULL};
    r = call("GET", "/secure", NULL, NULL, good);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "{\"status\":200,\"result\":{\"sub\":\"user:17\"},\"error\":null}");
}

Test(server, handler_without_reply_is_500)
{
    assert_error(call("GET", "/noreply", NULL, NULL, NULL), 500, "internal_error", NULL);
}

Test(server, request_id_and_trace)
{
    const char *h[] = {"X-Request-Id: abc-123",
                       "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                       NULL};
    resp_t *r = call("GET", "/trace?q=hello", NULL, NULL, h);
    cr_assert_eq(r->status, 200);
    cr_assert(has_header(r, "X-Request-Id: abc-123"));
    cr_assert(has_header(r, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    json_t *res = json_object_get(r->json, "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "trace_id")),
                     "4bf92f3577b34da6a3ce929d0e0e4736");
    cr_assert_str_eq(json_string_value(json_object_get(res, "parent_id")), "00f067aa0ba902b7");
    cr_assert_str_eq(json_string_value(json_object_get(res, "q")), "hello");
    /* an invalid request id and traceparent are replaced */
    const char *h2[] = {"X-Request-Id: bad id!", "traceparent: junk", NULL};
    r = call("GET", "/trace", NULL, NULL, h2);
    cr_assert_not(has_header(r, "X-Request-Id: bad"));
    res = json_object_get(r->json, "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "parent_id")), "");
}

Test(server, raw_route_keeps_body)
{
    resp_t *r = call("POST", "/raw", "application/json", "{not json", NULL);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "{not json");
}

Test(server, health)
{
    resp_t *r = call("GET", "/health", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert_str_eq(r->body, "{\"status\":200,\"result\":{\"status\":\"ok\",\"service\":\"user\","
                              "\"checks\":{\"mariadb\":\"ok\",\"redis\":\"ok\"}},\"error\":null}");
    fake_health = ANTAR_E_KV;
    r = call("GET", "/health", NULL, NULL, NULL);
    assert_error(r, 503, "service_unavailable", "redis");
    cr_assert(strstr(r->body, "mariadb: ok, redis: unavailable"), "%s", r->body);
}

Test(server, metrics_openapi_docs)
{
    call("GET", "/health", NULL, NULL, NULL);
    resp_t *r = call("GET", "/metrics", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200);
    cr_assert(has_header(r, "Content-Type: text/plain; version=0.0.4"));
    cr_assert(strstr(r->body, "antar_http_requests_total{route=\"/health\",method=\"GET\","
                              "status=\"200\"}"),
              "%s", r->body);
    r = call("GET", "/openapi.json", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "{\"openapi\":\"3.1.0\"}");
    r = call("GET", "/docs", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200);
    cr_assert(has_header(r, "Content-Type: text/html"));
    cr_assert(strstr(r->body, "/docs/swagger-ui-bundle.js"));
    cr_assert(strstr(r->body, "\"/openapi.json\""));
    cr_assert_null(strstr(r->body, "https://"));
    r = call("GET", "/docs/swagger-ui.css", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200);
    cr_assert(has_header(r, "Content-Type: text/css"));
    cr_assert_str_eq(r->body, "body{}");
    assert_error(call("GET", "/docs/missing.js", NULL, NULL, NULL), 404, "not_found", NULL);
    assert_error(call("GET", "/docs/..%2fapi.json", NULL, NULL, NULL), 404, "not_found", NULL);
    assert_error(call("GET", "/docs/.hidden.css", NULL, NULL, NULL), 404, "not_found", NULL);
    assert_error(call("GET", "/docs/api.exe", NULL, NULL, NULL), 404, "not_found", NULL);
}

Test(server, print_routes)
{
    char buf[2048] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    antar_server_print_routes(srv, f);
    fclose(f);
    cr_assert(strstr(buf, "GET /health\nGET /health/live\nGET /health/ready\nGET /metrics\n"
                          "GET /openapi.json\nGET /docs\nGET /docs/{file}\nGET /internal/peer\n"),
              "%s", buf);
}

/* Found by tests/integration/test_hostile.py: MHD decoded %00 like any escape and the NUL cut
 * the path short, so "/echo/5%00" was routed as "/echo/5" and "/docs/x.css%00.png" served
 * x.css. "%00" now stays three literal characters; every other escape is still decoded. */
Test(server, nul_escape_is_kept_literal)
{
    assert_error(call("POST", "/echo/5%00", "application/json", "{\"name\":\"x\"}", NULL), 404,
                 "not_found", "id");
    assert_error(call("POST", "/echo/5%00/x", "application/json", "{\"name\":\"x\"}", NULL), 404,
                 "not_found", NULL);
    resp_t *r = call("POST", "/echo/%35", "application/json", "{\"name\":\"x\"}", NULL);
    cr_assert_eq(r->status, 201, "%s", r->body);
    cr_assert(strstr(r->body, "\"id\":5,"), "%s", r->body);
    r = call("GET", "/trace?q=a%00b%41", NULL, NULL, NULL);
    cr_assert_eq(r->status, 200, "%s", r->body);
    cr_assert(strstr(r->body, "\"q\":\"a%00bA\""), "%s", r->body);
}

/* ---- the two listeners (docs/reliability.md, "Call graph: why no cycle") ------------------ */

Test(server, internal_routes_only_on_the_internal_listener)
{
    /* Public port: no /internal route at all, as if it were never registered. */
    resp_t *r = call("GET", "/internal/peer", NULL, NULL, NULL);
    assert_error(r, 404, "not_found", NULL);
    cr_assert(strstr(r->body, "no route"), "%s", r->body);
    /* Internal port: /internal and the ops routes, nothing else. */
    r = icall("GET", "/internal/peer");
    cr_assert_eq(r->status, 200, "%s", r->body);
    assert_error(icall("POST", "/echo/5"), 404, "not_found", NULL);
    assert_error(icall("GET", "/openapi.json"), 404, "not_found", NULL);
    assert_error(icall("GET", "/docs"), 404, "not_found", NULL);
    cr_assert_eq(icall("GET", "/health")->status, 200);
    cr_assert_eq(icall("GET", "/health/live")->status, 200);
    cr_assert_eq(icall("GET", "/health/ready")->status, 200);
    cr_assert_eq(icall("GET", "/metrics")->status, 200);
}

Test(server, internal_listener_threads_may_not_call_peers)
{
    /* A thread of an internal listener never calls a peer. */
    resp_t *r = icall("GET", "/internal/peer");
    cr_assert_eq(r->status, 200, "%s", r->body);
    json_t *res = json_object_get(r->json, "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "call")), "internal_error", "%s",
                     r->body);
    cr_assert(json_is_true(json_object_get(res, "internal")), "%s", r->body);
    char *m = antar_metrics_render();
    cr_assert(strstr(m, "antar_calls_refused_total{target=\"core-service\"}"), "%s", m);
    free(m);
    /* The same handler on the public listener is let through (and fails only for want of a
     * service token, which this test does not give). */
    r = call("GET", "/peer", NULL, NULL, NULL);
    res = json_object_get(r->json, "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "call")), "unauthorized", "%s",
                     r->body);
    cr_assert(json_is_false(json_object_get(res, "internal")), "%s", r->body);
}

Test(server, health_live_and_ready)
{
    resp_t *r = call("GET", "/health/live", NULL, NULL, NULL);
    cr_assert_str_eq(r->body,
                     "{\"status\":200,\"result\":{\"status\":\"live\",\"service\":\"user\"},"
                     "\"error\":null}");
    r = call("GET", "/health/ready", NULL, NULL, NULL);
    cr_assert_str_eq(r->body, "{\"status\":200,\"result\":{\"status\":\"ready\",\"service\":"
                              "\"user\",\"checks\":{\"mariadb\":\"ok\",\"redis\":\"ok\"}},"
                              "\"error\":null}");
    fake_health = ANTAR_E_KV;
    r = call("GET", "/health/ready", NULL, NULL, NULL);
    assert_error(r, 503, "service_unavailable", "redis");
    cr_assert(strstr(r->body, "redis unavailable"), "%s", r->body);
    /* Live does not look at dependencies. */
    cr_assert_eq(call("GET", "/health/live", NULL, NULL, NULL)->status, 200);
    fake_health = ANTAR_OK;
}

Test(server, drain_turns_not_ready_closes_connections_then_refuses)
{
    cr_assert(!has_header(call("GET", "/health", NULL, NULL, NULL), "Connection: close"));
    antar_server_set_draining(srv);
    cr_assert(antar_server_draining(srv));
    resp_t *r = call("GET", "/health/ready", NULL, NULL, NULL);
    assert_error(r, 503, "service_unavailable", NULL);
    cr_assert(strstr(r->body, "draining"), "%s", r->body);
    cr_assert(has_header(r, "Connection: close"), "%s", r->headers);
    /* Still serving while the edge notices, on both listeners. */
    r = call("POST", "/echo/5", "application/json", "{\"name\":\"x\"}", NULL);
    cr_assert_eq(r->status, 201);
    cr_assert(has_header(r, "Connection: close"), "%s", r->headers);
    cr_assert_eq(call("GET", "/health/live", NULL, NULL, NULL)->status, 200);
    cr_assert_eq(icall("GET", "/health/ready")->status, 503);
    /* Quiesced: nothing in flight, so idle at once; new connections are refused. */
    antar_server_quiesce(srv);
    cr_assert_eq(antar_server_wait_idle(srv, antar_mono_ms() + 2000), 0);
    cr_assert_eq(antar_server_inflight(srv), 0);
    r = call_at(BASE, true, "GET", "/health/live", NULL, NULL, NULL);
    cr_assert_eq(last_curl, CURLE_COULDNT_CONNECT, "%s", curl_easy_strerror(last_curl));
    r = call_at(IBASE, true, "GET", "/health/live", NULL, NULL, NULL);
    cr_assert_eq(last_curl, CURLE_COULDNT_CONNECT, "%s", curl_easy_strerror(last_curl));
}

static const char *ip_seen(const char *const *extra)
{
    resp_t *r = call("GET", "/ip", NULL, NULL, extra);
    cr_assert_eq(r->status, 200, "%s", r->body);
    return json_string_value(json_object_get(json_object_get(r->json, "result"), "ip"));
}

Test(server, x_forwarded_for_is_believed_from_loopback)
{
    const char *edge[] = {"X-Forwarded-For: 203.0.113.7", NULL};
    cr_expect_str_eq(ip_seen(edge), "203.0.113.7");
    const char *two[] = {"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 1.1.1.1, 203.0.113.8",
                         NULL};
    cr_expect_str_eq(ip_seen(two), "203.0.113.8", "only the edge's own entry, the last one");
    const char *junk[] = {"X-Forwarded-For: <script>", NULL};
    cr_expect_str_eq(ip_seen(junk), "127.0.0.1", "not an address: the peer's");
    cr_expect_str_eq(ip_seen(NULL), "127.0.0.1");
}

Test(server_untrusted, x_forwarded_for_from_a_peer_not_listed_is_ignored, .init = start_untrusted,
     .fini = stop)
{
    const char *forged[] = {"X-Forwarded-For: 203.0.113.7", NULL};
    cr_expect_str_eq(ip_seen(forged), "127.0.0.1");
}

Test(server_config, a_malformed_trusted_proxies_list_stops_the_start)
{
    const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "nonsense", "10.0.0.0/8,"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        antar_config_t c;
        memset(&c, 0, sizeof c);
        snprintf(c.trusted_proxies, sizeof c.trusted_proxies, "%s", bad[i]);
        antar_server_t *s = antar_server_new(&c);
        cr_expect_null(s, "accepted ANTAR_TRUSTED_PROXIES=%s", bad[i]);
        antar_server_free(s);
    }
    antar_config_t ok;
    memset(&ok, 0, sizeof ok);
    snprintf(ok.trusted_proxies, sizeof ok.trusted_proxies, "10.0.0.0/8, fd00::/8");
    antar_server_t *s = antar_server_new(&ok);
    cr_expect_not_null(s);
    antar_server_free(s);
}
