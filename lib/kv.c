/* kv.c — Redis through hiredis: one context per thread (a redisContext is not thread-safe).
 *
 * The context is opened lazily and kept; a pthread key's destructor frees it when the thread
 * ends. After an I/O error (NULL reply) the context is unusable, so it is dropped, reopened and
 * the command retried once: a Redis restart costs one slower call, not an error.
 */
#include "antar/kv.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "antar/log.h"

static const antar_config_t *g_cfg;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static bool g_key_ok;

static void ctx_destroy(void *p)
{
    if (p)
        redisFree(p);
}

static void key_create(void)
{
    g_key_ok = pthread_key_create(&g_key, ctx_destroy) == 0;
}

int antar_kv_init(const antar_config_t *cfg)
{
    if (!cfg)
        return -1;
    g_cfg = cfg;
    pthread_once(&g_key_once, key_create);
    return g_key_ok ? 0 : -1;
}

static struct timeval timeout_tv(void)
{
    int ms = g_cfg->redis_timeout_ms > 0 ? g_cfg->redis_timeout_ms : 1000;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static redisContext *ctx_get(void)
{
    if (!g_cfg || !g_key_ok)
        return NULL;
    redisContext *c = pthread_getspecific(g_key);
    if (c)
        return c;
    struct timeval tv = timeout_tv();
    c = redisConnectWithTimeout(g_cfg->redis_host, g_cfg->redis_port, tv);
    if (!c || c->err) {
        antar_log_json("error", "kv_connect_failed",
                       json_pack("{s:s,s:i,s:s}", "host", g_cfg->redis_host, "port",
                                 g_cfg->redis_port, "error", c ? c->errstr : "out of memory"));
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    if (antar_kv_auth(c, g_cfg) != 0) {
        antar_log_json("error", "kv_auth_failed",
                       json_pack("{s:s,s:s}", "user",
                                 g_cfg->redis_user[0] ? g_cfg->redis_user : "default", "error",
                                 c->errstr[0] ? c->errstr : "refused"));
        redisFree(c);
        return NULL;
    }
    if (pthread_setspecific(g_key, c) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void ctx_drop(void)
{
    redisContext *c = pthread_getspecific(g_key);
    if (c) {
        pthread_setspecific(g_key, NULL);
        redisFree(c);
    }
}

static void log_io_error(const redisContext *c, int attempt)
{
    antar_log_json(attempt ? "error" : "warn", "kv_io_error",
                   json_pack("{s:s,s:i}", "error", c->errstr[0] ? c->errstr : "unknown", "attempt",
                             attempt + 1));
}

redisReply *antar_kv_command(const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = ctx_get();
        if (!c)
            return NULL;
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(c, fmt, ap);
        va_end(ap);
        if (r)
            return r;
        log_io_error(c, attempt);
        ctx_drop();
    }
    return NULL;
}

redisReply *antar_kv_commandv(int argc, const char **argv, const size_t *argvlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = ctx_get();
        if (!c)
            return NULL;
        redisReply *r = redisCommandArgv(c, argc, argv, argvlen);
        if (r)
            return r;
        log_io_error(c, attempt);
        ctx_drop();
    }
    return NULL;
}

int antar_kv_auth(redisContext *c, const antar_config_t *cfg)
{
    if (!c || !cfg || !cfg->redis_password[0])
        return 0;
    redisReply *r = cfg->redis_user[0]
                        ? redisCommand(c, "AUTH %s %s", cfg->redis_user, cfg->redis_password)
                        : redisCommand(c, "AUTH %s", cfg->redis_password);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static long long info_field(const char *info, const char *name)
{
    const char *p = info ? strstr(info, name) : NULL;
    return p ? atoll(p + strlen(name)) : -1;
}

char *antar_kv_metrics(void)
{
    long long used = -1, max = -1, keys = -1;
    redisReply *r = antar_kv_command("INFO memory");
    if (r && r->type == REDIS_REPLY_STRING) {
        used = info_field(r->str, "\nused_memory:");
        max = info_field(r->str, "\nmaxmemory:");
    }
    if (r)
        freeReplyObject(r);
    r = antar_kv_command("DBSIZE");
    if (r && r->type == REDIS_REPLY_INTEGER)
        keys = r->integer;
    if (r)
        freeReplyObject(r);
    char *out = malloc(768);
    if (!out)
        return NULL;
    /* Memory near maxmemory means writes are about to be refused (noeviction): alert on the
     * ratio of the first two. */
    snprintf(out, 768,
             "# TYPE antar_redis_up gauge\nantar_redis_up %d\n"
             "# TYPE antar_redis_used_memory_bytes gauge\nantar_redis_used_memory_bytes %lld\n"
             "# TYPE antar_redis_maxmemory_bytes gauge\nantar_redis_maxmemory_bytes %lld\n"
             "# TYPE antar_redis_keys gauge\nantar_redis_keys %lld\n",
             used >= 0 ? 1 : 0, used, max, keys);
    return out;
}

int antar_kv_pipeline(const antar_kv_cmd_t *cmds, size_t n)
{
    redisContext *c = ctx_get();
    if (!c)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) != REDIS_OK)
            goto broken;
    int ok = 0;
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply)
            goto broken;
        ok += ((redisReply *)reply)->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
    }
    return ok;
broken:
    log_io_error(c, 0);
    ctx_drop();
    return -1;
}

antar_err_t antar_kv_ping(void)
{
    redisReply *r = antar_kv_command("PING");
    if (!r)
        return ANTAR_E_KV;
    antar_err_t err =
        (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) ? ANTAR_OK : ANTAR_E_KV;
    freeReplyObject(r);
    return err;
}

void antar_kv_thread_end(void)
{
    if (g_key_ok)
        ctx_drop();
}
