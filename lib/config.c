/* config.c — the process configuration, read once from the environment (see config.h). */
#include "antar/config.h"
#include "antar/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static antar_config_t g_cfg;

const antar_config_t *antar_config(void)
{
    return &g_cfg;
}

const char *antar_config_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

long antar_config_long(const char *name, long def, long min, long max)
{
    const char *v = antar_config_env(name, NULL);
    if (!v)
        return def;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || isspace((unsigned char)*v) || n < min || n > max) {
        antar_logf("warn", "%s=%s is not an integer in %ld..%ld; using %ld", name, v, min, max,
                   def);
        return def;
    }
    return n;
}

/* Copies the variable (or def) into dst, truncating to its size. A value that does not fit is
 * refused rather than silently cut: a truncated URL or path would fail later in a confusing way. */
static int set_str(char *dst, size_t size, const char *name, const char *def)
{
    const char *v = antar_config_env(name, def);
    int rc = 0;
    if (strlen(v) >= size) {
        fprintf(stderr, "config: %s is too long (max %zu bytes), using the default\n", name,
                size - 1);
        v = def;
        rc = -1;
    }
    /* Both v and def fit (defaults are short); copy with the length we checked. */
    size_t n = strlen(v);
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return rc;
}

/* Strict integer: all digits (optional leading '-'), no trailing junk, within [min, max]. */
static int set_num(long long *dst, const char *name, long long def, long long min, long long max)
{
    *dst = def;
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0' || isspace((unsigned char)*v) || n < min || n > max) {
        fprintf(stderr, "config: %s=\"%s\" is not an integer in %lld..%lld, using %lld\n", name, v,
                min, max, def);
        return -1;
    }
    *dst = n;
    return 0;
}

static int default_port(const char *service)
{
    if (strcmp(service, "user") == 0)
        return 8001;
    if (strcmp(service, "driver") == 0)
        return 8002;
    if (strcmp(service, "core") == 0)
        return 8003;
    return 8000;
}

