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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

#define RESPONSE_MAX_BYTES (1024 * 1024)
#define TOKEN_MAX 4096
#define URL_MAX 4096

static const antar_config_t *g_cfg;
static antar_token_provider_fn g_token_fn;
static void (*g_token_reset_fn)(void);
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;

static void breaker_configure(void); /* circuit breaker section below */
#define PEERS_MAX 16
#define BASE_MAX 256
static pthread_once_t g_peers_once = PTHREAD_ONCE_INIT;
static void peers_init_once(void);
static const char *cfg_list(antar_svc_t t);
static int parse_list(const char *list, char out[][BASE_MAX]);

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
    breaker_configure();
    pthread_once(&g_once, global_init);
    pthread_once(&g_peers_once, peers_init_once);
    /* A malformed peer list or peers file stops the start, rather than every call later. */
    for (int t = 0; t < 3; t++) {
        char bases[PEERS_MAX][BASE_MAX];
        if (parse_list(cfg_list((antar_svc_t)t), bases) < 0) {
            antar_logf("error", "ANTAR_%s_URL is not a comma-separated list of http(s) URLs",
                       t == 0   ? "USER"
                       : t == 1 ? "DRIVER"
                                : "CORE");
            return -1;
        }
    }
    if (cfg->peers_file[0] && antar_httpc_reload_peers() != 0)
        return -1;
    if (g_ok)
        antar_metrics_add_source(antar_httpc_circuit_metrics);
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
    long timeout_ms; /* total timeout of this attempt; 0 = the configured one */
} call_t;

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static antar_err_t perform(const call_t *c, antar_httpc_res_t *res)
{
    antar_err_t err = ANTAR_OK;
    const char *outcome = "ok";
    buf_t buf = {0};
    long long t0 = antar_mono_ms(), wall0 = antar_now_ms(), t0_us = mono_us();
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
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : g_cfg->timeout_ms);
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
    if (c->trace) {
        char from[32];
        snprintf(from, sizeof from, "%s-service", g_cfg->service);
        antar_trace_emit(&(antar_span_t){.kind = "call",
                                         .from = from,
                                         .to = c->target,
                                         .method = c->method,
                                         .path = c->log_path,
                                         .status = res->status,
                                         .outcome = outcome,
                                         .start_ms = wall0,
                                         .duration_us = mono_us() - t0_us,
                                         .trace_id = c->trace->trace_id,
                                         .span_id = c->child_span,
                                         .parent_span_id = c->trace->span_id});
    }
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

static antar_err_t call_once(antar_svc_t target, const char *base, const char *method,
                             const char *path, json_t *body, const char *const *headers,
                             long timeout_ms, antar_httpc_res_t *res)
{
    antar_httpc_res_t dummy;
    if (!res)
        res = &dummy;
    res_init(res);
    if (!g_cfg || !g_ok || !method || !path || path[0] != '/' || !base)
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
                .child_span = child,
                .timeout_ms = timeout_ms};
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

static const char *url_target(const char *url); /* peers section below */

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

/* The first error of the table with HTTP status st (BAD_REQUEST for a 4xx it lacks). */
static antar_err_t err_of_status(long st)
{
    for (int e = 1; e < ANTAR_E__COUNT; e++)
        if (antar_err_status((antar_err_t)e) == st)
            return (antar_err_t)e;
    return ANTAR_E_BAD_REQUEST;
}

