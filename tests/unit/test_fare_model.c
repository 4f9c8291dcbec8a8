/* Unit tests of core-service's fare model (services/core/fare_model.c, included directly:
 * unit tests link only lib/). */
#include <criterion/criterion.h>

#include "../../services/core/fare_model.c"

/* Monas and Blok M, two well-known Jakarta landmarks about 8.3 km apart as the crow flies. */
#define MONAS_LAT -6.1754
#define MONAS_LNG 106.8272
#define BLOKM_LAT -6.2443
#define BLOKM_LNG 106.7982

Test(fare_model, haversine_monas_blok_m)
{
    double d = core_fare_haversine_m(MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG);
    cr_assert(d > 8200 && d < 8450, "Monas → Blok M straight line: got %.1f m, want ≈ 8300 m", d);
    double back = core_fare_haversine_m(BLOKM_LAT, BLOKM_LNG, MONAS_LAT, MONAS_LNG);
    cr_assert(fabs(d - back) < 1e-6, "distance is symmetric: %.6f vs %.6f", d, back);
}

Test(fare_model, haversine_known_pairs)
{
    /* One degree of latitude ≈ 111.2 km anywhere. */
    double deg = core_fare_haversine_m(-6.0, 106.8, -7.0, 106.8);
    cr_assert(fabs(deg - 111195) < 50, "1° of latitude: got %.1f m, want ≈ 111195 m", deg);
    double zero = core_fare_haversine_m(MONAS_LAT, MONAS_LNG, MONAS_LAT, MONAS_LNG);
    cr_assert(zero == 0.0, "same point: got %.6f m, want 0", zero);
    /* Soekarno-Hatta airport → Monas ≈ 20 km. */
    double cgk = core_fare_haversine_m(-6.1256, 106.6559, MONAS_LAT, MONAS_LNG);
    cr_assert(cgk > 19000 && cgk < 20000, "CGK → Monas: got %.1f m, want 19–20 km", cgk);
}

Test(fare_model, road_distance_and_duration)
{
    core_fare_t m =
        core_fare_compute(CORE_VEHICLE_MOTORCYCLE, MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG, 10);
    double straight = core_fare_haversine_m(MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG);
    cr_assert(llabs(m.distance_m - llround(straight * 1.3)) <= 1,
              "road distance = 1.3 × straight: got %lld, want %lld", m.distance_m,
              llround(straight * 1.3));
    /* 25 km/h = 6.944 m/s. */
    long long want = (long long)ceil(m.distance_m / (25000.0 / 3600.0));
    cr_assert_eq(m.duration_s, want, "motorcycle duration: got %lld s, want %lld s", m.duration_s,
                 want);
    core_fare_t c =
        core_fare_compute(CORE_VEHICLE_CAR, MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG, 10);
    cr_assert_eq(c.distance_m, m.distance_m, "same road for both: %lld vs %lld", c.distance_m,
                 m.distance_m);
    cr_assert(c.duration_s > m.duration_s, "a car is slower in traffic: car %lld s, moto %lld s",
              c.duration_s, m.duration_s);
}

Test(fare_model, price_monas_blok_m)
{
    core_fare_t m =
        core_fare_compute(CORE_VEHICLE_MOTORCYCLE, MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG, 10);
    double raw = 4000 + 2500 * m.distance_m / 1000.0 + 300 * m.duration_s / 60.0;
    long long want = (long long)ceil(raw / 500.0) * 500;
    cr_assert_eq(m.price, want, "motorcycle price: got %lld, want %lld (raw %.2f)", m.price, want,
                 raw);
    cr_assert(m.price > 30000 && m.price < 40000, "moto Monas → Blok M ≈ 35k: got %lld", m.price);
    core_fare_t c =
        core_fare_compute(CORE_VEHICLE_CAR, MONAS_LAT, MONAS_LNG, BLOKM_LAT, BLOKM_LNG, 10);
    double craw = 8000 + 4500 * c.distance_m / 1000.0 + 500 * c.duration_s / 60.0;
    cr_assert_eq(c.price, (long long)ceil(craw / 500.0) * 500, "car price: got %lld (raw %.2f)",
                 c.price, craw);
    cr_assert_eq(m.price % 500, 0, "a multiple of 500: %lld", m.price);
    cr_assert_eq(c.price % 500, 0, "a multiple of 500: %lld", c.price);
}

Test(fare_model, minimum_fare)
{
    /* About 100 m: far below either minimum. */
    core_fare_t m = core_fare_compute(CORE_VEHICLE_MOTORCYCLE, -6.2, 106.8, -6.2009, 106.8, 10);
    cr_assert_eq(m.price, 10000, "motorcycle minimum: got %lld, want 10000", m.price);
    core_fare_t c = core_fare_compute(CORE_VEHICLE_CAR, -6.2, 106.8, -6.2009, 106.8, 10);
    cr_assert_eq(c.price, 20000, "car minimum: got %lld, want 20000", c.price);
    /* Surge applies on top of the minimum. */
    core_fare_t s = core_fare_compute(CORE_VEHICLE_MOTORCYCLE, -6.2, 106.8, -6.2009, 106.8, 15);
    cr_assert_eq(s.price, 15000, "minimum × 1.5: got %lld, want 15000", s.price);
}

