/* antar-sim — the city. Usage: antar-sim [options] (a run, then the audit) or antar-sim --audit
 * (the audit of the last run only). See --help and docs/simulator.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

double sim_now(const sim_t *s)
{
    return mono_ms() - s->t0_mono_ms;
}

double sim_wall_ms(const sim_t *s, double t_ms)
{
    return s->t0_wall_ms + t_ms;
}

/* A simulated city runs its own clock (--speed, --start-hour): core's models read the hour of
 * day off it when ANTAR_AI_CLOCK_FILE names this file (docs/ai.md), as a real deployment reads
 * its wall clock. Written whole (temporary file, rename); best effort. */
static void sim_clock_file(const sim_t *s)
{
    const char *path = getenv("ANTAR_AI_CLOCK_FILE");
    if (!path || !*path)
        return;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "{\"t0_wall_ms\":%.0f,\"start_hour\":%.6f,\"weekday\":%d,\"speed\":%.6f}\n",
            s->t0_wall_ms, s->o.start_hour, s->o.start_weekday, s->o.speed);
    if (fclose(f) == 0)
        (void)rename(tmp, path);
}

double sim_city_s(const sim_t *s, double t_ms)
{
    return s->o.start_hour * 3600.0 + t_ms / 1000.0 * s->o.speed;
}

int sim_hour(const sim_t *s, double t_ms)
{
    return (int)fmod(s->o.start_hour + t_ms / 1000.0 * s->o.speed / 3600.0, 24.0);
}

/* ---- timers: a binary min-heap on `at` ------------------------------------------------------- */

void timer_add(sim_t *s, double at, int kind, int agent, uint32_t gen)
{
    if (s->heap_n == s->heap_cap) {
        int cap = s->heap_cap ? s->heap_cap * 2 : 4096;
        timer_t_ *nh = realloc(s->heap, (size_t)cap * sizeof *nh);
        if (!nh) {
            fprintf(stderr, "antar-sim: out of memory\n");
            exit(1);
        }
        s->heap = nh;
        s->heap_cap = cap;
    }
    int i = s->heap_n++;
    timer_t_ t = {at, gen, kind, agent};
    while (i > 0) {
        int p = (i - 1) / 2;
        if (s->heap[p].at <= at)
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = t;
}

static timer_t_ timer_pop(sim_t *s)
{
    timer_t_ top = s->heap[0], last = s->heap[--s->heap_n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && s->heap[c + 1].at < s->heap[c].at)
            c++;
        if (s->heap[c].at >= last.at)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n > 0)
        s->heap[i] = last;
    return top;
}

/* ---- the account pool -------------------------------------------------------------------------
 */

/* pool.tsv: "driver<TAB>id<TAB>vehicle_type<TAB>refresh_token" and
 * "user<TAB>id<TAB>-<TAB>refresh_token", one account a line (written by scripts/sim.sh from the
 * seeding commands, rewritten by each run with the rotated refresh tokens). */
