/* log.c — one JSON object per line on stdout.
 *
 * Each line goes out in a single write() so that lines from concurrent threads never interleave
 * (POSIX keeps a single write to a pipe atomic up to PIPE_BUF; for files opened O_APPEND and
 * terminals the kernel serialises writes too). No lock is needed for that.
 *
 * antar_log_json goes through jansson; antar_log_fields, used once per request by the server,
 * writes the same text by hand (jansson's escapes and number formats), which costs a fraction
 * of building and dumping an object. */
#include "antar/log.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/trace.h"
#include "antar/util.h"

static char g_service[32] = "antar";
/* Set once before any thread starts (antar_log_set_fd), read by every thread after. */
static int g_fd = STDOUT_FILENO;

void antar_log_init(const char *service)
{
    if (service && *service)
        snprintf(g_service, sizeof(g_service), "%s", service);
}

void antar_log_set_fd(int fd)
{
    g_fd = fd;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(g_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* "YYYY-MM-DDTHH:MM:SS" of the last second this thread formatted: gmtime_r and strftime once
 * a second instead of on every line. */
static void log_ts(char out[32])
{
    static _Thread_local long long last_sec = -1;
    static _Thread_local char last_date[24];
    long long ms = antar_now_ms();
    long long sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    if (sec != last_sec) {
        char full[32];
        antar_time_rfc3339(sec * 1000, full);
        memcpy(last_date, full, 19);
        last_date[19] = '\0';
        last_sec = sec;
    }
    memcpy(out, last_date, 19);
    out[19] = '.';
    out[20] = (char)('0' + rem / 100);
    out[21] = (char)('0' + rem / 10 % 10);
    out[22] = (char)('0' + rem % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

/* ---- a line built by hand (antar_log_fields) ------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool heap, failed;
    char stack[1024];
} lbuf_t;

static void lb_init(lbuf_t *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
    b->heap = false;
    b->failed = false;
}

static bool lb_room(lbuf_t *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap * 2;
    while (cap < b->len + n)
        cap *= 2;
    char *q = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!q) {
        b->failed = true;
        return false;
    }
    if (!b->heap)
        memcpy(q, b->p, b->len);
    b->p = q;
    b->cap = cap;
    b->heap = true;
    return true;
}

static void lb_add(lbuf_t *b, const char *s, size_t n)
{
    if (lb_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void lb_str(lbuf_t *b, const char *s)
{
    lb_add(b, s, strlen(s));
}

/* Valid UTF-8 as jansson checks it (shortest form, no surrogates, at most U+10FFFF): jansson
 * refuses anything else, and antar_log_json then leaves the field out; so do we. */
static bool utf8_ok(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;
    unsigned cp;
    for (size_t n; p < end; p += n)
        if ((n = antar_utf8_decode(p, end, &cp)) == 0)
            return false;
    return true;
}

/* A JSON string with jansson's escapes: \" \\ \b \f \n \r \t, \u00XX (upper-case hex) for
 * other controls. */
static void lb_json_str(lbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!lb_room(b, n + 2))
        return;
    b->p[b->len++] = '"';
    size_t run = 0; /* start of the pending plain run */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        lb_add(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        lb_add(b, e, el);
    }
    lb_add(b, s + run, n - run);
    lb_add(b, "\"", 1);
}

static void lb_ll(lbuf_t *b, long long v)
{
    char d[24];
    size_t i = sizeof(d);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--i] = '-';
    lb_add(b, d + i, sizeof(d) - i);
}

/* jansson's real format at JSON_REAL_PRECISION(9): %.9g, always with a '.' or an 'e', and the
 * exponent without '+' or leading zeros. */
static void lb_real(lbuf_t *b, double v)
{
    char d[64];
    if (!isfinite(v)) {
        lb_str(b, "null"); /* jansson cannot encode these either */
        return;
    }
    int n = snprintf(d, sizeof(d) - 3, "%.9g", v);
    if (n < 0 || (size_t)n >= sizeof(d) - 3)
        return;
    size_t len = (size_t)n;
    for (size_t i = 0; i < len; i++)
        if (d[i] == ',')
            d[i] = '.'; /* a locale's decimal comma */
    if (!strchr(d, '.') && !strchr(d, 'e')) {
        memcpy(d + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(d, 'e');
    if (e) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - d) + 1);
            len -= (size_t)(end - start);
        }
    }
    lb_add(b, d, len);
}

