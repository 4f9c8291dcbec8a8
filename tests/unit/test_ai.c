/* Unit tests of core's models (docs/ai.md): antar-train on a small synthetic history
 * (tools/train/train.c, linked), then serving (services/core/ai.c, included directly): loading,
 * hot swap, fallback on a missing or broken model, and the ANTAR_AI=off switch.
 *
 * The history hides what the simulator hides: a rush-hour slowdown the tariff's fixed speed
 * knows nothing of, and drivers who are choosier than others. The models must find both. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../services/core/ai.c"
#include "../../services/core/hint.c"
#include "train.h"

/* ai.c's Redis inputs: the demand counters and driver records live in Redis (dispatch_store.c,
 * covered by the integration tests); these tests serve the ETA and acceptance models only. */
antar_err_t core_store_ai_offer_outcome(long long epoch, long long driver_id, bool accepted)
{
    (void)epoch;
    (void)driver_id;
    (void)accepted;
    return ANTAR_OK;
}
antar_err_t core_store_ai_demand_add(long long epoch, long ilat, long ilng, long long bucket,
                                     long ttl_s)
{
    (void)epoch, (void)ilat, (void)ilng, (void)bucket, (void)ttl_s;
    return ANTAR_OK;
}
antar_err_t core_store_driver_position(const char *vt, long long driver_id, double *lat,
                                       double *lng)
{
    (void)vt;
    if (driver_id != 7)
        return ANTAR_E_NOT_FOUND;
    *lat = -6.2108, *lng = 106.82;
    return ANTAR_OK;
}

/* The city around the hint's driver: two free motorcycles in the cell north of (-6.2108,
 * 106.82), none elsewhere. */
antar_err_t core_store_city(double lat, double lng, double box_km, int max_drivers, int max_orders,
                            json_t **drivers, json_t **orders)
{
    (void)lat, (void)lng, (void)box_km, (void)max_drivers, (void)max_orders;
    *drivers =
        json_pack("[{ss ss sf sf} {ss ss sf sf} {ss ss sf sf}]", "state", "available",
                  "vehicle_type", "motorcycle", "lat", -6.16, "lng", 106.82, "state", "available",
                  "vehicle_type", "motorcycle", "lat", -6.17, "lng", 106.82, "state", "busy",
                  "vehicle_type", "motorcycle", "lat", -6.26, "lng", 106.82);
    *orders = json_array();
    return ANTAR_OK;
}

