"""driver-service on the real stack: sign-up and every way it can be refused, the driver's own
record (and only their own), status and location, earnings and trip history when empty."""

import os
import random

import pytest

from antar_client import (redis_cli, login, new_driver, new_user, service_token, signup_driver,
                          unique_email, unique_phone, unique_plate, wait_for)


def _err(r, status, code=None, field=None):
    assert r.status == status, r
    e = r.body["error"]
    if code is not None:
        assert e["code"] == code, r
    if field is not None:
        assert e["field"] == field, r
    return e


def _body(**over):
    b = {"name": "Budi Santoso", "email": unique_email("d"), "phone": unique_phone(),
         "password": "correct-horse-1", "vehicle_type": "motorcycle",
         "plate_number": unique_plate()}
    b.update(over)
    return b


def _far_point():
    """A point around Jakarta that no other test uses (drivers of one test never get the
    orders of another)."""
    return (-6.2 + random.uniform(-0.4, 0.4), 106.8 + random.uniform(-0.4, 0.4))


# ---- sign-up ------------------------------------------------------------------------------


def test_signup_returns_driver_without_secrets(edge):
    num = random.randint(1000, 9999)
    suffix = "".join(random.choice("abcdefghjk") for _ in range(3))
    b = _body(plate_number=f"b  {num}   {suffix}", vehicle_type="car")
    r = edge.post("/drivers", json=b)
    assert r.status == 201, r
    d = r.result
    for k in ("id", "name", "email", "phone", "vehicle_type", "plate_number", "rating",
              "status", "created_at"):
        assert k in d, d
    assert d["plate_number"] == f"B {num} {suffix.upper()}"
    assert d["vehicle_type"] == "car"
    assert d["status"] == "offline"
    assert d["rating"] is None
    assert d["email"] == b["email"]
    assert not any("password" in k or "hash" in k for k in d), d
    assert b["password"] not in r.text


@pytest.mark.parametrize("raw,norm", [("B1234XYZ", "B 1234 XYZ"), ("ab 1 c", "AB 1 C"),
                                      ("D 9", "D 9"), (" F 12 AB ", "F 12 AB")])
def test_plate_normalised(edge, raw, norm):
    # A unique number keeps parallel runs apart; the shape is what is tested.
    num = str(random.randint(1000, 9999))
    raw = raw.replace("1234", num)
    norm = norm.replace("1234", num)
    r = edge.post("/drivers", json=_body(plate_number=raw))
    if r.status == 409:  # the short plates are few: someone may hold this one already
        assert r.error["field"] == "plate_number", r
        return
    assert r.status == 201, r
    assert r.result["plate_number"] == norm


def test_signup_form_body(edge):
    b = _body()
    r = edge.post("/drivers", form=b)
    assert r.status == 201, r
    assert r.result["email"] == b["email"]


@pytest.mark.parametrize("field", ["name", "email", "phone", "password", "vehicle_type",
                                   "plate_number"])
def test_signup_missing_field(edge, field):
    b = _body()
    del b[field]
    _err(edge.post("/drivers", json=b), 422, "missing_field", field)


@pytest.mark.parametrize("field,value", [
    ("name", ""), ("name", "x" * 101), ("name", 12), ("name", "   "),
    ("email", "not-an-email"), ("email", "a@"), ("email", "x" * 250 + "@example.com"),
    ("phone", "12"), ("phone", "phone-number"), ("phone", "+62" + "1" * 20),
    ("password", "short7!"), ("password", "p" * 129),
    ("vehicle_type", "truck"), ("vehicle_type", ""),
    ("plate_number", "1234"), ("plate_number", "ABC 1234"), ("plate_number", "B 12345"),
    ("plate_number", "B 1234 WXYZ"), ("plate_number", "B-1234-XY"), ("plate_number", ""),
    ("plate_number", "B 12 34"),
])
def test_signup_invalid_field(edge, field, value):
    _err(edge.post("/drivers", json=_body(**{field: value})), 422, None, field)


