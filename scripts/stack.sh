#!/usr/bin/env bash
# stack.sh — start and stop the real Antar stack as ordinary processes under one run folder.
#
#   scripts/stack.sh up | down | status
#   scripts/stack.sh start|stop|restart <component>
#                      mariadb redis core user driver haproxy; with several instances also
#                      user-2 … (one instance; `user` alone means every instance of user, and
#                      user-1 instance 1 only); in Galera mode mariadb-2 mariadb-3 dbproxy, in
#                      Sentinel mode redis-2 sentinel-1 sentinel-2 sentinel-3
#   scripts/stack.sh peers
#                      rewrite <run dir>/peers.conf from the instances and SIGHUP every running
#                      service so that it re-reads it
#   scripts/stack.sh exec <user|driver|core> [args…]
#                      run that service's binary in the foreground with the environment the
#                      stack gives it (its maintenance commands: --seed-drivers N, …); exits
#                      with its status
#
# Environment:
#   ANTAR_RUN_DIR      <repo>/.run            data folders, sockets, logs, pid files, secrets
#   ANTAR_PORT_OFFSET  0                      added to every port (MariaDB 3307, Redis 6380,
#                                             user 8001, driver 8002, core 8003, edge 8080;
#                                             internal listeners user 9001, driver 9002,
#                                             core 9003, which the peer URLs point at)
#   ANTAR_BIN_DIR      <repo>/build/bin       where antar-<svc> binaries are
#   ANTAR_API_DIR      $(dirname BIN)/api     the OpenAPI JSON files served at /openapi.json
#   ANTAR_EDGE_RATE_LIMIT  30                 POSTs to /oauth/token, /users, /drivers per source
#                                             IP per 10 s before the edge answers 429
#   ANTAR_EDGE_LOGIN_RATE_LIMIT  20           POSTs of the sign-in form (/oauth/authorize) per
#                                             source IP per 10 s before the edge answers 429
#   ANTAR_TLS_CERT     (unset)                a PEM (certificate chain + private key) for the
#                                             edge's HTTPS port 8443; unset: a certificate from
#                                             the local CA made in <run dir>/tls (ca.pem)
#   ANTAR_INSTANCES    1                      processes per service (1..8). Instance i listens on
#                                             the base ports + 10*(i-1) (user-2: 8011 and 9011);
#                                             HAProxy balances each backend over them
#   ANTAR_DB           single                 galera: three MariaDB nodes (Galera 4), reached
#                                             through a TCP proxy (component dbproxy, HAProxy) on
#                                             the MariaDB port 3307 that sends every connection to
#                                             one synced node at a time (docs/scale.md)
#   ANTAR_REDIS        single                 sentinel: a master, a replica and three Sentinels;
#                                             services ask Sentinel for the master
# The three are recorded in <run dir>/topology at `up`; later commands on that run folder use
# the recorded values unless the variable is set.
# Any other ANTAR_* variable and ASAN_OPTIONS/UBSAN_OPTIONS/LSAN_OPTIONS in the caller's
# environment reach the services unchanged (the tests shorten dispatch timeouts that way).
#
# Supervision: every component runs under runit (runsvdir + one runsv per component, Debian's
# `runit` package), rooted in <run dir>/sv/ — no system-wide state, no sockets, so stacks with
# different run folders never meet. A component that exits without being told to is started
# again by its runsv at once (at most one start a second), with a growing back-off when it keeps
# crashing (see _finish). `stop` tells runit to keep the component down; `down` stops the
# components, then the runsv processes and runsvdir. Why runit and not supervisor: see
# docs/reliability.md, "Supervision".
#
# Pid files (<run dir>/<component>.pid) are written by each component's run script just before
# it execs the program, so after a restart they name the new process; they are removed when it
# exits. Anything that signals by pid file checks first that the pid still runs the program we
# started (a stale pid file must never kill a stranger).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# redis_acl_text: the Redis users file, shared with deploy/k8s/make-secrets.sh.
. "$REPO/deploy/redis-acl.sh"
RUN="${ANTAR_RUN_DIR:-$REPO/.run}"
case "$RUN" in /*) ;; *) RUN="$PWD/$RUN" ;; esac
OFF="${ANTAR_PORT_OFFSET:-0}"
[[ "$OFF" =~ ^[0-9]+$ ]] || { echo "stack: ANTAR_PORT_OFFSET must be a number" >&2; exit 2; }
BIN="${ANTAR_BIN_DIR:-$REPO/build/bin}"
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
API="${ANTAR_API_DIR:-$(dirname "$BIN")/api}"
case "$API" in /*) ;; *) API="$REPO/$API" ;; esac

DB_PORT=$((3307 + OFF))
REDIS_PORT=$((6380 + OFF))
USER_PORT=$((8001 + OFF))
DRIVER_PORT=$((8002 + OFF))
CORE_PORT=$((8003 + OFF))
EDGE_PORT=$((8080 + OFF))
EDGE_TLS_PORT=$((8443 + OFF))
# Each service's second listener, for /internal/... only (docs/reliability.md, "Call graph: why
# no cycle"): the services call each other there, never on the public ports.
USER_IPORT=$((9001 + OFF))
DRIVER_IPORT=$((9002 + OFF))
CORE_IPORT=$((9003 + OFF))

LOG="$RUN/log"
DB_DIR="$RUN/mariadb"
DB_DATA="$DB_DIR/data"
DB_SOCK="$DB_DIR/mariadb.sock"
REDIS_DIR="$RUN/redis"
SECRETS="$RUN/secrets.env"
TLS_DIR="$RUN/tls"
REDIS_ACL="$REDIS_DIR/users.acl"
SV="$RUN/sv"
SUP_PID="$RUN/supervisor.pid"
TOPOLOGY="$RUN/topology"
PEERS="$RUN/peers.conf"

# The run folder's topology: the caller's ANTAR_INSTANCES/ANTAR_DB/ANTAR_REDIS, else what `up`
# recorded, else one of everything.
topo_get() { [ -s "$TOPOLOGY" ] || return 0; sed -n "s/^$1=//p" "$TOPOLOGY" | head -n1; }
NINST="${ANTAR_INSTANCES:-$(topo_get instances)}"
NINST="${NINST:-1}"
[[ "$NINST" =~ ^[1-8]$ ]] || { echo "stack: ANTAR_INSTANCES must be 1..8" >&2; exit 2; }
DB_MODE="${ANTAR_DB:-$(topo_get db)}"
DB_MODE="${DB_MODE:-single}"
REDIS_MODE="${ANTAR_REDIS:-$(topo_get redis)}"
REDIS_MODE="${REDIS_MODE:-single}"
case "$DB_MODE" in single | galera) ;; *) echo "stack: ANTAR_DB must be single or galera" >&2; exit 2 ;; esac
case "$REDIS_MODE" in single | sentinel) ;; *) echo "stack: ANTAR_REDIS must be single or sentinel" >&2; exit 2 ;; esac

# Galera: node i listens on 3317+10*(i-1) (+ offset), its socket in <run>/galera-<i>; the group
# (gcomm) on 4567+10*(i-1), incremental state transfer on 4568+…, rsync state transfer on
# 4444+…; the proxy (dbproxy) takes the single server's port 3307 so the services' settings
# stay the same apart from the socket.
GALERA_NODES=3
# How fast the cluster gives up on a node that vanished without leaving (kill -9, power loss):
# until then no commit can complete anywhere, so every write waits. Galera's defaults (suspect
# after 5 s, evict after 15 s) stalled the city for ~8 s; on one machine 2 s/4 s are safe (a
# false suspicion needs a node starved of CPU for 2 s) and keep the stall under the services'
# 3 s database timeout.
GALERA_EVS="evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT4S"
galera_port() { echo $((3317 + OFF + 10 * ($1 - 1))); }
galera_gport() { echo $((4567 + OFF + 10 * ($1 - 1))); }
galera_dir() { echo "$RUN/galera-$1"; }
# Sentinel mode: redis (the first master) on 6380, redis-2 (its replica) on 6390, sentinels on
# 26380, 26390, 26400 (+ offset). The master's name as Sentinel knows it:
REDIS_MASTER_NAME=antar
SENTINELS=3
sentinel_port() { echo $((26380 + OFF + 10 * ($1 - 1))); }
redis_node_port() { echo $((REDIS_PORT + 10 * ($1 - 1))); }
if [ "$DB_MODE" = galera ]; then
    DB_COMPS=(mariadb mariadb-2 mariadb-3 dbproxy)
    # Provisioning and the tests' root access go to node 1 by its socket.
    DB_DIR="$(galera_dir 1)"
    DB_DATA="$DB_DIR/data"
    DB_SOCK="$DB_DIR/mariadb.sock"
else
    DB_COMPS=(mariadb)
fi
if [ "$REDIS_MODE" = sentinel ]; then
    REDIS_COMPS=(redis redis-2 sentinel-1 sentinel-2 sentinel-3)
else
    REDIS_COMPS=(redis)
fi
SERVICES=(core user driver)
# Instance 1 of a service keeps its plain name (user), the others are user-2 … user-N.
inst_name() { if [ "$2" = 1 ]; then echo "$1"; else echo "$1-$2"; fi; }
SVC_COMPS=()
for _i in $(seq 1 "$NINST"); do
    for _s in "${SERVICES[@]}"; do SVC_COMPS+=("$(inst_name "$_s" "$_i")"); done
done
COMPONENTS=("${DB_COMPS[@]}" "${REDIS_COMPS[@]}" "${SVC_COMPS[@]}" haproxy)

# user-2 → user, sentinel-1 → sentinel; comp_inst: user-2 → 2, user → 1.
comp_base() { echo "${1%%-*}"; }
comp_inst() { case "$1" in *-*) echo "${1##*-}" ;; *) echo 1 ;; esac; }
is_service() { case "$(comp_base "$1")" in user | driver | core) return 0 ;; esac; return 1; }
# Every instance of a service, in start order.
instances_of() { local i; for i in $(seq 1 "$NINST"); do inst_name "$1" "$i"; done; }

MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
INSTALL_DB="$(command -v mariadb-install-db || echo /usr/bin/mariadb-install-db)"

say() { echo "stack: $*"; }
err() { echo "stack: error: $*" >&2; }

# A service instance's public and internal port: the base + 10*(instance-1).
svc_port() {
    local b=0
    case "$(comp_base "$1")" in
    user) b="$USER_PORT" ;; driver) b="$DRIVER_PORT" ;; core) b="$CORE_PORT" ;;
    esac
    echo $((b + 10 * ($(comp_inst "$1") - 1)))
}

svc_iport() {
    local b=0
    case "$(comp_base "$1")" in
    user) b="$USER_IPORT" ;; driver) b="$DRIVER_IPORT" ;; core) b="$CORE_IPORT" ;;
    esac
    echo $((b + 10 * ($(comp_inst "$1") - 1)))
}

# The program name a component's pid must be running (checked in its /proc/<pid>/cmdline).
comp_prog() {
    case "$(comp_base "$1")" in
    mariadb) echo mariadbd ;; redis) echo redis-server ;; haproxy | dbproxy) echo haproxy ;;
    sentinel) echo redis-sentinel ;;
    *) echo "antar-$(comp_base "$1")" ;;
    esac
}

pidfile() { echo "$RUN/$1.pid"; }

# Prints the pid when the component runs: pid file present, process alive, and its command
# line names the program we started (so a stale pid file reused by a stranger is ignored).
comp_pid() {
    local f pid
    f="$(pidfile "$1")"
    [ -s "$f" ] || return 1
    pid="$(head -n1 "$f" | tr -dc 0-9)"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(comp_prog "$1")" || return 1
    echo "$pid"
}

# ---- secrets -------------------------------------------------------------------------------

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

ensure_secrets() {
    mkdir -p "$RUN"
    chmod 700 "$RUN" 2>/dev/null || true
    (umask 077 && touch "$SECRETS")
    chmod 600 "$SECRETS"
    local k n
    for k in DB_ROOT_PASSWORD DB_PASSWORD_USER DB_PASSWORD_DRIVER DB_PASSWORD_CORE \
        DB_PASSWORD_TEST CLIENT_SECRET_USER CLIENT_SECRET_DRIVER CLIENT_SECRET_CORE \
        CLIENT_SECRET_OPS CSRF_KEY REDIS_PASSWORD_CORE REDIS_PASSWORD_USER \
        REDIS_PASSWORD_DRIVER REDIS_PASSWORD_ADMIN DB_PASSWORD_CHECK REDIS_PASSWORD_REPL \
        REDIS_PASSWORD_SENTINEL DB_PASSWORD_SST; do
        if ! grep -q "^$k=" "$SECRETS"; then
            n=24
            [ "$k" = CSRF_KEY ] && n=32
            echo "$k=$(rand_hex "$n")" >>"$SECRETS"
        fi
    done
    # shellcheck disable=SC1090
    . "$SECRETS"
}

# ---- process helpers -----------------------------------------------------------------------

# ---- supervision (runit) -------------------------------------------------------------------

# Prints runsvdir's pid when this run folder's supervisor runs.
sup_pid() {
    local pid
    [ -s "$SUP_PID" ] || return 1
    pid="$(head -n1 "$SUP_PID" | tr -dc 0-9)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "runsvdir -P $SV" || return 1
    echo "$pid"
}

# The service folder runit runs for a component: ./run (re)starts it through `stack.sh _run`,
# ./finish runs after every exit (back-off, pid file), ./down keeps runsv from starting it on
# its own (only `stack.sh start` does, with `sv up`), ./env the environment of the last start.
write_service_dir() {
    local c="$1" d="$SV/$1"
    mkdir -p "$d"
    : >"$d/down"
    cat >"$d/run.tmp" <<RUN
#!/bin/bash
# Written by scripts/stack.sh; runit's runsv runs it in this folder, again after every exit.
. ./env || exit 111
exec "$REPO/scripts/stack.sh" _run $c
RUN
    cat >"$d/finish.tmp" <<FIN
#!/bin/bash
# Written by scripts/stack.sh; runsv runs it after ./run exited (\$1 exit code, \$2 signal).
. ./env || exit 0
exec "$REPO/scripts/stack.sh" _finish $c "\$@"
FIN
    chmod 755 "$d/run.tmp" "$d/finish.tmp"
    mv -f "$d/run.tmp" "$d/run"
    mv -f "$d/finish.tmp" "$d/finish"
}

# The environment a component is (re)started with: the caller's ANTAR_* and sanitizer settings
# at `start` (tests restart core with other settings), and the resolved folders. runsvdir itself
# runs with an empty environment, so nothing else leaks in.
save_env() {
    local c="$1" v
    (
        umask 077
        {
            for v in $(compgen -e); do
                case "$v" in
                ANTAR_* | ASAN_OPTIONS | UBSAN_OPTIONS | LSAN_OPTIONS | PATH | HOME | LANG | LC_ALL | TZ)
                    printf 'export %s=%q\n' "$v" "${!v}" ;;
                esac
            done
            printf 'export ANTAR_RUN_DIR=%q ANTAR_PORT_OFFSET=%q ANTAR_BIN_DIR=%q ANTAR_API_DIR=%q\n' \
                "$RUN" "$OFF" "$BIN" "$API"
        } >"$SV/$c/env.tmp"
    )
    mv -f "$SV/$c/env.tmp" "$SV/$c/env"
}

ensure_supervisor() {
    command -v runsvdir >/dev/null && command -v sv >/dev/null ||
        { err "runit is not installed (scripts/setup.sh installs it)"; return 1; }
    mkdir -p "$SV" "$LOG"
    local c i
    for c in "${COMPONENTS[@]}"; do write_service_dir "$c"; done
    sup_pid >/dev/null && return 0
    rm -f "$SUP_PID"
    env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        setsid -f sh -c 'echo $$ >"$0"; exec runsvdir -P "$1"' "$SUP_PID" "$SV" \
        >>"$LOG/supervisor.log" 2>&1 </dev/null
    for i in $(seq 1 100); do
        local ok=1
        for c in "${COMPONENTS[@]}"; do [ -e "$SV/$c/supervise/ok" ] || ok=0; done
        [ "$ok" = 1 ] && sup_pid >/dev/null && return 0
        sleep 0.05
    done
    err "runsvdir did not start (log: $LOG/supervisor.log)"
    return 1
}

# Is the component's runsv there to take orders?
supervised() { sup_pid >/dev/null && [ -e "$SV/$1/supervise/ok" ]; }

# Have runit start a component (and keep it running); the caller waits for it to be ready.
sv_start() {
    local c="$1"
    ensure_supervisor
    save_env "$c"
    rm -f "$SV/$c/stopping"
    # A component added after runsvdir started (more instances) gets its runsv at runsvdir's
    # next scan of the folder, within 5 s.
    local i
    for i in $(seq 1 70); do
        [ -e "$SV/$c/supervise/ok" ] && break
        sleep 0.1
    done
    sv -w 5 up "$SV/$c" >/dev/null || { err "sv up $c failed"; return 1; }
}

# `stack.sh _run <component>`: what ./run execs. Writes the pid file, then becomes the program
# (exec all the way down, so the pid file names the program itself).
run_component() {
    local c="$1"
    mkdir -p "$LOG"
    echo $$ >"$(pidfile "$c")"
    date +%s >"$SV/$c/started"
    case "$c" in
    mariadb | mariadb-*)
        [ "$DB_MODE" = galera ] && run_galera_node "$(comp_inst "$c")"
        local asroot=()
        [ "$(id -u)" -eq 0 ] && asroot=(--user=root)
        exec >>"$LOG/mariadb.out" 2>&1 </dev/null
        # --defaults-file must come first; the settings are in deploy/mariadb.cnf.
        exec "$MARIADBD" --defaults-file="$REPO/deploy/mariadb.cnf" --datadir="$DB_DATA" \
            --socket="$DB_SOCK" --port="$DB_PORT" \
            --pid-file="$(pidfile mariadb)" --log-error="$LOG/mariadb.log" "${asroot[@]}"
        ;;
    redis | redis-*)
        [ "$REDIS_MODE" = sentinel ] && run_redis_node "$(comp_inst "$c")"
        exec >>"$LOG/redis.log" 2>&1 </dev/null
        exec redis-server "$REPO/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
            --dir "$REDIS_DIR" --pidfile "$(pidfile redis)" --daemonize no \
            --logfile "$LOG/redis.log" --aclfile "$REDIS_ACL"
        ;;
    haproxy)
        haproxy_env
        render_haproxy_cfg || exit 111
        exec >>"$LOG/haproxy.log" 2>&1 </dev/null
        exec "$HAPROXY" -f "$RUN/haproxy.cfg" -db
        ;;
    sentinel-*)
        run_sentinel "$(comp_inst "$c")"
        ;;
    dbproxy)
        run_dbproxy
        ;;
    user | driver | core | user-* | driver-* | core-*)
        local exe
        ensure_secrets
        exe="$(service_exe "$(comp_base "$c")")" || exit 111
        service_env "$c"
        exec >>"$LOG/$c.log" 2>&1 </dev/null
        echo "---- $(date -u +%FT%TZ) start $c"
        cd "$REPO"
        exec env "${SVC_ENV[@]}" "$exe"
        ;;
    esac
    exit 111
}

# `stack.sh _finish <component> <exit code> <signal>`: what ./finish execs after every exit.
# The pid file goes (nothing runs under it now). A component that keeps dying young is started
# again later and later — 0, 1, 2, 4 … 30 s — so a crash loop costs next to nothing; one that
# ran 10 s or more counts as healthy again and is restarted at once (runsv itself never starts
# a program twice within one second).
finish_component() {
    local c="$1" code="${2:-}" sig="${3:-}" now started up crashes delay=0
    local f
    f="$(pidfile "$c")"
    if [ -s "$f" ] && ! kill -0 "$(head -n1 "$f" | tr -dc 0-9)" 2>/dev/null; then rm -f "$f"; fi
    [ -e "$SV/$c/stopping" ] && exit 0
    now="$(date +%s)"
    started="$(cat "$SV/$c/started" 2>/dev/null || echo "$now")"
    up=$((now - started))
    crashes="$(cat "$SV/$c/crashes" 2>/dev/null || echo 0)"
    if [ "$up" -ge 10 ]; then crashes=0; fi
    crashes=$((crashes + 1))
    echo "$crashes" >"$SV/$c/crashes"
    if [ "$crashes" -ge 2 ]; then
        delay=$((1 << (crashes - 2)))
        [ "$delay" -gt 30 ] && delay=30
    fi
    echo "$(date -u +%FT%TZ) $c exited (code $code, signal $sig) after ${up}s; restart in ${delay}s" \
        >>"$LOG/supervisor.log"
    [ "$delay" -gt 0 ] && sleep "$delay"
    exit 0
}

# SIGTERM, wait up to $2 seconds, then SIGKILL.
stop_pid() {
    local comp="$1" wait_s="$2" pid i
    pid="$(comp_pid "$comp")" || { rm -f "$(pidfile "$comp")"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((wait_s * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        err "$comp (pid $pid) did not exit in ${wait_s}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$(pidfile "$comp")"
    say "$comp stopped"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- MariaDB -------------------------------------------------------------------------------

db_root() {
    MYSQL_PWD="$DB_ROOT_PASSWORD" mariadb --no-defaults --protocol=socket --socket="$DB_SOCK" \
        -uroot --batch --skip-column-names "$@"
}

start_mariadb() {
    ensure_secrets
    if comp_pid mariadb >/dev/null; then say "mariadb already running"; return 0; fi
    mkdir -p "$DB_DIR" "$LOG"
    local asroot=()
    [ "$(id -u)" -eq 0 ] && asroot=(--user=root)
    if [ ! -d "$DB_DATA/mysql" ]; then
        rm -rf "$DB_DATA"
        if ! "$INSTALL_DB" --no-defaults --datadir="$DB_DATA" --auth-root-authentication-method=normal \
            --skip-test-db "${asroot[@]}" >"$LOG/mariadb-install.log" 2>&1; then
            tail -n 20 "$LOG/mariadb-install.log" >&2
            err "mariadb-install-db failed"
            return 1
        fi
    fi
    sv_start mariadb
    local i up=0
    for i in $(seq 1 300); do
        if mariadb-admin --no-defaults --socket="$DB_SOCK" -uroot --connect-timeout=1 ping \
            >/dev/null 2>&1; then
            up=1
            break
        fi
        if ! comp_pid mariadb >/dev/null && [ "$i" -gt 5 ]; then break; fi
        sleep 0.1
    done
    if [ "$up" != 1 ]; then
        tail -n 20 "$LOG/mariadb.log" >&2 2>/dev/null || true
        err "mariadb did not come up (log: $LOG/mariadb.log)"
        return 1
    fi
    # Called inside `if ! { …; }` by do_up, where set -e is off: every step checks itself.
    provision_mariadb || return 1
    if [ "$DB_MODE" = galera ]; then
        say "mariadb (Galera node 1) up on 127.0.0.1:$(galera_port 1) (socket $DB_SOCK)"
    else
        say "mariadb up on 127.0.0.1:$DB_PORT (socket $DB_SOCK)"
    fi
}

# Root gets a password on first start; then one schema and one account per service (plus
# antar_test for the unit tests), each account allowed only its own schema. Idempotent.
provision_mariadb() {
    if ! db_root -e 'SELECT 1' >/dev/null 2>&1; then
        # Fresh datadir: root has no password yet.
        # The statement goes in on stdin: a password in -e would be on the command line, where
        # every local user sees it in ps.
        printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\n" "$DB_ROOT_PASSWORD" |
            mariadb --no-defaults --protocol=socket --socket="$DB_SOCK" -uroot 2>/dev/null || {
            err "cannot log in to mariadb as root (is $SECRETS from another datadir?)"
            return 1
        }
    fi
    local sql="DELETE FROM mysql.global_priv WHERE User='';
DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost');
FLUSH PRIVILEGES;
"
    local name pw
    for name in user driver core test; do
        case "$name" in
        user) pw="$DB_PASSWORD_USER" ;; driver) pw="$DB_PASSWORD_DRIVER" ;;
        core) pw="$DB_PASSWORD_CORE" ;; test) pw="$DB_PASSWORD_TEST" ;;
        esac
        local db="antar_$name" h
        sql+="CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
"
        for h in localhost 127.0.0.1; do
            sql+="CREATE USER IF NOT EXISTS '$db'@'$h' IDENTIFIED BY '$pw';
ALTER USER '$db'@'$h' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$db'@'$h';
"
        done
    done
    if [ "$DB_MODE" = galera ]; then
        # antar_check: the proxy's health check (no privilege); antar_sst: mariabackup's state
        # transfer on a donor (MariaDB's documented minimum grants).
        sql+="CREATE USER IF NOT EXISTS 'antar_check'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD_CHECK';
ALTER USER 'antar_check'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD_CHECK';
CREATE USER IF NOT EXISTS 'antar_sst'@'localhost' IDENTIFIED BY '$DB_PASSWORD_SST';
ALTER USER 'antar_sst'@'localhost' IDENTIFIED BY '$DB_PASSWORD_SST';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'antar_sst'@'localhost';
"
    fi
    if ! printf '%s' "$sql" | db_root >"$LOG/mariadb-provision.log" 2>&1; then
        cat "$LOG/mariadb-provision.log" >&2
        err "mariadb provisioning failed"
        return 1
    fi
}

# ---- Galera (ANTAR_DB=galera) ----------------------------------------------------------------

# Is another node of the cluster than $1 up (its server answers on its port)?
galera_peer_alive() {
    local j
    for j in $(seq 1 "$GALERA_NODES"); do
        [ "$j" = "$1" ] && continue
        comp_pid "$(inst_name mariadb "$j")" >/dev/null && port_open "$(galera_port "$j")" && return 0
    done
    return 1
}

# What ./run execs for node $1 (after run_component wrote the pid file). Node 1 starts a new
# cluster (--wsrep-new-cluster) only when no other node is up — at `up`, or after the whole
# cluster went down; every other start, of any node, joins the running cluster and gets the
# missing writesets (IST) or a full copy (SST by mariabackup) from a synced node. A dev stack takes
# node 1 as the node to bootstrap from even after a crash of all three (safe_to_bootstrap is
# forced): production would pick the node with the highest seqno instead.
run_galera_node() {
    local i="$1" dir peers="" j gport new=() asroot=()
    ensure_secrets
    dir="$(galera_dir "$i")"
    gport="$(galera_gport "$i")"
    for j in $(seq 1 "$GALERA_NODES"); do peers+="${peers:+,}127.0.0.1:$(galera_gport "$j")"; done
    if [ "$i" = 1 ] && ! galera_peer_alive 1; then
        [ -f "$dir/data/grastate.dat" ] &&
            sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$dir/data/grastate.dat"
        new=(--wsrep-new-cluster)
    fi
    [ "$(id -u)" -eq 0 ] && asroot=(--user=root)
    # The state-transfer account's password goes in an option file, not on the command line.
    # State transfer by mariabackup (streamed with socat): rsync's daemon drops to `nobody`
    # when the server runs as root and then cannot write the joiner's datadir.
    mkdir -p "$dir/data"
    (
        umask 077
        # The stack's settings (deploy/mariadb.cnf) come in by !include, not on the command
        # line: the SST script hands the server's command-line InnoDB options to
        # mariadb-backup, which refuses the buffer pool size.
        printf '!include %s\n[mariadbd]\nwsrep_sst_auth=antar_sst:%s\n' \
            "$REPO/deploy/mariadb.cnf" "$DB_PASSWORD_SST" >"$dir/node.cnf"
    )
    exec >>"$LOG/mariadb-$i.out" 2>&1 </dev/null
    # After a crash (kill -9) grastate.dat says seqno -1: without its position the node would
    # need a full copy (SST, a minute of heavy I/O on a donor). --wsrep-recover reads the last
    # committed position from InnoDB (what Debian's galera_recovery does for systemd), so the
    # node asks only for the writesets it missed (IST from the donors' gcache).
    local pos=() rec rec_pos
    if [ -f "$dir/data/grastate.dat" ] && grep -q '^seqno: *-1' "$dir/data/grastate.dat"; then
        rec="$(mktemp "$dir/recover.XXXXXX")"
        # (In this mode the server writes its log to stderr whatever --log-error says.)
        "$MARIADBD" --defaults-file="$dir/node.cnf" --datadir="$dir/data" \
            --socket="$dir/recover.sock" --skip-networking "${asroot[@]}" \
            --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so \
            --wsrep-cluster-address="gcomm://$peers" --wsrep-sst-method=mariabackup \
            --wsrep-recover --binlog-format=ROW --innodb-autoinc-lock-mode=2 >"$rec" 2>&1 || true
        rec_pos="$(sed -n 's/.*WSREP: Recovered position: *//p' "$rec" | tail -n1)"
        cat "$rec" >>"$LOG/mariadb-$i.log"
        rm -f "$rec"
        [[ "$rec_pos" =~ ^[0-9a-f-]+:[0-9]+$ ]] && pos=(--wsrep-start-position="$rec_pos")
    fi
    # wsrep_sync_wait=1: a read waits until the node has applied everything the cluster
    # committed before it, so reads right after a move to another node see every earlier write.
    exec "$MARIADBD" --defaults-file="$dir/node.cnf" --datadir="$dir/data" "${pos[@]}" \
        --socket="$dir/mariadb.sock" --port="$(galera_port "$i")" \
        --pid-file="$(pidfile "$(inst_name mariadb "$i")")" --log-error="$LOG/mariadb-$i.log" \
        "${asroot[@]}" \
        --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so \
        --wsrep-cluster-name="antar-$OFF" --wsrep-cluster-address="gcomm://$peers" \
        --wsrep-node-name="node$i" --wsrep-node-address=127.0.0.1 \
        --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$gport;ist.recv_addr=127.0.0.1:$((gport + 1));gcache.size=64M;$GALERA_EVS" \
        --wsrep-sst-method=mariabackup --wsrep-sst-receive-address="127.0.0.1:$((4444 + OFF + 10 * (i - 1)))" \
        --wsrep-sync-wait=1 --binlog-format=ROW --default-storage-engine=InnoDB \
        --innodb-autoinc-lock-mode=2 "${new[@]}"
}

