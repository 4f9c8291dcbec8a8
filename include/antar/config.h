/* antar/config.h — configuration from environment variables, with sane defaults.
 *
 * Every service reads one antar_config_t at start (antar_config_load) and never changes it.
 * Variables and defaults:
 *   ANTAR_SERVICE            service name ("user", "driver", "core"); set by main, not env
 *   ANTAR_HOST               127.0.0.1        listen address
 *   ANTAR_PORT               per service: user 8001, driver 8002, core 8003 (ANTAR_<SVC>_PORT wins)
 *   ANTAR_THREADS            8                MHD thread-pool size (public listener)
 *   ANTAR_INTERNAL_PORT      per service: user 9001, driver 9002, core 9003
 *                            (ANTAR_<SVC>_INTERNAL_PORT wins): the listener for /internal/...
 *   ANTAR_INTERNAL_THREADS   4                its own thread pool (docs/reliability.md)
 *   ANTAR_DRAIN_S            10               hard bound on the SIGTERM drain; exit 1 past it
 *   ANTAR_DEREGISTER_MS      1500             not-ready but still serving, before quiescing
 *   ANTAR_BODY_LIMIT         65536            max request body bytes (413 beyond)
 *   ANTAR_DB_HOST/PORT       127.0.0.1 / 3307
 *   ANTAR_DB_SOCKET          (empty)          unix socket; used instead of host/port when set
 *   ANTAR_DB_USER/PASSWORD   antar_<svc> / "" ANTAR_DB_NAME antar_<svc>
 *   ANTAR_REDIS_HOST/PORT    127.0.0.1 / 6380
 *   ANTAR_USER_URL           http://127.0.0.1:9001   peers' internal listeners (likewise
 *                            ANTAR_DRIVER_URL :9002, ANTAR_CORE_URL :9003); a comma-separated
 *                            list when a peer runs as several instances (httpc balances)
 *   ANTAR_PEERS_FILE         (empty)          lines "user|driver|core <url>": the instances of
 *                            each peer, winning over the *_URL lists; re-read on SIGHUP
 *   ANTAR_CONNECT_TIMEOUT_MS 500              outgoing HTTP connect timeout
 *   ANTAR_TIMEOUT_MS         3000             outgoing HTTP total timeout
 *   ANTAR_DB_TIMEOUT_S       3                MariaDB connect/read/write timeout
 *   ANTAR_REDIS_TIMEOUT_MS   1000             Redis connect/command timeout
 *   ANTAR_CLIENT_ID          <svc>-service    this service's OAuth client (client_credentials)
 *   ANTAR_CLIENT_SECRET      ""               its secret
 *   ANTAR_CSRF_KEY           ""               64 hex chars shared by all services (CSRF HMAC key)
 *   ANTAR_ISSUER             http://127.0.0.1:8080   the `iss` of access tokens
 *   ANTAR_AUDIENCE           antar            the `aud` every service requires
 *   ANTAR_API_FILE           build/api/<svc>.json   OpenAPI document served at /openapi.json
 *   ANTAR_DOCS_DIR           third_party/node_modules/swagger-ui-dist   served under /docs
 *   ANTAR_SQL_DIR            services/<svc>/sql     numbered migrations
 *   ANTAR_STATE_DIR          .run/<svc>             per-service state (core's signing keys)
 */
#ifndef ANTAR_CONFIG_H
#define ANTAR_CONFIG_H

#include <stddef.h>

typedef struct {
    char service[16];
    char host[64];
    int port;
    int threads;
    int internal_port;
    int internal_threads;
    int drain_s;
    int deregister_ms;
    size_t body_limit;
    char db_host[128];
    int db_port;
    char db_socket[512];
    char db_user[64];
    char db_password[128];
    char db_name[64];
    int db_timeout_s;
    char redis_host[128];
    int redis_port;
    int redis_timeout_ms;
    char redis_user[64];      /* ACL user (ANTAR_REDIS_USER); "" = the default user */
    char redis_password[128]; /* ANTAR_REDIS_PASSWORD; "" = no AUTH */
    char user_url[1024];      /* one URL, or a comma-separated list of instances */
    char driver_url[1024];
    char core_url[1024];
    char peers_file[512];
    /* ANTAR_TRUSTED_PROXIES: the networks whose X-Forwarded-For is believed (the edge's);
     * default loopback, "127.0.0.0/8,::1/128". Parsed and checked by antar_server_new. */
    char trusted_proxies[512];
    long connect_timeout_ms;
    long timeout_ms;
    char client_id[64];
    char client_secret[128];
    char csrf_key_hex[129];
    char issuer[256];
    char audience[64];
    char api_file[512];
    char docs_dir[512];
    char sql_dir[512];
    char state_dir[512];
} antar_config_t;

/* Fill cfg from the environment for the named service ("user", "driver" or "core").
 * Returns 0, or -1 with a message on stderr when a variable is present but invalid
 * (a port that is not a number, say). cfg is fully written either way. */
int antar_config_load(antar_config_t *cfg, const char *service);

/* The process-wide configuration, set by antar_config_load. Never NULL after it. */
const antar_config_t *antar_config(void);

/* getenv with a default: the variable's value, or def when unset or empty. */
const char *antar_config_env(const char *name, const char *def);
/* The one parser for numeric settings: the variable as a decimal integer in [min, max], or def
 * when it is unset or empty; a value that is not a whole number in range is logged (warn) and
 * def is used, so a typo never turns into 0 or a huge limit. Read settings once at start. */
long antar_config_long(const char *name, long def, long min, long max);

#endif
