"""Fixtures for the integration tests: they talk HTTP to the real stack that scripts/test.sh
(or `make up`) started. URLs come from the environment test.sh exports; without it, the
default ports plus ANTAR_PORT_OFFSET are used."""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from antar_client import (  # noqa: E402,F401  (re-exported for the test files)
    Api, Response, Session, check_envelope, csrf, login, new_driver, new_user, service_for_path,
    signup_driver, signup_user, token_response, unique_email, unique_phone, unique_plate,
    wait_for)

REPO = os.environ.get("ANTAR_REPO") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
OFFSET = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)


def _url(name, port):
    return os.environ.get(name) or f"http://127.0.0.1:{port + OFFSET}"


EDGE_URL = _url("ANTAR_EDGE_URL", 8080)
USER_URL = _url("ANTAR_USER_URL", 8001)
DRIVER_URL = _url("ANTAR_DRIVER_URL", 8002)
CORE_URL = _url("ANTAR_CORE_URL", 8003)


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

    def stop(self, component):
        self._run("stop", component)

    def start(self, component):
        self._run("start", component)

    def restart(self, component):
        self._run("restart", component)


@pytest.fixture(scope="session")
def edge():
    return Api(EDGE_URL)


@pytest.fixture(scope="session")
def user_api():
    return Api(USER_URL, service="user")


@pytest.fixture(scope="session")
def driver_api():
    return Api(DRIVER_URL, service="driver")


@pytest.fixture(scope="session")
def core_api():
    return Api(CORE_URL, service="core")


@pytest.fixture(scope="session")
def services(user_api, driver_api, core_api):
    """{"user": Api, "driver": Api, "core": Api} for tests that loop over the services."""
    return {"user": user_api, "driver": driver_api, "core": core_api}


@pytest.fixture(scope="session")
def stack():
    return Stack()
