"""The console's server side (docs/console.md), through the edge on the real stack: its OAuth
clients (PKCE only, redirect URIs of the edge's origins only, the operator list), the ops reads
(GET /ops/city, /ops/orders/{id}, /ops/traces/{trace_id}) with their rejections, the trace
record behind the waterfall, and the allow-listed static files. The browser itself is driven by
tests/browser/ (Playwright).
"""

import os
import subprocess
from urllib.parse import parse_qs, urlsplit

import jwt
import requests

from antar_client import (REPO, new_driver, new_user, run_dir, service_token, signup_user,
                          wait_for)
from conftest import EDGE_URL
from test_auth import authorize, exchange
from test_flow import _moved, _ok, _order, _ride, _spot, online  # noqa: F401 (online is a fixture)

CONSOLE = EDGE_URL + "/console/"


def _operator():
    """The stack's operator account (scripts/console-operator.sh makes it once per run folder)."""
    out = subprocess.run([os.path.join(REPO, "scripts", "console-operator.sh")], check=True,
                         capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, ANTAR_RUN_DIR=run_dir())).stdout
    email, pw = out.strip().split("\t")
    return {"email": email, "password": pw}


def _console_token(account, client_id):
    """Sign account in through the console's client as the browser does; the token response."""
    r, verifier, uri = authorize(requests.Session(), account, client_id=client_id,
                                 redirect_uri=CONSOLE, base=EDGE_URL)
    assert r.status_code in (302, 303), r.text
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    t = exchange(q["code"][0], verifier, uri, client_id=client_id, base=EDGE_URL)
    assert t.status_code == 200, t.text
    return t.json()


def _err(r, status, code=None):
    assert r.status == status, r
    if code:
        assert r.body["error"]["code"] == code, r


# ---- sign-in -----------------------------------------------------------------------------------


