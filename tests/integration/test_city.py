"""A tiny city (tools/sim, through scripts/sim.sh) against the real stack: the pool is seeded
offline, a few drivers and customers run the whole order flow through the edge for seconds,
and the audit of the services' state must be clean. Then the audit must also catch a planted
inconsistency, so that a clean audit means something."""

import json
import os
import subprocess

import pytest

from antar_client import stack_secrets
from conftest import REPO, redis_cli, run_dir

SIM = os.path.join(REPO, "scripts", "sim.sh")


def sim(*args, timeout=240):
    return subprocess.run([SIM, *map(str, args)], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    p = sim("--drivers", 12, "--customers", 24, "--orders-per-s", 1.5, "--duration", 15,
            "--warmup", 4, "--settle", 30, "--speed", 300, "--patience-s", 20, "--seed", 5,
            "--poll-s", 1, "--customer-poll-s", 1, "--follow-hints", 0.5, "--out", out)
    with open(out / "report.json") as f:
        report = json.load(f)
    return p, report, out


def test_tiny_city_runs_the_whole_flow_and_the_audit_is_clean(city):
    p, r, _ = city
    assert p.returncode == 0, f"antar-sim exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}"
    audit = r["audit"]
    assert audit["violations"] == [], audit["violations"]
    assert audit["checked"]["orders"] >= r["flow"]["orders_acked"] > 0
    assert r["errors"] == 0, [e for e in r["endpoints"] if e["errors"]]
    assert r["flow"]["completed"] > 0, r["flow"]
    assert r["flow"]["offers_accepted"] > 0, r["flow"]
    eps = {e["endpoint"]: e for e in r["endpoints"]}
    for name in ("PUT /drivers/me/location", "GET /offers", "POST /fares/estimate",
                 "POST /orders", "GET /orders/{id}", "POST /offers/{id}/accept",
                 "POST /trips/{id}/pickup", "POST /trips/{id}/complete"):
        assert eps[name]["count"] > 0, f"{name} never called: {sorted(eps)}"
        assert eps[name]["p99"] > 0
    # 12 drivers pinging every 4 s over ~15 s of measurement.
    assert eps["PUT /drivers/me/location"]["count"] >= 12 * 2
    assert r["times"]["order_to_first_offer_ms"]["count"] > 0
    assert 0 < r["times"]["order_to_first_offer_ms"]["p50"] < 10000
    # Half the drivers ask where to wait when free, and core (its models on, or their counter
    # rule without models) answers with a cell: they go there or park.
    assert eps["GET /drivers/me/waiting-hint"]["count"] > 0, sorted(eps)
    assert r["flow"]["hints_followed"] + r["flow"]["hints_stay"] > 0, r["flow"]
    names = {p["name"] for p in r["processes"]}
    assert {"user", "driver", "core", "antar-sim"} <= names, names
    assert "audit: 0 violation(s)" in p.stdout


def test_tiny_city_writes_its_history(city):
    _, r, out = city
    events = [json.loads(line) for line in open(out / "events.jsonl")]
    kinds = {e["ev"] for e in events}
    assert {"ping", "offer", "trip", "order"} <= kinds, kinds
    trips = [e for e in events if e["ev"] == "trip"]
    assert all(t["trip_real_ms"] > 0 and t["grid_m"] >= t["haversine_m"] - 1 for t in trips)
    # Legs that ended after the wind-down began are marked as cut, never the others.
    for t in trips:
        assert t.get("pickup_cut", False) in (True, False) and t.get("trip_cut", False) in (True, False)
        assert not t.get("pickup_cut") or t.get("trip_cut"), "a cut pickup leaves its trip cut too"
    acked = [line.split("\t") for line in open(out / "acked.tsv").read().splitlines()]
    assert len(acked) == r["flow"]["orders_acked"]
    assert len({(a[1], a[2]) for a in acked}) == len(acked), "one Idempotency-Key per order"


def _db_env(service):
    """The environment a service reads its database from, for a tool run beside the stack."""
    off = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)
    return dict(os.environ, ANTAR_DB_HOST="127.0.0.1", ANTAR_DB_PORT=str(3307 + off),
                ANTAR_DB_SOCKET="", ANTAR_DB_USER=f"antar_{service}",
                ANTAR_DB_NAME=f"antar_{service}",
                ANTAR_DB_PASSWORD=stack_secrets().get(f"DB_PASSWORD_{service.upper()}", ""))


