/* antar-train — builds core's models (docs/ai.md) from the recorded history, and measures
 * them on held-out days.
 *
 *   antar-train --out DIR [--rounds N] [--min-rows N] DAY...      train eta, accept, demand
 *   antar-train --eval --models DIR DAY...                         held-out metrics as JSON
 *
 * A DAY is an events.jsonl of one simulated day (tools/sim writes one per run): its clock
 * line, trips (where each leg began and ended, when, how long it took), offers (where the
 * driver was, the order, the price, the outcome) and orders (where and when they were placed).
 * That is what a ride-hailing system records of its own traffic; nothing of the simulator's
 * hidden parameters (speeds by zone and hour, each driver's pickiness) is read — the models must
 * find them in the outcomes.
 *
 * Split by time, never by random rows: the days are ordered by their clock, every record by
 * (day, city time); with three days or more the last day is the test and the one before it
 * validates (early stopping, the metrics in <model>.meta.json), else the first 70% of the rows
 * train, the next 15% validate, the last 15% test. Training and inference use XGBoost's C API;
 * the feature vectors are services/core/ai_features.c, the same code core serves with. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xgboost/c_api.h>

#include "ai_features.h"
#include "ai_model.h"
#include "ai_tree.h"
#include "fare_model.h"
#include "train.h"

/* ---- growing arrays ------------------------------------------------------------------------ */

typedef struct {
    float *x;    /* n × nf */
    float *y;    /* n labels */
    double *t;   /* n sort keys: day index × 1e7 + city seconds */
    double *aux; /* n extras (the rule's prediction, the seasonal-naive forecast) */
    size_t n, cap;
    int nf;
} tab_t;

static int tab_push(tab_t *tb, const float *x, float y, double t, double aux)
{
    if (tb->n == tb->cap) {
        size_t c = tb->cap ? tb->cap * 2 : 1024;
        float *nx = realloc(tb->x, c * (size_t)tb->nf * sizeof *nx);
        if (!nx)
            return -1;
        tb->x = nx;
        float *ny = realloc(tb->y, c * sizeof *ny);
        if (!ny)
            return -1;
        tb->y = ny;
        double *nt = realloc(tb->t, c * sizeof *nt);
        if (!nt)
            return -1;
        tb->t = nt;
        double *na = realloc(tb->aux, c * sizeof *na);
        if (!na)
            return -1;
        tb->aux = na;
        tb->cap = c;
    }
    memcpy(tb->x + tb->n * (size_t)tb->nf, x, (size_t)tb->nf * sizeof *x);
    tb->y[tb->n] = y;
    tb->t[tb->n] = t;
    tb->aux[tb->n] = aux;
    tb->n++;
    return 0;
}

static void tab_free(tab_t *tb)
{
    free(tb->x);
    free(tb->y);
    free(tb->t);
    free(tb->aux);
    memset(tb, 0, sizeof *tb);
}

