"""Supervision: every component of the local stack runs under runit (scripts/stack.sh). A
component killed with SIGKILL comes back by itself, ready within 5 s, under a new pid that its pid
file names; `stack.sh stop` keeps it down until `stack.sh start`. The systemd units of
deploy/systemd pass `systemd-analyze verify`."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

from conftest import OFFSET, REPO, faults_module, run_dir
from antar_client import stack_secrets

SERVICE_PORTS = {"user": 8001, "driver": 8002, "core": 8003}
PROGRAM = {"mariadb": "mariadbd", "redis": "redis-server", "haproxy": "haproxy",
           "user": "antar-user", "driver": "antar-driver", "core": "antar-core"}


def comp_pid(comp):
    """The pid in the component's pid file, when that pid runs the component's program."""
    try:
        with open(os.path.join(run_dir(), comp + ".pid")) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if PROGRAM[comp] in cmd else None


def service_ready(svc):
    base = f"http://127.0.0.1:{SERVICE_PORTS[svc] + OFFSET}"
    try:
        r = requests.get(base + "/health/ready", timeout=1)
        if r.status_code == 404:
            r = requests.get(base + "/health", timeout=1)
        return r.status_code == 200
    except requests.RequestException:
        return False


_FAULTS = faults_module()


def redis_ready():
    return _FAULTS.redis_ping(6380 + OFFSET, stack_secrets().get("REDIS_PASSWORD_ADMIN", ""), 1)


def mariadb_ready():
    sock = os.path.join(run_dir(), "mariadb", "mariadb.sock")
    return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={sock}", "-uroot",
                           "--connect-timeout=1", "ping"], capture_output=True,
                          timeout=5).returncode == 0


READY = {"user": lambda: service_ready("user"), "driver": lambda: service_ready("driver"),
         "core": lambda: service_ready("core"), "redis": redis_ready, "mariadb": mariadb_ready}


def all_services_ready(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(service_ready(s) for s in SERVICE_PORTS):
            return True
        time.sleep(0.1)
    return False


def status(comp):
    p = subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), "status"], cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    return next((line for line in p.stdout.splitlines() if line.startswith(comp + " ")), "")


@pytest.mark.disruptive
@pytest.mark.parametrize("comp", ["user", "driver", "core", "redis", "mariadb"])
def test_killed_component_comes_back_by_itself(stack, comp):
    old = comp_pid(comp)
    assert old, f"{comp} is not running before the test"
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = None
    while time.monotonic() - t0 < 5.0:
        pid = comp_pid(comp)
        if pid and pid != old and READY[comp]():
            new = pid
            break
        time.sleep(0.1)
    took = time.monotonic() - t0
    assert new, f"{comp} not back and ready within 5 s of SIGKILL (pid file: {comp_pid(comp)})"
    # The pid file names the new process, and status agrees with it.
    assert f"pid {new} " in status(comp), status(comp)
    # The rest of the stack recovers too (the next tests need it through the edge).
    assert all_services_ready(20), "services not ready again after the restart"
    stack._wait_routed(comp)
    print(f"{comp}: ready {took:.2f} s after SIGKILL")


@pytest.mark.disruptive
def test_stop_keeps_a_component_down_and_start_brings_it_back(stack):
    stack.stop("driver")
    try:
        assert comp_pid("driver") is None
        assert not os.path.exists(os.path.join(run_dir(), "driver.pid"))
        time.sleep(3)  # longer than any restart takes: nothing brings it back
        assert comp_pid("driver") is None
        assert not service_ready("driver")
        line = status("driver")
        assert "stopped" in line and "down" in line, line
    finally:
        stack.start("driver")
    assert comp_pid("driver") and service_ready("driver")


@pytest.mark.disruptive
def test_sigterm_exit_is_restarted(stack):
    """A service that exits on its own (SIGTERM from someone other than stack.sh, exit 0) is not
    wanted down: the supervisor starts it again."""
    old = comp_pid("core")
    os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pid = comp_pid("core")
        if pid and pid != old and service_ready("core"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("core not restarted after SIGTERM")
    assert all_services_ready(20)
    stack._wait_routed("core")


def test_supervisor_state_lives_under_the_run_folder():
    """runit's state (service folders, control fifos, runsvdir's pid) is in this run folder, so
    stacks with other run folders never share it; the supervisor's pid file names runsvdir."""
    rd = run_dir()
    with open(os.path.join(rd, "supervisor.pid")) as f:
        pid = int(f.read().split()[0])
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read().replace(b"\0", b" ").decode()
    assert cmd.startswith("runsvdir -P " + os.path.join(rd, "sv")), cmd
    for comp in PROGRAM:
        d = os.path.join(rd, "sv", comp)
        assert os.path.exists(os.path.join(d, "supervise", "control")), d
        # The environment file may hold settings: owner only.
        assert os.stat(os.path.join(d, "env")).st_mode & 0o077 == 0