static long dem_reads;
antar_err_t core_store_ai_demand_counts(long long epoch, long ilat, long ilng, long long bucket,
                                        double *last15, double *last60, double *city15)
{
    (void)epoch, (void)ilat, (void)ilng, (void)bucket;
    dem_reads++;
    *last15 = 2, *last60 = 6, *city15 = 20;
    return ANTAR_OK;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;
static double unit(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double speed_mps(double hour)
{
    return (hour >= 7 && hour < 9 ? 9.0 : 30.0) / 3.6; /* the hidden rush hour */
}

/* One synthetic day of n trips, offers and orders from 06:00, every 20 city seconds. */
static void write_day(const char *path, int n, double t0_wall_ms)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"ev\":\"clock\",\"t0_wall_ms\":%.0f,\"start_hour\":6,\"weekday\":1,\"speed\":60}\n",
            t0_wall_ms);
    for (int i = 0; i < n; i++) {
        double s = 6 * 3600 + i * 20.0, h = s / 3600;
        double fl = -6.3 + unit() * 0.2, fg = 106.7 + unit() * 0.25;
        double pl = -6.3 + unit() * 0.2, pg = 106.7 + unit() * 0.25;
        double dl = -6.3 + unit() * 0.2, dg = 106.7 + unit() * 0.25;
        double leg1 = ai_manhattan_m(fl, fg, pl, pg) / speed_mps(h) * (0.95 + 0.1 * unit());
        double leg2 =
            ai_manhattan_m(pl, pg, dl, dg) / speed_mps(h + leg1 / 3600) * (0.95 + 0.1 * unit());
        fprintf(f,
                "{\"ev\":\"trip\",\"vehicle_type\":\"motorcycle\",\"from\":[%f,%f],\"pickup\":[%f,"
                "%f],\"dropoff\":[%f,%f],\"accept_city_s\":%f,\"pickup_city_s\":%f,"
                "\"pickup_sim_s\":%f,\"trip_sim_s\":%f}\n",
                fl, fg, pl, pg, dl, dg, s, s + leg1, leg1, leg2);
        int driver = i % 40;
        double pick = driver < 20 ? 0.0 : 1.0; /* half the drivers are choosy */
        double logit = 2.0 - 0.6 * ai_manhattan_m(fl, fg, pl, pg) / 1000 - 2.5 * pick;
        bool yes = unit() < 1 / (1 + exp(-logit));
        fprintf(f,
                "{\"ev\":\"offer\",\"driver\":%d,\"driver_at\":[%f,%f],\"pickup\":[%f,%f],"
                "\"dropoff\":[%f,%f],\"price\":25000,\"seen_city_s\":%f,\"car\":false,"
                "\"outcome\":\"%s\",\"response_ms\":2000}\n",
                driver, fl, fg, pl, pg, dl, dg, s, yes ? "accepted" : "rejected");
        double ol = unit() < 0.5 ? -6.21 : -6.15, og = 106.82;
        fprintf(f, "{\"ev\":\"order\",\"pickup\":[%f,%f],\"placed_city_s\":%f}\n", ol, og, s);
    }
    fclose(f);
}

static char dir[64];

static void train_into(const char *out, int n)
{
    char day1[128], day2[128];
    snprintf(day1, sizeof day1, "%s/day1.jsonl", dir);
    snprintf(day2, sizeof day2, "%s/day2.jsonl", dir);
    write_day(day1, n, 1.7e12);
    write_day(day2, n, 1.7e12 + 86400e3);
    const char *paths[] = {day1, day2};
    mkdir(out, 0755);
    ai_train_opts_t o = {.out_dir = out, .rounds = 60, .min_rows = 50, .seed = 1};
    json_t *sum = NULL;
    cr_assert_eq(ai_train_all(paths, 2, &o, &sum), 0, "training on the small history failed");
    json_decref(sum);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/antar-test-ai.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    unsetenv("ANTAR_AI");
    unsetenv("ANTAR_AI_CLOCK_FILE");
}

static void teardown(void)
{
    core_ai_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

static json_t *card(const char *models, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s.meta.json", models, name);
    json_t *j = json_load_file(p, 0, NULL);
    cr_assert_not_null(j, "no model card %s", p);
    return j;
}

static double num_at(json_t *j, const char *a, const char *b, const char *c)
{
    return json_number_value(json_object_get(json_object_get(json_object_get(j, a), b), c));
}

/* Move a file's mtime so that the reload sees a change even within one clock tick. */
static void touch_later(const char *path, int secs)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    ts[1].tv_sec += secs;
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

TestSuite(ai, .init = setup, .fini = teardown, .timeout = 120);

Test(ai, training_beats_the_rules_and_writes_cards)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 900);
    json_t *eta = card(m, "eta"), *acc = card(m, "accept"), *dem = card(m, "demand");
    cr_assert_eq(json_integer_value(json_object_get(eta, "features_version")), AI_FEATURES_VERSION);
    cr_assert(json_integer_value(json_object_get(eta, "rows_train")) > 0);
    cr_assert(json_integer_value(json_object_get(eta, "rows_test")) > 0);
    double model = num_at(eta, "validation", "model_mape_pct", "mean");
    double rule = num_at(eta, "validation", "rule_mape_pct", "mean");
    cr_assert(model > 0 && model < rule * 0.7,
              "the ETA model must find the rush hour: MAPE %.1f%% vs the rule's %.1f%%", model,
              rule);
    double auc = num_at(acc, "test", "auc", "mean");
    cr_assert(auc > 0.65, "acceptance AUC %.3f: the model must see distance and choosiness", auc);
    cr_assert(json_number_value(json_object_get(acc, "decline_cost_ms")) > 0);
    cr_assert(json_is_object(json_object_get(json_object_get(dem, "test"), "model_mae_orders")));
    json_decref(eta);
    json_decref(acc);
    json_decref(dem);
}

