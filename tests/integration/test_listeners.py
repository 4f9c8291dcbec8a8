"""The two listeners of every service (docs/reliability.md, "Call graph: why no cycle"): the
public port serves every route outside /internal/ and none under it; the internal port serves
/internal/..., the ops routes and (on core) the token and JWKS endpoints, nothing else. Each
operation's `x-antar-listener` in api/<svc>.yaml says which, and this checks it against the
running services, route by route, so the documents and the binaries cannot drift apart."""

import re

import pytest
import requests

import contract
from conftest import INTERNAL_URLS, PUBLIC_URLS

SERVICES = ("user", "driver", "core")


def _no_route(resp):
    """True when the answer is the router's own 404: the listener has no such route."""
    if resp.status_code != 404:
        return False
    try:
        msg = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return msg.startswith("no route for")


def _operations(svc):
    doc = contract.spec(svc).doc
    for template, item in doc["paths"].items():
        for m, op in item.items():
            if m in contract.METHODS:
                yield m.upper(), template, op.get("x-antar-listener")


@pytest.mark.parametrize("svc", SERVICES)
def test_every_operation_names_its_listener(svc):
    missing = [f"{m} {t}" for m, t, lst in _operations(svc) if lst not in ("public", "internal",
                                                                           "both")]
    assert not missing, f"api/{svc}.yaml: no valid x-antar-listener on {missing}"
    for m, t, lst in _operations(svc):
        if t.startswith("/internal/"):
            assert lst == "internal", f"{m} {t}: /internal/ routes are internal only"


@pytest.mark.parametrize("svc", SERVICES)
def test_listeners_serve_what_the_spec_says(svc):
    checked = 0
    for method, template, lst in _operations(svc):
        path = re.sub(r"\{[^}]+\}", "1", template)
        kw = {"timeout": 10, "allow_redirects": False}
        if method not in ("GET", "DELETE"):
            kw["json"] = {}  # never a valid body: nothing is created
        for where, base in (("public", PUBLIC_URLS[svc]), ("internal", INTERNAL_URLS[svc])):
            r = requests.request(method, base + path, **kw)
            served = lst in (where, "both")
            if served:
                assert not _no_route(r) and r.status_code != 405, (
                    f"{svc} {method} {template} should be served on the {where} listener: "
                    f"{r.status_code} {r.text[:200]}")
            else:
                assert _no_route(r), (f"{svc} {method} {template} must not be served on the "
                                      f"{where} listener: {r.status_code} {r.text[:200]}")
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("svc", SERVICES)
def test_internal_listener_serves_nothing_public(svc):
    base = INTERNAL_URLS[svc]
    for path in ("/openapi.json", "/docs", "/users", "/orders", "/drivers/me", "/fares/estimate",
                 "/csrf", "/nope"):
        r = requests.get(base + path, timeout=10)
        assert _no_route(r), f"{svc} internal {path}: {r.status_code} {r.text[:200]}"


def test_internal_password_grant_cannot_wait_on_a_peer(core_api):
    """Core serves POST /oauth/token on its internal listener for the services' client
    credentials; a password grant there would make an internal thread wait on user-service, and
    is refused rather than risking a cycle (and counted in /metrics)."""
    r = requests.post(INTERNAL_URLS["core"] + "/oauth/token", timeout=10,
                      data={"grant_type": "password", "username": "nobody@example.com",
                            "password": "whatever-password", "client_id": "user-app"})
    assert r.status_code >= 500, r.text
    m = requests.get(INTERNAL_URLS["core"] + "/metrics", timeout=10).text
    assert re.search(r'antar_calls_refused_total\{target="user-service"\} [1-9]', m), m[-2000:]
