"""The whole order flow across the three services, on the real stack, through the edge.

The stack runs with short dispatch timeouts (ANTAR_OFFER_TTL_S=3, ANTAR_DISPATCH_MAX_S=12,
ANTAR_DISPATCH_MAX_CANDIDATES=3). Every test works at its own random spot around Jakarta, far
from the others, so that no test's driver gets another test's order, and every driver it puts
online goes offline at the end.
"""

import math
import random
import threading
import time

import pytest

from antar_client import Api, new_driver, new_user, wait_for

OFFER_TTL_S = 3
DISPATCH_MAX_S = 12


def _spot():
    """A random point in a wide box around Jakarta (≈ 110 × 130 km): two tests land within
    dispatch range (5 km) of each other only by rare chance."""
    return (random.uniform(-6.9, -5.9), random.uniform(106.2, 107.4))


def _moved(point, north_m, east_m):
    lat, lng = point
    return (lat + north_m / 111_320.0, lng + east_m / (111_320.0 * math.cos(math.radians(lat))))


def _ok(r, status=200):
    assert r.status == status, r
    return r.result


def _err(r, status, code=None):
    assert r.status == status, r
    if code is not None:
        assert r.body["error"]["code"] == code, r
    return r.body["error"]


@pytest.fixture
def online(edge):
    """online(driver_session, point): put a driver there and online; offline again at the end
    (after cancelling or finishing whatever trip the test left it on)."""
    drivers = []

    def put_online(d, point, vehicle_type="motorcycle"):
        _ok(edge.put("/drivers/me/location", json={"lat": point[0], "lng": point[1]},
                     token=d.token, csrf=d.csrf))
        r = _ok(edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                         csrf=d.csrf))
        assert r["status"] == "online"
        drivers.append(d)
        return d

    yield put_online
    for d in drivers:
        def offline():
            r = edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token,
                         csrf=d.csrf)
            return r.status == 200
        try:
            wait_for(offline, timeout=15, what="driver offline")
        except AssertionError:
            pass


def _order(edge, u, pickup, dropoff=None, vehicle_type="motorcycle", estimate=False):
    dropoff = dropoff or _moved(pickup, 2500, 1500)
    body = {"pickup_lat": pickup[0], "pickup_lng": pickup[1], "pickup_address": "Jl. Sudirman 1",
            "dropoff_lat": dropoff[0], "dropoff_lng": dropoff[1],
            "dropoff_address": "Jl. Thamrin 9", "vehicle_type": vehicle_type}
    if estimate:
        fare = _ok(edge.post("/fares/estimate", json={k: body[k] for k in (
            "pickup_lat", "pickup_lng", "dropoff_lat", "dropoff_lng", "vehicle_type")},
            token=u.token, csrf=u.csrf))
        assert fare["price"] > 0 and fare["currency"] == "IDR", fare
        if fare.get("quote_id"):
            body["quote_id"] = fare["quote_id"]
    o = _ok(edge.post("/orders", json=body, token=u.token, csrf=u.csrf), 201)
    assert o["status"] == "searching", o
    return o


def _offer_for(edge, d, order_id, timeout=20):
    def find():
        r = _ok(edge.get("/offers", token=d.token))
        return next((o for o in r["items"] if o["order_id"] == order_id), None)
    return wait_for(find, timeout=timeout, what=f"an offer of order {order_id}")


def _offered(edge, online):
    """A fresh customer's order at a fresh spot, offered to a fresh driver online 100 m away.
    Returns (customer, driver, order, offer)."""
    u = new_user(edge)
    d = new_driver(edge)
    point = _spot()
    online(d, _moved(point, 100, 0))
    o = _order(edge, u, point)
    return u, d, o, _offer_for(edge, d, o["id"])


def _order_status(edge, u, order_id):
    return _ok(edge.get(f"/orders/{order_id}", token=u.token))["status"]


def _wait_order(edge, u, order_id, status, timeout=30):
    return wait_for(lambda: _order_status(edge, u, order_id) == status, timeout=timeout,
                    what=f"order {order_id} {status}")


def _ride(edge, u, d, point, online):
    """One order from placing to completion by d. Returns (order, trip)."""
    online(d, _moved(point, 150, 0))
    o = _order(edge, u, point)
    offer = _offer_for(edge, d, o["id"])
    _ok(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf))
    _ok(edge.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf))
    trip = _ok(edge.post(f"/trips/{o['id']}/complete", token=d.token, csrf=d.csrf))
    return o, trip


# ---- the happy path -------------------------------------------------------------------------


