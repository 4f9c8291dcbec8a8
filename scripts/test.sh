#!/usr/bin/env bash
# test.sh — `make test`: set up, build with ASan+UBSan, start the real stack, run the unit tests
# (CTest) and the integration tests (pytest) against it, stop everything, then fail on any
# sanitizer report. The very last line is the summary: "N passed, N failed[, N skipped]".
#
# Environment: ANTAR_RUN_DIR (default <repo>/.run-test, wiped at start), ANTAR_PORT_OFFSET (0),
# ANTAR_BUILD_DIR (<repo>/build-asan), ANTAR_JOBS (nproc), ANTAR_SKIP_SETUP=1 to skip setup.sh,
# PYTEST_ARGS extra arguments for pytest (e.g. "-k platform"), ANTAR_FUZZ_SECONDS (6) per
# libFuzzer target in the fuzz phase (0 leaves the phase out, and says so in the summary).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run-test}"
case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
export ANTAR_PORT_OFFSET="${ANTAR_PORT_OFFSET:-0}"
BUILD="${ANTAR_BUILD_DIR:-$REPO/build-asan}"
export ANTAR_BIN_DIR="$BUILD/bin"
export ANTAR_API_DIR="$BUILD/api"
export ANTAR_REPO="$REPO"
JOBS="${ANTAR_JOBS:-$(nproc 2>/dev/null || echo 2)}"
RUN="$ANTAR_RUN_DIR"
LOG="$RUN/log"
OFF="$ANTAR_PORT_OFFSET"

# Settings that make dispatch observable within a test's patience, and an edge rate limit the
# suite's many logins from 127.0.0.1 never reach. Callers may override any of them.
export ANTAR_OFFER_TTL_S="${ANTAR_OFFER_TTL_S:-3}"
# The reconciler looks often, and takes over an unanswered accept or pickup 4 s after it was
# asked (more than a call's 3 s timeout), so that its tests see repairs within seconds.
export ANTAR_RECONCILE_MS="${ANTAR_RECONCILE_MS:-500}"
export ANTAR_CONFIRM_GRACE_MS="${ANTAR_CONFIRM_GRACE_MS:-4000}"
export ANTAR_RECONCILE_SWEEP_S="${ANTAR_RECONCILE_SWEEP_S:-10}"
# Core's busy sweep (services/core/sweep.c) looks twice a second and checks a busy driver 10 s
# after they became busy: its tests plant a due driver and see the repair within a second or two.
export ANTAR_BUSY_SWEEP_MS="${ANTAR_BUSY_SWEEP_MS:-500}"
export ANTAR_BUSY_CHECK_S="${ANTAR_BUSY_CHECK_S:-10}"
export ANTAR_DISPATCH_MAX_S="${ANTAR_DISPATCH_MAX_S:-12}"
export ANTAR_DISPATCH_MAX_CANDIDATES="${ANTAR_DISPATCH_MAX_CANDIDATES:-3}"
export ANTAR_PRESENCE_TTL_S="${ANTAR_PRESENCE_TTL_S:-60}"
export ANTAR_EDGE_RATE_LIMIT="${ANTAR_EDGE_RATE_LIMIT:-100000}"
# Circuit breakers back off at most 4 s here (30 s in production), so that a test that brought a
# peer back does not wait out a long cooldown before the circuit closes.
export ANTAR_CB_COOLDOWN_MAX_MS="${ANTAR_CB_COOLDOWN_MAX_MS:-4000}"
# Event-stream heartbeats every 2 s (10 s in production): the push tests see one, and a closed
# stream's slot come back, within seconds.
export ANTAR_EVENTS_HEARTBEAT_MS="${ANTAR_EVENTS_HEARTBEAT_MS:-2000}"

# Sanitizers: reports go to files under the run folder (checked at the end); leaks inside
# system libraries only are suppressed (deploy/lsan.supp), never our own.
export ASAN_OPTIONS="detect_leaks=1:log_path=$LOG/asan:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$REPO/deploy/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOG/ubsan:suppressions=$REPO/deploy/ubsan.supp"

PASSED=0
FAILED=0
SKIPPED=0
PHASES=()
phase() { PHASES+=("$(printf '%-13s %s' "$1:" "$2")"); }
hdr() { echo; echo "==== $*"; }

STACK_UP=0
stack_down() {
    if [ "$STACK_UP" = 1 ]; then
        STACK_UP=0
        "$REPO/scripts/stack.sh" down >"$LOG/stack-down.log" 2>&1 || cat "$LOG/stack-down.log"
    fi
}
trap stack_down EXIT
trap 'echo "test.sh: interrupted" >&2; stack_down; exit 130' INT TERM

# ---- setup ----------------------------------------------------------------------------------
hdr "setup"
if [ "${ANTAR_SKIP_SETUP:-0}" != 1 ]; then
    if ! "$REPO/scripts/setup.sh"; then
        echo "test.sh: setup failed" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
fi

