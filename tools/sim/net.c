/* net.c — the simulator's HTTP: one libcurl multi handle for every agent, driven through
 * libcurl's socket interface on epoll (curl_multi_socket_action), so that a turn of the loop
 * costs the sockets that are ready, not every open connection; keep-alive connections shared
 * through the multi's connection cache (at most opts.conns at once; requests beyond that wait
 * inside libcurl, and that wait counts in their latency), easy handles reused from a free list.
 * Latency is taken from the request's intended send time to the moment its answer is complete. */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define RESP_MAX (1 << 20)

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    http_req_t *r = ud;
    size_t len = sz * n;
    if (r->resp_len + len + 1 > RESP_MAX)
        return 0; /* an answer this large is a fault; abort the transfer */
    if (r->resp_len + len + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 1024;
        while (cap < r->resp_len + len + 1)
            cap *= 2;
        char *nb = realloc(r->resp, cap);
        if (!nb)
            return 0;
        r->resp = nb;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, p, len);
    r->resp_len += len;
    r->resp[r->resp_len] = '\0';
    return len;
}

/* libcurl tells which sockets to watch for what; epoll watches them. socketp marks a socket
 * already added to the epoll set. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *socketp)
{
    sim_t *s = ud;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(s->multi, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = fd};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    if (socketp) {
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        curl_multi_assign(s->multi, fd, (void *)1);
    }
    return 0;
}

/* libcurl's own deadline (connect and request timeouts, work to do right away). */
static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
    sim_t *s = ud;
    (void)m;
    s->curl_due_ms = timeout_ms < 0 ? -1 : sim_now(s) + (double)timeout_ms;
    return 0;
}

int net_init(sim_t *s)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    s->multi = curl_multi_init();
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->curl_due_ms = -1;
    if (!s->multi || s->epfd < 0)
        return -1;
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)s->o.conns);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->o.conns);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->o.conns);
    return 0;
}

static void req_free(http_req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r->resp);
    free(r);
}

void net_clean(sim_t *s)
{
    /* The run waits for every answer (each has a timeout) before it gets here. */
    while (s->free_reqs) {
        http_req_t *r = s->free_reqs;
        s->free_reqs = r->next_free;
        req_free(r);
    }
    curl_multi_cleanup(s->multi);
    if (s->epfd >= 0)
        close(s->epfd);
    curl_global_cleanup();
}

static http_req_t *req_get(sim_t *s)
{
    http_req_t *r = s->free_reqs;
    if (r) {
        s->free_reqs = r->next_free;
        curl_easy_reset(r->easy);
    } else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        r->easy = curl_easy_init();
        if (!r->easy) {
            free(r);
            return NULL;
        }
    }
    r->next_free = NULL;
    r->resp_len = 0;
    if (r->resp)
        r->resp[0] = '\0';
    return r;
}

static void req_put(sim_t *s, http_req_t *r)
{
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    free(r->body);
    r->body = NULL;
    if (r->resp_cap > 64 * 1024) { /* keep the free list small */
        free(r->resp);
        r->resp = NULL;
        r->resp_cap = 0;
    }
    r->next_free = s->free_reqs;
    s->free_reqs = r;
}

static struct curl_slist *add_hdr(struct curl_slist *l, const char *name, const char *value)
{
    char line[4096];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(l, line);
    return n ? n : l;
}

