"""user-service orders: placement with every validation, the one-active-order rule,
Idempotency-Key (replays, a reused key with another body, concurrent requests → one order),
history paging, reads of one's own orders only, cancel, rating, and the internal transitions
(assign, pickup, complete, expire) with every wrong transition answered 409.

Transitions that the driver app would cause are driven here through the internal routes with a
service token, so these tests need only user-service and core (fares, tokens). The full
multi-service flow (dispatch → offer → accept → trip) is tested by the driver and core suites."""

import threading

import pytest

from antar_client import service_token, signup_driver, unique_email

JAKARTA = {
    "pickup_lat": -6.2088, "pickup_lng": 106.8456, "pickup_address": "Monas, Jakarta Pusat",
    "dropoff_lat": -6.2250, "dropoff_lng": 106.8000, "dropoff_address": "Senayan, Jakarta",
    "vehicle_type": "motorcycle",
}

ORDER_KEYS = {"id", "status", "pickup_lat", "pickup_lng", "pickup_address", "dropoff_lat",
              "dropoff_lng", "dropoff_address", "vehicle_type", "distance_m", "duration_s",
              "price", "currency", "surge_multiplier", "driver", "created_at", "updated_at",
              "accepted_at", "picked_up_at", "completed_at", "cancelled_at"}


def order_body(**over):
    b = dict(JAKARTA)
    b.update(over)
    return b


@pytest.fixture(scope="module")
def svc_token(core_api):
    return service_token(core_api, "driver-service")


@pytest.fixture(scope="module")
def driver_id(driver_api):
    """A real driver's id when driver-service runs (so GET /orders/{id} can show a profile)."""
    try:
        d = signup_driver(driver_api)
        return d["id"]
    except Exception:  # driver-service not up: any id works for user-service
        return 987654


def place(user_api, who, headers=None, **over):
    return user_api.post("/orders", json=order_body(**over), token=who.token, csrf=who.csrf,
                         headers=headers)


def placed(user_api, who, **over):
    r = place(user_api, who, **over)
    assert r.status == 201, r
    return r.result


def cancel(user_api, who, oid):
    return user_api.post(f"/orders/{oid}/cancel", json={}, token=who.token, csrf=who.csrf)


def internal(user_api, tok, oid, action, **body):
    return user_api.post(f"/internal/orders/{oid}/{action}", json=body, token=tok)


def completed_order(user_api, who, tok, driver_id):
    o = placed(user_api, who)
    assert internal(user_api, tok, o["id"], "assign", driver_id=driver_id, offer_id=1).status == 200
    assert internal(user_api, tok, o["id"], "pickup", driver_id=driver_id).status == 200
    r = internal(user_api, tok, o["id"], "complete", driver_id=driver_id)
    assert r.status == 200, r
    assert r.result["status"] == "completed"
    return o


# ---- placement ------------------------------------------------------------------------------

def test_place_order(user_api, alice):
    r = place(user_api, alice)
    assert r.status == 201, r
    o = r.result
    assert ORDER_KEYS <= set(o), sorted(ORDER_KEYS - set(o))
    assert o["status"] == "searching"
    assert o["driver"] is None
    assert isinstance(o["price"], int) and o["price"] > 0
    assert o["currency"] == "IDR"
    assert o["vehicle_type"] == "motorcycle"
    assert o["pickup_address"] == JAKARTA["pickup_address"]
    assert abs(o["pickup_lat"] - JAKARTA["pickup_lat"]) < 1e-9
    assert o["accepted_at"] is None and o["cancelled_at"] is None
    for k in ("user_id", "driver_id", "request_hash", "idempotency_key"):
        assert k not in o


def test_place_order_form_encoded(user_api, alice):
    r = user_api.post("/orders", form={k: str(v) for k, v in order_body(vehicle_type="car").items()},
                      token=alice.token, csrf=alice.csrf)
    assert r.status == 201, r
    assert r.result["vehicle_type"] == "car"


def test_place_order_needs_token_and_csrf(user_api, alice):
    r = user_api.post("/orders", json=order_body())
    assert r.status == 401, r
    r = user_api.post("/orders", json=order_body(), token=alice.token)
    assert r.status == 403, r
    assert r.error["code"] == "csrf_token_invalid"
    # Nothing was created by the refused requests.
    assert user_api.get("/orders", token=alice.token).result["items"] == []


@pytest.mark.parametrize("field", ["pickup_lat", "pickup_lng", "pickup_address", "dropoff_lat",
                                   "dropoff_lng", "dropoff_address", "vehicle_type"])