/* Core evaluates the trees itself (ai_tree.c); XGBoost is the reference. Every model must
 * predict what XGBoost predicts for the same file, to 1e-5, on rows that reach its splits from
 * both sides and by missing values, and on rows of real features. */
Test(ai, native_trees_predict_what_xgboost_predicts)
{
    char m[128], path[256], err[512];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 900);
    static const struct {
        const char *name;
        int nf;
    } ms[] = {{"eta", AI_ETA_NF}, {"accept", AI_ACC_NF}, {"demand", AI_DEM_NF}};
    enum { ROWS = 5000 };
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s.json", m, ms[k].name);
        ai_forest_t *f = ai_forest_load(path, ms[k].nf, err, sizeof err);
        cr_assert_not_null(f, "%s: %s", ms[k].name, err);
        cr_assert(ai_forest_trees(f) >= 1 && ai_forest_nodes(f) > ai_forest_trees(f));
        float *x = malloc((size_t)ROWS * (size_t)ms[k].nf * sizeof *x);
        cr_assert_not_null(x);
        uint64_t seed = 42 + k;
        ai_forest_sample_rows(f, &seed, ROWS, x);
        /* The second half: rows as core builds them. */
        for (size_t r = ROWS / 2; r < ROWS; r++) {
            float *row = x + r * (size_t)ms[k].nf;
            ai_when_t w = {.hour = unit() * 24, .weekday = (int)(unit() * 7)};
            double a = -6.3 + unit() * 0.2, b = 106.7 + unit() * 0.25;
            double c = -6.3 + unit() * 0.2, d = 106.7 + unit() * 0.25;
            if (k == 0)
                ai_eta_features(row, a, b, c, d, w, unit() < 0.5);
            else if (k == 1)
                ai_acc_features(row, a, b, c, d, c + 0.01, d + 0.02, 10000 + unit() * 40000, w,
                                unit() < 0.5, unit(), floor(unit() * 50));
            else {
                long ilat, ilng;
                ai_dem_cell(a, b, &ilat, &ilng);
                ai_dem_features(row, ilat, ilng, w, floor(unit() * 10), floor(unit() * 40),
                                floor(unit() * 100));
            }
        }
        double worst = 1;
        cr_assert_eq(ai_forest_check(f, path, x, ROWS, 1e-5, &worst, err, sizeof err), 0, "%s: %s",
                     ms[k].name, err);
        cr_assert(worst <= 1e-5, "%s: worst difference %g", ms[k].name, worst);
        /* And the check can fail: a forest off by one leaf is caught. */
        snprintf(path, sizeof path, "%s/%s.json", m, ms[(k + 1) % 3].name);
        if (ms[(k + 1) % 3].nf == ms[k].nf)
            cr_assert_neq(ai_forest_check(f, path, x, ROWS, 1e-5, &worst, err, sizeof err), 0);
        free(x);
        ai_forest_free(f);
    }
}

