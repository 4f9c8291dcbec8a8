/* events.c — the push channel: publishing to the Redis Stream and serving it as SSE.
 *
 * Threads. A stream never holds an MHD pool thread: when its buffer is empty the content reader
 * suspends the connection (MHD_suspend_connection, allowed there) and returns 0; the hub thread
 * appends bytes under the stream's mutex and resumes it (MHD_resume_connection, callable from
 * any thread). The pool stays free for ordinary requests however many streams are open; each
 * open stream costs a socket, this struct and its buffer.
 *
 * Order. The hub alone reads the Redis Stream. A new stream waits on the pending list with the
 * id it has seen last (its Last-Event-ID, or the stream's newest entry when it came without
 * one); at the top of each round the hub replays (last, cursor] to it with XRANGE and moves it
 * to the live list, then reads what comes after the cursor with XREAD. Replay and live delivery
 * meet at the cursor, and a stream is never given an id at or below the last one it got.
 *
 * Lifetime. A stream has two owners: the response (released by MHD through ev_free) and the
 * hub while it replays without the list lock. `gone` is set by ev_free before it unlinks, so the
 * hub never resumes a connection that MHD has finished with.
 */
#include "antar/events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <microhttpd.h>

#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "http_internal.h"

#define ID_MAX 48
#define SUB_MAX 64
#define ORDERS_MAX 16
#define BUF_MAX (512u * 1024u) /* pending bytes past which a slow stream is ended (it resumes) */
#define REPLAY_BATCH 500       /* entries per XRANGE */
#define REPLAY_MAX 100000      /* entries scanned for one reconnect at most */
#define READ_COUNT 1000        /* entries per XREAD */
#define LIMIT_TTL_MS 60000     /* a stream's slot in the per-principal set lives this long... */
#define LIMIT_REFRESH_MS 20000 /* ...and is renewed this often while the stream is open */
#define RETRY_MS 3000          /* the reconnect delay the stream asks of EventSource clients */

typedef struct ev_stream {
    struct ev_stream *next, *prev;
    pthread_mutex_t mu; /* buf, suspended, closing, gone */
    _Atomic int refs;
    struct MHD_Connection *conn;
    char sub[SUB_MAX];
    bool all;  /* ops: the whole city */
    bool user; /* a customer: follows order:<id> of their assigned orders */
    long long orders[ORDERS_MAX];
    size_t norders;
    char last[ID_MAX]; /* the last id given to this stream (hub only, after linking) */
    bool live;         /* on the live list (else pending replay) */
    char *buf;
    size_t len, off, cap;
    bool suspended, closing, gone;
    long long next_hb_ms, opened_ms;
    long long exp_ms; /* the token's exp: the stream ends then, and the client reconnects with a
                         fresh token (so a revoked or expired token does not keep a stream) */
    char limit_key[96], member[33];
} ev_stream_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* the two lists, g_open */
static ev_stream_t *g_live, *g_pending;
static long g_open;
static pthread_t g_hub;
static bool g_hub_up;
static _Atomic bool g_stop;
static antar_server_t *g_srv;
static long g_hb_ms = 10000, g_max_per = 3;

static pthread_once_t g_pub_once = PTHREAD_ONCE_INIT;
static char g_maxlen[24] = "100000";

/* ---- ids -------------------------------------------------------------------------------- */

static bool id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    if (!s)
        return false;
    size_t a = strspn(s, "0123456789");
    if (a == 0 || a > 20 || s[a] != '-')
        return false;
    size_t b = strspn(s + a + 1, "0123456789");
    if (b == 0 || b > 20 || s[a + 1 + b] != '\0')
        return false;
    char *end;
    *ms = strtoull(s, &end, 10);
    *seq = strtoull(s + a + 1, &end, 10);
    return true;
}

bool antar_events_id_ok(const char *s)
{
    unsigned long long a, b;
    return id_parse(s, &a, &b);
}

int antar_events_id_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    bool aok = id_parse(a, &am, &as), bok = id_parse(b, &bm, &bs);
    if (!aok || !bok)
        return (int)aok - (int)bok;
    if (am != bm)
        return am < bm ? -1 : 1;
    if (as != bs)
        return as < bs ? -1 : 1;
    return 0;
}

/* ---- publishing ------------------------------------------------------------------------- */

static void pub_init(void)
{
    snprintf(g_maxlen, sizeof g_maxlen, "%ld",
             antar_config_long("ANTAR_EVENTS_MAXLEN", 100000, 100, 100000000));
}