# A fresh run folder per test run: a clean database, and sanitizer logs of this run only.
# Stop whatever a previous, interrupted run left in it first (by its pid files).
"$REPO/scripts/stack.sh" down >/dev/null 2>&1 || true
case "$(basename "$RUN")" in
.run* | run*) rm -rf "$RUN" ;;
*) echo "test.sh: not wiping $RUN (name it .run-something); reusing it" ;;
esac
mkdir -p "$LOG"

# ---- build ----------------------------------------------------------------------------------
hdr "build (ASan+UBSan) in $BUILD"
build_ok=1
# The OpenAPI JSON rule writes into $BUILD/api without creating it.
mkdir -p "$BUILD/api"
if ! cmake --preset asan -B "$BUILD" >"$LOG/cmake.log" 2>&1; then
    cat "$LOG/cmake.log"
    build_ok=0
elif ! cmake --build "$BUILD" -j"$JOBS" -- -k >"$LOG/build.log" 2>&1; then
    # Keep going (-k): whatever did build still gets tested; the failure is counted once.
    grep -E 'error|Error' "$LOG/build.log" | head -n 40
    build_ok=0
fi
if [ "$build_ok" = 1 ]; then
    phase build ok
    echo "build ok"
else
    phase build "FAILED (log: $LOG/build.log)"
    FAILED=$((FAILED + 1))
fi

# ---- stack ----------------------------------------------------------------------------------
hdr "stack up (run dir $RUN, port offset $OFF)"
STACK_UP=1
if "$REPO/scripts/stack.sh" up; then
    phase stack ok
    stack_ok=1
else
    phase stack "FAILED (logs: $LOG)"
    FAILED=$((FAILED + 1))
    stack_ok=0
    # The unit tests still get their real MariaDB and Redis.
    "$REPO/scripts/stack.sh" start mariadb && "$REPO/scripts/stack.sh" start redis
fi
# shellcheck disable=SC1091
[ -f "$RUN/secrets.env" ] && . "$RUN/secrets.env"

# ---- unit tests -----------------------------------------------------------------------------
hdr "unit tests (ctest)"
export ANTAR_TEST_DB_HOST=127.0.0.1
export ANTAR_TEST_DB_PORT=$((3307 + OFF))
export ANTAR_TEST_DB_SOCKET="$RUN/mariadb/mariadb.sock"
export ANTAR_TEST_DB_USER=antar_test
export ANTAR_TEST_DB_PASSWORD="${DB_PASSWORD_TEST:-}"
export ANTAR_TEST_DB_NAME=antar_test
export ANTAR_TEST_REDIS_HOST=127.0.0.1
export ANTAR_TEST_REDIS_PORT=$((6380 + OFF))
ctest_xml="$LOG/ctest.xml"
if [ -f "$BUILD/CTestTestfile.cmake" ]; then
    # The unit tests that use Redis log in as the admin ACL user (no default user there).
    ANTAR_REDIS_USER=antar_admin ANTAR_REDIS_PASSWORD="${REDIS_PASSWORD_ADMIN:-}" \
        ctest --test-dir "$BUILD" --output-on-failure --no-tests=ignore --timeout 300 \
        --output-junit "$ctest_xml" 2>&1 | tee "$LOG/ctest.log" | grep -vE '^\s*$' | tail -n 200
else
    echo "no CTest file (build did not configure)"
fi
read -r c_pass c_fail c_skip < <(/usr/bin/python3 "$REPO/scripts/junit_summary.py" "$ctest_xml")
PASSED=$((PASSED + c_pass)); FAILED=$((FAILED + c_fail)); SKIPPED=$((SKIPPED + c_skip))
phase unit "$c_pass passed, $c_fail failed, $c_skip skipped"

# ---- integration tests ----------------------------------------------------------------------
hdr "integration tests (pytest)"
export ANTAR_EDGE_URL="http://127.0.0.1:$((8080 + OFF))"
export ANTAR_USER_URL="http://127.0.0.1:$((8001 + OFF))"
export ANTAR_DRIVER_URL="http://127.0.0.1:$((8002 + OFF))"
export ANTAR_CORE_URL="http://127.0.0.1:$((8003 + OFF))"
# The services' internal listeners (/internal/... is served there only).
export ANTAR_USER_INTERNAL_URL="http://127.0.0.1:$((9001 + OFF))"
export ANTAR_DRIVER_INTERNAL_URL="http://127.0.0.1:$((9002 + OFF))"
export ANTAR_CORE_INTERNAL_URL="http://127.0.0.1:$((9003 + OFF))"
py_xml="$LOG/pytest.xml"
if [ "$stack_ok" = 1 ]; then
    # shellcheck disable=SC2086
    /usr/bin/python3 -m pytest "$REPO/tests/integration" -q -p no:cacheprovider \
        --junitxml="$py_xml" ${PYTEST_ARGS:-} 2>&1 | tee "$LOG/pytest.log"
    py_rc=${PIPESTATUS[0]}
    read -r i_pass i_fail i_skip < <(/usr/bin/python3 "$REPO/scripts/junit_summary.py" "$py_xml")
    # rc 5 = no tests collected; anything else non-zero with no failure counted is a crash of
    # pytest itself (collection error, bad option) and counts as one failure.
    if [ "$py_rc" -ne 0 ] && [ "$py_rc" -ne 5 ] && [ "$i_fail" -eq 0 ]; then i_fail=1; fi
    phase integration "$i_pass passed, $i_fail failed, $i_skip skipped"
