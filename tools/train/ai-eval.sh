#!/usr/bin/env bash
# ai-eval.sh — `make ai-eval`: today's rules against core's models (docs/ai.md), in the city.
#
#   1. training days: the city (tools/sim) with ANTAR_AI=off, its events.jsonl kept per day;
#   2. antar-train builds the models from those days into ANTAR_AI_DIR;
#   3. held-out days (other seeds, never trained on): each seed three times on the same stack
#      (core restarted between the arms, nothing else changes): "rules" with ANTAR_AI=off
#      (nearest-first dispatch, fixed-speed ETA, counter surge), "models" with all three models,
#      and "dispatch" with ANTAR_AI=eta,accept (the models' ETA and dispatch, the rule's surge:
#      the forecast surge turns fewer customers away, so only this arm compares the dispatch at
#      the same placed load);
#      Every day starts from empty surge counters (fresh_counters);
#   4. the models' accuracy on the held-out days (antar-train --eval) and the city's outcomes per
#      arm, with 95% confidence intervals over the seeds → <out>/table.md (and stdout).
#
# Needs the build (make build) and brings the stack up if it is not (scripts/stack.sh, with
# ANTAR_PORT_OFFSET / ANTAR_RUN_DIR as usual). Long: about 4 minutes per city day on 2 cores,
# 20 days by default (~80 minutes).
# Environment (defaults in brackets): AI_EVAL_SEEDS [201 202 203 204 205], AI_EVAL_TRAIN
# [101:6:420:2 102:15:300:2 103:6:240:3 104:6:240:2 105:6:240:3 — seed:start hour:seconds:orders
# per s; the last day is the test and the one before validates], AI_EVAL_DRIVERS
# [200], AI_EVAL_ARMS [rules models dispatch], AI_EVAL_RATE [3] orders/s, AI_EVAL_DURATION [180]
# s, AI_EVAL_START [6.5] hour, AI_EVAL_FOLLOW_HINTS [0.5] (the share of drivers who ask where to
# wait when free, in every day and arm: with ANTAR_AI=off the answer is "off" and they roam as
# the others do), AI_EVAL_FRESH [0] (1: run the training days again even if their events are
# kept). AI_EVAL_SEEDS=" " (blank) stops after training.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run}"
case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
export ANTAR_BIN_DIR="${ANTAR_BIN_DIR:-$REPO/build/bin}"
OUT="$ANTAR_RUN_DIR/ai-eval"
export ANTAR_AI_DIR="${ANTAR_AI_DIR:-$ANTAR_RUN_DIR/models}"
export ANTAR_AI_CLOCK_FILE="$ANTAR_RUN_DIR/sim/clock.json"
SEEDS="${AI_EVAL_SEEDS:-201 202 203 204 205}"
ARMS="${AI_EVAL_ARMS:-rules models dispatch}"
TRAIN="${AI_EVAL_TRAIN:-101:6:420:2 102:15:300:2 103:6:240:3 104:6:240:2 105:6:240:3}"
DRIVERS="${AI_EVAL_DRIVERS:-200}"
RATE="${AI_EVAL_RATE:-3}"
DURATION="${AI_EVAL_DURATION:-180}"
START="${AI_EVAL_START:-6.5}"
FOLLOW="${AI_EVAL_FOLLOW_HINTS:-0.5}"
STACK="$REPO/scripts/stack.sh"

die() { echo "ai-eval: error: $*" >&2; exit 2; }
say() { echo "ai-eval: $(date -u +%H:%M:%S) $*"; }

[ -x "$ANTAR_BIN_DIR/antar-train" ] || die "$ANTAR_BIN_DIR/antar-train not found (make build)"
mkdir -p "$OUT" "$ANTAR_AI_DIR"

if [ ! -s "$ANTAR_RUN_DIR/secrets.env" ] || ! "$STACK" status >/dev/null 2>&1; then
    say "bringing the stack up"
    "$STACK" up >"$OUT/stack-up.log" 2>&1 || die "stack up failed (see $OUT/stack-up.log)"
fi

