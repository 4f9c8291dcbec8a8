#!/usr/bin/env bash
# setup.sh — install what Antar needs on Debian 12, and nothing twice.
#
# Checks every package with dpkg-query and only runs apt-get for the missing ones. Installing
# mariadb-server / redis-server / haproxy must not start system daemons: the project runs its
# own instances from scripts/stack.sh, so a policy-rc.d that denies every service start is in
# place for the duration of the install (Debian's documented mechanism, invoke-rc.d honours it).
# Then the npm packages of third_party/ (swagger-ui-dist, an OpenAPI linter) when they are
# missing or older than third_party/package.json. Node and npm come from the machine itself:
# Debian's nodejs/npm packages conflict with them, so they are never apt-installed here.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
    build-essential cmake pkg-config
    libmicrohttpd-dev libjansson-dev libcurl4-gnutls-dev libmariadb-dev libhiredis-dev
    librhonabwy-dev libsodium-dev libgnutls28-dev libcriterion-dev
    mariadb-server mariadb-client redis-server redis-tools haproxy
    runit systemd
    wrk curl jq clang-format clang-14 libclang-rt-14-dev
    python3 python3-pytest python3-requests python3-jsonschema python3-yaml python3-jwt
    python3-cryptography
    libxgboost-dev
)

die() { echo "setup: error: $*" >&2; exit 1; }

missing=()
for p in "${PACKAGES[@]}"; do
    st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [ "$st" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} by hand"
        SUDO="sudo"
    fi
    # Deny service starts during the install (exit 101 = "action forbidden"); only remove the
    # file afterwards if we created it.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        made_policy=1
    fi
    cleanup_policy() { [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"; true; }
    trap cleanup_policy EXIT
    log="$(mktemp /tmp/antar-setup.XXXXXX)"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "apt-get update failed (full log: $log)"
    fi
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "apt-get install failed (full log: $log)"
    fi
    rm -f "$log"
    cleanup_policy
    trap - EXIT
    # Belt and braces: if some package still started its daemon (an init system that ignores
    # policy-rc.d), stop it by its system pid file — never by name.
    for pidf in /run/mysqld/mysqld.pid /run/redis/redis-server.pid /run/haproxy.pid; do
        if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
            echo "setup: stopping system daemon started by the install ($pidf)"
            $SUDO kill "$(cat "$pidf")" 2>/dev/null || true
        fi
    done
fi

for tool in node npm; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH (it is expected to be preinstalled)"
done

# npm packages for the docs UI and the OpenAPI linter (third_party/package.json).
tp="$REPO/third_party"
if [ -f "$tp/package.json" ]; then
    if [ ! -d "$tp/node_modules" ] || [ "$tp/package.json" -nt "$tp/node_modules" ] ||
        { [ -f "$tp/package-lock.json" ] && [ "$tp/package-lock.json" -nt "$tp/node_modules" ]; }; then
        echo "setup: npm install in third_party/"
        log="$(mktemp /tmp/antar-npm.XXXXXX)"
        if ! npm install --prefix "$tp" --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "npm install failed (full log: $log)"
        fi
        rm -f "$log"
        touch "$tp/node_modules"
    fi
fi

echo "setup: ok"
