"""Several instances of every service (issue 11): a stack of its own with ANTAR_INSTANCES=2
(scripts/faults.sh --up, in <repo>/.run-faults-scale on the test offset + 50), a small city
through the edge, and one instance of each service killed with SIGKILL in turn (user-2, driver,
core-2). The other instance takes over: a request sent after a kill must not fail — only those
in flight on the killed process may — nothing may fail or be slow outside the fault windows, and
the audit must be clean (scripts/faults.py --scale does the counting; this test checks its
verdict and report). The stack-level pieces — ports per instance, peers.conf, the rendered
HAProxy configuration, `stack.sh stop <svc>-<i>` — are checked on the same stack first.

The Galera and Sentinel failovers take minutes on 2 cores and run in `make scale`
(scripts/scale.sh), not here."""

import json
import os
import re
import subprocess

import pytest

from conftest import REPO

OFF = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0) + 50
RUN = os.path.join(REPO, ".run-faults-scale")


def env():
    e = dict(os.environ, ANTAR_RUN_DIR=RUN, ANTAR_PORT_OFFSET=str(OFF), ANTAR_INSTANCES="2")
    e.pop("ANTAR_DB", None)
    e.pop("ANTAR_REDIS", None)
    return e


def stack(*args, timeout=120):
    return subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), *args], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=timeout)


def status_lines():
    return {l.split()[0]: l for l in stack("status").stdout.splitlines() if l.strip()}


@pytest.mark.disruptive
@pytest.mark.slow
def test_two_instances_per_service_survive_kill_9_of_one_instance_each():
    p = subprocess.run([os.path.join(REPO, "scripts", "faults.sh"), "--up", "--scale",
                        "--keep-up"], cwd=REPO, env=env(), capture_output=True, text=True,
                       timeout=1200)
    print(p.stdout)
    print(p.stderr[-4000:])
    try:
        # The stack as stack.sh laid it out: two of each, on their ports, under runit.
        st = status_lines()
        for comp, port in (("user", 8001), ("user-2", 8011), ("driver", 8002),
                           ("driver-2", 8012), ("core", 8003), ("core-2", 8013)):
            assert comp in st and " running " in st[comp], (comp, st.get(comp))
            assert re.search(rf"port {port + OFF}\b", st[comp]), st[comp]
        with open(os.path.join(RUN, "peers.conf")) as f:
            peers = [l.split() for l in f if l.strip() and not l.startswith("#")]
        assert sorted(peers) == sorted(
            [[s, f"http://127.0.0.1:{b + OFF + d}"]
             for s, b in (("user", 9001), ("driver", 9002), ("core", 9003)) for d in (0, 10)])
        with open(os.path.join(RUN, "haproxy.cfg")) as f:
            cfg = f.read()
        for s in ("user", "driver", "core"):
            assert f'server {s}1 "${{ANTAR_EDGE_{s.upper()}}}" check' in cfg
            assert f'server {s}2 "${{ANTAR_EDGE_{s.upper()}_2}}" check' in cfg
        # The environment instance 2 runs with: its own ports and number, every peer's URL,
        # the peers file (the interface lib/httpc.c reads).
        with open(os.path.join(RUN, "user-2.pid")) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/environ", "rb") as f:
            penv = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if "=" in kv)
        assert penv["ANTAR_INSTANCE"] == "2"
        assert penv["ANTAR_PORT"] == str(8011 + OFF)
        assert penv["ANTAR_INTERNAL_PORT"] == str(9011 + OFF)
        assert penv["ANTAR_CORE_URL"] == f"http://127.0.0.1:{9003 + OFF},http://127.0.0.1:{9013 + OFF}"
        assert penv["ANTAR_PEERS_FILE"] == os.path.join(RUN, "peers.conf")
        # One instance stops alone; the plain name means every instance.
        assert stack("stop", "driver-2").returncode == 0
        st = status_lines()
        assert " stopped " in st["driver-2"] and " running " in st["driver"], st
        assert stack("stop", "nosuch-3").returncode == 2

        with open(os.path.join(RUN, "faults", "report.json")) as f:
            rep = json.load(f)
        faults = [w["fault"] for w in rep["windows"]]
        assert faults == ["kill:user-2", "kill:driver", "kill:core-2"], faults
        assert rep["strict"] is True
        for w in rep["windows"]:
            assert w.get("ready_ms") is not None and w["ready_ms"] <= 5000, w
            assert w.get("new_pid") and w["new_pid"] != w["old_pid"], w
            assert not w.get("errors_after_fault"), w
        assert rep["outside"]["errors"] == {}, rep["outside"]
        assert rep["outside"]["slow"] == {}, rep["outside"]
        assert rep["audit"]["clean"], rep["audit"]
        assert p.returncode == 0 and rep["ok"], p.stdout
    finally:
        stack("down", timeout=180)
