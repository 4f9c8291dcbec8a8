/* httpc.c — service-to-service HTTP on libcurl.
 *
 * One easy handle per thread, reset (not recreated) before each call: curl_easy_reset keeps
 * the handle's connection cache, so calls to the same service reuse one keep-alive connection.
 * Every call has hard connect/total timeouts, a capped response body, a traceparent that is a
 * child of the thread's trace, one "call" log line and one metrics sample.
 */
#include "antar/httpc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

#define RESPONSE_MAX_BYTES (1024 * 1024)
#define TOKEN_MAX 4096
#define URL_MAX 2048

static const antar_config_t *g_cfg;
static antar_token_provider_fn g_token_fn;
static void (*g_token_reset_fn)(void);
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;

static void handle_destroy(void *p)
{
    if (p)
        curl_easy_cleanup(p);
}

static void global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return;
    g_ok = pthread_key_create(&g_key, handle_destroy) == 0;
}

int antar_httpc_init(const antar_config_t *cfg)
{
    if (!cfg)
        return -1;
    g_cfg = cfg;
    pthread_once(&g_once, global_init);
    return g_ok ? 0 : -1;
}

void antar_httpc_set_token_reset(void (*fn)(void))
{
    g_token_reset_fn = fn;
}

void antar_httpc_set_token_provider(antar_token_provider_fn fn)
{
    g_token_fn = fn;
}

const char *antar_httpc_target_name(antar_svc_t target)
{
    switch (target) {
    case ANTAR_SVC_USER:
        return "user-service";
    case ANTAR_SVC_DRIVER:
        return "driver-service";
    case ANTAR_SVC_CORE:
        return "core-service";
    }
    return "unknown";
}

static const char *target_short(antar_svc_t target)
{
    switch (target) {
    case ANTAR_SVC_USER:
        return "user";
    case ANTAR_SVC_DRIVER:
        return "driver";
    case ANTAR_SVC_CORE:
        return "core";
    }
    return "";
}

static const char *target_base(antar_svc_t target)
{
    switch (target) {
    case ANTAR_SVC_USER:
        return g_cfg->user_url;
    case ANTAR_SVC_DRIVER:
        return g_cfg->driver_url;
    case ANTAR_SVC_CORE:
        return g_cfg->core_url;
    }
    return NULL;
}

static CURL *handle_get(void)
{
    if (!g_ok)
        return NULL;
    CURL *h = pthread_getspecific(g_key);
    if (!h) {
        h = curl_easy_init();
        if (h && pthread_setspecific(g_key, h) != 0) {
            curl_easy_cleanup(h);
            h = NULL;
        }
    } else {
        curl_easy_reset(h);
    }
    return h;
}

void antar_httpc_thread_end(void)
{
    if (!g_ok)
        return;
    CURL *h = pthread_getspecific(g_key);
    if (h) {
        pthread_setspecific(g_key, NULL);
        curl_easy_cleanup(h);
    }
}

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool too_big;
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > RESPONSE_MAX_BYTES) {
        b->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

typedef struct {
    const char *target; /* for the log and metrics */
    const char *method;
    const char *url;
    const char *log_path; /* what the log shows: the path for services, the URL otherwise */
    struct curl_slist *headers;
    const char *body;
    const antar_trace_t *trace; /* parent of the call */
    const char *child_span;
} call_t;

static antar_err_t perform(const call_t *c, antar_httpc_res_t *res)
{
    antar_err_t err = ANTAR_OK;
    const char *outcome = "ok";
    buf_t buf = {0};
    long long t0 = antar_mono_ms();
    CURLcode cc = CURLE_OK;

    CURL *h = handle_get();
    if (!h) {
        err = ANTAR_E_NOMEM;
        outcome = "error";
        goto done;
    }
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, g_cfg->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, g_cfg->timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RESPONSE_MAX_BYTES);
    if (strcmp(c->method, "GET") == 0 && !c->body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
        if (c->body || strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0 ||
            strcmp(c->method, "PATCH") == 0) {
            const char *b = c->body ? c->body : "";
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
        }
    }

    cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
        if (buf.len > 0) {
            json_error_t jerr;
            res->body = json_loadb(buf.data, buf.len, JSON_DECODE_ANY, &jerr);
        }
        outcome = res->status >= 500 ? "error" : "ok";
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        err = ANTAR_E_TIMEOUT;
        outcome = "timeout";
    } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
               cc == CURLE_COULDNT_RESOLVE_PROXY) {
        err = ANTAR_E_UNAVAILABLE;
        outcome = "unreachable";
    } else {
        /* Reset mid-response, empty reply, oversized body: the peer misbehaved. */
        err = ANTAR_E_UPSTREAM;
        outcome = "error";
    }