/* What the native evaluator does not support is refused with a reason, never guessed at. */
Test(ai, native_trees_refuse_what_they_cannot_evaluate)
{
    char m[128], path[256], err[512];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    snprintf(path, sizeof path, "%s/eta.json", m);
    cr_assert_null(ai_forest_load(path, AI_ETA_NF + 1, err, sizeof err));
    cr_assert_not_null(strstr(err, "features"), "%s", err);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert_not_null(j);
    json_t *learner = json_object_get(j, "learner");
    json_object_set_new(json_object_get(learner, "objective"), "name", json_string("reg:gamma"));
    char bad[256];
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    cr_assert_eq(json_dump_file(j, bad, 0), 0);
    cr_assert_null(ai_forest_load(bad, AI_ETA_NF, err, sizeof err));
    cr_assert_not_null(strstr(err, "reg:gamma"), "%s", err);
    /* A child index out of the tree. */
    json_object_set_new(json_object_get(learner, "objective"), "name",
                        json_string("reg:squarederror"));
    json_t *t0 = json_array_get(
        json_object_get(json_object_get(json_object_get(learner, "gradient_booster"), "model"),
                        "trees"),
        0);
    json_array_set_new(json_object_get(t0, "left_children"), 0, json_integer(100000));
    cr_assert_eq(json_dump_file(j, bad, 0), 0);
    cr_assert_null(ai_forest_load(bad, AI_ETA_NF, err, sizeof err));
    cr_assert_not_null(strstr(err, "out of range"), "%s", err);
    json_decref(j);
}

/* Requests predict while the watcher swaps models under them: no request may see a freed
 * forest (ASan would say so) and every answer comes from one model or the other. */
typedef struct {
    atomic_bool *stop;
    long ok;
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    while (!atomic_load(h->stop)) {
        double s = 0;
        if (core_ai_eta(-6.20, 106.80, -6.22, 106.83, false, 600000, &s) && s > 0)
            h->ok++;
    }
    return NULL;
}

Test(ai, hot_swap_under_concurrent_requests)
{
    char m[128], m1[128], m2[128], cmd[1024], p[256];
    snprintf(m, sizeof m, "%s/serve", dir);
    snprintf(m1, sizeof m1, "%s/m1", dir);
    snprintf(m2, sizeof m2, "%s/m2", dir);
    train_into(m1, 600);
    train_into(m2, 700);
    snprintf(cmd, sizeof cmd, "cp -r %s %s", m1, m);
    cr_assert_eq(system(cmd), 0);
    setenv("ANTAR_AI_DIR", m, 1);
    core_ai_init();
    atomic_bool stop = false;
    hammer_t hs[3] = {{&stop, 0}, {&stop, 0}, {&stop, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &hs[i]), 0);
    for (int k = 0; k < 6; k++) {
        snprintf(cmd, sizeof cmd, "cp %s/eta.json %s/eta.json && cp %s/eta.meta.json %s/",
                 k % 2 ? m1 : m2, m, k % 2 ? m1 : m2, m);
        cr_assert_eq(system(cmd), 0);
        snprintf(p, sizeof p, "%s/eta.meta.json", m);
        touch_later(p, 10 + k);
        core_ai_reload();
        cr_assert(core_ai_ready(CORE_AI_ETA));
    }
    atomic_store(&stop, true);
    long total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        total += hs[i].ok;
    }
    cr_assert(total > 0, "the requests must have been answered by a model");
}

/* The demand forecast's Redis inputs are never read on the request: the refresher reads each
 * cell asked about, requests find them in the cache (the stub above counts the reads). */
Test(ai, demand_inputs_come_from_the_refreshed_cache)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI_DIR", m, 1);
    core_ai_init();
    watcher_stop(); /* this test runs the refresher itself */
    long long now = antar_now_ms();
    long before = dem_reads;
    double a = -1, b = -1;
    cr_assert_not(core_ai_demand(-6.21, 106.82, now, &a),
                  "a cell never read: the rule serves this request");
    cr_assert_eq(dem_reads, before, "no Redis read on the request");
    dem_refresh();
    cr_assert_eq(dem_reads, before + 1, "the refresher reads each asked cell once");
    now = antar_now_ms();
    cr_assert(core_ai_demand(-6.21, 106.82, now, &a));
    for (int i = 0; i < 50; i++)
        cr_assert(core_ai_demand(-6.21, 106.82, now + i, &b));
    cr_assert_eq(dem_reads, before + 1, "asks are served from the cache");
    cr_assert_float_eq(a, b, 1e-9);
    /* Stale (the refresher has not run for longer than DEM_FRESH_MS): the rule again, no read. */
    cr_assert_not(core_ai_demand(-6.21, 106.82, now + DEM_FRESH_MS + 1000, &b));
    cr_assert_eq(dem_reads, before + 1);
    char *txt = render_metrics();
    cr_assert_not_null(strstr(txt, "antar_ai_demand_inputs_total{source=\"cache\"} 51"), "%s", txt);
    cr_assert_not_null(strstr(txt, "antar_ai_demand_inputs_total{source=\"missing\"} 2"), "%s",
                       txt);
    cr_assert_not_null(
        strstr(txt, "antar_ai_predictions_total{model=\"demand\",source=\"rule\"} 2"), "%s", txt);
    free(txt);
}

