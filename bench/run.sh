#!/usr/bin/env bash
# bench/run.sh — `make bench`: side-by-side wrk runs on loopback, bounded, written to
# bench/results.md (generated tables, then the hand-written analysis in bench/notes.md).
#
#  (a) a trivial JSON route: the toolkit's server (bench/tiny.c, built here against the build's
#      static libraries) vs Node's http module (bench/node_ref.js), "bare" and doing the same
#      per-request work (ids, headers, a JSON log line);
#  (b) real work: POST /fares/estimate on core-service vs bench/node_fares.js doing the same
#      work on the same Redis (needs the stack: `make up`);
#  (c) the stack's other endpoints: GET /nope (404), GET /health, GET /orders/{id};
#  (d) the location ping PUT /drivers/me/location (driver token + CSRF), direct on driver-service
#      and through the edge, with the CPU each process of the stack spent per ping.
#
# Every run: the server under test pinned to CPU 1 and wrk to CPU 0 (taskset; as STACK.md
# measured), one unrecorded 1 s warm-up, then wrk -t1 -c$CONN -d$DUR, RUNS runs, the median run by req/s reported with its p50
# and p99, and the server's RSS (VmRSS, and the peak VmHWM) read from /proc after the runs.
# Stack services are pinned only for their own rows and given all CPUs back afterwards.
#
# Environment: ANTAR_PORT_OFFSET (0), ANTAR_RUN_DIR (<repo>/.run: the stack's secrets and
# pids), ANTAR_BUILD_DIR (<repo>/build: for bench/tiny.c), ANTAR_BENCH_DURATION (10s),
# ANTAR_BENCH_CONNECTIONS (50), ANTAR_BENCH_RUNS (3), ANTAR_BENCH_OUT (bench/results.md),
# ANTAR_BENCH_ONLY_PING=1 (section (d) alone).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFF="${ANTAR_PORT_OFFSET:-0}"
RUN="${ANTAR_RUN_DIR:-$REPO/.run}"
BUILD="${ANTAR_BUILD_DIR:-$REPO/build}"
DUR="${ANTAR_BENCH_DURATION:-10s}"
CONN="${ANTAR_BENCH_CONNECTIONS:-50}"
RUNS="${ANTAR_BENCH_RUNS:-3}"
OUT="${ANTAR_BENCH_OUT:-$REPO/bench/results.md}"
USER_URL="http://127.0.0.1:$((8001 + OFF))"
CORE_URL="http://127.0.0.1:$((8003 + OFF))"
DRIVER_URL="http://127.0.0.1:$((8002 + OFF))"
EDGE_URL="http://127.0.0.1:$((8080 + OFF))"
TINY_PORT=$((8091 + OFF))
NODE_PORT=$((8092 + OFF))
NODE_FARES_PORT=$((8093 + OFF))
TMP="$(mktemp -d /tmp/antar-bench.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: wrk is not installed (scripts/setup.sh)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: node is not installed (scripts/setup.sh)" >&2; exit 1; }
NCPU="$(nproc)"
if [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    SRV_CPU=1 WRK_PIN=(taskset -c 0) PINNED="server on CPU 1, wrk on CPU 0"
else
    SRV_CPU="" WRK_PIN=() PINNED="not pinned (fewer than 2 CPUs or no taskset)"
fi
pin() { if [ -n "$SRV_CPU" ]; then taskset -a -p -c "$SRV_CPU" "$1" >/dev/null 2>&1 || true; fi; }
unpin() { if [ -n "$SRV_CPU" ]; then taskset -a -p -c "0-$((NCPU - 1))" "$1" >/dev/null 2>&1 || true; fi; }
rss() { # "VmRSS / VmHWM" in MiB
    awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%.1f / %.1f", r / 1024, h / 1024}' \
        "/proc/$1/status" 2>/dev/null || echo "?"
}
wait_http() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# One row: RUNS bounded wrk runs against url with the server pid pinned; prints a table row.
row() {
    local name="$1" url="$2" script="$3" pid="$4" lines="" line med
    cat "$REPO/bench/$script" "$REPO/bench/report.lua" >"$TMP/s.lua"
    pin "$pid"
    # An unrecorded second first: Node's JIT (and our caches) warm up before anything counts.
    ANTAR_BENCH_TOKEN="${token:-}" ANTAR_BENCH_CSRF="${csrf:-}" ANTAR_BENCH_BODY="${BODY:-}" \
        timeout 30 "${WRK_PIN[@]}" wrk -t1 -c"$CONN" -d1s --timeout 5s -s "$TMP/s.lua" "$url" \
        >/dev/null 2>&1 || true
    for i in $(seq 1 "$RUNS"); do
        echo "bench: $name run $i/$RUNS ($DUR, $CONN connections)" >&2
        line="$(ANTAR_BENCH_TOKEN="${token:-}" ANTAR_BENCH_CSRF="${csrf:-}" ANTAR_BENCH_BODY="${BODY:-}" \
            timeout 60 "${WRK_PIN[@]}" wrk -t1 -c"$CONN" -d"$DUR" --timeout 5s -s "$TMP/s.lua" "$url" |
            grep '^ANTAR_RESULT' || true)"
        if [ -n "$line" ]; then lines+="${line#ANTAR_RESULT }"$'\n'; fi
    done
    unpin "$pid"
    if [ -z "$lines" ]; then
        printf '| %s | failed | | | | | |\n' "$name"
        return
    fi
    # The median run by req/s (the middle line once sorted; the upper middle for an even count).
    med="$(printf '%s' "$lines" | sed 's/^rps=//' | sort -n | awk '{a[NR] = $0} END {print a[int(NR / 2) + 1]}')"
    local rps p50_ms p99_ms non2xx errors all
    # shellcheck disable=SC2086
    eval "$(echo "rps=$med" | tr ' ' '\n' | grep -E '^(rps|p50_ms|p99_ms|non2xx|errors)=[0-9.]+$')"
    all="$(printf '%s' "$lines" | sed 's/^rps=\([0-9]*\).*/\1/' | paste -sd/ -)"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50_ms" "$p99_ms" \
        "$(rss "$pid")" "$all" "$((non2xx + errors))"
}
header() {
    echo "| server | req/s (median) | p50 ms | p99 ms | RSS MiB now / peak | req/s of each run | non-2xx+errors |"
    echo "|---|---:|---:|---:|---:|---|---:|"
}