def test_signup_unknown_field(edge):
    _err(edge.post("/drivers", json=_body(role="admin")), 422, "unknown_field", "role")


def test_signup_415_and_400(edge):
    r = edge.post("/drivers", data="name=x", headers={"Content-Type": "text/plain"})
    _err(r, 415, "unsupported_media_type")
    r = edge.post("/drivers", data="{nope", headers={"Content-Type": "application/json"})
    _err(r, 400, "malformed_json")


def test_signup_duplicates_name_the_field(edge):
    first = _body()
    assert edge.post("/drivers", json=first).status == 201
    _err(edge.post("/drivers", json=_body(email=first["email"])), 409, "duplicate", "email")
    _err(edge.post("/drivers", json=_body(email=first["email"].upper())), 409, "duplicate",
         "email")
    _err(edge.post("/drivers", json=_body(phone=first["phone"])), 409, "duplicate", "phone")
    # The same plate written differently is the same plate.
    plate = first["plate_number"].replace(" ", "").lower()
    _err(edge.post("/drivers", json=_body(plate_number=plate)), 409, "duplicate",
         "plate_number")


def test_long_multibyte_password_logs_in(edge):
    """Sign-up counts a password in characters (≤ 128), the credential check in bytes: 128
    two-byte characters are 256 bytes, and the driver must still be able to log in."""
    pw = "é" * 128
    d = signup_driver(edge, password=pw)
    assert login(edge, d["email"], pw, "driver-app")


def test_login_by_email_and_phone(edge):
    d = signup_driver(edge)
    assert login(edge, d["email"], d["password"], "driver-app")
    assert login(edge, d["phone"], d["password"], "driver-app")
    r = edge.post("/oauth/token", form={"grant_type": "password", "username": d["email"],
                                        "password": "wrong-password", "client_id": "driver-app"})
    assert r.status in (400, 401), r


# ---- own record ---------------------------------------------------------------------------


def test_me_requires_a_driver_token(edge):
    _err(edge.get("/drivers/me"), 401)
    u = new_user(edge)
    _err(edge.get("/drivers/me", token=u.token), 403)


def test_me_is_only_mine(edge):
    a = new_driver(edge)
    b = new_driver(edge)
    ra = edge.get("/drivers/me", token=a.token)
    rb = edge.get("/drivers/me", token=b.token)
    assert ra.status == 200 and rb.status == 200, (ra, rb)
    assert ra.result["id"] == a.id and rb.result["id"] == b.id
    assert ra.result["email"] == a.account["email"]
    # A's changes never touch B.
    r = edge.patch("/drivers/me", json={"name": "Anton"}, token=a.token, csrf=a.csrf)
    assert r.status == 200 and r.result["name"] == "Anton", r
    assert edge.get("/drivers/me", token=b.token).result["name"] == b.account["name"]


def test_patch_me(edge):
    a = new_driver(edge)
    other = signup_driver(edge)
    _err(edge.patch("/drivers/me", json={"name": "X"}, token=a.token), 403, "csrf_token_invalid")
    _err(edge.patch("/drivers/me", json={}, token=a.token, csrf=a.csrf), 422, "missing_field")
    _err(edge.patch("/drivers/me", json={"email": other["email"]}, token=a.token, csrf=a.csrf),
         409, "duplicate", "email")
    _err(edge.patch("/drivers/me", json={"plate_number": other["plate_number"]}, token=a.token,
                    csrf=a.csrf), 409, "duplicate", "plate_number")
    _err(edge.patch("/drivers/me", json={"plate_number": "12"}, token=a.token, csrf=a.csrf),
         422, "invalid_field", "plate_number")
    _err(edge.patch("/drivers/me", json={"status": "online"}, token=a.token, csrf=a.csrf),
         422, "unknown_field", "status")
    _err(edge.patch("/drivers/me", json={"name": " \t "}, token=a.token, csrf=a.csrf),
         422, "invalid_field", "name")
    plate = unique_plate()
    email = unique_email("new")
    r = edge.patch("/drivers/me", json={"plate_number": plate.lower(), "email": email,
                                        "phone": unique_phone()}, token=a.token, csrf=a.csrf)
    assert r.status == 200, r
    assert r.result["plate_number"] == plate and r.result["email"] == email
    # The new email logs in.
    assert login(edge, email, a.account["password"], "driver-app")