/* Sort rows by t (records are nearly sorted already: insertion of an index, then permute). */
static const double *sort_keys;
static int cmp_idx(const void *a, const void *b)
{
    double x = sort_keys[*(const size_t *)a], y = sort_keys[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

static int tab_sort(tab_t *tb)
{
    size_t *idx = malloc(tb->n * sizeof *idx);
    tab_t o = {.nf = tb->nf};
    if (!idx)
        return -1;
    for (size_t i = 0; i < tb->n; i++)
        idx[i] = i;
    sort_keys = tb->t;
    qsort(idx, tb->n, sizeof *idx, cmp_idx);
    for (size_t i = 0; i < tb->n; i++) {
        size_t k = idx[i];
        if (tab_push(&o, tb->x + k * (size_t)tb->nf, tb->y[k], tb->t[k], tb->aux[k]) != 0) {
            free(idx);
            tab_free(&o);
            return -1;
        }
    }
    free(idx);
    tab_free(tb);
    *tb = o;
    return 0;
}

/* ---- reading the days ---------------------------------------------------------------------- */

typedef struct {
    double t0_wall_ms;
    int weekday;
    json_t **ev; /* trip, offer and order events in file order */
    size_t n, cap;
} day_t;

static int cmp_day(const void *a, const void *b)
{
    double x = ((const day_t *)a)->t0_wall_ms, y = ((const day_t *)b)->t0_wall_ms;
    return x < y ? -1 : x > y;
}

static bool pt(json_t *a, double *lat, double *lng)
{
    if (!json_is_array(a) || json_array_size(a) != 2)
        return false;
    *lat = json_number_value(json_array_get(a, 0));
    *lng = json_number_value(json_array_get(a, 1));
    return isfinite(*lat) && isfinite(*lng) && fabs(*lat) <= 90 && fabs(*lng) <= 180;
}

static void day_free(day_t *d);

static int day_read(const char *path, day_t *d, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    memset(d, 0, sizeof *d);
    d->t0_wall_ms = -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (len > 65536)
            continue;
        json_t *e = json_loads(line, 0, NULL);
        const char *ev = json_string_value(json_object_get(e, "ev"));
        if (!ev) {
            json_decref(e);
            continue;
        }
        if (strcmp(ev, "clock") == 0) {
            d->t0_wall_ms = json_number_value(json_object_get(e, "t0_wall_ms"));
            d->weekday = (int)json_integer_value(json_object_get(e, "weekday"));
            json_decref(e);
            continue;
        }
        if (strcmp(ev, "trip") && strcmp(ev, "offer") && strcmp(ev, "order")) {
            json_decref(e);
            continue;
        }
        if (d->n == d->cap) {
            size_t c = d->cap ? d->cap * 2 : 4096;
            json_t **nv = realloc(d->ev, c * sizeof *nv);
            if (!nv) {
                json_decref(e);
                rc = -1;
                snprintf(err, errlen, "out of memory");
                break;
            }
            d->ev = nv;
            d->cap = c;
        }
        d->ev[d->n++] = e;
    }
    free(line);
    fclose(f);
    if (rc == 0 && d->t0_wall_ms < 0) {
        snprintf(err, errlen, "%s: no clock line (an events.jsonl of an older simulator?)", path);
        rc = -1;
    }
    if (rc != 0) { /* the caller keeps only the days that were read */
        day_free(d);
        memset(d, 0, sizeof *d);
    }
    return rc;
}

static void day_free(day_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        json_decref(d->ev[i]);
    free(d->ev);
}

/* ---- the three data sets ------------------------------------------------------------------- */

/* The rule serving today (fare_model.c): haversine × detour at the vehicle's fixed speed. */
static double rule_eta_s(double lat1, double lng1, double lat2, double lng2, bool car)
{
    core_fare_t f = core_fare_compute(car ? CORE_VEHICLE_CAR : CORE_VEHICLE_MOTORCYCLE, lat1, lng1,
                                      lat2, lng2, CORE_SURGE_MIN_TENTHS);
    return (double)f.duration_s;
}

static int eta_leg(tab_t *tb, int di, const day_t *d, double flat, double flng, double tlat,
                   double tlng, double start_s, double dur_s, bool car)
{
    /* Recording noise, not trips: legs under 30 m or over 4 city hours, and legs whose straight
     * line implies more than 120 km/h or less than 1 km/h through a city (a trip resumed after
     * a lost answer carries the wrong start: 12 km in 20 s). A real system drops such GPS and
     * clock glitches the same way; it takes out ~0.2% of the legs. */
    double hav = core_fare_haversine_m(flat, flng, tlat, tlng);
    if (!(dur_s > 0 && dur_s < 4 * 3600) || !isfinite(start_s) || hav < 30 ||
        hav / dur_s * 3.6 > 120 || hav / dur_s * 3.6 < 1)
        return 0;
    float x[AI_ETA_NF];
    ai_eta_features(x, flat, flng, tlat, tlng, ai_when(start_s, d->weekday), car);
    return tab_push(tb, x, (float)ai_eta_target(x, dur_s), di * 1e7 + start_s,
                    rule_eta_s(flat, flng, tlat, tlng, car));
}

static int build_eta(day_t *days, int nd, tab_t *tb)
{
    tb->nf = AI_ETA_NF;
    for (int di = 0; di < nd; di++) {
        day_t *d = &days[di];
        for (size_t i = 0; i < d->n; i++) {
            json_t *e = d->ev[i];
            if (strcmp(json_string_value(json_object_get(e, "ev")), "trip") != 0)
                continue;
            double fl, fg, pl, pg, dl, dg;
            const char *vt = json_string_value(json_object_get(e, "vehicle_type"));
            bool car = vt && strcmp(vt, "car") == 0;
            if (!pt(json_object_get(e, "pickup"), &pl, &pg) ||
                !pt(json_object_get(e, "dropoff"), &dl, &dg))
                continue;
            /* Legs the simulator cut short while winding a run down are not drives. */
            bool pickup_cut = json_is_true(json_object_get(e, "pickup_cut"));
            bool trip_cut = json_is_true(json_object_get(e, "trip_cut"));
            if (!pickup_cut && pt(json_object_get(e, "from"), &fl, &fg) &&
                eta_leg(tb, di, d, fl, fg, pl, pg,
                        json_number_value(json_object_get(e, "accept_city_s")),
                        json_number_value(json_object_get(e, "pickup_sim_s")), car) != 0)
                return -1;
            if (!trip_cut && eta_leg(tb, di, d, pl, pg, dl, dg,
                                     json_number_value(json_object_get(e, "pickup_city_s")),
                                     json_number_value(json_object_get(e, "trip_sim_s")), car) != 0)
                return -1;
        }
    }
    return tab_sort(tb);
}

/* A driver's record so far: how many offers reached an outcome, how many were accepted. */
typedef struct {
    long long id;
    double offers, accepts;
} drv_rec_t;

static drv_rec_t *drv_find(drv_rec_t **v, size_t *n, long long id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].id == id)
            return &(*v)[i];
    drv_rec_t *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    *v = nv;
    nv[*n] = (drv_rec_t){.id = id};
    return &nv[(*n)++];
}

static double acc_response_sum, acc_response_n;

