"""Fares (core-service): POST /fares/estimate — shape, the fare model, the surge from demand
against supply, every rejection — and the quotes user-service honours on POST /orders only
for the same user, trip and vehicle before they expire.

Every test prices trips around its own random point far from Jakarta (where the other tests
put their drivers), so the demand counters and the driver index of one test never touch
another's."""

import base64
import hashlib
import hmac
import math
import random
import struct
import time
from datetime import datetime, timezone

import pytest

from antar_client import new_driver, new_user, service_token, stack_secrets

FARE_KEYS = {"quote_id", "vehicle_type", "distance_m", "duration_s", "price", "currency",
             "surge_multiplier", "expires_at"}
MONAS = (-6.1754, 106.8272)
BLOK_M = (-6.2443, 106.7982)


# ---- helpers ------------------------------------------------------------------------------

def fresh_point():
    """A random point in Kalimantan: one demand cell and driver neighbourhood per test."""
    return (round(random.uniform(-3.0, -0.5), 5), round(random.uniform(112.0, 116.0), 5))


def trip(pickup=None, d_lat=0.03, d_lng=0.02, vehicle_type="motorcycle"):
    p = pickup or fresh_point()
    return {"pickup_lat": p[0], "pickup_lng": p[1], "dropoff_lat": round(p[0] + d_lat, 6),
            "dropoff_lng": round(p[1] + d_lng, 6), "vehicle_type": vehicle_type}


def estimate(api, who, body, **kw):
    return api.post("/fares/estimate", json=body, token=who.token, csrf=who.csrf, **kw)


def estimated(api, who, body):
    r = estimate(api, who, body)
    assert r.status == 200, r
    return r.result


