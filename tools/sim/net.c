/* net.c — the simulator's HTTP: a small HTTP/1.1 client on epoll, made for one job — many
 * small requests to one edge over a bounded set of keep-alive connections — because libcurl's
 * multi interface cost ~160 µs of CPU per request here (measured with perf: 75% of the
 * simulator's time), which would make the simulator, not the stack, the limit of the city.
 *
 * At most opts.conns connections at once; a request that finds none free waits in a FIFO, and
 * that wait counts in its latency (taken from the intended send time to the complete answer).
 * A request bound to a source address (a phone signing in from its own address) gets a
 * connection of its own, closed after. Answers are read by Content-Length or chunked encoding;
 * a connection the server closed while idle is replaced, and a request whose reused connection
 * turns out closed before any byte of an answer is sent once more on a new one (what browsers
 * and libcurl do). Every request has a deadline; past it the connection is closed and the
 * request ends with status 0 (counted as a timeout).
 *
 * net_fetch, for the audit's few blocking reads, uses libcurl. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define RESP_MAX (1 << 20)

typedef struct conn {
    int fd;
    struct sse *sse; /* a GET /events stream (--push), not a pooled connection */
    bool connected, bound, reused;
    http_req_t *req;
    size_t out_off;
    struct conn *next;                /* idle list */
    struct conn *all_prev, *all_next; /* every open connection (deadlines) */
} conn_t;

/* ---- requests -------------------------------------------------------------------------------- */

static http_req_t *req_get(sim_t *s)
{
    http_req_t *r = s->free_reqs;
    if (r)
        s->free_reqs = r->next_free;
    else if (!(r = calloc(1, sizeof *r)))
        return NULL;
    r->next_free = NULL;
    r->resp_len = r->out_len = r->body_off = r->body_len = 0;
    r->deadline_ms = 0;
    r->retried = false;
    r->conn = NULL;
    return r;
}

static void req_put(sim_t *s, http_req_t *r)
{
    if (r->resp_cap > 64 * 1024) { /* keep the free list small */
        free(r->resp);
        r->resp = NULL;
        r->resp_cap = 0;
    }
    r->next_free = s->free_reqs;
    s->free_reqs = r;
}

static bool buf_add(char **b, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1)
            c *= 2;
        char *nb = realloc(*b, c);
        if (!nb)
            return false;
        *b = nb;
        *cap = c;
    }
    memcpy(*b + *len, p, n);
    *len += n;
    (*b)[*len] = '\0';
    return true;
}

static bool out_printf(http_req_t *r, const char *fmt, const char *a, const char *b)
{
    char line[4200];
    int n = snprintf(line, sizeof line, fmt, a, b);
    return n > 0 && (size_t)n < sizeof line &&
           buf_add(&r->out, &r->out_len, &r->out_cap, line, (size_t)n);
}

/* "http://127.0.0.1:8080/path?q" → the address and the path. */
static bool parse_url(const char *url, struct sockaddr_in *sa, const char **path)
{
    char host[64];
    const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL, *slash, *colon;
    if (!h || !(slash = strchr(h, '/')) || !(colon = memchr(h, ':', (size_t)(slash - h))) ||
        (size_t)(colon - h) >= sizeof host)
        return false;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    *path = slash;
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

/* ---- connections ------------------------------------------------------------------------------
 */

static void conn_close(sim_t *s, conn_t *c)
{
    if (!c->req) /* it may be waiting in the idle list (a server closing a kept-alive one) */
        for (conn_t **pp = &s->idle; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        s->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (!c->bound)
        s->n_conns--;
    free(c);
}

static conn_t *conn_open(sim_t *s, const struct sockaddr_in *sa, const char *src_ip)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src_ip) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        c->bound = true;
        if (inet_pton(AF_INET, src_ip, &src.sin_addr) != 1 ||
            bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0)
            goto fail;
    }
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS)
        goto fail;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    if (!c->bound)
        s->n_conns++;
    c->all_next = s->all;
    if (s->all)
        s->all->all_prev = c;
    s->all = c;
    return c;
fail:
    close(c->fd);
    free(c);
    return NULL;
}

