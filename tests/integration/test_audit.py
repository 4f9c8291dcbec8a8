"""The read-only audit routes of the ops client (scope `ops`), on the real stack.

One real order flow (test_flow's helpers) leaves a completed and rated order and a second order
with a live offer; each audit route must list those rows with the right values. Then paging
(limit smaller than the rows: next_cursor, and the next page continues without overlap) and
every rejection: no token 401, user and driver tokens 403, an `internal` service token 403,
bad limit and bad cursor 422 naming the field. The ops token in turn gets 403 on `internal`
routes.
"""

import pytest

from antar_client import new_driver, new_user, service_token, wait_for
from test_flow import _moved, _offer_for, _order, _ride, _spot, online  # noqa: F401 (fixture)

ROUTES = [("user", "/internal/audit/orders"), ("driver", "/internal/audit/trips"),
          ("driver", "/internal/audit/offers"), ("driver", "/internal/audit/drivers"),
          ("core", "/internal/audit/presence"), ("core", "/internal/audit/dispatches")]
KEYSET = ROUTES[:4]  # ascending ids; the core routes page with Redis SCAN
KEY = {"/internal/audit/orders": "id", "/internal/audit/trips": "id",
       "/internal/audit/offers": "id", "/internal/audit/drivers": "id",
       "/internal/audit/presence": "driver_id", "/internal/audit/dispatches": "order_id"}


@pytest.fixture(scope="module")
def ops_token(core_api):
    return service_token(core_api, "ops")


@pytest.fixture(scope="module")
def internal_token(core_api):
    return service_token(core_api, "user-service")


def _page(api, path, token, **params):
    r = api.get(path, token=token, params=params)
    assert r.status == 200, r
    assert set(r.result) == {"items", "next_cursor"}, r
    return r.result


def _walk(api, path, token, limit=1000):
    """Every item of an audit route, page after page; also returns the pages' sizes."""
    items, sizes, cursor = [], [], None
    for _ in range(100_000):
        params = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = _page(api, path, token, **params)
        assert len(page["items"]) <= limit, (path, limit, len(page["items"]))
        items += page["items"]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return items, sizes
    raise AssertionError(f"{path}: the walk does not end")


def _by_key(api, path, token):
    items, _ = _walk(api, path, token)
    key = KEY[path]
    return {it[key]: it for it in items}


# ---- one real flow, and what each route says about it -----------------------------------------


@pytest.fixture(scope="module")
def flow(edge):
    """A completed, rated order of u by d, another completed order by a second driver, then a
    second order of u offered to d and left pending. Yields the ids; cancels the second order and takes d offline at the end."""
    u = new_user(edge, name="Audit Customer")
    d = new_driver(edge, name="Audit Driver")
    point = _spot()
    went_online = []

    def put_online(drv, p):
        assert edge.put("/drivers/me/location", json={"lat": p[0], "lng": p[1]},
                        token=drv.token, csrf=drv.csrf).status == 200
        assert edge.put("/drivers/me/status", json={"status": "online"}, token=drv.token,
                        csrf=drv.csrf).status == 200
        went_online.append(drv)

    try:
        o1, trip = _ride(edge, u, d, point, lambda drv, p: put_online(drv, p))
        r = edge.post(f"/orders/{o1['id']}/rating", json={"rating": 4}, token=u.token,
                      csrf=u.csrf)
        assert r.status in (200, 201), r
        # A second ride elsewhere, so that every table has at least two rows to page over.
        d2 = new_driver(edge, name="Audit Second")
        _ride(edge, new_user(edge), d2, _spot(), lambda drv, p: put_online(drv, p))
        o2 = _order(edge, u, point)
        offer2 = _offer_for(edge, d, o2["id"])
        yield {"u": u, "d": d, "o1": o1, "trip": trip, "o2": o2, "offer2": offer2}
    finally:
        if "o2" in locals():
            edge.post(f"/orders/{o2['id']}/cancel", json={}, token=u.token, csrf=u.csrf)
        for drv in went_online:
            wait_for(lambda: edge.put("/drivers/me/status", json={"status": "offline"},
                                      token=drv.token, csrf=drv.csrf).status == 200,
                     timeout=15, what="driver offline")


