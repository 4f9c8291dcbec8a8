"""core's models (docs/ai.md) on the real stack: antar-train on a small history, the model
loaded without a restart (hot swap), the fallback to today's rules when the model is broken or
missing, and ANTAR_AI=off. Short: one tiny training run (~1 s).

The models live in <run dir>/models (core's default ANTAR_AI_DIR), which these tests empty
again at the end, so the other tests meet today's rules as before."""

import json
import math
import os
import random
import re
import shutil
import subprocess

import pytest
import requests

from conftest import CORE_URL, new_driver, new_user, run_dir, wait_for

MODELS = ["eta", "accept", "demand"]


def models_dir():
    return os.path.join(run_dir(), "models")


def train_bin():
    return os.path.join(os.environ.get("ANTAR_BIN_DIR", os.path.join(run_dir(), "..", "build",
                                                                     "bin")), "antar-train")


def metrics():
    return requests.get(CORE_URL + "/metrics", timeout=5).text


def loaded(model):
    """1 / 0 from antar_ai_model_loaded, None when the family is absent."""
    m = re.search(r'antar_ai_model_loaded\{model="%s",version="[^"]*"\} (\d)' % model, metrics())
    return int(m.group(1)) if m else None


def manhattan_m(a, b):
    lat = abs(a[0] - b[0]) * 111195
    lng = abs(a[1] - b[1]) * 111195 * math.cos(math.radians(a[0]))
    return lat + lng


def write_day(path, n, t0_wall_ms, rnd):
    """A synthetic day: every leg runs at 36 km/h (the tariff says 25), choosy drivers say no."""
    with open(path, "w") as f:
        f.write(json.dumps({"ev": "clock", "t0_wall_ms": t0_wall_ms, "start_hour": 0,
                            "weekday": 0, "speed": 60}) + "\n")
        for i in range(n):
            s = i * 90.0
            pts = [(-6.3 + rnd.random() * 0.2, 106.7 + rnd.random() * 0.25) for _ in range(3)]
            leg1 = manhattan_m(pts[0], pts[1]) / 10.0
            leg2 = manhattan_m(pts[1], pts[2]) / 10.0
            f.write(json.dumps({"ev": "trip", "vehicle_type": "motorcycle", "from": pts[0],
                                "pickup": pts[1], "dropoff": pts[2], "accept_city_s": s,
                                "pickup_city_s": s + leg1, "pickup_sim_s": leg1,
                                "trip_sim_s": leg2}) + "\n")
            yes = rnd.random() < (0.9 if i % 2 else 0.2)
            f.write(json.dumps({"ev": "offer", "driver": i % 10, "driver_at": pts[0],
                                "pickup": pts[1], "dropoff": pts[2], "price": 20000,
                                "seen_city_s": s, "car": False,
                                "outcome": "accepted" if yes else "rejected",
                                "response_ms": 1500}) + "\n")
            f.write(json.dumps({"ev": "order", "pickup": pts[1], "placed_city_s": s}) + "\n")


def write_days(tmp_path, n, seed):
    """Two synthetic days of n trips each; their paths."""
    rnd = random.Random(seed)
    days = []
    for k in range(2):
        p = tmp_path / f"day{k}.jsonl"
        write_day(str(p), n, 1.7e12 + k * 86400e3, rnd)
        days.append(str(p))
    return days


