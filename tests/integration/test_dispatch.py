"""Dispatch (core-service): the order goes to the nearest free driver of its vehicle type,
never to an offline or stale one; a repeated delivery of the dispatch message changes nothing;
and a restart of core in the middle of a dispatch loses no order.

The stack runs with the short test settings of scripts/test.sh (ANTAR_OFFER_TTL_S=3,
ANTAR_DISPATCH_MAX_S=12, ANTAR_DISPATCH_MAX_CANDIDATES=3). Each test works around its own
random point in Sumatra, far from Jakarta where the other tests put their drivers, and more
than the 5 km dispatch radius from any other test's point. The full accept → pickup → complete
flow is tested end to end elsewhere (driver-service's tests)."""

import itertools
import os
import random
import time

import pytest

from antar_client import new_driver, new_user, redis_cli, service_token, wait_for

OFFER_TTL_S = int(os.environ.get("ANTAR_OFFER_TTL_S", "15"))
MAX_S = int(os.environ.get("ANTAR_DISPATCH_MAX_S", "120"))
M_PER_DEG = 111320.0

# One random base per run, then a fresh 30 km step for every test: no two tests share drivers.
_BASE = (random.uniform(-4.0, -2.0), random.uniform(101.0, 103.0))
_STEP = itertools.count()


