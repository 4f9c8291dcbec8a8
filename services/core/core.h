/* core-service: the route tables and workers of its modules, wired by main.c. */
#ifndef ANTAR_CORE_H
#define ANTAR_CORE_H

#include <stddef.h>

#include "antar/config.h"
#include "antar/http.h"

/* How long a write that must survive a Redis failover waits for its replica (antar_kv_replicated).
 */
#define KV_REPLICATED_MS 300

/* oauth_routes.c — the authorization server: /oauth/…, /.well-known/…, /csrf (oauth.h). */
extern const antar_route_t core_oauth_routes[];
extern const size_t core_oauth_routes_len;
/* Create or load the signing keys, register the service clients. 0 or -1. */
int core_oauth_init(const antar_config_t *cfg);
void core_oauth_shutdown(void);

/* routes.c (over fares.c, presence.c, dispatch.c) — fares, the driver geo index, dispatch. */
extern const antar_route_t core_fares_routes[];
extern const size_t core_fares_routes_len;
extern const antar_route_t core_dispatch_routes[];
extern const size_t core_dispatch_routes_len;
/* dispatch.c: start / stop the dispatch worker thread. 0 or -1. */
int core_dispatch_start(const antar_config_t *cfg);
void core_dispatch_stop(void);
/* The busy sweep (sweep.c): frees drivers held busy for an order that is over. 0 or -1. */
int core_sweep_start(void);
void core_sweep_stop(void);

#endif
