/* test_support.h — what several unit tests share: a minimal HTTP/1.1 server with keep-alive on
 * 127.0.0.1 that records every request it receives and answers through the test's own
 * handler, and a port nobody listens on.
 *
 * Header-only (static inline): each unit test is its own binary, and Criterion runs each test
 * in its own process, so the server's state below is per test. Define TEST_SRV_REQ_MAX before
 * including to record more (or fewer) requests. */
#ifndef ANTAR_TEST_SUPPORT_H
#define ANTAR_TEST_SUPPORT_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"

#ifndef TEST_SRV_REQ_MAX
#define TEST_SRV_REQ_MAX 128
#endif

/* One request as received. */
typedef struct {
    char method[16];
    char path[256];
    char headers[4096]; /* the request line and header lines, CRLF-separated */
    char body[4096];
    int conn_no; /* which accepted connection carried it (1, 2, …) */
} test_req_t;

/* Answers one request on fd (with test_srv_reply). Runs on the connection's own thread, after
 * the request was recorded. */
typedef void (*test_srv_handler_fn)(int fd, const test_req_t *r);

static struct {
    pthread_mutex_t mu; /* guards reqs, nreq, nconn */
    test_req_t reqs[TEST_SRV_REQ_MAX];
    int nreq;
    int nconn;
    int lfd;
    int port;
    test_srv_handler_fn handler;
} test_srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1};

/* The value of header name (case-insensitive) into out; NULL when r has no such header. */
static inline const char *test_srv_header(const test_req_t *r, const char *name, char *out,
                                          size_t n)
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

/* Send a whole response with a Content-Length (the connection stays open). */
static inline void test_srv_reply(int fd, int status, const char *ctype, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                     ctype, strlen(body));
    (void)!write(fd, head, (size_t)n);
    (void)!write(fd, body, strlen(body));
}

/* How many recorded requests had exactly this path. */
static inline int test_srv_count(const char *path)
{
    int n = 0;
    pthread_mutex_lock(&test_srv.mu);
    for (int i = 0; i < test_srv.nreq; i++)
        if (strcmp(test_srv.reqs[i].path, path) == 0)
            n++;
    pthread_mutex_unlock(&test_srv.mu);
    return n;
}

/* The last recorded request (all zero when none). */
static inline test_req_t test_srv_last(void)
{
    pthread_mutex_lock(&test_srv.mu);
    test_req_t r = test_srv.nreq ? test_srv.reqs[test_srv.nreq - 1] : (test_req_t){0};
    pthread_mutex_unlock(&test_srv.mu);
    return r;
}

/* The first recorded request with this path (all zero when none). */
static inline test_req_t test_srv_find(const char *path)
{
    test_req_t r = {0};
    pthread_mutex_lock(&test_srv.mu);
    for (int i = 0; i < test_srv.nreq; i++)
        if (strcmp(test_srv.reqs[i].path, path) == 0) {
            r = test_srv.reqs[i];
            break;
        }
    pthread_mutex_unlock(&test_srv.mu);
    return r;
}

static inline void *test_srv_conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pthread_mutex_lock(&test_srv.mu);
    int conn_no = ++test_srv.nconn;
    pthread_mutex_unlock(&test_srv.mu);
    char buf[16384];
    size_t len = 0;
    buf[0] = '\0'; /* strstr below reads it before the first read() */
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
        test_req_t r = {.conn_no = conn_no};
        size_t hlen = (size_t)(end - buf) + 4;
        sscanf(buf, "%15s %255s", r.method, r.path);
        snprintf(r.headers, sizeof(r.headers), "%.*s", (int)hlen, buf);
        char cl[32];
        size_t blen = test_srv_header(&r, "Content-Length", cl, sizeof(cl)) ? (size_t)atol(cl) : 0;
        if (hlen + blen > sizeof(buf) - 1)
            goto out; /* larger than any test sends: drop the connection */
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
        pthread_mutex_lock(&test_srv.mu);
        if (test_srv.nreq < TEST_SRV_REQ_MAX)
            test_srv.reqs[test_srv.nreq++] = r;
        pthread_mutex_unlock(&test_srv.mu);
        test_srv.handler(fd, &r);
    }
out:
    close(fd);
    return NULL;
}

