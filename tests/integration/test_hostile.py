"""Hostile input against every documented public write operation (the product contract: "Bad input never
crashes, never half-writes: a clear 4xx envelope naming the field").

The operations come from api/{user,driver,core}.yaml: every POST/PUT/PATCH with a request body,
except /oauth/* (RFC error bodies, not envelopes) and /internal/* (service tokens only). Each is
called on its own service's port (the edge rate-limits sign-ups) with the token and CSRF token of
a freshly signed-up user or driver. Every rejection is checked for its status, the envelope (by
antar_client) and error.code / error.field; afterwards the test checks that nothing changed.

A test collects every failing case of one operation and reports them together, so one run names
every broken input, not only the first.
"""

import http.client
import json
import os
import uuid
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import REPO
from antar_client import login, new_driver, new_user, signup_driver, signup_user, unique_email, \
    unique_phone, unique_plate

BODY_LIMIT = 64 * 1024
BIG = 70 * 1024  # over the 64 KiB limit

SQLISH = "'; DROP TABLE users; --"
SCRIPT = "<script>alert(1)</script>"
RTL = "\u202egnp.exe"  # right-to-left override
LONG = "a" * 10000

# ---- the operations, from the OpenAPI files -----------------------------------------------


def _load_ops():
    ops = []
    for svc in ("user", "driver", "core"):
        with open(os.path.join(REPO, "api", f"{svc}.yaml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        schemas = doc.get("components", {}).get("schemas", {})

        def deref(x):
            while isinstance(x, dict) and "$ref" in x:
                x = schemas[x["$ref"].rsplit("/", 1)[-1]]
            return x

        for path, item in doc["paths"].items():
            if path.startswith(("/oauth", "/internal", "/.well-known")):
                continue
            for method, op in item.items():
                if method not in ("post", "put", "patch") or "requestBody" not in op:
                    continue
                content = op["requestBody"].get("content", {})
                schema = deref(content.get("application/json", {}).get("schema")) or {}
                props = {k: deref(v) for k, v in (schema.get("properties") or {}).items()}
                if not op.get("security"):
                    role = None
                elif svc == "driver":
                    role = "driver"
                else:
                    role = "user"
                ops.append({"service": svc, "method": method.upper(), "path": path, "role": role,
                            "props": props, "required": schema.get("required", [])})
    return ops


OPS = _load_ops()


def _op_id(op):
    return f"{op['method']} {op['path']}"


# Valid values for every documented field, so that a mutated body is wrong in one place only.
def _valid_value(name, sch):
    if "enum" in sch:
        return "offline" if name == "status" else sch["enum"][0]
    fixed = {"name": "Sari Hostile", "email": unique_email("h"), "phone": unique_phone(),
             "password": "pw-" + uuid.uuid4().hex[:12], "plate_number": unique_plate(),
             "pickup_lat": -6.2, "pickup_lng": 106.82, "dropoff_lat": -6.21,
             "dropoff_lng": 106.84, "lat": -6.2, "lng": 106.82,
             "pickup_address": "Jl. Sudirman 1", "dropoff_address": "Jl. Thamrin 2",
             "rating": 5, "comment": "ok", "reason": "changed my mind"}
    if name in fixed:
        return fixed[name]
    t = sch.get("type")
    return {"string": "x", "number": 1.0, "integer": 1, "boolean": True}.get(t, "x")


def _baseline(op):
    """The body a correct client would send (required fields, or one field for a PATCH)."""
    props = op["props"]
    names = op["required"] or ([next(iter(props))] if props else [])
    return {n: _valid_value(n, props[n]) for n in names}


def _wrong_values(sch):
    """JSON values of the wrong type for a field of schema sch."""
    t = sch.get("type")
    if "enum" in sch:
        return [7, None, ["car"], "not-a-choice"]
    if t == "string":
        return [12345, None, True, ["x"], {"a": "b"}]
    if t == "number":
        return ["-6.2", None, True, [1.0]]
    if t == "integer":
        return [4.5, "5", None, True]
    return [None]


# ---- clients and accounts ---------------------------------------------------------------------


class Ctx:
    def __init__(self, apis, sessions, order_id):
        self.apis = apis
        self.sessions = sessions
        self.order_id = order_id

    def api(self, op):
        return self.apis[op["service"]]

    def auth(self, op):
        s = self.sessions.get(op["role"]) if op["role"] else None
        return {"token": s.token, "csrf": s.csrf} if s else {}

    def path(self, op, ident=None):
        p = op["path"]
        if "{id}" in p or "{order_id}" in p:
            # Orders of this user exist; offers and trips of a fresh driver do not, so a made-up
            # id there: the body must still be judged (a body error is not a lookup error).
            if ident is None:
                ident = self.order_id if p.startswith("/orders/") else 987654321
            p = p.replace("{id}", str(ident)).replace("{order_id}", str(ident))
        return p


ORDER_BODY = {"pickup_lat": -6.2, "pickup_lng": 106.82, "pickup_address": "Jl. Sudirman 1",
              "dropoff_lat": -6.21, "dropoff_lng": 106.84, "dropoff_address": "Jl. Thamrin 2",
              "vehicle_type": "motorcycle"}


@pytest.fixture(scope="module")
def ctx(user_api, driver_api, core_api):
    sessions = {"user": new_user(user_api, core_api),
                "driver": new_driver(driver_api, core_api)}
    u = sessions["user"]
    r = user_api.post("/orders", json=ORDER_BODY, token=u.token, csrf=u.csrf)
    assert r.status == 201, f"cannot place the order the /orders/{{id}} tests use: {r!r}"
    return Ctx({"user": user_api, "driver": driver_api, "core": core_api}, sessions,
               r.result["id"])


class Problems(list):
    """Failing cases of one test, reported together."""

    def check(self, what, fn):
        try:
            fn()
        except AssertionError as e:  # includes antar_client's envelope and contract checks
            self.append(f"{what}: {e}")

    def done(self):
        if self:
            raise AssertionError(f"{len(self)} failing case(s):\n  " + "\n  ".join(self))


def _expect(r, status, code=None, field=None):
    """r is an error envelope with status; code and error.field as given (field=... skips)."""
    if isinstance(status, int):
        status = (status,)
    if r.status not in status:
        raise AssertionError(f"expected {'/'.join(map(str, status))}, got {r!r}")
    e = r.error
    if not isinstance(e, dict):
        raise AssertionError(f"no error object: {r!r}")
    if code is not None:
        codes = (code,) if isinstance(code, str) else code
        if e["code"] not in codes:
            raise AssertionError(f"error.code {e['code']!r}, expected {codes}: {r!r}")
    if field is not ... and e["field"] != field:
        raise AssertionError(f"error.field {e['field']!r}, expected {field!r}: {r!r}")


def _send(ctx, op, problems, what, ident=None, **kw):
    """One request; an exception (a connection reset = a crash?) is a problem too."""
    try:
        return ctx.api(op).request(op["method"], ctx.path(op, ident), **ctx.auth(op), **kw)
    except AssertionError as e:
        problems.append(f"{what}: {e}")
    except Exception as e:  # noqa: BLE001 - a dropped connection must be reported, not raised
        problems.append(f"{what}: request failed: {e!r}")
    return None


def _alive(ctx):
    for name, api in ctx.apis.items():
        r = api.get("/health")
        assert r.status == 200, f"{name}-service unhealthy after hostile input: {r!r}"


# ---- snapshots for "changes nothing" -------------------------------------------------------


def _snapshot(ctx, op):
    """What a rejected request on op must not change."""
    u, d = ctx.sessions["user"], ctx.sessions["driver"]
    ua, da = ctx.apis["user"], ctx.apis["driver"]
    if op["role"] == "user" and op["service"] == "user":
        me = ua.get("/users/me", token=u.token).result
        orders = ua.get("/orders", token=u.token, params={"limit": 50}).result
        items = [(o["id"], o["status"], o.get("pickup_address"), o.get("price"))
                 for o in (orders or {}).get("items", [])]
        # An order may expire by itself (no driver nearby): that is not our change.
        items = [(i, "searching" if s == "expired" else s, a, p) for i, s, a, p in items]
        return {"me": me, "orders": items}
    if op["role"] == "driver":
        return {"me": da.get("/drivers/me", token=d.token).result}
    return None


# ---- 1. body-level rejections: every operation ----------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=_op_id)
def test_body_level_rejections(ctx, op):
    """Malformed JSON, non-objects, wrong media types, oversize, duplicate and repeated keys,
    broken escapes: all rejected before the handler, with nothing changed."""
    p = Problems()
    before = _snapshot(ctx, op)
    base = _baseline(op)
    base_text = json.dumps(base)
    jh = {"Content-Type": "application/json"}
    fh = {"Content-Type": "application/x-www-form-urlencoded"}
    pad_field = next((n for n, s in op["props"].items() if s.get("type") == "string"
                      and "enum" not in s), "padding")
    cases = [
        ("malformed JSON", dict(data=b'{"name": "x",', headers=jh), 400, "malformed_json", None),
        ("truncated JSON", dict(data=base_text[:-1].encode(), headers=jh), 400,
         "malformed_json", None),
        ("JSON with a trailing comma", dict(data=b'{"a": 1,}', headers=jh), 400,
         "malformed_json", None),
        ("single quotes", dict(data=b"{'a': 1}", headers=jh), 400, "malformed_json", None),
        ("JSON array", dict(data=b'[{"name": "x"}]', headers=jh), 400, None, None),
        ("JSON string", dict(data=b'"name"', headers=jh), 400, None, None),
        ("JSON null", dict(data=b'null', headers=jh), 400, None, None),
        ("JSON number", dict(data=b'17', headers=jh), 400, None, None),
        ("raw invalid UTF-8 in JSON", dict(data=b'{"name": "\xff\xfe"}', headers=jh), 400,
         "malformed_json", None),
        ("lone surrogate escape", dict(data=b'{"name": "\\ud800"}', headers=jh), 400,
         "malformed_json", None),
        ("duplicate JSON keys", dict(data=(base_text[:-1] + (", " if base else "")
                                           + '"dup": 1, "dup": 2}').encode(), headers=jh),
         400, "malformed_json", None),
        ("huge number 1e400", dict(data=b'{"x": 1e400}', headers=jh), (400, 422), None, ...),
        ("huge integer", dict(data=b'{"x": 123456789012345678901234567890}', headers=jh),
         (400, 422), None, ...),
        ("text/plain", dict(data=base_text.encode(), headers={"Content-Type": "text/plain"}),
         415, "unsupported_media_type", None),
        ("no Content-Type", dict(data=base_text.encode(), headers={"Content-Type": ""}), 415,
         "unsupported_media_type", None),
        ("multipart", dict(data=b"--x\r\n\r\n--x--", headers={
            "Content-Type": "multipart/form-data; boundary=x"}), 415,
         "unsupported_media_type", None),
        ("application/json-patch+json", dict(data=base_text.encode(), headers={
            "Content-Type": "application/json-patch+json"}), 415, "unsupported_media_type",
         None),
        ("charset latin1", dict(data=base_text.encode(), headers={
            "Content-Type": "application/json; charset=iso-8859-1"}), 415,
         "unsupported_media_type", None),
        ("charset utf-16 form", dict(data=b"a=b", headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-16"}), 415,
         "unsupported_media_type", None),
        ("oversize JSON", dict(data=json.dumps({pad_field: "a" * BIG}).encode(), headers=jh),
         413, "payload_too_large", None),
        ("oversize form", dict(data=(pad_field + "=" + "a" * BIG).encode(), headers=fh), 413,
         "payload_too_large", None),
        ("oversize chunked", dict(data=iter([b'{"x":"'] + [b"a" * 8192] * 9 + [b'"}']),
                                  headers=jh), 413, "payload_too_large", None),
        ("form bad %-escape", dict(data=b"name=%zz", headers=fh), 400, "bad_request", None),
        ("form truncated %-escape", dict(data=b"name=abc%4", headers=fh), 400, "bad_request",
         None),
        ("form empty key", dict(data=b"=x", headers=fh), 400, "bad_request", None),
        ("repeated form key", dict(data=f"{pad_field}=a&{pad_field}=b".encode(), headers=fh),
         400, "bad_request", pad_field),
    ]
    for what, kw, status, code, field in cases:
        r = _send(ctx, op, p, what, **kw)
        if r is not None:
            p.check(what, lambda: _expect(r, status, code, field))
    _alive(ctx)
    p.check("changes nothing", lambda: _assert_same(before, _snapshot(ctx, op)))
    p.done()


def _assert_same(before, after):
    assert before == after, f"state changed by rejected requests:\n before {before}\n after  {after}"


# ---- 2. field-level rejections: unknown fields, wrong types, hostile strings -----------------


def _judge_json(ctx, op, p, body, what, status, code, field):
    r = _send(ctx, op, p, what, json=body)
    if r is not None:
        p.check(what, lambda: _expect(r, status, code, field))
    return r


@pytest.mark.parametrize("op", OPS, ids=_op_id)
def test_field_level_rejections(ctx, op):
    p = Problems()
    before = _snapshot(ctx, op)
    base = _baseline(op)
    signup = op["role"] is None
    if signup:
        # Every rejected sign-up uses the same email and phone: afterwards they must be free.
        reserved = {"email": unique_email("reserved"), "phone": unique_phone()}
        if "plate_number" in op["props"]:
            reserved["plate_number"] = unique_plate()
        base.update(reserved)

    # Unknown fields, whatever they look like.
    for extra in ("is_admin", "role", "id", "Name", "name ", "__proto__"):
        if extra in op["props"]:
            continue
        body = dict(base)
        body[extra] = True
        _judge_json(ctx, op, p, body, f"unknown field {extra!r}", 422, "unknown_field", extra)
    body = dict(base, **{"\u202eevil": 1})
    _judge_json(ctx, op, p, body, "unknown field with RTL override", 422, "unknown_field", ...)
    form = {k: str(v) for k, v in base.items()}
    form["is_admin"] = "true"
    r = _send(ctx, op, p, "unknown form field", form=form)
    if r is not None:
        p.check("unknown form field", lambda: _expect(r, 422, "unknown_field", "is_admin"))

    # Each documented field with a wrong type, JSON and form.
    for name, sch in op["props"].items():
        for wrong in _wrong_values(sch):
            body = dict(base)
            body[name] = wrong
            _judge_json(ctx, op, p, body, f"{name}={json.dumps(wrong)}", 422, "invalid_field",
                        name)
        if sch.get("type") in ("number", "integer"):
            for bad in ("abc", "1e400", "0x10", "", "NaN", "1,5", " 1"):
                f = {k: str(v) for k, v in base.items()}
                f[name] = bad
                r = _send(ctx, op, p, f"form {name}={bad!r}", form=f)
                if r is not None:
                    p.check(f"form {name}={bad!r}",
                            lambda: _expect(r, 422, "invalid_field", name))
            body = dict(base)
            body[name] = 1e300 if sch.get("type") == "number" else 2 ** 62
            _judge_json(ctx, op, p, body, f"{name} out of range", 422, "invalid_field", name)

    # Strings that must be rejected in any string field: too long, control characters, bad
    # UTF-8 in a form body. NUL in JSON may be refused by the parser (400) or the field (422).
    for name, sch in op["props"].items():
        if sch.get("type") != "string":
            continue
        for what, val, status, code, field in (
                ("10k chars", LONG, 422, "invalid_field", name),
                ("BEL control char", "ab\u0007cd", 422, "invalid_field", name),
                ("newline", "ab\ncd", 422, "invalid_field", name),
                ("NUL", "ab\u0000cd", (400, 422), ("malformed_json", "invalid_field"), ...),
                ("C1 control", "ab\u0085cd", 422, "invalid_field", name)):
            body = dict(base)
            body[name] = val
            r = _judge_json(ctx, op, p, body, f"{name} {what}", status, code, field)
            if r is not None and r.status == 422 and what == "NUL":
                p.check(f"{name} NUL names the field",
                        lambda: _expect(r, 422, "invalid_field", name))
        for what, raw in (("invalid UTF-8", b"%FF%FE"), ("overlong UTF-8", b"%C0%AF"),
                          ("NUL", b"ab%00cd"), ("BEL", b"%07")):
            pairs = [f"{k}={v}".encode() for k, v in
                     ((k, str(v).replace("+", "%2B").replace("@", "%40"))
                      for k, v in base.items() if k != name)]
            data = b"&".join(pairs + [name.encode() + b"=" + raw])
            r = _send(ctx, op, p, f"form {name} {what}", data=data,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            if r is not None:
                p.check(f"form {name} {what}", lambda: _expect(r, 422, "invalid_field", name))

    # A write with no body at all: the required fields are reported as missing.
    if op["required"]:
        r = _send(ctx, op, p, "missing body", data=b"",
                  headers={"Content-Type": "application/json"})
        if r is not None:
            p.check("missing body", lambda: _expect(r, 422, "missing_field", ...))
            p.check("missing body names a required field", lambda: _names_one_of(
                r, op["required"]))
    elif op["method"] == "PATCH":
        r = _send(ctx, op, p, "empty PATCH", data=b"",
                  headers={"Content-Type": "application/json"})
        if r is not None:
            p.check("empty PATCH", lambda: _expect(r, 422, None, ...))

    _alive(ctx)
    if signup:
        # The reserved email and phone must still be free: nothing was half-written.
        ok = dict(_baseline(op), **reserved)
        r = ctx.api(op).post(op["path"], json=ok)
        p.check("reserved email still free", lambda: _assert_status(r, 201))
    else:
        p.check("changes nothing", lambda: _assert_same(before, _snapshot(ctx, op)))
    p.done()


def _names_one_of(r, names):
    field = (r.error or {}).get("field")
    assert field in names, f"error.field {field!r} is not one of {names}: {r!r}"


def _assert_status(r, status):
    assert r.status == status, f"expected {status}: {r!r}"


# ---- 3. hostile but legal strings: stored and returned verbatim -----------------------------


HOSTILE = [SQLISH, SCRIPT, RTL, "Robert'); --", "${jndi:ldap://x}", "%s%n%x", "\u0130\u0131 \U0001F6F5",
           "\\\"'`"]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_are_data(ctx, user_api, value):
    """A name is free text: any of these may be refused (422 naming name) or stored, but if
    stored it comes back byte for byte, as JSON, never interpreted."""
    u = ctx.sessions["user"]
    r = user_api.patch("/users/me", json={"name": value}, token=u.token, csrf=u.csrf)
    if r.status == 422:
        _expect(r, 422, "invalid_field", "name")
        return
    assert r.status == 200, r
    assert r.result["name"] == value, r
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    me = user_api.get("/users/me", token=u.token)
    assert me.result["name"] == value, me
    # And the table is still there (the SQL-ish one): another sign-up works.
    signup_user(user_api)


@pytest.mark.parametrize("value", [SQLISH, SCRIPT, RTL], ids=["sql", "script", "rtl"])
def test_hostile_signup_and_address_are_data(ctx, user_api, driver_api, core_api, value):
    # A user has one active order at a time: a fresh user for this one.
    u = new_user(user_api, core_api)
    acc = signup_user(user_api, name=value)
    assert acc["name"] == value, acc
    drv = signup_driver(driver_api, name=value)
    assert drv["name"] == value, drv
    body = dict(ORDER_BODY, pickup_address=value, dropoff_address=value)
    r = user_api.post("/orders", json=body, token=u.token, csrf=u.csrf)
    assert r.status == 201, r
    oid = r.result["id"]
    try:
        got = user_api.get(f"/orders/{oid}", token=u.token)
        assert got.status == 200, got
        assert got.result["pickup_address"] == value and got.result["dropoff_address"] == value, got
    finally:
        user_api.post(f"/orders/{oid}/cancel", json={}, token=u.token, csrf=u.csrf)


def test_hostile_password_is_just_a_password(ctx, user_api, core_api):
    """A password full of SQL and quotes signs up and logs in like any other."""
    pw = SQLISH + "\"\\"
    acc = signup_user(user_api, password=pw)
    login(core_api, acc["email"], pw, "user-app")


# ---- 4. paths --------------------------------------------------------------------------------


def _raw(base_url, method, path, body=None, headers=None):
    """HTTP without any client-side normalisation of the path. Returns (status, json|None, text)."""
    u = urlsplit(base_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        resp = c.getresponse()
        text = resp.read().decode("utf-8", "replace")
        try:
            doc = json.loads(text) if "json" in (resp.getheader("Content-Type") or "") else None
        except ValueError:
            doc = None
        return resp.status, doc, text
    finally:
        c.close()


def _raw_not_found(status, doc, text, what):
    assert status == 404, f"{what}: {status} {text[:300]}"
    assert isinstance(doc, dict) and doc.get("status") == 404 and doc.get("result") is None, \
        f"{what}: not a 404 envelope: {text[:300]}"
    assert doc["error"]["code"] == "not_found", f"{what}: {text[:300]}"


BAD_IDS = ["-1", "0", "00", "01", "1.0", "1e3", "0x10", "abc", "9007199254740993",
           "9223372036854775807", "9223372036854775808", "18446744073709551617",
           "99999999999999999999999999999", "%2D1", "1%00", "%20", "1;2", "%E2%80%AE1"]


def test_bad_ids_in_paths_are_404(ctx):
    p = Problems()
    u, d = ctx.sessions["user"], ctx.sessions["driver"]
    cases = [("user", "GET", "/orders/{}", u, None),
             ("user", "POST", "/orders/{}/cancel", u, b"{}"),
             ("user", "POST", "/orders/{}/rating", u, b'{"rating": 5}'),
             ("driver", "POST", "/offers/{}/accept", d, b"{}"),
             ("driver", "POST", "/offers/{}/reject", d, b"{}"),
             ("driver", "POST", "/trips/{}/pickup", d, b"{}"),
             ("driver", "POST", "/trips/{}/complete", d, b"{}")]
    before = _snapshot(ctx, {"role": "user", "service": "user"})
    for svc, method, tmpl, sess, body in cases:
        for bad in BAD_IDS:
            path = tmpl.format(bad)
            h = {"Authorization": f"Bearer {sess.token}", "X-CSRF-Token": sess.csrf}
            if body is not None:
                h["Content-Type"] = "application/json"
            try:
                st, doc, text = _raw(ctx.apis[svc].base_url, method, path, body, h)
                p.check(f"{method} {path}", lambda: _raw_not_found(st, doc, text, path))
            except (OSError, http.client.HTTPException) as e:
                p.append(f"{method} {path}: {e!r}")
    _alive(ctx)
    p.check("changes nothing", lambda: _assert_same(
        before, _snapshot(ctx, {"role": "user", "service": "user"})))
    p.done()


TRAVERSAL = ["/docs/../../../../etc/passwd", "/docs/..%2f..%2f..%2fetc%2fpasswd",
             "/docs/%2e%2e/%2e%2e/etc/passwd", "/docs/..%252f..%252fetc%252fpasswd",
             "/docs/.env", "/docs/..", "/docs/%2e%2e", "/docs/swagger-ui.css%00.png",
             "/docs/....//....//etc/passwd", "/docs/..\\..\\etc\\passwd",
             "/docs/%c0%ae%c0%ae/etc/passwd", "/docs//etc/passwd", "/docs/passwd.json",
             "/docs/" + "a" * 5000 + ".js"]


@pytest.mark.parametrize("svc", ["user", "driver", "core"])
def test_docs_path_traversal(ctx, svc):
    p = Problems()
    for path in TRAVERSAL:
        try:
            st, doc, text = _raw(ctx.apis[svc].base_url, "GET", path)
        except (OSError, http.client.HTTPException) as e:
            p.append(f"{path}: {e!r}")
            continue
        p.check(path, lambda: _no_leak(st, text, path))
        if st == 404:
            p.check(path, lambda: _raw_not_found(st, doc, text, path))
    _alive(ctx)
    p.done()


def _no_leak(status, text, path):
    assert "root:" not in text and "ANTAR_" not in text, f"{path} leaked a file: {text[:200]}"
    assert status in (400, 404, 414, 431), f"{path} → {status}: {text[:200]}"


# ---- 5. Content-Type with odd but legal parameters: accepted ----------------------------------


@pytest.mark.parametrize("ctype", [
    "application/json; charset=utf-8", "application/json;charset=UTF-8",
    "Application/JSON", "application/json ; charset=\"utf-8\"",
    "application/json; foo=bar", "application/json; charset=utf-8; boundary=zzz"])
def test_odd_but_valid_content_types_accepted(ctx, user_api, ctype):
    u = ctx.sessions["user"]
    name = "Sari " + uuid.uuid4().hex[:6]
    r = user_api.patch("/users/me", data=json.dumps({"name": name}).encode(), token=u.token,
                       csrf=u.csrf, headers={"Content-Type": ctype})
    assert r.status == 200, r
    assert r.result["name"] == name, r


def test_form_and_json_identical_meaning(ctx, user_api):
    u = ctx.sessions["user"]
    r = user_api.patch("/users/me", form={"name": "Sari + Dewi & co", "csrf_token": u.csrf},
                       token=u.token)
    assert r.status == 200, r
    assert r.result["name"] == "Sari + Dewi & co", r


def test_oversize_through_the_edge(ctx, edge):
    """The edge must hand the 413 envelope through (or produce one), not reset the connection."""
    u = ctx.sessions["user"]
    r = edge.patch("/users/me", data=json.dumps({"name": "a" * BIG}).encode(), token=u.token,
                   csrf=u.csrf, headers={"Content-Type": "application/json"})
    _expect(r, 413, "payload_too_large", None)
