/* service.c — antar_service_main: the whole life of a service process (http.h).
 *
 * Order matters: signals are blocked before any thread exists so that every thread inherits
 * the mask and only the main thread's sigwait ever sees SIGINT/SIGTERM; the libraries are
 * initialised before the server's threads start (mysql_library_init and curl_global_init are
 * not thread-safe); teardown runs in reverse so ASan's leak check at exit is clean. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/db.h"
#include "antar/http.h"
#include "antar/httpc.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "http_internal.h"

#define MIGRATE_WAIT_MS 30000

static antar_config_t g_cfg;

static antar_err_t health_db(void)
{
    return antar_db_ping();
}

static antar_err_t health_kv(void)
{
    return antar_kv_ping();
}

/* Runs on each server worker thread as it exits: per-thread connections would otherwise be
 * unreachable (leaked) memory once the thread is gone. */
static void worker_thread_end(void)
{
    antar_db_thread_end();
    antar_kv_thread_end();
    antar_httpc_thread_end();
}

/* MariaDB may still be starting when the stack comes up together: retry while the error says
 * "cannot connect" (ANTAR_E_DB), give up on anything else at once. */
static antar_err_t migrate_with_retry(const char *dir)
{
    long long deadline = antar_mono_ms() + MIGRATE_WAIT_MS;
    for (;;) {
        antar_err_t e = antar_db_migrate(dir);
        if (e == ANTAR_OK || e != ANTAR_E_DB || antar_mono_ms() >= deadline)
            return e;
        antar_logf("warn", "database not ready, retrying migrations");
        antar_db_thread_end(); /* reconnect from scratch next time */
        sleep(1);
    }
}

/* ---- the bounded drain ------------------------------------------------------------------- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static bool wd_done;
static int wd_drain_s;

/* The hard bound of the drain: whatever hangs (a handler stuck on a dead peer past its timeout,
 * an outbox message, MHD itself), the process is gone drain_s after the signal, with a non-zero
 * status and a line saying why, so the supervisor and the operator know it was cut short. */
static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wd_drain_s;
    pthread_mutex_lock(&wd_mu);
    while (!wd_done)
        if (pthread_cond_timedwait(&wd_cv, &wd_mu, &until) != 0)
            break;
    bool done = wd_done;
    pthread_mutex_unlock(&wd_mu);
    if (!done) {
        antar_logf("error", "drain did not finish within %d s (ANTAR_DRAIN_S): exiting anyway",
                   wd_drain_s);
        _exit(1);
    }
    return NULL;
}

static bool watchdog_start(pthread_t *t, int drain_s)
{
    antar_cond_init_monotonic(&wd_cv);
    wd_done = false;
    wd_drain_s = drain_s;
    return pthread_create(t, NULL, watchdog, NULL) == 0;
}

static void watchdog_stop(pthread_t t)
{
    pthread_mutex_lock(&wd_mu);
    wd_done = true;
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
    pthread_join(t, NULL);
    pthread_cond_destroy(&wd_cv);
}

/* SIGTERM: not ready at once; keep serving while the edge's health checks notice (the
 * deregistration delay); stop accepting; answer what is in flight, every answer closing its
 * connection; then the caller stops the server and the service's workers (its outbox batch). */