# wsrep_local_state of node $1 (4 = Synced), asked as root on its socket; empty when down.
galera_state() {
    MYSQL_PWD="$DB_ROOT_PASSWORD" mariadb --no-defaults --protocol=socket \
        --socket="$(galera_dir "$1")/mariadb.sock" -uroot --batch --skip-column-names \
        --connect-timeout=1 -e "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'" 2>/dev/null | cut -f2
}

# Start node $1 (2 or 3) and wait until it has joined and is synced.
start_galera_node() {
    local i="$1" c
    c="$(inst_name mariadb "$i")"
    ensure_secrets
    [ "$i" = 1 ] && { start_mariadb; return; }
    if comp_pid "$c" >/dev/null; then say "$c already running"; return 0; fi
    galera_peer_alive "$i" || { err "$c: no other Galera node is up to join"; return 1; }
    mkdir -p "$(galera_dir "$i")/data" "$LOG"
    sv_start "$c"
    local n
    for n in $(seq 1 1200); do
        [ "$(galera_state "$i")" = 4 ] && { say "$c synced, on 127.0.0.1:$(galera_port "$i")"; return 0; }
        if ! comp_pid "$c" >/dev/null && [ "$n" -gt 50 ]; then break; fi
        sleep 0.1
    done
    tail -n 20 "$LOG/mariadb-$i.log" >&2 2>/dev/null || true
    err "$c did not join the cluster (log: $LOG/mariadb-$i.log)"
    return 1
}