/* ANTAR_<SVC><suffix>, upper-cased: the per-service form of a variable. */
static void svc_var(char *out, size_t size, const char *service, const char *suffix)
{
    snprintf(out, size, "ANTAR_%s%s", service, suffix);
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

int antar_config_load(antar_config_t *cfg, const char *service)
{
    int rc = 0;
    long long n;
    char buf[512], name[64];

    if (!service)
        service = "";
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->service, sizeof(cfg->service), "%s", service);

    rc |= set_str(cfg->host, sizeof(cfg->host), "ANTAR_HOST", "127.0.0.1");

    /* ANTAR_<SVC>_PORT wins over ANTAR_PORT, so one environment can describe all services. */
    int port = default_port(service);
    rc |= set_num(&n, "ANTAR_PORT", port, 1, 65535);
    port = (int)n;
    svc_var(name, sizeof(name), service, "_PORT");
    rc |= set_num(&n, name, port, 1, 65535);
    cfg->port = (int)n;

    /* The internal listener: the public port's default + 1000 (9001, 9002, 9003). */
    int iport = default_port(service) + 1000;
    rc |= set_num(&n, "ANTAR_INTERNAL_PORT", iport, 1, 65535);
    iport = (int)n;
    svc_var(name, sizeof(name), service, "_INTERNAL_PORT");
    rc |= set_num(&n, name, iport, 1, 65535);
    cfg->internal_port = (int)n;
    if (cfg->internal_port == cfg->port) {
        fprintf(stderr, "config: the internal port must differ from the public port %d\n",
                cfg->port);
        rc = -1;
    }

    rc |= set_num(&n, "ANTAR_THREADS", 8, 1, 256);
    cfg->threads = (int)n;
    rc |= set_num(&n, "ANTAR_INTERNAL_THREADS", 4, 1, 256);
    cfg->internal_threads = (int)n;
    rc |= set_num(&n, "ANTAR_DRAIN_S", 10, 1, 3600);
    cfg->drain_s = (int)n;
    rc |= set_num(&n, "ANTAR_DEREGISTER_MS", 1500, 0, 600000);
    cfg->deregister_ms = (int)n;
    rc |= set_num(&n, "ANTAR_BODY_LIMIT", 65536, 1, 64LL * 1024 * 1024);
    cfg->body_limit = (size_t)n;

    rc |= set_str(cfg->db_host, sizeof(cfg->db_host), "ANTAR_DB_HOST", "127.0.0.1");
    rc |= set_num(&n, "ANTAR_DB_PORT", 3307, 1, 65535);
    cfg->db_port = (int)n;
    rc |= set_str(cfg->db_socket, sizeof(cfg->db_socket), "ANTAR_DB_SOCKET", "");
    snprintf(buf, sizeof(buf), "antar_%s", service);
    rc |= set_str(cfg->db_user, sizeof(cfg->db_user), "ANTAR_DB_USER", buf);
    rc |= set_str(cfg->db_password, sizeof(cfg->db_password), "ANTAR_DB_PASSWORD", "");
    rc |= set_str(cfg->db_name, sizeof(cfg->db_name), "ANTAR_DB_NAME", buf);
    rc |= set_num(&n, "ANTAR_DB_TIMEOUT_S", 3, 1, 3600);
    cfg->db_timeout_s = (int)n;

    rc |= set_str(cfg->redis_host, sizeof(cfg->redis_host), "ANTAR_REDIS_HOST", "127.0.0.1");
    rc |= set_num(&n, "ANTAR_REDIS_PORT", 6380, 1, 65535);
    cfg->redis_port = (int)n;
    rc |= set_num(&n, "ANTAR_REDIS_TIMEOUT_MS", 1000, 1, 3600000);
    cfg->redis_timeout_ms = (int)n;
    rc |= set_str(cfg->redis_user, sizeof(cfg->redis_user), "ANTAR_REDIS_USER", "");
    rc |= set_str(cfg->redis_password, sizeof(cfg->redis_password), "ANTAR_REDIS_PASSWORD", "");

    rc |= set_str(cfg->user_url, sizeof(cfg->user_url), "ANTAR_USER_URL", "http://127.0.0.1:9001");
    rc |= set_str(cfg->driver_url, sizeof(cfg->driver_url), "ANTAR_DRIVER_URL",
                  "http://127.0.0.1:9002");
    rc |= set_str(cfg->core_url, sizeof(cfg->core_url), "ANTAR_CORE_URL", "http://127.0.0.1:9003");
    rc |= set_str(cfg->peers_file, sizeof(cfg->peers_file), "ANTAR_PEERS_FILE", "");
    rc |= set_str(cfg->trusted_proxies, sizeof(cfg->trusted_proxies), "ANTAR_TRUSTED_PROXIES",
                  "127.0.0.0/8,::1/128");
    rc |= set_num(&n, "ANTAR_CONNECT_TIMEOUT_MS", 500, 1, 3600000);
    cfg->connect_timeout_ms = (long)n;
    rc |= set_num(&n, "ANTAR_TIMEOUT_MS", 3000, 1, 3600000);
    cfg->timeout_ms = (long)n;

    snprintf(buf, sizeof(buf), "%s-service", service);
    rc |= set_str(cfg->client_id, sizeof(cfg->client_id), "ANTAR_CLIENT_ID", buf);
    rc |= set_str(cfg->client_secret, sizeof(cfg->client_secret), "ANTAR_CLIENT_SECRET", "");
    rc |= set_str(cfg->csrf_key_hex, sizeof(cfg->csrf_key_hex), "ANTAR_CSRF_KEY", "");
    rc |= set_str(cfg->issuer, sizeof(cfg->issuer), "ANTAR_ISSUER", "http://127.0.0.1:8080");
    rc |= set_str(cfg->audience, sizeof(cfg->audience), "ANTAR_AUDIENCE", "antar");

    snprintf(buf, sizeof(buf), "build/api/%s.json", service);
    rc |= set_str(cfg->api_file, sizeof(cfg->api_file), "ANTAR_API_FILE", buf);
    rc |= set_str(cfg->docs_dir, sizeof(cfg->docs_dir), "ANTAR_DOCS_DIR",
                  "third_party/node_modules/swagger-ui-dist");
    snprintf(buf, sizeof(buf), "services/%s/sql", service);
    rc |= set_str(cfg->sql_dir, sizeof(cfg->sql_dir), "ANTAR_SQL_DIR", buf);
    snprintf(buf, sizeof(buf), ".run/%s", service);
    rc |= set_str(cfg->state_dir, sizeof(cfg->state_dir), "ANTAR_STATE_DIR", buf);

    if (cfg != &g_cfg)
        g_cfg = *cfg;
    return rc ? -1 : 0;
}
