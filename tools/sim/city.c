/* city.c — a synthetic Jakarta: its extent, a street grid, named zones with homes and
 * workplaces, traffic speeds by zone and hour, and where orders come from and go to. The
 * figures are plausible, not surveyed: what matters for the services is that demand and speed
 * vary by place and hour the way a real city's do (a centre that jams at rush hour, commuter
 * flows in the morning and back in the evening, quiet fast nights). */
#include <math.h>

#include "sim.h"

const double CITY_LAT_MIN = -6.36, CITY_LAT_MAX = -6.09;
const double CITY_LNG_MIN = 106.69, CITY_LNG_MAX = 106.97;
const double CITY_GRID_DEG = 0.005; /* ~550 m between parallel streets */

#define M_PER_DEG_LAT 110574.0
#define M_PER_DEG_LNG_EQ 111320.0

static const zone_t zones[] = {
    {"Sudirman-Thamrin", {-6.2000, 106.8230}, 2.0, ZONE_CBD, 0.3, 10.0},
    {"Kuningan", {-6.2290, 106.8310}, 1.5, ZONE_CBD, 0.5, 7.0},
    {"Kota", {-6.1370, 106.8140}, 2.0, ZONE_COMMERCIAL, 1.5, 4.0},
    {"Kemayoran", {-6.1600, 106.8500}, 2.0, ZONE_RESIDENTIAL, 4.0, 2.0},
    {"Kelapa Gading", {-6.1580, 106.9050}, 2.5, ZONE_RESIDENTIAL, 5.0, 2.5},
    {"Cengkareng", {-6.1500, 106.7350}, 3.0, ZONE_RESIDENTIAL, 6.0, 1.0},
    {"Kebon Jeruk", {-6.1930, 106.7700}, 2.5, ZONE_RESIDENTIAL, 5.0, 1.5},
    {"Blok M", {-6.2440, 106.7990}, 2.0, ZONE_COMMERCIAL, 2.5, 4.5},
    {"Cilandak", {-6.2900, 106.8000}, 3.0, ZONE_RESIDENTIAL, 5.5, 1.5},
    {"Pasar Minggu", {-6.2850, 106.8440}, 3.0, ZONE_RESIDENTIAL, 6.0, 1.0},
    {"Jatinegara", {-6.2150, 106.8700}, 2.5, ZONE_RESIDENTIAL, 5.0, 1.5},
    {"Cakung", {-6.1850, 106.9400}, 3.0, ZONE_RESIDENTIAL, 4.5, 1.0},
    {"Cibubur", {-6.3400, 106.8800}, 2.5, ZONE_RESIDENTIAL, 4.0, 0.5},
};
#define N_ZONES ((int)(sizeof zones / sizeof zones[0]))

/* Orders per hour relative to each other (scaled to a mean of 1 by city_demand_factor): a night
 * trough, a morning commute peak, a lunch bump and the largest peak in the evening. */
static const double demand_by_hour[24] = {
    0.25, 0.15, 0.10, 0.10, 0.20, 0.50, 1.20, 2.00, 2.10, 1.40, 1.00, 1.10,
    1.30, 1.10, 1.00, 1.10, 1.50, 2.20, 2.30, 1.70, 1.20, 0.90, 0.60, 0.40,
};

int city_zone_count(void)
{
    return N_ZONES;
}

const zone_t *city_zone(int i)
{
    return i >= 0 && i < N_ZONES ? &zones[i] : NULL;
}

static double m_per_deg_lng(double lat)
{
    return M_PER_DEG_LNG_EQ * cos(lat * M_PI / 180.0);
}

double city_haversine_m(pt_t a, pt_t b)
{
    const double r = 6371008.8, k = M_PI / 180.0;
    double dlat = (b.lat - a.lat) * k, dlng = (b.lng - a.lng) * k;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(a.lat * k) * cos(b.lat * k) * sin(dlng / 2) * sin(dlng / 2);
    return 2 * r * asin(sqrt(h));
}

double city_grid_m(pt_t a, pt_t b)
{
    double mid = (a.lat + b.lat) / 2;
    return fabs(b.lat - a.lat) * M_PER_DEG_LAT + fabs(b.lng - a.lng) * m_per_deg_lng(mid);
}