def test_core_audit_shows_the_live_offer(flow, core_api, ops_token):
    # First, while the offer (ANTAR_OFFER_TTL_S) is still out.
    d, o2 = flow["d"], flow["o2"]
    presence = _by_key(core_api, "/internal/audit/presence", ops_token)
    dispatches = _by_key(core_api, "/internal/audit/dispatches", ops_token)
    me = presence[d.id]
    assert me["status"] == "available" and me["vehicle_type"] == "motorcycle", me
    assert me["order_id"] is None and me["seen_at"].endswith("Z"), me
    assert me["offer_order_id"] == o2["id"], me
    live = dispatches[o2["id"]]
    assert live["attempts"] >= 1 and live["started_at"].endswith("Z"), live
    assert live["offer_driver_id"] == d.id and live["offer_deadline_at"], live
    assert live["due_at"] is not None, live
    assert flow["o1"]["id"] not in dispatches  # finished dispatches have no live state


def test_user_audit_orders(flow, user_api, ops_token):
    u, d, o1, o2 = flow["u"], flow["d"], flow["o1"], flow["o2"]
    orders = _by_key(user_api, "/internal/audit/orders", ops_token)
    done = orders[o1["id"]]
    assert done["user_id"] == u.id and done["status"] == "completed", done
    assert done["driver_id"] == d.id and done["offer_id"] is not None, done
    assert done["vehicle_type"] == "motorcycle" and done["price"] == o1["price"], done
    assert done["idempotency_key"] is None and done["rating"] == 4, done
    for k in ("created_at", "accepted_at", "picked_up_at", "completed_at"):
        assert done[k] and done[k].endswith("Z"), (k, done)
    assert done["cancelled_at"] is None and done["expired_at"] is None, done
    open_ = orders[o2["id"]]
    assert open_["status"] == "searching" and open_["driver_id"] is None, open_
    assert open_["offer_id"] is None and open_["rating"] is None, open_
    assert open_["accepted_at"] is None, open_


def test_driver_audit_trips_offers_drivers(flow, user_api, driver_api, ops_token):
    d, o1, o2, trip = flow["d"], flow["o1"], flow["o2"], flow["trip"]
    offer1_id = _by_key(user_api, "/internal/audit/orders", ops_token)[o1["id"]]["offer_id"]
    trips = [t for t in _by_key(driver_api, "/internal/audit/trips", ops_token).values()
             if t["order_id"] == o1["id"]]
    assert len(trips) == 1, trips
    t = trips[0]
    assert t["driver_id"] == d.id and t["offer_id"] == offer1_id, t
    assert t["status"] == "completed" and t["price"] == o1["price"], t
    assert t["accepted_at"] and t["picked_up_at"] and t["completed_at"], t
    assert t["cancelled_at"] is None, t

    offers = _by_key(driver_api, "/internal/audit/offers", ops_token)
    first = offers[offer1_id]
    assert first["order_id"] == o1["id"] and first["driver_id"] == d.id, first
    assert first["status"] == "accepted" and first["price"] == o1["price"], first
    second = offers[flow["offer2"]["id"]]
    assert second["order_id"] == o2["id"] and second["driver_id"] == d.id, second
    assert second["expires_at"].endswith("Z") and second["created_at"], second

    earning = trip["earning"]

    def mine():
        row = _by_key(driver_api, "/internal/audit/drivers", ops_token)[d.id]
        return row if row["ratings_received"] == 1 else None  # the rating travels by outbox

    row = wait_for(mine, timeout=20, what="the driver's rating in the audit")
    assert row == {"id": d.id, "status": "online", "vehicle_type": "motorcycle",
                   "rating_count": 1, "ratings_received": 1, "earnings_total": earning,
                   "earnings_count": 1, "completed_trips": 1,
                   "completed_trips_total": o1["price"],
                   "completed_trips_earnings": earning, "active_trips": 0}, row


# ---- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("svc,path", KEYSET)
def test_keyset_paging(flow, services, ops_token, svc, path):
    api = services[svc]
    first = _page(api, path, ops_token, limit=1)
    assert len(first["items"]) == 1 and first["next_cursor"], first
    second = _page(api, path, ops_token, limit=1, cursor=first["next_cursor"])
    ids1 = [it["id"] for it in first["items"]]
    ids2 = [it["id"] for it in second["items"]]
    assert ids1 == sorted(ids1) and ids2 == sorted(ids2), (ids1, ids2)
    assert ids2 and min(ids2) > max(ids1), (ids1, ids2)
    # Small pages and one big page list the same rows, once each, in ascending order.
    small, _ = _walk(api, path, ops_token, limit=1)
    big, _ = _walk(api, path, ops_token, limit=1000)
    ids = [it["id"] for it in small]
    assert ids == sorted(set(ids)), "duplicates or out of order"
    assert ids == [it["id"] for it in big]
    # The default page size is 500.
    assert len(_page(api, path, ops_token)["items"]) == min(500, len(big))


