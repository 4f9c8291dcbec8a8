#!/usr/bin/env bash
# tests/fuzz/run.sh — build the libFuzzer harnesses with clang (outside the CMake build) and run
# each for a bounded time over the seed corpus in tests/fuzz/corpus/<name>/.
#
#   tests/fuzz/run.sh                 # build + run every harness for 60 s
#   FUZZ_SECONDS=300 tests/fuzz/run.sh fuzz_body
#   FUZZ_OUT=/tmp/f tests/fuzz/run.sh  # where binaries, grown corpora and crash files go
#
# Needs clang-14 and libclang-rt-14-dev (Debian 12), plus the -dev packages of the main build
# (jansson, libmicrohttpd, libsodium). New inputs found go to $FUZZ_OUT/corpus-<name>, never
# into the repository's seed corpus; a crash leaves $FUZZ_OUT/crash-* and makes this exit 1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-/tmp/antar-fuzz}
seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-$(command -v clang-14 || command -v clang)}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_body fuzz_fields)

mkdir -p "$out"
# The toolkit sources the harnesses reach: the HTTP layer and the little of the base it calls.
lib_srcs=(http_body.c http_fields.c http_envelope.c http_router.c http_server.c error.c log.c
          trace.c metrics.c util.c)
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$repo/include" -I"$repo/lib")
# shellcheck disable=SC2207
pkg_cflags=($(pkg-config --cflags jansson libmicrohttpd libsodium))
# shellcheck disable=SC2207
pkg_libs=($(pkg-config --libs jansson libmicrohttpd libsodium))

for t in "${targets[@]}"; do
    srcs=("$here/$t.c")
    for s in "${lib_srcs[@]}"; do srcs+=("$repo/lib/$s"); done
    echo "== build $t"
    "$cc" "${flags[@]}" "${pkg_cflags[@]}" "${srcs[@]}" -o "$out/$t" "${pkg_libs[@]}" -lpthread -lm
done

status=0
for t in "${targets[@]}"; do
    seeds="$here/corpus/${t#fuzz_}"
    work="$out/corpus-${t#fuzz_}"
    mkdir -p "$work"
    dict=()
    [ -f "$here/${t#fuzz_}.dict" ] && dict=(-dict="$here/${t#fuzz_}.dict")
    echo "== run $t for ${seconds}s (seeds: $seeds)"
    # -rss_limit_mb: ASan + MHD stay far below it; a leak or a runaway allocation does not.
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$out/$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/" "${dict[@]}" "$work" "$seeds" \
        >"$out/$t.log" 2>&1; then
        echo "!! $t failed; see $out/$t.log and $out/crash-* / leak-* / timeout-*"
        tail -40 "$out/$t.log"
        status=1
    else
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$out/$t.log" \
            || tail -3 "$out/$t.log"
    fi
done
exit $status