# The proxy's health check (HAProxy external-check): a node is in service only while Galera
# says it is Synced (wsrep_local_state 4) — a donor, a joiner or a node cut off from the
# primary component is not. Asked as antar_check, an account with no privilege at all.
write_galera_check() {
    local d="$RUN/galera"
    mkdir -p "$d"
    chmod 700 "$d"
    (
        umask 077
        printf '[client]\nuser=antar_check\npassword=%s\n' "$DB_PASSWORD_CHECK" >"$d/check.cnf"
        cat >"$d/check.sh" <<CHK
#!/bin/sh
# Written by scripts/stack.sh. HAProxy runs it as: <proxy addr> <proxy port> <node addr> <node port>.
st=\$(mariadb --defaults-file="$d/check.cnf" --protocol=tcp -h "\$3" -P "\$4" --connect-timeout=1 \\
    --batch --skip-column-names -e "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'" 2>/dev/null)
[ "\$st" = "wsrep_local_state	4" ]
CHK
        chmod 700 "$d/check.sh"
    )
}

dbproxy_env() {
    local i
    export ANTAR_DBPROXY_PORT="$DB_PORT" ANTAR_DBPROXY_RUN_DIR="$RUN" \
        ANTAR_DBPROXY_CHECK="$RUN/galera/check.sh"
    for i in $(seq 1 "$GALERA_NODES"); do
        export "ANTAR_GALERA_$i=127.0.0.1:$(galera_port "$i")"
    done
}

