#!/usr/bin/env bash
# make-secrets.sh — the Secrets of one city for deploy/k8s, made once into deploy/k8s/secrets/
# (ignored by git, mode 0600), the same set scripts/stack.sh keeps in <run dir>/secrets.env:
#   secrets/shared.env     ANTAR_CSRF_KEY (the HMAC key every service checks CSRF tokens with)
#   secrets/<svc>.env      ANTAR_DB_PASSWORD, ANTAR_REDIS_PASSWORD, ANTAR_CLIENT_SECRET
#                          (core also ANTAR_SERVICE_SECRETS: every client's secret, ops included)
#   secrets/mariadb.env    root-password
#   secrets/redis.env      REDIS_PASSWORD_REPL, REDIS_PASSWORD_SENTINEL, REDIS_PASSWORD_ADMIN
#   secrets/users.acl      Redis ACL users, passwords as SHA-256 only (the same rules as
#                          scripts/stack.sh's write_redis_acl; tests/integration/test_k8s.py
#                          keeps the two equal)
#   secrets/ops.env        CLIENT_SECRET_OPS, for the simulator's audit client
# kustomization.yaml turns them into Secrets; `kubectl apply -k deploy/k8s` fails without them.
# A file already there is kept (re-running never rotates a password under a running city).
# Production: keep these in a secret manager (External Secrets, Sealed Secrets) instead.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets"
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

if [ -s "$DIR/redis.env" ]; then
    echo "make-secrets: $DIR already has secrets; nothing changed"
    exit 0
fi

CSRF_KEY="$(rand_hex 32)"
CLIENT_SECRET_USER="$(rand_hex 24)" CLIENT_SECRET_DRIVER="$(rand_hex 24)"
CLIENT_SECRET_CORE="$(rand_hex 24)" CLIENT_SECRET_OPS="$(rand_hex 24)"
REDIS_PASSWORD_CORE="$(rand_hex 24)" REDIS_PASSWORD_USER="$(rand_hex 24)"
REDIS_PASSWORD_DRIVER="$(rand_hex 24)" REDIS_PASSWORD_ADMIN="$(rand_hex 24)"
REDIS_PASSWORD_REPL="$(rand_hex 24)" REDIS_PASSWORD_SENTINEL="$(rand_hex 24)"

echo "ANTAR_CSRF_KEY=$CSRF_KEY" >"$DIR/shared.env"
for svc in user driver core; do
    case "$svc" in
    user) cs="$CLIENT_SECRET_USER" rp="$REDIS_PASSWORD_USER" ;;
    driver) cs="$CLIENT_SECRET_DRIVER" rp="$REDIS_PASSWORD_DRIVER" ;;
    core) cs="$CLIENT_SECRET_CORE" rp="$REDIS_PASSWORD_CORE" ;;
    esac
    {
        echo "ANTAR_DB_PASSWORD=$(rand_hex 24)"
        echo "ANTAR_REDIS_PASSWORD=$rp"
        echo "ANTAR_CLIENT_SECRET=$cs"
        [ "$svc" != core ] || echo "ANTAR_SERVICE_SECRETS=user-service:$CLIENT_SECRET_USER,driver-service:$CLIENT_SECRET_DRIVER,core-service:$CLIENT_SECRET_CORE,ops:$CLIENT_SECRET_OPS"
    } >"$DIR/$svc.env"
done
echo "root-password=$(rand_hex 24)" >"$DIR/mariadb.env"
echo "CLIENT_SECRET_OPS=$CLIENT_SECRET_OPS" >"$DIR/ops.env"

h_core="$(sha "$REDIS_PASSWORD_CORE")" h_user="$(sha "$REDIS_PASSWORD_USER")"
h_driver="$(sha "$REDIS_PASSWORD_DRIVER")" h_admin="$(sha "$REDIS_PASSWORD_ADMIN")"
h_repl="$(sha "$REDIS_PASSWORD_REPL")" h_sentinel="$(sha "$REDIS_PASSWORD_SENTINEL")"
# The same rules as the local stack (deploy/redis-acl.sh, sourced by scripts/stack.sh too):
# one user per service with only its keys and commands, the default user off.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/redis-acl.sh"
write_acl() {
    redis_acl_text >"$1"
}
write_acl "$DIR/users.acl"
{
    echo "REDIS_PASSWORD_REPL=$REDIS_PASSWORD_REPL"
    echo "REDIS_PASSWORD_SENTINEL=$REDIS_PASSWORD_SENTINEL"
    echo "REDIS_PASSWORD_ADMIN=$REDIS_PASSWORD_ADMIN"
} >"$DIR/redis.env"
echo "make-secrets: wrote $DIR (shared, user, driver, core, mariadb, redis, ops, users.acl)"