static int build_acc(day_t *days, int nd, tab_t *tb)
{
    tb->nf = AI_ACC_NF;
    for (int di = 0; di < nd; di++) {
        day_t *d = &days[di];
        drv_rec_t *recs = NULL;
        size_t nrec = 0;
        for (size_t i = 0; i < d->n; i++) {
            json_t *e = d->ev[i];
            if (strcmp(json_string_value(json_object_get(e, "ev")), "offer") != 0)
                continue;
            const char *oc = json_string_value(json_object_get(e, "outcome"));
            double al, ag, pl, pg, dl, dg;
            if (!oc || !pt(json_object_get(e, "driver_at"), &al, &ag) ||
                !pt(json_object_get(e, "pickup"), &pl, &pg) ||
                !pt(json_object_get(e, "dropoff"), &dl, &dg))
                continue;
            /* "lost": the driver said yes but another answer won — the intent is what counts. */
            bool yes = strcmp(oc, "accepted") == 0 || strcmp(oc, "lost") == 0;
            drv_rec_t *r = drv_find(&recs, &nrec, json_integer_value(json_object_get(e, "driver")));
            if (!r) {
                free(recs);
                return -1;
            }
            double seen = json_number_value(json_object_get(e, "seen_city_s"));
            float x[AI_ACC_NF];
            ai_acc_features(x, al, ag, pl, pg, dl, dg,
                            json_number_value(json_object_get(e, "price")),
                            ai_when(seen, d->weekday), json_is_true(json_object_get(e, "car")),
                            (r->accepts + 1) / (r->offers + 2), fmin(r->offers, AI_ACC_OFFERS_CAP));
            if (tab_push(tb, x, yes ? 1.0f : 0.0f, di * 1e7 + seen, 0) != 0) {
                free(recs);
                return -1;
            }
            r->offers++;
            r->accepts += yes;
            if (!yes) {
                acc_response_sum += json_number_value(json_object_get(e, "response_ms"));
                acc_response_n++;
            }
        }
        free(recs);
    }
    return tab_sort(tb);
}

/* Orders per forecast cell: one row per (cell, 5-minute step) of each day. */
typedef struct {
    long ilat, ilng;
} cell_t;

typedef struct {
    double s;
    long ilat, ilng;
} placed_t;

static int cmp_placed(const void *a, const void *b)
{
    double x = ((const placed_t *)a)->s, y = ((const placed_t *)b)->s;
    return x < y ? -1 : x > y;
}

static double count_in(const placed_t *p, size_t n, long ilat, long ilng, bool any, double a,
                       double b)
{
    double c = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].s >= a && p[i].s < b && (any || (p[i].ilat == ilat && p[i].ilng == ilng)))
            c++;
    return c;
}

static int build_dem(day_t *days, int nd, tab_t *tb, cell_t **cells_out, size_t *ncells_out)
{
    tb->nf = AI_DEM_NF;
    cell_t *cells = NULL;
    size_t nc = 0;
    int rc = 0;
    placed_t **pd = calloc((size_t)nd, sizeof *pd);
    size_t *npd = calloc((size_t)nd, sizeof *npd);
    if (!pd || !npd)
        rc = -1;
    for (int di = 0; rc == 0 && di < nd; di++) {
        day_t *d = &days[di];
        pd[di] = malloc((d->n + 1) * sizeof **pd);
        if (!pd[di]) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < d->n; i++) {
            json_t *e = d->ev[i];
            double lat, lng;
            if (strcmp(json_string_value(json_object_get(e, "ev")), "order") != 0 ||
                !pt(json_object_get(e, "pickup"), &lat, &lng) ||
                !json_is_number(json_object_get(e, "placed_city_s")))
                continue;
            placed_t p = {.s = json_number_value(json_object_get(e, "placed_city_s"))};
            ai_dem_cell(lat, lng, &p.ilat, &p.ilng);
            pd[di][npd[di]++] = p;
            bool known = false;
            for (size_t k = 0; k < nc && !known; k++)
                known = cells[k].ilat == p.ilat && cells[k].ilng == p.ilng;
            if (!known) {
                cell_t *nv = realloc(cells, (nc + 1) * sizeof *nv);
                if (!nv) {
                    rc = -1;
                    break;
                }
                cells = nv;
                cells[nc++] = (cell_t){p.ilat, p.ilng};
            }
        }
        qsort(pd[di], npd[di], sizeof **pd, cmp_placed);
    }
    for (int di = 0; rc == 0 && di < nd; di++) {
        if (npd[di] == 0)
            continue;
        double lo = pd[di][0].s, hi = pd[di][npd[di] - 1].s;
        double first = ceil((lo + 3600) / AI_DEM_BUCKET_S) * AI_DEM_BUCKET_S;
        for (double t = first; t + AI_DEM_HORIZON_S <= hi && rc == 0; t += AI_DEM_BUCKET_S) {
            double city15 = count_in(pd[di], npd[di], 0, 0, true, t - 900, t);
            for (size_t k = 0; k < nc && rc == 0; k++) {
                double l15 =
                    count_in(pd[di], npd[di], cells[k].ilat, cells[k].ilng, false, t - 900, t);
                double l60 =
                    count_in(pd[di], npd[di], cells[k].ilat, cells[k].ilng, false, t - 3600, t);
                double next = count_in(pd[di], npd[di], cells[k].ilat, cells[k].ilng, false, t,
                                       t + AI_DEM_HORIZON_S);
                float x[AI_DEM_NF];
                ai_dem_features(x, cells[k].ilat, cells[k].ilng, ai_when(t, days[di].weekday), l15,
                                l60, city15);
                rc = tab_push(tb, x, (float)next, di * 1e7 + t, fmod(t, 86400.0));
            }
        }
    }
    for (int di = 0; pd && di < nd; di++)
        free(pd[di]);
    free(pd);
    free(npd);
    if (rc == 0)
        rc = tab_sort(tb);
    *cells_out = cells;
    *ncells_out = nc;
    return rc;
}

/* ---- metrics ------------------------------------------------------------------------------- */

/* mean ± 1.96 × standard error */
typedef struct {
    double mean, lo, hi;
    size_t n;
} ci_t;