def haversine_m(lat1, lng1, lat2, lng2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def place_order(api, who, body, quote_id=None):
    o = dict(body, pickup_address="Jl. Tes 1", dropoff_address="Jl. Tes 2")
    if quote_id is not None:
        o["quote_id"] = quote_id
    r = api.post("/orders", json=o, token=who.token, csrf=who.csrf)
    assert r.status == 201, r
    return r.result


def quote_key():
    """core's quote key: BLAKE2b-256 keyed with ANTAR_CSRF_KEY over the quote context (fares.c).
    Fails the calling test when this run has no CSRF key available to the tests (a tampering
    check that skipped would prove nothing)."""
    hexkey = stack_secrets().get("CSRF_KEY")
    assert hexkey, "no ANTAR_CSRF_KEY available to the tests (the stack's secrets.env)"
    return hashlib.blake2b(b"antar/core/quote-id/v1", key=bytes.fromhex(hexkey),
                           digest_size=32).digest()


def grid(deg):
    """A coordinate on the quote's 1e-7 degree grid, rounded like C's llround."""
    return int(math.copysign(math.floor(abs(deg) * 1e7 + 0.5), deg))


VEHICLES = {"motorcycle": 0, "car": 1}


def forge_quote(user_id, body, fare, expires_s):
    """A quote_id signed the way core signs one: base64url(payload || HMAC-SHA512-256)."""
    payload = struct.pack(">III", expires_s, fare["price"], fare["distance_m"])
    payload += fare["duration_s"].to_bytes(3, "big") + bytes([round(fare["surge_multiplier"] * 10)])
    msg = payload + struct.pack(">qB", user_id, VEHICLES[body["vehicle_type"]])
    msg += b"".join(struct.pack(">q", grid(body[k])) for k in
                    ("pickup_lat", "pickup_lng", "dropoff_lat", "dropoff_lng"))
    tag = hmac.new(quote_key(), msg, hashlib.sha512).digest()[:32]
    return base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


_CROWD = []
_NEXT = [0]


def crowd(api, n):
    """n distinct customers from a pool of 13 made once and shared round-robin by the tests
    (each test prices its own cell). Demand is the number of distinct customers in a cell, so
    moving the surge takes several; and core counts one customer in at most
    ANTAR_DEMAND_CELLS_PER_MIN (5) cells a minute, so no member may serve every test."""
    while len(_CROWD) < max(n, 13):
        _CROWD.append(new_user(api))
    out = [_CROWD[(_NEXT[0] + i) % len(_CROWD)] for i in range(n)]
    _NEXT[0] = (_NEXT[0] + n) % len(_CROWD)
    return out


def pump_demand(api, who, body, n):
    """n more estimates from the same pickup cell by n other customers: demand rises, so does a
    fresh surge."""
    last = None
    for other in crowd(api, n):
        assert other.id != who.id
        last = estimated(api, other, body)
    return last


@pytest.fixture(scope="module")
def rider(edge):
    return new_user(edge)


# ---- the estimate -------------------------------------------------------------------------

@pytest.mark.parametrize("vt", ["motorcycle", "car"])
def test_estimate_shape(edge, rider, vt):
    body = trip(vehicle_type=vt)
    before = datetime.now(timezone.utc)
    f = estimated(edge, rider, body)
    assert set(f) >= FARE_KEYS, sorted(FARE_KEYS - set(f))
    assert isinstance(f["quote_id"], str) and 1 <= len(f["quote_id"]) <= 64
    assert f["vehicle_type"] == vt
    assert f["currency"] == "IDR"
    assert f["surge_multiplier"] == 1.0  # a fresh cell: one request, no drivers
    for k in ("distance_m", "duration_s", "price"):
        assert isinstance(f[k], int) and f[k] > 0, (k, f)
    assert f["price"] % 500 == 0, f
    road = 1.3 * haversine_m(body["pickup_lat"], body["pickup_lng"], body["dropoff_lat"],
                             body["dropoff_lng"])
    assert abs(f["distance_m"] - road) <= 2, (f["distance_m"], road)
    speed = 25 if vt == "motorcycle" else 20  # km/h in Jakarta traffic
    assert abs(f["duration_s"] - f["distance_m"] / (speed / 3.6)) <= 1, f
    ttl = (parse_time(f["expires_at"]) - before).total_seconds()
    assert 290 <= ttl <= 310, f["expires_at"]


def test_estimate_monas_to_blok_m(core_api, rider):
    """The fare model on a known Jakarta trip (≈ 8.3 km straight, 10.8 km by road)."""
    body = {"pickup_lat": MONAS[0], "pickup_lng": MONAS[1], "dropoff_lat": BLOK_M[0],
            "dropoff_lng": BLOK_M[1], "vehicle_type": "motorcycle"}
    f = estimated(core_api, rider, body)
    assert 10500 <= f["distance_m"] <= 11100, f
    if f["surge_multiplier"] == 1.0:  # other tests may create demand here
        raw = 4000 + 2500 * f["distance_m"] / 1000 + 300 * f["duration_s"] / 60
        assert f["price"] == math.ceil(raw / 500) * 500, f


def test_estimate_form_encoded(edge, rider):
    body = {k: str(v) for k, v in trip(vehicle_type="car").items()}
    r = edge.post("/fares/estimate", form=body, token=rider.token, csrf=rider.csrf)
    assert r.status == 200, r
    assert r.result["vehicle_type"] == "car"


def test_estimate_minimum_fare(edge, rider):
    p = fresh_point()
    moto = estimated(edge, rider, trip(p, d_lat=0.0005, d_lng=0))
    car = estimated(edge, rider, trip(fresh_point(), d_lat=0.0005, d_lng=0, vehicle_type="car"))
    assert moto["price"] == 10000 and moto["surge_multiplier"] == 1.0, moto
    assert car["price"] == 20000 and car["surge_multiplier"] == 1.0, car


def test_car_costs_more_than_motorcycle(edge, rider):
    p = fresh_point()
    moto = estimated(edge, rider, trip(p, d_lat=0.05, d_lng=0.05))
    car = estimated(edge, rider, trip(p, d_lat=0.05, d_lng=0.05, vehicle_type="car"))
    assert car["distance_m"] == moto["distance_m"]
    assert car["duration_s"] > moto["duration_s"]
    assert car["price"] > moto["price"]


def test_surge_follows_demand_in_steps_and_is_capped(edge, rider):
    """surge = clamp(1 + 0.1 × floor(demand / max(supply, 1) − 1), 1.0, 2.0): with no driver
    around, the k-th customer estimating in a cell sees demand k."""
    body = trip()
    seen = [estimated(edge, who, body) for who in crowd(edge, 13)]
    for k, f in enumerate(seen, start=1):
        want = min(2.0, round(1 + 0.1 * (k - 1), 1))
        assert f["surge_multiplier"] == pytest.approx(want), (k, f)
    base = seen[0]["price"]
    assert seen[5]["price"] == math.ceil(base * 1.5 / 500) * 500 or \
        seen[5]["price"] >= base, seen[5]
    assert seen[-1]["price"] >= 2 * base - 500 and seen[-1]["price"] > seen[0]["price"]


def test_online_drivers_keep_the_surge_down(edge, rider):
    """Supply counts: with two free drivers nearby, 2 requests are no surge, 4 are 1.1."""
    p = fresh_point()
    for dlat in (0.002, -0.003):
        d = new_driver(edge)
        # driver-service's own answers are checked by its tests; only the status matters here.
        assert edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                        csrf=d.csrf, envelope=False).status == 200
        r = edge.put("/drivers/me/location", json={"lat": p[0] + dlat, "lng": p[1]},
                     token=d.token, csrf=d.csrf, envelope=False)
        assert r.status == 200, r
    body = trip(p)
    who = crowd(edge, 5)
    surges = [estimated(edge, c, body)["surge_multiplier"] for c in who[:4]]
    assert surges == [1.0, 1.0, 1.0, 1.1], surges
    # The same cell for cars has the same demand but no car supply.
    car = estimated(edge, who[4], dict(body, vehicle_type="car"))
    assert car["surge_multiplier"] == pytest.approx(1.4), car


