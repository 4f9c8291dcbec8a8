#!/usr/bin/python3
"""Generate docs/errors.md, the error catalogue, from the error table of the code.

    scripts/gen_errors.py           write docs/errors.md
    scripts/gen_errors.py --check   exit 1 (and say why) when docs/errors.md is not what it writes

Sources, so that the catalogue cannot drift from what the services send:
- include/antar/error.h, ANTAR_ERROR_MAP: each error's HTTP status, wire code and English default
  message;
- lib/error.c, err_msg_id: the Indonesian default message (Accept-Language: id);
- deploy/errors/*.http: the envelopes HAProxy answers with itself;
- WHEN below: when each error is sent, in words. It is kept here, next to the generator, because
  the C table has no room for prose; a code without a WHEN entry (or an entry without a code)
  stops the generator, so a new error cannot be added without its explanation.

tests/integration/test_contract.py imports this file: it checks that docs/errors.md equals the
output, and that every error example in api/*.yaml uses a code of the table with its status.
"""

import json
import os
import re
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join("docs", "errors.md")

# When each error is sent (by enum name, without ANTAR_E_).
WHEN = {
    "OK": "never sent as an error: success (`\"error\": null`)",
    "BAD_REQUEST": "the body cannot be read: a form body with a malformed %-escape, an empty or "
                   "invalid field name or a field given twice, or a JSON body whose top level "
                   "is not an object",
    "MALFORMED_JSON": "a body sent as `application/json` that does not parse (duplicate keys "
                      "included); the message says where",
    "UNAUTHORIZED": "a route that needs a token got none (no `Authorization: Bearer …`, or "
                    "another scheme)",
    "INVALID_TOKEN": "the bearer token does not verify: bad signature, wrong issuer or audience, "
                     "expired, or revoked (logout, refresh-token reuse)",
    "FORBIDDEN": "the token is valid but its role or scope may not call this route (a driver "
                 "token on a customer route, a user token on `/internal/…`, an `ops` token on a "
                 "non-audit internal route)",
    "CSRF_INVALID": "a state-changing request (POST, PUT, PATCH, DELETE) with a user or driver "
                    "token came without a valid `X-CSRF-Token` (or `csrf_token` form field) from "
                    "`GET /csrf` for the same subject; never on GET, sign-up, OAuth or service "
                    "calls",
    "NOT_FOUND": "no such path, or no such resource for this caller (another customer's order is "
                 "404, not 403, so ids cannot be probed)",
    "METHOD_NOT_ALLOWED": "the path exists but not with this method; the `Allow` header lists the "
                          "methods it takes",
    "CONFLICT": "the resource is not in a state that allows this: cancel after pickup, rate "
                "before completion or twice, accept an offer that is no longer open, pick up a "
                "trip that is not accepted",
    "DUPLICATE": "sign-up or profile change with an email or phone that another account has "
                 "(`field` names it)",
    "TOO_LARGE": "the body is larger than `ANTAR_BODY_LIMIT` (64 KiB)",
    "UNSUPPORTED_MEDIA_TYPE": "a body with a Content-Type other than JSON or "
                              "`application/x-www-form-urlencoded`",
    "INVALID_FIELD": "a field (body, query or `Idempotency-Key` header) has a value outside its "
                     "type, range, length or choices; `field` names it and the English message "
                     "says what is allowed",
    "MISSING_FIELD": "a required field is absent; `field` names it",
    "UNKNOWN_FIELD": "the body has a field the route does not take (a typo is refused, never "
                     "ignored); `field` names it",
    "TOO_MANY_REQUESTS": "too many login attempts for one account or address (core's throttle, "
                         "`Retry-After` says how long), or too many event streams for one "
                         "subject",
    "INTERNAL": "a bug or an unexpected failure inside the service; the log line with the "
                "request's `request_id` has the details",
    "UPSTREAM": "another service answered this request's call with an error it should not have "
                "(the message names that service)",
    "UNAVAILABLE": "a dependency is down: another service (named in the message; `Retry-After` "
                   "while its circuit is open), Argon2's bounded queue is full, or the service is "
                   "draining / not ready (`/health/ready`)",
    "TIMEOUT": "another service did not answer within `ANTAR_TIMEOUT_MS` (3 s); for an accept or "
               "pickup the change is kept and confirmed later, so sending it again is safe",
    "NOMEM": "the service ran out of memory for this request (same wire code as INTERNAL)",
    "DB": "MariaDB did not answer or the connection broke; nothing was written",
    "KV": "Redis did not answer where the route cannot go on without it (token revocation on a "
          "write, the login throttle, dispatch, the push channel)",
    "GONE": "reserved: no route sends it today",
    "PRECONDITION": "reserved: no route sends it today",
    "INVALID_CREDENTIALS": "`POST /internal/credentials/verify` (core's password check): wrong "
                           "username or password; never repeated by the caller",
    "NOT_YET": "an internal notification arrived before the state it builds on (a rating before "
               "the trip is completed here); the sender's outbox retries it",
    "NOT_ACCEPTABLE": "`GET /events` with an `Accept` header that rules out "
                      "`text/event-stream`",
    "DB_BUSY": "MariaDB rolled the transaction back to let a concurrent one through (deadlock or "
               "lock wait); nothing was applied, the same request can be sent again",
}