def test_antar_train_learns_from_what_the_services_recorded(city, tmp_path):
    """docs/ai.md: antar-train builds its set from MariaDB — driver-service's completed trips
    (accepted → picked up → completed, from where core saw the driver at offer time) and offers
    (outcome, response time) — mapped to city time by the run's clock, and trains on it."""
    _, r, out = city
    events = [json.loads(line) for line in open(out / "events.jsonl")]
    clock = next(e for e in events if e["ev"] == "clock")
    (tmp_path / "clock.json").write_text(json.dumps(clock))
    train = os.path.join(os.environ.get("ANTAR_BIN_DIR", os.path.join(REPO, "build", "bin")),
                         "antar-train")
    models = tmp_path / "models"
    p = subprocess.run([train, "--db", "--clock", str(tmp_path / "clock.json"), "--out",
                        str(models), "--min-rows", "5", "--rounds", "10"],
                       env=_db_env("driver"), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stderr.split("from the database: ", 1)[1].splitlines()[0])
    assert got["database"] == "antar_driver"
    assert got["trips"] >= 1 and got["offers"] >= got["trips"], got
    assert got["trips"] <= r["flow"]["completed"] + 2, (got, r["flow"])
    hist = [json.loads(line) for line in open(models / "history-db.jsonl")]
    trips = [e for e in hist if e["ev"] == "trip"]
    offers = [e for e in hist if e["ev"] == "offer"]
    # core sends the driver's position with each offer (a driver it no longer sees, none).
    assert sum("from" in t for t in trips) >= max(1, 0.9 * len(trips)), trips
    assert {o["outcome"] for o in offers} <= {"accepted", "lost", "rejected", "expired"}
    assert all(o["response_ms"] >= 0 for o in offers)
    # The database's durations, through the clock, are the city's own (the simulator's events).
    sim_trips = [e for e in events if e["ev"] == "trip"]
    mean = lambda v: sum(v) / len(v)
    db_mean = mean([t["trip_sim_s"] for t in trips])
    sim_mean = mean([t["trip_sim_s"] for t in sim_trips])
    assert 0.6 * sim_mean < db_mean < 1.6 * sim_mean, (db_mean, sim_mean)
    for name in ("eta", "accept", "demand"):
        card = json.load(open(models / f"{name}.meta.json"))
        assert card["rows_train"] > 0, card
    # A database of neither service's tables is refused, and says so.
    p = subprocess.run([train, "--db", "--out", str(tmp_path / "none")], env=_db_env("core"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "neither" in p.stderr, p.stderr


def test_the_pool_is_reused_and_its_tokens_rotated(city):
    pool = os.path.join(run_dir(), "sim", "pool.tsv")
    before = open(pool).read().splitlines()
    assert len([x for x in before if x.startswith("driver\t")]) >= 12
    assert oct(os.stat(pool).st_mode & 0o777) == "0o600"
    p = sim("--drivers", 2, "--customers", 2, "--orders-per-s", 0, "--duration", 2,
            "--warmup", 1, "--settle", 2, "--no-audit", "--quiet",
            "--out", os.path.join(run_dir(), "sim", "rotate"))
    assert p.returncode == 0, p.stderr
    after = open(pool).read().splitlines()
    # The accounts the short run used have new refresh tokens; the others are unchanged.
    drivers_before = [x for x in before if x.startswith("driver\t")]
    drivers_after = [x for x in after if x.startswith("driver\t")]
    assert [x.split("\t")[:3] for x in drivers_after] == [x.split("\t")[:3] for x in drivers_before]
    assert drivers_after[0] != drivers_before[0] and drivers_after[1] != drivers_before[1]
    assert drivers_after[2:] == drivers_before[2:]
    assert "seeding" not in p.stderr and "pool ready" not in p.stderr, "nothing to seed again"


def test_the_audit_catches_a_planted_inconsistency(city):
    _, r, _ = city
    pool = open(os.path.join(run_dir(), "sim", "pool.tsv")).read().splitlines()
    driver_id = pool[0].split("\t")[1]
    key = f"driver:{driver_id}"
    saved = redis_cli("HGETALL", key).split()
    # Core believes the driver is busy with an order that does not exist.
    redis_cli("HSET", key, "status", "busy", "order_id", "987654321")
    try:
        p = sim("--audit", "--settle", 1)
        assert p.returncode == 1, p.stdout[-2000:]
        v = json.loads(p.stdout)["violations"]
        assert any(x["kind"] == "busy_without_active_order" and f"driver {driver_id} " in x["detail"]
                   for x in v), v
    finally:
        redis_cli("DEL", key)
        if saved:
            redis_cli("HSET", key, *saved)
    p = sim("--audit", "--settle", 5)
    assert p.returncode == 0, p.stdout[-2000:]
    assert json.loads(p.stdout)["violations"] == []


def test_bad_options_are_refused():
    p = sim("--drivers", "many")
    assert p.returncode == 2 and "--drivers must be a whole number" in p.stderr
    p = sim("--drivers", 3, "--speed", 0)
    assert p.returncode == 2 and "--speed must be a number from 1 to 3600" in p.stderr
    p = sim("--drivers", 3, "--bogus")
    assert p.returncode == 2
