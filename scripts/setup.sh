#!/usr/bin/env bash
# setup.sh — install what Antar needs on Debian 12, and nothing twice.
#
# Checks every package with dpkg-query and only runs apt-get for the missing ones. Installing
# mariadb-server / redis-server / haproxy must not start system daemons: the project runs its
# own instances from scripts/stack.sh, so a policy-rc.d that denies every service start is in
# place for the duration of the install (Debian's documented mechanism, invoke-rc.d honours it).
# Then the npm packages of third_party/ (swagger-ui-dist, an OpenAPI linter) when they are
# missing or older than third_party/package.json.
#
# Node.js: a node already on PATH is kept (a machine may carry a newer one than Debian's, whose
# own npm would conflict with Debian's npm package); only when `node` is missing are Debian's
# nodejs and npm added to the apt list, and when only `npm` is missing, Debian's npm.
#
# ANTAR_SETUP_DRY_RUN=1 prints the decisions and what would be installed, and changes nothing
# (tests/integration/test_setup.py runs it with node hidden from PATH).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
    build-essential cmake pkg-config
    libmicrohttpd-dev libjansson-dev libcurl4-gnutls-dev libmariadb-dev libhiredis-dev
    librhonabwy-dev libsodium-dev libgnutls28-dev libcriterion-dev
    mariadb-server mariadb-client redis-server redis-tools haproxy
    runit systemd
    galera-4 mariadb-backup socat redis-sentinel
    wrk curl jq clang-format clang-14 libclang-rt-14-dev
    python3 python3-pytest python3-requests python3-jsonschema python3-yaml python3-jwt
    python3-cryptography
    yamllint python3-kubernetes
    chromium fonts-dejavu-core
    libxgboost-dev
)

NODE_MIN_MAJOR=18 # @redocly/cli 1.x needs Node 18 or newer; Debian 12 ships 18.20
DRY_RUN="${ANTAR_SETUP_DRY_RUN:-0}"

die() { echo "setup: error: $*" >&2; exit 1; }

node_too_old() {
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    ! [ "$major" -ge "$NODE_MIN_MAJOR" ] 2>/dev/null
}
old_node_msg() {
    echo "node $(node --version 2>/dev/null || echo '?') on PATH ($(command -v node)) is older than" \
        "$NODE_MIN_MAJOR, which third_party/ needs: remove it, or put a newer one first on PATH"
}

if command -v node >/dev/null && node_too_old; then
    die "$(old_node_msg)"
fi
if ! command -v node >/dev/null; then
    echo "setup: node not found on PATH: adding Debian's nodejs and npm"
    PACKAGES+=(nodejs npm)
elif ! command -v npm >/dev/null; then
    echo "setup: npm not found on PATH (node $(node --version 2>/dev/null || echo '?') kept): adding Debian's npm"
    PACKAGES+=(npm)
    npm_only=1
else
    echo "setup: using node $(node --version 2>/dev/null || echo '?') and npm from PATH"
fi

missing=()
for p in "${PACKAGES[@]}"; do
    st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [ "$st" = "installed" ] || missing+=("$p")
done

if [ "$DRY_RUN" = 1 ]; then
    echo "setup: dry run: would install ${#missing[@]} package(s): ${missing[*]}"
    echo "setup: dry run: nothing changed"
    exit 0
fi

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
        [ "${npm_only:-0}" = 1 ] && echo "setup: Debian's npm needs Debian's nodejs; the node on PATH" \
            "($(command -v node)) came from elsewhere: install the npm that came with it, or remove it" >&2
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
    command -v "$tool" >/dev/null || die "$tool still not found on PATH after installing nodejs/npm"
done
node_too_old && die "$(old_node_msg)"

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

# The browser console (web/): leaflet, served by the edge from web/node_modules, and
# playwright-core, which drives Debian's chromium in the browser tests (no browser download).
web="$REPO/web"
if [ -f "$web/package.json" ]; then
    if [ ! -d "$web/node_modules" ] || [ "$web/package.json" -nt "$web/node_modules" ] ||
        { [ -f "$web/package-lock.json" ] && [ "$web/package-lock.json" -nt "$web/node_modules" ]; }; then
        echo "setup: npm install in web/"
        log="$(mktemp /tmp/antar-npm.XXXXXX)"
        if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$web" --no-audit --no-fund \
            --loglevel=error >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "npm install in web/ failed (full log: $log)"
        fi
        rm -f "$log"
        touch "$web/node_modules"
    fi
fi

echo "setup: ok"