antar_err_t antar_events_publish(const char *type, const char *aud, const json_t *data)
{
    antar_event_t ev = {.type = type, .data = (json_t *)data};
    snprintf(ev.aud, sizeof ev.aud, "%s", aud ? aud : "");
    return antar_events_publish_many(&ev, 1) == 1 ? ANTAR_OK : ANTAR_E_KV;
}

size_t antar_events_publish_many(const antar_event_t *events, size_t n)
{
    pthread_once(&g_pub_once, pub_init);
    if (n == 0)
        return 0;
    /* XADD key MAXLEN ~ N * t <type> a <aud> d <json>: 12 arguments per event. */
    enum { ARGS = 12 };
    const char **argv = calloc(n * ARGS, sizeof *argv);
    size_t *lens = calloc(n * ARGS, sizeof *lens);
    char **json = calloc(n, sizeof *json);
    antar_kv_cmd_t *cmds = calloc(n, sizeof *cmds);
    size_t k = 0, stored = 0;
    if (!argv || !lens || !json || !cmds)
        goto done;
    for (size_t i = 0; i < n; i++) {
        json[i] = events[i].data ? antar_json_dumps(events[i].data, JSON_COMPACT) : NULL;
        if (!json[i])
            continue;
        const char *a[ARGS] = {
            "XADD", ANTAR_EVENTS_KEY, "MAXLEN", "~",           g_maxlen, "*",
            "t",    events[i].type,   "a",      events[i].aud, "d",      json[i]};
        const char **av = argv + k * ARGS;
        size_t *lv = lens + k * ARGS;
        for (int j = 0; j < ARGS; j++) {
            av[j] = a[j];
            lv[j] = strlen(a[j]);
        }
        cmds[k++] = (antar_kv_cmd_t){ARGS, av, lv};
    }
    int ok = k ? antar_kv_pipeline(cmds, k) : 0;
    stored = ok > 0 ? (size_t)ok : 0;
    for (size_t i = 0; i < k; i++)
        antar_metrics_count("antar_events_published_total", "type", cmds[i].argv[7]);
done:
    if (stored < n)
        antar_log_json("warn", "events_publish_failed",
                       json_pack("{s:s, s:I, s:I}", "type", n ? events[0].type : "", "events",
                                 (json_int_t)n, "stored", (json_int_t)stored));
    for (size_t i = 0; json && i < n; i++)
        free(json[i]);
    free(json);
    free(argv);
    free(lens);
    free(cmds);
    return stored;
}

/* ---- one stream ------------------------------------------------------------------------- */

static void st_unref(ev_stream_t *st)
{
    if (atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&st->mu);
    free(st->buf);
    free(st);
}

/* Append bytes; past BUF_MAX of unsent bytes the stream is ended instead (its client comes back
 * with Last-Event-ID and is replayed). st->mu held. */
static void st_append(ev_stream_t *st, const char *s, size_t n)
{
    if (st->closing)
        return;
    if (st->len - st->off + n > BUF_MAX) {
        st->closing = true;
        antar_metrics_count("antar_event_streams_closed_total", "reason", "slow_client");
        return;
    }
    if (st->off > 0 && st->len + n > st->cap) {
        memmove(st->buf, st->buf + st->off, st->len - st->off);
        st->len -= st->off;
        st->off = 0;
    }
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n)
            cap *= 2;
        char *p = realloc(st->buf, cap);
        if (!p) {
            st->closing = true;
            return;
        }
        st->buf = p;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
}

/* Connections to resume once this thread holds none of our locks: MHD takes its own locks in
 * MHD_resume_connection, and resuming after ours are released keeps the two sets of locks from
 * ever being taken in opposite orders. A connection whose `suspended` flag was cleared here
 * cannot be closed or resumed by anyone else meanwhile: MHD does not touch a suspended
 * connection, and only the one who cleared the flag resumes it. */
static _Thread_local struct {
    struct MHD_Connection **v;
    size_t n, cap;
} t_resume;

/* Let MHD write what is buffered (or end the stream): queued for resumes_flush. st->mu held. */
static void st_wake(ev_stream_t *st)
{
    if (!st->suspended || st->gone)
        return;
    st->suspended = false;
    if (t_resume.n == t_resume.cap) {
        size_t cap = t_resume.cap ? t_resume.cap * 2 : 64;
        struct MHD_Connection **v = realloc(t_resume.v, cap * sizeof *v);
        if (!v) {
            MHD_resume_connection(st->conn); /* out of memory: now, under the lock */
            return;
        }
        t_resume.v = v;
        t_resume.cap = cap;
    }
    t_resume.v[t_resume.n++] = st->conn;
}