static int pool_load(sim_t *s)
{
    FILE *f = fopen(s->o.pool_path, "r");
    char line[2048];
    int nd = 0, nc = 0;
    if (!f) {
        fprintf(stderr,
                "antar-sim: cannot read the account pool %s: %s (run scripts/sim.sh, "
                "which seeds it)\n",
                s->o.pool_path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char role[16], vt[16], tok[1024];
        long long id;
        if (sscanf(line, "%15s %lld %15s %1023s", role, &id, vt, tok) != 4)
            continue;
        if (strcmp(role, "driver") == 0 && nd < s->o.drivers) {
            driver_t *d = &s->drv[nd++];
            d->id = id;
            d->car = strcmp(vt, "car") == 0;
            d->refresh = strdup(tok);
        } else if (strcmp(role, "user") == 0 && nc < s->o.customers) {
            cust_t *c = &s->cust[nc++];
            c->id = id;
            c->refresh = strdup(tok);
        }
    }
    fclose(f);
    if (nd < s->o.drivers || nc < s->o.customers) {
        fprintf(stderr,
                "antar-sim: the pool %s has %d drivers and %d customers; the run needs "
                "%d and %d (scripts/sim.sh seeds what is missing)\n",
                s->o.pool_path, nd, nc, s->o.drivers, s->o.customers);
        return -1;
    }
    return 0;
}

/* Write the pool back with the rotated refresh tokens: a new file renamed over the old one, so
 * a crash leaves either pool whole. Accounts outside this run are kept as they were. */
static int pool_save(sim_t *s)
{
    char tmp[700], line[2048];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->o.pool_path);
    FILE *in = fopen(s->o.pool_path, "r");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    int nd = 0, nc = 0;
    if (!in || !out) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        return -1;
    }
    while (fgets(line, sizeof line, in)) {
        char role[16], vt[16], tok[1024];
        long long id;
        if (sscanf(line, "%15s %lld %15s %1023s", role, &id, vt, tok) != 4)
            continue;
        const char *t = tok;
        bool dead = false;
        if (strcmp(role, "driver") == 0 && nd < s->o.drivers) {
            driver_t *d = &s->drv[nd++];
            t = d->refresh;
            dead = d->st == D_DEAD;
        } else if (strcmp(role, "user") == 0 && nc < s->o.customers) {
            cust_t *c = &s->cust[nc++];
            t = c->refresh;
            dead = c->st == C_DEAD;
        }
        /* A refused refresh token is dropped: scripts/sim.sh issues a new one next time. */
        if (!dead && t)
            fprintf(out, "%s\t%lld\t%s\t%s\n", role, id, vt, t);
    }
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, s->o.pool_path) != 0)
        return -1;
    return 0;
}

/* ---- set-up: a fresh access token and a CSRF token for every account --------------------------
 */

typedef struct {
    int next, total, done, failed;
} setup_t;

static setup_t setup;

/* Each device signs in from an address of its own in 127.0.0.0/8, as phones come from their
 * own addresses: the edge's per-address limit on /oauth/token is then met as in the field. */
static void device_ip(int k, char out[32])
{
    snprintf(out, 32, "127.%d.%d.%d", 16 + k / (250 * 250), (k / 250) % 250, k % 250 + 1);
}

static char **acct_refresh(sim_t *s, int k, char ***access, char ***csrf, double **exp,
                           bool **car_or_null)
{
    (void)car_or_null;
    if (k < s->o.drivers) {
        driver_t *d = &s->drv[k];
        *access = &d->access;
        *csrf = &d->csrf;
        *exp = &d->token_exp_ms;
        return &d->refresh;
    }
    cust_t *c = &s->cust[k - s->o.drivers];
    *access = &c->access;
    *csrf = &c->csrf;
    *exp = &c->token_exp_ms;
    return &c->refresh;
}

static void acct_dead(sim_t *s, int k)
{
    if (k < s->o.drivers)
        s->drv[k].st = D_DEAD;
    else
        s->cust[k - s->o.drivers].st = C_DEAD;
    s->c.dead_accounts++;
}

static void send_refresh(sim_t *s, int k, double at, int attempt);
static void setup_next(sim_t *s);

static void on_csrf(sim_t *s, http_req_t *r, int status, json_t *body)
{
    char **access, **csrf;
    double *exp;
    acct_refresh(s, r->agent, &access, &csrf, &exp, NULL);
    const char *t =
        json_string_value(json_object_get(json_object_get(body, "result"), "csrf_token"));
    if (status == 200 && t) {
        free(*csrf);
        *csrf = strdup(t);
    } else if (!*csrf) {
        acct_dead(s, r->agent);
        setup.failed++;
    }
    if (r->ctx == 1) { /* part of the set-up */
        setup.done++;
        setup_next(s);
    }
}