def test_console_customer_signs_in_with_pkce_only(edge):
    u = signup_user(edge)
    body = _console_token(u, "console-user")
    c = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert c["sub"] == f"user:{u['id']}" and c["client_id"] == "console-user" and c["scope"] == "user"
    assert body["refresh_token"]
    # The password grant is not for the console's clients.
    r = requests.post(EDGE_URL + "/oauth/token", data={
        "grant_type": "password", "username": u["email"], "password": u["password"],
        "client_id": "console-user"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text


def test_console_redirect_uris_are_the_edges_own(edge):
    for uri in ("http://127.0.0.1:1/console/", "http://127.0.0.1:8080.evil.example/console/",
                CONSOLE + "x", EDGE_URL + "/callback", "antar://callback"):
        q = {"response_type": "code", "client_id": "console-user", "redirect_uri": uri,
             "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGKSWDZ4Rw",
             "code_challenge_method": "S256"}
        r = requests.get(EDGE_URL + "/oauth/authorize", params=q, timeout=10,
                         allow_redirects=False)
        assert r.status_code == 400 and "Location" not in r.headers, (uri, r.status_code)
    # ... and the console's redirect URI is not the apps'.
    q = {"response_type": "code", "client_id": "user-app", "redirect_uri": CONSOLE,
         "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGKSWDZ4Rw",
         "code_challenge_method": "S256"}
    assert requests.get(EDGE_URL + "/oauth/authorize", params=q, timeout=10,
                        allow_redirects=False).status_code == 400


def test_operator_gets_an_ops_token_and_others_do_not(edge):
    op = _operator()
    body = _console_token(op, "console-ops")
    c = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert c["role"] == "service" and c["scope"] == "ops" and c["client_id"] == "console-ops"
    assert c["sub"].startswith("service:operator:")
    assert "refresh_token" not in body
    r = edge.get("/ops/city", token=body["access_token"])
    assert r.status == 200, r
    # A customer who is not on the operator list gets the form back, and no code.
    u = signup_user(edge)
    r, _, _ = authorize(requests.Session(), u, client_id="console-ops", redirect_uri=CONSOLE,
                        base=EDGE_URL)
    assert r.status_code == 401 and "Location" not in r.headers, r.status_code


# ---- the ops reads -----------------------------------------------------------------------------


def test_ops_reads_need_the_ops_scope(edge):
    u = new_user(edge)
    internal = service_token(edge, "user-service")
    for path in ("/ops/city", "/ops/orders/1", "/ops/traces/" + "ab" * 16):
        _err(edge.get(path), 401)
        _err(edge.get(path, token=u.token), 403)
        _err(edge.get(path, token=internal), 403)
    ops = service_token(edge, "ops")
    _err(edge.get("/ops/orders/999999999", token=ops), 404, "not_found")
    _err(edge.get("/ops/orders/abc", token=ops), 404)
    for bad in ("abc", "0" * 32, "AB" * 16, "a" * 33):
        _err(edge.get("/ops/traces/" + bad, token=ops), 422, "invalid_field")


def test_ops_order_without_a_driver_has_only_its_trip_prediction(edge):
    """Before a driver is found there is no pickup ETA and nothing actual to compare."""
    u = new_user(edge)
    lat, lng = _moved(_spot(), 90000, 0)  # far south of everyone: stays searching
    o = _order(edge, u, (lat, lng))
    try:
        r = _ok(edge.get(f"/ops/orders/{o['id']}", token=service_token(edge, "ops")))
        assert r["eta"]["pickup"] == {"predicted_s": None, "actual_s": None}, r["eta"]
        assert r["eta"]["trip"] == {"predicted_s": o["duration_s"], "actual_s": None}, r["eta"]
    finally:
        edge.post(f"/orders/{o['id']}/cancel", json={}, token=u.token, csrf=u.csrf)


def test_order_timeline_and_every_call_of_its_traces(edge, online):
    u = new_user(edge)
    d = new_driver(edge)
    point = _spot()
    o, _ = _ride(edge, u, d, point, online)
    ops = service_token(edge, "ops")

    def complete():
        # Each service writes its spans from a queue, a moment after they end.
        r = _ok(edge.get(f"/ops/orders/{o['id']}", token=ops))
        done = [s["status"] for s in r["steps"]][-1:] == ["completed"] and any(
            s["kind"] == "request" and s["path"].endswith("/complete") for s in r["spans"])
        return r if done else None
    r = wait_for(complete, timeout=10, what="the completed step and its request in the record")
    assert r["order"]["id"] == o["id"] and r["order"]["status"] == "completed"
    # Predicted against actual (docs/ai.md): what the order was told, what its timestamps say.
    eta = r["eta"]
    assert eta["clock_speed"] == 1, eta  # the tests run no simulated clock
    assert eta["trip"]["predicted_s"] == r["order"]["duration_s"] > 0, eta
    assert eta["pickup"]["predicted_s"] == r["order"]["pickup_eta_s"] > 0, eta
    assert eta["pickup"]["actual_s"] is not None and eta["pickup"]["actual_s"] >= 0, eta
    assert eta["trip"]["actual_s"] is not None and eta["trip"]["actual_s"] >= 0, eta
    assert [s["status"] for s in r["steps"]] == ["searching", "accepted", "picked_up",
                                                 "completed"]
    traces = {s["trace_id"] for s in r["steps"]}
    assert len(traces) == 4
    spans = r["spans"]
    assert spans and all(s["trace_id"] in traces for s in spans)
    seen = {(s["kind"], s["from"], s["to"], s["method"], s["path"]) for s in spans}
    oid = o["id"]
    for want in [("request", "client", "user-service", "POST", "/orders"),
                 ("call", "user-service", "core-service", "POST", "/internal/dispatch"),
                 ("call", "core-service", "driver-service", "POST", "/internal/offers"),
                 ("call", "driver-service", "user-service", "POST", f"/internal/orders/{oid}/assign"),
                 ("call", "driver-service", "core-service", "POST", f"/internal/dispatch/{oid}/accepted"),
                 ("request", "client", "driver-service", "POST", f"/trips/{oid}/pickup"),
                 ("request", "client", "driver-service", "POST", f"/trips/{oid}/complete"),
                 ("call", "driver-service", "user-service", "POST", f"/internal/orders/{oid}/complete")]:
        assert want in seen, (want, sorted(seen))
    for s in spans:
        assert s["duration_ms"] >= 0 and s["start_ms"] > 0 and s["status"] > 0, s
        assert "://" not in s["path"], s  # addresses stay out of the record
    # A trace read by its id gives the same spans of that trace.
    created = r["steps"][0]["trace_id"]
    t = _ok(edge.get(f"/ops/traces/{created}", token=ops))
    assert t["trace_id"] == created
    mine = sorted(s["span_id"] for s in spans if s["trace_id"] == created)
    assert sorted(s["span_id"] for s in t["spans"]) == mine
    # The root request is the parent of the calls it made itself.
    root = next(s for s in t["spans"] if s["kind"] == "request")
    assert any(s["parent_span_id"] == root["span_id"] for s in t["spans"] if s["kind"] == "call")


def test_city_shows_drivers_by_state_open_orders_and_demand(edge, online):
    ops = service_token(edge, "ops")
    # The middle of a fare cell, so that the driver 50 m away and the geo index's rounding stay
    # in the same cell.
    point = (-6.2155 + (os.getpid() % 20) * 0.01, 106.8455)
    d = online(new_driver(edge), _moved(point, 50, 0))
    u = new_user(edge)
    fare = _ok(edge.post("/fares/estimate", json={
        "pickup_lat": point[0], "pickup_lng": point[1], "dropoff_lat": point[0] + 0.02,
        "dropoff_lng": point[1] + 0.02, "vehicle_type": "motorcycle"}, token=u.token, csrf=u.csrf))
    assert fare["price"] > 0
    c = _ok(edge.get("/ops/city", token=ops))
    me = next(x for x in c["drivers"] if x["driver_id"] == d.id)
    assert me["state"] == "available" and me["vehicle_type"] == "motorcycle"
    assert abs(me["lat"] - _moved(point, 50, 0)[0]) < 1e-4
    cell = f"{int((point[0] // 0.01))}:{int(point[1] // 0.01)}"
    mine = next(x for x in c["cells"] if x["cell"] == cell)
    assert mine["demand"] >= 1 and mine["supply"]["motorcycle"] >= 1
    assert 1.0 <= mine["surge_multiplier"]["motorcycle"] <= 2.0


# ---- the console's files -----------------------------------------------------------------------


def test_console_files_are_a_fixed_list_with_a_strict_policy(edge):
    r = requests.get(CONSOLE, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "<script src=\"console.js\"" in r.text
    for name, ctype in (("console.js", "text/javascript"), ("console.css", "text/css"),
                        ("leaflet.js", "text/javascript"), ("leaflet.css", "text/css"),
                        ("jakarta.geojson", "application/geo+json")):
        f = requests.get(CONSOLE + name, timeout=10)
        assert f.status_code == 200 and f.headers["Content-Type"].startswith(ctype), name
    assert requests.get(CONSOLE + "leaflet.js", timeout=10).headers["Cache-Control"] == \
        "public, max-age=86400"
    for bad in ("package.json", "package-lock.json", "node_modules", "console.JS", "..%2fREADME.md",
                "index.html%00.js", "leaflet.js.map"):
        b = requests.get(CONSOLE + bad, timeout=10)
        assert b.status_code in (400, 404) and b.json()["status"] == b.status_code, bad
    assert requests.get(EDGE_URL + "/console", timeout=10,
                        allow_redirects=False).headers["Location"] == "/console/"
