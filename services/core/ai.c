/* ai.c — see ai.h. The models are XGBoost's trees (trained by antar-train) evaluated natively
 * (ai_tree.c), fed by ai_features.c, the code antar-train trains with.
 *
 * Hot swap: each model is <ANTAR_AI_DIR>/<name>.json with its card <name>.meta.json beside it
 * (antar-train writes the model first, the card last). A watcher thread looks at the cards'
 * mtimes every 2 s; a changed card loads the new forest off the request path, checks that it
 * predicts what XGBoost predicts for the same file, and publishes it with one atomic pointer
 * store. Readers take no lock: they announce themselves in a counter of the current phase
 * (two phases, as in userspace RCU), read the pointer, predict, and leave; the watcher frees the
 * old forest only after both phases have drained, so requests in flight finish on it. A card or
 * model that is missing, unreadable, of another feature version or unable to predict leaves
 * that model off: the rule serves, the log says why, and /metrics shows antar_ai_model_loaded 0.
 *
 * The demand forecast's inputs (counters in Redis) are read by the watcher for every cell asked
 * about recently, every second, and kept here: an estimate never waits for Redis (a cell not yet
 * read, or gone stale because Redis is away, gets the rule for that request). */
#include "ai.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ai_model.h"
#include "ai_tree.h"
#include "fare_model.h"
#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/util.h"

#define RELOAD_EVERY_MS 2000
/* The watcher's tick: the demand inputs' refresh (DEM_REFRESH_MS below). */
#define WATCH_TICK_MS 1000
#define LAT_RING 4096
/* The acceptance model's probabilities are clamped so that one "sure no" cannot cost infinity
 * and one "sure yes" cannot hide a long drive. */
#define P_MIN 0.03
#define P_MAX 0.99

/* What a slot serves: immutable once published. */
typedef struct {
    ai_forest_t *f;
    char version[40];
    double decline_cost_ms; /* accept's card */
} served_t;

typedef struct {
    const char *name;
    int nf;
    _Atomic(served_t *) cur;
    struct timespec card_mtime;
    bool seen_card;
    bool off; /* not among the models ANTAR_AI names */
    atomic_llong used, fallback;
} slot_t;

static slot_t slots[CORE_AI__COUNT] = {
    [CORE_AI_ETA] = {.name = "eta", .nf = AI_ETA_NF},
    [CORE_AI_ACC] = {.name = "accept", .nf = AI_ACC_NF},
    [CORE_AI_DEM] = {.name = "demand", .nf = AI_DEM_NF},
};

/* Readers in flight per phase. A reader may read the phase, be preempted while a swap flips
 * it, and only then count itself in the old phase: so a swap waits for one phase, flips, and
 * waits for the other too before it frees anything. */
static atomic_uint rd_phase;
static atomic_uint rd_count[2];

static unsigned reader_enter(void)
{
    unsigned p = atomic_load(&rd_phase) & 1u;
    atomic_fetch_add(&rd_count[p], 1);
    return p;
}

static void reader_exit(unsigned p)
{
    atomic_fetch_sub(&rd_count[p], 1);
}

/* Called by the one writer (under G.reload_mu, or at shutdown) after publishing: returns when
 * no reader can still hold what was published before. Readers stay for microseconds. */
