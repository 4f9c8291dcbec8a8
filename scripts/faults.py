#!/usr/bin/env python3
"""faults.py — the city under faults (`make faults`; scripts/faults.sh is the entry point).

Runs the city (antar-sim through scripts/sim.sh) through the edge of a running, supervised stack
and, on a schedule, injects faults by pid file: SIGKILL to each service, SIGKILL to Redis and to
MariaDB, SIGTERM to one service. Nobody restarts anything: runit does (scripts/stack.sh). Each
fault opens a window at the moment it is injected. The component is ready again when — polled
every 100 ms — a service's new process answers GET /health/ready (GET /health where there is no
/health/ready) with 200, or Redis/MariaDB's new server answers PING and every service is ready
again (their readiness depends on it). The window closes then, or (--window-end edge, the
default) when the edge also routes to the component again: until HAProxy's next good health check
a client meets the edge's own 503 for a ready component, and that is part of the same fault. Both
times are reported, and both must be within --ready-limit-s.

After the schedule the city settles and audits itself. Then every failed or slow request the
simulator logged (<out>/issues.tsv: intended send, end, endpoint, status, latency) is placed:
inside a window when its [send, end] interval overlaps one, outside otherwise.

Output: a table on stdout and <run>/faults/report.json. Exit status 0 only when the audit is
clean, no error and no request slower than --slow-ms happened outside every window, and each
component was ready within --ready-limit-s of its fault; 1 otherwise; 2 on bad usage or set-up.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = ("user", "driver", "core")
PROGRAM = {"mariadb": "mariadbd", "redis": "redis-server", "haproxy": "haproxy",
           "user": "antar-user", "driver": "antar-driver", "core": "antar-core"}
BASE_PORT = {"user": 8001, "driver": 8002, "core": 8003, "redis": 6380, "mariadb": 3307,
             "edge": 8080}
# Several instances (scripts/stack.sh, ANTAR_INSTANCES): user-2 … listen 10 ports further per
# instance; Galera nodes mariadb-2/3 (ANTAR_DB=galera) and Redis's replica redis-2
# (ANTAR_REDIS=sentinel) likewise. Two faults name their target when they happen:
#   kill:db-active     the Galera node the proxy sends connections to now
#   kill:redis-master  the Redis node Sentinel names as master now
#   failover:redis     SENTINEL FAILOVER (a clean, planned switch to the replica)
GALERA_BASE = 3317
SENTINEL_BASE = 26380


def base(comp):
    return comp.split("-")[0]


def inst(comp):
    head, _, tail = comp.rpartition("-")
    return int(tail) if head and tail.isdigit() else 1

FULL = "kill:user,kill:driver,kill:core,kill:redis,kill:mariadb,term:user"
SHORT = "kill:user,kill:driver,kill:core,kill:redis"
# Two instances per service: instance 2 of user, instance 1 of driver, instance 2 of core.
SCALE = "kill:user-2,kill:driver,kill:core-2"


def now_ms():
    return time.time() * 1000.0


def log(msg):
    print(f"faults: {msg}", file=sys.stderr, flush=True)


def redis_ping(port, password, timeout=0.5):
    """True when the Redis on 127.0.0.1:port accepts AUTH antar_admin <password> and PING
    (a raw socket: no client library, and no wait beyond timeout)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"AUTH antar_admin " + password.encode() + b"\r\nPING\r\n")
            got = b""
            while got.count(b"\r\n") < 2:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            return got.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