Test(ai, too_little_history_is_refused)
{
    char day[128], m[128];
    snprintf(day, sizeof day, "%s/tiny.jsonl", dir);
    snprintf(m, sizeof m, "%s/tiny", dir);
    mkdir(m, 0755);
    write_day(day, 10, 1.7e12);
    const char *paths[] = {day};
    ai_train_opts_t o = {.out_dir = m, .rounds = 10, .min_rows = 50, .seed = 1};
    cr_assert_eq(ai_train_all(paths, 1, &o, NULL), -1, "10 trips must not make a model");
    char p[256];
    snprintf(p, sizeof p, "%s/eta.json", m);
    cr_assert_neq(access(p, F_OK), 0, "no model file may be left behind");
}

Test(ai, a_day_without_its_clock_is_refused)
{
    char day[128], m[128];
    snprintf(day, sizeof day, "%s/old.jsonl", dir);
    snprintf(m, sizeof m, "%s/old", dir);
    mkdir(m, 0755);
    FILE *f = fopen(day, "w");
    fprintf(f, "{\"ev\":\"order\",\"pickup\":[-6.2,106.8],\"placed_city_s\":1}\n");
    fclose(f);
    const char *paths[] = {day};
    ai_train_opts_t o = {.out_dir = m, .rounds = 10, .min_rows = 1, .seed = 1};
    cr_assert_eq(ai_train_all(paths, 1, &o, NULL), -1);
}

Test(ai, loads_serves_and_hot_swaps)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI_DIR", m, 1);
    core_ai_init();
    cr_assert(core_ai_ready(CORE_AI_ETA) && core_ai_ready(CORE_AI_ACC) &&
              core_ai_ready(CORE_AI_DEM));
    /* 5 km at 08:00 on the clock (rush: ~9 km/h) against 5 km at 12:00 (~30 km/h). */
    char clk[128];
    snprintf(clk, sizeof clk, "%s/clock.json", dir);
    FILE *f = fopen(clk, "w");
    fprintf(f, "{\"t0_wall_ms\":0,\"start_hour\":8,\"weekday\":1,\"speed\":1}\n");
    fclose(f);
    setenv("ANTAR_AI_CLOCK_FILE", clk, 1);
    core_ai_shutdown();
    core_ai_init();
    double rush = 0, noon = 0;
    cr_assert(core_ai_eta(-6.20, 106.80, -6.20, 106.8452, false, 600000, &rush));
    cr_assert(core_ai_eta(-6.20, 106.80, -6.20, 106.8452, false, 4 * 3600000LL, &noon));
    cr_assert(rush > noon * 1.8, "rush %.0f s should be far slower than noon %.0f s", rush, noon);
    double fc = -1;
    /* The first ask registers the cell (the rule serves it), the refresher reads it. */
    (void)core_ai_demand(-6.21, 106.82, antar_now_ms(), &fc);
    dem_refresh();
    cr_assert(core_ai_demand(-6.21, 106.82, antar_now_ms(), &fc) && fc >= 0);

    /* Hot swap: a retrained model under the same names is picked up without a restart. */
    char *before = render_metrics();
    cr_assert_not_null(strstr(before, "antar_ai_model_loaded{model=\"eta\""));
    char m2[128], cmd[1024];
    snprintf(m2, sizeof m2, "%s/m2", dir);
    sleep(1); /* a new version string (seconds) */
    train_into(m2, 700);
    json_t *c2 = card(m2, "eta");
    const char *v2 = json_string_value(json_object_get(c2, "version"));
    snprintf(cmd, sizeof cmd, "cp %s/eta.json %s/eta.json && cp %s/eta.meta.json %s/", m2, m, m2,
             m);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/eta.meta.json", m);
    touch_later(cmd, 5);
    core_ai_reload();
    char *after = render_metrics();
    char want[160];
    snprintf(want, sizeof want, "antar_ai_model_loaded{model=\"eta\",version=\"%s\"} 1", v2);
    cr_assert_not_null(strstr(after, want), "after the swap /metrics should show %s:\n%s", want,
                       after);
    cr_assert(core_ai_eta(-6.20, 106.80, -6.20, 106.8452, false, 600000, &rush));
    json_decref(c2);
    free(before);
    free(after);
}

