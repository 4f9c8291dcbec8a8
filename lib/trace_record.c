/* trace_record.c — the trace record: every span in one capped Redis Stream (antar/trace.h).
 *
 * Why a stream and not a list per trace: Redis runs with maxmemory and noeviction, where a full
 * Redis turns off the login throttle and revocation (docs/security.md). One stream trimmed with
 * MAXLEN ~ is bounded in memory whatever the load, and is one key (the soak judges Redis's key
 * count flat). The price: a read scans entries, so reads are bounded too (ANTAR_TRACE_READ_MAX),
 * and at high load old traces fall out of the record sooner.
 *
 * Entry fields, always in this order so the read script can index them: tr <trace id>,
 * o <order id or "">, j <the span or step as compact JSON>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

static bool g_on;
static char g_maxlen[24] = "20000";
static char g_readmax[24] = "20000";

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

static void xadd(const char *trace_id, const char *order, const char *json)
{
    const char *argv[] = {"XADD",   ANTAR_TRACE_RECORD_KEY,
                          "MAXLEN", "~",
                          g_maxlen, "*",
                          "tr",     trace_id,
                          "o",      order,
                          "j",      json};
    size_t lens[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++)
        lens[i] = strlen(argv[i]);
    antar_kv_cmd_t cmd = {(int)(sizeof argv / sizeof argv[0]), argv, lens};
    if (antar_kv_pipeline(&cmd, 1) != 1)
        antar_metrics_count("antar_trace_spans_lost_total", NULL, NULL);
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
    if (text)
        xadd(s->trace_id, "", text);
    free(text);
    json_decref(o);
}

void antar_trace_record_start(const char *service)
{
    (void)service;
    g_on = strcmp(antar_config_env("ANTAR_TRACE_RECORD", "1"), "0") != 0;
    snprintf(g_maxlen, sizeof g_maxlen, "%ld",
             env_range("ANTAR_TRACE_RECORD_MAXLEN", 20000, 100, 10000000));
    snprintf(g_readmax, sizeof g_readmax, "%ld",
             env_range("ANTAR_TRACE_READ_MAX", 20000, 100, 1000000));
    antar_trace_set_sink(g_on ? sink : NULL);
}

antar_err_t antar_trace_record_step(long long order_id, const char *status)
{
    const antar_trace_t *t = antar_trace_current();
    if (!g_on || !t || order_id <= 0 || !status)
        return ANTAR_OK;
    char at[32], oid[24];
    antar_time_rfc3339(antar_now_ms(), at);
    snprintf(oid, sizeof oid, "%lld", order_id);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "order_id", (json_int_t)order_id, "status",
                          status, "at", at, "trace_id", t->trace_id);
    char *text = o ? antar_json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return ANTAR_E_NOMEM;
    xadd(t->trace_id, oid, text);
    free(text);
    return ANTAR_OK;
}

/* ARGV: 1 mode ("order": XRANGE from ARGV[2]; "trace": XREVRANGE, the newest), 2 start id,
 * 3 count, 4 order id, 5 trace id. Returns {steps, spans} as lists of JSON texts. */
static const char lua_read[] =
    "local e\n"
    "if ARGV[1] == 'order' then\n"
    "  e = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])\n"
    "else\n"
    "  e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[3])\n"
    "end\n"
    "local traces, steps, spans = {}, {}, {}\n"
    "if ARGV[5] ~= '' then traces[ARGV[5]] = true end\n"
    "if ARGV[4] ~= '' then\n"
    "  for _, x in ipairs(e) do\n"
    "    local f = x[2]\n"
    "    if f[4] == ARGV[4] then traces[f[2]] = true; steps[#steps + 1] = f[6] end\n"
    "  end\n"
    "end\n"
    "for _, x in ipairs(e) do\n"
    "  local f = x[2]\n"
    "  if f[4] == '' and traces[f[2]] then spans[#spans + 1] = f[6] end\n"
    "end\n"
    "return {steps, spans}\n";

static json_t *texts_to_array(const redisReply *r, bool reverse)
{
    json_t *a = json_array();
    for (size_t i = 0; a && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[reverse ? r->elements - 1 - i : i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        json_t *o = json_loadb(e->str, e->len, 0, NULL);
        if (json_is_object(o))
            json_array_append_new(a, o);
        else
            json_decref(o);
    }
    return a;
}

antar_err_t antar_trace_record_read(long long order_id, long long since_ms, const char *trace_id,
                                    json_t **steps, json_t **spans)
{
    char start[32], oid[24];
    snprintf(start, sizeof start, "%lld-0", since_ms > 0 ? since_ms : 0);
    snprintf(oid, sizeof oid, "%lld", order_id > 0 ? order_id : 0);
    const char *argv[] = {"EVAL",
                          lua_read,
                          "1",
                          ANTAR_TRACE_RECORD_KEY,
                          order_id > 0 ? "order" : "trace",
                          start,
                          g_readmax,
                          order_id > 0 ? oid : "",
                          trace_id ? trace_id : ""};
    size_t lens[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = antar_kv_commandv((int)(sizeof argv / sizeof argv[0]), argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r && r->type == REDIS_REPLY_ERROR)
            antar_logf("warn", "trace record read: %s", r->str);
        if (r)
            freeReplyObject(r);
        return ANTAR_E_KV;
    }
    /* A trace-only read scanned newest first: put its spans back in time order. */
    *steps = texts_to_array(r->element[0], false);
    *spans = texts_to_array(r->element[1], order_id <= 0);
    freeReplyObject(r);
    if (!*steps || !*spans) {
        json_decref(*steps);
        json_decref(*spans);
        return ANTAR_E_NOMEM;
    }
    return ANTAR_OK;
}
