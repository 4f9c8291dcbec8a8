/* metrics.c — Prometheus counters and histograms in fixed-size tables under one mutex.
 *
 * Fixed tables keep memory bounded whatever the traffic: the server only ever passes route
 * patterns (never raw paths) as labels, so the number of series is small; when a table is full,
 * new series are dropped and counted in antar_metrics_dropped_total instead of growing. */
#include "antar/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 96
#define NBUCKETS 11
static const double buckets[NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,   0.25,   0.5,   1.0,  2.5};

typedef struct {
    char a[LABEL_MAX], b[LABEL_MAX], c[LABEL_MAX];
    unsigned long long n;
} counter_t;

typedef struct {
    char key[LABEL_MAX];
    unsigned long long bucket[NBUCKETS]; /* non-cumulative; summed when rendering */
    unsigned long long count;
    double sum;
} histo_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static counter_t req_count[256];
static size_t n_req_count;
static histo_t req_histo[96];
static size_t n_req_histo;
static counter_t call_count[64];
static size_t n_call_count;
static histo_t call_histo[16];
static size_t n_call_histo;
static counter_t named[256]; /* a = metric name, b = label, c = value */
static size_t n_named;
static unsigned long long dropped;

static void copy_label(char dst[LABEL_MAX], const char *s)
{
    snprintf(dst, LABEL_MAX, "%s", s ? s : "");
}

/* stored (a label as copy_label keeps it) equals s cut the same way, without copying s. */
static int label_eq(const char *stored, const char *s)
{
    if (!s)
        s = "";
    for (size_t i = 0; i < LABEL_MAX - 1; i++) {
        if (stored[i] != s[i])
            return 0;
        if (!s[i])
            return 1;
    }
    return 1; /* both cut at LABEL_MAX - 1 */
}

static int counter_is(const counter_t *e, const char *a, const char *b, const char *c)
{
    return label_eq(e->a, a) && label_eq(e->b, b) && label_eq(e->c, c);
}

/* Finds or adds the series (a, b, c); NULL when the table is full. Caller holds mu. *hint is the
 * caller's guess (a thread's last index), tried first: a busy route hits it every time. */
static counter_t *counter_get_hint(counter_t *tab, size_t cap, size_t *n, const char *a,
                                   const char *b, const char *c, size_t *hint)
{
    if (hint && *hint < *n && counter_is(&tab[*hint], a, b, c))
        return &tab[*hint];
    for (size_t i = 0; i < *n; i++)
        if (counter_is(&tab[i], a, b, c)) {
            if (hint)
                *hint = i;
            return &tab[i];
        }
    if (*n >= cap) {
        dropped++;
        return NULL;
    }
    counter_t *e = &tab[(*n)++];
    copy_label(e->a, a);
    copy_label(e->b, b);
    copy_label(e->c, c);
    e->n = 0;
    if (hint)
        *hint = (size_t)(e - tab);
    return e;
}

static counter_t *counter_get(counter_t *tab, size_t cap, size_t *n, const char *a, const char *b,
                              const char *c)
{
    return counter_get_hint(tab, cap, n, a, b, c, NULL);
}

static void histo_observe_hint(histo_t *tab, size_t cap, size_t *n, const char *key, double v,
                               size_t *hint)
{
    histo_t *h = NULL;
    if (hint && *hint < *n && label_eq(tab[*hint].key, key))
        h = &tab[*hint];
    for (size_t i = 0; i < *n && !h; i++)
        if (label_eq(tab[i].key, key)) {
            h = &tab[i];
            if (hint)
                *hint = i;
        }
    if (!h) {
        if (*n >= cap) {
            dropped++;
            return;
        }
        h = &tab[(*n)++];
        memset(h, 0, sizeof(*h));
        copy_label(h->key, key);
        if (hint)
            *hint = (size_t)(h - tab);
    }
    if (!(v >= 0)) /* also catches NaN */
        v = 0;
    for (int i = 0; i < NBUCKETS; i++)
        if (v <= buckets[i]) {
            h->bucket[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

static void histo_observe(histo_t *tab, size_t cap, size_t *n, const char *key, double v)
{
    histo_observe_hint(tab, cap, n, key, v, NULL);
}

void antar_metrics_request(const char *route, const char *method, int status, double seconds)
{
    /* Each server thread mostly sees the same few series: remember where its last ones were. */
    static _Thread_local size_t count_hint, histo_hint;
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    pthread_mutex_lock(&mu);
    counter_t *c = counter_get_hint(req_count, 256, &n_req_count, route, method, st, &count_hint);
    if (c)
        c->n++;
    histo_observe_hint(req_histo, 96, &n_req_histo, route, seconds, &histo_hint);
    pthread_mutex_unlock(&mu);
}

void antar_metrics_call(const char *target, const char *outcome, double seconds)
{
    pthread_mutex_lock(&mu);
    counter_t *c = counter_get(call_count, 64, &n_call_count, target, outcome, "");
    if (c)
        c->n++;
    histo_observe(call_histo, 16, &n_call_histo, target, seconds);
    pthread_mutex_unlock(&mu);
}

void antar_metrics_count(const char *name, const char *label, const char *value)
{
    pthread_mutex_lock(&mu);
    counter_t *c = counter_get(named, 256, &n_named, name, label, value);
    if (c)
        c->n++;
    pthread_mutex_unlock(&mu);
}

#define SOURCES_MAX 8
static pthread_mutex_t src_mu = PTHREAD_MUTEX_INITIALIZER;
static char *(*sources[SOURCES_MAX])(void);
static size_t n_sources;

void antar_metrics_add_source(char *(*render)(void))
{
    pthread_mutex_lock(&src_mu);
    int known = 0;
    for (size_t i = 0; i < n_sources; i++)
        known |= sources[i] == render;
    if (render && !known && n_sources < SOURCES_MAX)
        sources[n_sources++] = render;
    pthread_mutex_unlock(&src_mu);
}

/* A growable text buffer; on allocation failure it sticks in a failed state (data == NULL). */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} buf_t;

static void bprintf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->data, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = ncap;
    }
}