# Errors of the OAuth 2 protocol endpoints (RFC 6749 §5.2, RFC 7009, RFC 7662): not envelopes,
# but {"error", "error_description"}; listed so that the catalogue covers every answer.
OAUTH = [
    ("invalid_request", 400, "a parameter is missing, repeated or malformed"),
    ("invalid_client", 401, "unknown client, or a confidential client's secret is wrong"),
    ("invalid_grant", 400, "wrong username or password, a used, expired or revoked refresh "
                           "token or authorization code, or a PKCE verifier that does not match"),
    ("unauthorized_client", 400, "the client may not use this grant (e.g. the password grant "
                                 "when `ANTAR_PASSWORD_GRANT=0`)"),
    ("unsupported_grant_type", 400, "a `grant_type` core does not implement"),
    ("unsupported_response_type", 400, "`GET /oauth/authorize` with a `response_type` other "
                                       "than `code`"),
    ("invalid_scope", 400, "a scope the client may not ask for"),
    ("temporarily_unavailable", 503, "user- or driver-service (credential check), MariaDB or "
                                     "Redis is down, or too many attempts (429)"),
    ("server_error", 500, "an unexpected failure in core"),
]

_MAP_RE = re.compile(r'X\(\s*(\w+)\s*,\s*(\d+)\s*,\s*"([^"]*)"\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)')
_ID_RE = re.compile(r'\[ANTAR_E_(\w+)\]\s*=\s*((?:"(?:[^"\\]|\\.)*"\s*)+)[,}]')


def _c_strings(text):
    """Concatenated value of adjacent C string literals."""
    return "".join(json.loads('"' + s + '"') for s in re.findall(r'"((?:[^"\\]|\\.)*)"', text))


def load_table(repo=REPO):
    """The error table: a list of dicts {name, status, code, message, message_id, when}, in enum
    order. Raises ValueError when error.h, error.c and WHEN disagree."""
    with open(os.path.join(repo, "include", "antar", "error.h"), encoding="utf-8") as f:
        header = f.read()
    m = re.search(r"#define ANTAR_ERROR_MAP\(X\)(.*?)\n\s*\n", header, re.S)
    if not m:
        raise ValueError("ANTAR_ERROR_MAP not found in include/antar/error.h")
    body = m.group(1).replace("\\\n", " ")
    rows = []
    for name, status, code, msg in _MAP_RE.findall(body):
        rows.append({"name": name, "status": int(status), "code": code,
                     "message": _c_strings(msg)})
    if len(rows) < 10:
        raise ValueError(f"only {len(rows)} rows parsed from ANTAR_ERROR_MAP")
    with open(os.path.join(repo, "lib", "error.c"), encoding="utf-8") as f:
        src = f.read()
    ids = {n: _c_strings(v) for n, v in _ID_RE.findall(src)}
    names = [r["name"] for r in rows]
    problems = []
    for r in rows:
        if r["name"] not in ids:
            problems.append(f"{r['name']}: no Indonesian message in lib/error.c err_msg_id")
        if r["name"] not in WHEN:
            problems.append(f"{r['name']}: no WHEN entry in scripts/gen_errors.py")
        r["message_id"] = ids.get(r["name"], "")
        r["when"] = WHEN.get(r["name"], "")
    for n in sorted(set(WHEN) - set(names)):
        problems.append(f"WHEN has {n}, which is not in ANTAR_ERROR_MAP")
    for n in sorted(set(ids) - set(names)):
        problems.append(f"err_msg_id has {n}, which is not in ANTAR_ERROR_MAP")
    if problems:
        raise ValueError("; ".join(problems))
    return rows