# ---- status, location ---------------------------------------------------------------------


def test_status_and_location(edge):
    a = new_driver(edge)
    lat, lng = _far_point()
    r = edge.put("/drivers/me/location", json={"lat": lat, "lng": lng}, token=a.token,
                 csrf=a.csrf)
    assert r.status == 200, r
    assert abs(r.result["lat"] - lat) < 1e-9 and abs(r.result["lng"] - lng) < 1e-9
    assert r.result["updated_at"]
    r = edge.put("/drivers/me/status", json={"status": "online"}, token=a.token, csrf=a.csrf)
    assert r.status == 200 and r.result["status"] == "online", r
    assert edge.get("/drivers/me", token=a.token).result["status"] == "online"
    r = edge.put("/drivers/me/status", form={"status": "offline"}, token=a.token, csrf=a.csrf)
    assert r.status == 200 and r.result["status"] == "offline", r


@pytest.mark.parametrize("body,field", [({"lat": 91, "lng": 106.8}, "lat"),
                                        ({"lat": -6.2, "lng": -181}, "lng"),
                                        ({"lat": "x", "lng": 106.8}, "lat"),
                                        ({"lng": 106.8}, "lat")])
def test_location_rejects(edge, body, field):
    a = new_driver(edge)
    _err(edge.put("/drivers/me/location", json=body, token=a.token, csrf=a.csrf), 422, None,
         field)


def test_status_rejects(edge):
    a = new_driver(edge)
    _err(edge.put("/drivers/me/status", json={"status": "busy"}, token=a.token, csrf=a.csrf),
         422, "invalid_field", "status")
    _err(edge.put("/drivers/me/status", json={"status": "online"}, token=a.token), 403,
         "csrf_token_invalid")


# ---- earnings, trips, offers when there are none -----------------------------------------


def test_empty_history(edge):
    a = new_driver(edge)
    r = edge.get("/drivers/me/earnings", token=a.token)
    assert r.status == 200, r
    assert r.result == {"total": 0, "currency": "IDR", "trips": 0, "today": 0}
    r = edge.get("/trips", token=a.token)
    assert r.status == 200 and r.result == {"items": [], "next_cursor": None}, r
    r = edge.get("/offers", token=a.token)
    assert r.status == 200 and r.result == {"items": [], "next_cursor": None}, r


@pytest.mark.parametrize("params,field", [({"limit": "0"}, "limit"), ({"limit": "51"}, "limit"),
                                          ({"limit": "x"}, "limit"), ({"cursor": "-1"}, "cursor"),
                                          ({"cursor": "abc"}, "cursor")])
def test_trips_paging_rejects(edge, params, field):
    a = new_driver(edge)
    _err(edge.get("/trips", token=a.token, params=params), 422, "invalid_field", field)


def test_unknown_offer_and_trip_are_404(edge):
    a = new_driver(edge)
    _err(edge.post("/offers/999999999/accept", token=a.token, csrf=a.csrf), 404)
    _err(edge.post("/offers/999999999/reject", token=a.token, csrf=a.csrf), 404)
    _err(edge.post("/offers/abc/accept", token=a.token, csrf=a.csrf), 404)
    _err(edge.post("/trips/999999999/pickup", token=a.token, csrf=a.csrf), 404)
    _err(edge.post("/trips/999999999/complete", token=a.token, csrf=a.csrf), 404)


def test_internal_routes_refuse_client_tokens(driver_api, edge):
    a = new_driver(edge)
    _err(driver_api.get(f"/internal/drivers/{a.id}"), 401)
    _err(driver_api.get(f"/internal/drivers/{a.id}", token=a.token), 403)
    _err(driver_api.post("/internal/offers", json={"order_id": 1, "driver_id": a.id},
                         token=a.token, csrf=a.csrf), 403)
    _err(driver_api.post("/internal/credentials/verify",
                         json={"username": a.account["email"], "password": "x" * 10}), 401)