http_req_t *net_send(sim_t *s, const http_spec_t *spec, endpoint_t ep, double intended_ms,
                     int agent, long long ctx, int attempt, http_done_fn done)
{
    http_req_t *r = req_get(s);
    if (!r)
        return NULL;
    CURL *e = r->easy;
    r->ep = ep;
    r->intended_ms = intended_ms;
    r->measured = s->measuring;
    r->agent = agent;
    r->ctx = ctx;
    r->attempt = attempt;
    r->done = done;
    r->hdrs = add_hdr(NULL, "Accept", "application/json");
    if (spec->bearer) {
        char auth[3000];
        snprintf(auth, sizeof auth, "Bearer %s", spec->bearer);
        r->hdrs = add_hdr(r->hdrs, "Authorization", auth);
    }
    if (spec->csrf)
        r->hdrs = add_hdr(r->hdrs, "X-CSRF-Token", spec->csrf);
    if (spec->idem)
        r->hdrs = add_hdr(r->hdrs, "Idempotency-Key", spec->idem);
    /* No "Expect: 100-continue" round trip for small bodies. */
    r->hdrs = add_hdr(r->hdrs, "Expect", "");
    curl_easy_setopt(e, CURLOPT_URL, spec->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, spec->timeout_ms ? spec->timeout_ms : s->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (spec->src_ip) {
        curl_easy_setopt(e, CURLOPT_INTERFACE, spec->src_ip);
        /* A connection bound to one device's address is that device's alone. */
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (spec->body) {
        r->body = strdup(spec->body);
        if (!r->body) {
            req_put(s, r);
            return NULL;
        }
        r->hdrs = add_hdr(r->hdrs, "Content-Type",
                          spec->form ? "application/x-www-form-urlencoded" : "application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    }
    if (strcmp(spec->method, "GET") == 0)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(spec->method, "POST") != 0 || !spec->body) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, spec->method);
        if (!spec->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    if (intended_ms > sim_now(s) + 0.5) {
        /* A retry after a back-off, or an action a person takes in a moment: it waits here,
         * in order of its send time, until that time comes. */
        http_req_t **pp = &s->delayed;
        while (*pp && (*pp)->intended_ms <= intended_ms)
            pp = &(*pp)->next_free;
        r->next_free = *pp;
        *pp = r;
        s->in_flight++;
        return r;
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        req_put(s, r);
        return NULL;
    }
    s->in_flight++;
    return r;
}

/* Hand the delayed requests whose time has come to libcurl. */
static void start_due(sim_t *s)
{
    double now = sim_now(s);
    while (s->delayed && s->delayed->intended_ms <= now) {
        http_req_t *r = s->delayed;
        s->delayed = r->next_free;
        r->next_free = NULL;
        if (curl_multi_add_handle(s->multi, r->easy) != CURLM_OK) {
            s->in_flight--;
            r->done(s, r, 0, NULL);
            req_put(s, r);
        }
    }
}

static void finish(sim_t *s, CURLMsg *m)
{
    http_req_t *r = NULL;
    long status = 0;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (m->data.result == CURLE_OK)
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, m->easy_handle);
    s->in_flight--;
    double now = sim_now(s);
    if (status < 0 || status >= 600)
        status = 0;
    if (r->measured) {
        ep_stats_t *st = &s->ep[r->ep];
        hist_add(&st->lat, (now - r->intended_ms) * 1000.0);
        st->status[status]++;
        if (m->data.result == CURLE_OPERATION_TIMEDOUT)
            st->timeouts++;
    }
    json_t *body = NULL;
    /* The ping's answer is never read: no parse for the most frequent request. */
    if (r->resp_len > 0 && r->resp && r->ep != EP_PING)
        body = json_loadb(r->resp, r->resp_len, 0, NULL);
    r->done(s, r, (int)status, body);
    json_decref(body);
    req_put(s, r);
}

void net_poll(sim_t *s, int timeout_ms)
{
    int running = 0, left = 0;
    CURLMsg *m;
    struct epoll_event evs[256];
    start_due(s);
    double now = sim_now(s);
    if (s->delayed && s->delayed->intended_ms - now < timeout_ms)
        timeout_ms = s->delayed->intended_ms <= now ? 0 : (int)(s->delayed->intended_ms - now);
    if (s->curl_due_ms >= 0 && s->curl_due_ms - now < timeout_ms)
        timeout_ms = s->curl_due_ms <= now ? 0 : (int)(s->curl_due_ms - now) + 1;
    int n = epoll_wait(s->epfd, evs, (int)(sizeof evs / sizeof evs[0]), timeout_ms);
    for (int i = 0; i < n; i++) {
        int flags = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP))
            flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(s->multi, evs[i].data.fd, flags, &running);
    }
    if (s->curl_due_ms >= 0 && sim_now(s) >= s->curl_due_ms) {
        s->curl_due_ms = -1;
        curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    while ((m = curl_multi_info_read(s->multi, &left)))
        if (m->msg == CURLMSG_DONE)
            finish(s, m);
}

typedef struct {
    char *d;
    size_t n;
} fetch_buf_t;

static size_t fetch_data(char *p, size_t sz, size_t n, void *ud)
{
    fetch_buf_t *b = ud;
    size_t len = sz * n;
    if (b->n + len > RESP_MAX * 16)
        return 0;
    char *nd = realloc(b->d, b->n + len + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->n, p, len);
    b->d = nd;
    b->n += len;
    b->d[b->n] = '\0';
    return len;
}

int net_fetch(const char *method, const char *url, const char *bearer, const char *form_body,
              long timeout_ms, json_t **body)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    fetch_buf_t b = {0};
    long status = 0;
    *body = NULL;
    if (!e)
        return 0;
    h = add_hdr(h, "Accept", "application/json");
    if (bearer) {
        char auth[3000];
        snprintf(auth, sizeof auth, "Bearer %s", bearer);
        h = add_hdr(h, "Authorization", auth);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (form_body) {
        h = add_hdr(h, "Content-Type", "application/x-www-form-urlencoded");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form_body);
    }
    if (strcmp(method, "GET") != 0 && !form_body)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (b.d)
        *body = json_loadb(b.d, b.n, 0, NULL);
    free(b.d);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return (int)status;
}