class Stack:
    def __init__(self, run_dir, offset):
        self.run = run_dir
        self.off = offset

    def port(self, name):
        if base(name) == "mariadb" and self.galera():
            return GALERA_BASE + self.off + 10 * (inst(name) - 1)
        return BASE_PORT[base(name)] + self.off + 10 * (inst(name) - 1)

    def topology(self, key):
        try:
            with open(os.path.join(self.run, "topology")) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    if k == key:
                        return v
        except OSError:
            pass
        return ""

    def galera(self):
        return self.topology("db") == "galera"

    def instances(self):
        return int(self.topology("instances") or 1)

    def all_services(self):
        n = self.instances()
        return [s if i == 1 else f"{s}-{i}" for i in range(1, n + 1) for s in SERVICES]

    def secret(self, name):
        with open(os.path.join(self.run, "secrets.env")) as f:
            for line in f:
                if line.startswith(name + "="):
                    return line.strip().split("=", 1)[1]
        return ""

    def sentinel(self, *args):
        return subprocess.run(["redis-cli", "-p", str(SENTINEL_BASE + self.off), *args],
                              capture_output=True, text=True, timeout=5).stdout.split()

    def resolve(self, comp):
        """A fault target named by role (db-active, redis-master) as a component name."""
        if comp == "redis-master":
            addr = self.sentinel("SENTINEL", "get-master-addr-by-name", "antar")
            n = (int(addr[1]) - BASE_PORT["redis"] - self.off) // 10 + 1 if len(addr) == 2 else 1
            return "redis" if n == 1 else f"redis-{n}"
        if comp == "db-active":
            # The proxy's admin socket: its one-entry stick table names the node in use
            # (server_id n = node n).
            try:
                out = subprocess.run(["socat", "-", "UNIX-CONNECT:" +
                                      os.path.join(self.run, "dbproxy.sock")],
                                     input="show table mariadb\n", capture_output=True,
                                     text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            for tok in out.split():
                if tok.startswith("server_id="):
                    n = int(tok.split("=")[1])
                    return "mariadb" if n == 1 else f"mariadb-{n}"
            return "mariadb"
        return comp

    def pid(self, comp):
        """The pid in comp's pid file when it runs the program we started, else None (a stale
        pid file naming a stranger is never signalled)."""
        try:
            with open(os.path.join(self.run, comp + ".pid")) as f:
                pid = int(f.read().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            return None
        return pid if PROGRAM[base(comp)] in cmd else None

    def http_status(self, port, path, timeout=0.5):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def service_ready(self, svc):
        port = self.port(svc)
        st = self.http_status(port, "/health/ready")
        if st == 404:  # no readiness route on this build: /health is the readiness check
            st = self.http_status(port, "/health")
        return st == 200

    def redis_ready(self, comp="redis"):
        # The stack's Redis has no default user: PING as the admin ACL user (secrets.env).
        return redis_ping(self.port(comp), self.secret("REDIS_PASSWORD_ADMIN"))

    def mariadb_ready(self, comp="mariadb"):
        if self.galera():
            # A Galera node is ready when it has rejoined and is Synced again.
            sock = os.path.join(self.run, f"galera-{inst(comp)}", "mariadb.sock")
            try:
                out = subprocess.run(["mariadb", "--no-defaults", f"--socket={sock}", "-uroot",
                                      "--connect-timeout=1", "--batch", "--skip-column-names",
                                      "-e", "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'"],
                                     capture_output=True, text=True, timeout=3,
                                     env=dict(os.environ,
                                              MYSQL_PWD=self.secret("DB_ROOT_PASSWORD"))).stdout
            except (OSError, subprocess.TimeoutExpired):
                return False
            return out.split() == ["wsrep_local_state", "4"]
        sock = os.path.join(self.run, "mariadb", "mariadb.sock")
        try:
            return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={sock}", "-uroot",
                                   "--connect-timeout=1", "ping"], capture_output=True,
                                  timeout=2).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def ready(self, comp):
        if base(comp) in SERVICES:
            return self.service_ready(comp)
        if base(comp) == "redis":
            return self.redis_ready(comp)
        if base(comp) == "mariadb":
            return self.mariadb_ready(comp)
        return False

    def edge_routes(self, comp):
        """The edge answers something other than its own 503 for a path of comp (for Redis
        and MariaDB: of every service)."""
        probes = {"core": "/.well-known/jwks.json", "user": "/users/me", "driver": "/drivers/me"}
        paths = [probes[base(comp)]] if base(comp) in probes else list(probes.values())
        for p in paths:
            st = self.http_status(self.port("edge"), p)
            if st is None or st == 503:
                return False
        return True


