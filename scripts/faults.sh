#!/usr/bin/env bash
# faults.sh — `make faults`: the city at about half its knee while every service is killed with
# SIGKILL, Redis and MariaDB are killed with SIGKILL, and user-service gets SIGTERM, on a
# schedule; runit brings each back by itself. Prints a per-fault table (time to ready, client
# errors inside each fault window), the errors and slow requests outside every window (must be
# 0) and the audit (must be clean); writes <run dir>/faults/report.json. See scripts/faults.py
# and docs/reliability.md, "Faults".
#
#   scripts/faults.sh [--up] [faults.py options]     (--help lists them)
#
# --up: build nothing, but bring up a stack of its own in ANTAR_RUN_DIR (default
# <repo>/.run-faults, wiped first) with the binaries of ANTAR_BIN_DIR, and take it down after.
# Without --up it uses the stack already running in ANTAR_RUN_DIR (the integration test does).
# Environment: ANTAR_RUN_DIR, ANTAR_PORT_OFFSET, ANTAR_BIN_DIR.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
own=0
args=()
for a in "$@"; do
    if [ "$a" = --up ]; then own=1; else args+=("$a"); fi
done

if [ "$own" = 1 ]; then
    export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run-faults}"
    case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
    "$REPO/scripts/stack.sh" down >/dev/null 2>&1 || true
    case "$(basename "$ANTAR_RUN_DIR")" in
    .run-faults* | run-faults*) rm -rf "$ANTAR_RUN_DIR" ;;
    esac
    trap '"$REPO/scripts/stack.sh" down >/dev/null 2>&1' EXIT
    trap 'exit 130' INT TERM
    "$REPO/scripts/stack.sh" up || exit 2
fi
python3 "$REPO/scripts/faults.py" "${args[@]+"${args[@]}"}"
