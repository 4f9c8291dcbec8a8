/* http_server.c — libmicrohttpd glue, the request lifecycle and the built-in routes.
 *
 * MHD runs with epoll and a thread pool (STACK.md measured it level with nginx). For each
 * request the access handler is called once with the headers, then once per body chunk, then
 * once more with no data: we copy the body (never past cfg->body_limit), and on that last call
 * run the whole pipeline of http.h synchronously on the MHD worker thread. Handlers record their
 * reply in the request; it is queued after the handler returns, which is what lets the server
 * catch a handler that forgot to reply. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "antar/config.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "http_internal.h"

#define CONNECTION_TIMEOUT_S 30u
/* Open connections per listener (ANTAR_CONNECTION_LIMIT): each open event stream holds one, so
 * the instance that serves GET /events may need more (docs/operations.md). */
#define CONNECTION_LIMIT 1024u
/* Past the limit we keep reading (and dropping) a bounded amount so the client can still see
 * the 413; beyond this much more, the connection is just closed. */
#define DRAIN_MAX (1024u * 1024u)
#define STATIC_FILE_MAX (16L * 1024 * 1024)

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- per-thread cleanup hook ----------------------------------------------------------- */

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg)
{
    antar_server_t *s = arg;
    if (s && s->thread_end)
        s->thread_end();
}

static void thread_key_make(void)
{
    if (pthread_key_create(&thread_key, thread_exit) != 0)
        fprintf(stderr, "http: pthread_key_create failed\n");
}

void antar_server_set_thread_end(antar_server_t *s, antar_thread_end_fn fn)
{
    s->thread_end = fn;
}

/* ---- request memory -------------------------------------------------------------------- */

static antar_req_t *req_new(antar_server_t *srv, const char *method, const char *url)
{
    antar_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->srv = srv;
    r->start_ns = now_ns();
    snprintf(r->method, sizeof(r->method), "%s", method ? method : "");
    /* MHD hands us the path already without the query string; strip one anyway for detached
     * requests built by tests. */
    size_t plen = url ? strcspn(url, "?") : 0;
    r->path = strndup(url ? url : "", plen);
    r->kept = NULL; /* made on the first antar_req_keep: most requests keep nothing */
    r->error = ANTAR_OK;
    if (!r->path) {
        antar_req_free(r);
        return NULL;
    }
    return r;
}

void antar_req_free(antar_req_t *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->raw);
    json_decref(r->body);
    json_decref(r->kept);
    for (antar_alloc_t *a = r->allocs, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    free(r->resp_body);
    if (r->stream_free) /* a streamed reply that never reached MHD */
        r->stream_free(r->stream_cls);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdr_name[i]);
        free(r->hdr_value[i]);
    }
    free(r);
}

antar_req_t *antar_req_new_detached(antar_server_t *srv, const char *method, const char *path,
                                    json_t *body, bool is_form)
{
    antar_req_t *r = req_new(srv, method, path);
    if (!r) {
        json_decref(body);
        return NULL;
    }
    r->body = body ? body : json_object();
    r->is_form = is_form;
    snprintf(r->request_id, sizeof(r->request_id), "test");
    antar_trace_new(&r->trace);
    return r;
}

char *antar_req_strdup(antar_req_t *r, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    antar_alloc_t *a = malloc(sizeof(*a) + n + 1);
    if (!a)
        return NULL;
    memcpy(a->data, s, n + 1);
    a->next = r->allocs;
    r->allocs = a;
    return a->data;
}

static char *req_strndup(antar_req_t *r, const char *s, size_t n)
{
    antar_alloc_t *a = malloc(sizeof(*a) + n + 1);
    if (!a)
        return NULL;
    memcpy(a->data, s, n);
    a->data[n] = '\0';
    a->next = r->allocs;
    r->allocs = a;
    return a->data;
}

json_t *antar_req_keep(antar_req_t *r, json_t *value)
{
    if (value && !r->kept && !(r->kept = json_array())) {
        json_decref(value);
        return NULL;
    }
    if (value && json_array_append_new(r->kept, value) != 0)
        return NULL; /* append_new released it */
    return value;
}

/* ---- request accessors ----------------------------------------------------------------- */

const char *antar_req_method(const antar_req_t *r)
{
    return r->method;
}

const char *antar_req_path(const antar_req_t *r)
{
    return r->path;
}

const char *antar_req_route(const antar_req_t *r)
{
    return r->route ? r->route->pattern : "unmatched";
}