def inject(stack, fault, poll_s, give_up_s, end_at_edge):
    """Inject one fault and measure until its component is ready again (and, with end_at_edge,
    until the edge routes to it again). Returns the window."""
    kind, comp = fault.split(":")
    if kind == "failover":
        return failover(stack, fault, poll_s, give_up_s)
    comp = stack.resolve(comp)
    sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM}[kind]
    old = stack.pid(comp)
    w = {"fault": fault, "component": comp, "signal": sig.name, "old_pid": old}
    if old is None:
        w.update(start_ms=now_ms(), end_ms=now_ms(), error=f"{comp} not running before the fault")
        return w
    t0 = now_ms()
    os.kill(old, sig)
    w["start_ms"] = t0
    comp_ready = None
    while True:
        time.sleep(poll_s)
        t = now_ms()
        pid = stack.pid(comp)
        if comp_ready is None and pid is not None and pid != old and stack.ready(comp):
            comp_ready = t
            w["new_pid"] = pid
        if comp_ready is not None and (base(comp) in SERVICES or
                                       all(stack.service_ready(s) for s in stack.all_services())):
            w["component_ready_ms"] = round(comp_ready - t0, 1)
            w["end_ms"] = t
            w["ready_ms"] = round(t - t0, 1)
            break
        if t - t0 > give_up_s * 1000:
            w["end_ms"] = t
            w["ready_ms"] = None
            w["error"] = f"{comp} not ready {give_up_s:.0f} s after the fault"
            return w
    # How much later the edge routes to it again (HAProxy's next good health check: until then
    # the edge answers its own 503 for a component that is ready).
    w["edge_routes_ms"] = None
    while now_ms() - t0 < give_up_s * 1000:
        if stack.edge_routes(comp):
            w["edge_routes_ms"] = round(now_ms() - t0, 1)
            break
        time.sleep(poll_s)
    if end_at_edge:
        w["end_ms"] = max(w["end_ms"], now_ms())
    w["window_ms"] = round(w["end_ms"] - t0, 1)
    return w


def failover(stack, fault, poll_s, give_up_s):
    """SENTINEL FAILOVER: the window lasts until Sentinel names another master, that node
    says it is master, and every service is ready."""
    before = stack.resolve("redis-master")
    w = {"fault": fault, "component": before, "signal": None, "old_pid": stack.pid(before)}
    t0 = now_ms()
    w["start_ms"] = t0
    got = stack.sentinel("SENTINEL", "FAILOVER", "antar")
    if got != ["OK"]:
        w.update(end_ms=now_ms(), ready_ms=None, error=f"SENTINEL FAILOVER: {' '.join(got)}")
        return w
    while now_ms() - t0 < give_up_s * 1000:
        time.sleep(poll_s)
        after = stack.resolve("redis-master")
        if after != before and stack.redis_ready(after) and \
                all(stack.service_ready(s) for s in SERVICES):
            w["new_master"] = after
            w["new_pid"] = stack.pid(after)
            w["end_ms"] = now_ms()
            w["ready_ms"] = w["component_ready_ms"] = round(w["end_ms"] - t0, 1)
            w["edge_routes_ms"] = w["ready_ms"]
            w["window_ms"] = w["ready_ms"]
            return w
    w.update(end_ms=now_ms(), ready_ms=None, edge_routes_ms=None,
             error=f"no new master {give_up_s:.0f} s after SENTINEL FAILOVER")
    return w


def is_error(status):
    return status == 0 or status >= 500 or (400 <= status and status not in (404, 409))