/* Resume what st_wake queued on this thread. Call with none of this file's locks held. */
static void resumes_flush(void)
{
    for (size_t i = 0; i < t_resume.n; i++)
        MHD_resume_connection(t_resume.v[i]);
    t_resume.n = 0;
}

static void resumes_free(void)
{
    free(t_resume.v);
    t_resume.v = NULL;
    t_resume.n = t_resume.cap = 0;
}

static long ev_read(void *cls, char *out, size_t max)
{
    ev_stream_t *st = cls;
    long n;
    pthread_mutex_lock(&st->mu);
    if (st->off < st->len) {
        size_t k = st->len - st->off < max ? st->len - st->off : max;
        memcpy(out, st->buf + st->off, k);
        st->off += k;
        if (st->off == st->len)
            st->off = st->len = 0;
        n = (long)k;
    } else if (st->closing) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: out of MHD's loop until the hub has something (or a heartbeat). */
        st->suspended = true;
        MHD_suspend_connection(st->conn);
        n = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void ix_unlink(ev_stream_t *st);

static void limit_release(const ev_stream_t *st)
{
    redisReply *r = antar_kv_command("ZREM %s %s", st->limit_key, st->member);
    if (r)
        freeReplyObject(r);
}

static void ev_free(void *cls)
{
    ev_stream_t *st = cls;
    pthread_mutex_lock(&st->mu);
    st->gone = true;
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_lock(&g_mu);
    if (st->live)
        ix_unlink(st);
    if (st->prev)
        st->prev->next = st->next;
    else if (g_live == st)
        g_live = st->next;
    else if (g_pending == st)
        g_pending = st->next;
    if (st->next)
        st->next->prev = st->prev;
    g_open--;
    pthread_mutex_unlock(&g_mu);
    limit_release(st);
    antar_log_json("info", "event_stream_closed",
                   json_pack("{s:s, s:I}", "sub", st->sub, "open_ms",
                             (json_int_t)(antar_mono_ms() - st->opened_ms)));
    st_unref(st);
}

/* ---- what a stream sees ----------------------------------------------------------------- */

/* Whether the space-separated list aud holds word. */
static bool aud_has(const char *aud, const char *word)
{
    size_t wl = strlen(word);
    for (const char *s = aud; *s;) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == wl && n && strncmp(s, word, n) == 0)
            return true;
        s += n;
    }
    return false;
}

/* ---- the live streams by subject ----------------------------------------------------------
 * Each event names its audience, so the hub looks its subjects up here instead of testing every
 * open stream: delivery costs what the audience has, not what the process holds. Keys: the
 * stream's subject ("driver:5"), "order:<id>" for each order a customer's stream follows, and
 * "*" for the ops streams. Live streams only, under g_mu. */
#define INDEX_BUCKETS 4096

typedef struct ix_entry {
    struct ix_entry *next;
    char key[SUB_MAX];
    ev_stream_t **v;
    size_t n, cap;
} ix_entry_t;

static ix_entry_t *g_index[INDEX_BUCKETS];

static size_t ix_hash(const char *k, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return (size_t)(h & (INDEX_BUCKETS - 1));
}

/* The entry of key (n bytes), or NULL. */
static ix_entry_t *ix_find(const char *key, size_t n)
{
    if (n == 0 || n >= SUB_MAX)
        return NULL;
    for (ix_entry_t *e = g_index[ix_hash(key, n)]; e; e = e->next)
        if (strncmp(e->key, key, n) == 0 && e->key[n] == '\0')
            return e;
    return NULL;
}

static void ix_add(const char *key, ev_stream_t *st)
{
    size_t n = strlen(key);
    ix_entry_t *e = ix_find(key, n);
    if (!e) {
        if (n == 0 || n >= SUB_MAX || !(e = calloc(1, sizeof *e)))
            return;
        memcpy(e->key, key, n + 1);
        size_t b = ix_hash(key, n);
        e->next = g_index[b];
        g_index[b] = e;
    }
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i] == st)
            return;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 2;
        ev_stream_t **v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return; /* out of memory: this stream misses the key's events until it reconnects */
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = st;
}