static ci_t ci_of(const double *v, size_t n)
{
    ci_t c = {.n = n};
    if (n == 0)
        return c;
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    c.mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - c.mean) * (v[i] - c.mean);
    double se = n > 1 ? sqrt(ss / (double)(n - 1) / (double)n) : 0;
    c.lo = c.mean - 1.96 * se;
    c.hi = c.mean + 1.96 * se;
    return c;
}

static json_t *ci_json(ci_t c)
{
    return json_pack("{sf sf sf sI}", "mean", c.mean, "ci95_lo", c.lo, "ci95_hi", c.hi, "n",
                     (json_int_t)c.n);
}

/* Area under the ROC curve (rank statistic; ties count half). */
typedef struct {
    float p;
    float y;
} py_t;

static int cmp_py(const void *a, const void *b)
{
    float x = ((const py_t *)a)->p, y = ((const py_t *)b)->p;
    return x < y ? -1 : x > y;
}

double ai_train_auc(const float *p, const float *y, size_t n)
{
    py_t *v = malloc(n * sizeof *v);
    if (!v || n == 0) {
        free(v);
        return NAN;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (py_t){p[i], y[i]};
    qsort(v, n, sizeof *v, cmp_py);
    double pos = 0, neg = 0, rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].p == v[i].p)
            j++;
        double avg = (double)(i + j + 1) / 2.0; /* ranks i+1 … j */
        for (size_t k = i; k < j; k++)
            if (v[k].y > 0.5) {
                rank_sum += avg;
                pos++;
            } else
                neg++;
        i = j;
    }
    free(v);
    if (pos == 0 || neg == 0)
        return NAN;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* A 95% interval of the AUC from 200 bootstrap resamples (a fixed seed: reproducible). */
static ci_t auc_ci(const float *p, const float *y, size_t n)
{
    ci_t c = {.mean = ai_train_auc(p, y, n), .n = n};
    float *bp = malloc(n * sizeof *bp), *by = malloc(n * sizeof *by);
    double v[200];
    int nv = 0;
    unsigned long long r = 88172645463325252ULL;
    for (int b = 0; bp && by && b < 200; b++) {
        for (size_t i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            size_t k = (size_t)(r % n);
            bp[i] = p[k];
            by[i] = y[k];
        }
        double a = ai_train_auc(bp, by, n);
        if (isfinite(a))
            v[nv++] = a;
    }
    free(bp);
    free(by);
    if (nv > 10) {
        for (int i = 1; i < nv; i++) /* insertion sort: 200 values */
            for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
                double t = v[j];
                v[j] = v[j - 1];
                v[j - 1] = t;
            }
        c.lo = v[(int)(0.025 * nv)];
        c.hi = v[(int)(0.975 * nv) - 1];
    } else
        c.lo = c.hi = c.mean;
    return c;
}

/* Calibration: 10 bins of predicted probability, mean predicted against observed rate, and the
 * expected calibration error (bin-weighted |predicted − observed|). */
static json_t *calibration_json(const float *p, const float *y, size_t n)
{
    double sp[10] = {0}, sy[10] = {0}, cnt[10] = {0}, ece = 0;
    for (size_t i = 0; i < n; i++) {
        int b = (int)(p[i] * 10);
        b = b < 0 ? 0 : b > 9 ? 9 : b;
        sp[b] += p[i];
        sy[b] += y[i];
        cnt[b]++;
    }
    json_t *bins = json_array();
    for (int b = 0; b < 10; b++) {
        if (cnt[b] == 0)
            continue;
        ece += cnt[b] / (double)n * fabs(sp[b] / cnt[b] - sy[b] / cnt[b]);
        json_array_append_new(bins, json_pack("{sf sf sI}", "predicted", sp[b] / cnt[b], "observed",
                                              sy[b] / cnt[b], "n", (json_int_t)cnt[b]));
    }
    return json_pack("{sf so}", "ece", n ? ece : 0.0, "bins", bins);
}

/* ---- training ------------------------------------------------------------------------------ */

static int dmat(const tab_t *tb, size_t a, size_t b, DMatrixHandle *out)
{
    if (XGDMatrixCreateFromMat(tb->x + a * (size_t)tb->nf, b - a, (bst_ulong)tb->nf, NAN, out) != 0)
        return -1;
    return XGDMatrixSetFloatInfo(*out, "label", tb->y + a, b - a);
}

static int predict_range(ai_booster_t *b, const tab_t *tb, size_t a, size_t e, float *out)
{
    for (size_t i = a; i < e; i += 4096) {
        size_t k = e - i < 4096 ? e - i : 4096;
        if (ai_booster_predict(b, tb->x + i * (size_t)tb->nf, k, out + (i - a)) != 0)
            return -1;
    }
    return 0;
}

/* The validation loss the early stopping watches: MAPE for the ETA (log target), log-loss for
 * acceptance, MAE for demand. */
static double val_loss(ai_model_kind_t kind, const float *p, const float *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (kind == AI_KIND_ETA) /* same metre count: the pace's ratio is the seconds' ratio */
            s += fabs(exp(p[i]) - exp(y[i])) / exp(y[i]);
        else if (kind == AI_KIND_ACC) {
            double q = fmin(fmax(p[i], 1e-6), 1 - 1e-6);
            s -= y[i] > 0.5 ? log(q) : log(1 - q);
        } else
            s += fabs(p[i] - y[i]);
    }
    return n ? s / (double)n : 0;
}

static const char *objective(ai_model_kind_t k)
{
    return k == AI_KIND_ETA   ? "reg:squarederror"
           : k == AI_KIND_ACC ? "binary:logistic"
                              : "count:poisson";
}

