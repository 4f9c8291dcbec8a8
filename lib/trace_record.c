/* trace_record.c — the trace record behind the console's waterfall (antar/trace.h).
 *
 * Two keys, whatever the load: the hash antar:calls holds, per trace id, its spans as lines of
 * compact JSON (and per order, "o:<id>", its steps), and the sorted set antar:calls:age holds
 * each field's first write time. Each write is one small script: append the line, note the age
 * of a new field, and when there are more than ANTAR_TRACE_RECORD_MAX (10,000) fields, drop the
 * oldest. So memory is bounded (about a kilobyte per trace; Redis runs with noeviction, where a
 * full Redis would turn off the login throttle and revocation: docs/security.md), the key count
 * is constant (the soak judges it), and a read is two HMGETs, never a scan. One field is capped
 * at 64 KiB: a runaway trace cannot grow without end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

static bool g_on;
static char g_max[24] = "10000";

static long env_range(const char *name, long def, long lo, long hi)
{
    const char *v = antar_config_env(name, NULL);
    if (!v || !*v)
        return def;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi) {
        antar_logf("warn", "%s=%s is not in [%ld, %ld]; using %ld", name, v, lo, hi, def);
        return def;
    }
    return n;
}

#define FIELD_MAX_BYTES "65536"

/* KEYS: the hash, the age set. ARGV: field, line, now (ms), most fields. */
static const char lua_append[] =
    "local f = ARGV[1]\n"
    "local n = redis.call('HSTRLEN', KEYS[1], f)\n"
    "if n > " FIELD_MAX_BYTES " then return 0 end\n"
    "redis.call('HSET', KEYS[1], f, (redis.call('HGET', KEYS[1], f) or '') .. ARGV[2] .. '\\n')\n"
    "if n == 0 then redis.call('ZADD', KEYS[2], ARGV[3], f) end\n"
    "local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])\n"
    "if over > 0 then\n"
    "  local old = redis.call('ZPOPMIN', KEYS[2], over)\n"
    "  for i = 1, #old, 2 do redis.call('HDEL', KEYS[1], old[i]) end\n"
    "end\n"
    "return 1\n";

/* ---- the writer: spans leave the calling thread at once ----------------------------------
 *
 * A call's latency must not depend on Redis: the sink only puts the line on a bounded queue
 * (dropping it, counted, when the queue is full), and one writer thread sends what is queued in
 * pipelined batches. A Redis that is slow or gone then costs the record, never a request. */

#define QUEUE_CAP 4096
#define BATCH_MAX 128

typedef struct {
    char *field, *line;
} entry_t;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER, q_idle = PTHREAD_COND_INITIALIZER;
static entry_t q[QUEUE_CAP];
static size_t q_head, q_len;
static bool q_busy, q_stop, w_up;
static pthread_t w_thread;

static void lost(size_t n)
{
    for (size_t i = 0; i < n; i++)
        antar_metrics_count("antar_trace_spans_lost_total", NULL, NULL);
}

/* Takes field and line (malloc'd). */
static void enqueue(char *field, char *line)
{
    bool ok = false;
    pthread_mutex_lock(&q_mu);
    if (w_up && !q_stop && q_len < QUEUE_CAP) {
        q[(q_head + q_len++) % QUEUE_CAP] = (entry_t){field, line};
        pthread_cond_signal(&q_cv);
        ok = true;
    }
    pthread_mutex_unlock(&q_mu);
    if (!ok) {
        free(field);
        free(line);
        lost(1);
    }
}

static void write_batch(entry_t *e, size_t n)
{
    static const char *argv[BATCH_MAX][9];
    static size_t lens[BATCH_MAX][9];
    antar_kv_cmd_t cmds[BATCH_MAX];
    char now[24];
    snprintf(now, sizeof now, "%lld", antar_now_ms());
    for (size_t i = 0; i < n; i++) {
        const char *a[] = {"EVAL",
                           lua_append,
                           "2",
                           ANTAR_TRACE_RECORD_KEY,
                           ANTAR_TRACE_RECORD_AGE_KEY,
                           e[i].field,
                           e[i].line,
                           now,
                           g_max};
        for (int j = 0; j < 9; j++) {
            argv[i][j] = a[j];
            lens[i][j] = strlen(a[j]);
        }
        cmds[i] = (antar_kv_cmd_t){9, argv[i], lens[i]};
    }
    int ok = antar_kv_pipeline(cmds, n);
    lost(ok < 0 ? n : n - (size_t)ok);
}

