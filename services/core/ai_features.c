/* ai_features.c — see ai_features.h. */
#include "ai_features.h"

#include <math.h>

#include "fare_model.h"

ai_when_t ai_when(double city_s, int weekday0)
{
    double day = floor(city_s / 86400.0);
    double h = (city_s - day * 86400.0) / 3600.0;
    int wd = (int)(((long long)day + weekday0) % 7);
    if (wd < 0)
        wd += 7;
    return (ai_when_t){.hour = h, .weekday = wd};
}

double ai_manhattan_m(double lat1, double lng1, double lat2, double lng2)
{
    return core_fare_haversine_m(lat1, lng1, lat2, lng1) +
           core_fare_haversine_m(lat2, lng1, lat2, lng2);
}

void ai_eta_features(float out[AI_ETA_NF], double from_lat, double from_lng, double to_lat,
                     double to_lng, ai_when_t w, bool car)
{
    double hav = core_fare_haversine_m(from_lat, from_lng, to_lat, to_lng);
    double man = ai_manhattan_m(from_lat, from_lng, to_lat, to_lng);
    double dy = to_lat - from_lat, dx = (to_lng - from_lng) * cos(from_lat * M_PI / 180.0);
    double len = sqrt(dx * dx + dy * dy);
    int i = 0;
    out[i++] = (float)hav;
    out[i++] = (float)man;
    out[i++] = (float)(len > 0 ? dy / len : 0);
    out[i++] = (float)(len > 0 ? dx / len : 0);
    out[i++] = (float)from_lat;
    out[i++] = (float)from_lng;
    out[i++] = (float)to_lat;
    out[i++] = (float)to_lng;
    out[i++] = (float)((from_lat + to_lat) / 2);
    out[i++] = (float)((from_lng + to_lng) / 2);
    out[i++] = (float)w.hour;
    out[i++] = (float)w.weekday;
    out[i++] = car ? 1.0f : 0.0f;
    /* The midpoint on axes turned by 45°: trees split along one feature at a time, and a
     * district (a round centre that jams) is cut far more closely by four directions than by
     * two. */
    double my = (from_lat + to_lat) / 2, mx = (from_lng + to_lng) / 2 * cos(my * M_PI / 180.0);
    out[i++] = (float)(my + mx);
    out[i++] = (float)(my - mx);
}

/* Streets shorter than this are taken as this long: a driver at the door still needs a minute. */
#define ETA_MIN_M 50.0

double ai_eta_target(const float x[AI_ETA_NF], double dur_s)
{
    return log(dur_s / fmax(x[1], ETA_MIN_M));
}

double ai_eta_seconds(const float x[AI_ETA_NF], double y)
{
    return exp(y) * fmax(x[1], ETA_MIN_M);
}

void ai_acc_features(float out[AI_ACC_NF], double driver_lat, double driver_lng, double pickup_lat,
                     double pickup_lng, double dropoff_lat, double dropoff_lng, double price,
                     ai_when_t w, bool car, double rate, double offers)
{
    double pick = ai_manhattan_m(driver_lat, driver_lng, pickup_lat, pickup_lng);
    double trip = ai_manhattan_m(pickup_lat, pickup_lng, dropoff_lat, dropoff_lng);
    double km = trip / 1000.0 < 0.3 ? 0.3 : trip / 1000.0;
    int i = 0;
    out[i++] = (float)pick;
    out[i++] = (float)trip;
    out[i++] = (float)price;
    out[i++] = (float)(price / km);
    out[i++] = (float)w.hour;
    out[i++] = (float)w.weekday;
    out[i++] = car ? 1.0f : 0.0f;
    out[i++] = (float)rate;
    out[i++] = (float)offers;
    out[i++] = (float)pickup_lat;
}

void ai_dem_cell(double lat, double lng, long *ilat, long *ilng)
{
    *ilat = (long)floor(lat / AI_DEM_CELL_DEG);
    *ilng = (long)floor(lng / AI_DEM_CELL_DEG);
}

void ai_dem_features(float out[AI_DEM_NF], long ilat, long ilng, ai_when_t w, double last15,
                     double last60, double city15)
{
    int i = 0;
    out[i++] = (float)ilat;
    out[i++] = (float)ilng;
    out[i++] = (float)w.hour;
    out[i++] = (float)w.weekday;
    out[i++] = (float)last15;
    out[i++] = (float)last60;
    out[i++] = (float)city15;
    out[i++] = (float)(last60 / 4.0);
    out[i++] = (float)sin(w.hour * M_PI / 12.0);
}