run_dbproxy() {
    dbproxy_env
    exec >>"$LOG/dbproxy.log" 2>&1 </dev/null
    exec "$HAPROXY" -f "$REPO/deploy/haproxy-db.cfg" -db
}

start_dbproxy() {
    ensure_secrets
    if comp_pid dbproxy >/dev/null; then say "dbproxy already running"; return 0; fi
    write_galera_check
    dbproxy_env
    if ! "$HAPROXY" -q -c -f "$REPO/deploy/haproxy-db.cfg" >"$LOG/dbproxy.log" 2>&1; then
        cat "$LOG/dbproxy.log" >&2
        err "deploy/haproxy-db.cfg is invalid"
        return 1
    fi
    sv_start dbproxy
    local i
    for i in $(seq 1 100); do
        if mariadb --defaults-file="$RUN/galera/check.cnf" --protocol=tcp -h 127.0.0.1 \
            -P "$DB_PORT" --connect-timeout=1 -e 'SELECT 1' >/dev/null 2>&1; then
            say "dbproxy up on 127.0.0.1:$DB_PORT (Galera nodes :$(galera_port 1) :$(galera_port 2) :$(galera_port 3))"
            return 0
        fi
        sleep 0.1
    done
    err "dbproxy does not reach a synced Galera node (log: $LOG/dbproxy.log)"
    return 1
}

