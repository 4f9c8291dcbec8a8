"""The location ping's fast path: driver-service buffers pings and sends them to core in batches
(POST /internal/drivers/positions); core moves only drivers it holds online, reports the ones it
has no state for, and driver-service re-sends those in full. Also: the answer's coordinates are
exactly as sent, and the batch route's rejections."""
import time

import pytest

from antar_client import new_driver, new_user, redis_cli, wait_for
from test_dispatch import _fake_id, fresh_point, user_service_token  # noqa: F401 (fixture)

MOVE_BOUND_S = 1.0  # DESIGN: dispatch sees a new position well under a second later


def _geopos(member):
    return redis_cli("GEOPOS", "geo:drivers:motorcycle", member)


def _ping(edge, d, lat, lng):
    r = edge.put("/drivers/me/location", json={"lat": lat, "lng": lng}, token=d.token, csrf=d.csrf)
    assert r.status == 200, r
    return r


def _near(pos, lat, lng):
    parts = [float(x) for x in pos.split()] if pos else []
    return len(parts) == 2 and abs(parts[0] - lng) < 1e-5 and abs(parts[1] - lat) < 1e-5


def test_the_answer_has_the_coordinates_as_sent(edge):
    d = new_driver(edge)
    r = edge.put("/drivers/me/location", json={"lat": -6.1754, "lng": 106.8272}, token=d.token,
                 csrf=d.csrf, envelope=False)
    assert r.status == 200, r
    assert '"lat":-6.1754,' in r.text and '"lng":106.8272,' in r.text, r.text
    r = edge.put("/drivers/me/location", form={"lat": "-6.2", "lng": "106.81"}, token=d.token,
                 csrf=d.csrf, envelope=False)
    assert '"lat":-6.2,' in r.text and '"lng":106.81,' in r.text, r.text


def test_a_ping_moves_an_online_driver_in_cores_index_within_a_bound(edge):
    d = new_driver(edge)
    p = fresh_point()
    assert edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                    csrf=d.csrf).status == 200
    _ping(edge, d, p[0], p[1])  # the first ping after going online is synchronous
    assert _near(_geopos(d.id), p[0], p[1])
    # Later pings are answered from memory and reach core with the next batch.
    for step in range(1, 4):
        q = (round(p[0] + 0.001 * step, 6), p[1])
        t0 = time.monotonic()
        _ping(edge, d, q[0], q[1])
        wait_for(lambda: _near(_geopos(d.id), q[0], q[1]), timeout=MOVE_BOUND_S, interval=0.02,
                 what=f"driver {d.id} at {q} in geo:drivers:motorcycle")
        assert time.monotonic() - t0 < MOVE_BOUND_S


def test_an_offline_driver_is_never_indexed_and_a_busy_one_stays_busy(edge, core_api,
                                                                      user_service_token):
    tok = user_service_token
    d = new_driver(edge)
    p = fresh_point()
    _ping(edge, d, p[0], p[1])
    _ping(edge, d, p[0] + 0.001, p[1])
    time.sleep(0.5)
    assert _geopos(d.id) == ""
    assert redis_cli("HGET", f"driver:{d.id}", "status") == "offline"
    # Through the batch route itself: offline is ignored, busy moves and stays busy.
    r = core_api.post("/internal/drivers/positions",
                      json={"positions": [{"driver_id": d.id, "lat": p[0], "lng": p[1]}]}, token=tok)
    assert r.status == 200 and r.result == {"applied": 0, "ignored": 1, "unknown": []}, r
    fake = _fake_id()
    r = core_api.put(f"/internal/drivers/{fake}/presence",
                     json={"status": "online", "vehicle_type": "motorcycle", "lat": p[0],
                           "lng": p[1]}, token=tok)
    assert r.status == 200, r
    r = core_api.put(f"/internal/drivers/{fake}/availability",
                     json={"available": False, "order_id": 5}, token=tok)
    assert r.status == 200, r
    r = core_api.post("/internal/drivers/positions",
                      json={"positions": [{"driver_id": fake, "lat": p[0] + 0.01, "lng": p[1]}]},
                      token=tok)
    assert r.status == 200 and r.result["applied"] == 1, r
    assert redis_cli("HGET", f"driver:{fake}", "status") == "busy"
    assert _near(_geopos(fake), p[0] + 0.01, p[1])