# ---- internal routes, called as core and user-service would ------------------------------

@pytest.fixture(scope="module")
def svc(core_api):
    return service_token(core_api)


def test_internal_public_profile_has_no_contact_data(driver_api, edge, svc):
    d = signup_driver(edge)
    r = driver_api.get(f"/internal/drivers/{d['id']}", token=svc)
    assert r.status == 200, r
    assert r.result == {"id": d["id"], "name": d["name"], "vehicle_type": d["vehicle_type"],
                        "plate_number": d["plate_number"], "rating": None}
    _err(driver_api.get("/internal/drivers/999999999", token=svc), 404)


def test_internal_credentials_verify(driver_api, edge, svc):
    d = signup_driver(edge)
    for username in (d["email"], d["email"].upper(), d["phone"]):
        r = driver_api.post("/internal/credentials/verify",
                            json={"username": username, "password": d["password"]}, token=svc)
        assert r.status == 200, r
        assert r.result == {"id": d["id"], "sub": f"driver:{d['id']}", "name": d["name"],
                            "vehicle_type": d["vehicle_type"]}
    for username, pw in ((d["email"], "wrong-password"), (unique_email(), d["password"]),
                         (unique_phone(), d["password"])):
        _err(driver_api.post("/internal/credentials/verify",
                             json={"username": username, "password": pw}, token=svc),
             401, "invalid_credentials")
    _err(driver_api.post("/internal/credentials/verify", json={"password": "x" * 10},
                         token=svc), 422, "missing_field", "username")


def _searching_order(edge):
    """An order at a spot where no driver is, so that it stays searching for a while."""
    u = new_user(edge)
    lat, lng = _far_point()
    body = {"pickup_lat": lat, "pickup_lng": lng, "pickup_address": "Jl. Kosong 1",
            "dropoff_lat": lat + 0.02, "dropoff_lng": lng + 0.01, "dropoff_address": "Jl. Ujung",
            "vehicle_type": "motorcycle"}
    r = edge.post("/orders", json=body, token=u.token, csrf=u.csrf)
    assert r.status == 201, r
    return u, r.result


def _online_far_away(edge, d):
    # Far outside Jakarta: core never picks this driver for the tests' orders.
    lat, lng = -8.6 + random.uniform(-0.05, 0.05), 115.2 + random.uniform(-0.05, 0.05)
    r = edge.put("/drivers/me/location", json={"lat": lat, "lng": lng}, token=d.token,
                 csrf=d.csrf)
    assert r.status == 200, r
    r = edge.put("/drivers/me/status", json={"status": "online"}, token=d.token, csrf=d.csrf)
    assert r.status == 200, r