@pytest.mark.parametrize("path", ["/internal/audit/presence", "/internal/audit/dispatches"])
def test_scan_paging(flow, core_api, edge, ops_token, path):
    # Two live dispatches nobody can take (remote spots, no driver), so both lists have rows.
    users = [new_user(edge) for _ in range(2)]
    orders = [_order(edge, who, _spot()) for who in users]
    try:
        key = KEY[path]
        # POST /orders hands the order to core through the outbox: wait until both are live.
        wait_for(lambda: {o["id"] for o in orders} <= set(
            _by_key(core_api, "/internal/audit/dispatches", ops_token)), timeout=10,
            what="both dispatches in Redis")
        first = _page(core_api, path, ops_token, limit=1)
        assert len(first["items"]) <= 1 and first["next_cursor"], first
        one, sizes = _walk(core_api, path, ops_token, limit=1)
        assert max(sizes) <= 1, sizes
        keys = [it[key] for it in one]
        assert len(keys) == len(set(keys)), "a key listed twice"
        big = {it[key] for it in _walk(core_api, path, ops_token, limit=1000)[0]}
        if path.endswith("dispatches"):
            # Other tests' dispatches may end meanwhile; these two live through both walks.
            assert {o["id"] for o in orders} <= set(keys) & big
        else:
            assert set(keys) == big and flow["d"].id in big
    finally:
        for who, o in zip(users, orders):
            edge.post(f"/orders/{o['id']}/cancel", json={}, token=who.token, csrf=who.csrf)


# ---- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize("svc,path", ROUTES)
def test_audit_rejections(services, edge, ops_token, internal_token, svc, path):
    api = services[svc]
    r = api.get(path)
    assert r.status == 401, r
    u, d = new_user(edge), new_driver(edge)
    for who in (u, d):
        r = api.get(path, token=who.token)
        assert r.status == 403 and r.error["code"] == "forbidden", r
    r = api.get(path, token=internal_token)  # a service token, but scope internal
    assert r.status == 403 and r.error["code"] == "forbidden", r
    for bad in ("0", "1001", "-1", "abc", "", "1.5", " 5", "5x", "99999999999999999999"):
        r = api.get(path, token=ops_token, params={"limit": bad})
        assert r.status == 422 and r.error["field"] == "limit", (bad, r)
    other = next(p for s, p in ROUTES if p != path)
    foreign = _page(services[dict((p, s) for s, p in ROUTES)[other]], other, ops_token,
                    limit=1)["next_cursor"]
    for bad in ("x", "!!!", "bzox", "dWFvOi0x", "dWFvOjE6Mg", "a" * 300, foreign):
        if bad is None:
            continue
        r = api.get(path, token=ops_token, params={"cursor": bad})
        assert r.status == 422 and r.error["field"] == "cursor", (bad, r)
    assert edge.get(path, token=ops_token).status == 404  # the edge never routes /internal/


def test_ops_token_cannot_call_internal_routes(user_api, driver_api, core_api, ops_token):
    r = user_api.get("/internal/orders/1", token=ops_token)
    assert r.status == 403 and r.error["code"] == "forbidden", r
    r = driver_api.get("/internal/drivers/1", token=ops_token)
    assert r.status == 403, r
    r = core_api.put("/internal/drivers/1/presence", json={"status": "offline"}, token=ops_token)
    assert r.status == 403, r
    r = core_api.post("/internal/fares/quote", json={}, token=ops_token)
    assert r.status == 403, r


def test_ops_client_gets_only_its_scope(core_api):
    from antar_client import service_secret

    secret = service_secret("ops")
    assert secret, "no ops client secret available to the tests (the stack's secrets.env)"
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials", "client_id": "ops",
                                           "client_secret": secret, "scope": "internal"})
    assert r.status == 400 and r.body["error"] == "invalid_scope", r
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials", "client_id": "ops",
                                           "client_secret": secret + "x"})
    assert r.status == 401 and r.body["error"] == "invalid_client", r
    r = core_api.post("/oauth/token", form={"grant_type": "password", "client_id": "ops",
                                           "client_secret": secret, "username": "a@b.co",
                                           "password": "whatever1"})
    assert r.status == 400 and r.body["error"] == "unauthorized_client", r
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials", "client_id": "ops",
                                           "client_secret": secret})
    assert r.status == 200 and r.body["scope"] == "ops", r