const char *antar_req_param(const antar_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->param_name[i], name) == 0)
            return r->param_value[i];
    return NULL;
}

antar_err_t antar_req_param_id(antar_req_t *r, const char *name, long long *out)
{
    const char *v = antar_req_param(r, name);
    long long id = 0;
    bool ok = v && *v && strlen(v) <= 16 && v[0] != '0';
    for (const char *p = v; ok && *p; p++) {
        if (*p < '0' || *p > '9')
            ok = false;
        else
            id = id * 10 + (*p - '0');
    }
    if (!ok || id < 1 || id > 9007199254740992LL) {
        antar_http_fail(r, ANTAR_E_NOT_FOUND, name, "no such %s", name);
        return ANTAR_E_NOT_FOUND;
    }
    *out = id;
    return ANTAR_OK;
}

const char *antar_req_query(const antar_req_t *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

const char *antar_req_header(const antar_req_t *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

json_t *antar_req_body(const antar_req_t *r)
{
    return r->body;
}

bool antar_req_is_form(const antar_req_t *r)
{
    return r->is_form;
}

const char *antar_req_raw_body(const antar_req_t *r, size_t *len)
{
    if (len)
        *len = r->raw ? r->raw_len : 0;
    return r->raw ? r->raw : "";
}

const char *antar_req_content_type(const antar_req_t *r)
{
    return antar_req_header(r, "Content-Type");
}

typedef struct {
    const char *name;
    int count;
    const char *last;
} value_scan_t;

static enum MHD_Result value_scan(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    value_scan_t *s = cls;
    if (key && !strcasecmp(key, s->name)) {
        s->count++;
        s->last = value;
    }
    return MHD_YES;
}

int antar_req_query_count(const antar_req_t *r, const char *name)
{
    value_scan_t s = {.name = name};
    if (r->conn)
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, value_scan, &s);
    return s.count;
}

const char *antar_req_client_ip(const antar_req_t *r)
{
    antar_req_t *m = (antar_req_t *)r; /* computed once, lazily */
    if (m->client_ip[0])
        return m->client_ip;
    /* The edge overwrites X-Forwarded-For with the one address it saw (deploy/haproxy.cfg), so
     * behind it there is exactly one header line. Should a request ever carry several lines
     * (an edge configured to append instead), the first ones come from the client and only the
     * last entry of the last line is the edge's own (the per-address login throttles depend on
     * it). Only a peer in ANTAR_TRUSTED_PROXIES (loopback by default: here the edge is on the
     * same machine; in Kubernetes, the edge pods' network) is believed. */
    value_scan_t hs = {.name = "X-Forwarded-For"};
    if (r->conn)
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, value_scan, &hs);
    const char *xff = hs.last;
    const union MHD_ConnectionInfo *pi =
        r->conn ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    bool peer_trusted = pi && pi->client_addr && r->srv &&
                        antar_cidr_match(r->srv->proxies, r->srv->nproxies, pi->client_addr);
    if (xff && peer_trusted) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        size_t n = strcspn(last, " ");
        if (n > 0 && n < sizeof(m->client_ip) && strspn(last, "0123456789abcdefABCDEF.:") >= n) {
            memcpy(m->client_ip, last, n);
            m->client_ip[n] = '\0';
            return m->client_ip;
        }
    }
    if (pi && pi->client_addr) {
        const struct sockaddr *sa = pi->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, m->client_ip,
                      sizeof(m->client_ip));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, m->client_ip,
                      sizeof(m->client_ip));
    }
    if (!m->client_ip[0])
        snprintf(m->client_ip, sizeof(m->client_ip), "unknown");
    return m->client_ip;
}

const antar_principal_t *antar_req_principal(const antar_req_t *r)
{
    return r->has_principal ? &r->principal : NULL;
}

antar_principal_t *antar_req_principal_mut(antar_req_t *r)
{
    /* The auth hook fills it through this pointer; from then on the request has a caller. */
    r->has_principal = true;
    return &r->principal;
}

const char *antar_req_id(const antar_req_t *r)
{
    return r->request_id;
}

/* ---- server ---------------------------------------------------------------------------- */

static void h_health(antar_req_t *req);
static void h_metrics(antar_req_t *req);
static void h_openapi(antar_req_t *req);
static void h_docs(antar_req_t *req);
static void h_docs_file(antar_req_t *req);
static void h_health_live(antar_req_t *req);
static void h_health_ready(antar_req_t *req);