static void on_token(sim_t *s, http_req_t *r, int status, json_t *body)
{
    char **access, **csrf;
    double *exp;
    char **refresh = acct_refresh(s, r->agent, &access, &csrf, &exp, NULL);
    const char *at = json_string_value(json_object_get(body, "access_token"));
    const char *rt = json_string_value(json_object_get(body, "refresh_token"));
    if (status == 200 && at && rt) {
        free(*access);
        free(*refresh);
        *access = strdup(at);
        *refresh = strdup(rt);
        *exp = sim_now(s) + (double)json_integer_value(json_object_get(body, "expires_in")) * 1000;
        s->c.token_refreshes++;
        if (!s->in_setup) /* the run plans its renewals from its own clock */
            timer_add(s, *exp - 120000, T_TOKEN, r->agent, 0);
        if (r->ctx == 1 || !*csrf) {
            char u[256];
            snprintf(u, sizeof u, "%s/csrf", s->o.edge);
            http_spec_t spec = {.method = "GET", .url = u, .bearer = *access};
            if (net_send(s, &spec, EP_CSRF, sim_now(s), r->agent, r->ctx, 0, on_csrf))
                return;
        }
    } else if ((status == 0 || status == 429 || status >= 500) && r->attempt < 5) {
        send_refresh(s, r->agent, sim_now(s) + 1000.0 * (r->attempt + 1), r->attempt + 1);
        return; /* the set-up's count moves when the retry is answered */
    } else {
        if (s->c.dead_accounts < 3)
            fprintf(stderr, "antar-sim: account %d: refresh answered %d\n", r->agent, status);
        acct_dead(s, r->agent);
        if (r->ctx == 1)
            setup.failed++;
    }
    if (r->ctx == 1) {
        setup.done++;
        setup_next(s);
    }
}

static void send_refresh(sim_t *s, int k, double at, int attempt)
{
    char **access, **csrf;
    double *exp;
    char **refresh = acct_refresh(s, k, &access, &csrf, &exp, NULL);
    char u[256], form[1200], ip[32];
    snprintf(u, sizeof u, "%s/oauth/token", s->o.edge);
    snprintf(form, sizeof form, "grant_type=refresh_token&client_id=%s&refresh_token=%s",
             k < s->o.drivers ? "driver-app" : "user-app", *refresh);
    device_ip(k, ip);
    http_spec_t spec = {.method = "POST", .url = u, .body = form, .form = true, .src_ip = ip};
    /* ctx 1: the set-up's refresh (then a CSRF token follows); 0: a renewal during the run. */
    if (!net_send(s, &spec, EP_TOKEN, at, k, s->in_setup ? 1 : 0, attempt, on_token))
        acct_dead(s, k);
}

static void setup_next(sim_t *s)
{
    while (setup.next < setup.total && setup.next - setup.done < s->o.setup_parallel) {
        int k = setup.next++;
        send_refresh(s, k, sim_now(s), 0);
    }
}

static int run_setup(sim_t *s)
{
    setup.total = s->o.drivers + s->o.customers;
    setup.next = setup.done = setup.failed = 0;
    double t0 = sim_now(s);
    s->in_setup = true;
    setup_next(s);
    while (setup.done < setup.total && !interrupted)
        net_poll(s, 50);
    while (s->in_flight > 0) /* after an interrupt: let what was started end */
        net_poll(s, 50);
    s->in_setup = false;
    if (!s->o.quiet)
        fprintf(stderr, "antar-sim: %d accounts signed in (refresh + CSRF) in %.1f s, %d refused\n",
                setup.total - setup.failed, (sim_now(s) - t0) / 1000, setup.failed);
    return interrupted ? -1 : 0;
}