# ---- Redis ---------------------------------------------------------------------------------

# redis-cli as the admin user; the password goes by environment, never on the command line.
rcli() {
    REDISCLI_AUTH="$REDIS_PASSWORD_ADMIN" redis-cli --no-auth-warning -p "$REDIS_PORT" \
        --user antar_admin "$@"
}

# One Redis ACL user per service, each with a password from $SECRETS (stored in the ACL file
# as SHA-256 only) and only the keys and commands it needs; the default user is off, so a
# local process without a password gets NOAUTH. antar_admin is for the scripts and tests.
# The default user keeps every permission although nobody can log in as it (off, no password):
# Redis 7.0 replays the AOF as the default user and re-checks its ACL at each EXEC, so a
# default user without commands makes Redis drop every MULTI/EXEC — every Lua script's writes
# — when it loads the AOF after a restart (redis/redis#14541): the dispatch state would be lost.
write_redis_acl() {
    local acl="${1:-$REDIS_ACL}" h_core h_user h_driver h_admin h_repl h_sentinel
    h_core="$(printf '%s' "$REDIS_PASSWORD_CORE" | sha256sum | cut -d' ' -f1)"
    h_user="$(printf '%s' "$REDIS_PASSWORD_USER" | sha256sum | cut -d' ' -f1)"
    h_driver="$(printf '%s' "$REDIS_PASSWORD_DRIVER" | sha256sum | cut -d' ' -f1)"
    h_admin="$(printf '%s' "$REDIS_PASSWORD_ADMIN" | sha256sum | cut -d' ' -f1)"
    h_repl="$(printf '%s' "$REDIS_PASSWORD_REPL" | sha256sum | cut -d' ' -f1)"
    h_sentinel="$(printf '%s' "$REDIS_PASSWORD_SENTINEL" | sha256sum | cut -d' ' -f1)"
    (
        umask 077
        redis_acl_text >"$acl.tmp"
    )
    mv -f "$acl.tmp" "$acl"
}

# ---- Redis with Sentinel (ANTAR_REDIS=sentinel) ---------------------------------------------

redis_node_dir() { if [ "$1" = 1 ]; then echo "$REDIS_DIR"; else echo "$RUN/redis-$1"; fi; }

# What ./run execs for Redis node $1 in Sentinel mode. Each node runs from a configuration file
# of its own in its folder (deploy/redis.conf plus the replication settings), made once:
# Sentinel rewrites it (CONFIG REWRITE) when it turns the node into a master or a replica, so
# a restarted node comes back in the role it last had. Node 2 starts as node 1's replica.
run_redis_node() {
    local i="$1" dir conf log
    ensure_secrets
    dir="$(redis_node_dir "$i")"
    conf="$dir/redis.conf"
    log="$LOG/redis.log"
    [ "$i" = 1 ] || log="$LOG/redis-$i.log"
    mkdir -p "$dir"
    chmod 700 "$dir"
    write_redis_acl "$dir/users.acl"
    if [ ! -s "$conf" ]; then
        (
            umask 077
            {
                cat "$REPO/deploy/redis.conf"
                echo "# Sentinel mode (scripts/stack.sh): replication as antar_repl."
                echo "masteruser antar_repl"
                echo "masterauth $REDIS_PASSWORD_REPL"
                [ "$i" = 1 ] || echo "replicaof 127.0.0.1 $REDIS_PORT"
            } >"$conf"
        )
    fi
    exec >>"$log" 2>&1 </dev/null
    exec redis-server "$conf" --port "$(redis_node_port "$i")" --bind 127.0.0.1 \
        --dir "$dir" --pidfile "$(pidfile "$(inst_name redis "$i")")" --daemonize no \
        --logfile "$log" --aclfile "$dir/users.acl"
}

# The role (master/slave) of Redis node $1, asked as antar_admin; empty when down.
redis_role() {
    REDISCLI_AUTH="$REDIS_PASSWORD_ADMIN" redis-cli --no-auth-warning -p "$(redis_node_port "$1")" \
        --user antar_admin ROLE 2>/dev/null | head -n1
}

start_redis_node() {
    local i="$1" c n
    c="$(inst_name redis "$i")"
    ensure_secrets
    [ "$i" = 1 ] && { start_redis; return; }
    if comp_pid "$c" >/dev/null; then say "$c already running"; return 0; fi
    mkdir -p "$LOG"
    sv_start "$c"
    for n in $(seq 1 100); do
        case "$(redis_role "$i")" in
        master | slave) say "$c up on 127.0.0.1:$(redis_node_port "$i") ($(redis_role "$i"))"; return 0 ;;
        esac
        sleep 0.1
    done
    err "$c did not answer ROLE (log: $LOG/redis-$i.log)"
    return 1
}

# What ./run execs for Sentinel $1: Debian's redis-sentinel with a file of its own (Sentinel
# rewrites it with what it learns: the current master, the replicas, the other Sentinels).
# Quorum 2 of 3; the master is down for Sentinel after 1 s without an answer.
run_sentinel() {
    local i="$1" dir
    ensure_secrets
    dir="$RUN/sentinel-$i"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ ! -s "$dir/sentinel.conf" ]; then
        (
            umask 077
            cat >"$dir/sentinel.conf" <<SEN
# Written by scripts/stack.sh once; Sentinel keeps its state here.
port $(sentinel_port "$i")
bind 127.0.0.1
daemonize no
dir $dir
sentinel resolve-hostnames no
sentinel monitor $REDIS_MASTER_NAME 127.0.0.1 $REDIS_PORT 2
sentinel auth-user $REDIS_MASTER_NAME antar_sentinel
sentinel auth-pass $REDIS_MASTER_NAME $REDIS_PASSWORD_SENTINEL
sentinel down-after-milliseconds $REDIS_MASTER_NAME 1000
sentinel failover-timeout $REDIS_MASTER_NAME 10000
sentinel parallel-syncs $REDIS_MASTER_NAME 1
SEN
        )
    fi
    exec >>"$LOG/sentinel-$i.log" 2>&1 </dev/null
    exec redis-sentinel "$dir/sentinel.conf" --pidfile "$(pidfile "sentinel-$i")" \
        --logfile "$LOG/sentinel-$i.log"
}

start_sentinel() {
    local i="$1" c="sentinel-$1" n
    ensure_secrets
    if comp_pid "$c" >/dev/null; then say "$c already running"; return 0; fi
    mkdir -p "$LOG"
    sv_start "$c"
    for n in $(seq 1 100); do
        if redis-cli -p "$(sentinel_port "$i")" SENTINEL get-master-addr-by-name \
            "$REDIS_MASTER_NAME" 2>/dev/null | grep -q .; then
            say "$c up on 127.0.0.1:$(sentinel_port "$i")"
            return 0
        fi
        sleep 0.1
    done
    err "$c does not answer (log: $LOG/sentinel-$i.log)"
    return 1
}