def test_place_order_missing_field(user_api, alice, field):
    body = order_body()
    del body[field]
    r = user_api.post("/orders", json=body, token=alice.token, csrf=alice.csrf)
    assert r.status == 422, r
    assert r.error["code"] == "missing_field"
    assert r.error["field"] == field


@pytest.mark.parametrize("field,value", [
    ("pickup_lat", 90.0001), ("pickup_lat", -91), ("pickup_lat", "-6.2"), ("pickup_lat", None),
    ("pickup_lng", 180.5), ("pickup_lng", -181),
    ("dropoff_lat", 100), ("dropoff_lng", -200), ("dropoff_lng", True),
    ("pickup_address", ""), ("pickup_address", "a" * 256), ("pickup_address", 5),
    ("dropoff_address", ""), ("dropoff_address", "b" * 256), ("dropoff_address", "x\u0007y"),
    ("vehicle_type", "bus"), ("vehicle_type", ""), ("vehicle_type", "Car"),
    ("quote_id", ""), ("quote_id", "q" * 65),
])
def test_place_order_invalid_field(user_api, alice, field, value):
    r = place(user_api, alice, **{field: value})
    assert r.status == 422, r
    assert r.error["field"] == field


def test_place_order_invalid_form_number(user_api, alice):
    body = {k: str(v) for k, v in order_body().items()}
    body["pickup_lat"] = "abc"
    r = user_api.post("/orders", form=body, token=alice.token, csrf=alice.csrf)
    assert r.status == 422, r
    assert r.error["field"] == "pickup_lat"


def test_place_order_unknown_field(user_api, alice):
    r = place(user_api, alice, price=1)
    assert r.status == 422, r
    assert r.error["code"] == "unknown_field"


def test_place_order_boundaries(user_api, alice):
    o = placed(user_api, alice, pickup_lat=90, pickup_lng=-180, dropoff_lat=-90,
               dropoff_lng=180, pickup_address="a" * 255, dropoff_address="Z")
    assert cancel(user_api, alice, o["id"]).status == 200


def test_one_active_order_at_a_time(user_api, alice):
    first = placed(user_api, alice)
    r = place(user_api, alice)
    assert r.status == 409, r
    assert str(first["id"]) in r.error["message"]
    assert cancel(user_api, alice, first["id"]).status == 200
    second = placed(user_api, alice)
    assert second["id"] != first["id"]


# ---- Idempotency-Key --------------------------------------------------------------------------

def test_idempotency_key_replay_gives_the_same_order(user_api, alice):
    h = {"Idempotency-Key": "order-" + unique_email("k")}
    a = place(user_api, alice, headers=h)
    b = place(user_api, alice, headers=h)
    assert a.status == 201, a
    # A replay answers 200 with the order the first request created (api/user.yaml).
    assert b.status == 200, b
    assert b.result["id"] == a.result["id"]
    assert b.headers.get("Idempotent-Replayed") == "true"
    assert len(user_api.get("/orders", token=alice.token).result["items"]) == 1


def test_idempotency_key_with_another_body_is_409(user_api, alice):
    h = {"Idempotency-Key": "k-" + unique_email("x")}
    assert place(user_api, alice, headers=h).status == 201
    r = place(user_api, alice, headers=h, dropoff_address="Somewhere else")
    assert r.status == 409, r
    assert r.error["field"] == "Idempotency-Key"
    assert "different" in r.error["message"]


def test_idempotency_key_is_per_user(user_api, alice, bob):
    h = {"Idempotency-Key": "shared-key-" + unique_email("s")}
    a = place(user_api, alice, headers=h)
    b = place(user_api, bob, headers=h)
    assert a.status == 201 and b.status == 201, (a, b)
    assert a.result["id"] != b.result["id"]


@pytest.mark.parametrize("key", ["", "k" * 65, "tab\there"])
def test_idempotency_key_invalid(user_api, alice, key):
    r = place(user_api, alice, headers={"Idempotency-Key": key})
    if key == "":
        # An empty header is indistinguishable from none for some HTTP stacks.
        assert r.status in (201, 422), r
        if r.status == 201:
            cancel(user_api, alice, r.result["id"])
        return
    assert r.status == 422, r
    assert r.error["field"] == "Idempotency-Key"