antar_err_t antar_httpc_outcome(antar_err_t call_err, const antar_httpc_res_t *res,
                                antar_outcome_t *o)
{
    antar_err_t err;
    json_t *e = NULL;
    if (call_err != ANTAR_OK) {
        err = call_err == ANTAR_E_UNAUTHORIZED ? ANTAR_E_UNAVAILABLE : call_err;
    } else if (res->status >= 200 && res->status < 300) {
        return ANTAR_OK;
    } else if (res->status >= 400 && res->status < 500) {
        e = json_object_get(res->body, "error");
        err = antar_err_from_code(json_string_value(json_object_get(e, "code")));
        if (err == ANTAR_E__COUNT || antar_err_status(err) != res->status)
            err = err_of_status(res->status);
    } else {
        err = res->status == 503   ? ANTAR_E_UNAVAILABLE
              : res->status == 504 ? ANTAR_E_TIMEOUT
                                   : ANTAR_E_UPSTREAM;
    }
    const char *field = json_string_value(json_object_get(e, "field"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg)
        antar_outcome_fail(o, err, field, "%s", msg);
    else
        antar_outcome_fail(o, err, field, NULL);
    return err;
}

void antar_httpc_res_clean(antar_httpc_res_t *res)
{
    if (!res)
        return;
    json_decref(res->body);
    res->body = NULL;
    res->status = 0;
}

/* One attempt, with the service-token refresh: a 401 from a peer means our cached service token
 * is no longer accepted (core rotated its key, or the token was revoked): drop it and try once
 * more with a fresh one, so a service recovers by itself instead of failing every call until the
 * token would have expired. */
static antar_err_t call_refreshing(antar_svc_t target, const char *base, const char *method,
                                   const char *path, json_t *body, const char *const *headers,
                                   long timeout_ms, antar_httpc_res_t *res)
{
    antar_err_t err = call_once(target, base, method, path, body, headers, timeout_ms, res);
    /* A 401 about the caller's credentials (a wrong password checked for a login) is an answer,
     * not a stale service token: asking again would only cost the peer another hash. */
    const char *code =
        json_string_value(json_object_get(json_object_get(res->body, "error"), "code"));
    if (err == ANTAR_OK && res->status == 401 && g_token_reset_fn &&
        !(code && !strcmp(code, "invalid_credentials"))) {
        g_token_reset_fn();
        antar_httpc_res_clean(res);
        err = call_once(target, base, method, path, body, headers, timeout_ms, res);
    }
    return err;
}

/* ---- peers, circuit breakers and retries (one breaker per peer instance) -----------------
 *
 * Why: a peer that is down or hung would otherwise cost every request that needs it a connect
 * or total timeout, tying up this service's threads (and its callers' threads behind them).
 * After ANTAR_CB_FAILURES consecutive failed attempts the circuit opens and calls fail at once
 * with ANTAR_E_UNAVAILABLE (the route answers the 503 envelope naming the peer, with
 * Retry-After). After a cooldown it goes half-open: exactly one call, the probe, is let
 * through; its success closes the circuit, its failure re-opens it with a doubled cooldown
 * (bounded by ANTAR_CB_COOLDOWN_MAX_MS, jittered so that instances do not probe in step).
 * When every failure of the current run (since the last success) was cheap — a refused
 * connection, or one that broke within CHEAP_FAILURE_MS: the peer's process is not there,
 * typically being restarted — the cooldown is ANTAR_CB_REFUSED_COOLDOWN_MS (100 ms) and does not
 * grow: such a probe costs well under a millisecond and nobody waits on it, while a long
 * cooldown would keep failing callers for up to a second after the peer is back. One costly
 * failure (a timeout, a slow broken answer, the peer's own 502-504) brings the growing cooldown
 * back until the run ends.
 *
 * What counts as a failure: no connection (refused, unresolvable), a timeout, a broken answer
 * (reset, empty reply), and the peer's own 502/503/504 ("I cannot serve now"). A 500 does not
 * count: it is one request's bug, deterministic for that request, and must not let one
 * poisoned request open the circuit for everyone; 4xx are answers. Calls that never left
 * (no service token, a malformed header) count neither way.
 *
 * Retries (jittered exponential backoff) only where a second attempt cannot apply a change
 * twice: a refused connection (nothing was sent), or any transport failure / 502-504 of a call
 * the callee treats as idempotent, i.e. a GET or a call carrying an Idempotency-Key. Never a
 * POST/PUT/DELETE without a key (a timeout there is ambiguous: it may have been applied). Every
 * retry must fit in ANTAR_HTTPC_RETRY_BUDGET_MS from the start of the call, and its timeout is
 * cut to what is left, so a retried call never outlasts the caller's own deadline. Each attempt
 * passes through the breaker, so an opening circuit ends the retries too.
 *
 * Several instances of a peer (a comma-separated ANTAR_<PEER>_URL, or ANTAR_PEERS_FILE): each
 * instance has its own breaker, so one that fails or times out is ejected (its circuit opens)
 * and probed back after the cooldown while its siblings take the calls. Calls go round-robin
 * over the instances whose breaker admits them; a retry goes to another instance when there is
 * one, and a refused connection (nothing was sent) is retried there at once, without a pause.
 * The peer as a whole is "open" only when no instance admits a call. The peers file is re-read
 * on SIGHUP (antar_httpc_reload_peers); an instance that stays keeps its breaker.
 */

typedef enum { TK_DENIED, TK_NORMAL, TK_PROBE } ticket_t;
/* V_CHEAP: a failure that cost nothing — the connection was refused, or broke at once (the
 * peer's process died under the call). */
typedef enum { V_SUCCESS, V_FAILURE, V_CHEAP, V_NEUTRAL } verdict_t;

/* One instance of a peer: its base URL and its breaker. Slots live for the whole process (a
 * reload deactivates or reuses them, never frees them), so a call in flight may still report
 * to the slot it picked. */
typedef struct {
    pthread_mutex_t mu; /* the breaker's fields */
    antar_circuit_t state;
    int fails;                /* consecutive failures while closed */
    int reopens;              /* failed probes since the last close (cooldown growth) */
    bool costly;              /* a failure of the current run cost time (not just refused) */
    long long open_until;     /* monotonic ms; while open */
    bool probing;             /* half-open: the one probe is out */
    unsigned long long to[3]; /* transitions into closed, open, half-open (never reset) */
    char base[BASE_MAX];      /* written under the set's mu; callers copy it under it */
    bool active;
} peer_t;

typedef struct {
    pthread_mutex_t mu; /* active flags, bases, order, src */
    peer_t slot[PEERS_MAX];
    int order[PEERS_MAX]; /* the active slots, in configured order */
    int n;
    bool from_file;        /* the peers file names this peer: cfg's list is not looked at */
    char src[1024];        /* the cfg list the set was built from */
    unsigned long long rr; /* round-robin position */
} peer_set_t;

static peer_set_t g_peers[3];

static void peers_init_once(void)
{
    for (int t = 0; t < 3; t++) {
        pthread_mutex_init(&g_peers[t].mu, NULL);
        for (int i = 0; i < PEERS_MAX; i++)
            pthread_mutex_init(&g_peers[t].slot[i].mu, NULL);
    }
}

static const char *cfg_list(antar_svc_t t)
{
    return t == ANTAR_SVC_USER     ? g_cfg->user_url
           : t == ANTAR_SVC_DRIVER ? g_cfg->driver_url
                                   : g_cfg->core_url;
}

/* Splits a comma-separated list of base URLs into out (trailing slashes dropped). Returns how
 * many, or -1 when an item is empty, not http(s), too long, or there are too many. */
static int parse_list(const char *list, char out[][BASE_MAX])
{
    int n = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t l = len;
        while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '/'))
            l--;
        if (l == 0 || l >= BASE_MAX || n == PEERS_MAX ||
            !(strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) || memchr(p, ' ', l))
            return -1;
        memcpy(out[n], p, l);
        out[n][l] = '\0';
        n++;
        if (!p[len])
            return n;
        p += len + 1;
    }
}