/* Label values are escaped per the exposition format: backslash, quote and newline. */
static const char *esc(const char *s, char out[2 * LABEL_MAX])
{
    size_t j = 0;
    for (; *s && j + 2 < 2 * LABEL_MAX; s++) {
        if (*s == '\\' || *s == '"') {
            out[j++] = '\\';
            out[j++] = *s;
        } else if (*s == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *s;
        }
    }
    out[j] = '\0';
    return out;
}

/* Metric and label names from services go into the text unquoted: keep only [a-zA-Z0-9_:]. */
static const char *name_ok(const char *s, char out[LABEL_MAX])
{
    size_t j = 0;
    for (; *s && j + 1 < LABEL_MAX; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (j > 0 && c >= '0' && c <= '9');
        out[j++] = ok ? c : '_';
    }
    out[j] = '\0';
    return out;
}

static void render_histo(buf_t *b, const char *family, const char *label, const histo_t *tab,
                         size_t n)
{
    char e[2 * LABEL_MAX];
    bprintf(b, "# TYPE %s histogram\n", family);
    for (size_t i = 0; i < n; i++) {
        unsigned long long cum = 0;
        esc(tab[i].key, e);
        for (int k = 0; k < NBUCKETS; k++) {
            cum += tab[i].bucket[k];
            bprintf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", family, label, e, buckets[k], cum);
        }
        bprintf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", family, label, e, tab[i].count);
        bprintf(b, "%s_sum{%s=\"%s\"} %.6f\n", family, label, e, tab[i].sum);
        bprintf(b, "%s_count{%s=\"%s\"} %llu\n", family, label, e, tab[i].count);
    }
}

char *antar_metrics_render(void)
{
    buf_t b = {.data = malloc(8192), .cap = 8192};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';
    char e1[2 * LABEL_MAX], e2[2 * LABEL_MAX], e3[2 * LABEL_MAX];

    pthread_mutex_lock(&mu);
    bprintf(&b, "# TYPE antar_http_requests_total counter\n");
    for (size_t i = 0; i < n_req_count; i++)
        bprintf(&b, "antar_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                esc(req_count[i].a, e1), esc(req_count[i].b, e2), esc(req_count[i].c, e3),
                req_count[i].n);
    render_histo(&b, "antar_http_request_duration_seconds", "route", req_histo, n_req_histo);
    bprintf(&b, "# TYPE antar_calls_total counter\n");
    for (size_t i = 0; i < n_call_count; i++)
        bprintf(&b, "antar_calls_total{target=\"%s\",outcome=\"%s\"} %llu\n",
                esc(call_count[i].a, e1), esc(call_count[i].b, e2), call_count[i].n);
    render_histo(&b, "antar_call_duration_seconds", "target", call_histo, n_call_histo);

    /* Named counters: one TYPE line per family, families in first-seen order. */
    for (size_t i = 0; i < n_named; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(named[j].a, named[i].a);
        if (seen)
            continue;
        char fam[LABEL_MAX], lab[LABEL_MAX];
        name_ok(named[i].a, fam);
        bprintf(&b, "# TYPE %s counter\n", fam);
        for (size_t j = i; j < n_named; j++)
            if (!strcmp(named[j].a, named[i].a))
                bprintf(&b, "%s{%s=\"%s\"} %llu\n", fam, name_ok(named[j].b, lab),
                        esc(named[j].c, e1), named[j].n);
    }
    bprintf(&b, "# TYPE antar_metrics_dropped_total counter\nantar_metrics_dropped_total %llu\n",
            dropped);
    pthread_mutex_unlock(&mu);

    pthread_mutex_lock(&src_mu);
    size_t nsrc = n_sources;
    char *(*fns[SOURCES_MAX])(void);
    memcpy(fns, sources, sizeof fns);
    pthread_mutex_unlock(&src_mu);
    for (size_t i = 0; i < nsrc; i++) {
        char *extra = fns[i]();
        if (extra)
            bprintf(&b, "%s", extra);
        free(extra);
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