Test(ai, broken_or_missing_models_fall_back_to_the_rules)
{
    char m[128], p[256];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI_DIR", m, 1);
    core_ai_init();
    cr_assert(core_ai_ready(CORE_AI_ETA));

    /* A truncated model file: refused, the rule serves, /metrics says so. */
    snprintf(p, sizeof p, "%s/eta.json", m);
    FILE *f = fopen(p, "w");
    fputs("{\"learner\": {\"gradient_booster\": ", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/eta.meta.json", m);
    touch_later(p, 5);
    core_ai_reload();
    double s = 0;
    cr_assert_not(core_ai_ready(CORE_AI_ETA));
    cr_assert_not(core_ai_eta(-6.2, 106.8, -6.25, 106.85, false, 0, &s));
    char *txt = render_metrics();
    cr_assert_not_null(strstr(txt, "antar_ai_model_loaded{model=\"eta\",version=\"\"} 0"), "%s",
                       txt);
    cr_assert_not_null(strstr(txt, "antar_ai_predictions_total{model=\"eta\",source=\"rule\"} 1"),
                       "%s", txt);
    free(txt);

    /* A missing model: the acceptance model's files removed. Ranking needs both models. */
    snprintf(p, sizeof p, "%s/accept.meta.json", m);
    cr_assert_eq(unlink(p), 0);
    core_ai_reload();
    cr_assert_not(core_ai_ready(CORE_AI_ACC));
    core_candidate_t c = {.driver_id = 1, .lat = -6.2, .lng = 106.8};
    double sc, eta, pa;
    cr_assert_not(core_ai_rank(&c, 1, -6.21, 106.81, -6.3, 106.9, 20000, false, 0, &sc, &eta, &pa));

    /* A card of another feature version is refused even with a sound model. */
    json_t *d = card(m, "demand");
    json_object_set_new(d, "features_version", json_integer(AI_FEATURES_VERSION + 1));
    snprintf(p, sizeof p, "%s/demand.meta.json", m);
    cr_assert_eq(json_dump_file(d, p, 0), 0);
    json_decref(d);
    touch_later(p, 5);
    core_ai_reload();
    cr_assert_not(core_ai_ready(CORE_AI_DEM));
}

Test(ai, ranking_prefers_a_driver_who_says_yes)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 900);
    setenv("ANTAR_AI_DIR", m, 1);
    /* A city clock 60 times the wall's, as the simulator's: a 2 s decline costs 2 city minutes. */
    char clk[128];
    snprintf(clk, sizeof clk, "%s/clock.json", dir);
    FILE *f = fopen(clk, "w");
    fprintf(f, "{\"t0_wall_ms\":0,\"start_hour\":11,\"weekday\":1,\"speed\":60}\n");
    fclose(f);
    setenv("ANTAR_AI_CLOCK_FILE", clk, 1);
    core_ai_init();
    /* Two drivers 1.2 km and 1.6 km from the pickup: the nearer one has declined 29 of 30
     * offers, the other accepted 29 of 30. */
    core_candidate_t c[2] = {
        {.driver_id = 1, .lat = -6.2108, .lng = 106.82, .offers = 30, .accepts = 1},
        {.driver_id = 2, .lat = -6.2144, .lng = 106.82, .offers = 30, .accepts = 29},
    };
    double sc[2], eta[2], p[2];
    cr_assert(
        core_ai_rank(c, 2, -6.2, 106.82, -6.25, 106.86, 25000, false, 11 * 3600000LL, sc, eta, p));
    cr_assert(eta[0] < eta[1], "the nearer driver is nearer: %.0f vs %.0f s", eta[0], eta[1]);
    cr_assert(p[0] < p[1], "the choosy driver is less likely to accept: %.2f vs %.2f", p[0], p[1]);
    cr_assert(sc[1] < sc[0], "expected time to a confirmed pickup: %.0f vs %.0f s", sc[1], sc[0]);
}