def test_internal_offers_lifecycle(driver_api, edge, svc):
    d = new_driver(edge)
    u, order = _searching_order(edge)
    offer_body = {"order_id": order["id"], "driver_id": d.id, "vehicle_type": "motorcycle",
                  "pickup_lat": order["pickup_lat"], "pickup_lng": order["pickup_lng"],
                  "pickup_address": order["pickup_address"],
                  "dropoff_lat": order["dropoff_lat"], "dropoff_lng": order["dropoff_lng"],
                  "dropoff_address": order["dropoff_address"], "price": order["price"],
                  "currency": "IDR", "customer_first_name": "Sari"}
    # Offline drivers get no offers, and the 409 says why.
    e = _err(driver_api.post("/internal/offers", json=offer_body, token=svc), 409, "conflict",
             "driver_id")
    assert e["message"] == "the driver is offline", e
    _online_far_away(edge, d)
    try:
        _err(driver_api.post("/internal/offers", json=dict(offer_body, price=-1), token=svc),
             422, "invalid_field", "price")
        # What the offer shows comes with core's call (driver-service asks nobody while it
        # answers an internal route): without the pickup there is no offer.
        _err(driver_api.post("/internal/offers",
                             json={k: v for k, v in offer_body.items() if k != "pickup_lat"},
                             token=svc), 422, "missing_field", "pickup_lat")
        _err(driver_api.post("/internal/offers", json=dict(offer_body, expires_at="soon"),
                             token=svc), 422, "invalid_field", "expires_at")
        # Core's pickup ETA and the driver's position at offer time (docs/ai.md): bounded, and
        # the position comes as a pair.
        _err(driver_api.post("/internal/offers", json=dict(offer_body, pickup_eta_s=-5),
                             token=svc), 422, "invalid_field", "pickup_eta_s")
        _err(driver_api.post("/internal/offers", json=dict(offer_body, driver_lat=-6.2),
                             token=svc), 422, "invalid_field", "driver_lng")
        _err(driver_api.post("/internal/offers", json=dict(offer_body, driver_lng=200),
                             token=svc), 422, "invalid_field", "driver_lng")
        r = driver_api.post("/internal/offers", json=offer_body, token=svc)
        assert r.status == 201, r
        offer = r.result
        assert offer["status"] == "pending" and offer["order_id"] == order["id"]
        assert offer["customer"]["first_name"] == "Sari"
        # Idempotent per (order, driver).
        again = driver_api.post("/internal/offers", json=offer_body, token=svc)
        assert again.status == 200 and again.result["id"] == offer["id"], again
        # One live offer per driver.
        u2, order2 = _searching_order(edge)
        e = _err(driver_api.post("/internal/offers",
                                 json=dict(offer_body, order_id=order2["id"]), token=svc), 409,
                 "conflict", "driver_id")
        assert e["message"] == "the driver already holds a live offer", e
        assert [o["id"] for o in edge.get("/offers", token=d.token).result["items"]] == \
            [offer["id"]]
        # The deadline: pending → expired, idempotently; then accept is too late.
        r = driver_api.post(f"/internal/offers/{offer['id']}/expire", json={}, token=svc)
        assert r.status == 200 and r.result["status"] == "expired", r
        r = driver_api.post(f"/internal/offers/{offer['id']}/expire", json={}, token=svc)
        assert r.status == 200 and r.result["status"] == "expired", r
        _err(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf), 409)
        _err(driver_api.post("/internal/offers/999999999/expire", json={}, token=svc), 404)
        # Now free for the second order; accept it, and the deadline loses with a 409.
        r = driver_api.post("/internal/offers", json=dict(offer_body, order_id=order2["id"]),
                            token=svc)
        assert r.status == 201, r
        offer2 = r.result
        r = edge.post(f"/offers/{offer2['id']}/accept", token=d.token, csrf=d.csrf)
        assert r.status == 200 and r.result["status"] == "accepted", r
        r = driver_api.post(f"/internal/offers/{offer2['id']}/expire", json={}, token=svc,
                            envelope=False)
        assert r.status == 409 and r.body["result"]["status"] == "accepted", r
        # Busy drivers get no offers.
        _, order3 = _searching_order(edge)
        e = _err(driver_api.post("/internal/offers",
                                 json=dict(offer_body, order_id=order3["id"]), token=svc), 409,
                 "conflict", "driver_id")
        assert e["message"] == "the driver is on a trip", e
        # A rating for an order this driver did not complete is refused.
        _err(driver_api.post(f"/internal/drivers/{d.id}/ratings",
                             json={"order_id": order2["id"], "rating": 5}, token=svc), 409)
        _err(driver_api.post(f"/internal/drivers/{d.id}/ratings",
                             json={"order_id": order2["id"], "rating": 6}, token=svc), 422,
             "invalid_field", "rating")
        # The customer cancels; user-service's outbox tells us; a repeat changes nothing.
        r = edge.post(f"/orders/{order2['id']}/cancel", json={}, token=u2.token, csrf=u2.csrf)
        assert r.status == 200, r

        def trip_cancelled():
            items = edge.get("/trips", token=d.token).result["items"]
            return items and items[0]["order_id"] == order2["id"] and \
                items[0]["status"] == "cancelled"
        wait_for(trip_cancelled, timeout=20, what="trip cancelled")
        hdr = {"Idempotency-Key": "test-" + unique_email()}
        for _ in range(2):
            r = driver_api.post(f"/internal/orders/{order2['id']}/cancelled", json={},
                                token=svc, headers=hdr)
            assert r.status == 200, r
        _err(edge.post(f"/trips/{order2['id']}/pickup", token=d.token, csrf=d.csrf), 409)
    finally:
        edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token, csrf=d.csrf)