def train(tmp_path):
    days = write_days(tmp_path, 500, 7)
    out = tmp_path / "models"
    r = subprocess.run([train_bin(), "--out", str(out), "--rounds", "40", *days],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cards = json.loads(r.stdout)
    assert set(cards) == set(MODELS), cards.keys()
    return out, cards


def test_legs_cut_by_the_wind_down_are_left_out(tmp_path):
    """A leg the simulator cut short while winding a run down (pickup_cut, trip_cut) is not a
    drive: antar-train counts and learns the same ETA rows with or without such trips."""
    days = write_days(tmp_path, 300, 11)
    out = []
    for name, extra in (("clean", []), ("cut", [{"pickup_cut": True}, {"trip_cut": True},
                                                  {"pickup_cut": True, "trip_cut": True}])):
        cut_days = []
        for k, d in enumerate(days):
            path = tmp_path / f"{name}{k}.jsonl"
            with open(d) as src, open(path, "w") as f:
                f.write(src.read())
                for i, flags in enumerate(extra * 20):
                    # 5 km legs "driven" in 300 city s: 60 km/h, clean enough to pass the
                    # cleaning, wrong by a factor of two
                    s = 30000.0 + i * 90
                    f.write(json.dumps({"ev": "trip", "vehicle_type": "motorcycle",
                                        "from": [-6.20, 106.80], "pickup": [-6.23, 106.82],
                                        "dropoff": [-6.26, 106.84], "accept_city_s": s,
                                        "pickup_city_s": s + 300, "pickup_sim_s": 300,
                                        "trip_sim_s": 300, **flags}) + "\n")
            cut_days.append(str(path))
        r = subprocess.run([train_bin(), "--out", str(tmp_path / name), "--rounds", "20",
                            *cut_days], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        eta = json.loads(r.stdout)["eta"]
        out.append(eta["rows_train"] + eta["rows_validation"] + eta["rows_test"])
    # 20 trips with only the pickup cut add their trip leg, 20 with only the trip cut add
    # their pickup leg, and the 20 cut twice add nothing: 40 more legs per day, never 120.
    assert out[1] == out[0] + 2 * 40, out


def install(src):
    """Copy the models into core's folder, each model before its card (what core watches)."""
    os.makedirs(models_dir(), exist_ok=True)
    for m in MODELS:
        shutil.copyfile(os.path.join(src, f"{m}.json"), os.path.join(models_dir(), f"{m}.json"))
    for m in MODELS:
        shutil.copyfile(os.path.join(src, f"{m}.meta.json"),
                        os.path.join(models_dir(), f"{m}.meta.json"))


def remove_models():
    shutil.rmtree(models_dir(), ignore_errors=True)
    wait_for(lambda: all(loaded(m) == 0 for m in MODELS), timeout=10,
             what="core back on its rules")


def rule_duration(body):
    # fare_model.c: haversine × 1.3 at 25 km/h for a motorcycle
    r, rad = 6371008.8, math.pi / 180
    dlat = (body["dropoff_lat"] - body["pickup_lat"]) * rad
    dlng = (body["dropoff_lng"] - body["pickup_lng"]) * rad
    a = (math.sin(dlat / 2) ** 2 + math.cos(body["pickup_lat"] * rad) *
         math.cos(body["dropoff_lat"] * rad) * math.sin(dlng / 2) ** 2)
    dist = round(2 * r * math.asin(math.sqrt(a)) * 1.3)
    return math.ceil(dist / (25 / 3.6))


TRIP = {"pickup_lat": -6.2001, "pickup_lng": 106.8002, "dropoff_lat": -6.2601,
        "dropoff_lng": 106.8502, "vehicle_type": "motorcycle"}


@pytest.fixture
def ai_rider(edge):
    return new_user(edge)


def estimate(edge, who):
    r = edge.post("/fares/estimate", json=TRIP, token=who.token, csrf=who.csrf)
    assert r.status == 200, r.body
    return r.result


def test_models_hot_swap_and_fall_back(tmp_path, edge, ai_rider):
    remove_models()
    f = estimate(edge, ai_rider)
    assert f["duration_s"] == rule_duration(TRIP), f
    assert "pickup_eta_s" in f, f
    assert 'antar_ai_enabled 1' in metrics()

    src, cards = train(tmp_path)
    for m in MODELS:
        assert cards[m]["features_version"] >= 1 and cards[m]["rows_train"] > 0, cards[m]
    assert cards["eta"]["validation"]["model_mape_pct"]["mean"] < \
        cards["eta"]["validation"]["rule_mape_pct"]["mean"], cards["eta"]["validation"]
    try:
        install(src)
        # Hot swap: no restart; core looks at the cards at most every 2 s.
        wait_for(lambda: all(loaded(m) == 1 for m in MODELS), timeout=10, what="models loaded")
        f = estimate(edge, ai_rider)
        rule = rule_duration(TRIP)
        # The history drove at 36 km/h, the tariff assumes 25: the learned ETA is shorter.
        assert f["duration_s"] < rule * 0.9, (f["duration_s"], rule)
        assert re.search(r'antar_ai_predictions_total\{model="eta",source="model"\} [1-9]',
                         metrics())

        # A broken model: the rule serves again, /metrics says so.
        with open(os.path.join(models_dir(), "eta.json"), "w") as fh:
            fh.write('{"learner": ')
        card = os.path.join(models_dir(), "eta.meta.json")
        st = os.stat(card)
        os.utime(card, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        wait_for(lambda: loaded("eta") == 0, timeout=10, what="eta model dropped")
        assert loaded("accept") == 1
        assert estimate(edge, ai_rider)["duration_s"] == rule
    finally:
        remove_models()


def test_switch_off_keeps_the_rules_with_models_present(tmp_path, edge, ai_rider, stack):
    src, _ = train(tmp_path)
    saved = os.environ.get("ANTAR_AI")
    try:
        install(src)
        wait_for(lambda: loaded("eta") == 1, timeout=10, what="models loaded")
        os.environ["ANTAR_AI"] = "off"
        stack.restart("core")
        assert 'antar_ai_enabled 0' in metrics()
        assert all(loaded(m) == 0 for m in MODELS), metrics()
        assert estimate(edge, ai_rider)["duration_s"] == rule_duration(TRIP)
        # "Where to wait" says plainly that there is no forecast, rather than guess.
        d = new_driver(edge)
        r = edge.put("/drivers/me/location", json={"lat": -7.3, "lng": 112.7}, token=d.token,
                     csrf=d.csrf)
        assert r.status == 200, r
        assert edge.put("/drivers/me/status", json={"status": "online"}, token=d.token,
                        csrf=d.csrf).status == 200
        h = edge.get("/drivers/me/waiting-hint", token=d.token)
        edge.put("/drivers/me/status", json={"status": "offline"}, token=d.token, csrf=d.csrf)
        assert h.status == 200, h
        assert h.result["source"] == "off" and h.result["cell"] is None, h.result
    finally:
        if saved is None:
            os.environ.pop("ANTAR_AI", None)
        else:
            os.environ["ANTAR_AI"] = saved
        stack.restart("core")
        remove_models()