Test(ai, switch_off_serves_the_rules_with_models_present)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI_DIR", m, 1);
    setenv("ANTAR_AI", "off", 1);
    core_ai_init();
    double s = 0, fc = 0;
    cr_assert_not(core_ai_ready(CORE_AI_ETA) || core_ai_ready(CORE_AI_ACC) ||
                  core_ai_ready(CORE_AI_DEM));
    cr_assert_not(core_ai_eta(-6.2, 106.8, -6.25, 106.85, false, 0, &s));
    cr_assert_not(core_ai_demand(-6.2, 106.8, 0, &fc));
    char *txt = render_metrics();
    cr_assert_not_null(strstr(txt, "antar_ai_enabled 0"), "%s", txt);
    free(txt);
}

Test(ai, a_list_of_models_serves_those_only)
{
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI_DIR", m, 1);
    setenv("ANTAR_AI", "eta,accept", 1);
    core_ai_init();
    cr_assert(core_ai_ready(CORE_AI_ETA) && core_ai_ready(CORE_AI_ACC));
    cr_assert_not(core_ai_ready(CORE_AI_DEM), "demand is not in the list: its rule serves");
    core_ai_shutdown();
    setenv("ANTAR_AI", "demand", 1);
    core_ai_init();
    cr_assert(core_ai_ready(CORE_AI_DEM));
    cr_assert_not(core_ai_ready(CORE_AI_ETA) || core_ai_ready(CORE_AI_ACC));
}

/* A switch that means nothing stops core's start rather than serving a guess. */
Test(ai, a_malformed_switch_is_refused)
{
    const char *bad[] = {"201",         "of",      "eta accept", "eta,", ",eta",
                         "eta,,accept", "eta,eta", "ETA",        "etax", "eta;accept"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("ANTAR_AI", bad[i], 1);
        cr_assert_eq(core_ai_init(), -1, "ANTAR_AI=\"%s\" must be refused", bad[i]);
    }
    const char *good[] = {
        "on", "off", "1", "0", "true", "false", "eta", "accept,demand", "demand,eta,accept"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("ANTAR_AI", good[i], 1);
        cr_assert_eq(core_ai_init(), 0, "ANTAR_AI=\"%s\"", good[i]);
        core_ai_shutdown();
    }
}

/* An offer carries where its driver is and the predicted way to the pickup: the model's when
 * it serves, the rule's when it is off; nothing when the driver is not in the index. */