/* Microseconds as milliseconds: what %.9g prints for us/1e3 while below 10^9 us, i.e. the exact
 * decimal with trailing zeros cut (and ".0" when whole). */
static void lb_ms(lbuf_t *b, long long us)
{
    if (us < 0 || us >= 1000000000LL) {
        lb_real(b, (double)us / 1e3);
        return;
    }
    lb_ll(b, us / 1000);
    int frac = (int)(us % 1000);
    char d[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                 (char)('0' + frac % 10)};
    size_t n = 4;
    while (n > 2 && d[n - 1] == '0')
        n--;
    lb_add(b, d, n);
}

static void lb_header(lbuf_t *b, const char *level, const char *event)
{
    char ts[32];
    log_ts(ts);
    lb_str(b, "{\"ts\":\"");
    lb_add(b, ts, 24);
    lb_str(b, "\",\"level\":");
    level = level ? level : "info";
    lb_json_str(b, level, strlen(level));
    lb_str(b, ",\"service\":");
    lb_json_str(b, g_service, strlen(g_service));
    lb_str(b, ",\"event\":");
    event = event ? event : "message";
    lb_json_str(b, event, strlen(event));
    const antar_trace_t *t = antar_trace_current();
    if (t) {
        lb_str(b, ",\"trace_id\":");
        lb_json_str(b, t->trace_id, strlen(t->trace_id));
        lb_str(b, ",\"span_id\":");
        lb_json_str(b, t->span_id, strlen(t->span_id));
    }
}

void antar_log_fields(const char *level, const char *event, const antar_log_field_t *f, size_t n)
{
    lbuf_t b;
    lb_init(&b);
    lb_header(&b, level, event);
    for (size_t i = 0; i < n; i++) {
        size_t sl = 0;
        if (f[i].kind == ANTAR_LOG_STR && f[i].s) {
            sl = strlen(f[i].s);
            if (!utf8_ok((const unsigned char *)f[i].s, sl))
                continue;
        }
        lb_str(&b, ",\"");
        lb_str(&b, f[i].key);
        lb_str(&b, "\":");
        switch (f[i].kind) {
        case ANTAR_LOG_STR:
            if (f[i].s)
                lb_json_str(&b, f[i].s, sl);
            else
                lb_str(&b, "null");
            break;
        case ANTAR_LOG_INT:
            lb_ll(&b, f[i].i);
            break;
        case ANTAR_LOG_REAL:
            lb_real(&b, f[i].d);
            break;
        case ANTAR_LOG_MS:
            lb_ms(&b, f[i].i);
            break;
        case ANTAR_LOG_NULL:
        default:
            lb_str(&b, "null");
            break;
        }
    }
    lb_add(&b, "}\n", 2);
    if (!b.failed)
        write_all(b.p, b.len);
    if (b.heap)
        free(b.p);
}

void antar_log_json(const char *level, const char *event, json_t *fields)
{
    char ts[32];
    log_ts(ts);
    json_t *line = json_object();
    if (!line) {
        json_decref(fields);
        return;
    }
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level ? level : "info"));
    json_object_set_new(line, "service", json_string(g_service));
    json_object_set_new(line, "event", json_string(event ? event : "message"));
    const antar_trace_t *t = antar_trace_current();
    if (t) {
        json_object_set_new(line, "trace_id", json_string(t->trace_id));
        json_object_set_new(line, "span_id", json_string(t->span_id));
    }
    if (json_is_object(fields))
        json_object_update(line, fields);
    json_decref(fields);

    /* 9 significant digits: durations read "0.198", not "0.19800000000000001". */
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    /* Append the newline in place so the line is one buffer and one write(). */
    char *out = realloc(text, len + 2);
    if (!out) {
        free(text);
        return;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    write_all(out, len + 1);
    free(out);
}

void antar_logf(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A message may come from arbitrary bytes (an errno string, a peer's reply): make it valid
     * UTF-8 for jansson by replacing what it refuses, rather than dropping the whole line. */
    json_t *s = json_string(msg);
    if (!s) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        s = json_string(msg);
    }
    json_t *f = json_object();
    json_object_set_new(f, "msg", s ? s : json_string(""));
    antar_log_json(level, "message", f);
}