# ---- rejections ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["pickup_lat", "pickup_lng", "dropoff_lat", "dropoff_lng",
                                   "vehicle_type"])
def test_estimate_missing_field(edge, rider, field):
    body = trip()
    del body[field]
    r = estimate(edge, rider, body)
    assert r.status == 422, r
    assert r.error["code"] == "missing_field" and r.error["field"] == field, r


@pytest.mark.parametrize("field,value", [
    ("pickup_lat", 90.5), ("pickup_lat", -91), ("pickup_lng", 180.01), ("pickup_lng", -181),
    ("dropoff_lat", 100), ("dropoff_lng", -200), ("pickup_lat", "-6.2"), ("dropoff_lng", None),
    ("pickup_lng", True), ("pickup_lat", [1]), ("vehicle_type", "bajaj"), ("vehicle_type", ""),
    ("vehicle_type", 1), ("vehicle_type", "Car"),
])
def test_estimate_invalid_field(edge, rider, field, value):
    body = trip()
    body[field] = value
    r = estimate(edge, rider, body)
    assert r.status == 422, r
    assert r.error["code"] == "invalid_field" and r.error["field"] == field, r


def test_estimate_invalid_form_number(edge, rider):
    body = {k: str(v) for k, v in trip().items()}
    body["dropoff_lat"] = "-6.2x"
    r = edge.post("/fares/estimate", form=body, token=rider.token, csrf=rider.csrf)
    assert r.status == 422, r
    assert r.error["field"] == "dropoff_lat", r


def test_estimate_same_pickup_and_dropoff(edge, rider):
    body = trip(d_lat=0, d_lng=0)
    r = estimate(edge, rider, body)
    assert r.status == 422, r
    assert r.error["code"] == "invalid_field" and r.error["field"] == "dropoff_lat", r