static void drain(antar_server_t *s, long long deadline)
{
    antar_server_set_draining(s);
    antar_logf("info", "draining: not ready; serving %d ms more before closing the listeners",
               g_cfg.deregister_ms);
    long long until = antar_mono_ms() + g_cfg.deregister_ms;
    if (until > deadline)
        until = deadline;
    for (long long now = antar_mono_ms(); now < until; now = antar_mono_ms()) {
        long long left = until - now;
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    antar_server_quiesce(s);
    long inflight = antar_server_inflight(s);
    if (antar_server_wait_idle(s, deadline) != 0)
        antar_logf("warn", "drain: %ld requests still in flight at the deadline",
                   antar_server_inflight(s));
    else
        antar_logf("info", "drain: listeners closed, %ld in-flight requests answered", inflight);
}

static void usage(FILE *f, const char *prog, const antar_service_t *svc, bool with_help)
{
    fprintf(f, "usage: %s [--routes | --help]\n", prog);
    for (size_t i = 0; i < svc->ncommands; i++) {
        const antar_command_t *c = &svc->commands[i];
        fprintf(f, "       %s %s%s%s\n", prog, c->flag, c->args[0] ? " " : "", c->args);
    }
    if (!with_help)
        return;
    fprintf(f,
            "\nWithout arguments: run %s-service until SIGINT/SIGTERM.\n"
            "  --routes  print the route table and exit\n",
            svc->name);
    for (size_t i = 0; i < svc->ncommands; i++)
        fprintf(f, "\n%s%s%s\n%s\n", svc->commands[i].flag, svc->commands[i].args[0] ? " " : "",
                svc->commands[i].args, svc->commands[i].help);
}

/* A maintenance command: only what it needs of the toolkit, in the order the server start
 * uses, and the same teardown so that ASan's leak check at exit stays clean. */
static int run_command(const antar_command_t *c, int argc, char **argv, const antar_service_t *svc)
{
    /* Log lines (migrations, database errors) must not mix with the command's output. */
    antar_log_set_fd(STDERR_FILENO);
    antar_log_init(svc->name);
    if (antar_config_load(&g_cfg, svc->name) != 0)
        fprintf(stderr, "%s: some settings were invalid; their defaults are used\n", svc->name);
    if (sodium_init() < 0) {
        fprintf(stderr, "%s %s: libsodium init failed\n", svc->name, c->flag);
        return 1;
    }
    if (!svc->uses_db)
        return c->run(argc, argv);
    if (antar_db_init(&g_cfg) != 0) {
        fprintf(stderr, "%s %s: database library init failed\n", svc->name, c->flag);
        return 1;
    }
    int rc = 1;
    antar_err_t e = migrate_with_retry(g_cfg.sql_dir);
    if (e != ANTAR_OK)
        fprintf(stderr,
                "%s %s: migrations from %s failed (%s): is MariaDB up and are the "
                "ANTAR_DB_* settings right?\n",
                svc->name, c->flag, g_cfg.sql_dir, antar_err_code(e));
    else
        rc = c->run(argc, argv);
    antar_db_thread_end();
    antar_db_cleanup();
    return rc;
}

int antar_service_main(int argc, char **argv, const antar_service_t *svc)
{
    bool print_routes = false;
    for (size_t i = 0; argc > 1 && i < svc->ncommands; i++)
        if (strcmp(argv[1], svc->commands[i].flag) == 0)
            return run_command(&svc->commands[i], argc - 2, argv + 2, svc);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--routes") == 0) {
            print_routes = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout, argv[0], svc, true);
            return 0;
        } else {
            usage(stderr, argv[0], svc, false);
            return 2;
        }
    }

    if (antar_config_load(&g_cfg, svc->name) != 0)
        fprintf(stderr, "%s: some settings were invalid; their defaults are used\n", svc->name);

    if (print_routes) {
        antar_server_t *s = antar_server_new(&g_cfg);
        if (!s)
            return 1;
        if (svc->routes)
            svc->routes(s);
        antar_server_print_routes(s, stdout);
        antar_server_free(s);
        return 0;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* A peer closing a socket mid-write must be an error return, not the end of the process. */
    signal(SIGPIPE, SIG_IGN);

    antar_log_init(svc->name);
    int rc = 1;
    bool db_up = false, auth_up = false, started = false, wd_up = false;
    pthread_t wd = 0;
    antar_server_t *s = NULL;

    if (svc->uses_db) {
        if (antar_db_init(&g_cfg) != 0) {
            antar_logf("error", "database library init failed");
            goto done;
        }
        db_up = true;
        antar_err_t e = migrate_with_retry(g_cfg.sql_dir);
        if (e != ANTAR_OK) {
            antar_logf("error", "migrations from %s failed: %s", g_cfg.sql_dir, antar_err_code(e));
            goto done;
        }
    }
    /* Redis is initialised even for services that do not use it for data: the auth hook reads
     * token revocations from it. */
    if (antar_kv_init(&g_cfg) != 0) {
        antar_logf("error", "redis client init failed");
        goto done;
    }
    if (antar_httpc_init(&g_cfg) != 0) {
        antar_logf("error", "http client init failed");
        goto done;
    }
    /* Every call between the services, and each client request that made some, goes to the
     * trace record the console's waterfall reads (docs/console.md). */
    antar_trace_record_start(svc->name);
    if (antar_auth_init(&g_cfg) != 0) {
        antar_logf("error", "auth init failed (is ANTAR_CSRF_KEY 64 hex chars?)");
        goto done;
    }
    auth_up = true;

    s = antar_server_new(&g_cfg);
    if (!s) {
        antar_logf("error", "out of memory creating the server");
        goto done;
    }
    if (svc->routes)
        svc->routes(s);
    if (svc->uses_db)
        antar_server_add_health_check(s, "mariadb", health_db);
    if (svc->uses_redis)
        antar_server_add_health_check(s, "redis", health_kv);
    antar_server_set_auth_hook(s, antar_auth_hook);
    antar_server_set_thread_end(s, worker_thread_end);

    if (svc->init && svc->init(s, &g_cfg) != 0) {
        antar_logf("error", "service init failed");
        goto done;
    }
    started = true;
    if (antar_server_start(s) != 0)
        goto done;

    antar_logf("info", "%s-service ready", svc->name);
    int sig = 0;
    /* SIGHUP: the peers' instances changed (scripts/stack.sh rewrote the peers file). */
    while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP) {
        if (sig == SIGHUP)
            (void)antar_httpc_reload_peers();
        sig = 0;
    }
    antar_logf("info", "signal %d received, shutting down", sig);
    /* The whole drain, server and workers, fits in drain_s; the deregistration delay and the
     * wait for in-flight requests get what is left after a margin for the workers' stop. */
    wd_up = watchdog_start(&wd, g_cfg.drain_s);
    drain(s, antar_mono_ms() + (long long)g_cfg.drain_s * 1000 * 3 / 4);
    rc = 0;

done:
    antar_server_stop(s);
    if (started && svc->shutdown)
        svc->shutdown();
    antar_trace_record_stop();
    if (rc == 0) {
        if (wd_up)
            watchdog_stop(wd);
        antar_logf("info", "drained, exiting 0");
    }
    antar_server_free(s);
    if (auth_up)
        antar_auth_cleanup();
    /* The main thread used its own connections for migrations and init. */
    antar_httpc_thread_end();
    antar_kv_thread_end();
    if (db_up) {
        antar_db_thread_end();
        antar_db_cleanup();
    }
    return rc;
}