/* Caller holds ps->mu. Instances that stay keep their slot (and breaker); gone ones are
 * deactivated; new ones take a free slot with a closed breaker. */
static void set_install(peer_set_t *ps, char bases[][BASE_MAX], int n)
{
    bool keep[PEERS_MAX] = {false};
    int slot_of[PEERS_MAX];
    for (int k = 0; k < n; k++) {
        slot_of[k] = -1;
        for (int i = 0; i < PEERS_MAX; i++)
            if (ps->slot[i].active && !keep[i] && strcmp(ps->slot[i].base, bases[k]) == 0) {
                keep[i] = true;
                slot_of[k] = i;
                break;
            }
    }
    for (int i = 0; i < PEERS_MAX; i++)
        if (!keep[i])
            ps->slot[i].active = false;
    for (int k = 0; k < n; k++) {
        if (slot_of[k] >= 0)
            continue;
        for (int i = 0; i < PEERS_MAX; i++) {
            peer_t *p = &ps->slot[i];
            if (p->active)
                continue;
            pthread_mutex_lock(&p->mu);
            p->state = ANTAR_CIRCUIT_CLOSED;
            p->fails = p->reopens = 0;
            p->costly = p->probing = false;
            p->open_until = 0;
            pthread_mutex_unlock(&p->mu);
            snprintf(p->base, sizeof p->base, "%s", bases[k]);
            p->active = true;
            slot_of[k] = i;
            break;
        }
    }
    for (int k = 0; k < n; k++)
        ps->order[k] = slot_of[k];
    ps->n = n;
}

/* Caller holds ps->mu: follow cfg's list unless the peers file names this peer. */
static void set_sync(antar_svc_t t)
{
    peer_set_t *ps = &g_peers[t];
    const char *list = cfg_list(t);
    if (ps->from_file || strcmp(ps->src, list) == 0)
        return;
    char bases[PEERS_MAX][BASE_MAX];
    int n = parse_list(list, bases);
    snprintf(ps->src, sizeof ps->src, "%s", list);
    if (n < 0) {
        antar_logf("error", "the URL list of %s is malformed: no calls to it",
                   antar_httpc_target_name(t));
        n = 0;
    }
    set_install(ps, bases, n);
}

