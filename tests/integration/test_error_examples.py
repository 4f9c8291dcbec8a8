"""The error examples in api/*.yaml are errors the route really answers: for each documented
example below, the request that causes it is sent through the edge, and the answer's code, field
and message must be the example's (digits aside: ids differ from run to run).

test_contract.py checks every example against the error table and the route's fields; this file
checks a sample of them against the running services, so that an example cannot drift from the
code's wording either."""

import re

import pytest

import contract
from antar_client import new_driver, new_user, signup_driver, signup_user, unique_email, unique_phone

ORDER = {"pickup_lat": -6.1754, "pickup_lng": 106.8272, "pickup_address": "Monas",
         "dropoff_lat": -6.2443, "dropoff_lng": 106.7983, "dropoff_address": "Blok M",
         "vehicle_type": "motorcycle"}


def _examples(svc, method, template, status):
    """The documented error objects of that response (`example` and every `examples` value)."""
    sp = contract.spec(svc)
    resp = sp.deref(sp.doc["paths"][template][method.lower()]["responses"][str(status)])
    mt = resp["content"]["application/json"]
    found = [mt["example"]] if "example" in mt else []
    found += [sp.deref(e)["value"] for e in (mt.get("examples") or {}).values()]
    assert found, f"{method} {template} {status}: no example"
    return [ex["error"] for ex in found]


def _norm(msg):
    return re.sub(r"\d+", "N", msg or "")


def _check(svc, method, template, status, r, code=None):
    """r must be one of the documented examples (the one with that code when given)."""
    assert r.status == status, (method, template, r)
    got = r.body["error"]
    docs = _examples(svc, method, template, status)
    if code:
        docs = [d for d in docs if d["code"] == code]
        assert docs, f"{method} {template} {status}: no example with code {code}"
    want = [(d["code"], d["field"], _norm(d["message"])) for d in docs]
    assert (got["code"], got["field"], _norm(got["message"])) in want, \
        f"{method} {template} {status}: the service answered {got}, the spec shows {docs}"


@pytest.fixture(scope="module")
def sari(edge):
    return new_user(edge)


@pytest.fixture(scope="module")
def budi(edge):
    return new_driver(edge)


def test_users_sign_up_examples(edge):
    r = edge.post("/users", json={"email": unique_email("ex"), "phone": unique_phone(),
                                  "password": "rahasia-sari-2025"})
    _check("user", "POST", "/users", 422, r)
    u = signup_user(edge)
    r = edge.post("/users", json={"name": "Sari", "email": u["email"], "phone": unique_phone(),
                                  "password": "rahasia-sari-2025"})
    _check("user", "POST", "/users", 409, r)


def test_users_me_examples(edge, sari, budi):
    r = edge.get("/users/me")
    _check("user", "GET", "/users/me", 401, r)
    r = edge.get("/users/me", token=budi.token)
    _check("user", "GET", "/users/me", 403, r)
    r = edge.patch("/users/me", json={"name": ""}, token=sari.token, csrf=sari.csrf)
    _check("user", "PATCH", "/users/me", 422, r)
    other = signup_user(edge)
    r = edge.patch("/users/me", json={"phone": other["phone"]}, token=sari.token, csrf=sari.csrf)
    _check("user", "PATCH", "/users/me", 409, r)
    r = edge.patch("/users/me", json={"name": "Sari W"}, token=sari.token)
    _check("user", "PATCH", "/users/me", 403, r, code="csrf_token_invalid")
    r = edge.patch("/users/me", json={"name": "Sari W"}, token=budi.token, csrf=budi.csrf)
    _check("user", "PATCH", "/users/me", 403, r, code="forbidden")


def test_orders_examples(edge, sari):
    body = {k: v for k, v in ORDER.items() if k != "pickup_lat"}
    r = edge.post("/orders", json=body, token=sari.token, csrf=sari.csrf)
    _check("user", "POST", "/orders", 422, r)
    r = edge.get("/orders", params={"cursor": "not-a-cursor"}, token=sari.token)
    _check("user", "GET", "/orders", 422, r)
    r = edge.post("/orders/1/cancel", json={"reason": ""}, token=sari.token, csrf=sari.csrf)
    _check("user", "POST", "/orders/{id}/cancel", 422, r)
    r = edge.post("/orders/1/rating", json={}, token=sari.token, csrf=sari.csrf)
    _check("user", "POST", "/orders/{id}/rating", 422, r)
    r = edge.get("/events", params={"last_event_id": "x"}, token=sari.token,
                 headers={"Accept": "text/event-stream"})
    _check("user", "GET", "/events", 422, r)


def test_orders_second_active_order_example(edge):
    s = new_user(edge)
    r = edge.post("/orders", json=ORDER, token=s.token, csrf=s.csrf)
    assert r.status == 201, r
    r = edge.post("/orders", json=ORDER, token=s.token, csrf=s.csrf)
    _check("user", "POST", "/orders", 409, r)


def test_drivers_examples(edge, budi):
    r = edge.post("/drivers", json={"email": unique_email("ex"), "phone": unique_phone(),
                                    "password": "rahasia-budi-2025", "vehicle_type": "car",
                                    "plate_number": "B 1 EX"})
    _check("driver", "POST", "/drivers", 422, r)
    r = edge.post("/drivers", json={"name": "Budi", "email": unique_email("ex"),
                                    "phone": unique_phone(), "password": "rahasia-budi-2025",
                                    "vehicle_type": "motorcycle",
                                    "plate_number": budi.account["plate_number"]})
    _check("driver", "POST", "/drivers", 409, r)
    r = edge.patch("/drivers/me", json={"name": ""}, token=budi.token, csrf=budi.csrf)
    _check("driver", "PATCH", "/drivers/me", 422, r)
    other = signup_driver(edge)
    r = edge.patch("/drivers/me", json={"email": other["email"]}, token=budi.token, csrf=budi.csrf)
    _check("driver", "PATCH", "/drivers/me", 409, r)
    r = edge.put("/drivers/me/status", json={}, token=budi.token, csrf=budi.csrf)
    _check("driver", "PUT", "/drivers/me/status", 422, r)
    r = edge.put("/drivers/me/location", json={"lng": 106.8}, token=budi.token, csrf=budi.csrf)
    _check("driver", "PUT", "/drivers/me/location", 422, r)
    for action in ("accept", "reject"):
        r = edge.post(f"/offers/1/{action}", json={"reason": "x"}, token=budi.token, csrf=budi.csrf)
        _check("driver", "POST", f"/offers/{{id}}/{action}", 422, r)
    for action in ("pickup", "complete"):
        r = edge.post(f"/trips/1/{action}", json={"reason": "x"}, token=budi.token, csrf=budi.csrf)
        _check("driver", "POST", f"/trips/{{order_id}}/{action}", 422, r)
    r = edge.get("/trips", params={"cursor": "not-a-cursor"}, token=budi.token)
    _check("driver", "GET", "/trips", 422, r)


def test_fares_examples(edge, sari):
    body = {k: v for k, v in ORDER.items() if k in ("pickup_lng", "dropoff_lat", "dropoff_lng",
                                                   "vehicle_type")}
    r = edge.post("/fares/estimate", json=body, token=sari.token, csrf=sari.csrf)
    _check("core", "POST", "/fares/estimate", 422, r)
    r = edge.post("/fares/estimate", json=ORDER, token=sari.token)
    _check("core", "POST", "/fares/estimate", 403, r, code="csrf_token_invalid")