def test_full_flow(edge):
    u = new_user(edge, name="Sari Wulandari")
    d = new_driver(edge, name="Budi Santoso")
    point = _spot()
    lat, lng = _moved(point, 200, 100)
    drivers_online = []
    try:
        _ok(edge.put("/drivers/me/location", json={"lat": lat, "lng": lng}, token=d.token,
                     csrf=d.csrf))
        _ok(edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                     csrf=d.csrf))
        drivers_online.append(d)

        o = _order(edge, u, point, estimate=True)
        # No driver yet: no pickup ETA on the order.
        assert o["pickup_eta_s"] is None, o
        offer = _offer_for(edge, d, o["id"])
        assert offer["status"] == "pending"
        assert offer["price"] == o["price"] and offer["currency"] == "IDR"
        assert offer["customer"] == {"first_name": "Sari"}, offer
        assert abs(offer["pickup_lat"] - point[0]) < 1e-6
        assert offer["expires_at"]

        trip = _ok(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf))
        assert trip["order_id"] == o["id"] and trip["status"] == "accepted", trip
        assert _offer_for_none(edge, d)

        seen = _ok(edge.get(f"/orders/{o['id']}", token=u.token))
        assert seen["status"] == "accepted", seen
        # Found: the order carries core's predicted way of this driver (~220 m away) to the
        # pickup, made when the offer was sent.
        assert isinstance(seen["pickup_eta_s"], int) and 0 < seen["pickup_eta_s"] < 600, seen
        assert set(seen["driver"]) == {"id", "name", "vehicle_type", "plate_number", "rating"}
        assert seen["driver"]["id"] == d.id and seen["driver"]["name"] == "Budi Santoso"
        assert seen["driver"]["plate_number"] == d.account["plate_number"]

        # Busy: no going offline in the middle of a trip.
        _err(edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token,
                      csrf=d.csrf), 409)

        trip = _ok(edge.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf))
        assert trip["status"] == "picked_up" and trip["picked_up_at"], trip
        assert _order_status(edge, u, o["id"]) == "picked_up"
        trip = _ok(edge.post(f"/trips/{o['id']}/complete", token=d.token, csrf=d.csrf))
        assert trip["status"] == "completed" and trip["completed_at"], trip
        earning = o["price"] * 80 // 100
        assert trip["earning"] == earning
        assert _order_status(edge, u, o["id"]) == "completed"

        r = edge.post(f"/orders/{o['id']}/rating", json={"rating": 4, "comment": "ok"},
                      token=u.token, csrf=u.csrf)
        assert r.status in (200, 201), r
        wait_for(lambda: _ok(edge.get("/drivers/me", token=d.token))["rating"] == 4.0,
                 timeout=20, what="the driver's rating")
        # user-service caches driver profiles for a few seconds.
        wait_for(lambda: _ok(edge.get(f"/orders/{o['id']}", token=u.token))["driver"]["rating"]
                 == 4.0, timeout=20, what="the rating in the order's driver profile")

        trips = _ok(edge.get("/trips", token=d.token))
        assert trips["items"][0]["order_id"] == o["id"], trips
        assert trips["items"][0]["earning"] == earning
        assert trips["items"][0]["customer"] == {"first_name": "Sari"}
        money = _ok(edge.get("/drivers/me/earnings", token=d.token))
        assert money == {"total": earning, "currency": "IDR", "trips": 1, "today": earning}
    finally:
        for x in drivers_online:
            edge.put("/drivers/me/status", json={"status": "offline"}, token=x.token,
                     csrf=x.csrf)
    assert _ok(edge.get("/drivers/me", token=d.token))["status"] == "offline"


def _offer_for_none(edge, d):
    return _ok(edge.get("/offers", token=d.token))["items"] == []


def test_trip_history_pages(edge, online):
    u = new_user(edge)
    d = new_driver(edge)
    point = _spot()
    for _ in range(3):
        _ride(edge, u, d, point, online)
    page = _ok(edge.get("/trips", token=d.token, params={"limit": "2"}))
    assert len(page["items"]) == 2 and page["next_cursor"], page
    rest = _ok(edge.get("/trips", token=d.token, params={"limit": "2",
                                                          "cursor": page["next_cursor"]}))
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None, rest
    ids = [t["order_id"] for t in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    assert _ok(edge.get("/drivers/me/earnings", token=d.token))["trips"] == 3


# ---- dispatch: nobody, timeouts, rejection ------------------------------------------------


@pytest.mark.slow
def test_no_driver_order_expires(edge):
    u = new_user(edge)
    o = _order(edge, u, _spot())
    _wait_order(edge, u, o["id"], "expired", timeout=DISPATCH_MAX_S + 25)


@pytest.mark.slow
def test_offer_timeout_then_accept_is_409(edge, online):
    u, d, o, offer = _offered(edge, online)
    time.sleep(OFFER_TTL_S + 1.5)
    _err(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf), 409)
    _err(edge.post(f"/offers/{offer['id']}/reject", token=d.token, csrf=d.csrf), 409)
    assert all(x["order_id"] != o["id"] for x in _ok(edge.get("/offers", token=d.token))["items"])
    # Nobody else is near: the order runs out of time.
    _wait_order(edge, u, o["id"], "expired", timeout=DISPATCH_MAX_S + 25)