static const char *const g_short[3] = {"user", "driver", "core"};

int antar_httpc_reload_peers(void)
{
    if (!g_cfg)
        return -1;
    pthread_once(&g_peers_once, peers_init_once);
    if (!g_cfg->peers_file[0])
        return 0;
    FILE *f = fopen(g_cfg->peers_file, "r");
    if (!f) {
        antar_logf("error", "cannot read the peers file %s: keeping the peers as they are",
                   g_cfg->peers_file);
        return -1;
    }
    static char bases[3][PEERS_MAX][BASE_MAX];
    int n[3] = {0, 0, 0}, lineno = 0;
    bool bad = false;
    char line[BASE_MAX + 64];
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            bad = true;
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        char name[16], url[BASE_MAX + 8];
        int t = -1;
        if (sscanf(p, "%15s %263s", name, url) != 2) {
            bad = true;
            break;
        }
        for (int i = 0; i < 3; i++)
            if (strcmp(name, g_short[i]) == 0)
                t = i;
        char one[1][BASE_MAX];
        if (t < 0 || n[t] == PEERS_MAX || parse_list(url, one) != 1) {
            bad = true;
            break;
        }
        snprintf(bases[t][n[t]++], BASE_MAX, "%s", one[0]);
    }
    fclose(f);
    if (bad) {
        antar_logf("error", "peers file %s: line %d is malformed; keeping the peers as they are",
                   g_cfg->peers_file, lineno);
        return -1;
    }
    for (int t = 0; t < 3; t++) {
        peer_set_t *ps = &g_peers[t];
        pthread_mutex_lock(&ps->mu);
        if (n[t] > 0) {
            set_install(ps, bases[t], n[t]);
            ps->from_file = true;
        } else if (ps->from_file) {
            ps->from_file = false; /* back to cfg's list */
            ps->src[0] = '\0';
        }
        pthread_mutex_unlock(&ps->mu);
    }
    antar_log_json("info", "peers_loaded",
                   json_pack("{s:s,s:i,s:i,s:i}", "file", g_cfg->peers_file, "user", n[0], "driver",
                             n[1], "core", n[2]));
    return 0;
}

/* Which configured service a full URL points at, for the log; "external" otherwise. */
static const char *url_target(const char *url)
{
    const char *name = "external";
    pthread_once(&g_peers_once, peers_init_once);
    for (int t = 0; t < 3 && g_cfg; t++) {
        peer_set_t *ps = &g_peers[t];
        pthread_mutex_lock(&ps->mu);
        set_sync((antar_svc_t)t);
        for (int k = 0; k < ps->n; k++) {
            const char *b = ps->slot[ps->order[k]].base;
            size_t l = strlen(b);
            if (strncmp(url, b, l) == 0 && (url[l] == '/' || url[l] == '\0'))
                name = antar_httpc_target_name((antar_svc_t)t);
        }
        pthread_mutex_unlock(&ps->mu);
    }
    return name;
}

static struct {
    int failures;
    long cooldown_ms, cooldown_max_ms, refused_cooldown_ms;
    int retries;
    long budget_ms, backoff_ms;
} g_cb = {5, 1000, 30000, 100, 2, 1000, 50};

static _Thread_local bool t_no_retry;
static _Thread_local unsigned long long t_rng;

static void breaker_configure(void)
{
    g_cb.failures = (int)antar_config_long("ANTAR_CB_FAILURES", 5, 1, 1000);
    g_cb.cooldown_ms = antar_config_long("ANTAR_CB_COOLDOWN_MS", 1000, 10, 600000);
    g_cb.cooldown_max_ms =
        antar_config_long("ANTAR_CB_COOLDOWN_MAX_MS", 30000, g_cb.cooldown_ms, 3600000);
    g_cb.refused_cooldown_ms =
        antar_config_long("ANTAR_CB_REFUSED_COOLDOWN_MS", 100, 10, g_cb.cooldown_max_ms);
    g_cb.retries = (int)antar_config_long("ANTAR_HTTPC_RETRIES", 2, 0, 10);
    g_cb.budget_ms = antar_config_long("ANTAR_HTTPC_RETRY_BUDGET_MS", 1000, 0, 60000);
    g_cb.backoff_ms = antar_config_long("ANTAR_HTTPC_BACKOFF_MS", 50, 1, 10000);
}

/* A uniform value in [0, n) from a per-thread xorshift (jitter needs no crypto). */
static long jitter(long n)
{
    if (n <= 0)
        return 0;
    if (!t_rng)
        t_rng = (unsigned long long)antar_mono_ms() * 0x9E3779B97F4A7C15ULL ^
                (unsigned long long)(uintptr_t)&t_rng;
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    return (long)(t_rng % (unsigned long long)n);
}

