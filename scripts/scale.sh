#!/usr/bin/env bash
# scale.sh — `make scale`: the city on the scaled-out stack (docs/scale.md), two runs, each on
# a stack of its own that scripts/faults.sh brings up and takes down:
#
#   1. instances  ANTAR_INSTANCES=2: every instance of every service killed with SIGKILL in
#                 turn under load (--strict: a request sent after a kill must not fail);
#                 run folder <repo>/.run-faults-scale
#   2. engines    ANTAR_INSTANCES=2 ANTAR_DB=galera ANTAR_REDIS=sentinel: the Galera node in
#                 use killed, a planned Redis failover (SENTINEL FAILOVER), the Redis master
#                 killed; run folder <repo>/.run-faults-engines
#
#   scripts/scale.sh [instances|engines]…        (default: both)
#
# Each run prints faults.py's table and writes <run folder>/faults/report.json; the exit status
# is 0 only when every run passed. Environment: ANTAR_PORT_OFFSET (the runs use it + 50),
# ANTAR_BIN_DIR, SCALE_DRIVERS (300), SCALE_ORDERS (4 rides/s), SCALE_INSTANCES (2; the engines
# run with 1 isolates the engines' failover from the services' own balancing).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFF=$((${ANTAR_PORT_OFFSET:-0} + 50))
DRIVERS="${SCALE_DRIVERS:-300}"
ORDERS="${SCALE_ORDERS:-4}"
INSTANCES="${SCALE_INSTANCES:-2}"
runs=("$@")
[ "${#runs[@]}" -gt 0 ] || runs=(instances engines)

rc=0
for r in "${runs[@]}"; do
    case "$r" in
    instances)
        echo "== scale: 2 instances per service, each instance killed in turn"
        env ANTAR_RUN_DIR="$REPO/.run-faults-scale" ANTAR_PORT_OFFSET="$OFF" ANTAR_INSTANCES="$INSTANCES" \
            ANTAR_DB=single ANTAR_REDIS=single \
            "$REPO/scripts/faults.sh" --up --strict --drivers "$DRIVERS" --orders-per-s "$ORDERS" \
            --faults kill:user,kill:user-2,kill:driver,kill:driver-2,kill:core,kill:core-2 \
            --gap-s 15 || rc=1
        ;;
    engines)
        echo "== scale: Galera node in use killed, Redis failed over and its master killed"
        # A killed Galera node is ready again when it has rejoined and is synced (crash
        # recovery, then the writesets it missed): ~25 s on 2 busy cores.
        env ANTAR_RUN_DIR="$REPO/.run-faults-engines" ANTAR_PORT_OFFSET="$OFF" ANTAR_INSTANCES="$INSTANCES" \
            ANTAR_DB=galera ANTAR_REDIS=sentinel \
            "$REPO/scripts/faults.sh" --up --drivers "$DRIVERS" --orders-per-s "$ORDERS" \
            --faults kill:db-active,failover:redis,kill:redis-master --gap-s 40 \
            --ready-limit-s 45 || rc=1
        ;;
    *)
        echo "scale.sh: unknown run '$r' (instances engines)" >&2
        exit 2
        ;;
    esac
done
exit "$rc"
