/* ai.h — core's models in service (docs/ai.md): the learned ETA, the acceptance probability and
 * the demand forecast, each a file of ANTAR_AI_DIR loaded at start and reloaded when its model
 * card (<model>.meta.json) changes. Every function answers false when its model is switched off
 * (ANTAR_AI=off), missing or broken: the caller then applies today's rule. Thread-safe. */
#ifndef CORE_AI_H
#define CORE_AI_H

#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>

#include "ai_features.h"
#include "dispatch_store.h"

typedef enum { CORE_AI_ETA, CORE_AI_ACC, CORE_AI_DEM, CORE_AI__COUNT } core_ai_model_t;

/* Read ANTAR_AI, ANTAR_AI_DIR and ANTAR_AI_CLOCK_FILE, load the models (a missing one is logged
 * and left to the rule), register the metrics. Fails (-1, logged) only on an ANTAR_AI that is
 * neither on/off nor a list of known models: without models core runs on rules. */
int core_ai_init(void);
void core_ai_shutdown(void);
/* Check the files now (hot swap); a watcher thread does it every 2 s. */
void core_ai_reload(void);
bool core_ai_ready(core_ai_model_t m);

/* The city clock: ANTAR_AI_CLOCK_FILE's mapping when set (a simulated city runs faster than
 * the wall clock), else the wall clock in Jakarta (UTC+7). *epoch names the mapping, so counters
 * of one simulated day never mix with another's; *speed city seconds per real second. */
typedef struct {
    double city_s; /* seconds since midnight of day 0 */
    int weekday0;  /* weekday of day 0, 0 = Monday */
    long long epoch;
    double speed;
} core_ai_clock_t;
core_ai_clock_t core_ai_clock(long long now_ms);

/* A leg's duration in city seconds (a trip, or a driver's way to a pickup). */
bool core_ai_eta(double from_lat, double from_lng, double to_lat, double to_lng, bool car,
                 long long now_ms, double *seconds);
/* n ≤ 8 legs {from_lat, from_lng, to_lat, to_lng} in one prediction (one call into XGBoost
 * costs ~50–100 µs whatever the rows: an estimate asks for its trip and its pickup together). */
bool core_ai_eta_legs(const double legs[][4], size_t n, bool car, long long now_ms,
                      double *seconds);
/* The dispatch ranking: scores[i] = expected city seconds until candidate i's confirmed
 * pickup — pickup ETA plus the expected cost of the declines before a yes,
 * (1 − p) / p × decline cost. false (nothing written) when either model is not ready. */
bool core_ai_rank(const core_candidate_t *c, size_t n, double pickup_lat, double pickup_lng,
                  double dropoff_lat, double dropoff_lng, double price, bool car, long long now_ms,
                  double *scores, double *eta_s, double *p_accept);
/* false when ANTAR_AI=off. */
bool core_ai_enabled(void);
/* Orders expected in forecast cell (ilat, ilng) over the next 15 city minutes by the model, or
 * (core_ai_demand_recent, the counter rule) the cell's orders over the last 15 — both read the
 * counters from Redis now (for the "where to wait" hint, not for estimates). false when the
 * model (resp. the switch) is off or Redis fails. */
bool core_ai_demand_cell(long ilat, long ilng, long long now_ms, double *forecast);
bool core_ai_demand_recent(long ilat, long ilng, long long now_ms, double *orders);
/* Orders expected in the forecast cell of (lat, lng) over the next 15 city minutes. */
bool core_ai_demand(double lat, double lng, long long now_ms, double *forecast);
/* What an offer to driver_id carries besides the order (payload: the dispatch's, with
 * vehicle_type and pickup_lat/lng): where the driver is now (driver_lat, driver_lng) and the
 * predicted way to the pickup (pickup_eta_s, city seconds: the ETA model, or the rule when it is
 * off). driver-service keeps them with the offer; user-service's order shows pickup_eta_s once
 * the offer is accepted. Adds nothing when the driver's position is unknown or Redis fails. */
void core_ai_offer_fields(json_t *body, const json_t *payload, long long driver_id,
                          long long now_ms);
/* Count an order for the forecast's inputs (a no-op when the switch is off). */
void core_ai_order_placed(double lat, double lng, long long now_ms);
/* An offer ended: the driver's record for the acceptance features. */
void core_ai_offer_outcome(long long driver_id, bool accepted);

/* Added latency per request (the time spent in this module, Redis reads included), for the
 * p50/p99 in /metrics: path "estimate", "dispatch" (the ranking) or "dispatch_redis" (its
 * candidates' read, which replaces the rule's nearest-driver search). */
void core_ai_latency(const char *path, double seconds);
/* A monotonic clock in seconds, for those measurements. */
double core_ai_now_s(void);

#endif