static void conn_want(sim_t *s, conn_t *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void finish(sim_t *s, http_req_t *r, int status, bool timed_out);
static void dispatch(sim_t *s, http_req_t *r);

/* Write what the request still has to send; false when the connection failed. */
static bool conn_write(sim_t *s, conn_t *c)
{
    http_req_t *r = c->req;
    while (c->out_off < r->out_len) {
        ssize_t n = send(c->fd, r->out + c->out_off, r->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want(s, c, true);
            return true;
        } else {
            return false;
        }
    }
    conn_want(s, c, false);
    return true;
}

static void conn_start(sim_t *s, conn_t *c, http_req_t *r)
{
    c->req = r;
    c->out_off = 0;
    r->resp_len = 0;
    r->conn = c;
    if (r->deadline_ms == 0)
        r->deadline_ms = sim_now(s) + (double)r->timeout_ms;
    if (c->connected && !conn_write(s, c)) {
        /* The idle connection was gone: a new one, once. */
        c->req = NULL;
        r->conn = NULL;
        conn_close(s, c);
        dispatch(s, r);
    }
}

/* The connection is free: the next waiting request, else the idle list. */
static void conn_release(sim_t *s, conn_t *c)
{
    c->req = NULL;
    c->reused = true;
    if (s->pending_head) {
        http_req_t *r = s->pending_head;
        s->pending_head = r->next_free;
        if (!s->pending_head)
            s->pending_tail = NULL;
        r->next_free = NULL;
        conn_start(s, c, r);
        return;
    }
    c->next = s->idle;
    s->idle = c;
}

/* Find the end of an HTTP answer in r->resp: returns 1 when complete (status and the body's
 * offset and length set), 0 when more is needed, -1 when malformed. Chunked bodies are decoded
 * in place. */
static int parse_answer(http_req_t *r, int *status, size_t *body_off, size_t *body_len,
                        bool *close_after)
{
    char *buf = r->resp, *end = r->resp_len >= 4 ? memmem(buf, r->resp_len, "\r\n\r\n", 4) : NULL;
    if (!end)
        return r->resp_len > 16384 ? -1 : 0;
    if (strncmp(buf, "HTTP/1.", 7) != 0 || r->resp_len < 12)
        return -1;
    *status = atoi(buf + 9);
    size_t hdr_len = (size_t)(end - buf) + 4;
    long long clen = -1;
    bool chunked = false;
    *close_after = buf[7] == '0';
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = atoll(line + 15);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked") &&
                 strstr(line, "chunked") < strstr(line, "\r\n"))
            chunked = true;
        else if (strncasecmp(line, "Connection:", 11) == 0) {
            char *v = line + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                *close_after = true;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                *close_after = false;
        }
    }
    *body_off = hdr_len;
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) {
        *body_len = 0;
        return 1;
    }
    if (chunked) {
        /* Decode once the terminating chunk has arrived. */
        if (r->resp_len < hdr_len + 5 || memcmp(buf + r->resp_len - 5, "0\r\n\r\n", 5) != 0)
            return 0;
        size_t in = hdr_len, outp = hdr_len;
        for (;;) {
            char *e = NULL;
            unsigned long n = strtoul(buf + in, &e, 16);
            char *crlf = strstr(buf + in, "\r\n");
            if (!crlf || !e)
                return -1;
            in = (size_t)(crlf - buf) + 2;
            if (n == 0)
                break;
            if (in + n + 2 > r->resp_len)
                return -1;
            memmove(buf + outp, buf + in, n);
            outp += n;
            in += n + 2;
        }
        *body_len = outp - hdr_len;
        return 1;
    }
    if (clen < 0) {
        *close_after = true; /* read to the end of the connection */
        return 0;
    }
    if (r->resp_len < hdr_len + (size_t)clen)
        return 0;
    *body_len = (size_t)clen;
    return 1;
}

static void conn_failed(sim_t *s, conn_t *c)
{
    http_req_t *r = c->req;
    bool stale = c->reused && r && r->resp_len == 0 && !r->retried;
    c->req = NULL;
    conn_close(s, c);
    if (!r)
        return;
    r->conn = NULL;
    if (stale) { /* the server had closed the kept-alive connection: once more on a new one */
        r->retried = true;
        dispatch(s, r);
        return;
    }
    finish(s, r, 0, false);
}

