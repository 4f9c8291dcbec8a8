#!/usr/bin/env bash
# tests/fuzz/run.sh — build the libFuzzer harnesses with clang (outside the CMake build) and run
# each for a bounded time over its seed corpus in tests/fuzz/corpus/<name>/.
#
#   tests/fuzz/run.sh                          # build + run every harness for 60 s
#   FUZZ_SECONDS=300 tests/fuzz/run.sh fuzz_jwt
#   FUZZ_OUT=/tmp/f tests/fuzz/run.sh          # where binaries, grown corpora and crash files go
#   FUZZ_BUILD_ONLY=1 tests/fuzz/run.sh        # build, run nothing
#
# Needs clang-14 and libclang-rt-14-dev (Debian 12; scripts/setup.sh installs them), plus the
# -dev packages of the main build. New inputs found go to $FUZZ_OUT/corpus-<name>, never into
# the repository's seed corpus; a crash, a broken invariant (abort), a leak or a timeout leaves
# $FUZZ_OUT/crash-* / leak-* / timeout-* and makes this exit 1. No clang: exit 2, loudly.
# The last line is "fuzz: N passed, N failed" (scripts/test.sh counts it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-/tmp/antar-fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}
all_targets=(fuzz_body fuzz_fields fuzz_path fuzz_cursor fuzz_jwt fuzz_csrf fuzz_quote fuzz_oauth
             fuzz_trace)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

if [ -z "$cc" ] || ! command -v "$cc" >/dev/null; then
    echo "fuzz: clang not found (${cc:-none}): install clang-14 and libclang-rt-14-dev" \
        "(scripts/setup.sh does)" >&2
    echo "fuzz: 0 passed, ${#targets[@]} failed"
    exit 2
fi

mkdir -p "$out/obj"
# The code the harnesses reach, one archive: the linker takes from it only what a harness uses.
# Libraries are instrumented for coverage (fuzzer-no-link) and sanitized like the harnesses.
srcs=(lib/error.c lib/config.c lib/log.c lib/trace.c lib/metrics.c lib/util.c lib/http_body.c
      lib/http_fields.c lib/http_envelope.c lib/http_router.c lib/http_server.c lib/http_page.c
      lib/auth_jwt.c lib/auth_csrf.c lib/auth_token.c lib/httpc.c lib/kv.c
      services/core/quote.c services/core/fare_model.c services/core/oauth_parse.c)
pkgs=(jansson libmicrohttpd libsodium libcurl hiredis librhonabwy gnutls)
common=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror
        -fno-sanitize-recover=undefined -I"$repo/include" -I"$repo/lib" -I"$repo/services/core")
# shellcheck disable=SC2207
pkg_cflags=($(pkg-config --cflags "${pkgs[@]}"))
# shellcheck disable=SC2207
pkg_libs=($(pkg-config --libs "${pkgs[@]}"))

# Rebuild an object when its source, or any header, is newer than it.
newest_hdr=$(find "$repo/include" "$repo/lib" "$repo/services/core" -name '*.h' -printf '%T@ %p\n' |
    sort -n | tail -1 | cut -d' ' -f2)
stale=()
objs=()
for s in "${srcs[@]}"; do
    o="$out/obj/$(echo "$s" | tr '/' '_').o"
    objs+=("$o")
    if [ ! -f "$o" ] || [ "$repo/$s" -nt "$o" ] || [ "$newest_hdr" -nt "$o" ]; then stale+=("$s"); fi
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "== compile ${#stale[@]} source(s) with $cc"
    export cc out repo
    # shellcheck disable=SC2016 # expanded by the inner bash, from the exported variables
    printf '%s\n' "${stale[@]}" | xargs -P "$jobs" -I{} bash -c '
        o="$out/obj/$(echo "{}" | tr "/" "_").o"
        "$cc" "$@" -c "$repo/{}" -o "$o" || { rm -f "$o"; exit 255; }' _ \
        "${common[@]}" -fsanitize=fuzzer-no-link,address,undefined "${pkg_cflags[@]}"
fi
if [ ${#stale[@]} -gt 0 ] || [ ! -f "$out/libfuzzsupport.a" ]; then
    rm -f "$out/libfuzzsupport.a"
    ar rcs "$out/libfuzzsupport.a" "${objs[@]}"
fi

# fuzz_path routes the decoded path through every service's real route table: generated from
# the OpenAPI files, which a contract test keeps equal to the code.
awk 'FNR == 1 { path = "" }
     /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
     /^  [^ ]/ { path = "" }
     path != "" && /^    (get|post|put|patch|delete):[ ]*$/ {
         m = toupper($1); sub(/:$/, "", m); printf "{\"%s\", \"%s\", h_dummy, 0, NULL, 0},\n", m, path }' \
    "$repo"/api/user.yaml "$repo"/api/driver.yaml "$repo"/api/core.yaml | sort -u >"$out/routes.inc.new"
cmp -s "$out/routes.inc.new" "$out/routes.inc" 2>/dev/null || mv "$out/routes.inc.new" "$out/routes.inc"
rm -f "$out/routes.inc.new"

for t in "${targets[@]}"; do
    if [ ! -f "$out/$t" ] || [ "$here/$t.c" -nt "$out/$t" ] || [ "$here/fuzz_common.h" -nt "$out/$t" ] ||
        [ "$out/libfuzzsupport.a" -nt "$out/$t" ]; then
        echo "== build $t"
        "$cc" "${common[@]}" -fsanitize=fuzzer,address,undefined -I"$out" "${pkg_cflags[@]}" \
            "$here/$t.c" "$out/libfuzzsupport.a" -o "$out/$t" "${pkg_libs[@]}" -lpthread -lm
    fi
done
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

passed=0
failed=0
for t in "${targets[@]}"; do
    seeds="$here/corpus/${t#fuzz_}"
    work="$out/corpus-${t#fuzz_}"
    mkdir -p "$work"
    dict=()
    [ -f "$here/${t#fuzz_}.dict" ] && dict=(-dict="$here/${t#fuzz_}.dict")
    before=$(find "$work" -type f | wc -l)
    echo "== run $t for ${seconds}s (seeds: $(find "$seeds" -type f | wc -l), grown corpus: $before)"
    # -rss_limit_mb: ASan + the parsers stay far below it; a leak or a runaway allocation does not.
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$out/$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/$t-" "${dict[@]}" "$work" "$seeds" \
        >"$out/$t.log" 2>&1; then
        passed=$((passed + 1))
        execs=$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$out/$t.log" | grep -oE '[0-9]+$' || echo '?')
        cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/$t.log" | tail -1 || true)
        echo "   ok: $execs runs, $cov, corpus $before -> $(find "$work" -type f | wc -l) files"
    else
        failed=$((failed + 1))
        echo "!! $t FAILED; see $out/$t.log and $out/$t-crash-* / leak-* / timeout-*"
        grep -E 'invariant failed|ERROR: |SUMMARY|runtime error|Test unit written' "$out/$t.log" | head -20 || true
        tail -40 "$out/$t.log"
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
