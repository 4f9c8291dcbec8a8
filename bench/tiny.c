/* tiny.c — the toolkit's HTTP server with one trivial route, for the side-by-side with
 * bench/node_ref.js: GET /ping → {"status":200,"result":{"status":"ok"},"error":null}.
 *
 * Everything a real service does per request happens here too (router, envelope, request id
 * and trace, response headers, one JSON log line on stdout, metrics); only the handler is
 * trivial and there is no database, Redis or auth. Settings from the environment like a
 * service (ANTAR_PORT, ANTAR_THREADS). Built by bench/run.sh against the build's static libs. */
#include <signal.h>
#include <stdio.h>

#include "antar/config.h"
#include "antar/http.h"
#include "antar/log.h"

static void h_ping(antar_req_t *req)
{
    json_t *res = json_object();
    json_object_set_new(res, "status", json_string("ok"));
    antar_http_reply(req, 200, res);
}

static const antar_route_t routes[] = {
    {"GET", "/ping", h_ping, ANTAR_AUTH_NONE, NULL, 0},
};

int main(void)
{
    static antar_config_t cfg;
    if (antar_config_load(&cfg, "bench") != 0)
        fprintf(stderr, "tiny: some settings were invalid; their defaults are used\n");
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    antar_log_init("bench");

    antar_server_t *s = antar_server_new(&cfg);
    if (!s)
        return 1;
    antar_server_add_routes(s, routes, sizeof(routes) / sizeof(*routes));
    if (antar_server_start(s) != 0) {
        antar_server_free(s);
        return 1;
    }
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    antar_server_free(s);
    return 0;
}