static void conn_readable(sim_t *s, conn_t *c)
{
    http_req_t *r = c->req;
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            if (!r || r->resp_len + (size_t)n > RESP_MAX ||
                !buf_add(&r->resp, &r->resp_len, &r->resp_cap, tmp, (size_t)n)) {
                conn_failed(s, c);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* closed by the server (or an error): an answer read to the end is complete */
        if (r && r->resp_len > 0) {
            int st;
            size_t off, len;
            bool cl;
            int done = parse_answer(r, &st, &off, &len, &cl);
            if (done >= 0 && st > 0) {
                if (done == 0) {
                    off =
                        (size_t)((char *)memmem(r->resp, r->resp_len, "\r\n\r\n", 4) - r->resp) + 4;
                    len = r->resp_len - off;
                }
                c->req = NULL;
                conn_close(s, c);
                r->body_off = off;
                r->body_len = len;
                r->conn = NULL;
                finish(s, r, st, false);
                return;
            }
        }
        conn_failed(s, c);
        return;
    }
    if (!r)
        return;
    int st;
    size_t off, len;
    bool close_after;
    int done = parse_answer(r, &st, &off, &len, &close_after);
    if (done < 0) {
        conn_failed(s, c);
        return;
    }
    if (done == 0)
        return;
    r->body_off = off;
    r->body_len = len;
    r->conn = NULL;
    c->req = NULL;
    if (close_after || c->bound)
        conn_close(s, c);
    else
        conn_release(s, c);
    finish(s, r, st, false);
}

static void sse_event(sim_t *s, conn_t *c, uint32_t ev);

static void conn_event(sim_t *s, conn_t *c, uint32_t ev)
{
    if (c->sse) {
        sse_event(s, c, ev);
        return;
    }
    if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_failed(s, c);
            return;
        }
        c->connected = true;
        if (!c->req) { /* opened for a request that timed out meanwhile */
            conn_release(s, c);
            return;
        }
    }
    if ((ev & EPOLLOUT) && c->req && c->out_off < c->req->out_len && !conn_write(s, c)) {
        conn_failed(s, c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(s, c);
}

/* ---- sending --------------------------------------------------------------------------------- */

static void dispatch(sim_t *s, http_req_t *r)
{
    conn_t *c;
    if (r->src_ip[0]) {
        c = conn_open(s, &r->addr, r->src_ip);
    } else if (s->idle) {
        c = s->idle;
        s->idle = c->next;
    } else if (s->n_conns < s->o.conns) {
        c = conn_open(s, &r->addr, NULL);
    } else {
        /* Every connection is busy: wait in line (the wait counts in the latency). */
        if (r->deadline_ms == 0)
            r->deadline_ms = sim_now(s) + (double)r->timeout_ms;
        r->next_free = NULL;
        if (s->pending_tail)
            s->pending_tail->next_free = r;
        else
            s->pending_head = r;
        s->pending_tail = r;
        return;
    }
    if (!c) {
        finish(s, r, 0, false);
        return;
    }
    conn_start(s, c, r);
}

http_req_t *net_send(sim_t *s, const http_spec_t *spec, endpoint_t ep, double intended_ms,
                     int agent, long long ctx, int attempt, http_done_fn done)
{
    const char *path;
    http_req_t *r = req_get(s);
    if (!r)
        return NULL;
    if (!parse_url(spec->url, &r->addr, &path))
        goto fail;
    r->ep = ep;
    r->intended_ms = intended_ms;
    r->measured = s->measuring;
    r->agent = agent;
    r->ctx = ctx;
    r->attempt = attempt;
    r->done = done;
    r->timeout_ms = spec->timeout_ms ? spec->timeout_ms : s->o.timeout_ms;
    snprintf(r->src_ip, sizeof r->src_ip, "%s", spec->src_ip ? spec->src_ip : "");
    const char *host = spec->url + 7;
    size_t host_len = (size_t)(path - host);
    char hostbuf[64];
    snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(host_len < 63 ? host_len : 63), host);
    if (!out_printf(r, "%s %s HTTP/1.1\r\n", spec->method, path) ||
        !out_printf(r, "Host: %s\r\nAccept: %s\r\n", hostbuf, "application/json") ||
        (spec->bearer && !out_printf(r, "Authorization: %s%s\r\n", "Bearer ", spec->bearer)) ||
        (spec->csrf && !out_printf(r, "X-CSRF-Token: %s%s\r\n", spec->csrf, "")) ||
        (spec->idem && !out_printf(r, "Idempotency-Key: %s%s\r\n", spec->idem, "")))
        goto fail;
    size_t blen = spec->body ? strlen(spec->body) : 0;
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", blen);
    if (spec->body &&
        !out_printf(r, "Content-Type: %s%s\r\n",
                    spec->form ? "application/x-www-form-urlencoded" : "application/json", ""))
        goto fail;
    if ((spec->body || strcmp(spec->method, "GET") != 0) &&
        !out_printf(r, "Content-Length: %s%s\r\n", cl, ""))
        goto fail;
    if (!buf_add(&r->out, &r->out_len, &r->out_cap, "\r\n", 2) ||
        (blen && !buf_add(&r->out, &r->out_len, &r->out_cap, spec->body, blen)))
        goto fail;
    s->in_flight++;
    if (intended_ms > sim_now(s) + 0.5) {
        /* A retry after a back-off, or an action a person takes in a moment: it waits here,
         * in order of its send time, until that time comes. */
        http_req_t **pp = &s->delayed;
        while (*pp && (*pp)->intended_ms <= intended_ms)
            pp = &(*pp)->next_free;
        r->next_free = *pp;
        *pp = r;
        return r;
    }
    dispatch(s, r);
    return r;
fail:
    req_put(s, r);
    return NULL;
}