def _offer_body(order, d):
    return {"order_id": order["id"], "driver_id": d.id, "vehicle_type": "motorcycle",
            "pickup_lat": order["pickup_lat"], "pickup_lng": order["pickup_lng"],
            "dropoff_lat": order["dropoff_lat"], "dropoff_lng": order["dropoff_lng"],
            "price": order["price"]}


@pytest.mark.disruptive
def test_accept_with_user_service_down_is_503_and_the_claim_is_confirmed_later(
        driver_api, edge, svc, stack):
    """No answer is not a no: the accept keeps its claim (the offer is no longer offered, the
    deadline no longer applies), the driver hears 503, and once user-service is back the
    reconciler asks again — the trip appears without the driver doing anything."""
    d = new_driver(edge)
    u, order = _searching_order(edge)
    _online_far_away(edge, d)
    try:
        # user-service goes first: its graceful stop takes longer than the tests' 3 s offers
        # live (an offer needs nothing from user-service).
        stack.stop("user")
        try:
            r = driver_api.post("/internal/offers", json=_offer_body(order, d), token=svc)
            assert r.status == 201, r
            offer = r.result
            r = edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf)
            assert r.status in (503, 504), r
            assert "nothing is lost" in r.body["error"]["message"], r
            assert edge.get("/offers", token=d.token).result["items"] == []
            # core's deadline now hears "accepted": the claim is not given away.
            r = driver_api.post(f"/internal/offers/{offer['id']}/expire", json={}, token=svc,
                                envelope=False)
            assert r.status == 409 and r.body["result"]["status"] == "accepted", r
        finally:
            stack.start("user")

        def trip():
            items = edge.get("/trips", token=d.token).result["items"]
            return items[0] if items and items[0]["order_id"] == order["id"] else None
        t = wait_for(trip, timeout=30, what="the reconciler's trip")
        assert t["status"] == "accepted", t
        seen = wait_for(lambda: edge.get(f"/orders/{order['id']}", token=u.token).result,
                        timeout=20, what="the order through the edge")
        assert seen["status"] == "accepted" and seen["driver"]["id"] == d.id, seen
        # A second accept now is a wrong transition.
        _err(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf), 409)
        r = edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf)
        assert r.status == 200, r
    finally:
        wait_for(lambda: edge.put("/drivers/me/status", json={"status": "offline"},
                                  token=d.token, csrf=d.csrf).status == 200, timeout=20,
                 what="driver offline")


def test_offer_hint_lets_empty_polls_skip_mariadb_and_never_hides_an_offer(driver_api, edge, svc):
    """GET /offers answers "none" from Redis while driver-service's hint for the driver is absent
    (most polls); the hint is written before the offer row and outlives the offer's deadline by
    a second, so an offer is visible from the moment it exists."""
    d = new_driver(edge)
    key = f"drv:offer_hint:{d.id}"
    assert redis_cli("EXISTS", key).strip() == "0"
    assert edge.get("/offers", token=d.token).result["items"] == []
    u, order = _searching_order(edge)
    _online_far_away(edge, d)
    try:
        r = driver_api.post("/internal/offers", json=_offer_body(order, d), token=svc)
        assert r.status == 201, r
        # Visible at once, and the hint lives until a second past the deadline.
        assert [o["id"] for o in edge.get("/offers", token=d.token).result["items"]] == \
            [r.result["id"]]
        ttl_ms = int(redis_cli("PTTL", key).strip())
        assert 1000 < ttl_ms <= (int(os.environ.get("ANTAR_OFFER_TTL_S", "15")) + 1) * 1000 + 50, ttl_ms
        # The hint alone never invents an offer: with the offer expired, the poll is empty.
        assert driver_api.post(f"/internal/offers/{r.result['id']}/expire", json={},
                               token=svc).status == 200
        assert edge.get("/offers", token=d.token).result["items"] == []
    finally:
        edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token, csrf=d.csrf)
        edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf)