def test_stale_pid_file_never_signals_a_stranger(tmp_path):
    """stack.sh must not stop a process that merely reuses a pid written in a pid file."""
    stranger = subprocess.Popen(["sleep", "30"])
    rd = tmp_path / ".run-stale"
    rd.mkdir()
    (rd / "user.pid").write_text(f"{stranger.pid}\n")
    env = dict(os.environ, ANTAR_RUN_DIR=str(rd), ANTAR_PORT_OFFSET=str(OFFSET + 7))
    try:
        p = subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), "stop", "user"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert stranger.poll() is None, "stack.sh stop killed a process it did not start"
        p = subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), "down"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_failed_mariadb_provisioning_fails_the_start(tmp_path):
    """`stack.sh start mariadb` (and so `up`) must stop when provisioning fails — here root's
    password in the secrets file does not match the datadir's — instead of saying "mariadb up"."""
    rd = tmp_path / ".run-prov"
    env = dict(os.environ, ANTAR_RUN_DIR=str(rd), ANTAR_PORT_OFFSET=str(OFFSET + 9))
    stack_sh = os.path.join(REPO, "scripts", "stack.sh")

    def run(*args):
        return subprocess.run([stack_sh, *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=180)
    try:
        p = run("start", "mariadb")
        assert p.returncode == 0, p.stderr
        assert run("stop", "mariadb").returncode == 0
        secrets = rd / "secrets.env"
        text = secrets.read_text()
        assert "DB_ROOT_PASSWORD=" in text
        secrets.write_text("\n".join(
            "DB_ROOT_PASSWORD=not-the-one" if line.startswith("DB_ROOT_PASSWORD=") else line
            for line in text.splitlines()) + "\n")
        p = run("start", "mariadb")
        assert p.returncode != 0, p.stdout + p.stderr
        assert "mariadb up" not in p.stdout + p.stderr
        assert "cannot log in to mariadb as root" in p.stderr
    finally:
        run("down")


UNITS = os.path.join(REPO, "deploy", "systemd")


def test_systemd_units_verify(tmp_path):
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze not installed (Debian's systemd package has it)")
    units = sorted(f for f in os.listdir(UNITS) if f.endswith((".service", ".target")))
    assert {"antar-user.service", "antar-driver.service", "antar-core.service",
            "antar.target"} <= set(units)
    # verify resolves ExecStart; the units name /usr/local/bin/antar-*: stand-ins in a root
    # that mirrors the install, so the check is about the units, not about this machine.
    root = tmp_path / "root"
    (root / "usr/local/bin").mkdir(parents=True)
    for svc in ("user", "driver", "core"):
        b = root / "usr/local/bin" / f"antar-{svc}"
        b.write_text("#!/bin/sh\nexit 0\n")
        b.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    # The distro's own units (sysinit.target …) that every service depends on by default.
    for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isdir(d):
            shutil.copytree(d, root / "usr/lib/systemd/system", symlinks=True)
            break
    for u in units:
        shutil.copy(os.path.join(UNITS, u), root / "etc/systemd/system" / u)
    p = subprocess.run([exe, "verify", f"--root={root}",
                        *[f"/etc/systemd/system/{u}" for u in units]],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    # verify exits 0 even on an unknown key or a bad value (it only warns): any line naming
    # one of our units fails the test.
    bad = [line for line in out.splitlines() if "antar" in line]
    assert p.returncode == 0 and not bad, out


def test_systemd_verify_catches_a_bad_unit(tmp_path):
    """The check above can fail: a misspelt key in a copy of a unit is reported."""
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze not installed (Debian's systemd package has it)")
    with open(os.path.join(UNITS, "antar-user.service")) as f:
        text = f.read().replace("Restart=on-failure", "Restart=sometimes")
    u = tmp_path / "antar-user.service"
    u.write_text(text)
    p = subprocess.run([exe, "verify", str(u)], capture_output=True, text=True, timeout=60)
    assert "sometimes" in p.stdout + p.stderr


def test_systemd_units_harden():
    for svc in ("user", "driver", "core"):
        with open(os.path.join(UNITS, f"antar-{svc}.service")) as f:
            text = f.read()
        for need in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "LimitNOFILE=", "MemoryMax=", "TasksMax=",
                     "EnvironmentFile=", "After=", "mariadb.service", "redis-server.service"):
            assert need in text, f"antar-{svc}.service lacks {need}"
        assert "DynamicUser=yes" in text or "User=antar" in text