# ---- (a) trivial route ----------------------------------------------------------------------
tiny_row() {
    local threads="$1" pid
    ANTAR_PORT="$TINY_PORT" ANTAR_THREADS="$threads" ANTAR_API_FILE=/nonexistent \
        "$TMP/antar-tiny" >"$TMP/tiny.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if wait_http "http://127.0.0.1:$TINY_PORT/ping"; then
        BODY="" row "antar (bench/tiny.c), $threads threads" "http://127.0.0.1:$TINY_PORT/ping" \
            get_auth.lua "$pid"
    else
        echo "| antar (bench/tiny.c), $threads threads | did not start | | | | | |"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
node_row() {
    local mode="$1" pid
    node "$REPO/bench/node_ref.js" "$NODE_PORT" "$mode" >"$TMP/node.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if wait_http "http://127.0.0.1:$NODE_PORT/ping"; then
        BODY="" row "Node $(node --version) http, $mode" "http://127.0.0.1:$NODE_PORT/ping" get_auth.lua "$pid"
    else
        echo "| Node http, $mode | did not start | | | | | |"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

section_a() {
    echo "## (a) Trivial JSON route: GET /ping → {\"status\":200,\"result\":{\"status\":\"ok\"},\"error\":null}"
    echo
    local libs=("$BUILD/libantar_http.a" "$BUILD/libantar_base.a")
    # shellcheck disable=SC2046
    if [ -f "${libs[0]}" ] && [ -f "${libs[1]}" ] &&
        cc -O2 -std=c11 -D_GNU_SOURCE -I"$REPO/include" "$REPO/bench/tiny.c" -o "$TMP/antar-tiny" \
            "${libs[@]}" $(pkg-config --cflags --libs jansson libmicrohttpd libsodium) -lpthread -lm \
            2>"$TMP/cc.log"; then
        header
        tiny_row 8
        tiny_row 2
    else
        echo "bench/tiny.c not built (no static libraries in $BUILD: run \`make build\`)."
        head -n 5 "$TMP/cc.log" 2>/dev/null
        echo
        header
    fi
    node_row bare
    node_row same
    echo
    echo "8 threads is the services' default (ANTAR_THREADS); logs go to a file under $TMP, as the"
    echo "services' go to .run/log. Node \"same\" adds what our server does on every request: random"
    echo "request/trace ids, the same response headers and a JSON log line to a file."
    echo
}

# ---- (b) + (c) against the stack -------------------------------------------------------------
stack_sections() {
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$USER_URL/health")" != 200 ]; then
        echo "## (b) POST /fares/estimate and (c) the stack"
        echo
        echo "Not run: the stack is not up on offset $OFF (\`make up\`)."
        return
    fi
    local user_pid core_pid
    user_pid="$(cat "$RUN/user.pid" 2>/dev/null || true)"
    core_pid="$(cat "$RUN/core.pid" 2>/dev/null || true)"
    # A fresh customer, a token, a CSRF token and one order to read back.
    local email pw phone trip order_id
    email="bench-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')@example.com"
    pw="bench-password-1"
    phone="+62812$(printf '%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))"
    curl -s --max-time 10 -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"phone\":\"$phone\",\"password\":\"$pw\"}" \
        "$USER_URL/users" >/dev/null
    token="$(curl -s --max-time 10 "$CORE_URL/oauth/token" --data-urlencode grant_type=password \
        --data-urlencode "username=$email" --data-urlencode "password=$pw" \
        --data-urlencode client_id=user-app | jq -r '.access_token // empty')"
    csrf="$(curl -s --max-time 10 -H "Authorization: Bearer $token" "$CORE_URL/csrf" |
        jq -r '.result.csrf_token // empty')"
    trip='"pickup_lat":-6.2001,"pickup_lng":106.8167,"dropoff_lat":-6.2250,"dropoff_lng":106.8000'
    order_id="$(curl -s --max-time 10 -H "Authorization: Bearer $token" -H "X-CSRF-Token: $csrf" \
        -H 'Content-Type: application/json' \
        -d "{$trip,\"pickup_address\":\"Bundaran HI\",\"dropoff_address\":\"Blok M\",\"vehicle_type\":\"motorcycle\"}" \
        "$USER_URL/orders" | jq -r '.result.id // empty')"

    echo "## (b) POST /fares/estimate (user token + CSRF, 2 Redis round trips each)"
    echo
    header
    if [ -z "$token" ] || [ -z "$csrf" ]; then
        echo "| core-service | not run (could not sign up and log in) | | | | | |"
    else
        BODY="{$trip,\"vehicle_type\":\"motorcycle\"}" \
            row "antar core-service (8 threads)" "$CORE_URL/fares/estimate" post_json.lua "$core_pid"
        local csrf_key="" npid
        # shellcheck disable=SC1091
        [ -f "$RUN/secrets.env" ] && csrf_key="$(. "$RUN/secrets.env" && echo "${CSRF_KEY:-}")"
        ANTAR_REDIS_PORT=$((6380 + OFF)) ANTAR_CORE_URL="$CORE_URL" ANTAR_CSRF_KEY="$csrf_key" \
            ANTAR_ISSUER="http://127.0.0.1:$((8080 + OFF))" \
            node "$REPO/bench/node_fares.js" "$NODE_FARES_PORT" >"$TMP/node-fares.log" 2>&1 &
        npid=$!
        PIDS+=("$npid")
        if wait_http "http://127.0.0.1:$NODE_FARES_PORT/"; then
            BODY="{$trip,\"vehicle_type\":\"motorcycle\"}" row "Node $(node --version) (bench/node_fares.js)" \
                "http://127.0.0.1:$NODE_FARES_PORT/fares/estimate" post_json.lua "$npid"
        else
            echo "| Node (bench/node_fares.js) | did not start: $(head -c 200 "$TMP/node-fares.log") | | | | | |"
        fi
        kill "$npid" 2>/dev/null || true
        wait "$npid" 2>/dev/null || true
    fi
    echo
    echo "Redis (shared by both) is not pinned and runs wherever the scheduler puts it."
    echo
    echo "## (c) Other endpoints of the stack (server pinned the same way)"
    echo
    header
    BODY="" row "user-service GET /nope (404 envelope)" "$USER_URL/nope" get_auth.lua "$user_pid"
    BODY="" row "user-service GET /health (pings MariaDB + Redis)" "$USER_URL/health" get_auth.lua "$user_pid"
    if [ -n "$order_id" ]; then
        BODY="" row "user-service GET /orders/{id} (JWT + one SELECT)" "$USER_URL/orders/$order_id" \
            get_auth.lua "$user_pid"
    else
        echo "| GET /orders/{id} | not run (could not place an order) | | | | | |"
    fi
    echo
}