def test_unknown_drivers_are_reported_and_healed_from_the_row(edge, core_api, user_service_token):
    """What a Redis restart does to one driver: the state hash is gone. The next batch reports
    the driver unknown and driver-service re-sends status and vehicle type from its row."""
    d = new_driver(edge)
    p = fresh_point()
    assert edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                    csrf=d.csrf).status == 200
    _ping(edge, d, p[0], p[1])
    redis_cli("DEL", f"driver:{d.id}")
    redis_cli("ZREM", "geo:drivers:motorcycle", d.id)
    fake = _fake_id()
    r = core_api.post("/internal/drivers/positions",
                      json={"positions": [{"driver_id": fake, "lat": p[0], "lng": p[1]}]},
                      token=user_service_token)
    assert r.status == 200 and r.result == {"applied": 0, "ignored": 0, "unknown": [fake]}, r
    assert redis_cli("ZSCORE", "geo:drivers:motorcycle", fake) == ""
    q = (round(p[0] + 0.002, 6), p[1])
    _ping(edge, d, q[0], q[1])
    wait_for(lambda: redis_cli("HGET", f"driver:{d.id}", "status") == "available", timeout=2,
             what="driver state re-sent")
    wait_for(lambda: _near(_geopos(d.id), q[0], q[1]), timeout=2, what="driver re-indexed")
    assert redis_cli("HGET", f"driver:{d.id}", "vehicle_type") == "motorcycle"


def test_positions_route_rejections(edge, core_api, user_service_token):
    body = {"positions": [{"driver_id": 1, "lat": -6.2, "lng": 106.8}]}
    assert core_api.post("/internal/drivers/positions", json=body).status == 401
    who = new_user(edge)
    r = core_api.post("/internal/drivers/positions", json=body, token=who.token, csrf=who.csrf)
    assert r.status == 403, r
    tok = user_service_token
    for bad, field in [({}, "positions"),
                       ({"positions": []}, "positions"),
                       ({"positions": "x"}, "positions"),
                       ({"positions": [{"driver_id": 1, "lat": 91, "lng": 1}]},
                        "positions[0].lat"),
                       ({"positions": [{"driver_id": 1, "lat": 1, "lng": 1},
                                       {"driver_id": 2, "lat": 1, "lng": -181}]},
                        "positions[1].lng"),
                       ({"positions": [{"driver_id": 0, "lat": 1, "lng": 1}]},
                        "positions[0].driver_id"),
                       ({"positions": [{"driver_id": 1.5, "lat": 1, "lng": 1}]},
                        "positions[0].driver_id"),
                       ({"positions": [{"driver_id": 1, "lng": 1}]}, "positions[0].lat"),
                       ({"positions": [{"driver_id": 1, "lat": "nan", "lng": 1}]},
                        "positions[0].lat")]:
        r = core_api.post("/internal/drivers/positions", json=bad, token=tok)
        assert r.status == 422 and r.error["field"] == field, (bad, r)
    r = core_api.post("/internal/drivers/positions", form={"positions": "[{\"driver_id\": 1"},
                      token=tok)
    assert r.status == 422 and r.error["field"] == "positions", r
    fake = _fake_id()
    r = core_api.post("/internal/drivers/positions",
                      form={"positions": f'[{{"driver_id":{fake},"lat":-6.2,"lng":106.8}}]'},
                      token=tok)
    assert r.status == 200 and r.result["unknown"] == [fake], r
    too_many = {"positions": [{"driver_id": i + 1, "lat": 1, "lng": 1} for i in range(1001)]}
    r = core_api.post("/internal/drivers/positions", json=too_many, token=tok)
    assert r.status in (413, 422), r