# Restart core with the switch set; the other services are untouched.
core_ai() {
    ANTAR_AI="$1" "$STACK" restart core >"$OUT/core-restart.log" 2>&1 ||
        die "core restart failed (see $OUT/core-restart.log)"
    local port=$((8003 + ${ANTAR_PORT_OFFSET:-0})) i
    for i in $(seq 1 50); do
        curl -fsS -m 2 "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "core did not become ready"
}

# Every day starts from empty surge counters. The counter surge counts distinct customers over
# the last 10 wall minutes, which in a city at 60x is the whole day run before: without this, an
# arm's prices would depend on the arm before it (the first day of a run saw none).
fresh_counters() {
    local port=$((6380 + ${ANTAR_PORT_OFFSET:-0})) pw
    pw="$(set -a && . "$ANTAR_RUN_DIR/secrets.env" && printf '%s' "$REDIS_PASSWORD_ADMIN")"
    REDISCLI_AUTH="$pw" redis-cli --no-auth-warning -p "$port" --user antar_admin --scan --pattern 'demand:*' |
        REDISCLI_AUTH="$pw" xargs -r -n 500 redis-cli --no-auth-warning -p "$port" --user antar_admin DEL >/dev/null ||
        die "could not clear the surge counters"
}

# One city day: name, seed, start hour, seconds, orders per second.
city_day() {
    local name="$1" seed="$2" start="$3" dur="$4" rate="$5"
    fresh_counters
    say "city day $name (seed $seed, from $start h, ${dur} s, $rate orders/s)"
    nice -n 10 "$REPO/scripts/sim.sh" --drivers "$DRIVERS" --seed "$seed" --start-hour "$start" \
        --duration "$dur" --orders-per-s "$rate" --follow-hints "$FOLLOW" --ping-sample 0 --quiet --out "$OUT/$name" \
        >"$OUT/$name.log" 2>&1 || die "the city run $name failed (see $OUT/$name.log)"
}

metrics_of_core() {
    curl -fsS -m 5 "http://127.0.0.1:$((8003 + ${ANTAR_PORT_OFFSET:-0}))/metrics" |
        grep '^antar_ai_' >"$1" || true
}

# 1–2. Training days (rules), then the models.
days=()
for spec in $TRAIN; do
    IFS=: read -r seed start dur rate <<<"$spec"
    d="train-$seed"
    if [ "${AI_EVAL_FRESH:-0}" = 1 ] || [ ! -s "$OUT/$d/events.jsonl" ]; then
        core_ai off
        city_day "$d" "$seed" "$start" "$dur" "$rate"
    fi
    days+=("$OUT/$d/events.jsonl")
done
say "training on ${#days[@]} day(s)"
"$ANTAR_BIN_DIR/antar-train" --out "$ANTAR_AI_DIR" "${days[@]}" >"$OUT/train.json" ||
    die "antar-train failed"
if [ -z "${SEEDS// /}" ]; then
    say "trained (no held-out seeds): $ANTAR_AI_DIR"
    exit 0
fi

# 3. Held-out days, each seed with every arm.
held=()
for seed in $SEEDS; do
    for arm in $ARMS; do
        case "$arm" in
        rules) core_ai off ;;
        models) core_ai on ;;
        dispatch) core_ai eta,accept ;;
        *) die "unknown arm $arm (rules, models, dispatch)" ;;
        esac
        city_day "eval-$seed-$arm" "$seed" "$START" "$DURATION" "$RATE"
        [ "$arm" != rules ] && metrics_of_core "$OUT/eval-$seed-$arm/core-ai-metrics.txt"
    done
done
# Every held-out day of these seeds, arms run earlier included (AI_EVAL_ARMS adds an arm).
for f in "$OUT"/eval-*/events.jsonl; do
    s="${f#"$OUT"/eval-}"
    case " $SEEDS " in *" ${s%%-*} "*) held+=("$f") ;; esac
done
core_ai on

# 4. The models on the held-out days, then the table.
"$ANTAR_BIN_DIR/antar-train" --eval --models "$ANTAR_AI_DIR" "${held[@]}" >"$OUT/heldout.json" ||
    die "antar-train --eval failed"
# shellcheck disable=SC2086
python3 "$REPO/tools/train/ai_table.py" "$OUT" $SEEDS >"$OUT/table.md"
cat "$OUT/table.md"
say "done: $OUT/table.md"