static void finish(sim_t *s, http_req_t *r, int status, bool timed_out)
{
    double now = sim_now(s);
    s->in_flight--;
    if (status < 0 || status >= 600)
        status = 0;
    if (r->measured) {
        ep_stats_t *st = &s->ep[r->ep];
        hist_add(&st->lat, (now - r->intended_ms) * 1000.0);
        st->status[status]++;
        if (timed_out)
            st->timeouts++;
    }
    /* The fault harness (scripts/faults.sh) needs each failed or slow request with its times,
     * to tell errors inside a fault window from errors outside. Only those are written, so the
     * common case costs one comparison. */
    if (s->issues && (status_is_error(status) || now - r->intended_ms >= s->o.slow_ms))
        fprintf(s->issues, "%.1f\t%.1f\t%s\t%d\t%.1f\n", sim_wall_ms(s, r->intended_ms),
                sim_wall_ms(s, now), endpoint_name(r->ep), status, now - r->intended_ms);
    json_t *body = NULL;
    /* The ping's answer is never read: no parse for the most frequent request. */
    if (status > 0 && r->body_len > 0 && r->ep != EP_PING)
        body = json_loadb(r->resp + r->body_off, r->body_len, 0, NULL);
    r->done(s, r, status, body);
    json_decref(body);
    req_put(s, r);
}

/* Requests past their deadline end with status 0; their connection is closed. */
static void expire(sim_t *s)
{
    double now = sim_now(s);
    http_req_t **pp = &s->pending_head, *prev = NULL;
    while (*pp) {
        http_req_t *r = *pp;
        if (now > r->deadline_ms) {
            *pp = r->next_free;
            if (s->pending_tail == r)
                s->pending_tail = prev;
            finish(s, r, 0, true);
            continue;
        }
        prev = r;
        pp = &r->next_free;
    }
    /* Detach first, answer after: a callback may send, and a send may close connections. */
    http_req_t *late = NULL;
    for (conn_t *c = s->all, *next; c; c = next) {
        next = c->all_next;
        http_req_t *r = c->req;
        if (r && now > r->deadline_ms) {
            c->req = NULL;
            r->conn = NULL;
            conn_close(s, c);
            r->next_free = late;
            late = r;
        }
    }
    while (late) {
        http_req_t *r = late;
        late = r->next_free;
        r->next_free = NULL;
        finish(s, r, 0, true);
    }
}