static void ix_del(const char *key, ev_stream_t *st)
{
    size_t n = strlen(key), b = ix_hash(key, n);
    for (ix_entry_t **pp = &g_index[b], *e; (e = *pp); pp = &e->next) {
        if (strcmp(e->key, key) != 0)
            continue;
        for (size_t i = 0; i < e->n; i++)
            if (e->v[i] == st)
                e->v[i--] = e->v[--e->n];
        if (e->n == 0) {
            *pp = e->next;
            free(e->v);
            free(e);
        }
        return;
    }
}

static void order_key(long long order_id, char out[SUB_MAX])
{
    snprintf(out, SUB_MAX, "order:%lld", order_id);
}

static void ix_link(ev_stream_t *st)
{
    char k[SUB_MAX];
    ix_add(st->all ? "*" : st->sub, st);
    for (size_t i = 0; i < st->norders; i++) {
        order_key(st->orders[i], k);
        ix_add(k, st);
    }
}

static void ix_unlink(ev_stream_t *st)
{
    char k[SUB_MAX];
    ix_del(st->all ? "*" : st->sub, st);
    for (size_t i = 0; i < st->norders; i++) {
        order_key(st->orders[i], k);
        ix_del(k, st);
    }
}

static void ix_free_all(void)
{
    for (size_t b = 0; b < INDEX_BUCKETS; b++) {
        for (ix_entry_t *e = g_index[b], *next; e; e = next) {
            next = e->next;
            free(e->v);
            free(e);
        }
        g_index[b] = NULL;
    }
}

static bool st_follows(const ev_stream_t *st, long long order_id)
{
    for (size_t i = 0; i < st->norders; i++)
        if (st->orders[i] == order_id)
            return true;
    return false;
}

/* Follow order_id's events (on) or stop. A live stream's index entries follow (g_mu held). */
static void st_follow(ev_stream_t *st, long long order_id, bool on)
{
    char k[SUB_MAX];
    order_key(order_id, k);
    for (size_t i = 0; i < st->norders; i++) {
        if (st->orders[i] == order_id) {
            if (!on) {
                st->orders[i] = st->orders[--st->norders];
                if (st->live)
                    ix_del(k, st);
            }
            return;
        }
    }
    if (on && st->norders < ORDERS_MAX) {
        st->orders[st->norders++] = order_id;
        if (st->live)
            ix_add(k, st);
    }
}

/* One event as the hub read it. */
typedef struct {
    const char *id, *type, *aud, *data;
    size_t data_len;
    long long order_id; /* order_status: the order; driver_position: from "order:<id>" */
    const char *status; /* order_status only */
    char status_buf[16];
} ev_entry_t;

static bool status_assigned(const char *s)
{
    return s && (strcmp(s, "accepted") == 0 || strcmp(s, "picked_up") == 0);
}

/* Give e to st if st may see it and has not yet. Hub thread; st->mu taken here. */
static void st_deliver(ev_stream_t *st, const ev_entry_t *e)
{
    if (!st->all) {
        bool mine = aud_has(e->aud, st->sub);
        if (!mine && st->user && e->order_id > 0 && strstr(e->aud, "order:"))
            mine = st_follows(st, e->order_id);
        if (!mine)
            return;
        if (st->user && e->status && e->order_id > 0)
            st_follow(st, e->order_id, status_assigned(e->status));
    }
    if (antar_events_id_cmp(e->id, st->last) <= 0)
        return;
    snprintf(st->last, sizeof st->last, "%s", e->id);
    char head[160];
    int hn = snprintf(head, sizeof head, "id: %s\nevent: %s\ndata: ", e->id, e->type);
    pthread_mutex_lock(&st->mu);
    st_append(st, head, (size_t)hn);
    st_append(st, e->data, e->data_len);
    st_append(st, "\n\n", 2);
    st_wake(st);
    pthread_mutex_unlock(&st->mu);
}

