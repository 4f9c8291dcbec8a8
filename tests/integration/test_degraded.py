"""Degraded, not down (docs/reliability.md, "Degraded modes"): with Redis, MariaDB or a peer
service stopped through the Stack helper, a representative route of each class behaves as the
table says, the circuit breaker towards a stopped peer opens (failing fast, visible in /metrics)
and closes again once the peer is back. Every test restarts what it stopped, even on failure.
"""

import os
import re
import signal
import time

import pytest

from antar_client import login, new_driver, new_user, run_dir, wait_for
from test_flow import _moved, _offer_for, _ok, _order, _spot, online  # noqa: F401 (fixture)

pytestmark = pytest.mark.disruptive


def _err(r, status, code):
    assert r.status == status, r
    assert r.body["error"]["code"] == code, r
    return r.body["error"]


def _metric(api, name, **labels):
    """The value of one series of a service's /metrics, or None when it is not there."""
    text = api.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}{{{re.escape(want)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


@pytest.fixture
def assigned(edge, online):
    """assigned(): a fresh customer's order accepted by a fresh driver, as (customer, driver,
    order). At the end the customer cancels it, so that the driver can go offline at once."""
    made = []

    def make():
        u, d = new_user(edge), new_driver(edge)
        point = _spot()
        online(d, _moved(point, 100, 0))
        o = _order(edge, u, point)
        offer = _offer_for(edge, d, o["id"])
        _ok(edge.post(f"/offers/{offer['id']}/accept", token=d.token, csrf=d.csrf))
        made.append((u, o))
        return u, d, o

    yield make
    for u, o in made:
        edge.post(f"/orders/{o['id']}/cancel", token=u.token, csrf=u.csrf)


# ---- Redis away ------------------------------------------------------------------------------


def test_redis_away_reads_served_writes_fail_closed(edge, user_api, driver_api, core_api, stack,
                                                     assigned):
    u, d, o = assigned()
    # A token revoked before the outage and presented once since: this process remembers it.
    revoked = login(edge, u.account["email"], u.account["password"], "user-app")
    r = edge.post("/oauth/revoke", form={"token": revoked, "client_id": "user-app"})
    assert r.status == 200, r
    _err(user_api.get("/users/me", token=revoked), 401, "invalid_token")

    stack.stop("redis")
    try:
        # Plain authenticated reads whose data is in MariaDB: served, through the edge too
        # (user- and driver-service stay in its rotation without Redis).
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            edge.get(f"/orders/{o['id']}", token=u.token)), timeout=10,
            what="GET /orders/{id} through the edge with redis stopped")
        assert r.result["id"] == o["id"] and r.result["status"] == "accepted", r
        assert r.result["driver"]["id"] == d.id, r
        assert _ok(user_api.get("/users/me", token=u.token))["id"] == u.id
        assert _ok(driver_api.get("/drivers/me", token=d.token))["id"] == d.id
        assert "items" in _ok(driver_api.get("/offers", token=d.token))
        assert _ok(core_api.get("/csrf", token=u.token))["csrf_token"]
        # ...but not for the token seen revoked before the outage.
        _err(user_api.get("/users/me", token=revoked), 401, "invalid_token")
        # Writes fail closed: nobody can say whether the token was revoked.
        _err(user_api.patch("/users/me", json={"name": "Mallory"}, token=u.token, csrf=u.csrf),
             503, "redis_unavailable")
        _err(driver_api.post(f"/trips/{o['id']}/pickup", token=d.token, csrf=d.csrf), 503,
             "redis_unavailable")
        # Security that lives in Redis fails closed: no login (throttle, refresh families).
        r = core_api.post("/oauth/token", form={
            "grant_type": "password", "client_id": "user-app",
            "username": u.account["email"], "password": u.account["password"]})
        assert r.status == 503, r
        # Every degraded acceptance is counted.
        assert (_metric(user_api, "antar_auth_degraded_total", method="GET") or 0) >= 2
        # The account is unchanged.
        assert _ok(user_api.get("/users/me", token=u.token))["name"] == u.account["name"]
    finally:
        stack.start("redis")
    # Back: the same write goes through.
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
        user_api.patch("/users/me", json={"name": "Sari Back"}, token=u.token, csrf=u.csrf)),
        timeout=10, what="PATCH /users/me after redis came back")
    assert r.result["name"] == "Sari Back"


# ---- MariaDB away ----------------------------------------------------------------------------


def test_mariadb_away_data_routes_503_stateless_routes_served(edge, user_api, driver_api,
                                                               core_api, stack):
    u = new_user(edge)
    stack.stop("mariadb")
    try:
        # Whatever reads or writes MariaDB answers the service's own 503 naming the database.
        r = wait_for(lambda: (lambda r: r if r.status == 503 else None)(
            user_api.get("/users/me", token=u.token)), timeout=10,
            what="GET /users/me 503 with mariadb stopped")
        _err(r, 503, "database_unavailable")
        _err(user_api.get("/orders", token=u.token), 503, "database_unavailable")
        # Token checks need no database: core's keys, CSRF tokens, JWKS are served.
        assert _ok(core_api.get("/csrf", token=u.token))["csrf_token"]
        jwks = core_api.get("/.well-known/jwks.json")
        assert jwks.status == 200 and jwks.body["keys"], jwks
    finally:
        stack.start("mariadb")
    wait_for(lambda: user_api.get("/users/me", token=u.token).status == 200, timeout=15,
             what="GET /users/me after mariadb came back")