static const antar_route_t builtin_routes[] = {
    {"GET", "/health", h_health, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_INTERNAL_TOO},
    {"GET", "/health/live", h_health_live, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_INTERNAL_TOO},
    {"GET", "/health/ready", h_health_ready, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_INTERNAL_TOO},
    {"GET", "/metrics", h_metrics, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_INTERNAL_TOO},
    {"GET", "/openapi.json", h_openapi, ANTAR_AUTH_NONE, NULL, 0},
    {"GET", "/docs", h_docs, ANTAR_AUTH_NONE, NULL, 0},
    {"GET", "/docs/{file}", h_docs_file, ANTAR_AUTH_NONE, NULL, 0},
};

antar_server_t *antar_server_new(const antar_config_t *cfg)
{
    pthread_once(&thread_key_once, thread_key_make);
    antar_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = cfg;
    /* An empty setting (a config built by hand, as unit tests do) trusts loopback only. */
    const char *tp = cfg && cfg->trusted_proxies[0] ? cfg->trusted_proxies : "127.0.0.0/8,::1/128";
    if (antar_cidr_list_parse(tp, s->proxies, sizeof s->proxies / sizeof *s->proxies,
                              &s->nproxies) != 0) {
        antar_logf("error",
                   "ANTAR_TRUSTED_PROXIES is not a list of at most 16 networks (CIDR, comma "
                   "separated, no host bits): %s",
                   tp);
        free(s);
        return NULL;
    }
    s->pub.srv = s;
    s->internal.srv = s;
    s->internal.internal = true;
    antar_server_add_routes(s, builtin_routes, sizeof(builtin_routes) / sizeof(*builtin_routes));
    if (s->nroutes == 0) {
        free(s);
        return NULL;
    }
    return s;
}

void antar_server_add_routes(antar_server_t *s, const antar_route_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const antar_route_t *r = &routes[i];
        if (!r->method || !r->handler || !antar_router_pattern_ok(r->pattern)) {
            antar_logf("error", "route %s %s is malformed and was not added",
                       r->method ? r->method : "?", r->pattern ? r->pattern : "?");
            continue;
        }
        if (s->nroutes == s->cap_routes) {
            size_t cap = s->cap_routes ? s->cap_routes * 2 : 32;
            const antar_route_t **p = realloc(s->routes, cap * sizeof(*p));
            if (!p) {
                antar_logf("error", "out of memory adding routes");
                return;
            }
            s->routes = p;
            s->cap_routes = cap;
        }
        s->routes[s->nroutes++] = r;
    }
}

static bool is_internal_path(const char *pattern)
{
    return strncmp(pattern, "/internal/", 10) == 0 || strcmp(pattern, "/internal") == 0;
}

bool antar_route_on_internal(const antar_route_t *r)
{
    return is_internal_path(r->pattern) || (r->flags & ANTAR_ROUTE_INTERNAL_TOO);
}

bool antar_route_on_public(const antar_route_t *r)
{
    return !is_internal_path(r->pattern);
}

/* The listener's share of the route table, in registration order. 0 or -1 (out of memory). */
static int listener_routes(antar_listener_t *l)
{
    antar_server_t *s = l->srv;
    free(l->routes);
    l->routes = calloc(s->nroutes ? s->nroutes : 1, sizeof(*l->routes));
    l->nroutes = 0;
    if (!l->routes)
        return -1;
    for (size_t i = 0; i < s->nroutes; i++)
        if (l->internal ? antar_route_on_internal(s->routes[i])
                        : antar_route_on_public(s->routes[i]))
            l->routes[l->nroutes++] = s->routes[i];
    return 0;
}

void antar_server_add_health_check(antar_server_t *s, const char *name, antar_health_fn fn)
{
    if (s->nhealth >= ANTAR_MAX_HEALTH) {
        antar_logf("error", "too many health checks, %s not added", name);
        return;
    }
    s->health[s->nhealth].name = name;
    s->health[s->nhealth].fn = fn;
    s->nhealth++;
}

void antar_server_set_auth_hook(antar_server_t *s, antar_auth_hook_fn fn)
{
    s->auth_hook = fn;
}

void antar_server_print_routes(const antar_server_t *s, FILE *out)
{
    for (size_t i = 0; i < s->nroutes; i++)
        fprintf(out, "%s %s\n", s->routes[i]->method, s->routes[i]->pattern);
}

/* ---- the pipeline ---------------------------------------------------------------------- */

static bool request_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

