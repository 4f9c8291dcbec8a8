"""Fixtures for the integration tests: they talk HTTP to the real stack that scripts/test.sh
(or `make up`) started. URLs come from the environment test.sh exports; without it, the
default ports plus ANTAR_PORT_OFFSET are used."""

import os
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from antar_client import (  # noqa: E402,F401  (re-exported for the test files)
    REPO, Api, Response, Session, check_envelope, csrf, login, new_driver, new_user, redis_cli,
    run_dir, service_for_path, service_secret, service_token, signup_driver, signup_user,
    stack_secrets, token_response, unique_email, unique_phone, unique_plate, wait_for)

OFFSET = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)


def faults_module():
    """scripts/faults.py as a module: its window placement and its stack probes are tested and
    reused here."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("faults", os.path.join(REPO, "scripts",
                                                                         "faults.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _url(name, port):
    return os.environ.get(name) or f"http://127.0.0.1:{port + OFFSET}"


EDGE_URL = _url("ANTAR_EDGE_URL", 8080)
USER_URL = _url("ANTAR_USER_URL", 8001)
DRIVER_URL = _url("ANTAR_DRIVER_URL", 8002)
CORE_URL = _url("ANTAR_CORE_URL", 8003)
# The internal listeners: /internal/... is served there and nowhere else.
USER_INTERNAL_URL = _url("ANTAR_USER_INTERNAL_URL", 9001)
DRIVER_INTERNAL_URL = _url("ANTAR_DRIVER_INTERNAL_URL", 9002)
CORE_INTERNAL_URL = _url("ANTAR_CORE_INTERNAL_URL", 9003)
PUBLIC_URLS = {"user": USER_URL, "driver": DRIVER_URL, "core": CORE_URL}
INTERNAL_URLS = {"user": USER_INTERNAL_URL, "driver": DRIVER_INTERNAL_URL,
                 "core": CORE_INTERNAL_URL}


class Stack:
    """Stops and starts one component of the running stack through scripts/stack.sh, with the
    same run folder, ports and binaries as the stack test.sh started."""

    components = ("mariadb", "redis", "core", "user", "driver", "haproxy")

    def _run(self, *args):
        assert args[-1] in self.components or args[0] == "status", args
        p = subprocess.run([os.path.join(REPO, "scripts", "stack.sh"), *args], cwd=REPO,
                           env=dict(os.environ), capture_output=True, text=True, timeout=120)
        if p.returncode != 0 and args[0] != "status":
            raise AssertionError(f"stack.sh {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    # A path the edge routes to each service that the service itself never answers with 503.
    _edge_probes = {"core": "/.well-known/jwks.json", "user": "/users/me",
                    "driver": "/drivers/me"}

    def stop(self, component):
        self._run("stop", component)

    def start(self, component):
        self._run("start", component)
        self._wait_routed(component)

    def restart(self, component):
        self._run("restart", component)
        self._wait_routed(component)

    def _wait_routed(self, component, timeout=20.0):
        """Wait until the edge routes to what component serves again. stack.sh returns once the
        process answers on its own port, but HAProxy puts a backend back only on its next good
        health check (about a second later; after MariaDB or Redis came back, every service's
        /health has to recover first): a request through the edge before then gets the edge's
        own 503, whichever test happens to run next."""
        if component in self._edge_probes:
            paths = [self._edge_probes[component]]
        else:  # mariadb, redis, haproxy: every service behind the edge
            paths = list(self._edge_probes.values())
        deadline = time.monotonic() + timeout
        for path in paths:
            while True:
                try:
                    status = requests.get(EDGE_URL + path, timeout=2).status_code
                except requests.RequestException:
                    status = None
                if status is not None and status != 503:
                    break
                if time.monotonic() >= deadline:
                    raise AssertionError(f"the edge does not route {path} again {timeout:.0f} s "
                                         f"after {component} started (last status {status})")
                time.sleep(0.1)


@pytest.fixture(scope="session")
def edge():
    return Api(EDGE_URL)


@pytest.fixture(scope="session")
def user_api():
    return Api(USER_URL, service="user", internal_url=USER_INTERNAL_URL)


@pytest.fixture(scope="session")
def driver_api():
    return Api(DRIVER_URL, service="driver", internal_url=DRIVER_INTERNAL_URL)


@pytest.fixture(scope="session")
def core_api():
    return Api(CORE_URL, service="core", internal_url=CORE_INTERNAL_URL)


@pytest.fixture(scope="session")
def services(user_api, driver_api, core_api):
    """{"user": Api, "driver": Api, "core": Api} for tests that loop over the services."""
    return {"user": user_api, "driver": driver_api, "core": core_api}


@pytest.fixture(scope="session")
def stack():
    return Stack()


# The cheapest Argon2id parameters libsodium allows (the hashes stay valid Argon2id, and verify
# with whatever parameters they were made with).
CHEAP_ARGON2 = {"ANTAR_ARGON2_OPSLIMIT": "1", "ANTAR_ARGON2_MEMLIMIT": "8192"}


@pytest.fixture
def cheap_argon2_user_service(stack):
    """user-service restarted with CHEAP_ARGON2 for one test, and with the stack's own settings
    after it: for tests that need many sign-ups or logins at once to measure something other than
    the machine's CPU (two hashes at a time, 64 MiB and a few hundred ms each under load). Accounts
    made meanwhile keep their cheap hashes, so their logins stay cheap too."""
    saved = {k: os.environ.get(k) for k in CHEAP_ARGON2}
    os.environ.update(CHEAP_ARGON2)
    try:
        stack.restart("user")
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stack.restart("user")


# Two customers for the user-service tests: signed up on user-service, logged in on core's own
# port, so that the edge's rate limit on sign-ups and logins never throttles them.
@pytest.fixture
def alice(user_api, core_api):
    return new_user(user_api, core_api, name="Alice Wijaya")


@pytest.fixture
def bob(user_api, core_api):
    return new_user(user_api, core_api, name="Bob Santoso")
