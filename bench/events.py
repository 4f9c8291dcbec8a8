#!/usr/bin/env python3
"""bench/events.py — the push channel under many open streams, against a running stack.

Opens N streams of GET /events through the edge (the ops client's token: the stack must run with
ANTAR_EVENTS_MAX_PER_PRINCIPAL >= N), then reports:
  - user-service's threads and RSS before and with the streams open (a stream must hold no thread);
  - the latency of GET /users/me (wrk, -c10 -d5s) before and with the streams open;
  - fan-out: ROUNDS orders placed, each order's first order_status event timed on every stream
    (from just before POST /orders to the moment each stream has it): p50, p99, max over all.

Usage: bench/events.py --streams 900 [--rounds 5] [--edge http://127.0.0.1:8080]
                       [--user-pid PID] [--run-dir .run]
"""
import argparse
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from antar_client import Api, new_user  # noqa: E402


def proc(pid):
    with open(f"/proc/{pid}/status") as f:
        st = f.read()
    threads = int(re.search(r"Threads:\s+(\d+)", st).group(1))
    rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
    return threads, rss


def wrk_users_me(edge, token):
    env = dict(os.environ, ANTAR_BENCH_TOKEN=token)
    lua = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get_auth.lua")
    out = subprocess.run(["wrk", "-t1", "-c10", "-d5s", "--latency", "-s", lua,
                          edge + "/users/me"], capture_output=True, text=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    return rps, p50, p99


def open_stream(host, port, token):
    s = socket.create_connection((host, port))
    s.sendall((f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode())
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=900)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--edge", default="http://127.0.0.1:%d" % (8080 + int(
        os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)))
    ap.add_argument("--user-pid", type=int, required=True)
    a = ap.parse_args()
    u = urlparse(a.edge)
    edge = Api(a.edge)
    secret = None
    run = os.environ.get("ANTAR_RUN_DIR", ".run")
    for line in open(os.path.join(run, "secrets.env")):
        if line.startswith("CLIENT_SECRET_OPS="):
            secret = line.strip().split("=", 1)[1]
    r = edge.post("/oauth/token", form={"grant_type": "client_credentials", "client_id": "ops",
                                        "client_secret": secret})
    ops = r.body["access_token"]
    cust = new_user(edge)

    t0, rss0 = proc(a.user_pid)
    rps0, p50_0, p99_0 = wrk_users_me(a.edge, cust.token)

    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(a.streams):
        s = open_stream(u.hostname, u.port, ops)
        socks.append(s)
    # Every stream answers 200 and its first comment.
    bufs = {s.fileno(): b"" for s in socks}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    ready = set()
    while len(ready) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            fd = key.fd
            data = key.fileobj.recv(65536)
            bufs[fd] += data
            if b" 200 " in bufs[fd][:20] and b":ok" in bufs[fd]:
                ready.add(fd)
    opened = len(ready)
    time.sleep(1)
    t1, rss1 = proc(a.user_pid)
    rps1, p50_1, p99_1 = wrk_users_me(a.edge, cust.token)

    lat = []
    for rnd in range(a.rounds):
        for fd in bufs:
            bufs[fd] = b""
        start = time.monotonic()
        body = {"pickup_lat": -6.2, "pickup_lng": 106.8 + rnd * 0.001,
                "pickup_address": "Jl. Sudirman 1", "dropoff_lat": -6.22, "dropoff_lng": 106.81,
                "dropoff_address": "Jl. Thamrin 9", "vehicle_type": "motorcycle"}
        o = edge.post("/orders", json=body, token=cust.token, csrf=cust.csrf).result
        needle = ('"order_id":%d,"status":"searching"' % o["id"]).encode()
        got = {}
        deadline = time.monotonic() + 20
        while len(got) < opened and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                fd = key.fd
                try:
                    bufs[fd] += key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if fd not in got and needle in bufs[fd]:
                    got[fd] = (time.monotonic() - start) * 1000
        lat += sorted(got.values())
        edge.post(f"/orders/{o['id']}/cancel", json={}, token=cust.token, csrf=cust.csrf)
        time.sleep(0.5)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")  # noqa
    for s in socks:
        s.close()
    print(json.dumps({
        "streams_requested": a.streams, "streams_open": opened,
        "user_threads": [t0, t1], "user_rss_kib": [rss0, rss1],
        "users_me_without": {"rps": rps0, "p50": p50_0, "p99": p99_0},
        "users_me_with_streams": {"rps": rps1, "p50": p50_1, "p99": p99_1},
        "fanout_ms": {"deliveries": len(lat), "expected": opened * a.rounds,
                      "p50": round(pct(0.5), 1), "p99": round(pct(0.99), 1),
                      "max": round(lat[-1], 1) if lat else None},
    }, indent=1))


if __name__ == "__main__":
    main()