def test_estimate_unknown_field(edge, rider):
    r = estimate(edge, rider, dict(trip(), surge_multiplier=0.5))
    assert r.status == 422, r
    assert r.error["code"] == "unknown_field" and r.error["field"] == "surge_multiplier", r


def test_estimate_malformed_and_wrong_media_type(edge, rider):
    h = {"Content-Type": "application/json"}
    r = edge.post("/fares/estimate", data='{"pickup_lat": -6.2,', headers=h, token=rider.token,
                  csrf=rider.csrf)
    assert r.status == 400 and r.error["code"] == "malformed_json", r
    r = edge.post("/fares/estimate", data="pickup_lat=-6.2", headers={"Content-Type": "text/plain"},
                  token=rider.token, csrf=rider.csrf)
    assert r.status == 415, r


def test_estimate_needs_a_user_token_and_csrf(edge, core_api, rider):
    body = trip()
    r = edge.post("/fares/estimate", json=body)
    assert r.status == 401, r
    r = edge.post("/fares/estimate", json=body, token="not.a.jwt")
    assert r.status == 401, r
    r = edge.post("/fares/estimate", json=body, token=rider.token)
    assert r.status == 403 and r.error["code"] == "csrf_token_invalid", r
    d = new_driver(edge)
    r = edge.post("/fares/estimate", json=body, token=d.token, csrf=d.csrf)
    assert r.status == 403, r
    r = core_api.post("/fares/estimate", json=body, token=service_token(core_api, "user-service"))
    assert r.status == 403, r


def test_internal_quote_refuses_user_tokens(edge, core_api, rider):
    body = dict(trip(), user_id=rider.id)
    assert core_api.post("/internal/fares/quote", json=body).status == 401
    r = core_api.post("/internal/fares/quote", json=body, token=rider.token, csrf=rider.csrf)
    assert r.status == 403, r
    # And the edge never routes /internal.
    assert edge.post("/internal/fares/quote", json=body).status == 404


def test_internal_quote_validation(core_api):
    tok = service_token(core_api, "user-service")
    good = dict(trip(), user_id=1)
    for field, value, code in [("user_id", None, "missing_field"), ("user_id", 0, "invalid_field"),
                               ("pickup_lat", 95, "invalid_field"),
                               ("vehicle_type", "truck", "invalid_field"),
                               ("quote_id", "x" * 200, "invalid_field")]:
        body = dict(good)
        if value is None:
            del body[field]
        else:
            body[field] = value
        r = core_api.post("/internal/fares/quote", json=body, token=tok)
        assert r.status == 422, (field, r)
        assert r.error["code"] == code and r.error["field"] == field, r
    r = core_api.post("/internal/fares/quote", json=dict(good, dropoff_lat=good["pickup_lat"],
                                                         dropoff_lng=good["pickup_lng"]), token=tok)
    assert r.status == 422 and r.error["field"] == "dropoff_lat", r


# ---- quotes honoured by POST /orders --------------------------------------------------------

def test_quote_is_honoured_by_the_order(edge):
    """The price the customer saw holds even after demand pushed the live surge up."""
    who = new_user(edge)
    body = trip()
    q = estimated(edge, who, body)
    assert q["surge_multiplier"] == 1.0
    assert pump_demand(edge, who, body, 4)["surge_multiplier"] > 1.0
    o = place_order(edge, who, body, q["quote_id"])
    assert o["price"] == q["price"], (o, q)
    assert o["distance_m"] == q["distance_m"] and o["duration_s"] == q["duration_s"]
    assert o["surge_multiplier"] == 1.0


def test_quote_for_another_trip_is_not_honoured(edge):
    who = new_user(edge)
    body = trip()
    q = estimated(edge, who, body)
    pump_demand(edge, who, body, 4)
    moved = dict(body, dropoff_lat=round(body["dropoff_lat"] + 0.05, 6))
    o = place_order(edge, who, moved, q["quote_id"])
    road = 1.3 * haversine_m(moved["pickup_lat"], moved["pickup_lng"], moved["dropoff_lat"],
                             moved["dropoff_lng"])
    assert abs(o["distance_m"] - road) <= 2, (o, road)
    assert o["price"] > q["price"], (o, q)