else
    i_pass=0 i_fail=0 i_skip=0
    phase integration "not run (stack did not come up)"
fi
PASSED=$((PASSED + i_pass)); FAILED=$((FAILED + i_fail)); SKIPPED=$((SKIPPED + i_skip))

# ---- browser tests --------------------------------------------------------------------------
# The console (web/) in Debian's chromium, driven by Playwright (playwright-core from web/'s npm
# packages), through the edge: PKCE sign-in, order and accept in two pages, the status arriving
# live, the trace waterfall (tests/browser/). Screenshots of the run go to $LOG/screenshots.
hdr "browser tests (node --test tests/browser, chromium)"
if [ "$stack_ok" = 1 ]; then
    ANTAR_SCREENSHOT_DIR="${ANTAR_SCREENSHOT_DIR:-$LOG/screenshots}" timeout 300 \
        node --test --test-reporter=tap "$REPO/tests/browser/" >"$LOG/browser.log" 2>&1
    b_rc=$?
    grep -E '^(not )?ok |^# (pass|fail|skipped)|Error|assert' "$LOG/browser.log" | head -n 60
    b_pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$LOG/browser.log" | tail -n 1)
    b_fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$LOG/browser.log" | tail -n 1)
    b_skip=$(sed -nE 's/^# skipped ([0-9]+)$/\1/p' "$LOG/browser.log" | tail -n 1)
    b_pass=${b_pass:-0} b_fail=${b_fail:-0} b_skip=${b_skip:-0}
    # No summary, or a non-zero exit with nothing counted as failed (chromium missing, a crash,
    # the 5-minute cap): one failure.
    if [ "$b_rc" -ne 0 ] && [ "$b_fail" -eq 0 ]; then b_fail=1; tail -n 30 "$LOG/browser.log"; fi
    phase browser "$b_pass passed, $b_fail failed, $b_skip skipped (log: $LOG/browser.log)"
else
    b_pass=0 b_fail=0 b_skip=0
    phase browser "not run (stack did not come up)"
fi
PASSED=$((PASSED + b_pass)); FAILED=$((FAILED + b_fail)); SKIPPED=$((SKIPPED + b_skip))

# ---- stop, then look for sanitizer reports --------------------------------------------------
hdr "stack down"
stack_down
"$REPO/scripts/stack.sh" status >/dev/null 2>&1 && echo "test.sh: warning: something still runs"

# ---- fuzzing --------------------------------------------------------------------------------
# Every libFuzzer target (tests/fuzz/) for a few seconds over its seed corpus and the corpus it
# grew in earlier runs ($BUILD/fuzz): each target is one test. No clang is a failure, not a skip:
# setup.sh installs it.
hdr "fuzzing (tests/fuzz/run.sh, ${ANTAR_FUZZ_SECONDS:-6} s per target)"
if [ "${ANTAR_FUZZ_SECONDS:-6}" = 0 ]; then
    phase fuzz "not run (ANTAR_FUZZ_SECONDS=0)"
else
    FUZZ_SECONDS="${ANTAR_FUZZ_SECONDS:-6}" FUZZ_OUT="$BUILD/fuzz" FUZZ_JOBS="$JOBS" \
        "$REPO/tests/fuzz/run.sh" >"$LOG/fuzz.log" 2>&1
    fuzz_rc=$?
    grep -E '^(== run|   ok|!!|invariant failed|fuzz:)|ERROR: |SUMMARY|clang not found' "$LOG/fuzz.log" | head -n 60
    read -r f_pass f_fail < <(sed -nE 's/^fuzz: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' \
        "$LOG/fuzz.log" | tail -n 1)
    if [ -z "${f_pass:-}" ]; then
        # No summary line: the harnesses did not build. One failure, with the compiler's words.
        tail -n 30 "$LOG/fuzz.log"
        f_pass=0 f_fail=1
    elif [ "$fuzz_rc" -ne 0 ] && [ "$f_fail" -eq 0 ]; then
        f_fail=1
    fi
    PASSED=$((PASSED + f_pass)); FAILED=$((FAILED + f_fail))
    phase fuzz "$f_pass passed, $f_fail failed (log: $LOG/fuzz.log)"
fi

hdr "sanitizer reports"
san_files=()
for f in "$LOG"/asan.* "$LOG"/ubsan.*; do [ -e "$f" ] && san_files+=("$f"); done
if [ "${#san_files[@]}" -gt 0 ]; then
    for f in "${san_files[@]}"; do
        echo "---- $f"
        head -n 80 "$f"
    done
    FAILED=$((FAILED + ${#san_files[@]}))
    phase sanitizers "${#san_files[@]} report(s) — FAILED"
else
    echo "none"
    phase sanitizers clean
fi

hdr "summary"
for p in "${PHASES[@]}"; do echo "$p"; done
trap - EXIT
if [ "$SKIPPED" -gt 0 ]; then
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
    echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" -eq 0 ]