/* Fill e from one stream entry [id, [field, value, ...]]; false for an entry to skip. */
static bool entry_parse(const redisReply *r, ev_entry_t *e)
{
    memset(e, 0, sizeof *e);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    e->id = r->element[0]->str;
    const redisReply *f = r->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "t") == 0)
            e->type = v->str;
        else if (strcmp(k->str, "a") == 0)
            e->aud = v->str;
        else if (strcmp(k->str, "d") == 0) {
            e->data = v->str;
            e->data_len = v->len;
        }
    }
    /* The type becomes an SSE field and the data one data: line: no line breaks in either. */
    if (!e->type || !e->aud || !e->data || strlen(e->type) > 32 || strpbrk(e->type, "\r\n") ||
        memchr(e->data, '\n', e->data_len) || memchr(e->data, '\r', e->data_len))
        return false;
    const char *o = strstr(e->aud, "order:");
    if (o)
        e->order_id = atoll(o + 6);
    if (strcmp(e->type, "order_status") == 0) {
        json_t *d = json_loadb(e->data, e->data_len, 0, NULL);
        if (d) {
            e->order_id = json_integer_value(json_object_get(d, "order_id"));
            const char *s = json_string_value(json_object_get(d, "status"));
            if (s) {
                snprintf(e->status_buf, sizeof e->status_buf, "%s", s);
                e->status = e->status_buf;
            }
            json_decref(d);
        }
    }
    return true;
}

/* ---- the hub ---------------------------------------------------------------------------- */

/* The newest id in the stream into out ("0-0" when it is empty). false when Redis fails. */
static bool newest_id(char out[ID_MAX])
{
    redisReply *r = antar_kv_command("XREVRANGE %s + - COUNT 1", ANTAR_EVENTS_KEY);
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    if (ok) {
        snprintf(out, ID_MAX, "0-0");
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
            snprintf(out, ID_MAX, "%s", r->element[0]->element[0]->str);
    }
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Replay (st->last, cursor] to st. Hub thread, without g_mu (st is referenced). */
static void replay(ev_stream_t *st, const char *cursor)
{
    char from[ID_MAX];
    snprintf(from, sizeof from, "%s", st->last);
    long scanned = 0;
    while (antar_events_id_cmp(from, cursor) < 0 && scanned < REPLAY_MAX) {
        redisReply *r = antar_kv_command("XRANGE %s (%s %s COUNT %d", ANTAR_EVENTS_KEY, from,
                                         cursor, REPLAY_BATCH);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            /* Redis is away: end the stream rather than go live with a hole in it. */
            pthread_mutex_lock(&st->mu);
            st->closing = true;
            st_wake(st);
            pthread_mutex_unlock(&st->mu);
            resumes_flush();
            if (r)
                freeReplyObject(r);
            return;
        }
        for (size_t i = 0; i < r->elements; i++) {
            ev_entry_t e;
            if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements >= 1 &&
                r->element[i]->element[0]->type == REDIS_REPLY_STRING)
                snprintf(from, sizeof from, "%s", r->element[i]->element[0]->str);
            if (entry_parse(r->element[i], &e))
                st_deliver(st, &e);
        }
        resumes_flush();
        scanned += (long)r->elements;
        bool more = r->elements == REPLAY_BATCH;
        freeReplyObject(r);
        if (!more)
            break;
    }
    antar_metrics_count("antar_event_streams_total", "start", scanned ? "replayed" : "fresh");
}

/* Move every pending stream to the live list after its replay up to cursor. */
static void promote_pending(const char *cursor)
{
    for (;;) {
        pthread_mutex_lock(&g_mu);
        ev_stream_t *st = g_pending;
        if (st)
            atomic_fetch_add(&st->refs, 1);
        pthread_mutex_unlock(&g_mu);
        if (!st)
            return;
        replay(st, cursor);
        pthread_mutex_lock(&g_mu);
        pthread_mutex_lock(&st->mu);
        bool gone = st->gone;
        pthread_mutex_unlock(&st->mu);
        if (!gone) {
            /* Off the pending list, onto the live one. */
            if (st->prev)
                st->prev->next = st->next;
            else
                g_pending = st->next;
            if (st->next)
                st->next->prev = st->prev;
            st->prev = NULL;
            st->next = g_live;
            if (g_live)
                g_live->prev = st;
            g_live = st;
            st->live = true;
            ix_link(st);
            /* A stream that came with no Last-Event-ID may have been given an id past the
             * cursor; one given an older id is now at the cursor. */
            if (antar_events_id_cmp(st->last, cursor) < 0)
                snprintf(st->last, sizeof st->last, "%s", cursor);
        }
        pthread_mutex_unlock(&g_mu);
        resumes_flush();
        st_unref(st);
    }
}

/* Hand e to the live streams its audience names, and to the ops streams. g_mu held. A stream
 * reached twice (two of its keys) is given the event once (st_deliver's id check). */
