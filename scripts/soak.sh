#!/usr/bin/env bash
# soak.sh — `make soak`: the city at about half its knee for a long time against a running stack
# (`make up`), sampling every process of the stack while it runs, then judging what it saw.
#
#   scripts/soak.sh [--minutes M] [--drivers N] [--orders-per-s R] [--warmup-min W]
#
# Defaults: 10 minutes, 1,000 drivers (≈250 pings/s), 10 orders/s (flat), the first 2 minutes
# counted as warm-up. Every 10 s it writes one line per process with a pid file under the run
# folder (RSS, open descriptors, threads) and one for Redis (keys, used memory) to
# <run>/soak/samples.tsv. At the end it prints a table and writes <run>/soak/report.json.
#
# Pass (exit 0) when: the city saw no 5xx and no unanswered request, and its audit is clean; after
# warm-up and until the city's schedule ends (the settling and the audit after it are sampled,
# not judged), the peak RSS of the last third of the samples is at most max(10 %, 8 MiB) above the
# peak of the first third, and the peak descriptor count at most 8 above (peaks, so that a
# connection pool's breathing is not taken for a leak); no process restarted; Redis's keys
# never exceeded its working-set bound (see below). Exit 1 otherwise, 2 on bad usage.
#
# Redis's working set: per driver a presence hash, an offer hint and the geo member (the geo
# key is one key), per live order a dispatch hash, plus per-customer and per-cell counters
# that expire within minutes, and per order of the last hour a dispatch tombstone (core's
# dispatch:<id>:done, TTL 1 h). The bound checked is 8 × drivers + 4 × customers + 1,000 +
# (orders/s × min(elapsed, 3,600 s) × 1.2) — generous on purpose: it catches keys that are
# never expired (they grow with time, not with the city), not a constant. Start from a fresh
# stack (make down; rm -rf .run; make up): keys of an earlier run count against the bound.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run}"
case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
RUN="$ANTAR_RUN_DIR"
OFF="${ANTAR_PORT_OFFSET:-0}"
REDIS_PORT=$((6380 + OFF))

minutes=10
drivers=1000
rate=10
warm=2
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes="${2:-}"; shift 2 ;;
    --drivers) drivers="${2:-}"; shift 2 ;;
    --orders-per-s) rate="${2:-}"; shift 2 ;;
    --warmup-min) warm="${2:-}"; shift 2 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$minutes" "$drivers" "$warm"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "soak: whole numbers only" >&2; exit 2; }
done
[ "$warm" -lt "$minutes" ] || { echo "soak: warm-up must be shorter than the run" >&2; exit 2; }
[ -s "$RUN/secrets.env" ] || { echo "soak: no stack in $RUN (make up first)" >&2; exit 2; }

OUT="$RUN/soak"
mkdir -p "$OUT"
SAMPLES="$OUT/samples.tsv"
printf 't_s\tname\tpid\trss_kib\tfds\tthreads\n' >"$SAMPLES"