/* ---- options ----------------------------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: antar-sim [options]          run the city, then audit it\n"
           "       antar-sim --audit [options]  audit the services (and the last run's orders)\n"
           "\n"
           "  --drivers N         drivers in the city (default 200)\n"
           "  --customers N       customers (default 2 × drivers)\n"
           "  --duration S        measured real seconds (default 60)\n"
           "  --warmup S          real seconds to bring drivers online first (default 10)\n"
           "  --settle S          most real seconds to let trips finish after (default 60)\n"
           "  --speed X           simulated seconds per real second (default 60)\n"
           "  --start-hour H      simulated hour of day at the start (default 7.5)\n"
           "  --weekday D         simulated weekday, 0 = Monday (default 0)\n"
           "  --orders-per-s R    mean real-time order rate (default drivers / 100)\n"
           "  --flat              constant order rate (no hour profile): for load ramps\n"
           "  --ping-s S          seconds between a driver's pings (default 4)\n"
           "  --poll-s S          seconds between a free driver's GET /offers (default 3)\n"
           "  --push              drivers hold a GET /events stream (Server-Sent Events) and take\n"
           "                      offers from it instead of polling GET /offers\n"
           "  --customer-poll-s S seconds between a customer's GET /orders/{id} (default 3)\n"
           "  --patience-s S      median seconds a customer waits for a driver (default 40)\n"
           "  --offline-per-h P   chance per simulated hour that a free driver takes a break\n"
           "                      (default 0.05)\n"
           "  --follow-hints F    share of drivers who, when free, ask where to wait\n"
           "                      (GET /drivers/me/waiting-hint) and go there (default 0)\n"
           "  --seed N            the run's seed (default 1)\n"
           "  --conns N           most connections to the edge (default 64)\n"
           "  --timeout-ms N      per-request timeout (default 5000)\n"
           "  --ping-sample F     fraction of pings written to the event history (default 1)\n"
           "  --slow-ms N         a request this slow goes to <out>/issues.tsv with the failed\n"
           "                      ones (default 2000)\n"
           "  --no-audit          skip the audit after the run\n"
           "  --quiet             only the summary\n"
           "  --run-dir DIR       the stack's run folder (default $ANTAR_RUN_DIR or .run)\n"
           "  --pool FILE         the account pool (default <run-dir>/sim/pool.tsv)\n"
           "  --out DIR           report.json, events.jsonl, acked.tsv (default <run-dir>/sim)\n"
           "\n"
           "Ports follow ANTAR_PORT_OFFSET (edge 8080; the audit uses the internal listeners\n"
           "user 9001, driver 9002, core 9003).\n"
           "Exit status: 0 when the audit is clean, 1 on a violation, 2 on bad usage or set-up.\n");
}

enum {
    O_DRIVERS = 256,
    O_CUSTOMERS,
    O_DURATION,
    O_WARMUP,
    O_SETTLE,
    O_SPEED,
    O_START_HOUR,
    O_WEEKDAY,
    O_RATE,
    O_FLAT,
    O_PING,
    O_POLL,
    O_PUSH,
    O_CPOLL,
    O_PATIENCE,
    O_OFFLINE,
    O_HINTS,
    O_SEED,
    O_CONNS,
    O_TIMEOUT,
    O_SAMPLE,
    O_SLOW,
    O_AUDIT,
    O_NO_AUDIT,
    O_QUIET,
    O_RUN_DIR,
    O_POOL,
    O_OUT,
    O_HELP
};

static bool num_arg(const char *name, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || !end || *end || end == v || !(x >= lo && x <= hi)) {
        fprintf(stderr, "antar-sim: --%s must be a number from %g to %g\n", name, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static int parse_opts(int argc, char **argv, sim_opts_t *o)
{
    static const struct option lo[] = {
        {"drivers", 1, 0, O_DRIVERS},
        {"customers", 1, 0, O_CUSTOMERS},
        {"duration", 1, 0, O_DURATION},
        {"warmup", 1, 0, O_WARMUP},
        {"settle", 1, 0, O_SETTLE},
        {"speed", 1, 0, O_SPEED},
        {"start-hour", 1, 0, O_START_HOUR},
        {"weekday", 1, 0, O_WEEKDAY},
        {"orders-per-s", 1, 0, O_RATE},
        {"flat", 0, 0, O_FLAT},
        {"ping-s", 1, 0, O_PING},
        {"poll-s", 1, 0, O_POLL},
        {"push", 0, 0, O_PUSH},
        {"customer-poll-s", 1, 0, O_CPOLL},
        {"patience-s", 1, 0, O_PATIENCE},
        {"offline-per-h", 1, 0, O_OFFLINE},
        {"follow-hints", 1, 0, O_HINTS},
        {"seed", 1, 0, O_SEED},
        {"conns", 1, 0, O_CONNS},
        {"timeout-ms", 1, 0, O_TIMEOUT},
        {"ping-sample", 1, 0, O_SAMPLE},
        {"slow-ms", 1, 0, O_SLOW},
        {"audit", 0, 0, O_AUDIT},
        {"no-audit", 0, 0, O_NO_AUDIT},
        {"quiet", 0, 0, O_QUIET},
        {"run-dir", 1, 0, O_RUN_DIR},
        {"pool", 1, 0, O_POOL},
        {"out", 1, 0, O_OUT},
        {"help", 0, 0, O_HELP},
        {0, 0, 0, 0},
    };
    double x, customers = -1, rate = -1;
    int c;
    const char *rd = getenv("ANTAR_RUN_DIR"), *off_s = getenv("ANTAR_PORT_OFFSET");
    long off = off_s ? strtol(off_s, NULL, 10) : 0;
    if (off < 0 || off > 50000)
        off = 0;
    *o = (sim_opts_t){.seed = 1,
                      .drivers = 200,
                      .duration_s = 60,
                      .warmup_s = 10,
                      .settle_s = 60,
                      .speed = 60,
                      .start_hour = 7.5,
                      .ping_s = 4,
                      .poll_s = 3,
                      .cust_poll_s = 3,
                      .patience_s = 40,
                      .offline_per_h = 0.05,
                      .conns = 64,
                      .timeout_ms = 5000,
                      .ping_sample = 1,
                      .slow_ms = 2000,
                      .setup_parallel = 32};
    snprintf(o->run_dir, sizeof o->run_dir, "%s", rd && *rd ? rd : ".run");
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        const char *n = NULL;
        for (int i = 0; lo[i].name; i++)
            if (lo[i].val == c)
                n = lo[i].name;
        switch (c) {
        case O_DRIVERS:
            if (!num_arg(n, optarg, 1, 200000, &x))
                return -1;
            o->drivers = (int)x;
            break;
        case O_CUSTOMERS:
            if (!num_arg(n, optarg, 1, 200000, &customers))
                return -1;
            break;
        case O_DURATION:
            if (!num_arg(n, optarg, 1, 86400, &o->duration_s))
                return -1;
            break;
        case O_WARMUP:
            if (!num_arg(n, optarg, 0, 3600, &o->warmup_s))
                return -1;
            break;
        case O_SETTLE:
            if (!num_arg(n, optarg, 0, 3600, &o->settle_s))
                return -1;
            break;
        case O_SPEED:
            if (!num_arg(n, optarg, 1, 3600, &o->speed))
                return -1;
            break;
        case O_START_HOUR:
            if (!num_arg(n, optarg, 0, 23.999, &o->start_hour))
                return -1;
            break;
        case O_WEEKDAY:
            if (!num_arg(n, optarg, 0, 6, &x))
                return -1;
            o->start_weekday = (int)x;
            break;
        case O_RATE:
            if (!num_arg(n, optarg, 0, 100000, &rate))
                return -1;
            break;
        case O_FLAT:
            o->flat = true;
            break;
        case O_PING:
            if (!num_arg(n, optarg, 0.05, 3600, &o->ping_s))
                return -1;
            break;
        case O_PUSH:
            o->push = true;
            break;
        case O_POLL:
            if (!num_arg(n, optarg, 0.05, 3600, &o->poll_s))
                return -1;
            break;
        case O_CPOLL:
            if (!num_arg(n, optarg, 0.05, 3600, &o->cust_poll_s))
                return -1;
            break;
        case O_PATIENCE:
            if (!num_arg(n, optarg, 1, 86400, &o->patience_s))
                return -1;
            break;
        case O_OFFLINE:
            if (!num_arg(n, optarg, 0, 1, &o->offline_per_h))
                return -1;
            break;
        case O_HINTS:
            if (!num_arg(n, optarg, 0, 1, &o->follow_hints))
                return -1;
            break;
        case O_SEED:
            if (!num_arg(n, optarg, 0, 9007199254740992.0, &x))
                return -1;
            o->seed = (uint64_t)x;
            break;
        case O_CONNS:
            if (!num_arg(n, optarg, 1, 4096, &x))
                return -1;
            o->conns = (int)x;
            break;
        case O_TIMEOUT:
            if (!num_arg(n, optarg, 100, 600000, &x))
                return -1;
            o->timeout_ms = (long)x;
            break;
        case O_SAMPLE:
            if (!num_arg(n, optarg, 0, 1, &o->ping_sample))
                return -1;
            break;
        case O_SLOW:
            if (!num_arg(n, optarg, 1, 600000, &o->slow_ms))
                return -1;
            break;
        case O_AUDIT:
            o->audit_only = true;
            break;
        case O_NO_AUDIT:
            o->no_audit = true;
            break;
        case O_QUIET:
            o->quiet = true;
            break;
        case O_RUN_DIR:
            snprintf(o->run_dir, sizeof o->run_dir, "%s", optarg);
            break;
        case O_POOL:
            snprintf(o->pool_path, sizeof o->pool_path, "%s", optarg);
            break;
        case O_OUT:
            snprintf(o->out_dir, sizeof o->out_dir, "%s", optarg);
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "antar-sim: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    o->customers = customers > 0 ? (int)customers : o->drivers * 2;
    o->orders_per_s = rate >= 0 ? rate : o->drivers / 100.0;
    if (!o->pool_path[0])
        snprintf(o->pool_path, sizeof o->pool_path, "%s/sim/pool.tsv", o->run_dir);
    if (!o->out_dir[0])
        snprintf(o->out_dir, sizeof o->out_dir, "%s/sim", o->run_dir);
    snprintf(o->edge, sizeof o->edge, "http://127.0.0.1:%ld", 8080 + off);
    /* The audit reads /internal/audit/... and takes its ops token from core: both on the
     * services' internal listeners (9001-9003), the only place /internal/... is served. */
    for (int i = 0; i < 3; i++)
        snprintf(o->svc_url[i], sizeof o->svc_url[i], "http://127.0.0.1:%ld", 9001 + i + off);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------------
 */

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void wind_down(sim_t *s)
{
    /* Trips still under way when the settle time is half gone end now: drivers arrive, and
     * customers still searching give up, so that the audit sees a city at rest. */
    double now = sim_now(s);
    s->winding = true;
    s->wind_ms = now;
    for (int i = 0; i < s->o.drivers; i++) {
        driver_t *d = &s->drv[i];
        if ((d->st == D_TO_PICKUP || d->st == D_ON_TRIP) && d->leg_t1 > now) {
            d->leg_t1 = now;
            timer_add(s, now, T_DRV_ACT, i, ++d->gen_act);
        }
    }
    for (int i = 0; i < s->o.customers; i++) {
        cust_t *c = &s->cust[i];
        if (c->st == C_WAITING)
            c->patience_ms = 0;
    }
}