static void deliver_indexed(const ev_entry_t *e)
{
    const char *keys[9];
    size_t lens[9], nk = 0;
    keys[nk] = "*";
    lens[nk++] = 1;
    for (const char *a = e->aud; *a && nk < 9;) {
        while (*a == ' ')
            a++;
        size_t n = strcspn(a, " ");
        if (n) {
            keys[nk] = a;
            lens[nk++] = n;
        }
        a += n;
    }
    for (size_t k = 0; k < nk; k++) {
        ix_entry_t *ix = ix_find(keys[k], lens[k]);
        if (!ix || ix->n == 0)
            continue;
        /* A copy: delivering an order_status may change which orders a stream follows. */
        ev_stream_t *small[32], **v = ix->n <= 32 ? small : malloc(ix->n * sizeof *v);
        if (!v)
            continue;
        size_t n = ix->n;
        memcpy(v, ix->v, n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            st_deliver(v[i], e);
        if (v != small)
            free(v);
    }
}

/* XREAD after cursor (blocking up to block_ms) and hand each entry to the live streams.
 * Advances cursor. false when Redis failed. */
static bool read_live(char cursor[ID_MAX], int block_ms)
{
    redisReply *r = antar_kv_command("XREAD COUNT %d BLOCK %d STREAMS %s %s", READ_COUNT, block_ms,
                                     ANTAR_EVENTS_KEY, cursor);
    if (!r)
        return false;
    bool ok = r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_NIL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        pthread_mutex_lock(&g_mu);
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *en = entries->element[i];
            if (en->type == REDIS_REPLY_ARRAY && en->elements >= 1 &&
                en->element[0]->type == REDIS_REPLY_STRING)
                snprintf(cursor, ID_MAX, "%s", en->element[0]->str);
            ev_entry_t e;
            if (entry_parse(en, &e))
                deliver_indexed(&e);
        }
        pthread_mutex_unlock(&g_mu);
        resumes_flush();
    }
    freeReplyObject(r);
    return ok;
}

/* Heartbeats on the live streams; every LIMIT_REFRESH_MS the per-principal slots of all open
 * streams renewed, in one pipeline sent after the list lock is released (with copies of the
 * keys: a stream may be freed meanwhile). */
static void housekeeping(long long *next_refresh)
{
    long long now = antar_mono_ms(), wall = antar_now_ms();
    bool refresh = now >= *next_refresh;
    typedef struct {
        char key[96], member[33];
        const char *argv[5];
        size_t lens[5];
    } slot_t;
    slot_t *slots = NULL;
    antar_kv_cmd_t *cmds = NULL;
    size_t n = 0, cap = 0;
    char score[24];
    snprintf(score, sizeof score, "%lld", antar_now_ms() + LIMIT_TTL_MS);
    pthread_mutex_lock(&g_mu);
    if (refresh && g_open > 0) {
        cap = (size_t)g_open;
        slots = calloc(cap, sizeof *slots);
        cmds = calloc(cap, sizeof *cmds);
    }
    for (int list = 0; list < 2; list++) {
        for (ev_stream_t *st = list ? g_pending : g_live; st; st = st->next) {
            if (st->exp_ms > 0 && wall >= st->exp_ms) {
                pthread_mutex_lock(&st->mu);
                st->closing = true;
                st_wake(st);
                pthread_mutex_unlock(&st->mu);
            }
            if (list == 0 && now >= st->next_hb_ms) {
                pthread_mutex_lock(&st->mu);
                st_append(st, ":hb\n\n", 5);
                st_wake(st);
                pthread_mutex_unlock(&st->mu);
                st->next_hb_ms = now + g_hb_ms;
            }
            if (slots && cmds && n < cap) {
                slot_t *sl = &slots[n];
                snprintf(sl->key, sizeof sl->key, "%s", st->limit_key);
                snprintf(sl->member, sizeof sl->member, "%s", st->member);
                n++;
            }
        }
    }
    pthread_mutex_unlock(&g_mu);
    resumes_flush();
    if (refresh) {
        *next_refresh = now + LIMIT_REFRESH_MS;
        for (size_t i = 0; i < n; i++) {
            slot_t *sl = &slots[i];
            const char *a[5] = {"ZADD", sl->key, "XX", score, sl->member};
            for (int j = 0; j < 5; j++) {
                sl->argv[j] = a[j];
                sl->lens[j] = strlen(a[j]);
            }
            cmds[i] = (antar_kv_cmd_t){5, sl->argv, sl->lens};
        }
        if (n)
            (void)antar_kv_pipeline(cmds, n);
    }
    free(slots);
    free(cmds);
}