static void start_due(sim_t *s)
{
    double now = sim_now(s);
    while (s->delayed && s->delayed->intended_ms <= now) {
        http_req_t *r = s->delayed;
        s->delayed = r->next_free;
        r->next_free = NULL;
        dispatch(s, r);
    }
}

int net_init(sim_t *s)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    return s->epfd < 0 ? -1 : 0;
}

void net_poll(sim_t *s, int timeout_ms)
{
    struct epoll_event evs[512];
    start_due(s);
    double now = sim_now(s);
    if (s->delayed && s->delayed->intended_ms - now < timeout_ms)
        timeout_ms = s->delayed->intended_ms <= now ? 0 : (int)(s->delayed->intended_ms - now) + 1;
    int n = epoll_wait(s->epfd, evs, (int)(sizeof evs / sizeof evs[0]), timeout_ms);
    for (int i = 0; i < n; i++)
        conn_event(s, evs[i].data.ptr, evs[i].events);
    if (sim_now(s) - s->last_expire_ms >= 20) {
        s->last_expire_ms = sim_now(s);
        expire(s);
    }
}

void net_clean(sim_t *s)
{
    for (int i = 0; s->drv && i < s->o.drivers; i++)
        net_stream_close(s, i);
    /* The run waits for every answer (each has a deadline) before it gets here. */
    while (s->all)
        conn_close(s, s->all);
    while (s->free_reqs) {
        http_req_t *r = s->free_reqs;
        s->free_reqs = r->next_free;
        free(r->out);
        free(r->resp);
        free(r);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    curl_global_cleanup();
}

/* ---- --push: one GET /events stream per driver ------------------------------------------------
 * A stream is a connection of its own, outside the pool (it never ends while the driver is
 * online, so it must not take a pooled connection's place) and outside the deadlines. The
 * answer is chunked (libmicrohttpd's streamed response): chunks are decoded as they come, and
 * the text is cut into events at each blank line, as EventSource does. */

typedef struct sse {
    conn_t *c;
    int agent;
    char *req; /* the request line and headers */
    size_t req_len, req_off;
    char *in; /* bytes received, not yet decoded */
    size_t in_len, in_cap;
    char *txt; /* decoded event text, not yet cut into events */
    size_t txt_len, txt_cap;
    bool headers_done;
    size_t chunk_left; /* bytes of the current chunk still to come */
    int crlf_left;     /* the CRLF that ends a chunk */
} sse_t;

static void sse_free(sim_t *s, sse_t *x)
{
    (void)s;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, x->c->fd, NULL);
    close(x->c->fd);
    free(x->c);
    free(x->req);
    free(x->in);
    free(x->txt);
    free(x);
}

void net_stream_close(sim_t *s, int agent)
{
    driver_t *d = &s->drv[agent];
    if (d->sse) {
        sse_free(s, d->sse);
        d->sse = NULL;
    }
}

/* The stream of agent ended: free it and tell the agent. */
static void sse_end(sim_t *s, sse_t *x)
{
    int agent = x->agent;
    net_stream_close(s, agent);
    agents_stream_ended(s, agent);
}