sample() {
    local t="$1" f name pid rss fds thr info keys mem
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        pid=$(cat "$f" 2>/dev/null || true)
        [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/status" ] || continue
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        thr=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$name" "$pid" "${rss:-0}" "$fds" "${thr:-0}" \
            >>"$SAMPLES"
    done
    if command -v redis-cli >/dev/null; then
        # Redis wants the admin user's password (secrets.env), given by environment.
        keys=$(REDISCLI_AUTH="$(sed -n 's/^REDIS_PASSWORD_ADMIN=//p' "$RUN/secrets.env" 2>/dev/null)" \
            redis-cli --no-auth-warning --user antar_admin -p "$REDIS_PORT" DBSIZE 2>/dev/null || echo -1)
        info=$(REDISCLI_AUTH="$(sed -n 's/^REDIS_PASSWORD_ADMIN=//p' "$RUN/secrets.env" 2>/dev/null)" \
            redis-cli --no-auth-warning --user antar_admin -p "$REDIS_PORT" INFO memory 2>/dev/null || true)
        mem=$(echo "$info" | awk -F: '/^used_memory:/ {gsub("\r",""); print int($2/1024)}')
        printf '%s\tredis-db\t-\t%s\t%s\t0\n' "$t" "${mem:-0}" "${keys:-0}" >>"$SAMPLES"
    fi
}

secs=$((minutes * 60))
customers=$((drivers * 2))
echo "soak: $minutes min, $drivers drivers, $rate orders/s; samples in $SAMPLES"
"$REPO/scripts/sim.sh" --drivers "$drivers" --customers "$customers" --duration "$secs" \
    --warmup 20 --flat --orders-per-s "$rate" --ping-sample 0.001 --quiet \
    --out "$OUT/sim" >"$OUT/sim.log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true' INT TERM EXIT
start=$(date +%s)
while kill -0 "$sim_pid" 2>/dev/null; do
    sample $(($(date +%s) - start))
    for _ in $(seq 10); do kill -0 "$sim_pid" 2>/dev/null && sleep 1 || break; done
done
sim_rc=0
wait "$sim_pid" || sim_rc=$?
trap - INT TERM EXIT
sample $(($(date +%s) - start))

# The city runs secs + its 20 s warm-up; after that the simulator settles and audits (the audit
# reads whole tables, a burst of RSS and connections that is not the steady state): samples
# from then on are kept in the file but not judged.
/usr/bin/python3 - "$SAMPLES" "$OUT/sim/report.json" "$OUT/report.json" "$warm" "$drivers" \
    "$customers" "$sim_rc" "$((secs + 20))" "$rate" <<'EOF'
import csv, json, sys
samples, sim_report, out, warm_min, drivers, customers, sim_rc, city_end_s, rate = sys.argv[1:]
city_end_s, rate = int(city_end_s), float(rate)
warm_s, drivers, customers, sim_rc = int(warm_min) * 60, int(drivers), int(customers), int(sim_rc)
rows = list(csv.DictReader(open(samples), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["name"], []).append(r)
fail = []
table = []
key_base = 8 * drivers + 4 * customers + 1000


def key_bound(t_s):
    """The working set at t_s seconds: the city's keys plus an hour of dispatch tombstones."""
    return int(key_base + rate * min(t_s, 3600) * 1.2)


key_bound_end = key_bound(city_end_s)
for name, rs in sorted(by.items()):
    after = [r for r in rs if warm_s <= int(r["t_s"]) <= city_end_s] or rs[-1:]
    first, last = after[0], after[-1]
    if name == "redis-db":
        keys = [int(r["fds"]) for r in rs]
        mem = [int(r["rss_kib"]) for r in rs]
        over = [(int(r["t_s"]), int(r["fds"])) for r in rs if int(r["fds"]) > key_bound(int(r["t_s"]))]
        row = {"name": "redis-db", "keys_after_warmup": int(first["fds"]), "keys_end": keys[-1],
               "keys_max": max(keys), "key_bound": key_bound_end,
               "used_memory_kib_after_warmup": int(first["rss_kib"]),
               "used_memory_kib_end": mem[-1]}
        if over:
            t, k = over[0]
            fail.append(f"redis keys {k} at {t} s > bound {key_bound(t)}")
        table.append(row)
        continue
    pids = {r["pid"] for r in after}
    # Flat means: the last third after warm-up is no higher than the first third (the peak
    # of each, so that a connection pool's breathing is not taken for a leak).
    third = max(1, len(after) // 3)
    head, tail = after[:third], after[-third:]
    rss0 = max(int(r["rss_kib"]) for r in head)
    rss1 = max(int(r["rss_kib"]) for r in tail)
    fd0 = max(int(r["fds"]) for r in head)
    fd1 = max(int(r["fds"]) for r in tail)
    row = {"name": name, "restarted": len(pids) > 1, "rss_kib_after_warmup": rss0,
           "rss_kib_end": rss1, "rss_kib_max": max(int(r["rss_kib"]) for r in after),
           "fds_after_warmup": fd0, "fds_end": fd1, "threads_end": int(last["threads"])}
    table.append(row)
    if len(pids) > 1:
        fail.append(f"{name} restarted during the soak")
        continue
    if rss1 - rss0 > max(rss0 // 10, 8192):
        fail.append(f"{name} RSS grew {rss0} → {rss1} KiB (peak of the first → last third after warm-up)")
    if fd1 - fd0 > 8:
        fail.append(f"{name} descriptors grew {fd0} → {fd1} (peak of the first → last third after warm-up)")
sim = {}
try:
    sim = json.load(open(sim_report))
except (OSError, ValueError):
    fail.append("no simulator report")
fivexx = transport = 0
for ep in sim.get("endpoints") or []:
    for st, n in (ep.get("statuses") or {}).items():
        if str(st).startswith("5"):
            fivexx += int(n)
    transport += int(ep.get("errors") or 0) + int(ep.get("timeouts") or 0)
if fivexx:
    fail.append(f"{fivexx} answers were 5xx")
if transport:
    fail.append(f"{transport} requests got no answer (connection errors, timeouts)")
if sim_rc != 0:
    fail.append(f"the simulator exited {sim_rc} (audit not clean or set-up failed)")
report = {"processes": table, "five_xx": fivexx, "no_answer": transport, "simulator_exit": sim_rc, "failures": fail,
          "warmup_s": warm_s, "city_end_s": city_end_s}
json.dump(report, open(out, "w"), indent=2)
print(f"{'process':<12} {'RSS KiB warm→end (max)':>28} {'fds warm→end':>14} {'threads':>8}")
for r in table:
    if r["name"] == "redis-db":
        print(f"{'redis keys':<12} {r['keys_after_warmup']:>12} → {r['keys_end']:<8} (max {r['keys_max']}, bound {r['key_bound']})"
              f"  used_memory {r['used_memory_kib_after_warmup']} → {r['used_memory_kib_end']} KiB")
        continue
    print(f"{r['name']:<12} {r['rss_kib_after_warmup']:>10} → {r['rss_kib_end']:<8} ({r['rss_kib_max']:>7})"
          f" {r['fds_after_warmup']:>6} → {r['fds_end']:<5} {r['threads_end']:>8}")
print(f"5xx answers: {fivexx}; no answer: {transport}; simulator exit {sim_rc}")
for f in fail:
    print("FAIL:", f)
print("soak:", "clean" if not fail else f"{len(fail)} problem(s)")
sys.exit(1 if fail else 0)
EOF
