/* fuzz_quote.c — libFuzzer harness for the fare quote token (services/core/quote.c): the
 * quote_id a customer's app sends back with an order, passed on by user-service.
 *
 * Input layout: bytes 0..39 = user id, vehicle, four coordinates, price, distance, duration,
 * surge, expiry and which byte to change (see the reads below); the rest, cut at a NUL, is a
 * quote_id as a client could send it.
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - the client's quote_id never opens (it would need the key), and a failed open writes
 *    nothing;
 *  - round trip: every fare that fits is signed into a 64-char base64url id that opens for the
 *    same user, vehicle and trip before expiry and gives back exactly the fare (a surge outside
 *    10..20 as 10) and the expiry; it is refused at and after the expiry, for the user id ± 1,
 *    the other vehicle, any coordinate moved by 2 grid steps, and with any single byte changed;
 *  - a fare that does not fit its field is not signed. */
#include <math.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "quote.h"

#define KEY_HEX "6b65792d666f722d66757a7a696e672d6f6e6c792d6e6f742d612d7365637265"
static unsigned char key[CORE_QUOTE_KEY_LEN];

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static bool opens(const char *id, long long user, const core_trip_t *t, long long now_ms)
{
    core_fare_t f = {-1, -1, -1, -1};
    long long exp = -1;
    bool ok = core_quote_open(key, id, user, t, now_ms, &f, &exp);
    if (!ok)
        FUZZ_CHECK(f.price == -1 && f.distance_m == -1 && f.duration_s == -1 &&
                       f.surge_tenths == -1 && exp == -1,
                   "output written on failure");
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool keyed;
    if (!keyed) {
        unsigned char other[CORE_QUOTE_KEY_LEN];
        FUZZ_CHECK(sodium_init() >= 0, "sodium");
        keyed = core_quote_key_derive(KEY_HEX, key);
        FUZZ_CHECK(keyed, "key");
        FUZZ_CHECK(!core_quote_key_derive("abcd", other) && !core_quote_key_derive("zz", other),
                   "a short or non-hex key was taken");
    }
    if (size < 40)
        return 0;
    long long user = (long long)(rd(data, 8) & ((1ULL << 53) - 1));
    static const char *const vt[] = {"motorcycle", "car"};
    int v = data[8] & 1;
    /* Coordinates as the route layer lets them through: finite, |lat| <= 90, |lng| <= 180. */
    core_trip_t t = {
        .pickup_lat = ((double)(int32_t)rd(data + 9, 4)) / 2147483648.0 * 90.0,
        .pickup_lng = ((double)(int32_t)rd(data + 13, 4)) / 2147483648.0 * 180.0,
        .dropoff_lat = ((double)(int32_t)rd(data + 17, 4)) / 2147483648.0 * 90.0,
        .dropoff_lng = ((double)(int32_t)rd(data + 21, 4)) / 2147483648.0 * 180.0,
        .vehicle_type = vt[v],
    };
    core_fare_t f = {
        .price = (long long)rd(data + 25, 5) - 1000,
        .distance_m = (long long)rd(data + 30, 4),
        .duration_s = (long long)rd(data + 34, 4) & 0x1ffffff,
        .surge_tenths = data[38] - 3,
    };
    long long expires_s = 1700000000LL + (long long)(int8_t)data[39] * 100000000LL;
    unsigned flip = data[0] ^ data[39];
    data += 40;
    size -= 40;

    /* The client's id. */
    char *id = malloc(size + 1);
    if (!id)
        return 0;
    memcpy(id, data, size);
    id[size] = '\0';
    FUZZ_CHECK(!opens(id, user, &t, 0), "a made-up quote_id opened");
    free(id);

    char q[CORE_QUOTE_ID_LEN + 1];
    bool fits = expires_s > 0 && expires_s <= UINT32_MAX && f.price >= 0 && f.price <= UINT32_MAX &&
                f.distance_m >= 0 && f.distance_m <= UINT32_MAX && f.duration_s >= 0 &&
                f.duration_s <= 0xffffff && f.surge_tenths >= 0 && f.surge_tenths <= 0xff;
    bool signed_ok = core_quote_sign(key, user, &t, &f, expires_s, q);
    FUZZ_CHECK(signed_ok == fits, "sign %d for a fare that %s", signed_ok,
               fits ? "fits" : "does not fit");
    if (!signed_ok)
        return 0;
    FUZZ_CHECK(strlen(q) == CORE_QUOTE_ID_LEN &&
                   strspn(q, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                       CORE_QUOTE_ID_LEN,
               "quote_id '%s'", q);
    long long now_ms = expires_s * 1000 - 1;
    core_fare_t g;
    long long exp_ms = 0;
    FUZZ_CHECK(core_quote_open(key, q, user, &t, now_ms, &g, &exp_ms), "own quote refused");
    int surge = f.surge_tenths < 10 || f.surge_tenths > 20 ? 10 : f.surge_tenths;
    FUZZ_CHECK(g.price == f.price && g.distance_m == f.distance_m && g.duration_s == f.duration_s &&
                   g.surge_tenths == surge && exp_ms == expires_s * 1000,
               "round trip changed the fare");
    FUZZ_CHECK(!opens(q, user, &t, expires_s * 1000), "opened at its expiry");
    FUZZ_CHECK(!opens(q, user + 1, &t, now_ms) && !opens(q, user - 1, &t, now_ms),
               "opened for another user");
    core_trip_t o = t;
    o.vehicle_type = vt[!v];
    FUZZ_CHECK(!opens(q, user, &o, now_ms), "opened for the other vehicle");
    double *c[4] = {&o.pickup_lat, &o.pickup_lng, &o.dropoff_lat, &o.dropoff_lng};
    for (int i = 0; i < 4; i++) {
        o = t;
        *c[i] += 2e-7;
        FUZZ_CHECK(!opens(q, user, &o, now_ms), "opened with coordinate %d moved", i);
    }
    size_t pos = flip % CORE_QUOTE_ID_LEN;
    char nb = size ? (char)data[0] : 'A';
    if (nb != q[pos] && nb != '\0') {
        q[pos] = nb;
        FUZZ_CHECK(!opens(q, user, &t, now_ms), "opened with byte %zu changed", pos);
    }
    return 0;
}