@pytest.mark.slow
def test_reject_then_next_candidate(edge, online):
    u = new_user(edge)
    near = new_driver(edge)
    far = new_driver(edge)
    point = _spot()
    online(near, _moved(point, 100, 0))
    online(far, _moved(point, 0, 900))
    o = _order(edge, u, point)
    first = _offer_for(edge, near, o["id"])
    assert _offer_for_none(edge, far)
    rejected = _ok(edge.post(f"/offers/{first['id']}/reject", token=near.token, csrf=near.csrf))
    assert rejected["status"] == "rejected"
    _err(edge.post(f"/offers/{first['id']}/accept", token=near.token, csrf=near.csrf), 409)
    second = _offer_for(edge, far, o["id"], timeout=15)
    # Another driver's offer does not exist for this driver.
    _err(edge.post(f"/offers/{second['id']}/accept", token=near.token, csrf=near.csrf), 404)
    trip = _ok(edge.post(f"/offers/{second['id']}/accept", token=far.token, csrf=far.csrf))
    assert trip["order_id"] == o["id"]
    assert _ok(edge.get(f"/orders/{o['id']}", token=u.token))["driver"]["id"] == far.id
    _ok(edge.post(f"/trips/{o['id']}/pickup", token=far.token, csrf=far.csrf))
    _ok(edge.post(f"/trips/{o['id']}/complete", token=far.token, csrf=far.csrf))
    # The rejecting driver never sees the trip.
    _err(edge.post(f"/trips/{o['id']}/pickup", token=near.token, csrf=near.csrf), 404)
    assert _ok(edge.get("/trips", token=near.token))["items"] == []


# ---- races --------------------------------------------------------------------------------


def _together(*calls):
    """Run the calls at the same moment on threads; their Responses in order."""
    out = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i, fn):
        gate.wait()
        out[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_accepts_at_once(edge, online):
    u, d, o, offer = _offered(edge, online)
    apis = [Api(edge.base_url) for _ in range(4)]  # a session (connection) per thread
    rs = _together(*[lambda a=a: a.post(f"/offers/{offer['id']}/accept", token=d.token,
                                        csrf=d.csrf) for a in apis])
    codes = sorted(r.status for r in rs)
    assert codes == [200, 409, 409, 409], rs
    assert _order_status(edge, u, o["id"]) == "accepted"
    _ok(edge.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf))
    _ok(edge.post(f"/trips/{o['id']}/complete", token=d.token, csrf=d.csrf))
    money = _ok(edge.get("/drivers/me/earnings", token=d.token))
    assert money["trips"] == 1 and money["total"] == o["price"] * 80 // 100