# ---- a peer away: the circuit breaker --------------------------------------------------------


def _order_driver(api, u, order_id, **kw):
    r = api.get(f"/orders/{order_id}", token=u.token, **kw)
    assert r.status == 200, r
    return r.result["driver"]


def _circuit(user_api):
    return _metric(user_api, "antar_circuit_state", upstream="driver-service")


def _wait_closed(user_api, u, order_id):
    """After the peer is back: reads go on (one of them is the half-open probe) until the
    circuit is closed and the profile is fresh again."""
    def closed():
        drv = _order_driver(user_api, u, order_id)
        return _circuit(user_api) == 0 and "stale" not in drv and "degraded" not in drv
    wait_for(closed, timeout=15, interval=0.3, what="the circuit to driver-service closed")


def test_driver_service_away_order_read_degrades_and_circuit_opens(edge, user_api, stack,
                                                                   assigned):
    u, d, o = assigned()
    full = _order_driver(edge, u, o["id"])
    assert full["name"] == d.account["name"] and "stale" not in full, full
    opened_before = _metric(user_api, "antar_circuit_transitions_total",
                            upstream="driver-service", to="open") or 0

    stack.stop("driver")
    try:
        # The order is always answered with the driver's profile: a worker thread's own fresh
        # copy (≤ 10 s old), else the last profile driver-service gave, marked stale; never a
        # 5xx. Reads go on until the circuit has opened.
        def opened():
            drv = _order_driver(edge, u, o["id"])
            assert drv["id"] == d.id and drv["name"] == d.account["name"], drv
            assert set(drv) - {"stale"} == set(full), drv
            return _circuit(user_api) == 1
        wait_for(opened, timeout=20, interval=0.2, what="the circuit to driver-service open")
        assert _metric(user_api, "antar_circuit_transitions_total", upstream="driver-service",
                       to="open") > opened_before
        # Open: the call is not even tried, the read costs far less than the connect timeout
        # (500 ms), and the fast failures are counted.
        fast_before = _metric(user_api, "antar_calls_total", target="driver-service",
                              outcome="circuit_open") or 0
        for _ in range(10):
            t0 = time.monotonic()
            drv = _order_driver(user_api, u, o["id"])
            took = time.monotonic() - t0
            assert took < 0.15, f"{took:.3f} s with the circuit open"
            assert drv["id"] == d.id and drv["name"] == d.account["name"], drv
        if _circuit(user_api) == 1:
            fast = _metric(user_api, "antar_calls_total", target="driver-service",
                           outcome="circuit_open") or 0
            assert fast >= fast_before
    finally:
        stack.start("driver")
    _wait_closed(user_api, u, o["id"])
    assert _metric(user_api, "antar_circuit_transitions_total", upstream="driver-service",
                   to="closed") >= 1


def test_driver_service_away_unknown_profile_is_id_and_flag(edge, user_api, stack, assigned):
    u, d, o = assigned()  # user-service never fetched this driver's profile
    stack.stop("driver")
    try:
        drv = _order_driver(edge, u, o["id"])
        assert drv == {"id": d.id, "degraded": True}, drv
        # The list degrades the same way instead of failing.
        r = edge.get("/orders", token=u.token)
        assert r.status == 200, r
        assert r.result["items"][0]["driver"] == {"id": d.id, "degraded": True}, r
        # A 503 from a route that needs the peer names it.
    finally:
        stack.start("driver")
    _wait_closed(user_api, u, o["id"])


def test_hung_peer_fails_fast_once_the_circuit_opens(edge, user_api, stack, assigned):
    """A peer that accepts connections but never answers (SIGSTOP) costs each call the whole
    timeout (3 s) until the circuit opens; from then on reads answer at once, degraded."""
    from concurrent.futures import ThreadPoolExecutor

    u, d, o = assigned()
    with open(os.path.join(run_dir(), "driver.pid")) as f:
        pid = int(f.read().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        # Several reads at once reach several worker threads, none of which has the profile:
        # each call times out, and their failures open the circuit.
        def read(_):
            return _order_driver(user_api.__class__(user_api.base_url, service="user"), u,
                                 o["id"], timeout=30)
        with ThreadPoolExecutor(8) as ex:
            for drv in ex.map(read, range(8)):
                assert drv["id"] == d.id, drv
        wait_for(lambda: _circuit(user_api) == 1 or (_order_driver(user_api, u, o["id"],
                                                                   timeout=30) and False),
                 timeout=30, what="the circuit to driver-service open")
        # Every read degrades; all but the one that may become the half-open probe (after the
        # cooldown the next call is let through and waits for the hung peer) answer at once.
        times = []
        for _ in range(8):
            t0 = time.monotonic()
            drv = _order_driver(user_api, u, o["id"], timeout=30)
            times.append(time.monotonic() - t0)
            assert drv == {"id": d.id, "degraded": True}, drv
        slow = [t for t in times if t >= 0.25]
        assert len(slow) <= 1, f"reads with the circuit open took {times} (the call timeout is 3 s)"
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait_closed(user_api, u, o["id"])
