"""The simulator's account pool: `scripts/stack.sh exec driver --seed-drivers N`, `exec user
--seed-customers N` and `exec core --issue-refresh-tokens`, run as separate processes against
the real stack's databases, and the accounts and tokens they make used through the edge like
any other (docs/operations.md, "Seeding the simulator's pool")."""

import os
import subprocess

from antar_client import REPO, login, run_dir

SEED_PASSWORD = "sim-seed-password-1"
STACK = os.path.join(REPO, "scripts", "stack.sh")


def pool_password():
    """The password the seeded accounts were made with: scripts/sim.sh's (kept beside the pool)
    when a city seeded them first on this stack, else this module's. A second seeding run never
    rehashes existing accounts, so whoever seeded first decides."""
    path = os.path.join(run_dir(), "sim", "seed-password")
    return open(path).read().strip() if os.path.exists(path) else SEED_PASSWORD


def stack_exec(*args, stdin=None, password=SEED_PASSWORD):
    """scripts/stack.sh exec … with this run's environment (run dir, offset, binaries, sanitizer
    options) and ANTAR_SEED_PASSWORD set, or removed when password is None."""
    env = dict(os.environ)
    env.pop("ANTAR_SEED_PASSWORD", None)
    if password is not None:
        env["ANTAR_SEED_PASSWORD"] = password
    return subprocess.run([STACK, "exec", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def seed(kind, flag, n):
    """Run a seeding command; returns ({n: (id, type, email)}, accounts created by this run)."""
    p = stack_exec(kind, flag, str(n))
    assert p.returncode == 0, p
    lines = p.stdout.splitlines()
    assert len(lines) == n, p.stdout
    out = {}
    for i, line in enumerate(lines, start=1):
        who, ident, vtype, email = line.split("\t")
        assert who == ("driver" if kind == "driver" else "user"), line
        assert email == f"sim-{'driver' if kind == 'driver' else 'user'}-{i:06d}@sim.antar.id"
        out[i] = (int(ident), vtype, email)
    # The summary goes to stderr: "<flag>: N accounts, C created now".
    created = int(p.stderr.strip().splitlines()[-1].split(", ")[1].split()[0])
    return out, created


def refresh(edge, client_id, token):
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": client_id,
                                        "refresh_token": token})
    assert r.status == 200, r
    assert r.body["refresh_token"] != token
    return r.body


def test_seed_pool_tokens_and_login(edge):
    drivers5, created5 = seed("driver", "--seed-drivers", 5)
    drivers7, created7 = seed("driver", "--seed-drivers", 7)
    # The first five keep their rows; only the missing ones are made (all of them on a fresh
    # stack; none when an earlier run on this stack made them already).
    assert {k: drivers7[k] for k in range(1, 6)} == drivers5
    assert created7 == 7 - 5 or (created5 == 0 and created7 == 0)
    assert len({d[0] for d in drivers7.values()}) == 7
    assert [drivers7[k][1] for k in range(1, 8)] == [
        "motorcycle", "motorcycle", "motorcycle", "car", "motorcycle", "motorcycle", "motorcycle"]

    users5, c5 = seed("user", "--seed-customers", 5)
    users7, c7 = seed("user", "--seed-customers", 7)
    assert {k: users7[k] for k in range(1, 6)} == users5
    assert c7 == 2 or (c5 == 0 and c7 == 0)
    assert all(u[1] == "-" for u in users7.values())

    subjects = [f"driver:{d[0]}" for d in drivers7.values()] + \
        [f"user:{u[0]}" for u in users7.values()]
    p = stack_exec("core", "--issue-refresh-tokens", stdin="\n".join(subjects) + "\n",
                   password=None)
    assert p.returncode == 0, p
    issued = [line.split("\t") for line in p.stdout.splitlines()]
    assert [s for s, _ in issued] == subjects
    assert len({t for _, t in issued}) == len(subjects)
    tokens = dict(issued)

    # A driver's and a customer's token work at the edge and rotate like any other.
    for sub, client, me, seeded in (
            (subjects[3], "driver-app", "/drivers/me", drivers7[4]),
            (subjects[7], "user-app", "/users/me", users7[1])):
        first = refresh(edge, client, tokens[sub])
        assert first["scope"] == client.split("-")[0]
        r = edge.get(me, token=first["access_token"])
        assert r.status == 200, r
        assert r.result["id"] == seeded[0] and r.result["email"] == seeded[2]
        if client == "driver-app":
            assert r.result["vehicle_type"] == "car"
        second = refresh(edge, client, first["refresh_token"])
        assert second["access_token"]
        # The token the command printed was used once: using it again is a reuse.
        r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": client,
                                            "refresh_token": tokens[sub]})
        assert r.status == 400 and r.body["error"] == "invalid_grant", r

    # A driver token is not a customer token.
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": "user-app",
                                        "refresh_token": tokens[subjects[0]]})
    assert r.status == 400, r

    # The one hash stored for every seeded account is ANTAR_SEED_PASSWORD's (one login only:
    # each costs an Argon2id verification).
    assert login(edge, users7[6][2], pool_password(), "user-app")


def test_issue_refresh_tokens_refuses_a_malformed_line():
    p = stack_exec("core", "--issue-refresh-tokens", stdin="driver:1\nuser:2\ndriver:x\nuser:3\n",
                   password=None)
    assert p.returncode == 2, p
    assert "line 3" in p.stderr, p.stderr
    assert p.stdout == "", "nothing is issued when a line is malformed"
    for bad in ("rider:1", "driver:0", "driver:01", "driver: 1", "driver:1 ", "",
                "driver:99999999999999999999"):
        p = stack_exec("core", "--issue-refresh-tokens", stdin=f"user:1\n{bad}\n", password=None)
        assert p.returncode == 2 and "line 2" in p.stderr, (bad, p)


def test_seeding_needs_the_password_in_the_environment():
    for kind, flag in (("driver", "--seed-drivers"), ("user", "--seed-customers")):
        p = stack_exec(kind, flag, "3", password=None)
        assert p.returncode != 0, p
        assert "ANTAR_SEED_PASSWORD is not set" in p.stderr, p.stderr
        assert p.stdout == ""
        p = stack_exec(kind, flag, "3", password="short")
        assert p.returncode != 0 and "8 to 128" in p.stderr, p


def test_seeding_refuses_a_bad_count():
    for arg in (["0"], ["-1"], ["1000000"], ["5x"], [], ["2", "3"]):
        p = stack_exec("driver", "--seed-drivers", *arg)
        assert p.returncode == 2, (arg, p)
        assert "1 to 999999" in p.stderr, p.stderr


def test_exec_refuses_an_unknown_service():
    p = stack_exec("haproxy", "--routes")
    assert p.returncode == 2 and "unknown service" in p.stderr, p