def test_idempotency_key_concurrent_requests_make_one_order(user_api, alice):
    h = {"Idempotency-Key": "race-" + unique_email("r")}
    results = [None] * 6
    start = threading.Barrier(len(results))

    def go(i):
        start.wait()
        results[i] = place(user_api.__class__(user_api.base_url, service="user"), alice,
                           headers=h)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(r.status for r in results)
    # Exactly one request created the order (201); the others got it back as replays (200).
    assert statuses == [200] * (len(results) - 1) + [201], results
    assert len({r.result["id"] for r in results}) == 1, results
    assert len(user_api.get("/orders", token=alice.token).result["items"]) == 1


def test_concurrent_orders_without_key_make_one_active(user_api, alice):
    results = [None] * 4
    start = threading.Barrier(len(results))

    def go(i):
        start.wait()
        results[i] = place(user_api.__class__(user_api.base_url, service="user"), alice)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * (len(results) - 1), results


# ---- reads --------------------------------------------------------------------------------------

def test_get_own_order_only(user_api, alice, bob):
    o = placed(user_api, alice)
    r = user_api.get(f"/orders/{o['id']}", token=alice.token)
    assert r.status == 200, r
    assert r.result["id"] == o["id"]
    r = user_api.get(f"/orders/{o['id']}", token=bob.token)
    assert r.status == 404, r
    assert user_api.get(f"/orders/{o['id']}").status == 401
    for bad in ("999999999", "abc", "0", "-1", "1.5"):
        r = user_api.get(f"/orders/{bad}", token=alice.token)
        assert r.status == 404, (bad, r)


def test_list_newest_first_with_paging(user_api, alice, bob):
    ids = []
    for _ in range(3):
        o = placed(user_api, alice)
        ids.append(o["id"])
        assert cancel(user_api, alice, o["id"]).status == 200
    placed(user_api, bob)
    r = user_api.get("/orders", token=alice.token)
    assert r.status == 200, r
    assert [o["id"] for o in r.result["items"]] == ids[::-1]
    assert r.result["next_cursor"] is None
    seen, cursor = [], None
    while True:
        params = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = user_api.get("/orders", token=alice.token, params=params)
        assert r.status == 200, r
        assert len(r.result["items"]) <= 1
        seen += [o["id"] for o in r.result["items"]]
        cursor = r.result["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    r = user_api.get("/orders", token=bob.token)
    assert len(r.result["items"]) == 1


@pytest.mark.parametrize("params,field", [
    ({"limit": 0}, "limit"), ({"limit": 51}, "limit"), ({"limit": "x"}, "limit"),
    ({"limit": ""}, "limit"), ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "MTIz"}, "cursor"),
])
def test_list_invalid_query(user_api, alice, params, field):
    r = user_api.get("/orders", token=alice.token, params=params)
    assert r.status == 422, r
    assert r.error["field"] == field


def test_list_needs_a_user_token(user_api):
    assert user_api.get("/orders").status == 401


# ---- cancel ------------------------------------------------------------------------------------

def test_cancel_searching_order(user_api, alice):
    o = placed(user_api, alice)
    r = user_api.post(f"/orders/{o['id']}/cancel", json={"reason": "changed my mind"},
                      token=alice.token, csrf=alice.csrf)
    assert r.status == 200, r
    assert r.result["status"] == "cancelled"
    assert r.result["cancelled_at"]
    r = cancel(user_api, alice, o["id"])
    assert r.status == 409, r


def test_cancel_rejections(user_api, alice, bob):
    o = placed(user_api, alice)
    assert cancel(user_api, bob, o["id"]).status == 404
    r = user_api.post(f"/orders/{o['id']}/cancel", json={})
    assert r.status == 401, r
    r = user_api.post(f"/orders/{o['id']}/cancel", json={}, token=alice.token)
    assert r.status == 403, r
    r = user_api.post(f"/orders/{o['id']}/cancel", json={"reason": "r" * 256}, token=alice.token,
                      csrf=alice.csrf)
    assert r.status == 422, r
    assert cancel(user_api, alice, 999999999).status == 404
    assert user_api.get(f"/orders/{o['id']}", token=alice.token).result["status"] == "searching"


def test_cancel_accepted_but_not_after_pickup(user_api, alice, svc_token, driver_id):
    o = placed(user_api, alice)
    assert internal(user_api, svc_token, o["id"], "assign", driver_id=driver_id).status == 200
    r = cancel(user_api, alice, o["id"])
    assert r.status == 200, r
    assert r.result["status"] == "cancelled"
    o = placed(user_api, alice)
    assert internal(user_api, svc_token, o["id"], "assign", driver_id=driver_id).status == 200
    assert internal(user_api, svc_token, o["id"], "pickup", driver_id=driver_id).status == 200
    r = cancel(user_api, alice, o["id"])
    assert r.status == 409, r