static void run_route(antar_req_t *r)
{
    antar_match_t m;
    const antar_listener_t *l = r->lst;
    /* A request from a listener sees only that listener's share of the routes; one built by a
     * unit test (no listener) sees them all. */
    if (l && l->routes)
        antar_router_match((const antar_route_t *const *)l->routes, l->nroutes, r->method, r->path,
                           &m);
    else
        antar_router_match((const antar_route_t *const *)r->srv->routes, r->srv->nroutes, r->method,
                           r->path, &m);
    if (m.kind == ANTAR_MATCH_NOT_FOUND) {
        antar_http_fail(r, ANTAR_E_NOT_FOUND, NULL, "no route for %s", r->method);
        return;
    }
    if (m.kind == ANTAR_MATCH_BAD_METHOD) {
        antar_http_add_header(r, "Allow", m.allow);
        antar_http_fail(r, ANTAR_E_METHOD_NOT_ALLOWED, NULL, "use %s on this path", m.allow);
        return;
    }
    r->route = m.route;
    for (size_t i = 0; i < m.nparams; i++) {
        r->param_name[i] = req_strndup(r, m.name[i], m.name_len[i]);
        r->param_value[i] = req_strndup(r, m.value[i], m.value_len[i]);
        if (!r->param_name[i] || !r->param_value[i]) {
            antar_http_fail(r, ANTAR_E_NOMEM, NULL, NULL);
            return;
        }
        r->nparams = i + 1;
    }

    if (method_has_body(r->method) && r->raw_len > 0) {
        char msg[256], field[130];
        json_t *body = NULL;
        antar_err_t e = antar_body_parse(antar_req_content_type(r), r->raw, r->raw_len, &body,
                                         &r->is_form, msg, sizeof(msg), field, sizeof(field));
        if (e != ANTAR_OK && !(r->route->flags & ANTAR_ROUTE_RAW)) {
            antar_http_fail(r, e, field[0] ? field : NULL, "%s", msg);
            return;
        }
        /* RAW routes answer bad bodies in their own format; they still get an object here. */
        r->body = body ? body : json_object();
    } else {
        r->body = json_object();
    }
    if (!r->body) {
        antar_http_fail(r, ANTAR_E_NOMEM, NULL, NULL);
        return;
    }

    if (r->route->auth != ANTAR_AUTH_NONE) {
        /* Fail closed: a protected route on a server without a hook must not run. */
        antar_err_t e = r->srv->auth_hook ? r->srv->auth_hook(r, r->route) : ANTAR_E_UNAUTHORIZED;
        if (e != ANTAR_OK) {
            if (!r->replied)
                antar_http_fail(r, e, NULL, NULL);
            return;
        }
        if (r->replied)
            return;
    }

    r->route->handler(r);
    if (!r->replied) {
        antar_logf("error", "handler for %s %s returned without a reply", r->method,
                   r->route->pattern);
        antar_http_fail(r, ANTAR_E_INTERNAL, NULL, NULL);
    }
}

static void log_request(antar_req_t *r, long long micros)
{
    /* The header's trace_id/span_id are the current trace's: make sure it is this request's,
     * whatever the handler did with the thread's trace. */
    antar_trace_set_current(&r->trace);
    /* The path and method can hold anything a client sent: store them only if clean text. */
    const char *path = antar_text_ok(r->path, strlen(r->path), false) ? r->path : "(invalid)";
    const char *method =
        antar_text_ok(r->method, strlen(r->method), false) ? r->method : "(invalid)";
    antar_log_field_t f[] = {
        {"method", ANTAR_LOG_STR, method, 0, 0},
        {"path", ANTAR_LOG_STR, path, 0, 0},
        {"route", ANTAR_LOG_STR, antar_req_route(r), 0, 0},
        {"status", ANTAR_LOG_INT, NULL, r->status, 0},
        {"duration_ms", ANTAR_LOG_MS, NULL, micros, 0},
        {"request_id", ANTAR_LOG_STR, r->request_id, 0, 0},
        {"parent_span_id", ANTAR_LOG_STR, r->trace.parent_id[0] ? r->trace.parent_id : NULL, 0, 0},
        {"error", ANTAR_LOG_STR, r->error != ANTAR_OK ? antar_err_code(r->error) : NULL, 0, 0},
    };
    size_t n = sizeof(f) / sizeof(*f) - (r->error != ANTAR_OK ? 0 : 1);
    antar_log_fields(r->status >= 500 ? "error" : "info", "request", f, n);
}

