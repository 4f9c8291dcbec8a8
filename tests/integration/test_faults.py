"""The short form of `make faults`: a small city through the edge while user-, driver- and
core-service and Redis are each killed with SIGKILL once, and runit alone brings them back. Every
component must be ready within 5 s, no request may fail or take 2 s or more outside the fault
windows, and the audit after settling must be clean (scripts/faults.py does the counting; this
test checks its verdict and its report)."""

import json
import os
import subprocess

import pytest

from conftest import REPO, faults_module, run_dir


@pytest.mark.disruptive
@pytest.mark.slow
def test_city_survives_kill_9_of_every_service_and_redis():
    p = subprocess.run([os.path.join(REPO, "scripts", "faults.sh"), "--short"], cwd=REPO,
                       env=dict(os.environ), capture_output=True, text=True, timeout=900)
    print(p.stdout)
    print(p.stderr[-4000:])
    with open(os.path.join(run_dir(), "faults", "report.json")) as f:
        rep = json.load(f)
    faults = [w["fault"] for w in rep["windows"]]
    assert faults == ["kill:user", "kill:driver", "kill:core", "kill:redis"], faults
    for w in rep["windows"]:
        assert w.get("ready_ms") is not None and w["ready_ms"] <= 5000, w
        assert w.get("edge_routes_ms") is not None and w["edge_routes_ms"] <= 5000, w
        assert w.get("new_pid") and w["new_pid"] != w["old_pid"], w
    assert rep["outside"]["errors"] == {}, rep["outside"]
    assert rep["outside"]["slow"] == {}, rep["outside"]
    assert rep["audit"]["clean"], rep["audit"]
    assert p.returncode == 0 and rep["ok"], p.stdout


def test_fault_windows_place_each_issue(tmp_path):
    """faults.py's placement: a failed or slow request whose [send, end] overlaps a window is
    that window's; any other failure or slow request is outside; 404/409 are not errors."""
    faults = faults_module()
    windows = [{"start_ms": 1000.0, "end_ms": 2000.0}, {"start_ms": 5000.0, "end_ms": 5500.0}]
    rows = [
        (900, 1100, "GET /offers", 503, 200),       # overlaps window 0 from before
        (1500, 1600, "GET /offers", 0, 100),        # inside window 0, no answer
        (1990, 4500, "POST /orders", 201, 2510),    # slow, starts inside window 0
        (3000, 3100, "GET /orders/{id}", 503, 100),  # outside: an error
        (3000, 5100, "POST /orders", 200, 2100),    # slow, ends inside window 1
        (6000, 8500, "GET /trips", 200, 2500),      # outside: slow
        (6000, 6100, "POST /offers/{id}/accept", 409, 100),  # not an error
        (7000, 7100, "GET /orders/{id}", 404, 100),  # not an error
    ]
    p = tmp_path / "issues.tsv"
    p.write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    per, out_err, out_slow, examples, n = faults.analyse(str(p), windows, 2000)
    assert n == len(rows)
    assert per[0] == {"GET /offers 503": 1, "GET /offers no answer": 1, "POST /orders slow": 1}
    assert per[1] == {"POST /orders slow": 1}
    assert out_err == {"GET /orders/{id} 503": 1}
    assert out_slow == {"GET /trips (status 200)": 1}
    assert faults.is_error(0) and faults.is_error(502) and faults.is_error(400)
    assert not faults.is_error(404) and not faults.is_error(409) and not faults.is_error(201)