int city_zone_at(pt_t p)
{
    int best = -1;
    double best_d = 1e18;
    for (int i = 0; i < N_ZONES; i++) {
        double d = city_haversine_m(p, zones[i].centre);
        if (d <= zones[i].radius_km * 1000 && d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best;
}

static bool rush(int h)
{
    return (h >= 7 && h <= 9) || (h >= 17 && h <= 19);
}

double city_speed_kmh(pt_t p, int hour, bool car)
{
    double base = car ? 24.0 : 28.0;
    int z = city_zone_at(p);
    zone_kind_t kind = z < 0 ? ZONE_RESIDENTIAL : zones[z].kind;
    double place = z < 0 ? 1.15 : kind == ZONE_CBD ? 0.80 : kind == ZONE_COMMERCIAL ? 0.90 : 1.0;
    double time;
    if (rush(hour))
        time = kind == ZONE_CBD ? 0.40 : kind == ZONE_COMMERCIAL ? 0.55 : 0.70;
    else if (hour >= 22 || hour < 5)
        time = 1.30;
    else
        time = 0.85;
    /* Motorcycles filter through jams: they lose only part of what cars lose. */
    if (!car && time < 1.0)
        time = 1.0 - (1.0 - time) * 0.7;
    return base * place * time;
}

double city_demand_factor(int hour)
{
    static double mean;
    if (mean == 0) {
        double sum = 0;
        for (int h = 0; h < 24; h++)
            sum += demand_by_hour[h];
        mean = sum / 24;
    }
    return demand_by_hour[((hour % 24) + 24) % 24] / mean;
}

static pt_t clamp_pt(pt_t p)
{
    if (p.lat < CITY_LAT_MIN)
        p.lat = CITY_LAT_MIN;
    if (p.lat > CITY_LAT_MAX)
        p.lat = CITY_LAT_MAX;
    if (p.lng < CITY_LNG_MIN)
        p.lng = CITY_LNG_MIN;
    if (p.lng > CITY_LNG_MAX)
        p.lng = CITY_LNG_MAX;
    /* GPS-like precision: five decimals (~1 m). */
    p.lat = round(p.lat * 1e5) / 1e5;
    p.lng = round(p.lng * 1e5) / 1e5;
    return p;
}

pt_t city_point_in_zone(rng_t *r, int z)
{
    const zone_t *zn = &zones[z];
    double sd_lat = zn->radius_km * 1000 / 2 / M_PER_DEG_LAT;
    double sd_lng = zn->radius_km * 1000 / 2 / m_per_deg_lng(zn->centre.lat);
    pt_t p = {zn->centre.lat + rng_normal(r) * sd_lat, zn->centre.lng + rng_normal(r) * sd_lng};
    return clamp_pt(p);
}

pt_t city_random_point(rng_t *r)
{
    pt_t p = {CITY_LAT_MIN + rng_unit(r) * (CITY_LAT_MAX - CITY_LAT_MIN),
              CITY_LNG_MIN + rng_unit(r) * (CITY_LNG_MAX - CITY_LNG_MIN)};
    return clamp_pt(p);
}

static int pick_zone(rng_t *r, bool homes, bool work)
{
    double total = 0, w[N_ZONES];
    for (int i = 0; i < N_ZONES; i++) {
        w[i] = (homes ? zones[i].home_w : 0) + (work ? zones[i].work_w : 0);
        total += w[i];
    }
    double x = rng_unit(r) * total;
    for (int i = 0; i < N_ZONES; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return N_ZONES - 1;
}

void city_trip(rng_t *r, int hour, pt_t *from, pt_t *to)
{
    bool morning = hour >= 6 && hour <= 10, evening = hour >= 16 && hour <= 21;
    int zf, zt;
    /* One trip in ten is local: inside one zone (errands, the last kilometre). */
    bool local = rng_unit(r) < 0.1;
    if (morning) {
        zf = pick_zone(r, true, false);
        zt = local ? zf : pick_zone(r, false, true);
    } else if (evening) {
        zf = pick_zone(r, false, true);
        zt = local ? zf : pick_zone(r, true, false);
    } else {
        zf = pick_zone(r, true, true);
        zt = local ? zf : pick_zone(r, true, true);
    }
    *from = city_point_in_zone(r, zf);
    for (int tries = 0; tries < 8; tries++) {
        *to = city_point_in_zone(r, zt);
        if (city_haversine_m(*from, *to) >= 500)
            return;
    }
    to->lat = from->lat + (from->lat > -6.2 ? -0.01 : 0.01);
    *to = clamp_pt(*to);
}

pt_t city_along(pt_t a, pt_t b, double f)
{
    if (f <= 0)
        return a;
    if (f >= 1)
        return b;
    double mid = (a.lat + b.lat) / 2;
    double dx = fabs(b.lng - a.lng) * m_per_deg_lng(mid), dy = fabs(b.lat - a.lat) * M_PER_DEG_LAT;
    double total = dx + dy, d = f * total;
    pt_t p;
    if (total <= 0)
        return a;
    if (d <= dx) {
        p.lat = a.lat;
        p.lng = a.lng + (b.lng - a.lng) * (dx > 0 ? d / dx : 0);
    } else {
        p.lng = b.lng;
        p.lat = a.lat + (b.lat - a.lat) * (dy > 0 ? (d - dx) / dy : 0);
    }
    p.lat = round(p.lat * 1e5) / 1e5;
    p.lng = round(p.lng * 1e5) / 1e5;
    return p;
}

/* ---- random numbers ----------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_exp(rng_t *r, double mean)
{
    return -mean * log(1.0 - rng_unit(r));
}

double rng_normal(rng_t *r)
{
    double u1 = rng_unit(r), u2 = rng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

double rng_lognormal(rng_t *r, double median, double sigma)
{
    return median * exp(sigma * rng_normal(r));
}