def test_quote_for_another_vehicle_is_not_honoured(edge):
    who = new_user(edge)
    body = trip(d_lat=0.0005, d_lng=0)  # a minimum-fare trip: 10000 by motorcycle
    q = estimated(edge, who, body)
    o = place_order(edge, who, dict(body, vehicle_type="car"), q["quote_id"])
    assert o["vehicle_type"] == "car"
    assert o["price"] >= 20000 and o["price"] != q["price"], (o, q)


def test_someone_elses_quote_is_not_honoured(edge):
    owner, thief = new_user(edge), new_user(edge)
    body = trip()
    q = estimated(edge, owner, body)
    pump_demand(edge, owner, body, 4)
    o = place_order(edge, thief, body, q["quote_id"])
    assert o["surge_multiplier"] > 1.0 and o["price"] > q["price"], (o, q)


def test_expired_or_unknown_quote_is_not_honoured(edge):
    who = new_user(edge)
    body = trip()
    q = estimated(edge, who, body)
    pump_demand(edge, who, body, 4)
    # The quote as its TTL would leave it (waiting ANTAR_QUOTE_TTL_S is too long): the same
    # genuine quote, signed with an expiry already past.
    expires_s = int(parse_time(q["expires_at"]).timestamp())
    assert forge_quote(who.id, body, q, expires_s) == q["quote_id"]  # signed like core signs
    expired = forge_quote(who.id, body, q, int(time.time()) - 1)
    o = place_order(edge, who, body, expired)
    assert o["price"] > q["price"], (o, q)
    # A made-up or tampered quote id is just ignored: a fresh price, not an error.
    other = new_user(edge)
    tampered = q["quote_id"][:-1] + ("A" if q["quote_id"][-1] != "A" else "B")
    o2 = place_order(edge, other, body, tampered)
    assert o2["price"] > q["price"], o2


def test_internal_quote_answers(core_api, edge):
    """What user-service sees: quoted=true with the stored fare, else a fresh one."""
    tok = service_token(core_api, "user-service")
    who = new_user(edge)
    body = trip()
    q = estimated(edge, who, body)
    r = core_api.post("/internal/fares/quote", json=dict(body, user_id=who.id,
                                                          quote_id=q["quote_id"]), token=tok)
    assert r.status == 200, r
    assert r.result["quoted"] is True and r.result["quote_id"] == q["quote_id"]
    assert r.result["price"] == q["price"] and r.result["expires_at"] == q["expires_at"]
    r = core_api.post("/internal/fares/quote", json=dict(body, user_id=who.id + 1,
                                                          quote_id=q["quote_id"]), token=tok)
    assert r.status == 200 and r.result["quoted"] is False and r.result["quote_id"] is None, r
    r = core_api.post("/internal/fares/quote", json=dict(body, user_id=who.id), token=tok)
    assert r.status == 200 and r.result["quoted"] is False, r
    # The owner's own quote tampered with — a payload byte (its price), its tag — or no quote
    # at all: a fresh price, never an error.
    raw = bytearray(base64.urlsafe_b64decode(q["quote_id"]))
    bad_ids = ["not-a-quote", q["quote_id"][:-2], q["quote_id"] + "A"]
    for i in (7, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        bad_ids.append(base64.urlsafe_b64encode(bytes(bad)).decode().rstrip("="))
    for bad_id in bad_ids:
        r = core_api.post("/internal/fares/quote", json=dict(body, user_id=who.id,
                                                              quote_id=bad_id), token=tok)
        assert r.status == 200 and r.result["quoted"] is False, (bad_id, r)
        assert r.result["quote_id"] is None, r