/* The booster's parameters; n: the rows it learns from (the ETA's starting pace is their mean). */
static void set_params(BoosterHandle h, ai_model_kind_t kind, const tab_t *tb, size_t n,
                       const ai_train_opts_t *o)
{
    char seed[24];
    snprintf(seed, sizeof seed, "%d", o->seed);
    XGBoosterSetParam(h, "objective", objective(kind));
    /* The pace's mean is far from XGBoost's default start of 0.5. */
    if (kind == AI_KIND_ETA) {
        double m = 0;
        for (size_t i = 0; i < n; i++)
            m += tb->y[i];
        char bs[32];
        snprintf(bs, sizeof bs, "%.6f", n ? m / (double)n : 0.0);
        XGBoosterSetParam(h, "base_score", bs);
    }
    XGBoosterSetParam(h, "eta", "0.1");
    XGBoosterSetParam(h, "max_depth", kind == AI_KIND_DEM ? "4" : "6");
    XGBoosterSetParam(h, "min_child_weight", "3");
    XGBoosterSetParam(h, "subsample", "0.9");
    XGBoosterSetParam(h, "tree_method", "hist");
    XGBoosterSetParam(h, "nthread", "2");
    XGBoosterSetParam(h, "seed", seed);
}

/* A booster with its parameters over rows [0, n) of tb; *d the rows' DMatrix (the caller frees
 * it). NULL on failure (said on stderr; *d freed). */
static ai_booster_t *new_booster(ai_model_kind_t kind, const tab_t *tb, size_t n,
                                 const ai_train_opts_t *o, DMatrixHandle *d)
{
    BoosterHandle h = NULL;
    *d = NULL;
    if (dmat(tb, 0, n, d) != 0 || XGBoosterCreate(d, 1, &h) != 0) {
        fprintf(stderr, "antar-train: %s\n", ai_booster_last_error());
        XGDMatrixFree(*d);
        *d = NULL;
        return NULL;
    }
    set_params(h, kind, tb, n, o);
    ai_booster_t *b = ai_booster_wrap(h, tb->nf);
    if (!b) {
        XGBoosterFree(h);
        XGDMatrixFree(*d);
        *d = NULL;
    }
    return b;
}

/* Train on rows [0, ntr), stop early on [ntr, nva); the booster sliced to its best round. */
static ai_booster_t *fit(ai_model_kind_t kind, const tab_t *tb, size_t ntr, size_t nva,
                         const ai_train_opts_t *o, int *best_round, double *best_loss)
{
    DMatrixHandle dtr = NULL;
    ai_booster_t *b = new_booster(kind, tb, ntr, o, &dtr);
    if (!b)
        return NULL;
    BoosterHandle h = ai_booster_handle(b);
    float *pv = malloc((nva - ntr + 1) * sizeof *pv);
    int since = 0;
    *best_round = 0;
    *best_loss = INFINITY;
    for (int it = 0; b && pv && it < o->rounds; it++) {
        if (XGBoosterUpdateOneIter(h, it, dtr) != 0) {
            fprintf(stderr, "antar-train: %s\n", ai_booster_last_error());
            ai_booster_free(b);
            b = NULL;
            break;
        }
        if ((it + 1) % 10 != 0 && it + 1 != o->rounds)
            continue;
        if (nva == ntr) { /* no validation rows (a tiny history): keep every round */
            *best_round = it + 1;
            continue;
        }
        if (predict_range(b, tb, ntr, nva, pv) != 0)
            break;
        double l = val_loss(kind, pv, tb->y + ntr, nva - ntr);
        if (l < *best_loss - 1e-9) {
            *best_loss = l;
            *best_round = it + 1;
            since = 0;
        } else if (++since >= 5)
            break;
    }
    free(pv);
    XGDMatrixFree(dtr);
    if (!b)
        return NULL;
    if (*best_round <= 0)
        *best_round = 1;
    BoosterHandle sliced = NULL;
    int rounds = 0;
    XGBoosterBoostedRounds(h, &rounds);
    if (*best_round < rounds && XGBoosterSlice(h, 0, *best_round, 1, &sliced) == 0) {
        ai_booster_free(b);
        b = ai_booster_wrap(sliced, tb->nf);
    }
    return b;
}

/* The served model: the early-stopped number of rounds, learnt again from the training and the
 * validation rows together ([0, n)) — the validation day is the most recent history before the
 * test day, and the ETA's and the demand's patterns move with the hour and the day. */
static ai_booster_t *refit(ai_model_kind_t kind, const tab_t *tb, size_t n, int rounds,
                           const ai_train_opts_t *o)
{
    DMatrixHandle d = NULL;
    ai_booster_t *b = new_booster(kind, tb, n, o, &d);
    if (!b)
        return NULL;
    for (int it = 0; b && it < rounds; it++)
        if (XGBoosterUpdateOneIter(ai_booster_handle(b), it, d) != 0) {
            fprintf(stderr, "antar-train: %s\n", ai_booster_last_error());
            ai_booster_free(b);
            b = NULL;
        }
    XGDMatrixFree(d);
    return b;
}

static const char *kind_name(ai_model_kind_t k)
{
    return k == AI_KIND_ETA ? "eta" : k == AI_KIND_ACC ? "accept" : "demand";
}