/* Runs the request on this thread and leaves the reply recorded in r. */
static void dispatch(antar_req_t *r)
{
    /* Every thread of the internal listener's pool is marked: antar_httpc_call refuses any call
     * from it, which keeps blocking calls free of cycles (util.h). */
    antar_thread_set_internal(r->lst && r->lst->internal);
    if (r->srv->thread_end && !pthread_getspecific(thread_key))
        pthread_setspecific(thread_key, r->srv);

    const char *rid = antar_req_header(r, "X-Request-Id");
    if (request_id_ok(rid))
        snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
    else
        antar_random_hex(r->request_id, 16);
    antar_trace_from_header(&r->trace, antar_req_header(r, "traceparent"));
    antar_trace_set_current(&r->trace);
    (void)antar_trace_emitted_take();

    if (r->too_large)
        antar_http_fail(r, ANTAR_E_TOO_LARGE, NULL, "the request body is larger than %zu bytes",
                        r->srv->cfg->body_limit);
    else
        run_route(r);

    long long ns = now_ns() - r->start_ns;
    log_request(r, ns / 1000);
    antar_metrics_request(antar_req_route(r), r->method, r->status, (double)ns / 1e9);
    /* A client's request that made calls is the root of its waterfall: recorded after its
     * calls, with its own span (their parent). Requests that called nobody (most reads, the
     * location pings) are not recorded. Internal listeners never call out. */
    if (antar_trace_emitted_take() > 0 && r->lst && !r->lst->internal) {
        char to[32];
        snprintf(to, sizeof to, "%s-service", r->srv->cfg->service);
        antar_trace_emit(&(antar_span_t){
            .kind = "request",
            .from = "client",
            .to = to,
            .method = antar_text_ok(r->method, strlen(r->method), false) ? r->method : "(invalid)",
            .path = antar_text_ok(r->path, strlen(r->path), false) ? r->path : "(invalid)",
            .route = antar_req_route(r),
            .status = r->status,
            .outcome = r->status >= 500 ? "error" : "ok",
            .start_ms = antar_now_ms() - ns / 1000000,
            .duration_us = ns / 1000,
            .trace_id = r->trace.trace_id,
            .span_id = r->trace.span_id,
            .parent_span_id = r->trace.parent_id});
        (void)antar_trace_emitted_take();
    }
    antar_trace_set_current(NULL);
}

/* A streamed reply's callbacks, in their own allocation: MHD may report the request completed
 * (on_completed frees the request) before it releases the response. */
typedef struct {
    antar_stream_read_fn read;
    void *cls;
    void (*free_fn)(void *cls);
} stream_holder_t;

/* MHD's content reader for a streamed reply: the position is not needed (the stream is never
 * re-read from an earlier point). */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_holder_t *h = cls;
    (void)pos;
    return (ssize_t)h->read(h->cls, buf, max);
}

static void stream_release(void *cls)
{
    stream_holder_t *h = cls;
    if (h->free_fn)
        h->free_fn(h->cls);
    free(h);
}

void antar_req_set_stream(antar_req_t *r, int status, const char *content_type,
                          antar_stream_read_fn read, void *cls, void (*free_fn)(void *cls))
{
    if (r->replied) {
        antar_logf("error", "second reply for %s %s dropped", r->method, r->path);
        if (free_fn)
            free_fn(cls);
        return;
    }
    r->replied = true;
    r->status = status;
    r->envelope = false;
    snprintf(r->resp_type, sizeof(r->resp_type), "%s", content_type);
    r->stream_read = read;
    r->stream_cls = cls;
    r->stream_free = free_fn;
}

struct MHD_Connection *antar_req_connection(antar_req_t *r)
{
    return r->conn;
}

void antar_server_set_stop_hook(antar_server_t *s, void (*fn)(void))
{
    s->stop_hook = fn;
}