def test_cancel_racing_accept(edge, online):
    u, d, o, offer = _offered(edge, online)
    a1, a2 = Api(edge.base_url), Api(edge.base_url)
    accept, cancel = _together(
        lambda: a1.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf),
        lambda: a2.post(f"/orders/{o['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
    assert accept.status in (200, 409), accept
    assert cancel.status in (200, 409), cancel
    # Exactly one outcome holds: the order is cancelled (before pickup, even once accepted) and
    # then the driver's trip ends cancelled too; or the cancel lost and the trip goes on.
    final = _order_status(edge, u, o["id"])
    if cancel.status == 200:
        assert final == "cancelled"

        def trip_settled():
            items = _ok(edge.get("/trips", token=d.token))["items"]
            return all(t["status"] == "cancelled" for t in items if t["order_id"] == o["id"])
        wait_for(trip_settled, timeout=20, what="the trip cancelled")
        _err(edge.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf),
             404 if accept.status == 409 else 409)
        assert _offer_for_none(edge, d)
        # Core freed the driver: the next order nearby is offered to them again.
        nxt = _order(edge, u, (o["pickup_lat"], o["pickup_lng"]))
        nxt_offer = _offer_for(edge, d, nxt["id"], timeout=20)
        _ok(edge.post(f"/offers/{nxt_offer['id']}/reject", token=d.token, csrf=d.csrf))
        _ok(edge.post(f"/orders/{nxt['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
        wait_for(lambda: edge.put("/drivers/me/status", json={"status": "offline"},
                                  token=d.token, csrf=d.csrf).status == 200, timeout=20,
                 what="driver free to go offline")
    else:
        assert accept.status == 200 and final == "accepted"
        _ok(edge.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf))
        _ok(edge.post(f"/trips/{o['id']}/complete", token=d.token, csrf=d.csrf))


# ---- every wrong transition ----------------------------------------------------------------


def test_wrong_transitions_are_409(edge, online):
    u, d, o, offer = _offered(edge, online)
    oid = o["id"]
    # Before accepting there is no trip.
    _err(edge.post(f"/trips/{oid}/pickup", token=d.token, csrf=d.csrf), 404)
    _ok(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf))
    _err(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf), 409, "conflict")
    _err(edge.post(f"/offers/{offer['id']}/reject", token=d.token, csrf=d.csrf), 409, "conflict")
    _err(edge.post(f"/trips/{oid}/complete", token=d.token, csrf=d.csrf), 409, "conflict")
    _err(edge.post(f"/orders/{oid}/rating", json={"rating": 5}, token=u.token, csrf=u.csrf), 409)
    _ok(edge.post(f"/trips/{oid}/pickup", token=d.token, csrf=d.csrf))
    _err(edge.post(f"/trips/{oid}/pickup", token=d.token, csrf=d.csrf), 409, "conflict")
    _err(edge.post(f"/orders/{oid}/cancel", json={}, token=u.token, csrf=u.csrf), 409)
    _err(edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token, csrf=d.csrf),
         409)
    _ok(edge.post(f"/trips/{oid}/complete", token=d.token, csrf=d.csrf))
    _err(edge.post(f"/trips/{oid}/complete", token=d.token, csrf=d.csrf), 409, "conflict")
    _err(edge.post(f"/trips/{oid}/pickup", token=d.token, csrf=d.csrf), 409, "conflict")
    # Without the CSRF token nothing moves.
    _err(edge.post(f"/offers/{offer['id']}/accept", token=d.token), 403, "csrf_token_invalid")
    # Another driver cannot touch this trip.
    other = new_driver(edge)
    _err(edge.post(f"/trips/{oid}/complete", token=other.token, csrf=other.csrf), 404)
    assert _ok(edge.get("/drivers/me/earnings", token=d.token))["trips"] == 1


# ---- a receiver down during an update -----------------------------------------------------


@pytest.mark.disruptive
def test_rating_reaches_driver_after_restart_exactly_once(edge, online, stack):
    u = new_user(edge)
    d = new_driver(edge)
    point = _spot()
    o1, _ = _ride(edge, u, d, point, online)
    o2, _ = _ride(edge, u, d, point, online)
    r = edge.post(f"/orders/{o1['id']}/rating", json={"rating": 5}, token=u.token, csrf=u.csrf)
    assert r.status in (200, 201), r
    wait_for(lambda: _ok(edge.get("/drivers/me", token=d.token))["rating"] == 5.0, timeout=20,
             what="first rating")
    stack.stop("driver")
    try:
        r = edge.post(f"/orders/{o2['id']}/rating", json={"rating": 2}, token=u.token,
                      csrf=u.csrf)
        assert r.status in (200, 201), r  # user-service takes it; delivery waits
        time.sleep(2)
    finally:
        stack.start("driver")
    # (5 + 2) / 2 = 3.5; a second delivery of the same message would make it 3.0.
    wait_for(lambda: (edge.get("/drivers/me", token=d.token).result or {}).get("rating") == 3.5,
             timeout=60, what="second rating after restart")
    time.sleep(2)
    assert _ok(edge.get("/drivers/me", token=d.token))["rating"] == 3.5
    wait_for(lambda: _ok(edge.get(f"/orders/{o2['id']}", token=u.token))["driver"]["rating"]
             == 3.5, timeout=20, what="the rating in the order's driver profile")


@pytest.mark.disruptive
def test_core_down_status_change_is_503_and_nothing_changes(edge, stack):
    d = new_driver(edge)
    stack.stop("core")
    try:
        r = edge.put("/drivers/me/status", json={"status": "online"}, token=d.token, csrf=d.csrf)
        assert r.status in (503, 504), r
    finally:
        stack.start("core")
    assert _ok(edge.get("/drivers/me", token=d.token))["status"] == "offline"
