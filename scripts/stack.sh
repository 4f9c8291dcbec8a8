#!/usr/bin/env bash
# stack.sh — start and stop the real Antar stack as ordinary processes under one run folder.
#
#   scripts/stack.sh up | down | status
#   scripts/stack.sh start|stop|restart <mariadb|redis|core|user|driver|haproxy>
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
COMPONENTS=(mariadb redis core user driver haproxy)

MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
INSTALL_DB="$(command -v mariadb-install-db || echo /usr/bin/mariadb-install-db)"

say() { echo "stack: $*"; }
err() { echo "stack: error: $*" >&2; }

svc_port() {
    case "$1" in
    user) echo "$USER_PORT" ;; driver) echo "$DRIVER_PORT" ;; core) echo "$CORE_PORT" ;;
    esac
}

svc_iport() {
    case "$1" in
    user) echo "$USER_IPORT" ;; driver) echo "$DRIVER_IPORT" ;; core) echo "$CORE_IPORT" ;;
    esac
}

# The program name a component's pid must be running (checked in /proc/<pid>/comm prefix).
comp_prog() {
    case "$1" in
    mariadb) echo mariadbd ;; redis) echo redis-server ;; haproxy) echo haproxy ;;
    *) echo "antar-$1" ;;
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
        REDIS_PASSWORD_DRIVER REDIS_PASSWORD_ADMIN; do
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
    mariadb)
        local asroot=()
        [ "$(id -u)" -eq 0 ] && asroot=(--user=root)
        exec >>"$LOG/mariadb.out" 2>&1 </dev/null
        exec "$MARIADBD" --no-defaults --datadir="$DB_DATA" \
            --socket="$DB_SOCK" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --pid-file="$(pidfile mariadb)" --log-error="$LOG/mariadb.log" \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
            --innodb-buffer-pool-size=64M --max-connections=300 --skip-name-resolve "${asroot[@]}"
        ;;
    redis)
        exec >>"$LOG/redis.log" 2>&1 </dev/null
        exec redis-server "$REPO/deploy/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
            --dir "$REDIS_DIR" --pidfile "$(pidfile redis)" --daemonize no \
            --logfile "$LOG/redis.log" --aclfile "$REDIS_ACL"
        ;;
    haproxy)
        haproxy_env
        exec >>"$LOG/haproxy.log" 2>&1 </dev/null
        exec "$HAPROXY" -f "$REPO/deploy/haproxy.cfg" -db
        ;;
    user | driver | core)
        local exe
        ensure_secrets
        exe="$(service_exe "$c")" || exit 111
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
    provision_mariadb
    say "mariadb up on 127.0.0.1:$DB_PORT (socket $DB_SOCK)"
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
    if ! printf '%s' "$sql" | db_root >"$LOG/mariadb-provision.log" 2>&1; then
        cat "$LOG/mariadb-provision.log" >&2
        err "mariadb provisioning failed"
        return 1
    fi
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
    local h_core h_user h_driver h_admin
    h_core="$(printf '%s' "$REDIS_PASSWORD_CORE" | sha256sum | cut -d' ' -f1)"
    h_user="$(printf '%s' "$REDIS_PASSWORD_USER" | sha256sum | cut -d' ' -f1)"
    h_driver="$(printf '%s' "$REDIS_PASSWORD_DRIVER" | sha256sum | cut -d' ' -f1)"
    h_admin="$(printf '%s' "$REDIS_PASSWORD_ADMIN" | sha256sum | cut -d' ' -f1)"
    local common="+ping +hello +exists +client|id +client|tracking +subscribe +unsubscribe"
    # The push channel (lib/events.c): publishing is one XADD to antar:events; serving streams
    # reads it and keeps each subject's open streams in antar:events:conns:<sub>, with a Lua
    # script whose commands are checked against the same ACL.
    local events_serve="+xadd +xread +xrange +xrevrange +zadd +zrem +eval +zremrangebyscore +zcard +pexpire"
    # The trace record (lib/trace_record.c): every service appends its spans to the hash
    # antar:calls in a script that keeps antar:calls:age to the newest fields; user-service
    # reads it for the console (HMGET).
    local trace_record="+eval +hget +hset +hstrlen +hdel +hmget +zadd +zcard +zpopmin"
    (
        umask 077
        cat >"$REDIS_ACL.tmp" <<ACL
user default off resetpass ~* &* +@all
user antar_core on #$h_core ~* &* +@all -@admin -flushall -flushdb -keys -debug -migrate
user antar_user on #$h_user resetkeys ~revoked:jti:* ~antar:events ~antar:events:conns:* ~antar:calls ~antar:calls:age resetchannels &__redis__:invalidate nocommands $common $events_serve $trace_record
user antar_driver on #$h_driver resetkeys ~revoked:jti:* ~drv:* ~antar:events ~antar:calls ~antar:calls:age resetchannels &__redis__:invalidate nocommands $common +get +set +del +xadd $trace_record
user antar_admin on #$h_admin ~* &* +@all
ACL
    )
    mv -f "$REDIS_ACL.tmp" "$REDIS_ACL"
}

