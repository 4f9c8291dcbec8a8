#!/usr/bin/env bash
# run.sh — `make run`: set up, optimised build, start the stack, run the demo, then keep running
# until Ctrl-C; the stack is always stopped on the way out (Ctrl-C, an error, or the end).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run}"
export ANTAR_PORT_OFFSET="${ANTAR_PORT_OFFSET:-0}"
BUILD="${ANTAR_BUILD_DIR:-$REPO/build}"
export ANTAR_BIN_DIR="${ANTAR_BIN_DIR:-$BUILD/bin}"
export ANTAR_API_DIR="${ANTAR_API_DIR:-$BUILD/api}"
export ANTAR_REPO="$REPO"
OFF="$ANTAR_PORT_OFFSET"
export ANTAR_EDGE_URL="http://127.0.0.1:$((8080 + OFF))"
export ANTAR_USER_URL="http://127.0.0.1:$((8001 + OFF))"
export ANTAR_DRIVER_URL="http://127.0.0.1:$((8002 + OFF))"
export ANTAR_CORE_URL="http://127.0.0.1:$((8003 + OFF))"
# The services' internal listeners (/internal/... is served there only).
export ANTAR_USER_INTERNAL_URL="http://127.0.0.1:$((9001 + OFF))"
export ANTAR_DRIVER_INTERNAL_URL="http://127.0.0.1:$((9002 + OFF))"
export ANTAR_CORE_INTERNAL_URL="http://127.0.0.1:$((9003 + OFF))"

stopping=0
SIM_PID=""
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    trap '' INT TERM # a second Ctrl-C must not cut the shutdown short
    echo
    if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
        echo "run: stopping the city"
        kill -TERM "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
    echo "run: stopping the stack"
    # In its own session: the terminal's next Ctrl-C reaches our process group, not this.
    setsid -w "$REPO/scripts/stack.sh" down || true
}
trap stop_all EXIT
trap 'trap "" INT TERM; exit 130' INT TERM

"$REPO/scripts/setup.sh"
# RelWithDebInfo: optimised (-O2, NDEBUG) with symbols, so a crash report is readable.
echo "run: building (RelWithDebInfo) in $BUILD"
mkdir -p "$BUILD/api" "$ANTAR_RUN_DIR/log" # the OpenAPI JSON rule does not create its folder
blog="$ANTAR_RUN_DIR/log/build.log"
if ! { (cd "$REPO" && cmake --preset release -B "$BUILD") &&
    cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)"; } >"$blog" 2>&1; then
    grep -E 'error|Error' "$blog" | head -n 30
    echo "run: build failed (full log: $blog)" >&2
    exit 1
fi
"$REPO/scripts/stack.sh" up

if [ -x "$REPO/scripts/demo.sh" ]; then
    echo "run: demo"
    "$REPO/scripts/demo.sh" || echo "run: the demo failed (exit $?); the stack keeps running"
elif [ -f "$REPO/scripts/demo.sh" ]; then
    bash "$REPO/scripts/demo.sh" || echo "run: the demo failed (exit $?); the stack keeps running"
fi

# A small city in the background (tools/sim), so that the stack is alive while someone explores
# it: 50 drivers moving and pinging around Jakarta, a ride request every few seconds.
if [ "${ANTAR_RUN_CITY:-1}" = 1 ]; then
    setsid "$REPO/scripts/sim.sh" --drivers 50 --customers 100 --orders-per-s 0.3 \
        --duration 86400 --no-audit --quiet --ping-sample 0.1 \
        >"$ANTAR_RUN_DIR/log/sim.log" 2>&1 </dev/null &
    SIM_PID=$!
    echo "run: a small city runs in the background (50 drivers; log: $ANTAR_RUN_DIR/log/sim.log)"
fi

# The browser console (docs/console.md): its operator account, made once per run folder.
console_login=""
if op="$("$REPO/scripts/console-operator.sh" 2>"$ANTAR_RUN_DIR/log/console-operator.log")"; then
    console_login="sign in to the City view as $(cut -f1 <<<"$op") (password in $ANTAR_RUN_DIR/console-operator)"
fi

echo
echo "run: Antar is up — edge $ANTAR_EDGE_URL (docs: $ANTAR_USER_URL/docs …); Ctrl-C stops everything"
echo "run: the console: $ANTAR_EDGE_URL/console/ — the live city${console_login:+; $console_login}"
while true; do sleep 1; done
