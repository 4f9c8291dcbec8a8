#!/usr/bin/env bash
# bench/run.sh — `make bench`: wrk against a running stack (`make up`), loopback only, bounded.
#   GET /health (user-service), POST /fares/estimate (core, user token), GET /orders/{id}
#   (user-service, own order) and a reference Node http server answering the same tiny JSON.
# Each: wrk -t1 -c50 -d10s (ANTAR_BENCH_DURATION to change). Results → bench/results.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFF="${ANTAR_PORT_OFFSET:-0}"
DUR="${ANTAR_BENCH_DURATION:-10s}"
CONN="${ANTAR_BENCH_CONNECTIONS:-50}"
USER_URL="http://127.0.0.1:$((8001 + OFF))"
CORE_URL="http://127.0.0.1:$((8003 + OFF))"
REF_PORT=$((8090 + OFF))
OUT="$REPO/bench/results.md"
TMP="$(mktemp -d /tmp/antar-bench.XXXXXX)"
REF_PID=""
cleanup() {
    [ -n "$REF_PID" ] && kill "$REF_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: wrk is not installed (scripts/setup.sh)" >&2; exit 1; }
if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$USER_URL/health")" != 200 ]; then
    echo "bench: the stack is not up on offset $OFF (run: make up)" >&2
    exit 1
fi

# A fresh customer, a token, a CSRF token and one order to read back.
email="bench-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')@example.com"
pw="bench-password-1"
phone="+62812$(printf '%07d' $(((RANDOM * 32768 + RANDOM) % 10000000)))"
curl -s --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"name\":\"Bench\",\"email\":\"$email\",\"phone\":\"$phone\",\"password\":\"$pw\"}" \
    "$USER_URL/users" >"$TMP/signup.json"
token="$(curl -s --max-time 10 "$CORE_URL/oauth/token" --data-urlencode grant_type=password \
    --data-urlencode "username=$email" --data-urlencode "password=$pw" \
    --data-urlencode client_id=user-app | jq -r '.access_token // empty')"
[ -n "$token" ] || echo "bench: could not sign up and log in; authenticated runs skipped" >&2
csrf="$(curl -s --max-time 10 -H "Authorization: Bearer $token" "$CORE_URL/csrf" |
    jq -r '.result.csrf_token // empty')"
trip='"pickup_lat":-6.2001,"pickup_lng":106.8167,"dropoff_lat":-6.2250,"dropoff_lng":106.8000'
order_id="$(curl -s --max-time 10 -H "Authorization: Bearer $token" -H "X-CSRF-Token: $csrf" \
    -H 'Content-Type: application/json' \
    -d "{$trip,\"pickup_address\":\"Bundaran HI\",\"dropoff_address\":\"Blok M\",\"vehicle_type\":\"motorcycle\"}" \
    "$USER_URL/orders" | jq -r '.result.id // empty')"

node "$REPO/bench/node_ref.js" "$REF_PORT" &
REF_PID=$!
for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$REF_PORT/" && break
    sleep 0.1
done

# One bounded wrk run; prints a Markdown table row.
run() {
    local name="$1" url="$2" script="$3" line
    cat "$REPO/bench/$script" "$REPO/bench/report.lua" >"$TMP/s.lua"
    echo "bench: $name ($DUR, $CONN connections)" >&2
    line="$(ANTAR_BENCH_TOKEN="$token" ANTAR_BENCH_CSRF="$csrf" ANTAR_BENCH_BODY="${BODY:-}" \
        timeout 60 wrk -t1 -c"$CONN" -d"$DUR" --timeout 5s -s "$TMP/s.lua" "$url" |
        grep '^ANTAR_RESULT' || true)"
    if [ -z "$line" ]; then
        printf '| %s | failed | | | | |\n' "$name"
        return
    fi
    # shellcheck disable=SC2086
    local $(echo "${line#ANTAR_RESULT }")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50_ms" "$p99_ms" "$requests" "$non2xx"
}

{
    echo "# Benchmarks"
    echo
    echo "$(date -u +%FT%TZ), $(nproc) CPUs, wrk -t1 -c$CONN -d$DUR on loopback; servers not pinned;"
    echo "against whichever build the running stack uses (\`make up\`: RelWithDebInfo). Regenerate: \`make bench\`."
    echo
    echo "| endpoint | req/s | p50 ms | p99 ms | requests | non-2xx |"
    echo "|---|---:|---:|---:|---:|---:|"
    BODY="" run "GET /health (user-service)" "$USER_URL/health" get_auth.lua
    if [ -n "$token" ]; then
        BODY="{$trip,\"vehicle_type\":\"motorcycle\"}" \
            run "POST /fares/estimate (core, user token)" "$CORE_URL/fares/estimate" post_json.lua
    else
        echo "| POST /fares/estimate | not yet (no token) | | | | |"
    fi
    if [ -n "$order_id" ]; then
        BODY="" run "GET /orders/{id} (user-service, own order)" "$USER_URL/orders/$order_id" get_auth.lua
    else
        echo "| GET /orders/{id} | not yet (could not place an order) | | | | |"
    fi
    BODY="" run "reference: Node http, same tiny JSON" "http://127.0.0.1:$REF_PORT/" get_auth.lua
    echo
    echo "Notes: GET /health is not free — it pings MariaDB and Redis on every call, which the Node"
    echo "reference does not. GET /orders/{id} adds the driver's profile from driver-service once an"
    echo "order is accepted; the order measured here is still \`searching\` (one SELECT plus the JWT"
    echo "check). wrk and the servers share the same CPUs; numbers from a busy machine are only"
    echo "comparable within one run."
} >"$TMP/results.md"
mv "$TMP/results.md" "$OUT"
cat "$OUT"