# ---- rating ------------------------------------------------------------------------------------

def test_rating_only_completed_and_once(user_api, alice, bob, svc_token, driver_id):
    o = placed(user_api, alice)
    r = user_api.post(f"/orders/{o['id']}/rating", json={"rating": 5}, token=alice.token,
                      csrf=alice.csrf)
    assert r.status == 409, r
    internal(user_api, svc_token, o["id"], "assign", driver_id=driver_id)
    internal(user_api, svc_token, o["id"], "pickup", driver_id=driver_id)
    assert internal(user_api, svc_token, o["id"], "complete", driver_id=driver_id).status == 200
    r = user_api.post(f"/orders/{o['id']}/rating", json={"rating": 4}, token=bob.token,
                      csrf=bob.csrf)
    assert r.status == 404, r
    r = user_api.post(f"/orders/{o['id']}/rating", json={"rating": 5, "comment": "mantap"},
                      token=alice.token, csrf=alice.csrf)
    assert r.status == 201, r
    assert r.result["order_id"] == o["id"]
    assert r.result["rating"] == 5
    assert r.result["comment"] == "mantap"
    r = user_api.post(f"/orders/{o['id']}/rating", json={"rating": 3}, token=alice.token,
                      csrf=alice.csrf)
    assert r.status == 409, r


@pytest.mark.parametrize("body,field", [
    ({"rating": 0}, "rating"), ({"rating": 6}, "rating"), ({"rating": 4.5}, "rating"),
    ({"rating": "5"}, "rating"), ({}, "rating"), ({"rating": 5, "comment": "c" * 501}, "comment"),
    ({"rating": 5, "stars": 5}, "stars"),
])
def test_rating_validation(user_api, alice, svc_token, driver_id, body, field):
    o = completed_order(user_api, alice, svc_token, driver_id)
    r = user_api.post(f"/orders/{o['id']}/rating", json=body, token=alice.token, csrf=alice.csrf)
    assert r.status == 422, r
    assert r.error["field"] == field
    r = user_api.post(f"/orders/{o['id']}/rating", form={"rating": "1"}, token=alice.token,
                      csrf=alice.csrf)
    assert r.status == 201, r


def test_rating_needs_csrf(user_api, alice):
    r = user_api.post("/orders/1/rating", json={"rating": 5}, token=alice.token)
    assert r.status == 403, r


# ---- internal transitions ------------------------------------------------------------------

def test_internal_routes_refuse_user_tokens(user_api, alice):
    o = placed(user_api, alice)
    assert user_api.get(f"/internal/orders/{o['id']}").status == 401
    r = user_api.get(f"/internal/orders/{o['id']}", token=alice.token)
    assert r.status == 403, r
    r = user_api.post(f"/internal/orders/{o['id']}/assign", json={"driver_id": 1},
                      token=alice.token, csrf=alice.csrf)
    assert r.status == 403, r


def test_internal_order_has_customer_first_name(user_api, alice, svc_token):
    o = placed(user_api, alice)
    r = user_api.get(f"/internal/orders/{o['id']}", token=svc_token)
    assert r.status == 200, r
    assert r.result["customer"] == {"id": alice.id, "first_name": "Alice"}
    # Contact data never leaves user-service.
    assert alice.account["email"] not in r.text
    assert alice.account["phone"] not in r.text
    assert user_api.get("/internal/orders/999999999", token=svc_token).status == 404


