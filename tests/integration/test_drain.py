"""Graceful stop (issue 9, item 4; docs/reliability.md, "Health and graceful stop").

On SIGTERM a service turns not-ready at once (/health/ready 503 "draining", so the edge takes it
out), keeps serving for the deregistration delay, stops accepting, answers what is in flight
(each answer closing its connection), finishes its workers and exits 0. Under a stream of
sign-ups through the edge and directly, every request either gets a real answer or never
reaches the service (its connection is refused or closed before it is read), and no account is
stored whose client saw its connection fail.
"""

import os
import random
import re
import string
import threading
import time

import requests

from antar_client import run_dir, unique_email
from conftest import EDGE_URL, USER_INTERNAL_URL, USER_URL

WORKERS_DIRECT = 16
WORKERS_EDGE = 16


def _phone():
    # A number range of its own (+62899…, 14 digits), so that the accounts this test makes never
    # take a phone number another test's random one could pick.
    return "+62899" + "".join(random.choice(string.digits) for _ in range(9))


def _pid(component):
    with open(os.path.join(run_dir(), f"{component}.pid")) as f:
        return int(f.read().split()[0])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not serving either
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _log_since(offset):
    with open(os.path.join(run_dir(), "log", "user.log"), encoding="utf-8",
              errors="replace") as f:
        f.seek(offset)
        return f.read()


def test_health_live_and_ready_on_every_service(services):
    for name, api in services.items():
        for base in (api.base_url, api.internal_url):
            r = requests.get(base + "/health/live", timeout=5)
            assert r.status_code == 200 and r.json()["result"]["status"] == "live", r.text
            r = requests.get(base + "/health/ready", timeout=5)
            assert r.status_code == 200 and r.json()["result"]["status"] == "ready", r.text
            assert r.json()["result"]["service"] == name


# Sign-ups hash passwords with Argon2id, two at a time (ANTAR_ARGON2_MAX_CONCURRENT): with 30 in
# flight on a shared 2-core machine the queue alone is seconds of CPU, which would measure the
# machine rather than the drain; hence cheap_argon2_user_service (conftest.py).
def test_sigterm_drains_in_flight_sign_ups_then_exits_0(stack, cheap_argon2_user_service):
    pid = _pid("user")
    assert _alive(pid)
    log_offset = os.path.getsize(os.path.join(run_dir(), "log", "user.log"))
    stop = threading.Event()
    outcomes = []  # (via, email, password, status or None, error text)
    lock = threading.Lock()

    def worker(via, base):
        s = requests.Session()  # keep-alive, so the drain's Connection: close is exercised
        while not stop.is_set():
            email, pw = unique_email("drain"), "drain-password-2025"
            body = {"name": "Drain Test", "email": email, "phone": _phone(), "password": pw}
            try:
                r = s.post(base + "/users", json=body, timeout=10)
                out = (via, email, pw, r.status_code, r.text[:200])
            except requests.RequestException as e:
                out = (via, email, pw, None, repr(e)[:300])
                s = requests.Session()
            with lock:
                outcomes.append(out)
            # Paced: a steady stream, not thousands of accounts (nor a tight loop of refusals
            # while the service is down).
            time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=("direct", USER_URL), daemon=True)
               for _ in range(WORKERS_DIRECT)]
    threads += [threading.Thread(target=worker, args=("edge", EDGE_URL), daemon=True)
                for _ in range(WORKERS_EDGE)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # sign-ups in flight on every worker
        before = len(outcomes)
        t_term = time.monotonic()
        os.kill(pid, 15)
        # Not ready at once (the listeners still answer during the deregistration delay). Asked
        # on the internal listener: the public one's threads are busy hashing passwords.
        # The signal is taken by the main thread's sigwait: give it a moment, no more.
        not_ready_by = time.monotonic() + 0.5
        while True:
            r = requests.get(USER_INTERNAL_URL + "/health/ready", timeout=5)
            if r.status_code == 503 or time.monotonic() > not_ready_by:
                break
            time.sleep(0.02)
        assert r.status_code == 503 and "draining" in r.json()["error"]["message"], r.text
        not_ready_after = time.monotonic() - t_term
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        exited_after = time.monotonic() - t_term
        assert not _alive(pid), "user-service did not exit within 15 s of SIGTERM"
        during = len(outcomes) - before
        stack.start("user")  # as the supervisor would; waits until the edge routes to it again
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        if not _alive(_pid("user")):  # never leave the stack without user-service
            stack.start("user")

    assert before > 0 and during > 0, (before, during)
    log = _log_since(log_offset)
    assert "drained, exiting 0" in log, log[-3000:]
    assert "drain did not finish" not in log
    # The drain is bounded: deregistration delay + in-flight requests, far below ANTAR_DRAIN_S.
    assert exited_after < 8, f"exit took {exited_after:.1f} s"

    answered = [o for o in outcomes if o[3] is not None]
    failed = [o for o in outcomes if o[3] is None]
    # A real answer is the service's (201, or 4xx for a duplicate phone) or the edge's own 503
    # while no user-service was up: never a 502/504 of a request cut inside the service.
    cut = [o for o in answered if o[3] in (500, 502, 504)]
    assert not cut, f"{len(cut)} requests were cut: {cut[:5]}"
    # A client whose connection failed must have no account: sign up again with the same
    # email — 201 proves nothing was stored (409 duplicate would mean a lost answer).
    lost = []
    for via, email, pw, _, err in failed:
        for _attempt in range(5):
            r = requests.post(USER_URL + "/users", timeout=10, json={
                "name": "Drain Test", "email": email, "phone": _phone(), "password": pw})
            # Another drain account may hold the random phone: only the email's verdict counts.
            if not (r.status_code == 409 and '"field":"phone"' in r.text):
                break
        if r.status_code != 201:
            lost.append((via, email, r.status_code, r.text[:200], err))
    assert not lost, f"{len(lost)} sign-ups were stored but their clients got no answer: {lost}"
    # Through the edge, no client sees a failed connection at all: the edge took the draining
    # service out before it stopped accepting.
    edge_failed = [o for o in failed if o[0] == "edge"]
    assert not edge_failed, f"{len(edge_failed)} edge requests failed: {edge_failed[:5]}"
    # Directly, only refused connections (or a keep-alive connection closed before a byte of
    # the request was read), never a reset of a request the service had read.
    for o in failed:
        assert re.search(r"refused|RemoteDisconnected|Connection aborted", o[4]), o
    assert len(outcomes) >= 30
    summary = {}
    for o in outcomes:
        key = (o[0], o[3] if o[3] is not None else ("refused" if "refused" in o[4] else "closed"))
        summary[key] = summary.get(key, 0) + 1
    print(f"drain: not ready {not_ready_after * 1000:.0f} ms and exit {exited_after:.2f} s after SIGTERM; outcomes {sorted(summary.items(), key=str)}")
