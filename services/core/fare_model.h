/* fare_model.h — the fare arithmetic of core-service: distance, duration, price and surge.
 *
 * Pure functions: no I/O, no clock, no globals, so the unit tests include fare_model.c directly.
 *
 * The model (documented in docs/contract.md's terms, all prices integer rupiah):
 *   distance_m = round(haversine(pickup, dropoff) × 1.3)            road detour factor
 *   duration_s = ceil(distance_m / speed)                            motorcycle 25 km/h, car 20
 * km/h subtotal   = max(base + per_km × km + per_min × minutes, min) motorcycle 4000 + 2500/km +
 * 300/min, min 10000; car 8000 + 4500/km + 500/min, min 20000 price      = ceil_to_500(subtotal ×
 * surge) surge      = clamp(1 + 0.1 × floor(max(0, demand / max(supply, 1) − 1)), 1.0, 2.0) demand
 * = estimates + orders in the pickup's grid cell over the last 10 minutes, supply = available
 * drivers of the type within the dispatch radius. Surge is carried as an integer number of tenths
 * (10 … 20) so that it never rounds oddly.
 */
#ifndef CORE_FARE_MODEL_H
#define CORE_FARE_MODEL_H

#include <stddef.h>

typedef enum { CORE_VEHICLE_MOTORCYCLE, CORE_VEHICLE_CAR, CORE_VEHICLE__COUNT } core_vehicle_t;

typedef struct {
    long long distance_m;
    long long duration_s;
    long long price;  /* integer rupiah, a multiple of 500 */
    int surge_tenths; /* 10 … 20 */
} core_fare_t;

#define CORE_FARE_DETOUR 1.3
#define CORE_SURGE_MIN_TENTHS 10
#define CORE_SURGE_MAX_TENTHS 20
/* Side of a demand grid cell in degrees (0.01° ≈ 1.1 km around Jakarta). */
#define CORE_FARE_CELL_DEG 0.01

/* "motorcycle" / "car" → the enum; -1 for anything else (NULL included). */
int core_vehicle_parse(const char *s);
/* The wire name; "motorcycle" for an out-of-range value. Static string. */
const char *core_vehicle_name(core_vehicle_t v);

/* Great-circle distance in metres (mean Earth radius 6371008.8 m). */
double core_fare_haversine_m(double lat1, double lng1, double lat2, double lng2);

/* Round a rupiah amount up to the next multiple of 500 (exact multiples are kept; ≤ 0 → 0). */
long long core_fare_round_up_500(double rupiah);

/* Surge in tenths from demand and supply counts (negative counts are taken as 0). */
int core_fare_surge_tenths(long long demand, long long supply);

/* The whole fare for a trip of vehicle v with the given surge (clamped to 10 … 20). */
core_fare_t core_fare_compute(core_vehicle_t v, double pickup_lat, double pickup_lng,
                              double dropoff_lat, double dropoff_lng, int surge_tenths);

/* The demand grid cell of a point as "<lat index>:<lng index>" into out (≥ 32 bytes). */
void core_fare_cell(double lat, double lng, char *out, size_t outlen);

#endif
