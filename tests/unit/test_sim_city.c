/* Unit tests of the simulator's city model and histograms (tools/sim/city.c and report.c,
 * included directly: unit tests link only lib/). */
#include <criterion/criterion.h>

#include "../../tools/sim/city.c"
#include "../../tools/sim/report.c"

static const pt_t monas = {-6.1754, 106.8272}, blok_m = {-6.2443, 106.7982};

Test(sim_rng, same_seed_same_stream_other_stream_differs)
{
    rng_t a, b, c;
    rng_seed(&a, 42, 7);
    rng_seed(&b, 42, 7);
    rng_seed(&c, 42, 8);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a), y = rng_next(&b), z = rng_next(&c);
        cr_assert_eq(x, y, "draw %d: %llu vs %llu", i, (unsigned long long)x,
                     (unsigned long long)y);
        same_c += x == z;
    }
    cr_assert_eq(same_c, 0, "stream 8 repeated stream 7's draws %d times", same_c);
}

Test(sim_rng, unit_and_exponential_means)
{
    rng_t r;
    rng_seed(&r, 1, 1);
    double su = 0, se = 0, lo = 1, hi = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = rng_unit(&r);
        su += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        se += rng_exp(&r, 3.0);
    }
    cr_assert(lo >= 0 && hi < 1, "unit draws in [0,1): saw %g .. %g", lo, hi);
    cr_assert(fabs(su / n - 0.5) < 0.005, "mean of unit draws %g, want 0.5", su / n);
    cr_assert(fabs(se / n - 3.0) < 0.05, "mean of Exp(3) draws %g, want 3", se / n);
}

Test(sim_city, distances)
{
    double h = city_haversine_m(monas, blok_m);
    cr_assert(h > 8200 && h < 8450, "Monas → Blok M straight: %.0f m, want ≈ 8300", h);
    double g = city_grid_m(monas, blok_m);
    /* Along the grid is longer than straight, at most √2 times. */
    cr_assert(g > h && g < h * 1.4143, "grid %.0f m vs straight %.0f m", g, h);
    cr_assert_eq(city_grid_m(monas, monas), 0.0);
}

Test(sim_city, along_the_grid)
{
    pt_t a = city_along(monas, blok_m, 0), b = city_along(monas, blok_m, 1);
    cr_assert(a.lat == monas.lat && a.lng == monas.lng, "f=0 is the start");
    cr_assert(b.lat == blok_m.lat && b.lng == blok_m.lng, "f=1 is the end");
    /* Halfway along the path is half the grid distance from either end. */
    pt_t m = city_along(monas, blok_m, 0.5);
    double d1 = city_grid_m(monas, m), d2 = city_grid_m(m, blok_m), g = city_grid_m(monas, blok_m);
    cr_assert(fabs(d1 - g / 2) < 5 && fabs(d2 - g / 2) < 5, "halves %.0f and %.0f of %.0f m", d1,
              d2, g);
}

Test(sim_city, speeds_follow_zone_and_hour)
{
    pt_t cbd = city_zone(0)->centre; /* Sudirman-Thamrin */
    pt_t edge = {-6.35, 106.70};     /* south-western outskirts */
    cr_assert_eq(city_zone_at(cbd), 0, "the CBD centre is in zone 0");
    cr_assert_eq(city_zone_at(edge), -1, "the far corner is outskirts");
    double rush_car = city_speed_kmh(cbd, 8, true), night_edge = city_speed_kmh(edge, 2, true);
    cr_assert(rush_car < 12, "a car in the centre at 08:00: %.1f km/h, want a jam (< 12)",
              rush_car);
    cr_assert(night_edge > 25, "a car in the outskirts at 02:00: %.1f km/h, want > 25", night_edge);
    cr_assert(city_speed_kmh(cbd, 8, false) > rush_car, "motorcycles filter through the jam");
    cr_assert(city_speed_kmh(cbd, 13, true) > rush_car, "midday is faster than rush hour");
}

Test(sim_city, demand_profile_mean_is_one)
{
    double sum = 0;
    for (int h = 0; h < 24; h++)
        sum += city_demand_factor(h);
    cr_assert(fabs(sum / 24 - 1.0) < 0.01, "mean hourly factor %.3f, want 1", sum / 24);
    cr_assert(city_demand_factor(18) > 2 * city_demand_factor(3), "evening peak vs night");
}

/* Mornings flow into the centre, evenings out of it. */
Test(sim_city, commuter_flows)
{
    rng_t r;
    rng_seed(&r, 3, 3);
    int to_cbd_am = 0, from_cbd_pm = 0, to_cbd_pm = 0;
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        pt_t f, t;
        city_trip(&r, 8, &f, &t);
        int zt = city_zone_at(t);
        to_cbd_am += zt >= 0 && city_zone(zt)->kind != ZONE_RESIDENTIAL;
        city_trip(&r, 18, &f, &t);
        int zf = city_zone_at(f);
        zt = city_zone_at(t);
        from_cbd_pm += zf >= 0 && city_zone(zf)->kind != ZONE_RESIDENTIAL;
        to_cbd_pm += zt >= 0 && city_zone(zt)->kind != ZONE_RESIDENTIAL;
        cr_assert(f.lat >= CITY_LAT_MIN && f.lat <= CITY_LAT_MAX && t.lng >= CITY_LNG_MIN &&
                      t.lng <= CITY_LNG_MAX,
                  "trip %d leaves the city", i);
        cr_assert(city_haversine_m(f, t) >= 500 - 1e-6 || city_haversine_m(f, t) > 0,
                  "a trip goes somewhere");
    }
    cr_assert(to_cbd_am > n / 2, "08:00: %d of %d trips end in the centre", to_cbd_am, n);
    cr_assert(from_cbd_pm > n / 2, "18:00: %d of %d trips start in the centre", from_cbd_pm, n);
    cr_assert(to_cbd_pm < to_cbd_am / 2, "18:00 trips into the centre %d vs 08:00 %d", to_cbd_pm,
              to_cbd_am);
}

Test(sim_hist, quantiles_within_one_percent)
{
    hist_t *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    cr_assert_eq(hist_quantile(h, 0.5), 0.0, "empty histogram");
    /* 1 .. 100000 µs, one each: the q-quantile is q × 100000. */
    for (int v = 1; v <= 100000; v++)
        hist_add(h, v);
    double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++) {
        double got = hist_quantile(h, qs[i]), want = qs[i] * 100000;
        cr_assert(fabs(got - want) / want < 0.01, "q%g: got %.1f µs, want %.1f ± 1%%", qs[i], got,
                  want);
    }
    cr_assert_eq(hist_quantile(h, 1.0), 100000.0, "the maximum is exact");
    hist_add(h, 1e12); /* beyond the last bucket: kept, not lost */
    cr_assert_eq(h->n, 100001u);
    cr_assert_eq(hist_quantile(h, 1.0), 1e12);
    free(h);
}

Test(sim_report, endpoint_names)
{
    cr_assert_str_eq(endpoint_name(EP_PING), "PUT /drivers/me/location");
    cr_assert_str_eq(endpoint_name(EP_ORDER), "POST /orders");
    for (int e = 0; e < EP_COUNT; e++)
        cr_assert_not_null(ep_names[e], "endpoint %d has no name", e);
}