def load_edge(repo=REPO):
    """The edge's own envelopes: a list of dicts {status, code, message} from deploy/errors."""
    out = []
    d = os.path.join(repo, "deploy", "errors")
    for name in sorted(os.listdir(d)):
        if not name.endswith(".http"):
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            raw = f.read()
        env = json.loads(raw.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in raw else raw.split("\n\n", 1)[1])
        out.append({"status": env["status"], "code": env["error"]["code"],
                    "message": env["error"]["message"]})
    return out


def codes_by_status(repo=REPO):
    """{wire code: set of HTTP statuses it is sent with}, services and edge together."""
    got = {}
    for r in load_table(repo):
        if r["name"] != "OK":
            got.setdefault(r["code"], set()).add(r["status"])
    for e in load_edge(repo):
        got.setdefault(e["code"], set()).add(e["status"])
    return got


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def render(repo=REPO):
    rows = load_table(repo)
    edge = load_edge(repo)
    lines = [
        "# Error catalogue",
        "",
        "<!-- Generated by scripts/gen_errors.py from include/antar/error.h (ANTAR_ERROR_MAP),",
        "     lib/error.c (err_msg_id) and deploy/errors/*.http. Do not edit by hand: change those",
        "     and run scripts/gen_errors.py; make test fails while this file differs. -->",
        "",
        "Every error answer outside the OAuth 2 protocol endpoints is the envelope",
        "`{\"status\": <HTTP status>, \"result\": null, \"error\": {\"code\", \"message\", \"field\"}}`.",
        "`code` is stable and is what a client should branch on; `message` is for people and may",
        "carry detail (a range, the allowed values, which service failed); `field` names the field,",
        "query argument or header at fault, else `null`.",
        "",
        "With `Accept-Language: id` (or `id-ID`, or any list where Indonesian has the highest",
        "q-value) the message is Indonesian: the default below, with the field named for",
        "`missing_field`, `invalid_field`, `unknown_field` and `duplicate`, and the response carries",
        "`Content-Language: id`. The code, the status and `field` never change with the language.",
        "The English detail a route adds (ranges, allowed values) is not translated.",
        "",
        "Each route's possible errors, with examples, are in its OpenAPI file (`api/user.yaml`,",
        "`api/driver.yaml`, `api/core.yaml`; rendered under [api/](api/index.html)).",
        "",
        "## Errors the services send",
        "",
        "| code | HTTP | meaning (default message) | pesan (Accept-Language: id) | when | in the code |",
        "|---|---|---|---|---|---|",
    ]
    by_code = {}
    for r in rows:
        if r["name"] == "OK":
            continue
        by_code.setdefault(r["code"], []).append(r)
    for code, group in by_code.items():
        first = group[0]
        statuses = sorted({g["status"] for g in group})
        lines.append("| `{}` | {} | {} | {} | {} | {} |".format(
            code, ", ".join(map(str, statuses)),
            _cell("; ".join(g["message"] for g in group)),
            _cell("; ".join(g["message_id"] for g in group)),
            _cell("; ".join(g["when"] for g in group) if len(group) > 1 else first["when"]),
            ", ".join(f"`ANTAR_E_{g['name']}`" for g in group)))
    lines += [
        "",
        "## Errors the edge sends itself",
        "",
        "HAProxy (`deploy/haproxy.cfg`) answers these without asking a service: an unknown path or",
        "`/internal/…` (404), a service with no instance up (503), a client or a service too slow",
        "(408, 504), the edge's rate limit (429). Same envelope, English only.",
        "",
        "| code | HTTP | message |",
        "|---|---|---|",
    ]
    for e in sorted(edge, key=lambda e: e["status"]):
        lines.append(f"| `{e['code']}` | {e['status']} | {_cell(e['message'])} |")
    lines += [
        "",
        "## OAuth 2 protocol endpoints",
        "",
        "`POST /oauth/token`, `/oauth/revoke`, `/oauth/introspect` answer errors as their RFCs say,",
        "`{\"error\": \"<code>\", \"error_description\": \"…\"}` without the envelope, so that standard",
        "OAuth 2 libraries understand them; `GET`/`POST /oauth/authorize` shows them on its HTML page",
        "or in the redirect.",
        "",
        "| error | HTTP | when |",
        "|---|---|---|",
    ]
    for code, status, when in OAUTH:
        lines.append(f"| `{code}` | {status} | {_cell(when)} |")
    return "\n".join(lines) + "\n"


def main(argv):
    text = render()
    path = os.path.join(REPO, OUT)
    if "--check" in argv:
        try:
            with open(path, encoding="utf-8") as f:
                have = f.read()
        except FileNotFoundError:
            have = None
        if have != text:
            print(f"{OUT} is out of date: run scripts/gen_errors.py", file=sys.stderr)
            return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