start_redis() {
    ensure_secrets
    if comp_pid redis >/dev/null; then say "redis already running"; return 0; fi
    mkdir -p "$REDIS_DIR" "$LOG"
    chmod 700 "$REDIS_DIR"
    [ "$REDIS_MODE" = sentinel ] || write_redis_acl
    sv_start redis
    local i
    for i in $(seq 1 100); do
        if [ "$(rcli ping 2>/dev/null)" = PONG ] &&
            [ "$(rcli info persistence 2>/dev/null |
                grep -c '^loading:0')" = 1 ]; then
            say "redis up on 127.0.0.1:$REDIS_PORT"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG/redis.log" >&2
    err "redis did not answer PING"
    return 1
}

# ---- services ------------------------------------------------------------------------------

# The environment a service binary runs with — database credentials from $SECRETS, ports, keys
# directory, URLs of the others — as `env` arguments in the global array SVC_ENV. The one
# definition both `start` (the server) and `exec` (its maintenance commands) use.
# Every instance's internal URL of a service, comma-separated (instance 1 first).
peer_urls() {
    local i out=""
    for i in $(instances_of "$1"); do out+="${out:+,}http://127.0.0.1:$(svc_iport "$i")"; done
    echo "$out"
}

# <run dir>/peers.conf: "<service> <internal URL>" per instance, which each service reads at
# start (it wins over the ANTAR_*_URL lists) and again on SIGHUP. Written atomically.
write_peers() {
    mkdir -p "$RUN"
    {
        echo "# Written by scripts/stack.sh ($NINST instance(s) per service); re-read on SIGHUP."
        local s i
        for s in user driver core; do
            for i in $(instances_of "$s"); do echo "$s http://127.0.0.1:$(svc_iport "$i")"; done
        done
    } >"$PEERS.tmp"
    mv -f "$PEERS.tmp" "$PEERS"
}

# `stack.sh peers`: rewrite peers.conf and have every running service re-read it.
do_peers() {
    write_peers
    local c pid
    for c in "${SVC_COMPS[@]}"; do
        if pid="$(comp_pid "$c")"; then kill -HUP "$pid" 2>/dev/null && say "$c: SIGHUP"; fi
    done
    return 0
}

service_env() {
    local comp="$1" svc port secret dbpw
    svc="$(comp_base "$comp")"
    port="$(svc_port "$comp")"
    case "$svc" in
    user) secret="$CLIENT_SECRET_USER" dbpw="$DB_PASSWORD_USER" ;;
    driver) secret="$CLIENT_SECRET_DRIVER" dbpw="$DB_PASSWORD_DRIVER" ;;
    core) secret="$CLIENT_SECRET_CORE" dbpw="$DB_PASSWORD_CORE" ;;
    esac
    local rpw
    case "$svc" in
    user) rpw="$REDIS_PASSWORD_USER" ;; driver) rpw="$REDIS_PASSWORD_DRIVER" ;;
    core) rpw="$REDIS_PASSWORD_CORE" ;;
    esac
    SVC_ENV=(
        -u ANTAR_USER_PORT -u ANTAR_DRIVER_PORT -u ANTAR_CORE_PORT
        -u ANTAR_USER_INTERNAL_PORT -u ANTAR_DRIVER_INTERNAL_PORT -u ANTAR_CORE_INTERNAL_PORT
        ANTAR_PORT="$port"
        ANTAR_INTERNAL_PORT="$(svc_iport "$comp")"
        ANTAR_INSTANCE="$(comp_inst "$comp")"
        ANTAR_PEERS_FILE="$PEERS"
        ANTAR_HOST=127.0.0.1
        ANTAR_DB_HOST=127.0.0.1
        ANTAR_DB_PORT="$DB_PORT"
        ANTAR_DB_USER="antar_$svc"
        ANTAR_DB_PASSWORD="$dbpw"
        ANTAR_DB_NAME="antar_$svc"
        ANTAR_REDIS_HOST=127.0.0.1
        ANTAR_REDIS_PORT="$REDIS_PORT"
        ANTAR_REDIS_USER="antar_$svc"
        ANTAR_REDIS_PASSWORD="$rpw"
        ANTAR_USER_URL="$(peer_urls user)"
        ANTAR_DRIVER_URL="$(peer_urls driver)"
        ANTAR_CORE_URL="$(peer_urls core)"
        ANTAR_CLIENT_ID="$svc-service"
        ANTAR_CLIENT_SECRET="$secret"
        ANTAR_CSRF_KEY="$CSRF_KEY"
        ANTAR_ISSUER="http://127.0.0.1:$EDGE_PORT"
        ANTAR_API_FILE="$API/$svc.json"
        ANTAR_DOCS_DIR="$REPO/third_party/node_modules/swagger-ui-dist"
        ANTAR_SQL_DIR="$REPO/services/$svc/sql"
        ANTAR_STATE_DIR="$RUN/$svc"
        # The browser console (docs/console.md): its files, the origins its sign-in may return
        # to, and the customer accounts that may sign in to it as operators.
        ANTAR_WEB_DIR="$REPO/web"
        ANTAR_CONSOLE_ORIGINS="http://127.0.0.1:$EDGE_PORT http://localhost:$EDGE_PORT https://127.0.0.1:$EDGE_TLS_PORT https://localhost:$EDGE_TLS_PORT"
        ANTAR_OPERATORS="${ANTAR_OPERATORS-operator@antar.id}"
    )
    # Galera: through the proxy's TCP port, never a node's socket (the proxy picks the node).
    if [ "$DB_MODE" = galera ]; then
        SVC_ENV+=(ANTAR_DB_SOCKET=)
    else
        SVC_ENV+=(ANTAR_DB_SOCKET="$DB_SOCK")
    fi
    # Sentinel: lib/kv.c asks these for the master; ANTAR_REDIS_HOST/PORT above are only the
    # first guess.
    if [ "$REDIS_MODE" = sentinel ]; then
        local i sl=""
        for i in $(seq 1 "$SENTINELS"); do sl+="${sl:+,}127.0.0.1:$(sentinel_port "$i")"; done
        SVC_ENV+=(ANTAR_REDIS_SENTINELS="$sl" ANTAR_REDIS_MASTER_NAME="$REDIS_MASTER_NAME")
    else
        SVC_ENV+=(ANTAR_REDIS_SENTINELS= ANTAR_REDIS_MASTER_NAME=)
    fi
    if [ "$svc" = core ]; then
        # ops: the simulator's audit client (scope ops, the read-only audit routes only).
        SVC_ENV+=(ANTAR_SERVICE_SECRETS="user-service:$CLIENT_SECRET_USER,driver-service:$CLIENT_SECRET_DRIVER,core-service:$CLIENT_SECRET_CORE,ops:$CLIENT_SECRET_OPS")
    fi
}

service_exe() {
    local exe="$BIN/antar-$1"
    if [ ! -x "$exe" ]; then
        err "$exe not found or not executable — build first (make build, or set ANTAR_BIN_DIR)"
        return 1
    fi
    echo "$exe"
}

# Start one instance (user, user-2 …). Every instance of a service shares its state folder
# (<run dir>/<service>: core's signing keys must be the same in every core).
start_service() {
    local svc="$1" port exe
    ensure_secrets
    port="$(svc_port "$svc")"
    if comp_pid "$svc" >/dev/null; then say "$svc already running"; return 0; fi
    exe="$(service_exe "$(comp_base "$svc")")" || return 1
    if port_open "$port" || port_open "$(svc_iport "$svc")"; then
        err "port $port or $(svc_iport "$svc") is already in use: cannot start $svc"
        return 1
    fi
    [ -s "$PEERS" ] || write_peers
    mkdir -p "$LOG" "$RUN/$(comp_base "$svc")"
    chmod 700 "$RUN/$(comp_base "$svc")"
    sv_start "$svc"
    local i
    for i in $(seq 1 50); do
        comp_pid "$svc" >/dev/null && break
        sleep 0.1
    done
    say "$svc started (pid $(comp_pid "$svc" || echo '?'), port $port, internal $(svc_iport "$svc"))"
}

# Run a service binary in the foreground with the stack's environment for it (a maintenance
# command such as --seed-drivers), stdin/stdout/stderr passed through, and return its status.
# It needs the stack's database, not the service itself running; it never creates secrets (new
# ones would not match the running MariaDB's accounts).
exec_service() {
    local svc="$1" exe
    shift
    case "$svc" in
    user | driver | core) ;;
    *) err "exec: unknown service '$svc' (user driver core)"; return 2 ;;
    esac
    if [ ! -s "$SECRETS" ]; then
        err "exec: no $SECRETS: start the stack first (scripts/stack.sh up, or start mariadb)"
        return 1
    fi
    if ! comp_pid mariadb >/dev/null; then
        err "exec: mariadb is not running (scripts/stack.sh start mariadb)"
        return 1
    fi
    exe="$(service_exe "$svc")" || return 1
    # shellcheck disable=SC1090
    . "$SECRETS"
    service_env "$svc"
    cd "$REPO" && exec env "${SVC_ENV[@]}" "$exe" "$@"
}