/* End every stream: each says goodbye once its buffer is written (clients reconnect, to another
 * instance while this one drains). */
static void close_all(void)
{
    pthread_mutex_lock(&g_mu);
    for (int list = 0; list < 2; list++) {
        for (ev_stream_t *st = list ? g_pending : g_live; st; st = st->next) {
            pthread_mutex_lock(&st->mu);
            st->closing = true;
            st_wake(st);
            pthread_mutex_unlock(&st->mu);
        }
    }
    pthread_mutex_unlock(&g_mu);
    resumes_flush();
}

static void *hub(void *arg)
{
    (void)arg;
    char cursor[ID_MAX] = "";
    long long next_refresh = antar_mono_ms() + LIMIT_REFRESH_MS;
    int block_ms = antar_config()->redis_timeout_ms / 2;
    if (block_ms > 500 || block_ms <= 0)
        block_ms = 500;
    while (!atomic_load(&g_stop)) {
        if (g_srv && antar_server_draining(g_srv))
            close_all();
        bool ok = cursor[0] || newest_id(cursor);
        if (ok) {
            promote_pending(cursor);
            ok = read_live(cursor, block_ms);
        }
        housekeeping(&next_refresh);
        if (!ok) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    resumes_free();
    antar_kv_thread_end();
    return NULL;
}

static char *render_metrics(void)
{
    pthread_mutex_lock(&g_mu);
    long open = g_open;
    pthread_mutex_unlock(&g_mu);
    char *out = malloc(256);
    if (out)
        snprintf(out, 256,
                 "# HELP antar_event_streams_open Server-Sent Event streams open on this process.\n"
                 "# TYPE antar_event_streams_open gauge\nantar_event_streams_open %ld\n",
                 open);
    return out;
}

/* The server's stop hook: end every stream and wait (2 s at most) until MHD released them, so
 * that no connection is suspended when the daemons stop. */
static void stop_hook(void)
{
    close_all();
    long long until = antar_mono_ms() + 2000;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        long open = g_open;
        pthread_mutex_unlock(&g_mu);
        if (open == 0 || antar_mono_ms() >= until)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        close_all();
    }
    resumes_free();
}

int antar_events_start(antar_server_t *s)
{
    pthread_once(&g_pub_once, pub_init);
    g_hb_ms = antar_config_long("ANTAR_EVENTS_HEARTBEAT_MS", 10000, 100, 15000);
    g_max_per = antar_config_long("ANTAR_EVENTS_MAX_PER_PRINCIPAL", 3, 1, 1000);
    g_srv = s;
    antar_server_set_stop_hook(s, stop_hook);
    antar_metrics_add_source(render_metrics);
    atomic_store(&g_stop, false);
    if (pthread_create(&g_hub, NULL, hub, NULL) != 0) {
        antar_logf("error", "events: cannot start the hub thread");
        return -1;
    }
    g_hub_up = true;
    return 0;
}

void antar_events_stop(void)
{
    if (!g_hub_up)
        return;
    atomic_store(&g_stop, true);
    pthread_join(g_hub, NULL);
    g_hub_up = false;
    g_srv = NULL;
    pthread_mutex_lock(&g_mu);
    ix_free_all(); /* every stream is gone by now (the server's stop hook ended them) */
    pthread_mutex_unlock(&g_mu);
}

/* ---- the handler ------------------------------------------------------------------------ */

/* Accept allows text/event-stream: absent, or one of its ranges is text/event-stream, the text
 * wildcard or the full wildcard (parameters ignored). */
static bool accept_ok(const char *h)
{
    if (!h)
        return true;
    for (const char *s = h; *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ",;");
        size_t t = n;
        while (t && s[t - 1] == ' ')
            t--;
        if ((t == 17 && strncasecmp(s, "text/event-stream", 17) == 0) ||
            (t == 6 && strncasecmp(s, "text/*", 6) == 0) || (t == 3 && strncmp(s, "*/*", 3) == 0))
            return true;
        s += n;
        s += strcspn(s, ","); /* skip parameters */
    }
    return false;
}

static bool scope_has(const char *scopes, const char *want)
{
    return aud_has(scopes, want);
}

/* Take one of the principal's stream slots, across instances: 1 taken, 0 all taken, -1 Redis
 * failed. Slots left by a crashed process expire after LIMIT_TTL_MS. */
