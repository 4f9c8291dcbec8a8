/* test_httpc.c — lib/httpc.c against a tiny HTTP server started inside the test on 127.0.0.1
 * (an ephemeral port, so parallel runs do not collide). Needs no database. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/trace.h"

/* ---- a minimal HTTP/1.1 server with keep-alive, recording what it receives ---------------- */

#define REQ_MAX 32

typedef struct {
    char method[16];
    char path[256];
    char headers[4096];
    char body[4096];
    int conn_no; /* which accepted connection carried it */
} req_t;

static struct {
    pthread_mutex_t mu;
    req_t reqs[REQ_MAX];
    int nreq;
    int nconn;
    int lfd;
    int port;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1};

static const char *hdr_value(const req_t *r, const char *name, char *out, size_t n)
{
    const char *p = r->headers;
    size_t nl = strlen(name);
    while (*p) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)l, v);
            return out;
        }
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return NULL;
}

static void reply(int fd, int status, const char *ctype, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                     ctype, strlen(body));
    (void)!write(fd, head, (size_t)n);
    (void)!write(fd, body, strlen(body));
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pthread_mutex_lock(&srv.mu);
    int conn_no = ++srv.nconn;
    pthread_mutex_unlock(&srv.mu);
    char buf[16384];
    size_t len = 0;
    for (;;) {
        char *end;
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (len >= sizeof(buf) - 1)
                goto out;
            ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                goto out;
            len += (size_t)k;
            buf[len] = '\0';
        }
        req_t r = {.conn_no = conn_no};
        size_t hlen = (size_t)(end - buf) + 4;
        sscanf(buf, "%15s %255s", r.method, r.path);
        snprintf(r.headers, sizeof(r.headers), "%.*s", (int)hlen, buf);
        char cl[32];
        size_t blen = hdr_value(&r, "Content-Length", cl, sizeof(cl)) ? (size_t)atol(cl) : 0;
        while (len < hlen + blen) {
            ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
            if (k <= 0)
                goto out;
            len += (size_t)k;
        }
        snprintf(r.body, sizeof(r.body), "%.*s", (int)blen, buf + hlen);
        memmove(buf, buf + hlen + blen, len - hlen - blen);
        len -= hlen + blen;
        buf[len] = '\0';
        pthread_mutex_lock(&srv.mu);
        if (srv.nreq < REQ_MAX)
            srv.reqs[srv.nreq++] = r;
        pthread_mutex_unlock(&srv.mu);

        if (strcmp(r.path, "/ok") == 0) {
            reply(fd, 200, "application/json",
                  "{\"status\":200,\"result\":{\"id\":17,\"name\":\"Sari\"},\"error\":null}");
        } else if (strcmp(r.path, "/echo") == 0) {
            reply(fd, 201, "application/json", r.body[0] ? r.body : "null");
        } else if (strcmp(r.path, "/notjson") == 0) {
            reply(fd, 200, "text/plain", "hello");
        } else if (strcmp(r.path, "/fail") == 0) {
            reply(fd, 503, "application/json",
                  "{\"status\":503,\"result\":null,\"error\":{\"code\":\"x\"}}");
        } else if (strcmp(r.path, "/slow") == 0) {
            sleep(2);
            reply(fd, 200, "application/json", "{}");
        } else if (strcmp(r.path, "/big") == 0) {
            size_t n = 2 * 1024 * 1024;
            char *big = malloc(n + 1);
            memset(big, 'a', n);
            big[0] = '"';
            big[n - 1] = '"';
            big[n] = '\0';
            reply(fd, 200, "application/json", big);
            free(big);
        } else if (strcmp(r.path, "/oauth/token") == 0) {
            reply(fd, 200, "application/json", "{\"access_token\":\"abc\",\"expires_in\":600}");
        } else {
            reply(fd, 404, "application/json", "{\"status\":404}");
        }
    }
out:
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
    cr_assert(listen(fd, 16) == 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    srv.port = ntohs(a.sin_port);
    return fd;
}

static void server_start(void)
{
    srv.lfd = listen_on(0);
    pthread_t t;
    pthread_create(&t, NULL, accept_main, NULL);
    pthread_detach(t);
}