/* Test-set metrics of one model on rows [a, e) of tb, as JSON. */
static json_t *metrics(ai_model_kind_t kind, ai_booster_t *b, const tab_t *tb, size_t a, size_t e)
{
    size_t n = e - a;
    json_t *m = json_object();
    if (n == 0)
        return m;
    float *p = malloc(n * sizeof *p);
    double *v1 = malloc(n * sizeof *v1), *v2 = malloc(n * sizeof *v2), *v3 = malloc(n * sizeof *v3),
           *v4 = malloc(n * sizeof *v4);
    if (!p || !v1 || !v2 || !v3 || !v4 || predict_range(b, tb, a, e, p) != 0)
        goto out;
    if (kind == AI_KIND_ETA) {
        for (size_t i = 0; i < n; i++) {
            const float *x = tb->x + (a + i) * (size_t)tb->nf;
            double act = ai_eta_seconds(x, tb->y[a + i]), mod = ai_eta_seconds(x, p[i]),
                   rule = tb->aux[a + i];
            v1[i] = fabs(mod - act);
            v2[i] = fabs(mod - act) / act * 100;
            v3[i] = fabs(rule - act);
            v4[i] = fabs(rule - act) / act * 100;
        }
        json_object_set_new(m, "model_mae_s", ci_json(ci_of(v1, n)));
        json_object_set_new(m, "model_mape_pct", ci_json(ci_of(v2, n)));
        json_object_set_new(m, "rule_mae_s", ci_json(ci_of(v3, n)));
        json_object_set_new(m, "rule_mape_pct", ci_json(ci_of(v4, n)));
    } else if (kind == AI_KIND_ACC) {
        double base = 0;
        for (size_t i = 0; i < n; i++)
            base += tb->y[a + i];
        json_object_set_new(m, "auc", ci_json(auc_ci(p, tb->y + a, n)));
        json_object_set_new(m, "calibration", calibration_json(p, tb->y + a, n));
        json_object_set_new(m, "accept_rate", json_real(base / (double)n));
    } else {
        for (size_t i = 0; i < n; i++) {
            v1[i] = fabs(p[i] - tb->y[a + i]);
            v2[i] = fabs(tb->aux[a + i] - tb->y[a + i]); /* aux: the seasonal-naive forecast */
        }
        json_object_set_new(m, "model_mae_orders", ci_json(ci_of(v1, n)));
        json_object_set_new(m, "seasonal_naive_mae_orders", ci_json(ci_of(v2, n)));
    }
out:
    free(p);
    free(v1);
    free(v2);
    free(v3);
    free(v4);
    return m;
}

static int write_json(const char *path, json_t *j)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        return -1;
    return rename(tmp, path);
}

/* Seasonal naive for the demand rows: the mean of the same cell and time of day over the
 * training rows; the last 15 minutes where the training days never saw that slot. */
static void seasonal_naive(tab_t *tb, size_t ntr)
{
    for (size_t i = ntr; i < tb->n; i++) {
        const float *x = tb->x + i * (size_t)tb->nf;
        double s = 0, c = 0;
        for (size_t k = 0; k < ntr; k++) {
            const float *z = tb->x + k * (size_t)tb->nf;
            if (z[0] == x[0] && z[1] == x[1] && tb->aux[k] == tb->aux[i]) {
                s += tb->y[k];
                c++;
            }
        }
        tb->aux[i] = c > 0 ? s / c : x[4];
    }
}

/* Split by time: with three days or more, whole days — the last validates nothing but is the
 * test, the one before validates (early stopping), the rest train; with fewer, the first 70% of
 * the rows (in time order) train, the next 15% validate and the last 15% test. Rows are sorted
 * by day index × 1e7 + city seconds. */
static void split(const tab_t *tb, int nd, size_t *ntr, size_t *nva)
{
    *ntr = tb->n * 70 / 100;
    *nva = tb->n * 85 / 100;
    if (nd < 3)
        return;
    size_t a = tb->n, b = tb->n;
    for (size_t i = tb->n; i-- > 0;) {
        int day = (int)(tb->t[i] / 1e7);
        if (day >= nd - 2)
            a = i;
        if (day >= nd - 1)
            b = i;
    }
    if (a > 0 && a < b && b < tb->n) {
        *ntr = a;
        *nva = b;
    }
}

/* The seasonal-naive table for held-out days: mean orders per (cell, time of day) over every
 * recorded day, keyed "<ilat>:<ilng>:<seconds of day>". */
static void write_naive(const tab_t *tb, const char *dir)
{
    json_t *sum = json_object(), *cnt = json_object();
    for (size_t i = 0; i < tb->n; i++) {
        const float *x = tb->x + i * (size_t)tb->nf;
        char key[96];
        snprintf(key, sizeof key, "%ld:%ld:%.0f", (long)x[0], (long)x[1], tb->aux[i]);
        json_object_set_new(sum, key,
                            json_real(json_number_value(json_object_get(sum, key)) + tb->y[i]));
        json_object_set_new(cnt, key, json_real(json_number_value(json_object_get(cnt, key)) + 1));
    }
    const char *k;
    json_t *v;
    json_object_foreach(sum, k, v) json_object_set_new(
        sum, k, json_real(json_number_value(v) / json_number_value(json_object_get(cnt, k))));
    char path[4096];
    snprintf(path, sizeof path, "%s/demand.naive.json", dir);
    (void)write_json(path, sum);
    json_decref(sum);
    json_decref(cnt);
}