static enum MHD_Result queue_reply(antar_req_t *r)
{
    struct MHD_Response *resp;
    if (r->stream_read) {
        stream_holder_t *h = malloc(sizeof(*h));
        if (!h) {
            r->stream_free(r->stream_cls);
            r->stream_free = NULL;
            r->stream_read = NULL;
            return MHD_NO;
        }
        *h = (stream_holder_t){r->stream_read, r->stream_cls, r->stream_free};
        r->stream_free = NULL; /* the holder owns the stream now */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, h,
                                                 stream_release);
        if (!resp) {
            stream_release(h);
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp_body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            return MHD_NO;
        r->resp_body = NULL; /* MHD frees it now */
    }
    char tp[56];
    snprintf(tp, sizeof(tp), "00-%s-%s-%s", r->trace.trace_id, r->trace.span_id, r->trace.flags);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "traceparent", tp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->envelope)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    else if (r->stream_read)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    for (size_t i = 0; i < r->nhdrs; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    /* While draining, every answer ends its connection: a keep-alive client (the edge's pool
     * included) then opens a new one, which the quiesced listener refuses before any byte of the
     * request is read, instead of sending a request on a connection about to be closed. */
    if (r->too_large || atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    antar_listener_t *l = cls;
    antar_server_t *s = l->srv;
    antar_req_t *r = *con_cls;

    if (!r) {
        r = req_new(s, method, url);
        if (!r)
            return MHD_NO;
        atomic_fetch_add(&s->inflight, 1);
        r->lst = l;
        r->conn = conn;
        *con_cls = r;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || end == cl || n > s->cfg->body_limit)
                r->too_large = true;
            else
                r->content_length = (size_t)n;
        }
        if (r->too_large) {
            /* Answer before reading the body: MHD then closes the connection instead of
             * reading it, and skips "100 Continue". */
            dispatch(r);
            return queue_reply(r);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->replied)
            return MHD_YES;
        if (r->too_large || n > s->cfg->body_limit - r->raw_len) {
            /* Chunked or lying about its length: drop the bytes, answer 413 at the end. */
            r->too_large = true;
            r->discarded += n;
            return r->discarded > DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        if (r->raw_len + n + 1 > r->raw_cap) {
            size_t cap = r->raw_cap ? r->raw_cap : 1024;
            while (cap < r->raw_len + n + 1)
                cap *= 2;
            if (cap > s->cfg->body_limit + 1)
                cap = s->cfg->body_limit + 1;
            char *p = realloc(r->raw, cap);
            if (!p)
                return MHD_NO;
            r->raw = p;
            r->raw_cap = cap;
        }
        memcpy(r->raw + r->raw_len, upload_data, n);
        r->raw_len += n;
        r->raw[r->raw_len] = '\0'; /* RAW handlers may treat it as a string */
        return MHD_YES;
    }

    if (r->replied)
        return MHD_YES; /* the early 413 is already queued */
    dispatch(r);
    return queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    antar_listener_t *l = cls;
    (void)conn;
    (void)toe;
    if (*con_cls)
        atomic_fetch_sub(&l->srv->inflight, 1);
    antar_req_free(*con_cls);
    *con_cls = NULL;
}

/* MHD decodes %00 like any other escape, and the NUL then cuts the path short: a request for
 * "/docs/swagger-ui.css%00.png" would be served swagger-ui.css, and "/orders/1%00/cancel" would
 * be routed as "/orders/1". Keeping "%00" as its three literal characters instead makes such a
 * path match nothing and such an id no id (404), in paths and query arguments alike. Everything
 * else is decoded exactly as MHD's own unescaper does. */
size_t antar_http_unescape(char *s)
{
    size_t out = 0;
    char *p = s;
    for (;;) {
        char *z = strstr(p, "%00");
        if (z)
            *z = '\0';
        /* Decoding only shrinks, so the output never overtakes the input. */
        size_t n = MHD_http_unescape(p);
        memmove(s + out, p, n);
        out += n;
        if (!z)
            break;
        memcpy(s + out, "%00", 3);
        out += 3;
        p = z + 3;
    }
    s[out] = '\0';
    return out;
}

static size_t unescape_keep_nul(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return antar_http_unescape(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* A client that went away mid-response is how an event stream usually ends: not a warning. */
    antar_logf(strstr(msg, "closed by remote peer") ? "info" : "warn", "mhd: %s", msg);
}

static int start_listener(antar_listener_t *l, int port, int threads)
{
    const antar_config_t *cfg = l->srv->cfg;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    /* ITC lets MHD_quiesce_daemon stop a thread pool's accepting at SIGTERM. */
    /* Suspend/resume: an event stream with nothing to send is taken out of the event loop
     * instead of holding a pool thread (lib/events.c). */
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(cfg->host, NULL, &hints, &res) != 0 || !res) {
            antar_logf("error", "cannot resolve listen address %s", cfg->host);
            return -1;
        }
        memcpy(a4, res->ai_addr, sizeof(*a4));
        a4->sin_port = htons((uint16_t)port);
        freeaddrinfo(res);
    }
    if (listener_routes(l) != 0) {
        antar_logf("error", "out of memory building the route table");
        return -1;
    }

    unsigned conn_limit = CONNECTION_LIMIT;
    if (!l->internal)
        conn_limit =
            (unsigned)antar_config_long("ANTAR_CONNECTION_LIMIT", CONNECTION_LIMIT, 16, 1000000);
    /* The logger goes first so that MHD reports option errors through it too. */
    l->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(threads > 0 ? threads : 1), MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, conn_limit, MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        1u, MHD_OPTION_END);
    if (!l->daemon) {
        antar_logf("error", "cannot listen on %s:%d (%s)", cfg->host, port, strerror(errno));
        return -1;
    }
    antar_logf("info", "listening on %s:%d with %d threads (%s routes)", cfg->host, port, threads,
               l->internal ? "internal" : "public");
    return 0;
}

