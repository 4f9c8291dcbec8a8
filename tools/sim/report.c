/* report.c — latency histograms, the per-endpoint and per-flow tables, the processes' CPU and
 * memory, and the run's report as JSON and as a table on stdout. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"

/* Buckets: values under 100 µs one per µs, then geometric with ratio 1.01 (1% resolution). */
#define LIN 100
#define RATIO 1.01

static int bucket_of(double us)
{
    if (us < 0)
        us = 0;
    if (us < LIN)
        return (int)us;
    int b = LIN + (int)(log(us / LIN) / log(RATIO));
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static double bucket_value(int b)
{
    if (b < LIN)
        return b + 0.5;
    /* the middle of the bucket */
    return LIN * pow(RATIO, b - LIN + 0.5);
}

void hist_add(hist_t *h, double us)
{
    h->b[bucket_of(us)]++;
    h->n++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

double hist_quantile(const hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (rank < 1)
        rank = 1;
    if (rank >= h->n)
        return h->max_us;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = bucket_value(i);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}

static const char *const ep_names[EP_COUNT] = {
    [EP_TOKEN] = "POST /oauth/token",
    [EP_CSRF] = "GET /csrf",
    [EP_STATUS] = "PUT /drivers/me/status",
    [EP_PING] = "PUT /drivers/me/location",
    [EP_OFFERS] = "GET /offers",
    [EP_ACCEPT] = "POST /offers/{id}/accept",
    [EP_REJECT] = "POST /offers/{id}/reject",
    [EP_PICKUP] = "POST /trips/{id}/pickup",
    [EP_COMPLETE] = "POST /trips/{id}/complete",
    [EP_ESTIMATE] = "POST /fares/estimate",
    [EP_ORDER] = "POST /orders",
    [EP_ORDER_GET] = "GET /orders/{id}",
    [EP_CANCEL] = "POST /orders/{id}/cancel",
    [EP_RATING] = "POST /orders/{id}/rating",
    [EP_TRIPS] = "GET /trips",
    [EP_ORDER_LIST] = "GET /orders",
    [EP_HINT] = "GET /drivers/me/waiting-hint",
};

const char *endpoint_name(endpoint_t e)
{
    return e < EP_COUNT ? ep_names[e] : "?";
}

/* ---- processes ------------------------------------------------------------------------------ */

int procs_find(const char *run_dir, proc_t *out, int max)
{
    DIR *dir = opendir(run_dir);
    struct dirent *e;
    int n = 0;
    if (!dir)
        return 0;
    while ((e = readdir(dir)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0 || len - 4 >= sizeof out->name)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        FILE *f = fopen(path, "r");
        int pid = 0;
        if (!f)
            continue;
        if (fscanf(f, "%d", &pid) == 1 && pid > 0 && kill(pid, 0) == 0) {
            memset(&out[n], 0, sizeof out[n]);
            memcpy(out[n].name, e->d_name, len - 4);
            out[n].pid = pid;
            n++;
        }
        fclose(f);
    }
    closedir(dir);
    return n;
}

static double proc_cpu_s(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" that ends the command name: utime and stime are the 12th and 13th. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void proc_mem(int pid, long *rss, long *hwm)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = atol(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = atol(line + 6);
    }
    fclose(f);
}

void procs_sample(proc_t *p, int n, bool end)
{
    for (int i = 0; i < n; i++) {
        double c = proc_cpu_s(p[i].pid);
        if (end) {
            p[i].cpu1_s = c;
            proc_mem(p[i].pid, &p[i].rss_kb, &p[i].hwm_kb);
        } else {
            p[i].cpu0_s = c;
        }
    }
}

/* ---- the report -------------------------------------------------------------------------------
 */

static json_t *hist_json(const hist_t *h, double scale)
{
    return json_pack("{sI sf sf sf sf sf}", "count", (json_int_t)h->n, "p50",
                     hist_quantile(h, 0.50) * scale, "p90", hist_quantile(h, 0.90) * scale, "p99",
                     hist_quantile(h, 0.99) * scale, "p999", hist_quantile(h, 0.999) * scale, "max",
                     h->max_us * scale);
}

json_t *report_json(const sim_t *s, const proc_t *p, int np, double sim_cpu_s, json_t *audit)
{
    double window_s = (s->measure_to_ms - s->measure_from_ms) / 1000.0;
    json_t *eps = json_array(), *procs = json_array();
    uint64_t errors = 0;
    if (window_s <= 0)
        window_s = 1;
    for (int e = 0; e < EP_COUNT; e++) {
        const ep_stats_t *st = &s->ep[e];
        if (st->lat.n == 0)
            continue;
        json_t *by = json_object(), *row = hist_json(&st->lat, 1e-3);
        uint64_t bad = 0;
        for (int c = 0; c < 600; c++) {
            if (!st->status[c])
                continue;
            char k[8];
            snprintf(k, sizeof k, "%d", c);
            json_object_set_new(by, k, json_integer((json_int_t)st->status[c]));
            if (status_is_error(c))
                bad += st->status[c];
        }
        errors += bad;
        json_object_set_new(row, "endpoint", json_string(endpoint_name((endpoint_t)e)));
        json_object_set_new(row, "rate_per_s", json_real((double)st->lat.n / window_s));
        json_object_set_new(row, "statuses", by);
        json_object_set_new(row, "errors", json_integer((json_int_t)bad));
        json_object_set_new(row, "timeouts", json_integer((json_int_t)st->timeouts));
        json_array_append_new(eps, row);
    }
    for (int i = 0; i < np; i++) {
        /* Gone before the end (killed and restarted under a new pid, e.g. by the fault
         * harness): its figures would be meaningless. */
        if (p[i].cpu0_s < 0 || p[i].cpu1_s < 0) {
            json_array_append_new(
                procs, json_pack("{ss si sb}", "name", p[i].name, "pid", p[i].pid, "exited", 1));
            continue;
        }
        json_array_append_new(procs,
                              json_pack("{ss si sf sf si si}", "name", p[i].name, "pid", p[i].pid,
                                        "cpu_s", p[i].cpu1_s - p[i].cpu0_s, "cpu_share",
                                        (p[i].cpu1_s - p[i].cpu0_s) / window_s, "rss_kb",
                                        (int)p[i].rss_kb, "hwm_kb", (int)p[i].hwm_kb));
    }
    json_array_append_new(procs,
                          json_pack("{ss si sf sf}", "name", "antar-sim", "pid", (int)getpid(),
                                    "cpu_s", sim_cpu_s, "cpu_share", sim_cpu_s / window_s));
    const flow_counts_t *c = &s->c;
    double acked = c->acked ? (double)c->acked : 1;
    json_t *flow = json_pack(
        "{sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sI sf sf sf}",
        "orders_offered", (json_int_t)c->placed, "orders_acked", (json_int_t)c->acked,
        "orders_failed", (json_int_t)c->order_failed, "declined_on_price",
        (json_int_t)c->declined_price, "no_idle_customer", (json_int_t)c->no_customer, "completed",
        (json_int_t)c->completed, "cancelled", (json_int_t)c->cancelled, "cancelled_at_wind_down",
        (json_int_t)c->cancelled_wind_down, "expired", (json_int_t)c->expired, "offers_accepted",
        (json_int_t)c->accepted_offers, "offers_rejected", (json_int_t)c->rejected_offers,
        "offers_lost", (json_int_t)c->lost_offers, "offers_missed", (json_int_t)c->missed_offers,
        "ratings", (json_int_t)c->ratings, "pings", (json_int_t)c->pings, "resumed_trips",
        (json_int_t)c->resumed_trips, "pushed_offers", (json_int_t)c->pushed_offers, "stream_opens",
        (json_int_t)c->stream_opens, "stream_drops", (json_int_t)c->stream_drops, "adopted_orders",
        (json_int_t)c->adopted_orders, "retries", (json_int_t)c->retries, "dead_accounts",
        (json_int_t)c->dead_accounts, "completion_rate", (double)c->completed / acked,
        "cancel_rate", (double)c->cancelled / acked, "unfulfilled_rate",
        (double)c->expired / acked);
    if (flow && s->o.follow_hints > 0) {
        json_object_set_new(flow, "hints_followed", json_integer((json_int_t)c->hints_followed));
        json_object_set_new(flow, "hints_stay", json_integer((json_int_t)c->hints_stay));
        json_object_set_new(flow, "hints_none", json_integer((json_int_t)c->hints_none));
    }
    json_t *times =
        json_pack("{so so so so}", "order_to_first_offer_ms", hist_json(&s->first_offer, 1e-3),
                  "order_to_accepted_ms", hist_json(&s->to_accept, 1e-3), "pickup_wait_ms",
                  hist_json(&s->pickup_wait, 1e-3), "trip_time_ms", hist_json(&s->trip_time, 1e-3));
    json_object_set_new(
        times, "note",
        json_string("from the services' own timestamps (audit), the order's time being the "
                    "intended send of its first POST /orders; real milliseconds (multiply by "
                    "speed for simulated time)"));
    json_t *rep = json_pack(
        "{s{sI si si sf sf sf sf sf sb} sf sI so so so so}", "run", "seed", (json_int_t)s->o.seed,
        "drivers", s->o.drivers, "customers", s->o.customers, "speed", s->o.speed, "orders_per_s",
        s->o.orders_per_s, "ping_s", s->o.ping_s, "duration_s", s->o.duration_s, "start_hour",
        s->o.start_hour, "flat", s->o.flat, "window_s", window_s, "errors", (json_int_t)errors,
        "endpoints", eps, "flow", flow, "times", times, "processes", procs);
    if (audit)
        json_object_set(rep, "audit", audit);
    return rep;
}

static double jnum(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static long long jll(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

void report_print(FILE *f, json_t *rep)
{
    json_t *run = json_object_get(rep, "run"), *row;
    size_t i;
    fprintf(f,
            "\nantar-sim: seed %lld, %lld drivers, %lld customers, %.0f× speed, %.1f orders/s "
            "offered, ping every %.1f s, measured %.0f s\n\n",
            jll(run, "seed"), jll(run, "drivers"), jll(run, "customers"), jnum(run, "speed"),
            jnum(run, "orders_per_s"), jnum(run, "ping_s"), jnum(rep, "window_s"));
    fprintf(f, "%-28s %9s %8s %8s %8s %8s %7s  %s\n", "endpoint", "count", "rate/s", "p50 ms",
            "p99 ms", "p99.9 ms", "errors", "statuses");
    json_array_foreach(json_object_get(rep, "endpoints"), i, row)
    {
        char st[256] = "";
        const char *k;
        json_t *v;
        size_t off = 0;
        json_object_foreach(json_object_get(row, "statuses"), k, v)
        {
            off += (size_t)snprintf(st + off, sizeof st - off, "%s%s:%lld", off ? " " : "",
                                    strcmp(k, "0") == 0 ? "no-answer" : k,
                                    (long long)json_integer_value(v));
            if (off >= sizeof st)
                break;
        }
        fprintf(f, "%-28s %9lld %8.1f %8.2f %8.2f %8.2f %7lld  %s\n",
                json_string_value(json_object_get(row, "endpoint")), jll(row, "count"),
                jnum(row, "rate_per_s"), jnum(row, "p50"), jnum(row, "p99"), jnum(row, "p999"),
                jll(row, "errors"), st);
    }
    json_t *t = json_object_get(rep, "times");
    fprintf(f, "\n%-28s %9s %8s %8s %8s %8s\n", "flow (real ms)", "count", "p50", "p90", "p99",
            "max");
    const char *tn[] = {"order_to_first_offer_ms", "order_to_accepted_ms", "pickup_wait_ms",
                        "trip_time_ms"};
    for (int k = 0; k < 4; k++) {
        json_t *h = json_object_get(t, tn[k]);
        fprintf(f, "%-28s %9lld %8.0f %8.0f %8.0f %8.0f\n", tn[k], jll(h, "count"), jnum(h, "p50"),
                jnum(h, "p90"), jnum(h, "p99"), jnum(h, "max"));
    }
    json_t *fl = json_object_get(rep, "flow");
    fprintf(f,
            "\norders: %lld offered, %lld acknowledged, %lld failed, %lld declined on price; "
            "completed %.1f%%, cancelled %.1f%%, unfulfilled (expired) %.1f%%\n",
            jll(fl, "orders_offered"), jll(fl, "orders_acked"), jll(fl, "orders_failed"),
            jll(fl, "declined_on_price"), 100 * jnum(fl, "completion_rate"),
            100 * jnum(fl, "cancel_rate"), 100 * jnum(fl, "unfulfilled_rate"));
    fprintf(f,
            "offers: %lld accepted, %lld rejected, %lld lost to a race or deadline, %lld "
            "missed; %lld ratings; %lld retries\n",
            jll(fl, "offers_accepted"), jll(fl, "offers_rejected"), jll(fl, "offers_lost"),
            jll(fl, "offers_missed"), jll(fl, "ratings"), jll(fl, "retries"));
    fprintf(f, "\n%-16s %8s %9s %9s %9s\n", "process", "cpu s", "cores", "rss MB", "peak MB");
    json_array_foreach(json_object_get(rep, "processes"), i, row)
    {
        fprintf(f, "%-16s %8.2f %9.2f %9.1f %9.1f\n",
                json_string_value(json_object_get(row, "name")), jnum(row, "cpu_s"),
                jnum(row, "cpu_share"), jnum(row, "rss_kb") / 1024, jnum(row, "hwm_kb") / 1024);
    }
    json_t *a = json_object_get(rep, "audit");
    if (a) {
        json_t *v = json_object_get(a, "violations");
        fprintf(f, "\naudit: %zu violation(s)", json_array_size(v));
        json_t *chk = json_object_get(a, "checked");
        if (chk)
            fprintf(f, " — checked %lld orders, %lld trips, %lld offers, %lld drivers",
                    jll(chk, "orders"), jll(chk, "trips"), jll(chk, "offers"), jll(chk, "drivers"));
        fprintf(f, "\n");
        json_array_foreach(v, i, row)
        {
            if (i >= 50) {
                fprintf(f, "  … %zu more in the JSON report\n", json_array_size(v) - 50);
                break;
            }
            char *txt = json_dumps(row, JSON_COMPACT);
            fprintf(f, "  %s\n", txt ? txt : "?");
            free(txt);
        }
    }
    fprintf(f, "\nerrors: %lld\n", jll(rep, "errors"));
}