int ai_train_all(const char *const *paths, int np, const ai_train_opts_t *o, json_t **summary)
{
    char err[512];
    day_t *days = calloc((size_t)np, sizeof *days);
    if (!days)
        return -1;
    int rc = 0, nd = 0;
    for (int i = 0; i < np; i++) {
        if (day_read(paths[i], &days[nd], err, sizeof err) != 0) {
            fprintf(stderr, "antar-train: %s\n", err);
            rc = -1;
            break;
        }
        nd++;
    }
    qsort(days, (size_t)nd, sizeof *days, cmp_day);
    json_t *sum = json_object();
    acc_response_sum = acc_response_n = 0;
    for (int k = 0; rc == 0 && k < 3; k++) {
        ai_model_kind_t kind = (ai_model_kind_t)k;
        tab_t tb = {0};
        cell_t *cells = NULL;
        size_t nc = 0;
        int brc = kind == AI_KIND_ETA   ? build_eta(days, nd, &tb)
                  : kind == AI_KIND_ACC ? build_acc(days, nd, &tb)
                                        : build_dem(days, nd, &tb, &cells, &nc);
        free(cells);
        if (brc != 0) {
            rc = -1;
            tab_free(&tb);
            break;
        }
        if ((long)tb.n < o->min_rows) {
            fprintf(stderr, "antar-train: %s: %zu rows, fewer than --min-rows %ld: not trained\n",
                    kind_name(kind), tb.n, o->min_rows);
            json_object_set_new(sum, kind_name(kind), json_pack("{sI}", "rows", (json_int_t)tb.n));
            tab_free(&tb);
            rc = -1;
            break;
        }
        size_t ntr, nva;
        split(&tb, nd, &ntr, &nva);
        if (kind == AI_KIND_DEM) {
            write_naive(&tb, o->out_dir);
            seasonal_naive(&tb, ntr);
        }
        int best = 0;
        double loss = 0;
        ai_booster_t *b = fit(kind, &tb, ntr, nva, o, &best, &loss);
        if (!b) {
            tab_free(&tb);
            rc = -1;
            break;
        }
        char path[4096], meta[4096];
        snprintf(path, sizeof path, "%s/%s.json", o->out_dir, kind_name(kind));
        snprintf(meta, sizeof meta, "%s/%s.meta.json", o->out_dir, kind_name(kind));
        char tmp[4400];
        snprintf(tmp, sizeof tmp, "%s.tmp.json", path);
        json_t *val = metrics(kind, b, &tb, ntr, nva);
        if (nva > ntr) { /* served: refit on training and validation rows; tested after */
            ai_booster_t *all = refit(kind, &tb, nva, best, o);
            if (!all) {
                ai_booster_free(b);
                json_decref(val);
                tab_free(&tb);
                rc = -1;
                break;
            }
            ai_booster_free(b);
            b = all;
        }
        json_t *test = metrics(kind, b, &tb, nva, tb.n);
        time_t now = time(NULL);
        char ver[32];
        strftime(ver, sizeof ver, "%Y%m%dT%H%M%SZ", gmtime(&now));
        json_t *m =
            json_pack("{ss ss si si sI sI sI si sf so so}", "model", kind_name(kind), "version",
                      ver, "features_version", AI_FEATURES_VERSION, "features", tb.nf, "rows_train",
                      (json_int_t)ntr, "rows_validation", (json_int_t)(nva - ntr), "rows_test",
                      (json_int_t)(tb.n - nva), "rounds", best, "validation_loss",
                      isfinite(loss) ? loss : 0.0, "validation", val, "test", test);
        json_object_set_new(m, "days", json_integer(nd));
        json_object_set_new(m, "objective", json_string(objective(kind)));
        if (kind == AI_KIND_ACC)
            /* What a declined or lapsed offer costs in real ms, the dispatch ranking's price of
             * asking a driver who says no (ai.c). */
            json_object_set_new(
                m, "decline_cost_ms",
                json_real(acc_response_n ? acc_response_sum / acc_response_n : 5000.0));
        /* The model first, its card after: core reloads when the card changes. */
        if (XGBoosterSaveModel(ai_booster_handle(b), tmp) != 0 || rename(tmp, path) != 0 ||
            write_json(meta, m) != 0) {
            fprintf(stderr, "antar-train: cannot write %s: %s\n", path, ai_booster_last_error());
            rc = -1;
        }
        json_object_set(sum, kind_name(kind), m);
        json_decref(m);
        ai_booster_free(b);
        tab_free(&tb);
    }
    for (int i = 0; i < nd; i++)
        day_free(&days[i]);
    free(days);
    if (summary)
        *summary = sum;
    else
        json_decref(sum);
    return rc;
}