# ---- (d) the location ping ---------------------------------------------------------------------
# CPU seconds (utime + stime) of a pid, from /proc.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One ping row: like row(), plus µs of CPU per request of every process of the stack over the
# recorded runs (driver-service, core, Redis, MariaDB, HAProxy). Server pinned as row() does.
ping_row() {
    local name="$1" url="$2" pid="$3" lines="" line med comps=(driver core redis mariadb haproxy)
    local -A before after pids
    for c in "${comps[@]}"; do pids[$c]="$(cat "$RUN/$c.pid" 2>/dev/null || echo 0)"; done
    cat "$REPO/bench/post_json.lua" "$REPO/bench/report.lua" >"$TMP/s.lua"
    pin "$pid"
    ANTAR_BENCH_METHOD=PUT ANTAR_BENCH_TOKEN="$dtoken" ANTAR_BENCH_CSRF="$dcsrf" ANTAR_BENCH_BODY="$BODY" \
        timeout 30 "${WRK_PIN[@]}" wrk -t1 -c"$CONN" -d1s --timeout 5s -s "$TMP/s.lua" "$url" \
        >/dev/null 2>&1 || true
    for c in "${comps[@]}"; do before[$c]="$(cpu_ticks "${pids[$c]}")"; done
    local total=0
    for i in $(seq 1 "$RUNS"); do
        echo "bench: $name run $i/$RUNS ($DUR, $CONN connections)" >&2
        line="$(ANTAR_BENCH_METHOD=PUT ANTAR_BENCH_TOKEN="$dtoken" ANTAR_BENCH_CSRF="$dcsrf" ANTAR_BENCH_BODY="$BODY" \
            timeout 60 "${WRK_PIN[@]}" wrk -t1 -c"$CONN" -d"$DUR" --timeout 5s -s "$TMP/s.lua" "$url" |
            grep '^ANTAR_RESULT' || true)"
        if [ -n "$line" ]; then
            lines+="${line#ANTAR_RESULT }"$'\n'
            total=$((total + $(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')))
        fi
    done
    for c in "${comps[@]}"; do after[$c]="$(cpu_ticks "${pids[$c]}")"; done
    unpin "$pid"
    if [ -z "$lines" ] || [ "$total" -eq 0 ]; then
        printf '| %s | failed | | | | | | | | |\n' "$name"
        return
    fi
    med="$(printf '%s' "$lines" | sed 's/^rps=//' | sort -n | awk '{a[NR] = $0} END {print a[int(NR / 2) + 1]}')"
    local rps p50_ms p99_ms non2xx errors cpus="" sum=0 us
    # shellcheck disable=SC2086
    eval "$(echo "rps=$med" | tr ' ' '\n' | grep -E '^(rps|p50_ms|p99_ms|non2xx|errors)=[0-9.]+$')"
    for c in "${comps[@]}"; do
        us="$(awk -v d="$((after[$c] - before[$c]))" -v t="$(getconf CLK_TCK)" -v r="$total" \
            'BEGIN {printf "%.1f", d / t * 1e6 / r}')"
        cpus+="$us | "
        sum="$(awk -v a="$sum" -v b="$us" 'BEGIN {printf "%.1f", a + b}')"
    done
    printf '| %s | %s | %s | %s | %s%s | %s |\n' "$name" "$rps" "$p50_ms" "$p99_ms" "$cpus" "$sum" \
        "$((non2xx + errors))"
}

ping_section() {
    local driver_pid email phone plate
    driver_pid="$(cat "$RUN/driver.pid" 2>/dev/null || true)"
    echo "## (d) PUT /drivers/me/location (driver token + CSRF; the location ping)"
    echo
    email="bench-ping-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')@example.com"
    phone="+62813$(printf '%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))"
    local letters=ABCDEFGHIJKLMNOPQRSTUVWXYZ
    plate="B $((RANDOM % 9000 + 1000)) ${letters:$((RANDOM % 26)):1}${letters:$((RANDOM % 26)):1}"
    curl -s --max-time 10 -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"phone\":\"$phone\",\"password\":\"bench-password-1\",\"vehicle_type\":\"motorcycle\",\"plate_number\":\"$plate\"}" \
        "$DRIVER_URL/drivers" >/dev/null
    dtoken="$(curl -s --max-time 10 "$CORE_URL/oauth/token" --data-urlencode grant_type=password \
        --data-urlencode "username=$email" --data-urlencode password=bench-password-1 \
        --data-urlencode client_id=driver-app | jq -r '.access_token // empty')"
    dcsrf="$(curl -s --max-time 10 -H "Authorization: Bearer $dtoken" "$CORE_URL/csrf" |
        jq -r '.result.csrf_token // empty')"
    curl -s --max-time 10 -X PUT -H "Authorization: Bearer $dtoken" -H "X-CSRF-Token: $dcsrf" \
        -H 'Content-Type: application/json' -d '{"status":"online"}' \
        "$DRIVER_URL/drivers/me/status" >/dev/null
    echo "| path | req/s (median) | p50 ms | p99 ms | driver µs/req | core | Redis | MariaDB | HAProxy | all | non-2xx+errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if [ -z "$dtoken" ] || [ -z "$dcsrf" ]; then
        echo "| PUT /drivers/me/location | not run (could not sign up and log in a driver) | | | | | | | | | |"
    else
        BODY='{"lat":-6.1754,"lng":106.8272}'
        ping_row "direct, driver-service (8 threads)" "$DRIVER_URL/drivers/me/location" "$driver_pid"
        ping_row "through the edge (HAProxy)" "$EDGE_URL/drivers/me/location" "$driver_pid"
    fi
    echo
    echo "CPU is utime + stime from /proc over all recorded runs, divided by the requests they"
    echo "answered; it includes the background work the pings cause (driver-service's batches to"
    echo "core, core's Lua batch in Redis, the batched UPDATEs). HAProxy, Redis and MariaDB are"
    echo "not pinned. One driver pings over and over: in the city 20,000 drivers ping every 4 s,"
    echo "so each batch carries more distinct drivers (see bench/notes.md)."
    echo
}

{
    echo "# Benchmarks"
    echo
    echo "Generated by \`make bench\` (bench/run.sh) on $(date -u +%FT%TZ): $NCPU CPUs"
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before"
    echo "the runs $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONN -d$DUR, $RUNS runs per row, median"
    echo "by req/s; $PINNED. Binaries: the running stack's (\`make up\`: RelWithDebInfo) and"
    echo "$BUILD for bench/tiny.c. Loopback only."
    echo
    if [ "${ANTAR_BENCH_ONLY_PING:-0}" != 1 ]; then
        section_a
        stack_sections
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$DRIVER_URL/health")" = 200 ]; then
        ping_section
    fi
    if [ -f "$REPO/bench/notes.md" ]; then
        echo
        cat "$REPO/bench/notes.md"
    fi
} >"$TMP/results.md"
mv "$TMP/results.md" "$OUT"
cat "$OUT"