void net_stream_open(sim_t *s, int agent, const char *token, const char *last_id)
{
    struct sockaddr_in sa;
    const char *path;
    char u[256];
    net_stream_close(s, agent);
    snprintf(u, sizeof u, "%s/events", s->o.edge);
    sse_t *x = calloc(1, sizeof *x);
    conn_t *c = calloc(1, sizeof *c);
    if (!x || !c || !parse_url(u, &sa, &path))
        goto fail;
    x->c = c;
    x->agent = agent;
    c->sse = x;
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "Authorization: Bearer %s\r\n%s%s%s\r\n",
                     path, "edge", token, last_id[0] ? "Last-Event-ID: " : "", last_id,
                     last_id[0] ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof head || !(x->req = strdup(head)))
        goto fail;
    x->req_len = (size_t)n;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto fail;
    if (connect(c->fd, (const struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        goto fail;
    }
    s->drv[agent].sse = x;
    s->c.stream_opens++;
    return;
fail:
    if (x)
        free(x->req);
    free(x);
    free(c);
    agents_stream_ended(s, agent);
}

/* Cut complete events out of x->txt and hand them to the agent. */
static void sse_events(sim_t *s, sse_t *x)
{
    size_t start = 0;
    for (;;) {
        char *blank = memmem(x->txt + start, x->txt_len - start, "\n\n", 2);
        if (!blank)
            break;
        *blank = '\0';
        char *type = NULL, *id = NULL, *data = NULL;
        for (char *line = x->txt + start, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            if (strncmp(line, "event: ", 7) == 0)
                type = line + 7;
            else if (strncmp(line, "id: ", 4) == 0)
                id = line + 4;
            else if (strncmp(line, "data: ", 6) == 0)
                data = line + 6;
        }
        start = (size_t)(blank - x->txt) + 2;
        if (type && data) {
            json_t *j = json_loads(data, 0, NULL);
            int agent = x->agent;
            agents_event(s, agent, type, id ? id : "", j);
            json_decref(j);
            if (s->drv[agent].sse != x)
                return; /* the agent closed the stream meanwhile: x is gone */
        }
    }
    memmove(x->txt, x->txt + start, x->txt_len - start);
    x->txt_len -= start;
}

/* Decode what arrived: the status line and headers once, then chunks. false: end the stream. */
static bool sse_decode(sse_t *x)
{
    size_t pos = 0;
    if (!x->headers_done) {
        char *end = memmem(x->in, x->in_len, "\r\n\r\n", 4);
        if (!end)
            return x->in_len < 16384;
        if (x->in_len < 12 || strncmp(x->in, "HTTP/1.", 7) != 0 || atoi(x->in + 9) != 200)
            return false;
        x->headers_done = true;
        pos = (size_t)(end - x->in) + 4;
    }
    while (pos < x->in_len) {
        if (x->crlf_left > 0) {
            size_t k =
                (size_t)x->crlf_left < x->in_len - pos ? (size_t)x->crlf_left : x->in_len - pos;
            pos += k;
            x->crlf_left -= (int)k;
            continue;
        }
        if (x->chunk_left == 0) {
            char *crlf = memmem(x->in + pos, x->in_len - pos, "\r\n", 2);
            if (!crlf)
                break;
            unsigned long n = strtoul(x->in + pos, NULL, 16);
            pos = (size_t)(crlf - x->in) + 2;
            if (n == 0)
                return false; /* the server ended the stream */
            x->chunk_left = n;
            continue;
        }
        size_t k = x->chunk_left < x->in_len - pos ? x->chunk_left : x->in_len - pos;
        if (!buf_add(&x->txt, &x->txt_len, &x->txt_cap, x->in + pos, k))
            return false;
        pos += k;
        x->chunk_left -= k;
        if (x->chunk_left == 0)
            x->crlf_left = 2;
    }
    memmove(x->in, x->in + pos, x->in_len - pos);
    x->in_len -= pos;
    return true;
}

static void sse_event(sim_t *s, conn_t *c, uint32_t ev)
{
    sse_t *x = c->sse;
    if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            sse_end(s, x);
            return;
        }
        c->connected = true;
    }
    if (c->connected && x->req_off < x->req_len) {
        ssize_t n = send(c->fd, x->req + x->req_off, x->req_len - x->req_off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            sse_end(s, x);
            return;
        }
        if (n > 0)
            x->req_off += (size_t)n;
        if (x->req_off == x->req_len)
            conn_want(s, c, false);
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            if (x->in_len + (size_t)n > RESP_MAX ||
                !buf_add(&x->in, &x->in_len, &x->in_cap, tmp, (size_t)n)) {
                sse_end(s, x);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        sse_end(s, x); /* closed by the server, or an error */
        return;
    }
    if (!sse_decode(x)) {
        sse_end(s, x);
        return;
    }
    sse_events(s, x);
}

/* ---- blocking reads (the audit), with libcurl ------------------------------------------------ */

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
    char line[3000];
    *body = NULL;
    if (!e)
        return 0;
    h = curl_slist_append(h, "Accept: application/json");
    if (bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (form_body) {
        h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
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