/* Held-out days: every row is test. */
int ai_eval_all(const char *const *paths, int np, const char *models_dir, json_t **out)
{
    char err[512];
    day_t *days = calloc((size_t)np, sizeof *days);
    int nd = 0, rc = 0;
    if (!days)
        return -1;
    for (int i = 0; i < np && rc == 0; i++) {
        if (day_read(paths[i], &days[nd], err, sizeof err) != 0) {
            fprintf(stderr, "antar-train: %s\n", err);
            rc = -1;
        } else
            nd++;
    }
    qsort(days, (size_t)nd, sizeof *days, cmp_day);
    json_t *res = json_object();
    acc_response_sum = acc_response_n = 0;
    for (int k = 0; rc == 0 && k < 3; k++) {
        ai_model_kind_t kind = (ai_model_kind_t)k;
        tab_t tb = {0}, hist = {0};
        cell_t *cells = NULL;
        size_t nc = 0;
        int brc = kind == AI_KIND_ETA   ? build_eta(days, nd, &tb)
                  : kind == AI_KIND_ACC ? build_acc(days, nd, &tb)
                                        : build_dem(days, nd, &tb, &cells, &nc);
        free(cells);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", models_dir, kind_name(kind));
        ai_booster_t *b = brc == 0 ? ai_booster_load(path, tb.nf, err, sizeof err) : NULL;
        if (!b) {
            fprintf(stderr, "antar-train: %s: %s\n", kind_name(kind), brc ? "no data" : err);
            rc = -1;
        } else {
            if (kind == AI_KIND_DEM) {
                /* The seasonal-naive baseline needs the training days' history of each slot. */
                tab_t *t = &tb;
                (void)hist;
                json_t *naive = NULL;
                char npath[4200];
                snprintf(npath, sizeof npath, "%s/demand.naive.json", models_dir);
                naive = json_load_file(npath, 0, NULL);
                for (size_t i = 0; i < t->n; i++) {
                    const float *x = t->x + i * (size_t)t->nf;
                    char key[96];
                    snprintf(key, sizeof key, "%ld:%ld:%.0f", (long)x[0], (long)x[1], t->aux[i]);
                    json_t *v = json_object_get(naive, key);
                    t->aux[i] = json_is_number(v) ? json_number_value(v) : x[4];
                }
                json_decref(naive);
            }
            json_object_set_new(res, kind_name(kind), metrics(kind, b, &tb, 0, tb.n));
            ai_booster_free(b);
        }
        tab_free(&tb);
    }
    for (int i = 0; i < nd; i++)
        day_free(&days[i]);
    free(days);
    *out = res;
    return rc;
}

/* ---- inference cost ------------------------------------------------------------------------ */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    ai_booster_t *b;
    const ai_forest_t *f; /* set: the native trees instead of the booster */
    size_t rows, n;
    int nf;
    double *lat; /* n call latencies, seconds */
} bench_job_t;

static void *bench_run(void *arg)
{
    bench_job_t *j = arg;
    float x[8 * 16], y[8];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)(i % 7) * 0.5f;
    for (size_t i = 0; i < j->n; i++) {
        double t0 = mono_s();
        if (j->f)
            ai_forest_predict(j->f, x, j->rows, y);
        else
            (void)ai_booster_predict(j->b, x, j->rows, y);
        j->lat[i] = mono_s() - t0;
    }
    return NULL;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_t *lat_json(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_dbl);
    return json_pack("{sf sf sf}", "p50_us", v[n / 2] * 1e6, "p90_us", v[n * 9 / 10] * 1e6,
                     "p99_us", v[n * 99 / 100] * 1e6);
}

int ai_bench(const char *models_dir, int calls, json_t **out)
{
    static const struct {
        const char *name;
        int nf;
    } ms[] = {{"eta", AI_ETA_NF}, {"accept", AI_ACC_NF}, {"demand", AI_DEM_NF}};
    json_t *res = json_object();
    int rc = 0;
    for (size_t m = 0; m < 3 && rc == 0; m++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/%s.json", models_dir, ms[m].name);
        ai_booster_t *b = ai_booster_load(path, ms[m].nf, err, sizeof err);
        if (!b) {
            fprintf(stderr, "antar-train: %s\n", err);
            rc = -1;
            break;
        }
        json_t *o = json_object();
        ai_forest_t *fo = ai_forest_load(path, ms[m].nf, err, sizeof err);
        if (!fo)
            fprintf(stderr, "antar-train: native trees: %s\n", err);
        double *v = malloc((size_t)calls * 2 * sizeof *v);
        for (size_t rows = 1; v && rows <= 8; rows *= 8) {
            /* One thread alone, then two threads sharing the booster (and its lock). */
            bench_job_t a = {b, NULL, rows, (size_t)calls, ms[m].nf, v};
            bench_run(&a);
            char k[48];
            snprintf(k, sizeof k, "rows%zu_1thread", rows);
            json_object_set_new(o, k, lat_json(v, (size_t)calls));
            /* What core serves: the same trees evaluated natively (ai_tree.c), no lock. */
            if (fo) {
                bench_job_t nt[2] = {{b, fo, rows, (size_t)calls, ms[m].nf, v},
                                     {b, fo, rows, (size_t)calls, ms[m].nf, v + calls}};
                bench_run(&nt[0]);
                snprintf(k, sizeof k, "native_rows%zu_1thread", rows);
                json_object_set_new(o, k, lat_json(v, (size_t)calls));
                pthread_t nth;
                pthread_create(&nth, NULL, bench_run, &nt[1]);
                bench_run(&nt[0]);
                pthread_join(nth, NULL);
                snprintf(k, sizeof k, "native_rows%zu_2threads", rows);
                json_object_set_new(o, k, lat_json(v, (size_t)calls * 2));
            }
            bench_job_t t[2] = {{b, NULL, rows, (size_t)calls, ms[m].nf, v},
                                {b, NULL, rows, (size_t)calls, ms[m].nf, v + calls}};
            pthread_t th;
            pthread_create(&th, NULL, bench_run, &t[1]);
            bench_run(&t[0]);
            pthread_join(th, NULL);
            snprintf(k, sizeof k, "rows%zu_2threads", rows);
            json_object_set_new(o, k, lat_json(v, (size_t)calls * 2));
        }
        free(v);
        json_object_set_new(res, ms[m].name, o);
        ai_forest_free(fo);
        ai_booster_free(b);
    }
    *out = res;
    return rc;
}
