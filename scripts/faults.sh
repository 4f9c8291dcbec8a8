#!/usr/bin/env bash
# faults.sh — `make faults`: the city at about half its knee while every service is killed with
# SIGKILL, Redis and MariaDB are killed with SIGKILL, and user-service gets SIGTERM, on a
# schedule; runit brings each back by itself. Prints a per-fault table (time to ready, client
# errors inside each fault window), the errors and slow requests outside every window (must be
# 0) and the audit (must be clean); writes <run dir>/faults/report.json. See scripts/faults.py
# and docs/reliability.md, "Faults".
#
#   scripts/faults.sh [--up [--keep-up]] [faults.py options]     (--help lists them)
#
# --up: build nothing, but bring up a stack of its own in ANTAR_RUN_DIR (default
# <repo>/.run-faults, wiped first) with the binaries of ANTAR_BIN_DIR, and take it down after.
# Without --up it uses the stack already running in ANTAR_RUN_DIR (the integration test does).
# Environment: ANTAR_RUN_DIR, ANTAR_PORT_OFFSET, ANTAR_BIN_DIR, and with --up ANTAR_INSTANCES,
# ANTAR_DB, ANTAR_REDIS (scripts/stack.sh).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
own=0
keep=0
args=()
for a in "$@"; do
    case "$a" in
    --up) own=1 ;;
    # --keep-up: leave the stack --up started running (a test inspects it, then stops it).
    --keep-up) keep=1 ;;
    *) args+=("$a") ;;
    esac
done

if [ "$own" = 1 ]; then
    export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run-faults}"
    case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
    "$REPO/scripts/stack.sh" down >/dev/null 2>&1 || true
    case "$(basename "$ANTAR_RUN_DIR")" in
    .run-faults* | run-faults*) rm -rf "$ANTAR_RUN_DIR" ;;
    esac
    if [ "$keep" = 1 ]; then
        trap '"$REPO/scripts/stack.sh" down >/dev/null 2>&1; exit 130' INT TERM
    else
        trap '"$REPO/scripts/stack.sh" down >/dev/null 2>&1' EXIT
        trap 'exit 130' INT TERM
    fi
    "$REPO/scripts/stack.sh" up || { "$REPO/scripts/stack.sh" down >/dev/null 2>&1; exit 2; }
fi
python3 "$REPO/scripts/faults.py" "${args[@]+"${args[@]}"}"