/* A port nobody listens on: bound once, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
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
    server_start();
    snprintf(cfg.core_url, sizeof(cfg.core_url), "http://127.0.0.1:%d", srv.port);
    snprintf(cfg.driver_url, sizeof(cfg.driver_url), "http://127.0.0.1:%d/", srv.port);
    snprintf(cfg.user_url, sizeof(cfg.user_url), "http://127.0.0.1:%d", closed_port());
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

static req_t last_req(void)
{
    pthread_mutex_lock(&srv.mu);
    req_t r = srv.nreq ? srv.reqs[srv.nreq - 1] : (req_t){0};
    pthread_mutex_unlock(&srv.mu);
    return r;
}

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

    req_t r = last_req();
    char v[256];
    cr_assert_str_eq(r.method, "GET");
    cr_assert_str_eq(r.path, "/ok");
    cr_assert_str_eq(hdr_value(&r, "Authorization", v, sizeof(v)), "Bearer svc-token-123");
    cr_assert_str_eq(hdr_value(&r, "Accept", v, sizeof(v)), "application/json");
    cr_assert_str_eq(hdr_value(&r, "Content-Type", v, sizeof(v)), "application/json");
    cr_assert(hdr_value(&r, "traceparent", v, sizeof(v)) != NULL, "traceparent sent");
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
    req_t r = last_req();
    char v[256];
    cr_assert_str_eq(r.path, "/echo", "no double slash from the base URL");
    cr_assert_str_eq(hdr_value(&r, "Idempotency-Key", v, sizeof(v)), "abc123");

    /* PUT and DELETE without a body. */
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "PUT", "/echo", NULL, NULL, &res) == ANTAR_OK);
    cr_assert_str_eq(last_req().method, "PUT");
    antar_httpc_res_clean(&res);
    cr_assert(antar_httpc_call(ANTAR_SVC_DRIVER, "DELETE", "/ok", NULL, NULL, &res) == ANTAR_OK);
    cr_assert_str_eq(last_req().method, "DELETE");
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
    req_t r = last_req();
    char v[128], want[64];
    hdr_value(&r, "traceparent", v, sizeof(v));
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
    int before = srv.nconn;
    for (int i = 0; i < 5; i++) {
        cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) == ANTAR_OK);
        antar_httpc_res_clean(&res);
    }
    cr_assert(srv.nconn - before == 1, "one connection for 5 calls, got %d", srv.nconn - before);
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
    int before = srv.nreq;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, hdrs, &res) ==
              ANTAR_E_BAD_REQUEST);
    cr_assert(srv.nreq == before, "nothing was sent");
}

Test(httpc, no_token_means_no_call)
{
    antar_httpc_set_token_provider(no_token);
    int before = srv.nreq;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) ==
              ANTAR_E_UNAUTHORIZED);
    antar_httpc_set_token_provider(NULL);
    cr_assert(antar_httpc_call(ANTAR_SVC_CORE, "GET", "/ok", NULL, NULL, &res) ==
              ANTAR_E_UNAUTHORIZED);
    cr_assert(srv.nreq == before, "nothing was sent");
}

Test(httpc, raw_request_form_body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/oauth/token", srv.port);
    int before = token_calls;
    antar_httpc_res_t res;
    cr_assert(antar_httpc_request("POST", url, "application/x-www-form-urlencoded",
                                  "grant_type=client_credentials&scope=internal",
                                  "Basic dXNlcjpwdw==", &res) == ANTAR_OK);
    cr_assert(res.status == 200);
    cr_assert_str_eq(json_string_value(json_object_get(res.body, "access_token")), "abc");
    antar_httpc_res_clean(&res);
    cr_assert(token_calls == before, "the raw request does not fetch a service token");
    req_t r = last_req();
    char v[128];
    cr_assert_str_eq(r.body, "grant_type=client_credentials&scope=internal");
    cr_assert_str_eq(hdr_value(&r, "Content-Type", v, sizeof(v)),
                     "application/x-www-form-urlencoded");
    cr_assert_str_eq(hdr_value(&r, "Authorization", v, sizeof(v)), "Basic dXNlcjpwdw==");
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
