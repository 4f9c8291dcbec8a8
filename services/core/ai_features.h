/* ai_features.h — the feature vectors of core's three models, one definition for training
 * (tools/train, antar-train) and serving (ai.c), so the two can never drift apart.
 *
 * Pure functions of coordinates, the city clock and counters: no I/O. Everything a feature uses
 * is something core knows when it asks (positions from the presence index, the order, its own
 * counters) — never anything of the simulator's hidden behaviour. docs/ai.md lists them. Bump
 * AI_FEATURES_VERSION whenever a vector changes: a model trained on another version is refused
 * at load (and the rule serves). */
#ifndef CORE_AI_FEATURES_H
#define CORE_AI_FEATURES_H

#include <stdbool.h>

#define AI_FEATURES_VERSION 3

/* ETA of one leg (a trip, or a driver's way to a pickup): city seconds. */
#define AI_ETA_NF 15
/* Acceptance: probability that the driver accepts the offer. */
#define AI_ACC_NF 10
/* Demand: orders placed in a forecast cell over the next 15 city minutes. */
#define AI_DEM_NF 9

/* Forecast cells are coarser than the surge's 0.01° cells: 0.05° ≈ 5.5 km, about the dispatch
 * radius, so a cell holds enough orders per quarter hour to learn from. */
#define AI_DEM_CELL_DEG 0.05
/* Demand counters are kept per 5 city minutes; the features sum 3 (15 min) and 12 (60 min). */
#define AI_DEM_BUCKET_S 300
#define AI_DEM_HORIZON_S 900

typedef struct {
    double hour; /* city hour of day, fractional, [0, 24) */
    int weekday; /* 0 = Monday */
} ai_when_t;

/* The city clock: seconds since midnight of some day (day 0 = weekday0) → hour and weekday. */
ai_when_t ai_when(double city_s, int weekday0);

/* Manhattan distance along north–south and east–west, metres (the streets of a grid city). */
double ai_manhattan_m(double lat1, double lng1, double lat2, double lng2);

void ai_eta_features(float out[AI_ETA_NF], double from_lat, double from_lng, double to_lat,
                     double to_lng, ai_when_t w, bool car);
/* The ETA model learns the pace, log(seconds per metre of street), not the seconds: a tree
 * then only has to find where and when the city is slow, not re-learn that a longer way takes
 * longer. Target of a leg of dur_s with features x, and seconds from a prediction y. */
double ai_eta_target(const float x[AI_ETA_NF], double dur_s);
double ai_eta_seconds(const float x[AI_ETA_NF], double y);

/* rate: the driver's smoothed acceptance so far, (accepts + 1) / (offers + 2); offers: how many
 * this driver had (capped by the caller's counters). */
void ai_acc_features(float out[AI_ACC_NF], double driver_lat, double driver_lng, double pickup_lat,
                     double pickup_lng, double dropoff_lat, double dropoff_lng, double price,
                     ai_when_t w, bool car, double rate, double offers);

/* The forecast cell of a point as integer indexes. */
void ai_dem_cell(double lat, double lng, long *ilat, long *ilng);
/* last15 / last60: orders in the cell over the last 15 / 60 city minutes; city15: in the whole
 * city over the last 15. */
void ai_dem_features(float out[AI_DEM_NF], long ilat, long ilng, ai_when_t w, double last15,
                     double last60, double city15);

#endif