Test(ai, offers_carry_the_pickup_eta)
{
    json_t *pl = json_pack("{ss sf sf}", "vehicle_type", "motorcycle", "pickup_lat", -6.2,
                           "pickup_lng", 106.82);
    setenv("ANTAR_AI", "off", 1);
    core_ai_init();
    json_t *b = json_object();
    core_ai_offer_fields(b, pl, 7, 0);
    long long rule = json_integer_value(json_object_get(b, "pickup_eta_s"));
    cr_assert(rule > 0, "the rule's pickup ETA");
    cr_assert_float_eq(json_number_value(json_object_get(b, "driver_lat")), -6.2108, 1e-9);
    json_t *none = json_object();
    core_ai_offer_fields(none, pl, 8, 0);
    cr_assert_eq(json_object_size(none), 0, "an unknown position adds nothing");
    core_ai_shutdown();
    char m[128];
    snprintf(m, sizeof m, "%s/m", dir);
    train_into(m, 600);
    setenv("ANTAR_AI", "on", 1);
    setenv("ANTAR_AI_DIR", m, 1);
    core_ai_init();
    json_t *b2 = json_object();
    core_ai_offer_fields(b2, pl, 7, 8 * 3600000LL);
    double want = 0;
    cr_assert(core_ai_eta(-6.2108, 106.82, -6.2, 106.82, false, 8 * 3600000LL, &want));
    cr_assert_eq(json_integer_value(json_object_get(b2, "pickup_eta_s")), (long long)ceil(want));
    json_decref(pl);
    json_decref(b);
    json_decref(none);
    json_decref(b2);
}

/* Where to wait: the most orders per free driver; a nearer cell within 10% of it wins. */
Test(ai, waiting_hint_picks_orders_per_free_driver_then_the_nearest)
{
    core_hint_cell_t c[3] = {
        {.distance_m = 0, .per_driver = 1.0},
        {.distance_m = 5000, .per_driver = 3.0},
        {.distance_m = 9000, .per_driver = 3.2},
    };
    cr_assert_eq(core_hint_pick(c, 3), 1, "3.0 is within 10% of 3.2 and 4 km nearer");
    c[1].per_driver = 2.0;
    cr_assert_eq(core_hint_pick(c, 3), 2);
    c[0].per_driver = 3.2;
    cr_assert_eq(core_hint_pick(c, 3), 0, "staying wins a tie");
    cr_assert_eq(core_hint_pick(c, 0), -1);
}

/* The route's answer: with the switch off it says so; with it on (no demand model) the counter
 * rule answers for the driver's cell and its neighbours, the free drivers counted per cell. */
Test(ai, waiting_hint_answers_by_rule_or_says_it_is_off)
{
    antar_outcome_t why = {0};
    json_t *h = NULL;
    setenv("ANTAR_AI", "off", 1);
    core_ai_init();
    cr_assert_eq(core_hint_waiting(7, &h, &why), ANTAR_OK);
    cr_assert_str_eq(json_string_value(json_object_get(h, "source")), "off");
    cr_assert(json_is_null(json_object_get(h, "cell")));
    json_decref(h);
    core_ai_shutdown();
    setenv("ANTAR_AI", "on", 1);
    setenv("ANTAR_AI_DIR", "/nonexistent", 1);
    core_ai_init();
    cr_assert_eq(core_hint_waiting(8, &h, &why), ANTAR_E_CONFLICT, "not in the index");
    cr_assert_str_eq(why.field, "driver_id");
    cr_assert_eq(core_hint_waiting(7, &h, &why), ANTAR_OK);
    cr_assert_str_eq(json_string_value(json_object_get(h, "source")), "rule");
    /* Every cell has the stub's 2 orders over the last 15 minutes: the driver's own cell
     * (alone) beats the north one (two free drivers, plus this one going there). */
    json_t *here = json_object_get(h, "here"), *cell = json_object_get(h, "cell");
    cr_assert_float_eq(json_number_value(json_object_get(here, "expected_orders")), 2, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(here, "free_drivers")), 1);
    cr_assert_float_eq(json_number_value(json_object_get(cell, "distance_m")), 0, 1e-9);
    json_decref(h);
}

Test(ai, auc_of_known_orders)
{
    float p[] = {0.1f, 0.4f, 0.35f, 0.8f}, y[] = {0, 0, 1, 1};
    cr_assert_float_eq(ai_train_auc(p, y, 4), 0.75, 1e-9);
    float q[] = {0.9f, 0.8f}, z[] = {1, 1};
    cr_assert(isnan(ai_train_auc(q, z, 2)), "one class only: AUC undefined");
}
