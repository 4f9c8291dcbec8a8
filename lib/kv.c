/* kv.c — Redis through hiredis: one context per thread (a redisContext is not thread-safe).
 *
 * The context is opened lazily and kept; a pthread key's destructor frees it when the thread
 * ends. After an I/O error (NULL reply) the context is unusable, so it is dropped, reopened and
 * the command retried once: a Redis restart costs one slower call, not an error.
 *
 * With Sentinel (ANTAR_REDIS_SENTINELS=host:port,… and ANTAR_REDIS_MASTER_NAME), every new
 * connection asks the Sentinels in turn for the master's address (SENTINEL
 * get-master-addr-by-name, short timeouts), connects there and checks with ROLE that it is a
 * master: during a failover a Sentinel may still name the old one. Nothing is cached across
 * connections, so the next connection after an I/O error — or after a READONLY reply, which
 * means the server we talk to was turned into a replica — goes to whatever Sentinel names now.
 * hiredis has no Sentinel client of its own.
 */
#include "antar/kv.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "antar/log.h"
#include "antar/metrics.h"

static const antar_config_t *g_cfg;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static bool g_key_ok;
/* Sentinel mode when g_sentinels is not empty (read once in antar_kv_init). */
static char g_sentinels[512];
static char g_master_name[64];

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
    const char *sl = getenv("ANTAR_REDIS_SENTINELS");
    const char *name = getenv("ANTAR_REDIS_MASTER_NAME");
    g_sentinels[0] = '\0';
    if (sl && *sl) {
        if (strlen(sl) >= sizeof g_sentinels) {
            fprintf(stderr, "kv: ANTAR_REDIS_SENTINELS is too long (max %zu bytes)\n",
                    sizeof g_sentinels - 1);
            return -1;
        }
        memcpy(g_sentinels, sl, strlen(sl) + 1);
        /* A typo in the list would only show as "no master" at the first connection: refuse
         * it at start instead. */
        for (const char *p = g_sentinels;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char host[128];
            int port;
            if (antar_kv_parse_hostport(p, len, host, sizeof host, &port) != 0) {
                fprintf(stderr, "kv: ANTAR_REDIS_SENTINELS: '%.*s' is not host:port\n", (int)len,
                        p);
                g_sentinels[0] = '\0';
                return -1;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    name = (name && *name) ? name : "antar";
    if (strlen(name) >= sizeof g_master_name) {
        fprintf(stderr, "kv: ANTAR_REDIS_MASTER_NAME is too long\n");
        return -1;
    }
    memcpy(g_master_name, name, strlen(name) + 1);
    pthread_once(&g_key_once, key_create);
    return g_key_ok ? 0 : -1;
}

int antar_kv_parse_hostport(const char *s, size_t len, char *host, size_t host_size, int *port)
{
    if (!s || !host || !port || host_size == 0)
        return -1;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon || colon == s || (size_t)(colon - s) >= host_size)
        return -1;
    size_t hl = (size_t)(colon - s);
    const char *p = colon + 1;
    size_t pl = len - hl - 1;
    if (pl == 0 || pl > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (int)v;
    return 0;
}

static struct timeval timeout_tv(void)
{
    int ms = g_cfg->redis_timeout_ms > 0 ? g_cfg->redis_timeout_ms : 1000;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* Asks one Sentinel for the master's address. 0 and host/port set, or -1. A Sentinel gets at
 * most 300 ms (bounded by the Redis timeout): a dead one must not hold a caller for long when
 * the next one can answer. */
static int sentinel_ask(const char *host, int port, char *mhost, size_t mhost_size, int *mport)
{
    struct timeval tv = timeout_tv();
    if (tv.tv_sec > 0 || tv.tv_usec > 300000) {
        tv.tv_sec = 0;
        tv.tv_usec = 300000;
    }
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        if (c)
            redisFree(c);
        return -1;
    }
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", g_master_name);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[0]->len < mhost_size) {
        char *end = NULL;
        errno = 0;
        long p = strtol(r->element[1]->str, &end, 10);
        if (errno == 0 && end && *end == '\0' && p > 0 && p <= 65535) {
            memcpy(mhost, r->element[0]->str, r->element[0]->len);
            mhost[r->element[0]->len] = '\0';
            *mport = (int)p;
            rc = 0;
        }
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* The master's address from the first Sentinel of the list that knows it. 0 or -1. */
static int sentinel_master(char *mhost, size_t mhost_size, int *mport)
{
    const char *p = g_sentinels;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char host[128];
        int port = 0;
        if (antar_kv_parse_hostport(p, len, host, sizeof host, &port) == 0 &&
            sentinel_ask(host, port, mhost, mhost_size, mport) == 0)
            return 0;
        p += len;
        if (*p == ',')
            p++;
    }
    antar_log_json("error", "kv_sentinel_no_master",
                   json_pack("{s:s,s:s}", "sentinels", g_sentinels, "master_name", g_master_name));
    return -1;
}

/* Is the server on c a master (ROLE)? A replica would refuse every write with READONLY. */
static bool is_master(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(r->element[0]->str, "master") == 0;
    if (r)
        freeReplyObject(r);
    return ok;
}

redisContext *antar_kv_connect(struct timeval tv)
{
    if (!g_cfg)
        return NULL;
    char host[128];
    int port = g_cfg->redis_port;
    bool sentinel = g_sentinels[0] != '\0';
    if (sentinel) {
        if (sentinel_master(host, sizeof host, &port) != 0)
            return NULL;
    } else {
        snprintf(host, sizeof host, "%s", g_cfg->redis_host);
    }
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        antar_log_json("error", "kv_connect_failed",
                       json_pack("{s:s,s:i,s:s}", "host", host, "port", port, "error",
                                 c ? c->errstr : "out of memory"));
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
    if (sentinel && !is_master(c)) {
        antar_log_json("warn", "kv_not_master", json_pack("{s:s,s:i}", "host", host, "port", port));
        redisFree(c);
        return NULL;
    }
    return c;
}

static redisContext *ctx_get(void)
{
    if (!g_cfg || !g_key_ok)
        return NULL;
    redisContext *c = pthread_getspecific(g_key);
    if (c)
        return c;
    c = antar_kv_connect(timeout_tv());
    if (!c)
        return NULL;
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

/* READONLY: the server we are connected to was made a replica (a failover). The command was
 * refused, not run, so it is safe to drop the connection and send it again to the new master. */
static bool is_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "READONLY", 8) == 0;
}

static void log_readonly(int attempt)
{
    antar_log_json(attempt ? "error" : "warn", "kv_readonly",
                   json_pack("{s:i}", "attempt", attempt + 1));
}

/* Sends one formatted command (RESP) on this thread's connection; on an I/O error or a READONLY
 * answer (a demoted master) the connection is dropped and the command sent once more on a new
 * one, which goes wherever Sentinel points now. NULL when no connection could be had or the
 * second attempt failed too. */
static redisReply *send_formatted(const char *cmd, long long len)
{
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = ctx_get();
        if (!c)
            return r;
        if (r)
            freeReplyObject(r);
        r = NULL;
        void *reply = NULL;
        if (redisAppendFormattedCommand(c, cmd, (size_t)len) == REDIS_OK &&
            redisGetReply(c, &reply) == REDIS_OK)
            r = reply;
        if (r && !is_readonly(r))
            return r;
        if (r)
            log_readonly(attempt);
        else
            log_io_error(c, attempt);
        ctx_drop();
    }
    return r;
}