def fresh_point():
    i = next(_STEP)
    return (round(_BASE[0] + 0.3 * (i % 6), 6), round(_BASE[1] + 0.3 * (i // 6), 6))


def north(p, metres):
    return (round(p[0] + metres / M_PER_DEG, 7), p[1])


def east(p, metres):
    return (p[0], round(p[1] + metres / M_PER_DEG, 7))


# ---- helpers ------------------------------------------------------------------------------

def driver_at(edge, point, vehicle_type="motorcycle", online=True):
    """A signed-up driver, online at point (or offline after having been there)."""
    d = new_driver(edge, vehicle_type=vehicle_type)
    # driver-service's own answers are checked by its tests; only the status matters here.
    r = edge.put("/drivers/me/status", json={"status": "online"}, token=d.token, csrf=d.csrf,
                 envelope=False)
    assert r.status == 200, r
    r = edge.put("/drivers/me/location", json={"lat": point[0], "lng": point[1]}, token=d.token,
                 csrf=d.csrf, envelope=False)
    assert r.status == 200, r
    if not online:
        r = edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token,
                     csrf=d.csrf, envelope=False)
        assert r.status == 200, r
    return d


def offers_for(edge, d, order_id):
    r = edge.get("/offers", token=d.token, envelope=False)
    assert r.status == 200, r
    return [o for o in r.result["items"] if o["order_id"] == order_id]


def wait_offer(edge, d, order_id, timeout=10.0):
    return wait_for(lambda: (offers_for(edge, d, order_id) or [None])[0], timeout=timeout,
                    what=f"an offer of order {order_id} to driver {d.id}")


def order_at(edge, point, vehicle_type="motorcycle"):
    """A new customer's order from point to ~2 km north-east of it."""
    who = new_user(edge)
    body = {"pickup_lat": point[0], "pickup_lng": point[1], "pickup_address": "Jl. Jemput",
            "dropoff_lat": round(point[0] + 0.015, 6), "dropoff_lng": round(point[1] + 0.01, 6),
            "dropoff_address": "Jl. Antar", "vehicle_type": vehicle_type}
    r = edge.post("/orders", json=body, token=who.token, csrf=who.csrf)
    assert r.status == 201, r
    return who, r.result


def order_status(edge, who, order_id):
    r = edge.get(f"/orders/{order_id}", token=who.token)
    assert r.status == 200, r
    return r.result["status"]


def restart_core(stack, edge):
    """Stop core (SIGTERM: its worker finishes the order in hand) and start it again (stack.start
    waits until the edge routes to it again)."""
    stack.stop("core")
    stack.start("core")


def reject(edge, d, offer):
    r = edge.post(f"/offers/{offer['id']}/reject", json={}, token=d.token, csrf=d.csrf,
                  envelope=False)
    assert r.status == 200, r


@pytest.fixture(scope="module")
def user_service_token(core_api):
    """The token user-service delivers its outbox with (the stack's own test secret)."""
    return service_token(core_api, "user-service")


# ---- who gets the offer -------------------------------------------------------------------

def test_nearest_driver_first_then_the_next_on_rejection(edge):
    p = fresh_point()
    far = driver_at(edge, east(p, 1500))
    near = driver_at(edge, north(p, 300))
    who, order = order_at(edge, p)
    offer = wait_offer(edge, near, order["id"])
    assert offer["status"] == "pending"
    assert offer["price"] == order["price"] and offer["currency"] == "IDR"
    assert offers_for(edge, far, order["id"]) == [], "the farther driver was offered first"
    t0 = time.monotonic()
    reject(edge, near, offer)
    wait_offer(edge, far, order["id"])
    # A rejection moves on at once: well before the rejected offer's own deadline.
    assert time.monotonic() - t0 < OFFER_TTL_S + 2.5
    assert offers_for(edge, near, order["id"]) == []
    assert order_status(edge, who, order["id"]) == "searching"


def test_wrong_vehicle_type_is_never_offered(edge):
    p = fresh_point()
    car = driver_at(edge, north(p, 100), vehicle_type="car")
    moto = driver_at(edge, east(p, 2500))
    _, order = order_at(edge, p, "motorcycle")
    wait_offer(edge, moto, order["id"])
    assert offers_for(edge, car, order["id"]) == []
    # And the other way round, from the same corner.
    _, car_order = order_at(edge, p, "car")
    wait_offer(edge, car, car_order["id"])
    assert offers_for(edge, moto, car_order["id"]) == []


def test_offline_and_stale_drivers_are_not_offered(edge):
    p = fresh_point()
    offline = driver_at(edge, north(p, 100), online=False)
    stale = driver_at(edge, north(p, 200))
    fresh = driver_at(edge, east(p, 3000))
    # The stale driver's last position is older than ANTAR_PRESENCE_TTL_S (waiting that long
    # is too slow for a test): set its last-seen time back.
    ttl = int(os.environ.get("ANTAR_PRESENCE_TTL_S", "60"))
    old_ms = int((time.time() - ttl - 30) * 1000)
    redis_cli("ZADD", "drivers:seen", "XX", old_ms, stale.id)
    _, order = order_at(edge, p)
    offer = wait_offer(edge, fresh, order["id"])
    reject(edge, fresh, offer)
    time.sleep(2.5)  # dispatch looks again for a candidate: still none of those two
    assert offers_for(edge, offline, order["id"]) == []
    assert offers_for(edge, stale, order["id"]) == []


def test_a_driver_holding_an_offer_gets_no_second_one(edge):
    p = fresh_point()
    only = driver_at(edge, north(p, 150))
    _, first = order_at(edge, p)
    wait_offer(edge, only, first["id"])
    _, second = order_at(edge, east(p, 50))
    time.sleep(1.0)
    assert offers_for(edge, only, second["id"]) == []


@pytest.mark.slow
def test_order_expires_when_nobody_takes_it(edge):
    p = fresh_point()
    who, order = order_at(edge, p)
    wait_for(lambda: order_status(edge, who, order["id"]) == "expired", timeout=MAX_S + 8,
             interval=0.5, what="the order to expire")


# ---- delivery and restarts ----------------------------------------------------------------

def test_dispatch_delivery_is_idempotent(edge, core_api, user_service_token):
    p = fresh_point()
    near = driver_at(edge, north(p, 200))
    other = driver_at(edge, east(p, 800))
    who, order = order_at(edge, p)
    offer = wait_offer(edge, near, order["id"])
    body = {"order_id": order["id"], "user_id": who.id, "vehicle_type": "motorcycle",
            "pickup_lat": p[0], "pickup_lng": p[1], "pickup_address": "Jl. Jemput",
            "dropoff_lat": order["dropoff_lat"], "dropoff_lng": order["dropoff_lng"],
            "dropoff_address": "Jl. Antar", "price": order["price"], "currency": "IDR"}
    for attempt in (body, dict(body, price=1)):  # a repeat, even a garbled one, is a no-op
        r = core_api.post("/internal/dispatch", json=attempt, token=user_service_token,
                          headers={"Idempotency-Key": "test-redelivery"})
        assert r.status == 202, r
        assert r.result == {"order_id": order["id"], "status": "dispatching", "created": False}
    time.sleep(1.0)
    again = offers_for(edge, near, order["id"])
    assert [o["id"] for o in again] == [offer["id"]], again
    assert offers_for(edge, other, order["id"]) == []


def test_internal_dispatch_routes_need_a_service_token(edge, core_api, user_service_token):
    who = new_user(edge)
    body = {"order_id": 1, "user_id": 1, "vehicle_type": "motorcycle", "pickup_lat": -6.2,
            "pickup_lng": 106.8, "dropoff_lat": -6.3, "dropoff_lng": 106.9, "price": 10000}
    assert core_api.post("/internal/dispatch", json=body).status == 401
    r = core_api.post("/internal/dispatch", json=body, token=who.token, csrf=who.csrf)
    assert r.status == 403, r
    for path in ("/internal/dispatch/1/cancel", "/internal/dispatch/1/rejected",
                 "/internal/dispatch/1/accepted"):
        assert core_api.post(path, json={}, token=who.token, csrf=who.csrf).status == 403, path
    r = core_api.put("/internal/drivers/1/presence", json={"status": "offline"}, token=who.token,
                     csrf=who.csrf)
    assert r.status == 403, r
    assert edge.post("/internal/dispatch", json=body).status == 404
    tok = user_service_token
    for field, value in [("order_id", 0), ("vehicle_type", "bajaj"), ("pickup_lat", 91),
                         ("price", -1), ("currency", "USD")]:
        r = core_api.post("/internal/dispatch", json=dict(body, **{field: value}), token=tok)
        assert r.status == 422 and r.error["field"] == field, (field, r)
    r = core_api.post("/internal/dispatch", json={k: v for k, v in body.items() if k != "user_id"},
                      token=tok)
    assert r.status == 422 and r.error == {"code": "missing_field", "field": "user_id",
                                           "message": r.error["message"]}, r
    r = core_api.put("/internal/drivers/1/presence", json={"status": "away"}, token=tok)
    assert r.status == 422 and r.error["field"] == "status", r
    r = core_api.put("/internal/drivers/1/presence",
                     json={"status": "online", "vehicle_type": "car", "lat": -6.2}, token=tok)
    assert r.status == 422 and r.error["field"] == "lng", r
    r = core_api.put("/internal/drivers/1/availability", json={"available": "maybe"}, token=tok)
    assert r.status == 422 and r.error["field"] == "available", r


@pytest.mark.disruptive
def test_core_restart_while_an_offer_is_out_loses_nothing(edge, stack):
    p = fresh_point()
    first = driver_at(edge, north(p, 200))
    second = driver_at(edge, east(p, 1200))
    who, order = order_at(edge, p)
    offer = wait_offer(edge, first, order["id"])
    restart_core(stack, edge)
    # The restarted core expires the unanswered offer at its deadline and moves on.
    wait_offer(edge, second, order["id"], timeout=OFFER_TTL_S + 15)
    assert all(o["id"] != offer["id"] for o in offers_for(edge, first, order["id"]))
    assert order_status(edge, who, order["id"]) == "searching"


@pytest.mark.disruptive
def test_core_restart_before_any_driver_loses_nothing(edge, stack):
    p = fresh_point()
    who, order = order_at(edge, p)
    time.sleep(0.5)  # dispatch has the order and found nobody
    restart_core(stack, edge)
    late = driver_at(edge, north(p, 400))
    wait_offer(edge, late, order["id"], timeout=10)
    assert order_status(edge, who, order["id"]) == "searching"


# ---- the driver index and the dispatch state, through the internal routes -----------------

def _fake_id():
    """An id no real driver or order has (the index is keyed by the ids other services send)."""
    return random.randint(10**12, 2 * 10**12)


def test_presence_and_availability_lifecycle(core_api, user_service_token):
    tok, d = user_service_token, _fake_id()
    p = fresh_point()
    path = f"/internal/drivers/{d}"
    r = core_api.put(path + "/presence", json={"status": "online", "vehicle_type": "car",
                                               "lat": p[0], "lng": p[1]}, token=tok)
    assert r.status == 200 and r.result["status"] == "online", r
    assert redis_cli("HGET", f"driver:{d}", "status") == "available"
    assert redis_cli("ZSCORE", "geo:drivers:car", d) != ""
    assert redis_cli("ZSCORE", "drivers:seen", d) != ""
    # Busy with order 5; a late "available" about another order changes nothing.
    r = core_api.put(path + "/availability", json={"available": False, "order_id": 5}, token=tok)
    assert r.status == 200 and r.result["applied"] is True, r
    r = core_api.put(path + "/availability", json={"available": True, "order_id": 6}, token=tok)
    assert r.status == 200 and r.result["applied"] is False, r
    assert redis_cli("HGET", f"driver:{d}", "status") == "busy"
    # Moving while busy keeps the driver busy.
    r = core_api.put(path + "/presence", json={"status": "online", "vehicle_type": "car",
                                               "lat": p[0], "lng": p[1]}, token=tok)
    assert r.status == 200 and redis_cli("HGET", f"driver:{d}", "status") == "busy"
    r = core_api.put(path + "/availability", json={"available": True, "order_id": 5}, token=tok)
    assert r.status == 200 and r.result["applied"] is True, r
    assert redis_cli("HGET", f"driver:{d}", "status") == "available"
    # Switching vehicle type moves the driver to the other index.
    r = core_api.put(path + "/presence", json={"status": "online", "vehicle_type": "motorcycle",
                                               "lat": p[0], "lng": p[1]}, token=tok)
    assert r.status == 200
    assert redis_cli("ZSCORE", "geo:drivers:car", d) == ""
    assert redis_cli("ZSCORE", "geo:drivers:motorcycle", d) != ""
    # Offline: out of every index.
    r = core_api.put(path + "/presence", json={"status": "offline"}, token=tok)
    assert r.status == 200 and r.result["status"] == "offline", r
    assert redis_cli("ZSCORE", "geo:drivers:motorcycle", d) == ""
    assert redis_cli("ZSCORE", "drivers:seen", d) == ""
    assert redis_cli("HGET", f"driver:{d}", "status") == "offline"
    # A position Redis cannot index (near a pole) is accepted but not indexed.
    r = core_api.put(path + "/presence", json={"status": "online", "vehicle_type": "car",
                                               "lat": 89.5, "lng": 10}, token=tok)
    assert r.status == 200, r
    assert redis_cli("ZSCORE", "geo:drivers:car", d) == ""


def test_accept_then_cancel_frees_the_driver(core_api, user_service_token):
    tok, d, order = user_service_token, _fake_id(), _fake_id()
    r = core_api.post(f"/internal/dispatch/{order}/accepted", json={"driver_id": d, "offer_id": 7},
                      token=tok)
    assert r.status == 200, r
    assert redis_cli("HGET", f"driver:{d}", "status") == "busy"
    assert redis_cli("HGET", f"driver:{d}", "order_id") == str(order)
    r = core_api.post(f"/internal/dispatch/{order}/cancel", json={}, token=tok)
    assert r.status == 200 and r.result["status"] == "cancelled", r
    assert redis_cli("HGET", f"driver:{d}", "status") == "available"
    assert redis_cli("HGET", f"driver:{d}", "order_id") == ""
    # A late delivery of the acceptance, or of the dispatch itself, does not bring it back.
    r = core_api.post(f"/internal/dispatch/{order}/accepted", json={"driver_id": d, "offer_id": 7},
                      token=tok)
    assert r.status == 200 and redis_cli("HGET", f"driver:{d}", "status") == "available"
    body = {"order_id": order, "user_id": 1, "vehicle_type": "car", "pickup_lat": -2.5,
            "pickup_lng": 102.5, "dropoff_lat": -2.6, "dropoff_lng": 102.6, "price": 20000}
    r = core_api.post("/internal/dispatch", json=body, token=tok)
    assert r.status == 202 and r.result["created"] is False, r
    assert redis_cli("ZSCORE", "dispatch:due", order) == ""


# ---- the busy sweep: a driver whose "free" was lost is freed from the order's owner ------------

def _plant_busy(driver_id, order_id):
    """What a Redis failover that lost the write freeing the driver leaves behind: busy with the
    order, and (as every busy driver) in drivers:busy, here due for a check at once."""
    redis_cli("HSET", f"driver:{driver_id}", "status", "busy", "order_id", order_id)
    redis_cli("ZADD", "drivers:busy", 0, driver_id)


def _status(driver_id):
    return redis_cli("HGET", f"driver:{driver_id}", "status")


def test_the_busy_sweep_frees_a_driver_whose_order_is_over(edge):
    p = fresh_point()
    d = driver_at(edge, p)
    who, order = order_at(edge, north(p, 100))
    offer = wait_offer(edge, d, order["id"])
    r = edge.post(f"/offers/{offer['id']}/accept", json={}, token=d.token, csrf=d.csrf,
                  envelope=False)
    assert r.status == 200, r
    wait_for(lambda: _status(d.id) == "busy", timeout=10, what="core to hold the driver busy")
    # Every busy driver is due a check later; an order still theirs keeps them busy.
    assert float(redis_cli("ZSCORE", "drivers:busy", d.id)) > time.time() * 1000
    redis_cli("ZADD", "drivers:busy", 0, d.id)
    wait_for(lambda: float(redis_cli("ZSCORE", "drivers:busy", d.id) or 0) > time.time() * 1000,
             timeout=10, what="the sweep to check the driver")
    assert _status(d.id) == "busy"
    assert redis_cli("HGET", f"driver:{d.id}", "order_id") == str(order["id"])
    # Someone else held busy for this order (the order is d's): freed.
    other = driver_at(edge, east(p, 3000))
    _plant_busy(other.id, order["id"])
    wait_for(lambda: _status(other.id) == "available", timeout=10,
             what="the sweep to free a driver the order is not theirs")
    assert redis_cli("ZSCORE", "drivers:busy", other.id) == ""
    assert _status(d.id) == "busy"
    # The trip ends: the driver is freed by driver-service's message, and leaves the busy set.
    for step in ("pickup", "complete"):
        r = edge.post(f"/trips/{order['id']}/{step}", json={}, token=d.token, csrf=d.csrf,
                      envelope=False)
        assert r.status == 200, r
    wait_for(lambda: _status(d.id) == "available", timeout=10, what="the driver freed")
    assert redis_cli("ZSCORE", "drivers:busy", d.id) == ""
    # That write is lost (as in a failover): the sweep asks user-service and frees the driver.
    _plant_busy(d.id, order["id"])
    wait_for(lambda: _status(d.id) == "available", timeout=10,
             what="the sweep to free a driver whose order is completed")
    assert redis_cli("HGET", f"driver:{d.id}", "order_id") == ""
    assert order_status(edge, who, order["id"]) == "completed"


def test_the_busy_sweep_frees_a_driver_held_for_an_unknown_order(edge):
    p = fresh_point()
    d = driver_at(edge, p)
    _plant_busy(d.id, _fake_id())
    wait_for(lambda: _status(d.id) == "available", timeout=10,
             what="the sweep to free a driver held for an order user-service does not have")
    # A driver no longer busy leaves the set at its next check without a call.
    redis_cli("ZADD", "drivers:busy", 0, d.id)
    wait_for(lambda: redis_cli("ZSCORE", "drivers:busy", d.id) == "", timeout=10,
             what="a free driver to leave drivers:busy")
    assert _status(d.id) == "available"