static void *writer(void *arg)
{
    (void)arg;
    entry_t batch[BATCH_MAX];
    pthread_mutex_lock(&q_mu);
    for (;;) {
        while (q_len == 0 && !q_stop)
            pthread_cond_wait(&q_cv, &q_mu);
        if (q_len == 0 && q_stop)
            break;
        size_t n = 0;
        while (q_len > 0 && n < BATCH_MAX) {
            batch[n++] = q[q_head];
            q_head = (q_head + 1) % QUEUE_CAP;
            q_len--;
        }
        q_busy = true;
        pthread_mutex_unlock(&q_mu);
        write_batch(batch, n);
        for (size_t i = 0; i < n; i++) {
            free(batch[i].field);
            free(batch[i].line);
        }
        pthread_mutex_lock(&q_mu);
        q_busy = false;
        if (q_len == 0)
            pthread_cond_broadcast(&q_idle);
    }
    pthread_cond_broadcast(&q_idle);
    pthread_mutex_unlock(&q_mu);
    antar_kv_thread_end();
    return NULL;
}

void antar_trace_record_flush(long timeout_ms)
{
    struct timespec until = antar_deadline_after(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&q_mu);
    while (w_up && (q_len > 0 || q_busy))
        if (pthread_cond_timedwait(&q_idle, &q_mu, &until) != 0)
            break;
    pthread_mutex_unlock(&q_mu);
}

void antar_trace_record_stop(void)
{
    antar_trace_set_sink(NULL);
    pthread_mutex_lock(&q_mu);
    bool up = w_up;
    q_stop = true;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
    if (up)
        pthread_join(w_thread, NULL);
    pthread_mutex_lock(&q_mu);
    w_up = false;
    q_stop = false;
    pthread_mutex_unlock(&q_mu);
}

/* The path of a full URL (the token and JWKS fetches are logged with theirs): addresses stay
 * out of the record. */
static const char *url_path(const char *p)
{
    const char *s = p ? strstr(p, "://") : NULL;
    if (!s)
        return p ? p : "";
    const char *slash = strchr(s + 3, '/');
    return slash ? slash : "/";
}

static void sink(const antar_span_t *s)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:f, s:s, s:s}", "kind",
                          s->kind, "from", s->from, "to", s->to, "method", s->method, "path",
                          url_path(s->path), "status", (json_int_t)s->status, "outcome", s->outcome,
                          "start_ms", (json_int_t)s->start_ms, "duration_ms",
                          (double)s->duration_us / 1000.0, "span_id", s->span_id ? s->span_id : "",
                          "parent_span_id", s->parent_span_id ? s->parent_span_id : "");
    if (o && s->route)
        json_object_set_new(o, "route", json_string(s->route));
    if (o)
        json_object_set_new(o, "trace_id", json_string(s->trace_id));
    char *text = o ? antar_json_dumps(o, JSON_COMPACT) : NULL;
    char *field = text ? strdup(s->trace_id) : NULL;
    json_decref(o);
    if (field)
        enqueue(field, text);
    else {
        free(text);
        lost(1);
    }
}

void antar_trace_record_start(const char *service)
{
    (void)service;
    g_on = strcmp(antar_config_env("ANTAR_TRACE_RECORD", "1"), "0") != 0;
    snprintf(g_max, sizeof g_max, "%ld", env_range("ANTAR_TRACE_RECORD_MAX", 10000, 100, 10000000));
    if (g_on && !w_up) {
        pthread_mutex_lock(&q_mu);
        w_up = pthread_create(&w_thread, NULL, writer, NULL) == 0;
        pthread_mutex_unlock(&q_mu);
        if (!w_up)
            antar_logf("warn", "trace record: cannot start its writer thread; the record is off");
    }
    antar_trace_set_sink(g_on && w_up ? sink : NULL);
}