static const char *state_name(antar_circuit_t s)
{
    return s == ANTAR_CIRCUIT_OPEN ? "open" : s == ANTAR_CIRCUIT_HALF_OPEN ? "half_open" : "closed";
}

/* Caller holds p->mu. */
static void transition(peer_t *b, antar_svc_t target, antar_circuit_t to, long long now)
{
    long cool = 0;
    if (to == ANTAR_CIRCUIT_OPEN && !b->costly) {
        cool = g_cb.refused_cooldown_ms;
        cool = cool / 2 + jitter(cool / 2 + 1);
        b->open_until = now + cool;
    } else if (to == ANTAR_CIRCUIT_OPEN) {
        cool = g_cb.cooldown_ms;
        for (int i = 0; i < b->reopens && cool < g_cb.cooldown_max_ms; i++)
            cool *= 2;
        if (cool > g_cb.cooldown_max_ms)
            cool = g_cb.cooldown_max_ms;
        cool = cool / 2 + jitter(cool / 2 + 1); /* [cool/2, cool] */
        b->open_until = now + cool;
    }
    antar_circuit_t from = b->state;
    b->state = to;
    b->to[to]++;
    b->probing = false;
    if (to == ANTAR_CIRCUIT_CLOSED) {
        b->fails = 0;
        b->reopens = 0;
        b->costly = false;
    }
    antar_log_json(to == ANTAR_CIRCUIT_OPEN ? "warn" : "info", "circuit",
                   json_pack("{s:s,s:s,s:s,s:s,s:i}", "upstream", antar_httpc_target_name(target),
                             "instance", b->base, "from", state_name(from), "to", state_name(to),
                             "cooldown_ms", (int)cool));
}

static ticket_t breaker_admit(peer_t *b, antar_svc_t target, long *wait_ms)
{
    long long now = antar_mono_ms();
    ticket_t t = TK_NORMAL;
    *wait_ms = 0;
    pthread_mutex_lock(&b->mu);
    if (b->state == ANTAR_CIRCUIT_OPEN && now >= b->open_until)
        transition(b, target, ANTAR_CIRCUIT_HALF_OPEN, now);
    if (b->state == ANTAR_CIRCUIT_OPEN) {
        t = TK_DENIED;
        *wait_ms = (long)(b->open_until - now);
    } else if (b->state == ANTAR_CIRCUIT_HALF_OPEN) {
        if (b->probing) {
            t = TK_DENIED;
            *wait_ms = g_cb.cooldown_ms; /* the probe's answer decides */
        } else {
            b->probing = true;
            t = TK_PROBE;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return t;
}

static void breaker_report(peer_t *b, antar_svc_t target, ticket_t t, verdict_t v)
{
    long long now = antar_mono_ms();
    pthread_mutex_lock(&b->mu);
    if (v == V_FAILURE)
        b->costly = true;
    if (v == V_CHEAP)
        v = V_FAILURE;
    if (t == TK_PROBE && b->state == ANTAR_CIRCUIT_HALF_OPEN) {
        if (v == V_SUCCESS) {
            transition(b, target, ANTAR_CIRCUIT_CLOSED, now);
        } else if (v == V_FAILURE) {
            b->reopens++;
            transition(b, target, ANTAR_CIRCUIT_OPEN, now);
        } else {
            b->probing = false; /* never reached the peer: the next caller probes */
        }
    } else if (t == TK_NORMAL && b->state == ANTAR_CIRCUIT_CLOSED) {
        /* Answers of calls admitted before the circuit opened do not move it back. */
        if (v == V_FAILURE && ++b->fails >= g_cb.failures)
            transition(b, target, ANTAR_CIRCUIT_OPEN, now);
        else if (v == V_SUCCESS)
            b->fails = 0, b->costly = false; /* a new run of failures starts cheap */
    }
    pthread_mutex_unlock(&b->mu);
}

typedef struct {
    peer_t *peer;
    ticket_t ticket;
    char base[BASE_MAX];
    int n; /* instances the peer has */
} pick_t;

/* The next instance of target (round-robin) whose breaker admits a call, preferring any other
 * than avoid. false when none does (*wait_ms: the soonest one might), or none is configured
 * (*wait_ms = -1). */
static bool pick(antar_svc_t target, const peer_t *avoid, pick_t *out, long *wait_ms)
{
    peer_set_t *ps = &g_peers[target];
    bool got = false;
    long soonest = -1;
    pthread_once(&g_peers_once, peers_init_once);
    pthread_mutex_lock(&ps->mu);
    set_sync(target);
    int n = ps->n;
    out->n = n;
    if (n > 0) {
        unsigned long long start = ps->rr++;
        for (int pass = 0; pass < 2 && !got; pass++) {
            for (int k = 0; k < n && !got; k++) {
                peer_t *p = &ps->slot[ps->order[(start + (unsigned long long)k) % (unsigned)n]];
                if ((p == avoid) != (pass == 1) && n > 1)
                    continue;
                if (pass == 1 && n == 1)
                    break;
                long w = 0;
                ticket_t t = breaker_admit(p, target, &w);
                if (t != TK_DENIED) {
                    out->peer = p;
                    out->ticket = t;
                    snprintf(out->base, sizeof out->base, "%s", p->base);
                    got = true;
                } else if (soonest < 0 || w < soonest) {
                    soonest = w;
                }
            }
        }
    }
    pthread_mutex_unlock(&ps->mu);
    *wait_ms = got ? 0 : n == 0 ? -1 : soonest;
    return got;
}

#define CHEAP_FAILURE_MS 100

static verdict_t verdict(antar_err_t err, long status, long long took_ms)
{
    if (err == ANTAR_E_UNAVAILABLE || (err == ANTAR_E_UPSTREAM && took_ms < CHEAP_FAILURE_MS))
        return V_CHEAP;
    if (err == ANTAR_E_TIMEOUT || err == ANTAR_E_UPSTREAM)
        return V_FAILURE;
    if (err != ANTAR_OK)
        return V_NEUTRAL;
    return status == 502 || status == 503 || status == 504 ? V_FAILURE : V_SUCCESS;
}

static bool idempotent_call(const char *method, const char *const *headers)
{
    if (method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return true;
    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], "Idempotency-Key:", 16) == 0)
            return true;
    return false;
}

