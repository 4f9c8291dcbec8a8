/* fare_model.c — see fare_model.h for the formulas. */
#include "fare_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    double speed_kmh; /* average door-to-door speed in Jakarta traffic */
    double base, per_km, per_min, minimum;
} vehicle_tariff_t;

static const vehicle_tariff_t tariffs[CORE_VEHICLE__COUNT] = {
    [CORE_VEHICLE_MOTORCYCLE] = {"motorcycle", 25.0, 4000, 2500, 300, 10000},
    [CORE_VEHICLE_CAR] = {"car", 20.0, 8000, 4500, 500, 20000},
};

int core_vehicle_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < CORE_VEHICLE__COUNT; i++)
        if (strcmp(s, tariffs[i].name) == 0)
            return i;
    return -1;
}

const char *core_vehicle_name(core_vehicle_t v)
{
    if ((int)v < 0 || v >= CORE_VEHICLE__COUNT)
        return tariffs[CORE_VEHICLE_MOTORCYCLE].name;
    return tariffs[v].name;
}

double core_fare_haversine_m(double lat1, double lng1, double lat2, double lng2)
{
    const double r = 6371008.8, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlng = (lng2 - lng1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlng / 2) * sin(dlng / 2);
    if (a > 1.0) /* rounding near antipodes */
        a = 1.0;
    return 2.0 * r * asin(sqrt(a));
}

long long core_fare_round_up_500(double rupiah)
{
    if (!(rupiah > 0))
        return 0;
    /* A tiny tolerance keeps 12000.0000001 (float noise from a multiplication) at 12000. */
    return (long long)ceil(rupiah / 500.0 - 1e-9) * 500;
}

int core_fare_surge_tenths(long long demand, long long supply)
{
    if (demand < 0)
        demand = 0;
    if (supply < 1)
        supply = 1;
    if (demand <= supply)
        return CORE_SURGE_MIN_TENTHS;
    /* floor(demand / supply − 1) = floor((demand − supply) / supply): whole steps of 0.1. */
    long long steps = (demand - supply) / supply;
    if (steps > CORE_SURGE_MAX_TENTHS - CORE_SURGE_MIN_TENTHS)
        steps = CORE_SURGE_MAX_TENTHS - CORE_SURGE_MIN_TENTHS;
    return CORE_SURGE_MIN_TENTHS + (int)steps;
}

core_fare_t core_fare_compute(core_vehicle_t v, double pickup_lat, double pickup_lng,
                              double dropoff_lat, double dropoff_lng, int surge_tenths)
{
    core_fare_t f = {0};
    if ((int)v < 0 || v >= CORE_VEHICLE__COUNT)
        v = CORE_VEHICLE_MOTORCYCLE;
    const vehicle_tariff_t *t = &tariffs[v];
    if (surge_tenths < CORE_SURGE_MIN_TENTHS)
        surge_tenths = CORE_SURGE_MIN_TENTHS;
    if (surge_tenths > CORE_SURGE_MAX_TENTHS)
        surge_tenths = CORE_SURGE_MAX_TENTHS;

    double straight = core_fare_haversine_m(pickup_lat, pickup_lng, dropoff_lat, dropoff_lng);
    f.distance_m = llround(straight * CORE_FARE_DETOUR);
    double speed_mps = t->speed_kmh * 1000.0 / 3600.0;
    f.duration_s = (long long)ceil((double)f.distance_m / speed_mps);

    double subtotal = t->base + t->per_km * (double)f.distance_m / 1000.0 +
                      t->per_min * (double)f.duration_s / 60.0;
    if (subtotal < t->minimum)
        subtotal = t->minimum;
    f.surge_tenths = surge_tenths;
    f.price = core_fare_round_up_500(subtotal * surge_tenths / 10.0);
    return f;
}

void core_fare_cell(double lat, double lng, char *out, size_t outlen)
{
    snprintf(out, outlen, "%ld:%ld", (long)floor(lat / CORE_FARE_CELL_DEG),
             (long)floor(lng / CORE_FARE_CELL_DEG));
}
