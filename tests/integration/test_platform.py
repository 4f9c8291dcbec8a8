"""Platform behaviour shared by every service: the edge, the envelope on every rejection path,
health (with a dependency down), metrics, OpenAPI, and recovery after a restart."""

import json

import pytest

from antar_client import signup_driver, signup_user, unique_email, unique_phone, wait_for

SERVICES = ("user", "driver", "core")


def _err(r, status, code=None, field=None):
    assert r.status == status, r
    assert r.body is not None, f"expected a JSON envelope: {r!r}"
    e = r.body["error"]
    if code is not None:
        assert e["code"] == code, r
    if field is not None:
        assert e["field"] == field, r
    return e


def _user_body(**over):
    b = {"name": "Sari", "email": unique_email(), "phone": unique_phone(),
         "password": "correct-horse-1"}
    b.update(over)
    return b


# ---- sign-up on every entry point ---------------------------------------------------------


def test_signup_user_through_edge(edge):
    b = _user_body()
    r = edge.post("/users", json=b)
    assert r.status == 201, r
    u = r.result
    for k in ("id", "name", "email", "phone", "created_at"):
        assert k in u, u
    assert isinstance(u["id"], int) and u["id"] > 0
    assert u["email"] == b["email"]
    assert not any("password" in k for k in u), u


def test_signup_user_on_user_port(user_api):
    u = signup_user(user_api)
    assert u["id"] > 0


def test_signup_driver_through_edge_and_port(edge, driver_api):
    for api in (edge, driver_api):
        d = signup_driver(api, vehicle_type="car")
        assert d["id"] > 0
        assert d["vehicle_type"] == "car"


def test_signup_accepts_form_bodies(edge):
    b = _user_body()
    r = edge.post("/users", form=b)
    assert r.status == 201, r
    assert r.result["email"] == b["email"]


# ---- the edge answers itself ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/", "/usersx", "/health", "/internal/x",
                                  "/internal/credentials/verify"])
def test_edge_404_envelope(edge, path):
    for method in ("GET", "POST"):
        r = edge.request(method, path, json={} if method == "POST" else None)
        _err(r, 404, "not_found")


# ---- rejection paths, on the edge and on the service port ---------------------------------


def test_405_with_allow(edge, user_api):
    for api in (edge, user_api):
        r = api.delete("/users")
        _err(r, 405, "method_not_allowed")
        allow = r.headers.get("Allow", "")
        assert "POST" in allow, r.headers


def test_413_body_over_limit(edge, user_api):
    big = _user_body(name="x" * 100_000)
    for api in (edge, user_api):
        r = api.post("/users", data=json.dumps(big), headers={"Content-Type": "application/json"})
        _err(r, 413, "payload_too_large")


def test_415_text_plain(edge, user_api):
    for api in (edge, user_api):
        r = api.post("/users", data="name=Sari", headers={"Content-Type": "text/plain"})
        _err(r, 415, "unsupported_media_type")


def test_400_malformed_json(edge, user_api):
    for api in (edge, user_api):
        r = api.post("/users", data='{"name": "Sari", ',
                     headers={"Content-Type": "application/json"})
        _err(r, 400, "malformed_json")


@pytest.mark.parametrize("over,field,code", [
    ({"name": 123}, "name", "invalid_field"),             # wrong type
    ({"password": "short"}, "password", "invalid_field"),  # out of range (8–128)
    ({"name": ""}, "name", "invalid_field"),               # out of range (1–100)
    ({"email": "not-an-email"}, "email", "invalid_field"),
    ({"phone": "12ab"}, "phone", "invalid_field"),
    ({"is_admin": True}, "is_admin", "unknown_field"),
])
def test_422_names_the_field(edge, over, field, code):
    r = edge.post("/users", json=_user_body(**over))
    _err(r, 422, code, field)


def test_422_missing_field(edge):
    b = _user_body()
    del b["email"]
    _err(edge.post("/users", json=b), 422, "missing_field", "email")


def test_422_driver_vehicle_type(edge):
    b = _user_body(vehicle_type="boat", plate_number="B 1234 XYZ")
    _err(edge.post("/drivers", json=b), 422, "invalid_field", "vehicle_type")


def test_409_duplicate_email(edge):
    u = signup_user(edge)
    r = edge.post("/users", json=_user_body(email=u["email"]))
    _err(r, 409, field="email")
    assert r.body["error"]["code"] in ("duplicate", "conflict"), r


# ---- health, metrics, OpenAPI --------------------------------------------------------------


def test_health_each_service(services):
    for name, api in services.items():
        r = api.get("/health")
        assert r.status == 200, (name, r)


def test_metrics_prometheus_text(services):
    for name, api in services.items():
        api.get("/health")
        r = api.get("/metrics")
        assert r.status == 200, (name, r)
        assert r.headers.get("Content-Type", "").startswith("text/plain"), (name, r.headers)
        assert "antar_http_requests_total" in r.text, (name, r.text[:500])


def test_openapi_json(services):
    for name, api in services.items():
        r = api.get("/openapi.json")
        assert r.status == 200, (name, r)
        doc = json.loads(r.text)
        assert "openapi" in doc and str(doc["openapi"]).startswith("3."), (name, r.text[:200])
        assert "paths" in doc, name


# ---- dependencies and backends going away --------------------------------------------------


def _statuses(services):
    return {n: a.get("/health") for n, a in services.items()}


@pytest.mark.disruptive
def test_health_503_names_redis_and_recovers(services, stack):
    stack.stop("redis")
    try:
        def core_down():
            r = services["core"].get("/health")
            return r if r.status == 503 else None

        r = wait_for(core_down, timeout=10, what="core /health 503 with redis stopped")
        assert "redis" in r.text.lower(), r
        for name, resp in _statuses(services).items():
            if resp.status != 200:
                assert resp.status == 503 and "redis" in resp.text.lower(), (name, resp)
    finally:
        stack.start("redis")
    wait_for(lambda: all(r.status == 200 for r in _statuses(services).values()), timeout=15,
             what="every /health 200 after redis came back")


@pytest.mark.disruptive
def test_edge_503_when_backend_stopped_and_recovery(edge, stack):
    stack.stop("driver")
    try:
        r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(edge.get("/drivers/me")),
                     timeout=10, what="edge 503 for a stopped driver-service")
        _err(r, 503, "service_unavailable")
        # A path routed to a live backend is unaffected.
        assert edge.get("/users/me").status == 401
    finally:
        stack.start("driver")
    r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(edge.get("/drivers/me")),
                 timeout=15, what="driver back behind the edge")
    _err(r, 401)