# Wait until each named service answers GET /health/ready with 200 on both of its listeners;
# fail fast when one exits.
wait_healthy() {
    local deadline=$((SECONDS + ${ANTAR_UP_TIMEOUT_S:-60})) svc pending=("$@") left code
    while [ "${#pending[@]}" -gt 0 ]; do
        left=()
        for svc in "${pending[@]}"; do
            if ! comp_pid "$svc" >/dev/null; then
                err "$svc exited during start-up; last lines of $LOG/$svc.log:"
                tail -n 30 "$LOG/$svc.log" >&2 || true
                return 1
            fi
            code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                "http://127.0.0.1:$(svc_port "$svc")/health/ready" 2>/dev/null || true)"
            [ "$code" = 200 ] && code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                "http://127.0.0.1:$(svc_iport "$svc")/health/ready" 2>/dev/null || true)"
            [ "$code" = 200 ] || left+=("$svc")
        done
        pending=("${left[@]+"${left[@]}"}")
        [ "${#pending[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for svc in "${pending[@]}"; do
                err "$svc not ready after ${ANTAR_UP_TIMEOUT_S:-60}s; /health/ready says:"
                curl -s --max-time 2 "http://127.0.0.1:$(svc_port "$svc")/health/ready" >&2 || true
                echo >&2
                err "last lines of $LOG/$svc.log:"
                tail -n 30 "$LOG/$svc.log" >&2 || true
            done
            return 1
        fi
        sleep 0.2
    done
    return 0
}

# ---- HAProxy -------------------------------------------------------------------------------

# The edge's TLS material in <run dir>/tls: a local CA (ca.pem, the one clients pin) and a
# certificate for 127.0.0.1/localhost signed by it, made once per run folder with OpenSSL.
# ANTAR_TLS_CERT names a real certificate + key PEM instead (docs/security.md).
ensure_tls() {
    if [ -n "${ANTAR_TLS_CERT:-}" ]; then
        [ -r "$ANTAR_TLS_CERT" ] || { err "ANTAR_TLS_CERT=$ANTAR_TLS_CERT is not readable"; return 1; }
        EDGE_CERT="$ANTAR_TLS_CERT"
        return 0
    fi
    EDGE_CERT="$TLS_DIR/edge.pem"
    [ -s "$EDGE_CERT" ] && [ -s "$TLS_DIR/ca.pem" ] &&
        openssl x509 -checkend 86400 -noout -in "$TLS_DIR/edge.crt" >/dev/null 2>&1 && return 0
    command -v openssl >/dev/null || { err "openssl is not installed (scripts/setup.sh)"; return 1; }
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    (
        set -e
        umask 077
        cd "$TLS_DIR"
        if [ ! -s ca.key ] || ! openssl x509 -checkend 86400 -noout -in ca.pem >/dev/null 2>&1; then
            openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout ca.key -out ca.pem -days 825 -subj "/CN=Antar local CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        fi
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout edge.key -out edge.csr -subj "/CN=localhost" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >edge.ext
        openssl x509 -req -in edge.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out edge.crt -days 397 -sha256 -extfile edge.ext 2>/dev/null
        cat edge.crt ca.pem edge.key >edge.pem.tmp
        mv -f edge.pem.tmp edge.pem
        rm -f edge.csr edge.ext
        chmod 644 ca.pem
    ) || { err "could not make the edge's TLS certificate in $TLS_DIR"; return 1; }
}

haproxy_env() {
    ensure_tls || return 1
    export ANTAR_EDGE_TLS_PORT="$EDGE_TLS_PORT" ANTAR_EDGE_TLS_CERT="$EDGE_CERT" \
        ANTAR_EDGE_LOGIN_RATE_LIMIT="${ANTAR_EDGE_LOGIN_RATE_LIMIT:-20}"
    export ANTAR_EDGE_PORT="$EDGE_PORT" ANTAR_EDGE_USER="127.0.0.1:$USER_PORT" \
        ANTAR_EDGE_DRIVER="127.0.0.1:$DRIVER_PORT" ANTAR_EDGE_CORE="127.0.0.1:$CORE_PORT" \
        ANTAR_DEPLOY_DIR="$REPO/deploy" ANTAR_EDGE_RUN_DIR="$RUN" \
        ANTAR_EDGE_RATE_LIMIT="${ANTAR_EDGE_RATE_LIMIT:-30}" \
        ANTAR_EDGE_BODY_LIMIT="${ANTAR_BODY_LIMIT:-65536}"
    local i s u
    for i in $(seq 2 "$NINST"); do
        for s in user driver core; do
            u="$(echo "$s" | tr a-z A-Z)"
            export "ANTAR_EDGE_${u}_$i=127.0.0.1:$(svc_port "$s-$i")"
        done
    done
}

# deploy/haproxy.cfg is the edge's configuration; what HAProxy runs is <run dir>/haproxy.cfg,
# the same text with each `server <name>1 "${ANTAR_EDGE_<SVC>}" …` line repeated once per
# instance: <name>2 "${ANTAR_EDGE_<SVC>_2}" …, whose addresses haproxy_env exports. With one
# instance the two files are the same.
render_haproxy_cfg() {
    awk -v n="$NINST" '
        match($0, /^[ \t]*server [a-z_]+1 "\$\{ANTAR_EDGE_(USER|DRIVER|CORE)\}"/) {
            print
            for (i = 2; i <= n; i++) {
                line = $0
                sub(/1 "\$\{ANTAR_EDGE_/, i " \"${ANTAR_EDGE_", line)
                sub(/\}"/, "_" i "}\"", line)
                print line
            }
            next
        }
        { print }' "$REPO/deploy/haproxy.cfg" >"$RUN/haproxy.cfg.tmp" &&
        mv -f "$RUN/haproxy.cfg.tmp" "$RUN/haproxy.cfg"
}

start_haproxy() {
    if comp_pid haproxy >/dev/null; then say "haproxy already running"; return 0; fi
    mkdir -p "$LOG"
    haproxy_env || return 1
    render_haproxy_cfg || { err "cannot write $RUN/haproxy.cfg"; return 1; }
    if ! "$HAPROXY" -q -c -f "$RUN/haproxy.cfg" >"$LOG/haproxy.log" 2>&1; then
        cat "$LOG/haproxy.log" >&2
        err "deploy/haproxy.cfg is invalid"
        return 1
    fi
    sv_start haproxy
    local i
    for i in $(seq 1 50); do
        port_open "$EDGE_PORT" && { say "haproxy up on 127.0.0.1:$EDGE_PORT"; return 0; }
        sleep 0.1
    done
    err "haproxy is not listening on $EDGE_PORT"
    return 1
}

# ---- components ----------------------------------------------------------------------------

# The components a name on the command line means: a service's plain name is every instance
# of it, <service>-1 instance 1 only (whose runit folder and pid file keep the plain name).
expand_comp() {
    case "$1" in
    user | driver | core) instances_of "$1" ;;
    user-1 | driver-1 | core-1 | mariadb-1 | redis-1) echo "${1%-1}" ;;
    *)
        local c
        for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && { echo "$1"; return 0; }; done
        err "unknown component '$1' (${COMPONENTS[*]})"
        return 2
        ;;
    esac
}

start_comp() {
    local list c
    list="$(expand_comp "$1")" || return 2
    for c in $list; do start_one "$c" || return 1; done
}

start_one() {
    local ok=0
    case "$1" in
    mariadb) start_mariadb && ok=1 ;;
    mariadb-*) start_galera_node "$(comp_inst "$1")" && ok=1 ;;
    dbproxy) start_dbproxy && ok=1 ;;
    redis) start_redis && ok=1 ;;
    redis-*) start_redis_node "$(comp_inst "$1")" && ok=1 ;;
    sentinel-*) start_sentinel "$(comp_inst "$1")" && ok=1 ;;
    haproxy) start_haproxy && ok=1 ;;
    *) start_service "$1" && wait_healthy "$1" && ok=1 ;;
    esac
    # A component that cannot come up is not left restarting over and over.
    [ "$ok" = 1 ] || { stop_one "$1" >/dev/null 2>&1; return 1; }
}