start_redis() {
    ensure_secrets
    if comp_pid redis >/dev/null; then say "redis already running"; return 0; fi
    mkdir -p "$REDIS_DIR" "$LOG"
    chmod 700 "$REDIS_DIR"
    write_redis_acl
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
service_env() {
    local svc="$1" port secret dbpw
    port="$(svc_port "$svc")"
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
        ANTAR_INTERNAL_PORT="$(svc_iport "$svc")"
        ANTAR_HOST=127.0.0.1
        ANTAR_DB_HOST=127.0.0.1
        ANTAR_DB_PORT="$DB_PORT"
        ANTAR_DB_SOCKET="$DB_SOCK"
        ANTAR_DB_USER="antar_$svc"
        ANTAR_DB_PASSWORD="$dbpw"
        ANTAR_DB_NAME="antar_$svc"
        ANTAR_REDIS_HOST=127.0.0.1
        ANTAR_REDIS_PORT="$REDIS_PORT"
        ANTAR_REDIS_USER="antar_$svc"
        ANTAR_REDIS_PASSWORD="$rpw"
        ANTAR_USER_URL="http://127.0.0.1:$USER_IPORT"
        ANTAR_DRIVER_URL="http://127.0.0.1:$DRIVER_IPORT"
        ANTAR_CORE_URL="http://127.0.0.1:$CORE_IPORT"
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

start_service() {
    local svc="$1" port exe
    ensure_secrets
    port="$(svc_port "$svc")"
    if comp_pid "$svc" >/dev/null; then say "$svc already running"; return 0; fi
    exe="$(service_exe "$svc")" || return 1
    if port_open "$port" || port_open "$(svc_iport "$svc")"; then
        err "port $port or $(svc_iport "$svc") is already in use: cannot start $svc"
        return 1
    fi
    mkdir -p "$LOG" "$RUN/$svc"
    chmod 700 "$RUN/$svc"
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
}

start_haproxy() {
    if comp_pid haproxy >/dev/null; then say "haproxy already running"; return 0; fi
    mkdir -p "$LOG"
    haproxy_env || return 1
    if ! "$HAPROXY" -q -c -f "$REPO/deploy/haproxy.cfg" >"$LOG/haproxy.log" 2>&1; then
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

start_comp() {
    local ok=0
    case "$1" in
    mariadb) start_mariadb && ok=1 ;;
    redis) start_redis && ok=1 ;;
    core | user | driver) start_service "$1" && wait_healthy "$1" && ok=1 ;;
    haproxy) start_haproxy && ok=1 ;;
    *) err "unknown component '$1' (mariadb redis core user driver haproxy)"; return 2 ;;
    esac
    # A component that cannot come up is not left restarting over and over.
    [ "$ok" = 1 ] || { stop_comp "$1" >/dev/null 2>&1; return 1; }
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
    case "$1" in
    mariadb) stop_supervised mariadb 30 ;;
    redis) stop_supervised redis 10 ;;
    # A service drains on SIGTERM within ANTAR_DRAIN_S (10 s) and then exits by itself; the
    # wait is longer so that SIGKILL is only for one that is truly stuck.
    core | user | driver) stop_supervised "$1" $((${ANTAR_DRAIN_S:-10} + 5)) ;;
    haproxy) stop_supervised "$1" 10 ;;
    *) err "unknown component '$1' (mariadb redis core user driver haproxy)"; return 2 ;;
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
            local left=0
            for c in "${COMPONENTS[@]}"; do
                sv status "$SV/$c" >/dev/null 2>&1 && left=1
            done
            [ "$left" = 0 ] && break
            sleep 0.1
        done
    fi
    say "supervisor stopped"
}

do_down() {
    local c
    for c in haproxy driver user core redis mariadb; do stop_comp "$c"; done
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
    ensure_secrets
    if ! {
        start_mariadb && start_redis &&
            start_service core &&
            # Core is the token issuer the others talk to at start; let it listen first.
            wait_port_or_exit core &&
            start_service user && start_service driver &&
            wait_healthy core user driver &&
            start_haproxy
    }; then
        err "up failed; stopping what was started (logs stay in $LOG)"
        do_down >/dev/null 2>&1 || true
        return 1
    fi
    say "up: edge http://127.0.0.1:$EDGE_PORT https://127.0.0.1:$EDGE_TLS_PORT (CA $TLS_DIR/ca.pem)  user :$USER_PORT  driver :$DRIVER_PORT  core :$CORE_PORT  (internal :$USER_IPORT :$DRIVER_IPORT :$CORE_IPORT)"
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
    for c in mariadb redis core user driver haproxy; do
        case "$c" in
        mariadb) port="$DB_PORT" ;; redis) port="$REDIS_PORT" ;; haproxy) port="$EDGE_PORT" ;;
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
    echo "       components: mariadb redis core user driver haproxy; svc: user driver core" >&2
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
_run) [ $# -eq 2 ] || usage; run_component "$2" ;;
_finish) [ $# -ge 2 ] || usage; shift; finish_component "$@" ;;
*) usage ;;
esac