int antar_server_start(antar_server_t *s)
{
    const antar_config_t *cfg = s->cfg;
    free(s->api_doc);
    s->api_doc = antar_read_file(cfg->api_file, STATIC_FILE_MAX, &s->api_len);
    if (!s->api_doc)
        antar_logf("warn", "OpenAPI file %s not readable; /openapi.json will answer 503",
                   cfg->api_file);
    atomic_store(&s->draining, 0);
    /* The internal listener first: peers may call it as soon as the public one is seen up. */
    if (start_listener(&s->internal, cfg->internal_port, cfg->internal_threads) != 0)
        return -1;
    if (start_listener(&s->pub, cfg->port, cfg->threads) != 0) {
        antar_server_stop(s);
        return -1;
    }
    return 0;
}

void antar_server_set_draining(antar_server_t *s)
{
    if (s)
        atomic_store(&s->draining, 1);
}

bool antar_server_draining(const antar_server_t *s)
{
    return s && atomic_load(&((antar_server_t *)s)->draining);
}

static void quiesce(antar_listener_t *l)
{
    if (!l->daemon)
        return;
    /* The listening socket is ours to close once MHD lets go of it: from then on a connect is
     * refused by the kernel, before the service has read anything. */
    MHD_socket fd = MHD_quiesce_daemon(l->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    else
        antar_logf("warn", "could not quiesce the %s listener",
                   l->internal ? "internal" : "public");
}

void antar_server_quiesce(antar_server_t *s)
{
    if (!s)
        return;
    quiesce(&s->pub);
    quiesce(&s->internal);
}

int antar_server_wait_idle(antar_server_t *s, long long deadline_ms)
{
    if (!s)
        return 0;
    /* Idle must last a moment: a keep-alive client may be sending its next request on a
     * connection that has not seen our Connection: close yet. */
    long long idle_since = -1;
    for (;;) {
        long long now = antar_mono_ms();
        if (atomic_load(&s->inflight) <= 0) {
            if (idle_since < 0)
                idle_since = now;
            if (now - idle_since >= 50)
                return 0;
        } else {
            idle_since = -1;
        }
        if (now >= deadline_ms)
            return -1;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

long antar_server_inflight(const antar_server_t *s)
{
    return s ? atomic_load(&((antar_server_t *)s)->inflight) : 0;
}

void antar_server_stop(antar_server_t *s)
{
    if (!s)
        return;
    if (s->stop_hook && (s->pub.daemon || s->internal.daemon))
        s->stop_hook();
    if (s->pub.daemon) {
        MHD_stop_daemon(s->pub.daemon);
        s->pub.daemon = NULL;
    }
    if (s->internal.daemon) {
        MHD_stop_daemon(s->internal.daemon);
        s->internal.daemon = NULL;
    }
}

void antar_server_free(antar_server_t *s)
{
    if (!s)
        return;
    antar_server_stop(s);
    free(s->routes);
    free(s->pub.routes);
    free(s->internal.routes);
    free(s->api_doc);
    free(s);
}

/* ---- built-in routes ------------------------------------------------------------------- */

static void h_health(antar_req_t *req)
{
    antar_server_t *s = req->srv;
    json_t *checks = json_object();
    const char *failing = NULL;
    char summary[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < s->nhealth; i++) {
        bool ok = s->health[i].fn() == ANTAR_OK;
        if (!ok && !failing)
            failing = s->health[i].name;
        json_object_set_new(checks, s->health[i].name, json_string(ok ? "ok" : "unavailable"));
        if (used < sizeof(summary))
            used +=
                (size_t)snprintf(summary + used, sizeof(summary) - used, "%s%s: %s",
                                 used ? ", " : "", s->health[i].name, ok ? "ok" : "unavailable");
    }
    if (failing) {
        json_decref(checks);
        antar_http_fail(req, ANTAR_E_UNAVAILABLE, failing, "dependency unavailable (%s)", summary);
        return;
    }
    json_t *res = json_object();
    json_object_set_new(res, "status", json_string("ok"));
    json_object_set_new(res, "service", json_string(s->cfg->service));
    json_object_set_new(res, "checks", checks);
    antar_http_reply(req, 200, res);
}

static void h_health_live(antar_req_t *req)
{
    json_t *res = json_object();
    json_object_set_new(res, "status", json_string("live"));
    json_object_set_new(res, "service", json_string(req->srv->cfg->service));
    antar_http_reply(req, 200, res);
}

/* Ready: not draining, and every dependency of /health answers. Only the service's own stores
 * count, never its peers: a peer's outage must not take this service out of the edge too (its
 * routes that need no peer still work, and the others fail fast with their own 503). */
static void h_health_ready(antar_req_t *req)
{
    antar_server_t *s = req->srv;
    if (atomic_load(&s->draining)) {
        antar_http_fail(req, ANTAR_E_UNAVAILABLE, NULL, "draining: the service is shutting down");
        return;
    }
    json_t *checks = json_object();
    for (size_t i = 0; i < s->nhealth; i++) {
        if (s->health[i].fn() != ANTAR_OK) {
            json_decref(checks);
            antar_http_fail(req, ANTAR_E_UNAVAILABLE, s->health[i].name,
                            "not ready: %s unavailable", s->health[i].name);
            return;
        }
        json_object_set_new(checks, s->health[i].name, json_string("ok"));
    }
    json_t *res = json_object();
    json_object_set_new(res, "status", json_string("ready"));
    json_object_set_new(res, "service", json_string(s->cfg->service));
    json_object_set_new(res, "checks", checks);
    antar_http_reply(req, 200, res);
}

static void h_metrics(antar_req_t *req)
{
    char *text = antar_metrics_render();
    if (!text) {
        antar_http_fail(req, ANTAR_E_NOMEM, NULL, NULL);
        return;
    }
    antar_req_set_response(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                           false);
}

static void h_openapi(antar_req_t *req)
{
    if (!req->srv->api_doc) {
        antar_http_fail(req, ANTAR_E_UNAVAILABLE, NULL, "the OpenAPI document is not available");
        return;
    }
    antar_http_reply_raw(req, 200, "application/json; charset=utf-8", req->srv->api_doc,
                         req->srv->api_len);
}

/* Swagger UI from our own /docs/ files; validatorUrl null keeps it from calling out. */
static const char docs_html[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>Antar API</title>\n"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n</head>\n<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/docs/swagger-ui-standalone-preset.js\"></script>\n"
    "<script>\nwindow.onload = function () {\n  window.ui = SwaggerUIBundle({\n"
    "    url: \"/openapi.json\",\n    dom_id: \"#swagger-ui\",\n    validatorUrl: null,\n"
    "    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
    "    layout: \"StandaloneLayout\"\n  });\n};\n</script>\n</body>\n</html>\n";

static void h_docs(antar_req_t *req)
{
    antar_http_reply_raw(req, 200, "text/html; charset=utf-8", docs_html, sizeof(docs_html) - 1);
}

static const char *docs_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".css", "text/css; charset=utf-8"},
        {".js", "application/javascript; charset=utf-8"},
        {".map", "application/json; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".html", "text/html; charset=utf-8"},
        {".png", "image/png"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(*types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static void h_docs_file(antar_req_t *req)
{
    const char *name = antar_req_param(req, "file");
    size_t n = name ? strlen(name) : 0;
    /* Only plain names of [a-z0-9._-] that start with a letter or digit, so nothing can climb
     * out of docs_dir or reach a dotfile; and only types we can label correctly. */
    const char *type = name ? docs_type(name) : NULL;
    if (n == 0 || n > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
        name[0] == '.' || name[0] == '-' || strstr(name, "..") || !type) {
        antar_http_fail(req, ANTAR_E_NOT_FOUND, NULL, "no such file");
        return;
    }
    char path[1024];
    if (snprintf(path, sizeof(path), "%s/%s", req->srv->cfg->docs_dir, name) >= (int)sizeof(path)) {
        antar_http_fail(req, ANTAR_E_NOT_FOUND, NULL, "no such file");
        return;
    }
    size_t len = 0;
    char *body = antar_read_file(path, STATIC_FILE_MAX, &len);
    if (!body) {
        antar_http_fail(req, ANTAR_E_NOT_FOUND, NULL, "no such file");
        return;
    }
    antar_http_add_header(req, "Cache-Control", "public, max-age=3600");
    antar_req_set_response(req, 200, type, body, len, false);
}