def analyse(issues_path, windows, slow_ms):
    """Split the simulator's issues into windows and outside."""
    per = [{} for _ in windows]
    outside_err, outside_slow, examples = {}, {}, []
    n = 0
    try:
        f = open(issues_path)
    except OSError:
        return per, outside_err, outside_slow, examples, None
    with f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            n += 1
            t0, t1, ep, st, lat = float(parts[0]), float(parts[1]), parts[2], int(parts[3]), \
                float(parts[4])
            err, slow = is_error(st), lat >= slow_ms
            key = f"{ep} {st if st else 'no answer'}"
            hit = [i for i, w in enumerate(windows) if t0 <= w["end_ms"] and t1 >= w["start_ms"]]
            if hit:
                for i in hit[:1]:
                    k = key if err else f"{ep} slow"
                    per[i][k] = per[i].get(k, 0) + 1
                    # Sent after the fault: it never met the killed process itself.
                    if err and t0 > windows[i]["start_ms"]:
                        after = windows[i].setdefault("errors_after_fault", {})
                        after[key] = after.get(key, 0) + 1
                continue
            if err:
                outside_err[key] = outside_err.get(key, 0) + 1
            if slow:
                k = f"{ep} (status {st})"
                outside_slow[k] = outside_slow.get(k, 0) + 1
            if len(examples) < 20:
                examples.append({"sent_ms": t0, "end_ms": t1, "endpoint": ep, "status": st,
                                 "latency_ms": lat})
    return per, outside_err, outside_slow, examples, n


