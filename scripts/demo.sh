#!/usr/bin/env bash
# The demo: seeds a handful of drivers around Jakarta, then plays a customer and a driver through
# the whole order flow with the `antar` client, through the HAProxy edge. After each step it
# prints the calls that step caused between the services — caller → callee, route, status, time —
# read from the services' JSON logs by the step's trace id (never written by hand).
#
# Needs a running stack (make up). Environment: ANTAR_BIN_DIR (build/bin), ANTAR_RUN_DIR (.run),
# ANTAR_EDGE_URL (http://127.0.0.1:8080).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${ANTAR_BIN_DIR:-$repo/build/bin}
run=${ANTAR_RUN_DIR:-$repo/.run}
export ANTAR_EDGE_URL=${ANTAR_EDGE_URL:-http://127.0.0.1:$((8080 + ${ANTAR_PORT_OFFSET:-0}))}
export ANTAR_CLI_HOME=$run/cli
mkdir -p "$ANTAR_CLI_HOME"
chmod 700 "$ANTAR_CLI_HOME"
antar_bin=$bin/antar
[ -x "$antar_bin" ] || { echo "demo: $antar_bin not built (make build)" >&2; exit 1; }

bold=$'\e[1m'; dim=$'\e[2m'; green=$'\e[32m'; cyan=$'\e[36m'; reset=$'\e[0m'
if [ ! -t 1 ]; then bold=; dim=; green=; cyan=; reset=; fi

tracefile=$(mktemp)
trap 'rm -f "$tracefile"' EXIT
suffix=$(date +%s)

# antar_step PROFILE ARGS... — run one client command, keep its trace id, print its result.
antar_step() {
    local profile=$1; shift
    "$antar_bin" --trace --profile "$profile" "$@" 2>"$tracefile"
}

last_trace() { sed -n 's/^trace_id=//p' "$tracefile" | tail -n 1; }

# show_calls TRACE_ID — the requests and service-to-service calls recorded under that trace.
show_calls() {
    local tid=$1
    sleep "${2:-0.6}"
    echo "${dim}  calls in trace $tid:${reset}"
    cat "$run"/log/user.log "$run"/log/driver.log "$run"/log/core.log 2>/dev/null |
        jq -R 'fromjson?' | jq -s -r --arg t "$tid" '
          [.[] | select(.trace_id == $t)] as $e
          | ($e | map(select(.event == "call") | .span_id)) as $calls
          | $e[]
          | select(.event == "call"
                   or (.event == "request" and ((.parent_span_id // "") as $p | ($calls | any(.[]; . == $p)) | not)))
          | [(if .event == "call" then "1" else "0" end) + .ts,
             (if .event == "call"
              then "    \(.service)-service → \(.target)  \(.method) \(.path)  → \(.status // .outcome)  (\(.duration_ms) ms)"
              else "    client → edge → \(.service)-service  \(.method) \(.path)  → \(.status)  (\(.duration_ms) ms)"
              end)] | @tsv' | sort | cut -f2-
}

step() { echo; echo "${bold}${cyan}▶ $*${reset}"; }

# ---- seed: five drivers around Jakarta -------------------------------------------------------
step "Seeding drivers around Jakarta"
drivers=(
  "Budi Santoso|motorcycle|B 1234 BDS|-6.1760,106.8265"
  "Agus Wijaya|motorcycle|B 2345 AGW|-6.1900,106.8230"
  "Dewi Lestari|car|B 3456 DWL|-6.1800,106.8300"
  "Joko Susilo|motorcycle|B 4567 JKS|-6.2100,106.8450"
  "Rina Kusuma|car|B 5678 RKS|-6.2300,106.8000"
)
i=0
for d in "${drivers[@]}"; do
    IFS='|' read -r name vt plate point <<<"$d"
    i=$((i + 1))
    email="driver$i.$suffix@antar.test"
    phone="+62812$(printf '%07d' $(( (suffix + i) % 10000000 )))"
    plate="${plate% *} $(printf '%s' "$suffix" | tail -c 3 | tr '0-9' 'A-J')"
    "$antar_bin" --profile "driver$i" signup-driver --name "$name" --email "$email" \
        --phone "$phone" --password "rahasia-$suffix" --vehicle "$vt" --plate "$plate" >/dev/null
    "$antar_bin" --profile "driver$i" login --as driver --username "$email" \
        --password "rahasia-$suffix" >/dev/null
    "$antar_bin" --profile "driver$i" status online >/dev/null
    "$antar_bin" --profile "driver$i" location "$point" >/dev/null
    echo "  $name ($vt, $plate) online at $point"
done

# ---- the customer ----------------------------------------------------------------------------
step "1. Sign-up and login — app → user-service POST /users; app → core POST /oauth/token → user-service"
cemail="sari.$suffix@antar.test"
antar_step customer signup-user --name "Sari Wulandari" --email "$cemail" \
    --phone "+62813$(printf '%07d' $((suffix % 10000000)))" --password "rahasia-$suffix" |
    jq -c '{id, name, email}'
show_calls "$(last_trace)" 0.2
antar_step customer login --username "$cemail" --password "rahasia-$suffix"
show_calls "$(last_trace)" 0.2

step "2. Fare estimate, Monas → Blok M — app → core POST /fares/estimate"
monas="-6.1754,106.8272"; blokm="-6.2443,106.7982"
estimate=$(antar_step customer estimate --from "$monas" --to "$blokm" --vehicle motorcycle)
echo "$estimate" | jq -c '{distance_m, duration_s, price, currency, surge_multiplier}'
show_calls "$(last_trace)" 0.2
quote=$(echo "$estimate" | jq -r '.quote_id // empty')

step "3. Order — app → user-service POST /orders → core (quote, dispatch) → Redis → driver-service (offer)"
order=$(antar_step customer order --from "$monas" --from-address "Monumen Nasional, Gambir" \
    --to "$blokm" --to-address "Blok M Square, Kebayoran Baru" --vehicle motorcycle \
    ${quote:+--quote "$quote"} --idempotency-key "demo-$suffix")
order_trace=$(last_trace)
order_id=$(echo "$order" | jq -r .id)
echo "$order" | jq -c '{id, status, price, vehicle_type}'

# The nearest motorcycle (Budi, a few hundred metres from Monas) should get the offer.
offer_id=
for _ in $(seq 1 40); do
    offer_id=$("$antar_bin" --profile driver1 offers | jq -r --argjson o "$order_id" \
        '.items[]? | select(.order_id == $o) | .id' | head -n 1)
    [ -n "$offer_id" ] && break
    sleep 0.25
done
show_calls "$order_trace" 0.2
[ -n "$offer_id" ] || { echo "demo: no offer reached the nearest driver" >&2; exit 1; }
echo "  ${green}offer $offer_id reached Budi Santoso${reset}"

step "4. Accept — driver app → driver-service → user-service (order accepted) and core (driver busy)"
antar_step driver1 accept "$offer_id" | jq -c '{order_id, status}'
show_calls "$(last_trace)"

step "5. Trip — pickup and complete → user-service status; earnings"
antar_step driver1 pickup "$order_id" | jq -c '{order_id, status}'
show_calls "$(last_trace)" 0.3
antar_step driver1 complete "$order_id" | jq -c '{order_id, status, price, earning}'
show_calls "$(last_trace)"

step "6. The customer's view — user-service GET /orders/{id} → driver-service (driver profile)"
antar_step customer order-get "$order_id" | jq -c '{id, status, price, driver}'
show_calls "$(last_trace)" 0.2

step "7. Rating and history"
antar_step customer rate "$order_id" 5 --comment "Mantap, cepat dan ramah" | jq -c .
show_calls "$(last_trace)"
"$antar_bin" --profile customer orders | jq -c '.items[] | {id, status, price}'
"$antar_bin" --profile driver1 trips | jq -c '.items[] | {order_id, status, earning}'
"$antar_bin" --profile driver1 earnings | jq -c .

for n in 1 2 3 4 5; do "$antar_bin" --profile "driver$n" status offline >/dev/null || true; done
echo
echo "${bold}Demo complete.${reset} Swagger UI: http://127.0.0.1:8001/docs · :8002/docs · :8003/docs"