done:;
    long long dur = antar_mono_ms() - t0;
    json_t *f = json_object();
    if (f) {
        json_object_set_new(f, "target", json_string(c->target));
        json_object_set_new(f, "method", json_string(c->method));
        json_object_set_new(f, "path", json_string(c->log_path));
        json_object_set_new(f, "status", json_integer(res->status));
        json_object_set_new(f, "outcome", json_string(outcome));
        json_object_set_new(f, "duration_ms", json_integer(dur));
        if (c->trace) {
            json_object_set_new(f, "trace_id", json_string(c->trace->trace_id));
            json_object_set_new(f, "span_id", json_string(c->child_span));
            json_object_set_new(f, "parent_span_id", json_string(c->trace->span_id));
        }
        if (cc != CURLE_OK)
            json_object_set_new(
                f, "error",
                json_string(buf.too_big ? "response too large" : curl_easy_strerror(cc)));
    }
    antar_log_json(err == ANTAR_OK && res->status < 500 ? "info" : "warn", "call", f);
    antar_metrics_call(c->target, outcome, (double)dur / 1000.0);
    free(buf.data);
    return err;
}

static void res_init(antar_httpc_res_t *res)
{
    res->status = 0;
    res->body = NULL;
}

/* Appends "name: value" to the list; NULL on out of memory (list freed). */
static struct curl_slist *add_header(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n)
        curl_slist_free_all(l);
    return n;
}

static antar_err_t call_once(antar_svc_t target, const char *method, const char *path, json_t *body,
                             const char *const *headers, antar_httpc_res_t *res)
{
    antar_httpc_res_t dummy;
    if (!res)
        res = &dummy;
    res_init(res);
    if (!g_cfg || !g_ok || !method || !path || path[0] != '/')
        return ANTAR_E_INTERNAL;
    const char *base = target_base(target);
    if (!base)
        return ANTAR_E_INTERNAL;

    antar_err_t err = ANTAR_OK;
    struct curl_slist *hl = NULL;
    char *json = NULL;
    char url[URL_MAX];
    /* The token buffer is static per thread so a 4 KiB array does not sit on small worker
     * stacks; it is wiped after use. */
    static _Thread_local char token[TOKEN_MAX];
    char auth[TOKEN_MAX + 32];

    if (!g_token_fn || g_token_fn(token, sizeof(token)) != 0 || token[0] == '\0') {
        antar_log_json("warn", "call",
                       json_pack("{s:s,s:s,s:s,s:i,s:s,s:i}", "target",
                                 antar_httpc_target_name(target), "method", method, "path", path,
                                 "status", 0, "outcome", "no_token", "duration_ms", 0));
        return ANTAR_E_UNAUTHORIZED;
    }
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)bl, base, path) >= sizeof(url)) {
        err = ANTAR_E_INTERNAL;
        goto out;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);

    antar_trace_t fresh;
    const antar_trace_t *tr = antar_trace_current();
    if (!tr) {
        antar_trace_new(&fresh);
        tr = &fresh;
    }
    char tp[56], child[17], tp_line[80];
    antar_trace_child_header(tr, tp, child);
    snprintf(tp_line, sizeof(tp_line), "traceparent: %s", tp);

    if (!(hl = add_header(hl, "Content-Type: application/json")) ||
        !(hl = add_header(hl, "Accept: application/json")) || !(hl = add_header(hl, "Expect:")) ||
        !(hl = add_header(hl, auth)) || !(hl = add_header(hl, tp_line))) {
        err = ANTAR_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; headers && headers[i]; i++) {
        /* A header value may come from a client (an Idempotency-Key): no line breaks. */
        if (strpbrk(headers[i], "\r\n") || !strchr(headers[i], ':')) {
            antar_logf("error", "antar_httpc_call: malformed extra header");
            err = ANTAR_E_BAD_REQUEST;
            goto out;
        }
        if (!(hl = add_header(hl, headers[i]))) {
            err = ANTAR_E_NOMEM;
            goto out;
        }
    }
    if (body) {
        json = antar_json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json) {
            err = ANTAR_E_NOMEM;
            goto out;
        }
    }
    call_t c = {.target = antar_httpc_target_name(target),
                .method = method,
                .url = url,
                .log_path = path,
                .headers = hl,
                .body = json,
                .trace = tr,
                .child_span = child};
    err = perform(&c, res);
out:
    explicit_bzero(token, sizeof(token));
    explicit_bzero(auth, sizeof(auth));
    curl_slist_free_all(hl);
    free(json);
    if (res == &dummy)
        antar_httpc_res_clean(res);
    return err;
}