static int limit_take(const ev_stream_t *st)
{
    static const char script[] =
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) "
        "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end "
        "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4]) "
        "redis.call('PEXPIRE', KEYS[1], ARGV[5]) return 1";
    long long now = antar_now_ms();
    redisReply *r = antar_kv_command("EVAL %s 1 %s %lld %ld %lld %s %d", script, st->limit_key, now,
                                     g_max_per, now + LIMIT_TTL_MS, st->member, LIMIT_TTL_MS * 2);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    return rc;
}

void antar_events_serve(antar_req_t *req, const long long *orders, size_t n)
{
    const antar_principal_t *p = antar_req_principal(req);
    if (!p) {
        antar_http_fail(req, ANTAR_E_UNAUTHORIZED, NULL, NULL);
        return;
    }
    bool ops = p->role == ANTAR_AUTH_SERVICE;
    if (ops && !scope_has(p->scope, "ops")) {
        antar_http_fail(req, ANTAR_E_FORBIDDEN, NULL,
                        "only a service token with the ops scope may open the city stream");
        return;
    }
    if (!accept_ok(antar_req_header(req, "Accept"))) {
        antar_http_fail(req, ANTAR_E_NOT_ACCEPTABLE, "Accept",
                        "GET /events answers text/event-stream only");
        return;
    }
    if (!g_hub_up || (g_srv && antar_server_draining(g_srv))) {
        antar_http_fail(req, ANTAR_E_UNAVAILABLE, NULL, "event streams are not served here now");
        return;
    }
    const char *last = antar_req_header(req, "Last-Event-ID");
    const char *field = "Last-Event-ID";
    if (!last || !*last) {
        last = antar_req_query(req, "last_event_id");
        field = "last_event_id";
    }
    if (last && *last && !antar_events_id_ok(last)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, field,
                        "%s must be an event id this stream gave out", field);
        return;
    }

    ev_stream_t *st = calloc(1, sizeof *st);
    if (!st) {
        antar_http_fail(req, ANTAR_E_NOMEM, NULL, NULL);
        return;
    }
    pthread_mutex_init(&st->mu, NULL);
    atomic_store(&st->refs, 1);
    st->conn = antar_req_connection(req);
    st->all = ops;
    st->user = p->role == ANTAR_AUTH_USER;
    snprintf(st->sub, sizeof st->sub, "%s", p->sub);
    for (size_t i = 0; st->user && i < n && i < ORDERS_MAX; i++)
        st->orders[st->norders++] = orders[i];
    snprintf(st->limit_key, sizeof st->limit_key, "antar:events:conns:%s", p->sub);
    antar_random_hex(st->member, 16);
    if (last && *last) {
        snprintf(st->last, sizeof st->last, "%s", last);
    } else if (!newest_id(st->last)) {
        st_unref(st);
        antar_http_fail(req, ANTAR_E_KV, NULL, NULL);
        return;
    }
    int taken = limit_take(st);
    if (taken != 1) {
        st_unref(st);
        if (taken == 0)
            antar_http_fail(req, ANTAR_E_TOO_MANY_REQUESTS, NULL,
                            "at most %ld event streams may be open per principal; close one",
                            g_max_per);
        else
            antar_http_fail(req, ANTAR_E_KV, NULL, NULL);
        return;
    }
    st->opened_ms = antar_mono_ms();
    st->next_hb_ms = st->opened_ms + g_hb_ms;
    st->exp_ms = p->exp > 0 ? p->exp * 1000 : 0;
    /* The first bytes go out at once, so the client knows the stream is open (and registered:
     * whatever happens after this reaches it). */
    char hello[64];
    int hn = snprintf(hello, sizeof hello, "retry: %d\n:ok\n\n", RETRY_MS);
    st_append(st, hello, (size_t)hn);

    pthread_mutex_lock(&g_mu);
    st->next = g_pending;
    if (g_pending)
        g_pending->prev = st;
    g_pending = st;
    g_open++;
    pthread_mutex_unlock(&g_mu);
    antar_log_json("info", "event_stream_opened",
                   json_pack("{s:s, s:s, s:b}", "sub", st->sub, "last_event_id", st->last,
                             "resumed", last && *last));
    antar_http_add_header(req, "X-Accel-Buffering", "no");
    antar_req_set_stream(req, 200, "text/event-stream; charset=utf-8", ev_read, st, ev_free);
}