redisReply *antar_kv_command(const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    redisReply *r = send_formatted(cmd, len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *antar_kv_commandv(int argc, const char **argv, const size_t *argvlen)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return NULL;
    redisReply *r = send_formatted(cmd, len);
    redisFreeCommand(cmd);
    return r;
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
    bool readonly = false;
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply)
            goto broken;
        ok += ((redisReply *)reply)->type != REDIS_REPLY_ERROR;
        readonly |= is_readonly(reply);
        freeReplyObject(reply);
    }
    /* Not retried (see the header); the next call connects to the current master. */
    if (readonly) {
        log_readonly(0);
        ctx_drop();
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

antar_err_t antar_kv_replicated(long timeout_ms)
{
    if (!g_sentinels[0])
        return ANTAR_OK;
    /* The WAIT must go on the connection that made the writes: no reconnecting retry here. */
    redisContext *c = g_key_ok ? pthread_getspecific(g_key) : NULL;
    if (!c)
        return ANTAR_E_KV;
    redisReply *r = redisCommand(c, "WAIT 1 %ld", timeout_ms);
    if (!r) {
        log_io_error(c, 1);
        ctx_drop();
        return ANTAR_E_KV;
    }
    long long acked = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (acked >= 1)
        return ANTAR_OK;
    if (acked == 0) {
        /* ROLE on a master: ["master", offset, [[host, port, offset], ...]]. */
        r = redisCommand(c, "ROLE");
        bool none = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
                    r->element[2]->type == REDIS_REPLY_ARRAY && r->element[2]->elements == 0;
        if (!r)
            ctx_drop();
        else
            freeReplyObject(r);
        if (none)
            return ANTAR_OK;
    }
    antar_metrics_count("antar_kv_unreplicated_total", NULL, NULL);
    antar_log_json("warn", "kv_unreplicated", json_pack("{s:I}", "acked", (json_int_t)acked));
    return ANTAR_E_KV;
}

void antar_kv_thread_end(void)
{
    if (g_key_ok)
        ctx_drop();
}
