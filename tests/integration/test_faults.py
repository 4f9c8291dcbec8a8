"""The short form of `make faults`: a small city through the edge while user-, driver- and
core-service and Redis are each killed with SIGKILL once, and runit alone brings them back. Every
component must be ready within 5 s, no request may fail or take 2 s or more outside the fault
windows, and the audit after settling must be clean (scripts/faults.py does the counting; this
test checks its verdict and its report)."""

import json
import os
import subprocess

import pytest

from conftest import REPO, run_dir


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
        assert w.get("new_pid") and w["new_pid"] != w["old_pid"], w
    assert rep["outside"]["errors"] == {}, rep["outside"]
    assert rep["outside"]["slow"] == {}, rep["outside"]
    assert rep["audit"]["clean"], rep["audit"]
    assert p.returncode == 0 and rep["ok"], p.stdout