def test_assign_pickup_complete_transitions(user_api, alice, svc_token, driver_id):
    o = placed(user_api, alice)
    oid = o["id"]
    # Wrong order of moves.
    assert internal(user_api, svc_token, oid, "pickup", driver_id=driver_id).status == 409
    assert internal(user_api, svc_token, oid, "complete", driver_id=driver_id).status == 409
    assert o["pickup_eta_s"] is None, o
    r = internal(user_api, svc_token, oid, "assign", driver_id=driver_id, offer_id=7,
                 pickup_eta_s=-1)
    assert r.status == 422 and r.error["field"] == "pickup_eta_s", r
    r = internal(user_api, svc_token, oid, "assign", driver_id=driver_id, offer_id=7,
                 pickup_eta_s=86401)
    assert r.status == 422 and r.error["field"] == "pickup_eta_s", r
    r = internal(user_api, svc_token, oid, "assign", driver_id=driver_id, offer_id=7,
                 pickup_eta_s=312)
    assert r.status == 200, r
    assert r.result["status"] == "accepted" and r.result["accepted_at"]
    # The driver's predicted way to the pickup from the winning offer.
    assert r.result["pickup_eta_s"] == 312, r
    # The same driver again: idempotent. Another driver: lost.
    assert internal(user_api, svc_token, oid, "assign", driver_id=driver_id).status == 200
    assert internal(user_api, svc_token, oid, "assign", driver_id=driver_id + 1).status == 409
    assert internal(user_api, svc_token, oid, "pickup", driver_id=driver_id + 1).status == 409
    assert internal(user_api, svc_token, oid, "expire").status == 409
    r = internal(user_api, svc_token, oid, "pickup", driver_id=driver_id)
    assert r.status == 200 and r.result["status"] == "picked_up", r
    assert internal(user_api, svc_token, oid, "pickup", driver_id=driver_id).status == 200
    assert internal(user_api, svc_token, oid, "complete", driver_id=driver_id + 1).status == 409
    r = internal(user_api, svc_token, oid, "complete", driver_id=driver_id)
    assert r.status == 200 and r.result["status"] == "completed", r
    assert internal(user_api, svc_token, oid, "complete", driver_id=driver_id).status == 200
    assert internal(user_api, svc_token, oid, "pickup", driver_id=driver_id).status == 409
    # The user sees the driver (profile from driver-service, or {id} when it is down).
    r = user_api.get(f"/orders/{oid}", token=alice.token)
    assert r.status == 200, r
    assert r.result["status"] == "completed"
    assert r.result["driver"]["id"] == driver_id
    assert r.result["completed_at"]


@pytest.mark.parametrize("body,field", [
    ({}, "driver_id"), ({"driver_id": 0}, "driver_id"), ({"driver_id": "x"}, "driver_id"),
    ({"driver_id": 1, "extra": 1}, "extra"),
])
def test_internal_assign_validation(user_api, alice, svc_token, body, field):
    o = placed(user_api, alice)
    r = user_api.post(f"/internal/orders/{o['id']}/assign", json=body, token=svc_token)
    assert r.status == 422, r
    assert r.error["field"] == field


@pytest.mark.parametrize("action", ["assign", "pickup", "complete", "expire"])
def test_internal_moves_of_an_unknown_order_are_404(user_api, svc_token, action):
    body = {} if action == "expire" else {"driver_id": 5}
    r = user_api.post(f"/internal/orders/999999999/{action}", json=body, token=svc_token)
    assert r.status == 404 and r.error["code"] == "not_found", r


def test_expire_is_deduplicated(user_api, alice, svc_token, driver_id):
    o = placed(user_api, alice)
    h = {"Idempotency-Key": "evt-expire-" + str(o["id"])}
    r = user_api.post(f"/internal/orders/{o['id']}/expire", json={}, token=svc_token, headers=h)
    assert r.status == 200, r
    assert r.result["status"] == "expired"
    r = user_api.post(f"/internal/orders/{o['id']}/expire", json={}, token=svc_token, headers=h)
    assert r.status == 200, r
    # Expired is final: no assign, no cancel; a new order may be placed.
    assert internal(user_api, svc_token, o["id"], "assign", driver_id=driver_id).status == 409
    assert cancel(user_api, alice, o["id"]).status == 409
    assert place(user_api, alice).status == 201


# ---- dependencies down --------------------------------------------------------------------------

@pytest.mark.disruptive
def test_core_down_gives_503_and_no_order(user_api, alice, stack):
    stack.stop("core")
    try:
        r = place(user_api, alice)
        assert r.status in (503, 504), r
        assert r.error["code"] in ("service_unavailable", "upstream_timeout")
    finally:
        stack.start("core")
    assert user_api.get("/orders", token=alice.token).result["items"] == []
    assert place(user_api, alice).status == 201


@pytest.mark.disruptive
def test_driver_service_down_still_reads_the_order(user_api, alice, svc_token, stack):
    o = placed(user_api, alice)
    assert internal(user_api, svc_token, o["id"], "assign", driver_id=424242).status == 200
    stack.stop("driver")
    try:
        # The read never fails because driver-service is down: driver is {id, degraded} then
        # (no profile of this driver was ever fetched; docs/reliability.md, "Degraded modes").
        r = user_api.get(f"/orders/{o['id']}", token=alice.token)
        assert r.status == 200, r
        assert r.body["result"]["driver"] == {"id": 424242, "degraded": True}
        r = user_api.get("/orders", token=alice.token, envelope=False)
        assert r.status == 200, r
        assert r.body["result"]["items"][0]["driver"]["id"] == 424242
    finally:
        stack.start("driver")