static void wait_for_readers(void)
{
    for (int k = 0; k < 2; k++) {
        unsigned old = atomic_fetch_xor(&rd_phase, 1u) & 1u;
        while (atomic_load(&rd_count[old]) != 0) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static struct {
    bool enabled;
    char dir[1024];
    char clock_path[1024];
    pthread_mutex_t reload_mu;
    pthread_rwlock_t clock_lk;
    bool clock_set;
    double t0_wall_ms, start_hour, speed;
    int weekday;
    struct timespec clock_mtime;
} G = {.reload_mu = PTHREAD_MUTEX_INITIALIZER, .clock_lk = PTHREAD_RWLOCK_INITIALIZER};

typedef struct {
    const char *path;
    pthread_mutex_t mu;
    double v[LAT_RING];
    size_t n, next;
} lat_ring_t;

/* "dispatch_redis": the dispatch's read of its candidates and their records (one script), which
 * replaces the rule's nearest-driver search rather than adding to it; kept apart so that
 * "dispatch" is the models' own time. */
static lat_ring_t rings[] = {{.path = "estimate", .mu = PTHREAD_MUTEX_INITIALIZER},
                             {.path = "dispatch", .mu = PTHREAD_MUTEX_INITIALIZER},
                             {.path = "dispatch_redis", .mu = PTHREAD_MUTEX_INITIALIZER}};

/* The forecast's inputs per cell: read by the watcher every DEM_REFRESH_MS for each cell asked
 * about in the last DEM_KEEP_MS, so an estimate finds them here and never reads Redis itself. A
 * cell asked about for the first time, or whose counts are older than DEM_FRESH_MS (the
 * refresher could not reach Redis), gets the rule's surge for that request while the refresher
 * fetches it. The counters move in 5 city-minute buckets (5 s of a simulated city at 60×), so a
 * second's staleness is a fifth of a bucket at most. */
#define DEM_CACHE 256
#define DEM_REFRESH_MS 1000
#define DEM_FRESH_MS 3000
#define DEM_KEEP_MS 600000

typedef struct {
    bool used;
    long ilat, ilng;
    long long epoch, read_ms, asked_ms;
    double l15, l60, c15;
} dem_entry_t;

static struct {
    pthread_mutex_t mu;
    dem_entry_t e[DEM_CACHE];
    atomic_llong hits, misses, refresh_errors;
} D = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- loading ------------------------------------------------------------------------------- */

static bool mtime_of(const char *path, struct timespec *ts)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *ts = st.st_mtim;
    return true;
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void slot_set(slot_t *s, ai_forest_t *f, const char *version, double decline_cost_ms)
{
    served_t *v = NULL;
    if (f && !(v = calloc(1, sizeof *v))) {
        ai_forest_free(f);
        f = NULL;
    }
    if (v) {
        v->f = f;
        snprintf(v->version, sizeof v->version, "%s", version ? version : "");
        v->decline_cost_ms = decline_cost_ms;
    }
    served_t *old = atomic_exchange(&s->cur, v);
    if (old) {
        wait_for_readers();
        ai_forest_free(old->f);
        free(old);
    }
}

/* The forest of path, accepted only if it predicts what XGBoost predicts for the same file on
 * rows that reach its splits from both sides (and missing values). */
#define CHECK_ROWS 256
static ai_forest_t *forest_load_checked(const char *path, int nf, char *why, size_t whylen)
{
    ai_forest_t *f = ai_forest_load(path, nf, why, whylen);
    if (!f)
        return NULL;
    float *x = malloc((size_t)CHECK_ROWS * (size_t)nf * sizeof *x);
    uint64_t seed = 0x5DEECE66DULL;
    double worst = 0;
    int rc = -1;
    if (x) {
        ai_forest_sample_rows(f, &seed, CHECK_ROWS, x);
        memset(x, 0, (size_t)nf * sizeof *x); /* and a row of zeros */
        rc = ai_forest_check(f, path, x, CHECK_ROWS, 1e-5, &worst, why, whylen);
    } else
        snprintf(why, whylen, "out of memory");
    free(x);
    if (rc != 0) {
        ai_forest_free(f);
        return NULL;
    }
    return f;
}

static void slot_load(slot_t *s)
{
    if (s->off) {
        if (!s->seen_card) {
            s->seen_card = true; /* log once */
            antar_log_json("info", "ai_model_fallback",
                           json_pack("{ss ss ss}", "model", s->name, "reason",
                                     "not among the models ANTAR_AI names", "serving", "rule"));
        }
        return;
    }
    char card[1200], model[1200], why[1400] = "";
    snprintf(card, sizeof card, "%s/%s.meta.json", G.dir, s->name);
    snprintf(model, sizeof model, "%s/%s.json", G.dir, s->name);
    struct timespec mt = {0};
    bool have = mtime_of(card, &mt);
    if (have == s->seen_card && (!have || same_time(mt, s->card_mtime)))
        return; /* unchanged */
    s->seen_card = have;
    s->card_mtime = mt;
    ai_forest_t *b = NULL;
    json_t *meta = NULL;
    if (!have)
        snprintf(why, sizeof why, "no model card %s", card);
    else if (!(meta = json_load_file(card, 0, NULL)))
        snprintf(why, sizeof why, "model card %s is not JSON", card);
    else if (json_integer_value(json_object_get(meta, "features_version")) != AI_FEATURES_VERSION)
        snprintf(why, sizeof why, "model card %s has features_version %lld, core serves %d", card,
                 (long long)json_integer_value(json_object_get(meta, "features_version")),
                 AI_FEATURES_VERSION);
    else
        b = forest_load_checked(model, s->nf, why, sizeof why);
    const char *ver = json_string_value(json_object_get(meta, "version"));
    double cost = json_number_value(json_object_get(meta, "decline_cost_ms"));
    slot_set(s, b, b ? ver : "", cost > 0 ? cost : 5000.0);
    if (b)
        antar_log_json("info", "ai_model_loaded",
                       json_pack("{ss ss}", "model", s->name, "version", ver ? ver : ""));
    else
        antar_log_json("warn", "ai_model_fallback",
                       json_pack("{ss ss ss}", "model", s->name, "reason", why, "serving", "rule"));
    json_decref(meta);
}

static void clock_load(void)
{
    if (!G.clock_path[0])
        return;
    struct timespec mt = {0};
    if (!mtime_of(G.clock_path, &mt) || same_time(mt, G.clock_mtime))
        return;
    G.clock_mtime = mt;
    json_t *j = json_load_file(G.clock_path, 0, NULL);
    double speed = json_number_value(json_object_get(j, "speed"));
    if (j && speed > 0 && speed <= 10000) {
        pthread_rwlock_wrlock(&G.clock_lk);
        G.clock_set = true;
        G.t0_wall_ms = json_number_value(json_object_get(j, "t0_wall_ms"));
        G.start_hour = json_number_value(json_object_get(j, "start_hour"));
        G.weekday = (int)json_integer_value(json_object_get(j, "weekday"));
        G.speed = speed;
        pthread_rwlock_unlock(&G.clock_lk);
        antar_log_json("info", "ai_clock",
                       json_pack("{sf sf}", "start_hour", G.start_hour, "speed", speed));
    } else
        antar_log_json("warn", "ai_clock_unusable", json_pack("{ss}", "file", G.clock_path));
    json_decref(j);
}

void core_ai_reload(void)
{
    if (!G.enabled)
        return;
    pthread_mutex_lock(&G.reload_mu);
    for (int i = 0; i < CORE_AI__COUNT; i++)
        slot_load(&slots[i]);
    clock_load();
    pthread_mutex_unlock(&G.reload_mu);
}

/* The watcher: looks at the files every RELOAD_EVERY_MS, whether requests come or not, so a
 * model put in place while core is idle is serving before the first request after it, and a
 * load (tens of ms) never lands on a request; every tick it also refreshes the demand
 * forecast's inputs (dem_refresh). */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stop;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void dem_refresh(void);

static void *watcher_main(void *arg)
{
    (void)arg;
    unsigned tick = 0;
    pthread_mutex_lock(&W.mu);
    while (!W.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += WATCH_TICK_MS / 1000;
        while (!W.stop && pthread_cond_timedwait(&W.cv, &W.mu, &ts) == 0)
            ;
        if (W.stop)
            break;
        pthread_mutex_unlock(&W.mu);
        if (++tick % (RELOAD_EVERY_MS / WATCH_TICK_MS) == 0)
            core_ai_reload();
        if (core_ai_ready(CORE_AI_DEM))
            dem_refresh();
        pthread_mutex_lock(&W.mu);
    }
    pthread_mutex_unlock(&W.mu);
    antar_kv_thread_end();
    return NULL;
}

static void watcher_start(void)
{
    antar_cond_init_monotonic(&W.cv);
    W.stop = false;
    if (pthread_create(&W.thread, NULL, watcher_main, NULL) != 0) {
        antar_logf("error", "ai: cannot start the model watcher: models load at start only");
        pthread_cond_destroy(&W.cv);
        return;
    }
    W.running = true;
}

static void watcher_stop(void)
{
    if (!W.running)
        return;
    pthread_mutex_lock(&W.mu);
    W.stop = true;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(W.thread, NULL);
    pthread_cond_destroy(&W.cv);
    W.running = false;
}

/* ---- metrics ------------------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char *render_metrics(void)
{
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int k_ = snprintf(out + len, cap - len, __VA_ARGS__);                                      \
        if (k_ > 0 && (size_t)k_ < cap - len)                                                      \
            len += (size_t)k_;                                                                     \
    } while (0)
    EMIT("# HELP antar_ai_enabled 1 unless ANTAR_AI=off.\n# TYPE antar_ai_enabled gauge\n"
         "antar_ai_enabled %d\n",
         G.enabled ? 1 : 0);
    EMIT("# HELP antar_ai_model_loaded 1 when the model serves, 0 when its rule does.\n"
         "# TYPE antar_ai_model_loaded gauge\n");
    for (int i = 0; i < CORE_AI__COUNT; i++) {
        unsigned p = reader_enter();
        served_t *v = atomic_load(&slots[i].cur);
        EMIT("antar_ai_model_loaded{model=\"%s\",version=\"%s\"} %d\n", slots[i].name,
             v ? v->version : "", v ? 1 : 0);
        reader_exit(p);
    }
    EMIT("# HELP antar_ai_predictions_total Answers by source: the model, or the rule.\n"
         "# TYPE antar_ai_predictions_total counter\n");
    for (int i = 0; i < CORE_AI__COUNT; i++)
        EMIT("antar_ai_predictions_total{model=\"%s\",source=\"model\"} %lld\n"
             "antar_ai_predictions_total{model=\"%s\",source=\"rule\"} %lld\n",
             slots[i].name, (long long)atomic_load(&slots[i].used), slots[i].name,
             (long long)atomic_load(&slots[i].fallback));
    EMIT("# HELP antar_ai_demand_inputs_total Demand forecasts asked: their inputs fresh in the "
         "refreshed cache, or missing (not read yet, or stale) and the rule served.\n"
         "# TYPE antar_ai_demand_inputs_total counter\n"
         "antar_ai_demand_inputs_total{source=\"cache\"} %lld\n"
         "antar_ai_demand_inputs_total{source=\"missing\"} %lld\n"
         "# HELP antar_ai_demand_refresh_errors_total Refreshes of the demand inputs Redis "
         "refused.\n# TYPE antar_ai_demand_refresh_errors_total counter\n"
         "antar_ai_demand_refresh_errors_total %lld\n",
         (long long)atomic_load(&D.hits), (long long)atomic_load(&D.misses),
         (long long)atomic_load(&D.refresh_errors));
    EMIT("# HELP antar_ai_added_latency_seconds Time a request spent in the models (Redis reads "
         "included), over its last %d requests.\n# TYPE antar_ai_added_latency_seconds gauge\n",
         LAT_RING);
    for (size_t r = 0; r < sizeof rings / sizeof rings[0]; r++) {
        static double tmp[LAT_RING];
        static pthread_mutex_t tmp_mu = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&tmp_mu);
        pthread_mutex_lock(&rings[r].mu);
        size_t n = rings[r].n;
        memcpy(tmp, rings[r].v, n * sizeof *tmp);
        pthread_mutex_unlock(&rings[r].mu);
        if (n > 0) {
            qsort(tmp, n, sizeof *tmp, cmp_d);
            const double qs[] = {0.5, 0.9, 0.99};
            for (int q = 0; q < 3; q++) {
                size_t k = (size_t)ceil(qs[q] * (double)n) - 1;
                EMIT("antar_ai_added_latency_seconds{path=\"%s\",quantile=\"%g\"} %.9f\n",
                     rings[r].path, qs[q], tmp[k < n ? k : n - 1]);
            }
            EMIT("antar_ai_added_latency_seconds_count{path=\"%s\"} %zu\n", rings[r].path, n);
        }
        pthread_mutex_unlock(&tmp_mu);
    }
#undef EMIT
    return out;
}

double core_ai_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void core_ai_latency(const char *path, double seconds)
{
    for (size_t r = 0; r < sizeof rings / sizeof rings[0]; r++)
        if (strcmp(rings[r].path, path) == 0) {
            pthread_mutex_lock(&rings[r].mu);
            rings[r].v[rings[r].next] = seconds;
            rings[r].next = (rings[r].next + 1) % LAT_RING;
            if (rings[r].n < LAT_RING)
                rings[r].n++;
            pthread_mutex_unlock(&rings[r].mu);
        }
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* Parse the switch into G.enabled and the slots' off flags. A value that is neither a word of
 * the switch nor a list of known models is refused, so that a typo ("of", "eta accept") stops
 * the start instead of quietly serving something nobody asked for. */
static int parse_switch(const char *sw)
{
    G.enabled = !(strcmp(sw, "off") == 0 || strcmp(sw, "0") == 0 || strcmp(sw, "false") == 0);
    bool all = strcmp(sw, "on") == 0 || strcmp(sw, "1") == 0 || strcmp(sw, "true") == 0;
    bool want[CORE_AI__COUNT] = {0};
    if (G.enabled && !all) {
        const char *p = sw;
        while (true) {
            size_t n = strcspn(p, ",");
            int hit = -1;
            for (int i = 0; i < CORE_AI__COUNT; i++)
                if (n == strlen(slots[i].name) && strncmp(p, slots[i].name, n) == 0)
                    hit = i;
            if (hit < 0 || want[hit]) {
                antar_log_json("error", "ai_switch_invalid",
                               json_pack("{ss ss}", "ANTAR_AI", sw, "expected",
                                         "on, off, or a comma list of eta, accept, demand "
                                         "(each once)"));
                return -1;
            }
            want[hit] = true;
            if (p[n] == '\0')
                break;
            p += n + 1;
        }
    }
    for (int i = 0; i < CORE_AI__COUNT; i++)
        slots[i].off = !G.enabled || !(all || want[i]);
    return 0;
}

int core_ai_init(void)
{
    /* "off" (or 0, false): every rule; "on" (the default): every model; or a comma list of the
     * models to serve ("eta,accept": the dispatch and the ETA, the surge on its rule). */
    if (parse_switch(antar_config_env("ANTAR_AI", "on")) != 0)
        return -1;
    const char *dir = antar_config_env("ANTAR_AI_DIR", NULL);
    const char *run = antar_config_env("ANTAR_RUN_DIR", NULL);
    if (dir)
        snprintf(G.dir, sizeof G.dir, "%s", dir);
    else if (run)
        snprintf(G.dir, sizeof G.dir, "%s/models", run);
    else
        snprintf(G.dir, sizeof G.dir, "models");
    snprintf(G.clock_path, sizeof G.clock_path, "%s", antar_config_env("ANTAR_AI_CLOCK_FILE", ""));
    antar_metrics_add_source(render_metrics);
    antar_log_json("info", "ai_start",
                   json_pack("{sb ss ss}", "enabled", G.enabled, "dir", G.dir, "clock",
                             G.clock_path[0] ? G.clock_path : "wall"));
    if (G.enabled) {
        core_ai_reload();
        watcher_start();
    }
    return 0;
}

void core_ai_shutdown(void)
{
    watcher_stop();
    for (int i = 0; i < CORE_AI__COUNT; i++) {
        slot_set(&slots[i], NULL, "", 0);
        slots[i].seen_card = false;
        memset(&slots[i].card_mtime, 0, sizeof slots[i].card_mtime);
    }
    G.clock_set = false;
    memset(&G.clock_mtime, 0, sizeof G.clock_mtime);
    pthread_mutex_lock(&D.mu);
    memset(D.e, 0, sizeof D.e);
    pthread_mutex_unlock(&D.mu);
}

bool core_ai_ready(core_ai_model_t m)
{
    if (!G.enabled || m < 0 || m >= CORE_AI__COUNT)
        return false;
    return atomic_load(&slots[m].cur) != NULL;
}

core_ai_clock_t core_ai_clock(long long now_ms)
{
    core_ai_clock_t c = {.speed = 1.0};
    pthread_rwlock_rdlock(&G.clock_lk);
    if (G.clock_set) {
        c.city_s = G.start_hour * 3600.0 + ((double)now_ms - G.t0_wall_ms) / 1000.0 * G.speed;
        c.weekday0 = G.weekday;
        c.epoch = (long long)(G.t0_wall_ms / 1000);
        c.speed = G.speed;
    }
    pthread_rwlock_unlock(&G.clock_lk);
    if (c.epoch == 0) {
        /* Jakarta is UTC+7 all year; 1970-01-01 was a Thursday. */
        c.city_s = (double)now_ms / 1000.0 + 7 * 3600.0;
        c.weekday0 = 3;
    }
    return c;
}

/* ---- predictions --------------------------------------------------------------------------- */

/* Predict rows with model m. false when it is not loaded (counted as a fallback). *cost (may
 * be NULL) gets the accept card's decline cost, read from the same published model. */
static bool predict(core_ai_model_t m, const float *x, size_t rows, float *out, double *cost)
{
    if (!G.enabled)
        return false;
    slot_t *s = &slots[m];
    unsigned p = reader_enter();
    served_t *v = atomic_load(&s->cur);
    if (v) {
        ai_forest_predict(v->f, x, rows, out);
        if (cost)
            *cost = v->decline_cost_ms;
    }
    reader_exit(p);
    atomic_fetch_add(v ? &s->used : &s->fallback, 1);
    return v != NULL;
}

bool core_ai_eta_legs(const double legs[][4], size_t n, bool car, long long now_ms, double *seconds)
{
    if (n == 0 || n > 8)
        return false;
    core_ai_clock_t c = core_ai_clock(now_ms);
    ai_when_t w = ai_when(c.city_s, c.weekday0);
    float x[8 * AI_ETA_NF], y[8];
    for (size_t i = 0; i < n; i++)
        ai_eta_features(x + i * AI_ETA_NF, legs[i][0], legs[i][1], legs[i][2], legs[i][3], w, car);
    if (!predict(CORE_AI_ETA, x, n, y, NULL))
        return false;
    for (size_t i = 0; i < n; i++) {
        seconds[i] = ai_eta_seconds(x + i * AI_ETA_NF, y[i]);
        if (!isfinite(seconds[i]))
            return false;
    }
    return true;
}

bool core_ai_eta(double from_lat, double from_lng, double to_lat, double to_lng, bool car,
                 long long now_ms, double *seconds)
{
    const double leg[1][4] = {{from_lat, from_lng, to_lat, to_lng}};
    return core_ai_eta_legs(leg, 1, car, now_ms, seconds);
}

#define RANK_MAX 32

bool core_ai_rank(const core_candidate_t *cand, size_t n, double pickup_lat, double pickup_lng,
                  double dropoff_lat, double dropoff_lng, double price, bool car, long long now_ms,
                  double *scores, double *eta_s, double *p_accept)
{
    if (n == 0 || n > RANK_MAX || !core_ai_ready(CORE_AI_ETA) || !core_ai_ready(CORE_AI_ACC))
        return false;
    core_ai_clock_t c = core_ai_clock(now_ms);
    ai_when_t w = ai_when(c.city_s, c.weekday0);
    float xe[RANK_MAX * AI_ETA_NF], xa[RANK_MAX * AI_ACC_NF], ye[RANK_MAX], ya[RANK_MAX];
    for (size_t i = 0; i < n; i++) {
        ai_eta_features(xe + i * AI_ETA_NF, cand[i].lat, cand[i].lng, pickup_lat, pickup_lng, w,
                        car);
        ai_acc_features(xa + i * AI_ACC_NF, cand[i].lat, cand[i].lng, pickup_lat, pickup_lng,
                        dropoff_lat, dropoff_lng, price, w, car,
                        (cand[i].accepts + 1) / (cand[i].offers + 2), fmin(cand[i].offers, 50));
    }
    double cost_ms = 0;
    if (!predict(CORE_AI_ETA, xe, n, ye, NULL) || !predict(CORE_AI_ACC, xa, n, ya, &cost_ms))
        return false;
    double cost_s = cost_ms / 1000.0 * c.speed;
    for (size_t i = 0; i < n; i++) {
        double e = ai_eta_seconds(xe + i * AI_ETA_NF, ye[i]), p = fmin(fmax(ya[i], P_MIN), P_MAX);
        if (!isfinite(e))
            return false;
        eta_s[i] = e;
        p_accept[i] = ya[i];
        scores[i] = e + (1 - p) / p * cost_s;
    }
    return true;
}

static dem_entry_t *dem_find(long ilat, long ilng)
{
    for (size_t i = 0; i < DEM_CACHE; i++)
        if (D.e[i].used && D.e[i].ilat == ilat && D.e[i].ilng == ilng)
            return &D.e[i];
    return NULL;
}

/* Store counts read at read_ms (under D.mu). A full cache replaces the cell asked about least
 * recently. */
static void dem_put(long ilat, long ilng, long long epoch, long long read_ms, long long asked_ms,
                    double l15, double l60, double c15)
{
    dem_entry_t *e = dem_find(ilat, ilng);
    for (size_t i = 0; !e && i < DEM_CACHE; i++)
        if (!D.e[i].used)
            e = &D.e[i];
    for (size_t i = 0; !e && i < DEM_CACHE; i++)
        if (!e || D.e[i].asked_ms < e->asked_ms)
            e = &D.e[i];
    if (asked_ms < e->asked_ms && e->used && e->ilat == ilat && e->ilng == ilng)
        asked_ms = e->asked_ms;
    *e = (dem_entry_t){.used = true,
                       .ilat = ilat,
                       .ilng = ilng,
                       .epoch = epoch,
                       .read_ms = read_ms,
                       .asked_ms = asked_ms,
                       .l15 = l15,
                       .l60 = l60,
                       .c15 = c15};
}

static void dem_refresh(void)
{
    long long now = antar_now_ms();
    core_ai_clock_t c = core_ai_clock(now);
    long long bucket = (long long)floor(c.city_s / AI_DEM_BUCKET_S);
    long cells[DEM_CACHE][2];
    size_t n = 0;
    pthread_mutex_lock(&D.mu);
    for (size_t i = 0; i < DEM_CACHE; i++) {
        if (D.e[i].used && now - D.e[i].asked_ms > DEM_KEEP_MS)
            D.e[i].used = false;
        if (D.e[i].used)
            cells[n][0] = D.e[i].ilat, cells[n++][1] = D.e[i].ilng;
    }
    pthread_mutex_unlock(&D.mu);
    for (size_t i = 0; i < n; i++) {
        double l15 = 0, l60 = 0, c15 = 0;
        if (core_store_ai_demand_counts(c.epoch, cells[i][0], cells[i][1], bucket, &l15, &l60,
                                        &c15) != ANTAR_OK) {
            atomic_fetch_add(&D.refresh_errors, 1);
            break; /* Redis is away: the requests read for themselves (and fall back) */
        }
        pthread_mutex_lock(&D.mu);
        dem_entry_t *e = dem_find(cells[i][0], cells[i][1]);
        if (e)
            dem_put(cells[i][0], cells[i][1], c.epoch, now, e->asked_ms, l15, l60, c15);
        pthread_mutex_unlock(&D.mu);
    }
}

bool core_ai_demand(double lat, double lng, long long now_ms, double *forecast)
{
    if (!core_ai_ready(CORE_AI_DEM))
        return false;
    core_ai_clock_t c = core_ai_clock(now_ms);
    long ilat, ilng;
    ai_dem_cell(lat, lng, &ilat, &ilng);
    double l15 = 0, l60 = 0, c15 = 0;
    bool hit = false;
    pthread_mutex_lock(&D.mu);
    dem_entry_t *e = dem_find(ilat, ilng);
    if (e) {
        e->asked_ms = now_ms;
        if (e->epoch == c.epoch && now_ms - e->read_ms <= DEM_FRESH_MS) {
            l15 = e->l15, l60 = e->l60, c15 = e->c15;
            hit = true;
        }
    }
    if (!e) /* first ask: the refresher reads it from now on (read_ms 0: not yet fresh) */
        dem_put(ilat, ilng, c.epoch, 0, now_ms, 0, 0, 0);
    pthread_mutex_unlock(&D.mu);
    atomic_fetch_add(hit ? &D.hits : &D.misses, 1);
    if (!hit) {
        /* No Redis read on the request: this one answer is the rule's (counted as such). */
        atomic_fetch_add(&slots[CORE_AI_DEM].fallback, 1);
        return false;
    }
    float x[AI_DEM_NF], y = 0;
    ai_dem_features(x, ilat, ilng, ai_when(c.city_s, c.weekday0), l15, l60, c15);
    if (!predict(CORE_AI_DEM, x, 1, &y, NULL) || !isfinite(y))
        return false;
    *forecast = y;
    return true;
}

bool core_ai_enabled(void)
{
    return G.enabled;
}

static bool demand_read(long ilat, long ilng, long long now_ms, core_ai_clock_t *c, double *l15,
                        double *l60, double *c15)
{
    if (!G.enabled)
        return false;
    *c = core_ai_clock(now_ms);
    return core_store_ai_demand_counts(c->epoch, ilat, ilng,
                                       (long long)floor(c->city_s / AI_DEM_BUCKET_S), l15, l60,
                                       c15) == ANTAR_OK;
}

bool core_ai_demand_cell(long ilat, long ilng, long long now_ms, double *forecast)
{
    core_ai_clock_t c;
    double l15, l60, c15;
    if (!core_ai_ready(CORE_AI_DEM) || !demand_read(ilat, ilng, now_ms, &c, &l15, &l60, &c15))
        return false;
    float x[AI_DEM_NF], y = 0;
    ai_dem_features(x, ilat, ilng, ai_when(c.city_s, c.weekday0), l15, l60, c15);
    if (!predict(CORE_AI_DEM, x, 1, &y, NULL) || !isfinite(y))
        return false;
    *forecast = y;
    return true;
}

bool core_ai_demand_recent(long ilat, long ilng, long long now_ms, double *orders)
{
    core_ai_clock_t c;
    double l60, c15;
    return demand_read(ilat, ilng, now_ms, &c, orders, &l60, &c15);
}

void core_ai_offer_fields(json_t *body, const json_t *payload, long long driver_id,
                          long long now_ms)
{
    const char *vt = json_string_value(json_object_get(payload, "vehicle_type"));
    double plat = json_number_value(json_object_get(payload, "pickup_lat"));
    double plng = json_number_value(json_object_get(payload, "pickup_lng"));
    double lat = 0, lng = 0, eta = 0;
    if (!vt || core_store_driver_position(vt, driver_id, &lat, &lng) != ANTAR_OK)
        return;
    bool car = strcmp(vt, "car") == 0;
    if (!core_ai_eta(lat, lng, plat, plng, car, now_ms, &eta))
        eta = (double)core_fare_compute(car ? CORE_VEHICLE_CAR : CORE_VEHICLE_MOTORCYCLE, lat, lng,
                                        plat, plng, CORE_SURGE_MIN_TENTHS)
                  .duration_s;
    json_object_set_new(body, "driver_lat", json_real(lat));
    json_object_set_new(body, "driver_lng", json_real(lng));
    json_object_set_new(body, "pickup_eta_s", json_integer((json_int_t)ceil(eta)));
}

void core_ai_order_placed(double lat, double lng, long long now_ms)
{
    if (!G.enabled)
        return;
    core_ai_clock_t c = core_ai_clock(now_ms);
    long ilat, ilng;
    ai_dem_cell(lat, lng, &ilat, &ilng);
    /* Kept an hour of city time and a minute of real time beyond it. */
    long ttl = (long)(3900.0 / c.speed) + 60;
    (void)core_store_ai_demand_add(c.epoch, ilat, ilng,
                                   (long long)floor(c.city_s / AI_DEM_BUCKET_S), ttl);
}

void core_ai_offer_outcome(long long driver_id, bool accepted)
{
    if (G.enabled && driver_id > 0)
        (void)core_store_ai_offer_outcome(core_ai_clock(antar_now_ms()).epoch, driver_id, accepted);
}