antar_err_t antar_trace_record_step(long long order_id, const char *status)
{
    const antar_trace_t *t = antar_trace_current();
    if (!g_on || !t || order_id <= 0 || !status)
        return ANTAR_OK;
    char at[32], field[32];
    antar_time_rfc3339(antar_now_ms(), at);
    snprintf(field, sizeof field, "o:%lld", order_id);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "order_id", (json_int_t)order_id, "status",
                          status, "at", at, "trace_id", t->trace_id);
    char *text = o ? antar_json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *f = text ? strdup(field) : NULL;
    if (!f) {
        free(text);
        return ANTAR_E_NOMEM;
    }
    enqueue(f, text);
    return ANTAR_OK;
}

/* Each line of the string reply r that parses as an object, appended to a. */
static void lines_to_array(const redisReply *r, json_t *a)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return;
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *o = n ? json_loadb(p, n, 0, NULL) : NULL;
        if (json_is_object(o))
            json_array_append_new(a, o);
        else
            json_decref(o);
        p += n + 1;
    }
}

static int by_start(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t l = json_integer_value(json_object_get(x, "start_ms"));
    json_int_t r = json_integer_value(json_object_get(y, "start_ms"));
    return l < r ? -1 : l > r;
}

/* HMGET of the record with fields. NULL when Redis cannot answer. */
static redisReply *hmget(const char *const *fields, size_t n)
{
    const char *argv[2 + ANTAR_TRACE_READ_TRACES];
    size_t lens[2 + ANTAR_TRACE_READ_TRACES];
    argv[0] = "HMGET";
    argv[1] = ANTAR_TRACE_RECORD_KEY;
    for (size_t i = 0; i < n && i < ANTAR_TRACE_READ_TRACES; i++)
        argv[2 + i] = fields[i];
    size_t argc = 2 + (n < ANTAR_TRACE_READ_TRACES ? n : ANTAR_TRACE_READ_TRACES);
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = antar_kv_commandv((int)argc, argv, lens);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != argc - 2)) {
        if (r->type == REDIS_REPLY_ERROR)
            antar_logf("warn", "trace record read: %s", r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

antar_err_t antar_trace_record_read(long long order_id, const char *trace_id, json_t **steps,
                                    json_t **spans)
{
    const char *fields[ANTAR_TRACE_READ_TRACES];
    char ofield[32];
    size_t n = 0;
    json_t *st = json_array(), *sp = json_array();
    antar_err_t err = ANTAR_E_NOMEM;
    if (!st || !sp)
        goto fail;
    if (order_id > 0) {
        snprintf(ofield, sizeof ofield, "o:%lld", order_id);
        const char *f[] = {ofield};
        redisReply *r = hmget(f, 1);
        if (!r) {
            err = ANTAR_E_KV;
            goto fail;
        }
        lines_to_array(r->element[0], st);
        freeReplyObject(r);
        /* Each step's trace, once (a trace may move an order twice). */
        size_t i;
        json_t *s;
        json_array_foreach(st, i, s)
        {
            const char *t = json_string_value(json_object_get(s, "trace_id"));
            bool dup = !t;
            for (size_t k = 0; !dup && k < n; k++)
                dup = !strcmp(fields[k], t);
            if (!dup && n < ANTAR_TRACE_READ_TRACES)
                fields[n++] = t;
        }
    } else if (trace_id) {
        fields[n++] = trace_id;
    }
    if (n > 0) {
        redisReply *r = hmget(fields, n);
        if (!r) {
            err = ANTAR_E_KV;
            goto fail;
        }
        for (size_t i = 0; i < r->elements; i++)
            lines_to_array(r->element[i], sp);
        freeReplyObject(r);
    }
    /* Spans come from several processes, each appending when its span ended: time order. */
    size_t count = json_array_size(sp);
    if (count > 1) {
        json_t **v = malloc(count * sizeof *v);
        if (!v)
            goto fail;
        for (size_t i = 0; i < count; i++)
            v[i] = json_incref(json_array_get(sp, i));
        qsort(v, count, sizeof *v, by_start);
        json_array_clear(sp);
        for (size_t i = 0; i < count; i++)
            json_array_append_new(sp, v[i]);
        free(v);
    }
    *steps = st;
    *spans = sp;
    return ANTAR_OK;
fail:
    json_decref(st);
    json_decref(sp);
    return err;
}
