/* hint.c — "where to wait": the forecast cell near an idle driver with the most expected orders
 * per free driver (docs/ai.md, "Where to wait"). Asked by driver-service for its
 * GET /drivers/me/waiting-hint over core's internal API.
 *
 * The cells are the demand forecast's (0.05°, about the dispatch radius): the driver's own and
 * its eight neighbours. For each, the orders expected over the next 15 city minutes — the demand
 * model's forecast, or, when that model is not serving, the counter rule (the cell's orders over
 * the last 15 minutes, the same counters the model reads) — against the free drivers of the
 * driver's type in it (this driver counted in its own cell, and as one more in any other, since
 * going there adds one). The best cell wins; a cell within 10% of the best but nearer wins over
 * it, so that nobody is sent across town for a rounding difference. With ANTAR_AI=off there are
 * no counters: the answer says so ("source": "off", no cell) rather than guess. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "ai.h"
#include "antar/util.h"
#include "dispatch.h"
#include "fare_model.h"
#include "hint.h"

#define HINT_BOX_KM 17.0 /* 3 × 0.05° ≈ 16.7 km around the driver */
#define HINT_MAX_DRIVERS 2000
#define HINT_NEAR_ENOUGH 0.9

int core_hint_pick(const core_hint_cell_t *c, size_t n)
{
    int best = -1;
    double top = -1;
    for (size_t i = 0; i < n; i++)
        if (c[i].per_driver > top)
            top = c[i].per_driver;
    for (size_t i = 0; i < n; i++)
        if (c[i].per_driver >= top * HINT_NEAR_ENOUGH &&
            (best < 0 || c[i].distance_m < c[best].distance_m))
            best = (int)i;
    return best;
}

static json_t *cell_json(const core_hint_cell_t *c)
{
    return json_pack("{sf sf sf sf sI sf}", "lat", c->lat, "lng", c->lng, "distance_m",
                     round(c->distance_m), "expected_orders", round(c->expected * 100) / 100,
                     "free_drivers", (json_int_t)c->free_drivers, "orders_per_free_driver",
                     round(c->per_driver * 100) / 100);
}

antar_err_t core_hint_waiting(long long driver_id, json_t **out, antar_outcome_t *why)
{
    if (!core_ai_enabled()) {
        *out = json_pack("{sI ss sn sn sn}", "driver_id", (json_int_t)driver_id, "source", "off",
                         "cell", "here", "horizon_s");
        return *out ? ANTAR_OK : ANTAR_E_NOMEM;
    }
    double lat = 0, lng = 0;
    const char *vt = "motorcycle";
    antar_err_t err = core_store_driver_position(vt, driver_id, &lat, &lng);
    if (err == ANTAR_E_NOT_FOUND) {
        vt = "car";
        err = core_store_driver_position(vt, driver_id, &lat, &lng);
    }
    if (err == ANTAR_E_NOT_FOUND) {
        return antar_outcome_fail(why, ANTAR_E_CONFLICT, "driver_id",
                                  "the driver is not online with a position: go online to get a "
                                  "hint");
    }
    if (err != ANTAR_OK)
        return err;
    json_t *drivers = NULL, *orders = NULL;
    err = core_store_city(lat, lng, HINT_BOX_KM, HINT_MAX_DRIVERS, 1, &drivers, &orders);
    if (err != ANTAR_OK)
        return err;
    long ilat, ilng;
    ai_dem_cell(lat, lng, &ilat, &ilng);
    core_hint_cell_t c[9];
    long long now = antar_now_ms();
    bool model = core_ai_ready(CORE_AI_DEM);
    size_t n = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            core_hint_cell_t *h = &c[n++];
            memset(h, 0, sizeof *h);
            h->ilat = ilat + dy, h->ilng = ilng + dx;
            h->lat = ((double)h->ilat + 0.5) * AI_DEM_CELL_DEG;
            h->lng = ((double)h->ilng + 0.5) * AI_DEM_CELL_DEG;
            h->distance_m =
                (dx == 0 && dy == 0) ? 0 : core_fare_haversine_m(lat, lng, h->lat, h->lng);
            h->free_drivers = (dx == 0 && dy == 0) ? 0 : 1; /* going there adds this driver */
        }
    size_t i;
    json_t *d;
    json_array_foreach(drivers, i, d)
    {
        const char *state = json_string_value(json_object_get(d, "state"));
        const char *dvt = json_string_value(json_object_get(d, "vehicle_type"));
        if (!state || strcmp(state, "available") != 0 || !dvt || strcmp(dvt, vt) != 0)
            continue;
        long a, b;
        ai_dem_cell(json_number_value(json_object_get(d, "lat")),
                    json_number_value(json_object_get(d, "lng")), &a, &b);
        if (labs(a - ilat) <= 1 && labs(b - ilng) <= 1)
            c[(a - ilat + 1) * 3 + (b - ilng + 1)].free_drivers++;
    }
    json_decref(drivers);
    json_decref(orders);
    if (c[4].free_drivers == 0)
        c[4].free_drivers = 1; /* this driver, offered or not */
    for (i = 0; i < n; i++) {
        double f = 0;
        if (model ? !core_ai_demand_cell(c[i].ilat, c[i].ilng, now, &f)
                  : !core_ai_demand_recent(c[i].ilat, c[i].ilng, now, &f))
            return ANTAR_E_KV;
        c[i].expected = f;
        c[i].per_driver = f / (double)c[i].free_drivers;
    }
    int best = core_hint_pick(c, n);
    *out = json_pack("{sI ss so so si}", "driver_id", (json_int_t)driver_id, "source",
                     model ? "model" : "rule", "cell", cell_json(&c[best]), "here",
                     cell_json(&c[4]), "horizon_s", AI_DEM_HORIZON_S);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}