# ---- where to wait (docs/ai.md) ----------------------------------------------------------------


def test_waiting_hint_points_to_the_cell_with_orders_and_no_drivers(edge, core_api, svc):
    """An idle driver is sent to the neighbouring forecast cell where orders wait and nobody
    drives (in the test stack no demand model serves: the counter rule answers)."""
    d = new_driver(edge)
    _err(edge.get("/drivers/me/waiting-hint"), 401)
    # Offline: core does not see the driver, and says what to do.
    _err(edge.get("/drivers/me/waiting-hint", token=d.token), 409, "conflict", "status")
    # A spot of Java no other test uses, at the centre of a 0.05° forecast cell.
    cell = 0.05
    ci, cj = int(-7.9 // cell) + random.randint(-20, 20), int(112.6 // cell) + random.randint(-20, 20)
    here = ((ci + 0.5) * cell, (cj + 0.5) * cell)
    north = ((ci + 1.5) * cell, (cj + 0.5) * cell)  # 5.6 km: beyond the dispatch radius
    r = edge.put("/drivers/me/location", json={"lat": here[0], "lng": here[1]}, token=d.token,
                 csrf=d.csrf)
    assert r.status == 200, r
    r = edge.put("/drivers/me/status", json={"status": "online"}, token=d.token, csrf=d.csrf)
    assert r.status == 200, r
    placed = []
    try:
        h = edge.get("/drivers/me/waiting-hint", token=d.token)
        assert h.status == 200, h
        h = h.result
        assert h["driver_id"] == d.id and h["source"] in ("model", "rule"), h
        assert h["horizon_s"] == 900
        assert h["here"]["distance_m"] == 0 and h["here"]["free_drivers"] >= 1, h
        assert abs(h["here"]["lat"] - here[0]) < 1e-9 and abs(h["here"]["lng"] - here[1]) < 1e-9
        for i in range(3):
            u = new_user(edge)
            body = {"pickup_lat": north[0] + 0.001 * i, "pickup_lng": north[1],
                    "pickup_address": "Jl. Utara 1", "dropoff_lat": north[0] + 0.02,
                    "dropoff_lng": north[1] + 0.01, "dropoff_address": "Jl. Ujung",
                    "vehicle_type": d.account.get("vehicle_type", "motorcycle")}
            r = edge.post("/orders", json=body, token=u.token, csrf=u.csrf)
            assert r.status == 201, r
            placed.append((u, r.result["id"]))

        def pointed_north():
            got = edge.get("/drivers/me/waiting-hint", token=d.token).result
            return got if got["cell"]["expected_orders"] >= 3 else None
        h = wait_for(pointed_north, timeout=20, what="the orders in the hint")
        assert h["source"] == "rule", h
        assert abs(h["cell"]["lat"] - north[0]) < 1e-9 and abs(h["cell"]["lng"] - north[1]) < 1e-9
        assert h["cell"]["distance_m"] > 5000 and h["cell"]["free_drivers"] == 1, h
        assert h["cell"]["orders_per_free_driver"] > h["here"]["orders_per_free_driver"], h
        # core's internal route: service tokens only; a driver it does not see is named.
        _err(core_api.get(f"/internal/drivers/{d.id}/waiting-hint"), 401)
        _err(core_api.get("/internal/drivers/999999999/waiting-hint", token=svc), 409,
             "conflict", "driver_id")
        _err(core_api.get("/internal/drivers/0/waiting-hint", token=svc), 404)
    finally:
        for u, oid in placed:
            edge.post(f"/orders/{oid}/cancel", json={}, token=u.token, csrf=u.csrf)
        edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token, csrf=d.csrf)