static const char *err_reason(antar_err_t err)
{
    return err == ANTAR_E_TIMEOUT       ? "timeout"
           : err == ANTAR_E_UNAVAILABLE ? "unreachable"
                                        : "error";
}

static antar_err_t guarded_call(antar_svc_t target, const char *method, const char *path,
                                json_t *body, const char *const *headers, antar_httpc_res_t *res)
{
    res_init(res);
    if (!g_cfg || (unsigned)target > ANTAR_SVC_CORE)
        return ANTAR_E_INTERNAL;
    const char *name = antar_httpc_target_name(target);
    bool idem = idempotent_call(method, headers);
    long long t0 = antar_mono_ms();
    long timeout = 0; /* the first attempt has the configured timeout */
    /* ANTAR_E_UNAVAILABLE promises "not applied" (nothing sent). After an attempt that may have
     * been applied (a timeout, a broken answer), a later refusal must not hide that: the call
     * then ends with the ambiguous error, so the caller resolves it (same key, reconcile). */
    antar_err_t ambiguous = ANTAR_OK;
    const peer_t *last = NULL;
    for (int attempt = 0;; attempt++) {
        long wait = 0;
        pick_t pk;
        if (!pick(target, last, &pk, &wait)) {
            if (wait < 0) {
                antar_logf("error", "no instance of %s is configured", name);
                return ANTAR_E_INTERNAL;
            }
            antar_log_json("warn", "call",
                           json_pack("{s:s,s:s,s:s,s:i,s:s,s:i}", "target", name, "method",
                                     method ? method : "", "path", path ? path : "", "status", 0,
                                     "outcome", "circuit_open", "duration_ms", 0));
            antar_metrics_call(name, "circuit_open", 0.0);
            antar_err_note_upstream(name, "circuit_open", wait > 0 ? wait : g_cb.cooldown_ms);
            return ambiguous != ANTAR_OK ? ambiguous : ANTAR_E_UNAVAILABLE;
        }
        long long t_attempt = antar_mono_ms();
        antar_err_t err =
            call_refreshing(target, pk.base, method, path, body, headers, timeout, res);
        verdict_t v = verdict(err, res->status, antar_mono_ms() - t_attempt);
        breaker_report(pk.peer, target, pk.ticket, v);
        if (v != V_FAILURE && v != V_CHEAP) {
            antar_err_note_upstream(NULL, NULL, 0);
            return err;
        }
        antar_err_note_upstream(name, err == ANTAR_OK ? "error" : err_reason(err), 0);
        if (err == ANTAR_E_TIMEOUT || err == ANTAR_E_UPSTREAM)
            ambiguous = ambiguous != ANTAR_OK ? ambiguous : err;
        else if (err == ANTAR_E_UNAVAILABLE && ambiguous != ANTAR_OK)
            err = ambiguous;
        /* Refused: nothing was sent, so even a POST is safe to send again. */
        bool refused = err == ANTAR_E_UNAVAILABLE;
        bool safe = idem || refused;
        last = pk.peer;
        /* A refusal with a sibling to try costs no retry budget and no pause: the sibling is
         * asked at once (at most once per instance). */
        if (refused && pk.n > 1 && attempt < pk.n - 1) {
            antar_httpc_res_clean(res);
            continue;
        }
        if (!safe || t_no_retry || attempt >= g_cb.retries + (pk.n > 1 ? pk.n - 1 : 0))
            return err;
        long step = g_cb.backoff_ms << (attempt < 10 ? attempt : 10);
        long pause = step / 2 + jitter(step / 2 + 1);
        long left = g_cb.budget_ms - (long)(antar_mono_ms() - t0) - pause;
        /* Not worth starting an attempt that cannot even connect before the budget ends. */
        long need = g_cfg->connect_timeout_ms < 50 ? g_cfg->connect_timeout_ms : 50;
        if (left < need)
            return err;
        timeout = left < g_cfg->timeout_ms ? left : g_cfg->timeout_ms;
        antar_httpc_res_clean(res);
        struct timespec ts = {.tv_sec = pause / 1000, .tv_nsec = (pause % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

antar_err_t antar_httpc_peer_request(antar_svc_t target, const char *method, const char *path,
                                     const char *content_type, const char *body,
                                     const char *authorization, antar_httpc_res_t *res)
{
    antar_httpc_res_t dummy;
    if (!res)
        res = &dummy;
    res_init(res);
    if (!g_cfg || (unsigned)target > ANTAR_SVC_CORE || !path || path[0] != '/')
        return ANTAR_E_INTERNAL;
    antar_err_t err = ANTAR_E_UNAVAILABLE;
    const peer_t *last = NULL;
    for (int attempt = 0;; attempt++) {
        pick_t pk;
        long wait = 0;
        if (!pick(target, last, &pk, &wait)) {
            err = wait < 0 ? ANTAR_E_INTERNAL : err;
            break;
        }
        char url[URL_MAX];
        if ((size_t)snprintf(url, sizeof url, "%s%s", pk.base, path) >= sizeof url) {
            breaker_report(pk.peer, target, pk.ticket, V_NEUTRAL);
            err = ANTAR_E_INTERNAL;
            break;
        }
        antar_httpc_res_clean(res);
        long long t_attempt = antar_mono_ms();
        err = antar_httpc_request(method, url, content_type, body, authorization, res);
        breaker_report(pk.peer, target, pk.ticket,
                       verdict(err, res->status, antar_mono_ms() - t_attempt));
        last = pk.peer;
        /* Only a refusal is tried on a sibling: nothing was sent. */
        if (err != ANTAR_E_UNAVAILABLE || attempt >= pk.n - 1)
            break;
    }
    if (res == &dummy)
        antar_httpc_res_clean(res);
    return err;
}

antar_circuit_t antar_httpc_circuit_state(antar_svc_t target)
{
    if ((unsigned)target > ANTAR_SVC_CORE || !g_cfg)
        return ANTAR_CIRCUIT_CLOSED;
    pthread_once(&g_peers_once, peers_init_once);
    peer_set_t *ps = &g_peers[target];
    bool any_closed = false, any_half = false;
    pthread_mutex_lock(&ps->mu);
    set_sync(target);
    for (int k = 0; k < ps->n; k++) {
        peer_t *p = &ps->slot[ps->order[k]];
        pthread_mutex_lock(&p->mu);
        any_closed |= p->state == ANTAR_CIRCUIT_CLOSED;
        any_half |= p->state == ANTAR_CIRCUIT_HALF_OPEN;
        pthread_mutex_unlock(&p->mu);
    }
    bool none = ps->n == 0;
    pthread_mutex_unlock(&ps->mu);
    return none || any_closed ? ANTAR_CIRCUIT_CLOSED
           : any_half         ? ANTAR_CIRCUIT_HALF_OPEN
                              : ANTAR_CIRCUIT_OPEN;
}

long antar_httpc_circuit_wait_ms(antar_svc_t target)
{
    if ((unsigned)target > ANTAR_SVC_CORE || !g_cfg)
        return 0;
    pthread_once(&g_peers_once, peers_init_once);
    peer_set_t *ps = &g_peers[target];
    long long now = antar_mono_ms();
    long soonest = -1;
    pthread_mutex_lock(&ps->mu);
    set_sync(target);
    for (int k = 0; k < ps->n && soonest != 0; k++) {
        peer_t *p = &ps->slot[ps->order[k]];
        long w = 0;
        pthread_mutex_lock(&p->mu);
        if (p->state == ANTAR_CIRCUIT_OPEN && p->open_until > now)
            w = (long)(p->open_until - now);
        else if (p->state == ANTAR_CIRCUIT_HALF_OPEN && p->probing)
            w = g_cb.cooldown_ms; /* the probe's answer decides; look again after a cooldown */
        pthread_mutex_unlock(&p->mu);
        if (soonest < 0 || w < soonest)
            soonest = w;
    }
    pthread_mutex_unlock(&ps->mu);
    return soonest < 0 ? 0 : soonest;
}

void antar_httpc_thread_retries(bool on)
{
    t_no_retry = !on;
}

char *antar_httpc_circuit_metrics(void)
{
    if (!g_cfg)
        return NULL;
    size_t cap = 8192, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    static const antar_svc_t all[] = {ANTAR_SVC_USER, ANTAR_SVC_DRIVER, ANTAR_SVC_CORE};
    /* A service never calls itself: its own name is left out. */
    const char *self = g_cfg->service;
    bool skip[3];
    antar_circuit_t st[3];
    unsigned long long to[3][3];
    for (int i = 0; i < 3; i++) {
        const char *name = antar_httpc_target_name(all[i]);
        skip[i] = self[0] && strncmp(name, self, strlen(self)) == 0 && name[strlen(self)] == '-';
        st[i] = antar_httpc_circuit_state(all[i]);
    }
    n += (size_t)snprintf(out + n, cap - n, "# TYPE antar_circuit_state gauge\n");
    for (int i = 0; i < 3; i++)
        if (!skip[i])
            n += (size_t)snprintf(out + n, cap - n, "antar_circuit_state{upstream=\"%s\"} %d\n",
                                  antar_httpc_target_name(all[i]), (int)st[i]);
    /* Per instance: 0 closed, 1 open (ejected), 2 half-open (being probed back). */
    n += (size_t)snprintf(out + n, cap - n, "# TYPE antar_peer_state gauge\n");
    for (int i = 0; i < 3; i++) {
        peer_set_t *ps = &g_peers[i];
        memset(to[i], 0, sizeof to[i]);
        pthread_mutex_lock(&ps->mu);
        for (int s = 0; s < PEERS_MAX; s++) {
            peer_t *p = &ps->slot[s];
            pthread_mutex_lock(&p->mu);
            for (int k = 0; k < 3; k++)
                to[i][k] += p->to[k];
            if (p->active && !skip[i] && n < cap - 512)
                n += (size_t)snprintf(out + n, cap - n,
                                      "antar_peer_state{upstream=\"%s\",instance=\"%s\"} %d\n",
                                      antar_httpc_target_name(all[i]), p->base, (int)p->state);
            pthread_mutex_unlock(&p->mu);
        }
        pthread_mutex_unlock(&ps->mu);
    }
    n += (size_t)snprintf(out + n, cap - n, "# TYPE antar_circuit_transitions_total counter\n");
    for (int i = 0; i < 3; i++) {
        if (skip[i])
            continue;
        for (int k = 0; k < 3 && n < cap - 256; k++)
            n += (size_t)snprintf(
                out + n, cap - n,
                "antar_circuit_transitions_total{upstream=\"%s\",to=\"%s\"} %llu\n",
                antar_httpc_target_name(all[i]), state_name((antar_circuit_t)k), to[i][k]);
    }
    return out;
}

antar_err_t antar_httpc_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                             const char *const *headers, antar_httpc_res_t *res)
{
    antar_httpc_res_t local;
    if (!res)
        res = &local;
    if (antar_thread_is_internal()) {
        /* An internal-listener thread waiting on a peer is how a cycle of blocking calls (and a
         * deadlock until the timeouts) comes back: refuse loudly instead, so the bug shows on
         * the first test that takes that path rather than under load. */
        res_init(res);
        antar_logf("error",
                   "refused %s %s to %s from an internal-listener thread: a synchronous call "
                   "there could close a cycle of blocking calls",
                   method ? method : "?", path ? path : "?", antar_httpc_target_name(target));
        antar_metrics_count("antar_calls_refused_total", "target", antar_httpc_target_name(target));
        return ANTAR_E_INTERNAL;
    }
    antar_err_t err = guarded_call(target, method, path, body, headers, res);
    if (res == &local)
        antar_httpc_res_clean(res);
    return err;
}