# Tell runit to stop the component and keep it down (SIGTERM, then SIGKILL after wait_s); a
# process not under this run folder's runit (a stack started by an older stack.sh) is stopped
# by its pid file.
stop_supervised() {
    local c="$1" wait_s="$2"
    if supervised "$c"; then
        : >"$SV/$c/stopping"
        sv -w "$wait_s" force-stop "$SV/$c" >/dev/null 2>&1 || true
        if comp_pid "$c" >/dev/null; then
            err "$c still runs after sv force-stop"
        else
            rm -f "$(pidfile "$c")"
            say "$c stopped"
            return 0
        fi
    fi
    stop_pid "$c" "$wait_s"
}

stop_comp() {
    local list c rc=0
    list="$(expand_comp "$1")" || return 2
    for c in $list; do stop_one "$c" || rc=1; done
    return "$rc"
}

stop_one() {
    case "$1" in
    mariadb | mariadb-*) stop_supervised "$1" 30 ;;
    redis | redis-* | sentinel-* | dbproxy) stop_supervised "$1" 10 ;;
    haproxy) stop_supervised "$1" 10 ;;
    # A service drains on SIGTERM within ANTAR_DRAIN_S (10 s) and then exits by itself; the
    # wait is longer so that SIGKILL is only for one that is truly stuck.
    *) stop_supervised "$1" $((${ANTAR_DRAIN_S:-10} + 5)) ;;
    esac
}

# Stop the supervisor: each runsv exits once its component is down (sv exit), then runsvdir.
# HUP, not TERM, and no `sv exit` first: runsvdir respawns a runsv that exits while it runs, and
# on TERM it exits leaving its runsv processes behind (an idle runsv per component lingered
# after every `make down`). On HUP it sends each runsv TERM (= exit once its component is down,
# which it is by now) and exits.
stop_supervisor() {
    local pid c i
    if pid="$(sup_pid)"; then
        kill -HUP "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$SUP_PID"
    # A runsv still there (from a TERMed runsvdir of an older stack.sh): tell it to exit.
    if [ -d "$SV" ]; then
        for c in "${COMPONENTS[@]}"; do
            sv status "$SV/$c" >/dev/null 2>&1 && sv exit "$SV/$c" >/dev/null 2>&1 || true
        done
        for i in $(seq 1 50); do
            local remaining=0
            for c in "${COMPONENTS[@]}"; do
                sv status "$SV/$c" >/dev/null 2>&1 && remaining=1
            done
            [ "$remaining" = 0 ] && break
            sleep 0.1
        done
    fi
    say "supervisor stopped"
}

do_down() {
    local c i
    stop_one haproxy
    # Services in parallel (each may take its drain time), the rest in order: Sentinels before
    # the Redis they watch (no failover on the way down), Galera's node 1 last so that it is the
    # node safe to bootstrap the next `up` from.
    local pids=()
    for c in "${SVC_COMPS[@]}"; do
        stop_one "$c" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for ((i = ${#REDIS_COMPS[@]} - 1; i >= 0; i--)); do stop_one "${REDIS_COMPS[$i]}"; done
    for ((i = ${#DB_COMPS[@]} - 1; i >= 0; i--)); do stop_one "${DB_COMPS[$i]}"; done
    stop_supervisor
}

do_up() {
    local svc
    for svc in core user driver; do
        if [ ! -x "$BIN/antar-$svc" ]; then
            err "$BIN/antar-$svc not found or not executable — build first (make build, or set ANTAR_BIN_DIR)"
            return 1
        fi
    done
    mkdir -p "$RUN" "$LOG"
    printf 'instances=%s\ndb=%s\nredis=%s\n' "$NINST" "$DB_MODE" "$REDIS_MODE" >"$TOPOLOGY"
    ensure_secrets
    write_peers
    local others=() c
    for c in "${SVC_COMPS[@]}"; do [ "$c" = core ] || others+=("$c"); done
    # Ctrl-C (or a TERM) half-way leaves nothing running behind.
    trap 'err "interrupted; stopping what was started"; do_down >/dev/null 2>&1; exit 130' INT TERM
    if ! {
        start_db && start_kv &&
            start_service core &&
            # Core is the token issuer the others talk to at start; let it listen first.
            wait_port_or_exit core &&
            start_services "${others[@]}" &&
            wait_healthy "${SVC_COMPS[@]}" &&
            start_haproxy
    }; then
        err "up failed; stopping what was started (logs stay in $LOG)"
        do_down >/dev/null 2>&1 || true
        trap - INT TERM
        return 1
    fi
    trap - INT TERM
    say "up: edge http://127.0.0.1:$EDGE_PORT https://127.0.0.1:$EDGE_TLS_PORT (CA $TLS_DIR/ca.pem)  user :$USER_PORT  driver :$DRIVER_PORT  core :$CORE_PORT  (internal :$USER_IPORT :$DRIVER_IPORT :$CORE_IPORT)"
}

start_services() {
    local c
    for c in "$@"; do start_service "$c" || return 1; done
}

start_db() {
    local i
    start_mariadb || return 1
    if [ "$DB_MODE" = galera ]; then
        for i in $(seq 2 "$GALERA_NODES"); do start_galera_node "$i" || return 1; done
        start_dbproxy || return 1
    fi
}

start_kv() {
    local i
    start_redis || return 1
    if [ "$REDIS_MODE" = sentinel ]; then
        start_redis_node 2 || return 1
        for i in $(seq 1 "$SENTINELS"); do start_sentinel "$i" || return 1; done
    fi
}

wait_port_or_exit() {
    local svc="$1" port i
    port="$(svc_port "$svc")"
    for i in $(seq 1 300); do
        port_open "$port" && return 0
        if ! comp_pid "$svc" >/dev/null; then
            err "$svc exited during start-up; last lines of $LOG/$svc.log:"
            tail -n 30 "$LOG/$svc.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    err "$svc is not listening on $port after 30s; last lines of $LOG/$svc.log:"
    tail -n 30 "$LOG/$svc.log" >&2 || true
    return 1
}

do_status() {
    local c pid port rc=0 st
    if pid="$(sup_pid)"; then
        printf '%-8s running  pid %-7s %s\n' runit "$pid" "$SV"
    else
        printf '%-8s stopped\n' runit
        rc=1
    fi
    for c in "${COMPONENTS[@]}"; do
        case "$c" in
        mariadb) port="$DB_PORT"; [ "$DB_MODE" = galera ] && port="$(galera_port 1)" ;;
        mariadb-*) port="$(galera_port "$(comp_inst "$c")")" ;;
        dbproxy) port="$DB_PORT" ;;
        redis | redis-*) port="$(redis_node_port "$(comp_inst "$c")")" ;;
        sentinel-*) port="$(sentinel_port "$(comp_inst "$c")")" ;;
        haproxy) port="$EDGE_PORT" ;;
        *) port="$(svc_port "$c")" ;;
        esac
        st=""
        if supervised "$c"; then
            st="$(sv status "$SV/$c" 2>/dev/null | sed -e "s|$SV/$c: ||" -e 's/;.*//' -e 's/, normally down//')"
        fi
        if pid="$(comp_pid "$c")"; then
            printf '%-8s running  pid %-7s port %-5s %s\n' "$c" "$pid" "$port" "$st"
        else
            printf '%-8s stopped           port %-5s %s\n' "$c" "$port" "$st"
            rc=1
        fi
    done
    return "$rc"
}

usage() {
    echo "usage: $0 up|down|status|start <c>|stop <c>|restart <c>|exec <svc> [args…]" >&2
    echo "       components: ${COMPONENTS[*]}; svc: user driver core" >&2
    exit 2
}

cmd="${1:-}"
case "$cmd" in
up) do_up ;;
down) do_down ;;
status) do_status ;;
start) [ $# -eq 2 ] || usage; start_comp "$2" ;;
stop) [ $# -eq 2 ] || usage; stop_comp "$2" ;;
restart) [ $# -eq 2 ] || usage; stop_comp "$2" && start_comp "$2" ;;
exec) [ $# -ge 2 ] || usage; shift; exec_service "$@" ;;
peers) do_peers ;;
_run) [ $# -eq 2 ] || usage; run_component "$2" ;;
_finish) [ $# -ge 2 ] || usage; shift; finish_component "$@" ;;
*) usage ;;
esac