Test(fare_model, round_up_to_500)
{
    cr_assert_eq(core_fare_round_up_500(10000), 10000, "exact stays: %lld",
                 core_fare_round_up_500(10000));
    cr_assert_eq(core_fare_round_up_500(10000.01), 10500, "just above goes up: %lld",
                 core_fare_round_up_500(10000.01));
    cr_assert_eq(core_fare_round_up_500(10499), 10500, "10499 → 10500: %lld",
                 core_fare_round_up_500(10499));
    cr_assert_eq(core_fare_round_up_500(10501), 11000, "10501 → 11000: %lld",
                 core_fare_round_up_500(10501));
    cr_assert_eq(core_fare_round_up_500(1), 500, "1 → 500: %lld", core_fare_round_up_500(1));
    cr_assert_eq(core_fare_round_up_500(0), 0, "0 → 0: %lld", core_fare_round_up_500(0));
    cr_assert_eq(core_fare_round_up_500(-5), 0, "negative → 0: %lld", core_fare_round_up_500(-5));
    /* Float noise from surge × subtotal must not add 500. */
    cr_assert_eq(core_fare_round_up_500(10000 * 1.1), 11000, "10000 × 1.1 → 11000: %lld",
                 core_fare_round_up_500(10000 * 1.1));
}

Test(fare_model, surge_steps_and_clamp)
{
    cr_assert_eq(core_fare_surge_tenths(0, 0), 10, "no demand: %d", core_fare_surge_tenths(0, 0));
    cr_assert_eq(core_fare_surge_tenths(1, 0), 10, "one request, no driver: %d",
                 core_fare_surge_tenths(1, 0));
    cr_assert_eq(core_fare_surge_tenths(5, 5), 10, "demand = supply: %d",
                 core_fare_surge_tenths(5, 5));
    cr_assert_eq(core_fare_surge_tenths(9, 5), 10, "ratio 1.8 → floor 0 steps: %d",
                 core_fare_surge_tenths(9, 5));
    cr_assert_eq(core_fare_surge_tenths(10, 5), 11, "ratio 2 → 1.1: %d",
                 core_fare_surge_tenths(10, 5));
    cr_assert_eq(core_fare_surge_tenths(4, 1), 13, "ratio 4 → 1.3: %d",
                 core_fare_surge_tenths(4, 1));
    cr_assert_eq(core_fare_surge_tenths(4, 0), 13, "supply 0 counts as 1: %d",
                 core_fare_surge_tenths(4, 0));
    cr_assert_eq(core_fare_surge_tenths(11, 1), 20, "ratio 11 → 2.0: %d",
                 core_fare_surge_tenths(11, 1));
    cr_assert_eq(core_fare_surge_tenths(1000000, 1), 20, "clamped at 2.0: %d",
                 core_fare_surge_tenths(1000000, 1));
    cr_assert_eq(core_fare_surge_tenths(-3, -1), 10, "negative counts: %d",
                 core_fare_surge_tenths(-3, -1));
    /* Out-of-range surge passed to compute is clamped too. */
    core_fare_t lo = core_fare_compute(CORE_VEHICLE_CAR, -6.2, 106.8, -6.2009, 106.8, 3);
    core_fare_t hi = core_fare_compute(CORE_VEHICLE_CAR, -6.2, 106.8, -6.2009, 106.8, 99);
    cr_assert_eq(lo.surge_tenths, 10, "clamped low: %d", lo.surge_tenths);
    cr_assert_eq(hi.surge_tenths, 20, "clamped high: %d", hi.surge_tenths);
    cr_assert_eq(hi.price, 40000, "car minimum × 2: got %lld", hi.price);
}

Test(fare_model, vehicles_and_cells)
{
    cr_assert_eq(core_vehicle_parse("motorcycle"), CORE_VEHICLE_MOTORCYCLE, "motorcycle");
    cr_assert_eq(core_vehicle_parse("car"), CORE_VEHICLE_CAR, "car");
    cr_assert_eq(core_vehicle_parse("bajaj"), -1, "unknown type");
    cr_assert_eq(core_vehicle_parse(NULL), -1, "NULL");
    cr_assert_str_eq(core_vehicle_name(CORE_VEHICLE_CAR), "car");
    char a[32], b[32], c[32];
    core_fare_cell(-6.17541, 106.82721, a, sizeof a);
    core_fare_cell(-6.17549, 106.82729, b, sizeof b);
    core_fare_cell(-6.2443, 106.7982, c, sizeof c);
    cr_assert_str_eq(a, b, "nearby points share a cell: %s vs %s", a, b);
    cr_assert_str_neq(a, c, "Monas and Blok M are different cells: %s vs %s", a, c);
    cr_assert_str_eq(a, "-618:10682", "cell of Monas: %s", a);
}