static inline void *test_srv_accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(test_srv.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, test_srv_conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

/* Listen on 127.0.0.1:port (0 = an ephemeral port; test_srv.port tells which) and serve every
 * request with handler, until the process ends. */
static inline void test_srv_start(int port, test_srv_handler_fn handler)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind 127.0.0.1:%d", port);
    cr_assert(listen(fd, 16) == 0, "listen");
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    test_srv.port = ntohs(a.sin_port);
    test_srv.lfd = fd;
    test_srv.handler = handler;
    pthread_t t;
    pthread_create(&t, NULL, test_srv_accept_main, NULL);
    pthread_detach(t);
}

/* A port nobody listens on: bound once, then closed. */
static inline int test_srv_closed_port(void)
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

/* Point the toolkit's ANTAR_DB_* settings at the test database that `make test` exports as
 * ANTAR_TEST_DB_* (database antar_test). Returns false when none was exported: the caller skips
 * its database tests. */
static inline bool test_db_env(void)
{
    static const char *const map[][2] = {
        {"ANTAR_TEST_DB_HOST", "ANTAR_DB_HOST"},         {"ANTAR_TEST_DB_PORT", "ANTAR_DB_PORT"},
        {"ANTAR_TEST_DB_SOCKET", "ANTAR_DB_SOCKET"},     {"ANTAR_TEST_DB_USER", "ANTAR_DB_USER"},
        {"ANTAR_TEST_DB_PASSWORD", "ANTAR_DB_PASSWORD"},
    };
    if (!getenv("ANTAR_TEST_DB_HOST") && !getenv("ANTAR_TEST_DB_SOCKET"))
        return false;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i][0]);
        if (v && *v)
            setenv(map[i][1], v, 1);
    }
    const char *name = getenv("ANTAR_TEST_DB_NAME");
    setenv("ANTAR_DB_NAME", name && *name ? name : "antar_test", 1);
    return true;
}

/* ---- capturing what a test writes on stdout or stderr ---------------------------------- */

typedef struct {
    int fd, saved;
    FILE *tmp;
} test_capture_t;

/* From now on, what goes to fd (1 or 2) goes to a temporary file instead. */
static inline void test_capture_begin(test_capture_t *c, int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    cr_assert_not_null(c->tmp);
    c->saved = dup(fd);
    dup2(fileno(c->tmp), fd);
}

/* fd back as it was; returns what was written meanwhile (caller frees). */
static inline char *test_capture_end(test_capture_t *c)
{
    fflush(c->fd == 1 ? stdout : stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    fseek(c->tmp, 0, SEEK_END);
    long n = ftell(c->tmp);
    rewind(c->tmp);
    char *buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    cr_assert_not_null(buf);
    if (n > 0)
        cr_assert_eq(fread(buf, 1, (size_t)n, c->tmp), (size_t)n);
    fclose(c->tmp);
    return buf;
}

/* ---- the service client against the test server ---------------------------------------- */

/* A service token for calls (antar_httpc_set_token_provider). */
static inline int test_token_fixed(char *buf, size_t len)
{
    snprintf(buf, len, "svc");
    return 0;
}

/* Start the test server with handler and point the service client at it: core and driver are
 * the test server, user a port nobody listens on; connect/total timeouts 300/500 ms (total_ms
 * when not 0); the token from test_token_fixed. cfg is the caller's (it must outlive the
 * client). */
static inline void test_httpc_start(antar_config_t *cfg, test_srv_handler_fn handler, long total_ms)
{
    antar_log_init("test");
    antar_config_load(cfg, "user");
    test_srv_start(0, handler);
    snprintf(cfg->core_url, sizeof cfg->core_url, "http://127.0.0.1:%d", test_srv.port);
    snprintf(cfg->driver_url, sizeof cfg->driver_url, "http://127.0.0.1:%d", test_srv.port);
    snprintf(cfg->user_url, sizeof cfg->user_url, "http://127.0.0.1:%d", test_srv_closed_port());
    cfg->connect_timeout_ms = 300;
    cfg->timeout_ms = total_ms ? total_ms : 500;
    cr_assert(antar_httpc_init(cfg) == 0);
    antar_httpc_set_token_provider(test_token_fixed);
}

#endif
