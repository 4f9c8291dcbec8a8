#!/usr/bin/env bash
# console-operator.sh — make sure the console's operator account exists on a running stack, and
# print "<email>\t<password>". The operator is a customer account whose email is listed in core's
# ANTAR_OPERATORS (scripts/stack.sh sets operator@antar.id); its password is made once per run
# folder and kept in <run>/console-operator (0600). The password never goes on a command line.
# Environment: ANTAR_RUN_DIR (.run), ANTAR_EDGE_URL (http://127.0.0.1:8080 + offset).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${ANTAR_RUN_DIR:-$REPO/.run}"
EDGE="${ANTAR_EDGE_URL:-http://127.0.0.1:$((8080 + ${ANTAR_PORT_OFFSET:-0}))}"
ops="${ANTAR_OPERATORS-operator@antar.id}"
email="${ops%%,*}"
[ -n "$email" ] || { echo "console-operator: ANTAR_OPERATORS is empty: no operator" >&2; exit 2; }
f="$RUN/console-operator"
mkdir -p "$RUN"
if [ ! -s "$f" ]; then
    (umask 077; printf '%s\t%s\n' "$email" "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$f")
fi
IFS=$'\t' read -r email pw <"$f"
code=$(printf '%s' "$pw" | curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$EDGE/users" \
    --data-urlencode "name=Antar Operator" --data-urlencode "email=$email" \
    --data-urlencode "phone=081100000001" --data-urlencode "password@-")
case "$code" in
201 | 409) ;;
*) echo "console-operator: signing up $email answered $code" >&2; exit 1 ;;
esac
printf '%s\t%s\n' "$email" "$pw"
