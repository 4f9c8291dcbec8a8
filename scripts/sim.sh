#!/usr/bin/env bash
# sim.sh — `make sim`: run the city (tools/sim, antar-sim) against a running stack (`make up`).
#
#   scripts/sim.sh [antar-sim options]      e.g. --drivers 200 --duration 60
#   scripts/sim.sh --audit                  audit the services and the last run only
#
# The simulator never signs its accounts up or in through the edge: 20,000 drivers cannot each
# pass the sign-up rate limit and ~0.1 s of Argon2id per run. Instead this script keeps an
# account pool under <run dir>/sim/pool.tsv (mode 0600, refresh tokens in it) and fills what is
# missing with the services' own offline commands, run with each service's own database
# credentials (scripts/stack.sh exec):
#   antar-driver --seed-drivers N, antar-user --seed-customers N   accounts sim-*-n@sim.antar.id
#   antar-core --issue-refresh-tokens                              a refresh token per account
# Each run then refreshes every token through the edge's /oauth/token (rotation included) and
# writes the new ones back. A token the services refused is dropped from the pool and issued
# again here next time.
#
# Environment: ANTAR_RUN_DIR (default <repo>/.run), ANTAR_PORT_OFFSET, ANTAR_BIN_DIR.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ANTAR_RUN_DIR="${ANTAR_RUN_DIR:-$REPO/.run}"
case "$ANTAR_RUN_DIR" in /*) ;; *) ANTAR_RUN_DIR="$REPO/$ANTAR_RUN_DIR" ;; esac
BIN="${ANTAR_BIN_DIR:-$REPO/build/bin}"
SIM="$BIN/antar-sim"
DIR="$ANTAR_RUN_DIR/sim"
POOL="$DIR/pool.tsv"

die() { echo "sim: error: $*" >&2; exit 2; }

[ -x "$SIM" ] || die "$SIM not found (make build)"
[ -s "$ANTAR_RUN_DIR/secrets.env" ] || die "no stack in $ANTAR_RUN_DIR (make up first)"

# The pool the run needs: the same defaults as antar-sim (drivers 200, customers 2 × drivers).
drivers=200
customers=""
audit_only=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
    --drivers) drivers="${args[$((i + 1))]:-}" ;;
    --drivers=*) drivers="${args[$i]#--drivers=}" ;;
    --customers) customers="${args[$((i + 1))]:-}" ;;
    --customers=*) customers="${args[$i]#--customers=}" ;;
    --audit) audit_only=1 ;;
    esac
done
[[ "$drivers" =~ ^[0-9]+$ ]] || die "--drivers must be a whole number"
[ -n "$customers" ] || customers=$((drivers * 2))
[[ "$customers" =~ ^[0-9]+$ ]] || die "--customers must be a whole number"

if [ "$audit_only" = 1 ]; then
    exec "$SIM" "$@"
fi

mkdir -p "$DIR"
chmod 700 "$DIR"
[ -f "$POOL" ] || (umask 077 && : >"$POOL")

have() { awk -F'\t' -v r="$1" '$1 == r' "$POOL" | wc -l; }

if [ "$(have driver)" -lt "$drivers" ] || [ "$(have user)" -lt "$customers" ]; then
    # One password for every seeded account, kept beside the pool (the accounts are the
    # simulator's; nobody signs in with it but a person trying one by hand).
    pwf="$DIR/seed-password"
    [ -s "$pwf" ] || (umask 077 && od -An -tx1 -N12 /dev/urandom | tr -d ' \n' >"$pwf")
    export ANTAR_SEED_PASSWORD="$(cat "$pwf")"
    t0=$(date +%s.%N)
    "$REPO/scripts/stack.sh" exec driver --seed-drivers "$drivers" >"$DIR/drivers.tsv" ||
        die "seeding drivers failed"
    "$REPO/scripts/stack.sh" exec user --seed-customers "$customers" >"$DIR/customers.tsv" ||
        die "seeding customers failed"
    # The accounts without a token in the pool (new ones, and those whose token was refused).
    missing="$DIR/missing.tsv"
    awk -F'\t' 'FILENAME == ARGV[1] { have[$1 ":" $2] = 1; next } !have[$1 ":" $2] { print $1 "\t" $2 "\t" $3 }' \
        "$POOL" "$DIR/drivers.tsv" "$DIR/customers.tsv" >"$missing"
    if [ -s "$missing" ]; then
        cut -f1,2 "$missing" | tr '\t' ':' |
            "$REPO/scripts/stack.sh" exec core --issue-refresh-tokens >"$DIR/tokens.tsv" ||
            die "issuing refresh tokens failed"
        # subject<TAB>token → role<TAB>id<TAB>vehicle<TAB>token, in the seeding order.
        (umask 077 && awk -F'\t' 'FILENAME == ARGV[1] { tok[$1] = $2; next }
            { s = $1 ":" $2; if (s in tok) print $1 "\t" $2 "\t" $3 "\t" tok[s] }' \
            "$DIR/tokens.tsv" "$missing" >>"$POOL")
        rm -f "$DIR/tokens.tsv"
    fi
    rm -f "$missing"
    echo "sim: pool ready: $(have driver) drivers, $(have user) customers" \
        "($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)" >&2
fi

exec "$SIM" "$@"