static int run(sim_t *s)
{
    proc_t procs[16];
    int np = procs_find(s->o.run_dir, procs, 16);
    char path[800];
    int bad = 0;

    mkdir(s->o.out_dir, 0700);
    s->drv = calloc((size_t)s->o.drivers, sizeof *s->drv);
    s->cust = calloc((size_t)s->o.customers, sizeof *s->cust);
    s->idle_cust = calloc((size_t)s->o.customers, sizeof *s->idle_cust);
    if (!s->drv || !s->cust || !s->idle_cust || pool_load(s) != 0 || net_init(s) != 0)
        return 2;
    rng_seed(&s->rng, s->o.seed, 0);
    /* Idempotency-Keys must be unique per request across runs too (the pool's customers stay):
     * the seed draws the key, a nonce of this run makes it unique. */
    FILE *ur = fopen("/dev/urandom", "r");
    if (!ur || fread(&s->run_nonce, sizeof s->run_nonce, 1, ur) != 1)
        s->run_nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    if (ur)
        fclose(ur);
    for (int i = 0; i < s->o.drivers; i++) {
        driver_t *d = &s->drv[i];
        rng_seed(&d->rng, s->o.seed, 1000000 + (uint64_t)i);
        /* Pickiness: most drivers take most offers, a few are choosy. */
        d->pickiness = pow(rng_unit(&d->rng), 2.0);
        d->home_zone = (int)(rng_unit(&d->rng) * city_zone_count());
        /* Who follows hints is drawn from a stream of its own, so that the other draws (and so
         * the run without hints) stay what they were. */
        rng_t hr;
        rng_seed(&hr, s->o.seed, 3000000 + (uint64_t)i);
        d->follows_hints = s->o.follow_hints > 0 && rng_unit(&hr) < s->o.follow_hints;
    }
    for (int i = 0; i < s->o.customers; i++)
        rng_seed(&s->cust[i].rng, s->o.seed, 5000000 + (uint64_t)i);

    s->t0_mono_ms = mono_ms();
    s->t0_wall_ms = wall_ms();
    if (run_setup(s) != 0)
        return 2;
    if (pool_save(s) != 0)
        fprintf(stderr, "antar-sim: could not write the pool back to %s\n", s->o.pool_path);

    snprintf(path, sizeof path, "%s/events.jsonl", s->o.out_dir);
    s->events = fopen(path, "w");
    /* The run's clock first: how wall time maps to the simulated day (antar-train's city time,
     * and core's own clock file under ANTAR_AI_CLOCK_FILE). */
    if (s->events) {
        json_t *clk =
            json_pack("{ss sf sf si sf}", "ev", "clock", "t0_wall_ms", s->t0_wall_ms, "start_hour",
                      s->o.start_hour, "weekday", s->o.start_weekday, "speed", s->o.speed);
        json_dumpf(clk, s->events, JSON_COMPACT | JSON_REAL_PRECISION(15));
        fputc('\n', s->events);
        json_decref(clk);
        sim_clock_file(s);
    }
    snprintf(path, sizeof path, "%s/acked.tsv", s->o.out_dir);
    s->acked = fopen(path, "w");
    /* issues.tsv: intended send (wall ms), end (wall ms), endpoint, status (0 = no answer),
     * latency ms — only the failed and the slow requests (see net.c). */
    snprintf(path, sizeof path, "%s/issues.tsv", s->o.out_dir);
    s->issues = fopen(path, "w");
    if (!s->acked || !s->issues) {
        fprintf(stderr, "antar-sim: cannot write in %s\n", s->o.out_dir);
        if (s->acked)
            fclose(s->acked);
        if (s->issues)
            fclose(s->issues);
        if (s->events)
            fclose(s->events);
        s->acked = s->issues = s->events = NULL;
        return 2;
    }

    /* The run's clock restarts after the set-up, so the schedule begins at 0. */
    s->t0_mono_ms = mono_ms();
    s->t0_wall_ms = wall_ms();
    s->heap_n = 0; /* renewals from the set-up are re-planned relative to the new clock */
    for (int i = 0; i < s->o.drivers + s->o.customers; i++) {
        double *exp =
            i < s->o.drivers ? &s->drv[i].token_exp_ms : &s->cust[i - s->o.drivers].token_exp_ms;
        *exp = 15 * 60 * 1000.0; /* conservative: tokens are at least this fresh */
        timer_add(s, *exp - 120000, T_TOKEN, i, 0);
    }
    s->measure_from_ms = s->o.warmup_s * 1000;
    s->measure_to_ms = s->measure_from_ms + s->o.duration_s * 1000;
    agents_start(s);
    double settle_end = 0, cpu0 = 0, last_busy_check = 0;
    bool wound = false;
    for (;;) {
        double now = sim_now(s);
        while (s->heap_n > 0 && s->heap[0].at <= now) {
            timer_t_ t = timer_pop(s);
            if (t.kind == T_TOKEN) {
                if (!s->stopping)
                    send_refresh(s, t.agent, t.at, 0);
            } else {
                agents_timer(s, &t);
            }
        }
        if (!s->measuring && !s->stopping && now >= s->measure_from_ms) {
            s->measuring = true;
            procs_sample(procs, np, false);
            cpu0 = cpu_self_s();
        }
        if (!s->stopping && (now >= s->measure_to_ms || interrupted)) {
            s->measuring = false;
            procs_sample(procs, np, true);
            cpu0 = cpu_self_s() - cpu0;
            s->measure_to_ms = now;
            agents_stop(s);
            /* Interrupted: no settling and no audit, only the pool saved and the report. */
            settle_end = now + (interrupted ? 0 : s->o.settle_s * 1000);
            if (!s->o.quiet)
                fprintf(stderr, "antar-sim: measured window over; letting trips finish\n");
        }
        if (s->stopping && now - last_busy_check >= 100) {
            /* A scan of every agent: ten times a second is often enough. */
            last_busy_check = now;
            int busy = agents_busy(s);
            if (!wound && (now >= (s->measure_to_ms + settle_end) / 2 || interrupted)) {
                wind_down(s);
                wound = true;
            }
            if ((busy == 0 && s->in_flight == 0) || now >= settle_end + s->o.timeout_ms ||
                (interrupted && now >= settle_end)) {
                if (busy && !s->o.quiet)
                    fprintf(stderr, "antar-sim: %d flows still open after the settle time\n", busy);
                break;
            }
        }
        /* Sleep until the next timer is due, rounded up: rounding down to 0 spins. */
        double wait = s->heap_n > 0 ? ceil(s->heap[0].at - sim_now(s)) : 50;
        net_poll(s, wait < 0 ? 0 : wait > 50 ? 50 : (int)wait);
    }
    /* Answers still outstanding are waited for (each has a timeout). */
    while (s->in_flight > 0)
        net_poll(s, 50);
    double sim_cpu = cpu0;
    fclose(s->acked);
    s->acked = NULL;
    fclose(s->issues);
    s->issues = NULL;
    if (s->events)
        fclose(s->events);
    if (pool_save(s) != 0)
        fprintf(stderr, "antar-sim: could not write the pool back to %s\n", s->o.pool_path);

    json_t *audit = NULL;
    if (!s->o.no_audit && !interrupted) {
        snprintf(path, sizeof path, "%s/acked.tsv", s->o.out_dir);
        audit = audit_run(&s->o, path, &bad, &s->first_offer, &s->to_accept, &s->pickup_wait,
                          &s->trip_time);
    }
    json_t *rep = report_json(s, procs, np, sim_cpu, audit);
    snprintf(path, sizeof path, "%s/report.json", s->o.out_dir);
    if (json_dump_file(rep, path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0)
        fprintf(stderr, "antar-sim: cannot write %s\n", path);
    report_print(stdout, rep);
    printf("report: %s\n", path);
    json_decref(rep);
    json_decref(audit);
    net_clean(s);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return 2;
    if (parse_opts(argc, argv, &s->o) != 0) {
        free(s);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (s->o.audit_only) {
        char path[800];
        int bad = 0;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return 2;
        snprintf(path, sizeof path, "%s/acked.tsv", s->o.out_dir);
        json_t *a = audit_run(&s->o, path, &bad, &s->first_offer, &s->to_accept, &s->pickup_wait,
                              &s->trip_time);
        char *txt = json_dumps(a, JSON_INDENT(1));
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(a);
        curl_global_cleanup();
        free(s);
        return bad ? 1 : 0;
    }
    int rc = run(s);
    for (int i = 0; s->drv && i < s->o.drivers; i++) {
        free(s->drv[i].refresh);
        free(s->drv[i].access);
        free(s->drv[i].csrf);
    }
    for (int i = 0; s->cust && i < s->o.customers; i++) {
        free(s->cust[i].refresh);
        free(s->cust[i].access);
        free(s->cust[i].csrf);
    }
    free(s->drv);
    free(s->cust);
    free(s->idle_cust);
    free(s->heap);
    free(s);
    return rc;
}