def main():
    ap = argparse.ArgumentParser(prog="scripts/faults.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="the make-test form: a small city, each service and Redis once")
    ap.add_argument("--drivers", type=int)
    ap.add_argument("--customers", type=int)
    ap.add_argument("--orders-per-s", type=float)
    ap.add_argument("--faults", help=f"comma list of kill:<c> / term:<c>, or none for a control "
                                     f"run (default {FULL})")
    ap.add_argument("--gap-s", type=float, help="seconds between faults")
    ap.add_argument("--lead-s", type=float, default=10, help="measured seconds before the first")
    ap.add_argument("--tail-s", type=float, default=15, help="measured seconds after the last")
    ap.add_argument("--warmup-s", type=float)
    ap.add_argument("--settle-s", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slow-ms", type=float, default=2000)
    ap.add_argument("--ready-limit-s", type=float, default=5)
    ap.add_argument("--poll-ms", type=float, default=100)
    ap.add_argument("--strict", action="store_true",
                    help="several instances: a request sent after a service instance was "
                         "killed must not fail (only those in flight on it may)")
    ap.add_argument("--scale", action="store_true",
                    help="the several-instances form: a small city, one instance of each "
                         "service killed in turn, --strict")
    ap.add_argument("--window-end", choices=("edge", "ready"), default="edge",
                    help="a window ends when the edge routes to the component again (default) "
                         "or as soon as the component itself is ready")
    a = ap.parse_args()

    if a.scale:
        a.strict = True
        d = dict(drivers=100, customers=200, orders=2.0, faults=SCALE, gap=10, warmup=8, settle=45)
    elif a.short:
        d = dict(drivers=100, customers=200, orders=2.0, faults=SHORT, gap=12, warmup=8, settle=45)
    else:  # about half the city's knee (2,000 drivers + 20 rides/s): 1,000 drivers, 10 rides/s
        d = dict(drivers=1000, customers=800, orders=10.0, faults=FULL, gap=25, warmup=20,
                 settle=90)
    drivers = a.drivers or d["drivers"]
    customers = a.customers or (d["customers"] if not a.drivers else max(200, drivers))
    orders = a.orders_per_s if a.orders_per_s is not None else d["orders"]
    # "none": the same city without faults, the control run.
    faults = [f.strip() for f in (a.faults or d["faults"]).split(",")
              if f.strip() and f.strip() != "none"]
    gap = a.gap_s or d["gap"]
    warmup = a.warmup_s if a.warmup_s is not None else d["warmup"]
    settle = a.settle_s if a.settle_s is not None else d["settle"]
    for f in faults:
        k, _, c = f.partition(":")
        if f == "failover:redis":
            continue
        named = c in ("db-active", "redis-master")
        if k not in ("kill", "term") or not (named or base(c) in BASE_PORT and base(c) != "edge"
                                             and inst(c) >= 1 and c.count("-") <= 1):
            ap.error(f"bad fault '{f}' (kill|term : user|driver|core|redis|mariadb[-<i>] "
                     f"| db-active | redis-master; failover:redis)")

    run = os.environ.get("ANTAR_RUN_DIR") or os.path.join(REPO, ".run")
    off = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)
    stack = Stack(run, off)
    st = subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), "status"],
                        capture_output=True, text=True)
    if st.returncode != 0 or not st.stdout.startswith("runit    running"):
        log(f"the supervised stack in {run} is not fully up:\n{st.stdout}{st.stderr}")
        return 2

    out = os.path.join(run, "faults")
    simout = os.path.join(out, "sim")
    os.makedirs(simout, exist_ok=True)
    for f in ("issues.tsv", "report.json"):
        try:
            os.unlink(os.path.join(simout, f))
        except FileNotFoundError:
            pass
    duration = a.lead_s + gap * len(faults) + a.tail_s
    sim_args = ["--drivers", drivers, "--customers", customers, "--orders-per-s", orders,
                "--flat", "--duration", duration, "--warmup", warmup, "--settle", settle,
                "--seed", a.seed, "--ping-sample", 0, "--conns", 256, "--quiet",
                "--slow-ms", a.slow_ms, "--out", simout]
    sim_args = [str(x) for x in sim_args]
    log(f"city: {drivers} drivers, {customers} customers, {orders} orders/s for {duration:.0f} s "
        f"(+{warmup:.0f} s warm-up); faults every {gap:.0f} s: {', '.join(faults)}")
    sim_log = open(os.path.join(out, "sim.log"), "w")
    sim = subprocess.Popen([os.path.join(REPO, "scripts", "sim.sh"), *sim_args],
                           stdout=sim_log, stderr=subprocess.STDOUT)

    # The simulator opens issues.tsv when its set-up is over and its run clock starts.
    issues = os.path.join(simout, "issues.tsv")
    t_wait = time.monotonic()
    while not os.path.exists(issues):
        if sim.poll() is not None:
            log(f"the simulator ended before its run began (exit {sim.returncode}); "
                f"see {out}/sim.log")
            return 2
        if time.monotonic() - t_wait > 600:
            log("the simulator's set-up took more than 10 minutes")
            sim.terminate()
            return 2
        time.sleep(0.05)
    t_run = time.monotonic()

    windows = []
    for i, fault in enumerate(faults):
        at = warmup + a.lead_s + i * gap
        while time.monotonic() - t_run < at:
            if sim.poll() is not None:
                break
            time.sleep(0.05)
        if sim.poll() is not None:
            log(f"the simulator ended early (exit {sim.returncode}); see {out}/sim.log")
            break
        w = inject(stack, fault, a.poll_ms / 1000.0, max(30.0, a.ready_limit_s * 4),
                   a.window_end == "edge")
        windows.append(w)
        log(f"{fault}: ready after {w.get('ready_ms')} ms"
            + (f" ({w['error']})" if "error" in w else ""))
    rc_sim = sim.wait()
    sim_log.close()

    try:
        with open(os.path.join(simout, "report.json")) as f:
            simrep = json.load(f)
    except (OSError, ValueError):
        simrep = {}
    audit = simrep.get("audit") or {}
    violations = audit.get("violations")
    per, out_err, out_slow, examples, n_issues = analyse(issues, windows, a.slow_ms)

    limit = a.ready_limit_s * 1000
    late = [w for w in windows if w.get("ready_ms") is None or w["ready_ms"] > limit
            or (a.window_end == "edge" and (w.get("edge_routes_ms") is None
                                             or w["edge_routes_ms"] > limit))]
    n_out_err = sum(out_err.values())
    n_out_slow = sum(out_slow.values())
    audit_clean = rc_sim == 0 and violations is not None and len(violations) == 0
    # --strict: with a second instance to take over, killing a service instance may fail only
    # the requests that were in flight on it (sent before the kill).
    after_kill = {w["fault"]: sum(w.get("errors_after_fault", {}).values())
                  for w in windows if base(w["component"]) in SERVICES}
    strict_bad = {f: n for f, n in after_kill.items() if n} if a.strict else {}
    ok = audit_clean and not late and n_out_err == 0 and n_out_slow == 0 \
        and len(windows) == len(faults) and n_issues is not None and not strict_bad

    # ---- the table ------------------------------------------------------------------------
    print(f"\nfaults: {drivers} drivers, {orders} orders/s, {len(windows)} faults, "
          f"ready limit {a.ready_limit_s:.0f} s, slow ≥ {a.slow_ms:.0f} ms\n")
    # ready: the component (and, after Redis or MariaDB, every service) ready again; edge: the
    # edge routes to it again. Errors and slow requests inside the window, then by endpoint.
    print(f"{'fault':<14} {'ready s':>8} {'edge s':>7} {'errors':>7} {'slow':>6}  by endpoint")
    for w, errs in zip(windows, per):
        r = "-" if w.get("ready_ms") is None else f"{w['ready_ms'] / 1000:.2f}"
        e = "-" if w.get("edge_routes_ms") is None else f"{w['edge_routes_ms'] / 1000:.2f}"
        n_err = sum(v for k, v in errs.items() if not k.endswith(" slow"))
        n_slow = sum(v for k, v in errs.items() if k.endswith(" slow"))
        top = sorted(errs.items(), key=lambda kv: -kv[1])
        txt = ", ".join(f"{k} ×{v}" for k, v in top[:4]) + (", …" if len(top) > 4 else "")
        print(f"{w['fault']:<14} {r:>8} {e:>7} {n_err:>7} {n_slow:>6}  {txt or '-'}")
        if "error" in w:
            print(f"{'':<14} {w['error']}")
    print()
    if a.strict:
        print(f"strict: errors of requests sent after a service instance was killed: "
              f"{sum(after_kill.values())}" + "".join(f"\n  {f} ×{n}" for f, n in strict_bad.items()))
    print(f"outside every window: {n_out_err} errors, {n_out_slow} slow (≥ {a.slow_ms:.0f} ms)")
    for k, v in sorted(out_err.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  error {k} ×{v}")
    for k, v in sorted(out_slow.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  slow  {k} ×{v}")
    if len(out_err) > 12 or len(out_slow) > 12:
        print("  … (all of them in report.json)")
    if violations is None:
        print(f"audit: not run or no report (simulator exit {rc_sim}; see {out}/sim.log)")
    else:
        kinds = {}
        for v in violations:
            kinds[v.get("kind", "?")] = kinds.get(v.get("kind", "?"), 0) + 1
        print(f"audit: {'clean' if not violations else f'{len(violations)} violation(s)'}"
              + "".join(f"\n  {k} ×{n}" for k, n in sorted(kinds.items())))
    flow = simrep.get("flow") or {}
    print(f"\n{'PASS' if ok else 'FAIL'}  (report: {out}/report.json)")

    rep = {"ok": ok, "drivers": drivers, "customers": customers, "orders_per_s": orders,
           "duration_s": duration, "gap_s": gap, "slow_ms": a.slow_ms,
           "ready_limit_s": a.ready_limit_s, "seed": a.seed, "window_end": a.window_end,
           "windows": [dict(w, errors_inside=e) for w, e in zip(windows, per)],
           "outside": {"errors": out_err, "slow": out_slow, "examples": examples},
           "issues_logged": n_issues, "late": [w["fault"] for w in late],
           "strict": a.strict, "errors_after_kill": after_kill,
           "audit": {"exit": rc_sim, "clean": audit_clean, "violations": violations},
           "sim_counts": flow, "sim_report": os.path.join(simout, "report.json")}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
