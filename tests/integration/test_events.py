"""The push channel, GET /events (Server-Sent Events), through the edge on the real stack.

Drivers get their offers (with the deadline) and withdrawals, customers every status change of
their orders and the driver's position while a driver is on the way or on the trip, the ops
client the whole city; a reconnect with Last-Event-ID gets what it missed; the rejections (401,
403, 406, 422, 429) are envelopes. Every test works at its own random spot around Jakarta (as in
test_flow), so that no test's driver gets another test's order.
"""

import http.client
import json
import math
import os
import random
import socket
import time
from urllib.parse import urlparse

import pytest

import contract
from antar_client import new_driver, new_user, service_token, wait_for

HEARTBEAT_MS = int(os.environ.get("ANTAR_EVENTS_HEARTBEAT_MS", "10000"))
MAX_PER_PRINCIPAL = int(os.environ.get("ANTAR_EVENTS_MAX_PER_PRINCIPAL", "3"))


class Stream:
    """One GET /events connection: .status, .headers, .body (an envelope's JSON on errors), and
    next() for the events of a 200, parsed as EventSource does."""

    def __init__(self, base, token=None, last_event_id=None, accept="text/event-stream",
                 timeout=10.0, query=""):
        u = urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        headers = {}
        if accept is not None:
            headers["Accept"] = accept
        if token:
            headers["Authorization"] = "Bearer " + token
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", "/events" + query, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.body = None
        self.comments = []
        self.retry = None
        self.ended = False
        if self.status != 200:
            raw = self.resp.read()
            self.body = json.loads(raw) if raw else None
            self.close()

    def next(self, timeout=10.0):
        """The next event as {id, event, data}, or None after timeout seconds without one."""
        deadline = time.monotonic() + timeout
        ev = {}
        data = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.conn.sock.settimeout(left)
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                return None
            if not line:
                self.ended = True  # the server ended the stream
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data or ev.get("event"):
                    ev["data"] = json.loads("\n".join(data)) if data else None
                    # Every event follows api/user.yaml (EventStream).
                    errs = contract.spec("user").schema_errors("/components/schemas/EventStream",
                                                               [ev])
                    assert not errs, (ev, errs)
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append(line[1:])
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("id", "event"):
                ev[name] = value
            elif name == "retry":
                self.retry = int(value)

    def wait(self, pred, timeout=15.0, what="event"):
        """Events until one satisfies pred; returns it (and those skipped are dropped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            ev = self.next(deadline - time.monotonic())
            if ev is None:
                break
            seen.append((ev.get("event"), ev.get("data")))
            if pred(ev):
                return ev
        raise AssertionError(f"no {what} within {timeout}s; saw {seen}")

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass


def _spot():
    return (random.uniform(-6.9, -5.9), random.uniform(106.2, 107.4))


def _moved(point, north_m, east_m):
    lat, lng = point
    return (lat + north_m / 111_320.0, lng + east_m / (111_320.0 * math.cos(math.radians(lat))))


def _ok(r, status=200):
    assert r.status == status, r
    return r.result


def _order(edge, u, pickup):
    dropoff = _moved(pickup, 2500, 1500)
    body = {"pickup_lat": pickup[0], "pickup_lng": pickup[1], "pickup_address": "Jl. Sudirman 1",
            "dropoff_lat": dropoff[0], "dropoff_lng": dropoff[1],
            "dropoff_address": "Jl. Thamrin 9", "vehicle_type": "motorcycle"}
    return _ok(edge.post("/orders", json=body, token=u.token, csrf=u.csrf), 201)


def _status(order_id, status):
    return lambda ev: (ev.get("event") == "order_status" and ev["data"]["order_id"] == order_id
                       and ev["data"]["status"] == status)


@pytest.fixture
def streams():
    """streams(...) opens a Stream; all are closed at the end of the test."""
    opened = []

    def open_stream(*args, **kw):
        s = Stream(*args, **kw)
        opened.append(s)
        return s

    yield open_stream
    for s in opened:
        s.close()


@pytest.fixture
def online(edge):
    drivers = []

    def put_online(d, point):
        _ok(edge.put("/drivers/me/location", json={"lat": point[0], "lng": point[1]},
                     token=d.token, csrf=d.csrf))
        _ok(edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                     csrf=d.csrf))
        drivers.append(d)
        return d

    yield put_online
    for d in drivers:
        def offline():
            return edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token,
                            csrf=d.csrf).status == 200
        try:
            wait_for(offline, timeout=15, what="driver offline")
        except AssertionError:
            pass


def _envelope(s, status, code, field=None):
    assert s.status == status, (s.status, s.body)
    assert s.headers["content-type"].startswith("application/json"), s.headers
    assert set(s.body) == {"status", "result", "error"}, s.body
    assert s.body["status"] == status and s.body["result"] is None, s.body
    assert s.body["error"]["code"] == code, s.body
    if field is not None:
        assert s.body["error"]["field"] == field, s.body


# ---- rejections -------------------------------------------------------------------------------


def test_events_without_token_is_401_envelope(edge, streams):
    _envelope(streams(edge.base_url), 401, "unauthorized")


def test_events_with_bad_token_is_401_envelope(edge, streams):
    _envelope(streams(edge.base_url, token="not.a.jwt"), 401, "invalid_token")


def test_events_wrong_accept_is_406(edge, streams):
    u = new_user(edge)
    _envelope(streams(edge.base_url, token=u.token, accept="application/json"), 406,
              "not_acceptable", "Accept")
    # Ranges that include text/event-stream are fine.
    s = streams(edge.base_url, token=u.token, accept="application/json, text/*;q=0.5")
    assert s.status == 200


def test_events_bad_last_event_id_is_422(edge, streams):
    u = new_user(edge)
    _envelope(streams(edge.base_url, token=u.token, last_event_id="yesterday"), 422,
              "invalid_field", "Last-Event-ID")


def test_events_service_token_needs_ops_scope(edge, core_api, streams):
    tok = service_token(core_api, "user-service")
    _envelope(streams(edge.base_url, token=tok), 403, "forbidden")


def test_events_limit_per_principal_is_429(edge, streams):
    u = new_user(edge)
    first = [streams(edge.base_url, token=u.token) for _ in range(MAX_PER_PRINCIPAL)]
    assert all(s.status == 200 for s in first)
    _envelope(streams(edge.base_url, token=u.token), 429, "too_many_requests")
    # Another principal is not affected.
    other = new_user(edge)
    assert streams(edge.base_url, token=other.token).status == 200
    # Closing one gives its slot back (the server sees the close on its next write, at the
    # latest with the next heartbeat).
    first[0].close()
    wait_for(lambda: (lambda s: s.close() or s.status == 200)(Stream(edge.base_url, u.token)),
             timeout=HEARTBEAT_MS / 1000 + 5, interval=0.5, what="a slot after a close")


# ---- what arrives -----------------------------------------------------------------------------


def test_stream_headers_and_heartbeat(edge, streams):
    u = new_user(edge)
    s = streams(edge.base_url, token=u.token, timeout=HEARTBEAT_MS / 1000 + 10)
    assert s.status == 200
    assert s.headers["content-type"].startswith("text/event-stream"), s.headers
    assert s.headers.get("cache-control") == "no-cache", s.headers
    # Nothing happens for this customer: only comment lines, at least one per heartbeat.
    assert s.next(timeout=HEARTBEAT_MS / 1000 + 3) is None
    assert "hb" in s.comments, s.comments
    assert s.retry == 3000


def test_customer_gets_every_status_change_and_driver_gets_offer(edge, streams, online):
    here = _spot()
    u = new_user(edge)
    d = online(new_driver(edge), _moved(here, 300, 0))
    cs = streams(edge.base_url, token=u.token)
    ds = streams(edge.base_url, token=d.token)
    assert cs.status == 200 and ds.status == 200

    order = _order(edge, u, here)
    oid = order["id"]
    ev = cs.wait(_status(oid, "searching"), what="searching")
    assert ev["id"] and ev["data"]["driver"] is None

    offer = ds.wait(lambda e: e.get("event") == "offer" and e["data"]["order_id"] == oid,
                    what="the offer")["data"]
    for k in ("id", "order_id", "pickup_lat", "pickup_lng", "dropoff_lat", "dropoff_lng", "price",
              "expires_at"):
        assert k in offer, offer
    _ok(edge.post(f"/offers/{offer['id']}/accept", json={}, token=d.token, csrf=d.csrf))

    ev = cs.wait(_status(oid, "accepted"), what="accepted")
    assert ev["data"]["driver"]["id"] == d.id
    assert ev["data"]["driver"]["name"] == d.account["name"], ev
    # The driver hears of their own trip's changes too.
    ds.wait(_status(oid, "accepted"), what="accepted on the driver's stream")

    # While the driver is on the way, each ping reaches the customer.
    spot = _moved(here, 150, 0)
    def ping_seen():
        _ok(edge.put("/drivers/me/location", json={"lat": spot[0], "lng": spot[1]},
                     token=d.token, csrf=d.csrf))
        ev = cs.next(timeout=1.5)
        return ev if ev and ev.get("event") == "driver_position" else None
    pos = wait_for(ping_seen, timeout=10, interval=0, what="driver_position")["data"]
    assert pos["order_id"] == oid
    assert abs(pos["lat"] - spot[0]) < 1e-6 and abs(pos["lng"] - spot[1]) < 1e-6
    assert pos["at"].endswith("Z")

    _ok(edge.post(f"/trips/{oid}/pickup", json={}, token=d.token, csrf=d.csrf))
    cs.wait(_status(oid, "picked_up"), what="picked_up")
    _ok(edge.post(f"/trips/{oid}/complete", json={}, token=d.token, csrf=d.csrf))
    cs.wait(_status(oid, "completed"), what="completed")


def test_driver_gets_offer_withdrawn_on_cancel(edge, streams, online):
    here = _spot()
    u = new_user(edge)
    d = online(new_driver(edge), _moved(here, 200, 100))
    ds = streams(edge.base_url, token=d.token)
    order = _order(edge, u, here)
    offer = ds.wait(lambda e: e.get("event") == "offer" and e["data"]["order_id"] == order["id"],
                    what="the offer")
    _ok(edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
    ev = ds.wait(lambda e: e.get("event") == "offer_withdrawn", what="offer_withdrawn")
    assert ev["data"]["offer_id"] == offer["data"]["id"]
    assert ev["data"]["order_id"] == order["id"] and ev["data"]["reason"] == "cancelled"
    assert int(ev["id"].split("-")[0]) >= int(offer["id"].split("-")[0])


def test_resume_with_last_event_id_gets_missed_events(edge, streams):
    u = new_user(edge)
    s = streams(edge.base_url, token=u.token)
    order = _order(edge, u, _spot())
    first = s.wait(_status(order["id"], "searching"), what="searching")
    s.close()  # the connection drops

    # While nobody listens, the order is cancelled (and a second one placed and cancelled).
    _ok(edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
    second = _order(edge, u, _spot())
    _ok(edge.post(f"/orders/{second['id']}/cancel", json={}, token=u.token, csrf=u.csrf))

    r = streams(edge.base_url, token=u.token, last_event_id=first["id"])
    assert r.status == 200
    got = []
    while len(got) < 3:
        ev = r.next(timeout=10)
        assert ev is not None, got
        got.append(ev)
    assert [(e["data"]["order_id"], e["data"]["status"]) for e in got] == [
        (order["id"], "cancelled"), (second["id"], "searching"), (second["id"], "cancelled")]
    ids = [first["id"]] + [e["id"] for e in got]
    as_pairs = [tuple(map(int, i.split("-"))) for i in ids]
    assert as_pairs == sorted(as_pairs) and len(set(ids)) == len(ids), ids
    # Nothing is repeated after the replay: the stream is live from there on.
    assert r.next(timeout=1.5) is None

    # A browser EventSource cannot set headers on its first request: the query argument works too.
    q = streams(edge.base_url, token=u.token, query="?last_event_id=" + got[1]["id"])
    assert q.next(timeout=10)["id"] == got[2]["id"]


def test_ops_stream_sees_the_city(edge, core_api, streams):
    tok = service_token(core_api, "ops")
    ops = streams(edge.base_url, token=tok)
    assert ops.status == 200
    u = new_user(edge)
    order = _order(edge, u, _spot())
    ops.wait(_status(order["id"], "searching"), what="someone's order on the city stream")
    _ok(edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf))


def test_customer_does_not_see_other_customers(edge, streams):
    u, v = new_user(edge), new_user(edge)
    s = streams(edge.base_url, token=u.token)
    mine = _order(edge, u, _spot())
    theirs = _order(edge, v, _spot())
    s.wait(_status(mine["id"], "searching"), what="own order")
    _ok(edge.post(f"/orders/{theirs['id']}/cancel", json={}, token=v.token, csrf=v.csrf))
    _ok(edge.post(f"/orders/{mine['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
    seen = []
    while not seen or seen[-1] != (mine["id"], "cancelled"):
        ev = s.next(timeout=10)
        assert ev is not None, seen
        seen.append((ev["data"]["order_id"], ev["data"]["status"]))
    assert {oid for oid, _ in seen} == {mine["id"]}, seen
    assert s.next(timeout=1.0) is None


@pytest.mark.disruptive
def test_restart_of_the_serving_service_ends_streams_and_resume_loses_nothing(edge, stack,
                                                                              streams):
    """user-service gets SIGTERM with a stream open: the stream ends at once (the drain does not
    wait for it), and a reconnect with Last-Event-ID to the restarted service gets what was
    published meanwhile."""
    u = new_user(edge)
    s = streams(edge.base_url, token=u.token, timeout=20)
    order = _order(edge, u, _spot())
    last = s.wait(_status(order["id"], "searching"), what="searching")
    t0 = time.monotonic()
    stack.restart("user")
    # The old stream has ended (the server closed it at the start of its drain).
    assert s.next(timeout=5) is None and s.ended
    assert time.monotonic() - t0 < 15
    # Published while no stream was open for this customer.
    _ok(edge.post(f"/orders/{order['id']}/cancel", json={}, token=u.token, csrf=u.csrf))
    r = streams(edge.base_url, token=u.token, last_event_id=last["id"])
    assert r.status == 200, r.body
    ev = r.next(timeout=10)
    assert ev is not None and ev["data"]["status"] == "cancelled", ev