/* Which configured service a full URL points at, for the log; "external" otherwise. */
static const char *url_target(const char *url)
{
    const char *names[] = {"user-service", "driver-service", "core-service"};
    const char *bases[] = {g_cfg->user_url, g_cfg->driver_url, g_cfg->core_url};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(bases[i]);
        if (n && strncmp(url, bases[i], n) == 0)
            return names[i];
    }
    return "external";
}

antar_err_t antar_httpc_request(const char *method, const char *url, const char *content_type,
                                const char *body, const char *authorization, antar_httpc_res_t *res)
{
    antar_httpc_res_t dummy;
    if (!res)
        res = &dummy;
    res_init(res);
    if (!g_cfg || !g_ok || !method || !url)
        return ANTAR_E_INTERNAL;
    antar_err_t err = ANTAR_OK;
    struct curl_slist *hl = NULL;
    char ct[160], auth[1024], tp_line[80], tp[56], child[17];

    antar_trace_t fresh;
    const antar_trace_t *tr = antar_trace_current();
    if (!tr) {
        antar_trace_new(&fresh);
        tr = &fresh;
    }
    antar_trace_child_header(tr, tp, child);
    snprintf(tp_line, sizeof(tp_line), "traceparent: %s", tp);
    if (!(hl = add_header(hl, "Accept: application/json")) || !(hl = add_header(hl, "Expect:")) ||
        !(hl = add_header(hl, tp_line))) {
        err = ANTAR_E_NOMEM;
        goto out;
    }
    if (content_type) {
        if ((size_t)snprintf(ct, sizeof(ct), "Content-Type: %s", content_type) >= sizeof(ct)) {
            err = ANTAR_E_INTERNAL;
            goto out;
        }
        if (!(hl = add_header(hl, ct))) {
            err = ANTAR_E_NOMEM;
            goto out;
        }
    }
    if (authorization) {
        if ((size_t)snprintf(auth, sizeof(auth), "Authorization: %s", authorization) >=
            sizeof(auth)) {
            err = ANTAR_E_INTERNAL;
            goto out;
        }
        if (!(hl = add_header(hl, auth))) {
            err = ANTAR_E_NOMEM;
            goto out;
        }
    }
    /* Log the URL without its query string (it could carry a code or a secret). */
    char logpath[512];
    size_t ql = strcspn(url, "?");
    snprintf(logpath, sizeof(logpath), "%.*s", (int)(ql < 500 ? ql : 500), url);
    call_t c = {.target = url_target(url),
                .method = method,
                .url = url,
                .log_path = logpath,
                .headers = hl,
                .body = body,
                .trace = tr,
                .child_span = child};
    err = perform(&c, res);
out:
    explicit_bzero(auth, sizeof(auth));
    curl_slist_free_all(hl);
    if (res == &dummy)
        antar_httpc_res_clean(res);
    return err;
}

json_t *antar_httpc_result(const antar_httpc_res_t *res)
{
    if (!res || !json_is_object(res->body))
        return NULL;
    json_t *r = json_object_get(res->body, "result");
    return json_is_null(r) ? NULL : r;
}

void antar_httpc_res_clean(antar_httpc_res_t *res)
{
    if (!res)
        return;
    json_decref(res->body);
    res->body = NULL;
    res->status = 0;
}

antar_err_t antar_httpc_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                             const char *const *headers, antar_httpc_res_t *res)
{
    antar_httpc_res_t local;
    if (!res)
        res = &local;
    int rank = antar_thread_call_rank();
    if (rank > 0 && antar_internal_rank(target_short(target)) >= rank) {
        /* An internal-listener thread waiting on a pool that may wait on it is how a cycle of
         * blocking calls (and a deadlock until the timeouts) comes back: refuse loudly instead,
         * so the bug shows on the first test that takes that path rather than under load. */
        res_init(res);
        antar_logf("error",
                   "refused %s %s to %s from an internal-listener thread: a synchronous call "
                   "there could close a cycle of blocking calls",
                   method ? method : "?", path ? path : "?", antar_httpc_target_name(target));
        antar_metrics_count("antar_calls_refused_total", "target", antar_httpc_target_name(target));
        return ANTAR_E_INTERNAL;
    }
    antar_err_t err = call_once(target, method, path, body, headers, res);
    /* A 401 from a peer means our cached service token is no longer accepted (core rotated its
     * key, or the token was revoked): drop it and try once more with a fresh one, so a service
     * recovers by itself instead of failing every call until the token would have expired. */
    if (err == ANTAR_OK && res->status == 401 && g_token_reset_fn) {
        g_token_reset_fn();
        antar_httpc_res_clean(res);
        err = call_once(target, method, path, body, headers, res);
    }
    if (res == &local)
        antar_httpc_res_clean(res);
    return err;
}
