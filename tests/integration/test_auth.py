"""Identity and access (docs/security.md) on the real stack: the OAuth 2
endpoints of core, token checks in every service, CSRF, throttling.

Forged tokens are signed with core's own private key, read from
$ANTAR_RUN_DIR/core/keys/current.jwk (a private Ed25519 JWK: kty, crv, x, d, kid), so that
each test changes exactly one thing (expiry, audience, algorithm, ...) of an otherwise valid
token. Client secrets come from $ANTAR_RUN_DIR/secrets.env (scripts/stack.sh writes it).
"""

import base64
import hashlib
import html.parser
import json
import os
import random
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import CORE_URL, EDGE_URL
from antar_client import (csrf, login, run_dir, service_secret, service_token, signup_driver,
                          signup_user, token_response, wait_for)

RUN_DIR = run_dir()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def core_key():
    with open(os.path.join(RUN_DIR, "core", "keys", "current.jwk")) as f:
        jwk = json.load(f)
    return jwk, Ed25519PrivateKey.from_private_bytes(b64d(jwk["d"]))


def unique_ip():
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def claims_for(sub, role, client_id, scope, **over):
    now = int(time.time())
    c = {"iss": issuer(), "sub": sub, "aud": "antar", "exp": now + 600, "iat": now,
         "jti": uuid.uuid4().hex, "client_id": client_id, "scope": scope, "role": role}
    c.update(over)
    return c


_issuer = None


def issuer():
    global _issuer
    if _issuer is None:
        _issuer = requests.get(CORE_URL + "/.well-known/oauth-authorization-server",
                               timeout=10).json()["issuer"]
    return _issuer


def forge(claims, alg="EdDSA", key=None, kid=None, typ="at+jwt"):
    jwk, priv = core_key()
    headers = {"kid": kid or jwk["kid"], "typ": typ}
    return jwt.encode(claims, key if key is not None else priv, algorithm=alg, headers=headers)


def unsigned(claims, kid=None):
    jwk, _ = core_key()
    h = {"alg": "none", "typ": "at+jwt", "kid": kid or jwk["kid"]}
    return b64e(json.dumps(h).encode()) + "." + b64e(json.dumps(claims).encode()) + "."


@pytest.fixture(scope="module")
def customer(edge):
    u = signup_user(edge)
    tok = login(edge, u["email"], u["password"], "user-app")
    return u, tok


@pytest.fixture(scope="module")
def driver(edge):
    d = signup_driver(edge)
    tok = login(edge, d["email"], d["password"], "driver-app")
    return d, tok


def assert_oauth_error(r, status, error):
    assert r.status == status, r
    assert r.headers.get("Cache-Control") == "no-store", r.headers
    assert isinstance(r.body, dict) and r.body.get("error") == error, r
    assert set(r.body) <= {"error", "error_description", "error_uri"}, r


# ---- metadata and keys ------------------------------------------------------------------

def test_metadata_rfc8414(edge):
    r = edge.get("/.well-known/oauth-authorization-server")
    assert r.status == 200, r
    m = r.body
    assert m["issuer"] == issuer()
    for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint",
              "introspection_endpoint"):
        assert m[k].startswith(m["issuer"] + "/"), (k, m[k])
    assert m["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in m["grant_types_supported"]


def test_jwks_has_only_public_ed25519_keys(edge):
    r = edge.get("/.well-known/jwks.json")
    assert r.status == 200, r
    keys = r.body["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k
                        for k in keys), keys
    assert core_key()[0]["kid"] in [k["kid"] for k in keys]
    st = os.stat(os.path.join(RUN_DIR, "core", "keys", "current.jwk"))
    assert st.st_mode & 0o077 == 0, oct(st.st_mode)


# ---- token endpoint ---------------------------------------------------------------------

def test_password_grant_token_and_claims(edge, customer):
    u, _ = customer
    r = token_response(edge, u["email"], u["password"], "user-app")
    assert r.status == 200, r
    assert r.headers.get("Cache-Control") == "no-store"
    b = r.body
    assert b["token_type"] == "Bearer" and 0 < b["expires_in"] <= 900 and b["refresh_token"]
    assert b["scope"] == "user"
    jwk = next(k for k in edge.get("/.well-known/jwks.json").body["keys"]
               if k["kid"] == jwt.get_unverified_header(b["access_token"])["kid"])
    pub = jwt.PyJWK(jwk).key
    c = jwt.decode(b["access_token"], pub, algorithms=["EdDSA"], audience="antar",
                   issuer=issuer())
    assert c["sub"] == f"user:{u['id']}" and c["role"] == "user"
    assert c["client_id"] == "user-app" and c["scope"] == "user" and c["jti"]
    assert c["exp"] - c["iat"] <= 900
    h = jwt.get_unverified_header(b["access_token"])
    assert h["alg"] == "EdDSA" and h["typ"] == "at+jwt"


def test_login_by_phone(edge, customer):
    u, _ = customer
    r = token_response(edge, u["phone"], u["password"], "user-app")
    assert r.status == 200, r


def test_wrong_password_is_invalid_grant(edge, customer):
    u, _ = customer
    r = edge.post("/oauth/token", form={"grant_type": "password", "username": u["email"],
                                        "password": "wrong-password", "client_id": "user-app"},
                  headers={"X-Forwarded-For": unique_ip()})
    assert_oauth_error(r, 400, "invalid_grant")


def test_customer_cannot_use_driver_app_and_driver_not_user_app(edge, customer, driver):
    u, _ = customer
    d, _ = driver
    assert_oauth_error(token_response(edge, u["email"], u["password"], "driver-app"), 400,
                       "invalid_grant")
    assert_oauth_error(token_response(edge, d["email"], d["password"], "user-app"), 400,
                       "invalid_grant")
    r = token_response(edge, d["email"], d["password"], "driver-app")
    assert r.status == 200, r
    assert jwt.decode(r.body["access_token"], options={"verify_signature": False})["role"] == \
        "driver"


def test_token_endpoint_errors(edge):
    r = edge.post("/oauth/token", form={"client_id": "user-app"})
    assert_oauth_error(r, 400, "invalid_request")
    r = edge.post("/oauth/token", form={"grant_type": "magic", "client_id": "user-app"})
    assert_oauth_error(r, 400, "unsupported_grant_type")
    r = edge.post("/oauth/token", form={"grant_type": "password", "client_id": "nobody",
                                        "username": "a", "password": "b"})
    assert_oauth_error(r, 401, "invalid_client")
    r = edge.post("/oauth/token", form={"grant_type": "client_credentials",
                                        "client_id": "user-app"})
    assert_oauth_error(r, 400, "unauthorized_client")
    r = edge.post("/oauth/token", data="grant_type=password&grant_type=client_credentials"
                  "&client_id=user-app",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_oauth_error(r, 400, "invalid_request")
    r = edge.post("/oauth/token", form={"grant_type": "password", "client_id": "user-app",
                                        "username": "x@example.com"})
    assert_oauth_error(r, 400, "invalid_request")


def test_client_credentials_basic_and_post(core_api):
    s = service_secret("driver-service")
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials"},
                      headers={"Authorization": "Basic " + base64.b64encode(
                          f"driver-service:{s}".encode()).decode()})
    assert r.status == 200 and "refresh_token" not in r.body, r
    c = jwt.decode(r.body["access_token"], options={"verify_signature": False})
    assert c["role"] == "service" and c["sub"] == "service:driver-service"
    assert c["scope"] == "internal"
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials",
                                            "client_id": "driver-service", "client_secret": s})
    assert r.status == 200, r
    r = core_api.post("/oauth/token", form={"grant_type": "client_credentials",
                                            "client_id": "driver-service",
                                            "client_secret": s + "x"})
    assert_oauth_error(r, 401, "invalid_client")
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic")
    r = core_api.post("/oauth/token", form={"grant_type": "password", "client_id":
                                            "driver-service", "client_secret": s,
                                            "username": "a", "password": "b"})
    assert_oauth_error(r, 400, "unauthorized_client")


# ---- refresh tokens -----------------------------------------------------------------------

def test_refresh_rotation_and_reuse_revokes_family(edge, customer):
    u, _ = customer
    first = token_response(edge, u["email"], u["password"], "user-app").body
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": "user-app",
                                        "refresh_token": first["refresh_token"]})
    assert r.status == 200, r
    second = r.body
    assert second["refresh_token"] != first["refresh_token"]
    assert edge.get("/csrf", token=second["access_token"]).status == 200
    # The first refresh token again: a reuse. The whole family dies, including the access
    # token issued with the second refresh token.
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": "user-app",
                                        "refresh_token": first["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": "user-app",
                                        "refresh_token": second["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")
    assert edge.get("/csrf", token=second["access_token"]).status == 401


def test_refresh_token_of_another_client_is_refused(edge, customer):
    u, _ = customer
    first = token_response(edge, u["email"], u["password"], "user-app").body
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token",
                                        "client_id": "driver-app",
                                        "refresh_token": first["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")


# ---- token rejections in the services ------------------------------------------------------

def test_missing_token(core_api, user_api):
    r = core_api.get("/csrf")
    assert r.status == 401 and r.error["code"] == "unauthorized", r
    r = user_api.get("/users/me")
    assert r.status == 401, r


@pytest.mark.parametrize("case", ["expired", "wrong_aud", "wrong_iss", "alg_none", "hs256_pub",
                                  "other_key", "tampered", "unknown_kid", "long_life"])
def test_bad_tokens_are_refused_everywhere(case, core_api, user_api, customer):
    u, good = customer
    c = claims_for(f"user:{u['id']}", "user", "user-app", "user")
    jwk, _ = core_key()
    if case == "expired":
        c.update(iat=int(time.time()) - 1200, exp=int(time.time()) - 300)
        tok = forge(c)
    elif case == "wrong_aud":
        tok = forge(dict(c, aud="someone-else"))
    elif case == "wrong_iss":
        tok = forge(dict(c, iss="http://evil.example"))
    elif case == "alg_none":
        tok = unsigned(c)
    elif case == "hs256_pub":
        # PyJWT refuses to use a PEM-looking key for HMAC; the raw x value is the usual trick.
        tok = jwt.encode(c, jwk["x"].encode(), algorithm="HS256",
                         headers={"kid": jwk["kid"], "typ": "at+jwt"})
    elif case == "other_key":
        tok = forge(c, key=Ed25519PrivateKey.generate())
    elif case == "tampered":
        h, p, s = good.split(".")
        body = json.loads(b64d(p))
        body["sub"] = "user:1" if body["sub"] != "user:1" else "user:2"
        tok = ".".join([h, b64e(json.dumps(body).encode()), s])
    elif case == "unknown_kid":
        tok = forge(c, key=Ed25519PrivateKey.generate(), kid="not-a-kid")
    elif case == "long_life":
        tok = forge(dict(c, exp=int(time.time()) + 7200))
    for api, path in ((core_api, "/csrf"), (user_api, "/users/me")):
        r = api.get(path, token=tok)
        assert r.status == 401 and r.error["code"] == "invalid_token", (case, path, r)


def test_forged_with_the_real_key_is_accepted(core_api, user_api, customer):
    """The control for the test above: the same forging path with nothing wrong works, so
    each rejection is caused by the one thing changed."""
    u, _ = customer
    tok = forge(claims_for(f"user:{u['id']}", "user", "user-app", "user"))
    assert core_api.get("/csrf", token=tok).status == 200
    assert user_api.get("/users/me", token=tok).status == 200


def test_wrong_role_is_forbidden(core_api, user_api, driver_api, customer, driver):
    _, utok = customer
    _, dtok = driver
    r = user_api.get("/users/me", token=dtok)
    assert r.status == 403 and r.error["code"] == "forbidden", r
    r = driver_api.get("/drivers/me", token=utok)
    assert r.status == 403, r
    r = core_api.get("/csrf", token=service_token(core_api, "user-service"))
    assert r.status == 403, r


def test_route_scope_is_enforced(core_api, user_api, driver_api, customer, driver):
    """A token with the right role but without the route's scope (docs/contract.md: user routes
    need scope user, driver routes driver, internal routes internal) is refused with 403 before
    anything else — on every service, core's fares and dispatch routes included."""
    u, _ = customer
    d, _ = driver
    utok = forge(claims_for(f"user:{u['id']}", "user", "user-app", "driver"))
    dtok = forge(claims_for(f"driver:{d['id']}", "driver", "driver-app", "user"))
    stok = forge(claims_for("service:user-service", "service", "user-service", "user"))
    trip = {"pickup_lat": -6.2, "pickup_lng": 106.8, "dropoff_lat": -6.21, "dropoff_lng": 106.81,
            "vehicle_type": "motorcycle"}
    cases = [(user_api.get, "/users/me", utok, None), (core_api.post, "/fares/estimate", utok, trip),
             (driver_api.get, "/drivers/me", dtok, None), (driver_api.get, "/offers", dtok, None),
             (core_api.post, "/internal/fares/quote", stok, dict(trip, user_id=1)),
             (core_api.post, "/internal/dispatch/1/cancel", stok, {}),
             (user_api.get, "/internal/orders/1", stok, None),
             (driver_api.get, f"/internal/drivers/{d['id']}", stok, None)]
    for call, path, tok, body in cases:
        r = call(path, token=tok, json=body) if body is not None else call(path, token=tok)
        assert r.status == 403 and r.error["code"] == "forbidden", (path, r)


def _internal_routes(api):
    """(method, path) of every /internal route in the service's own OpenAPI document, ids
    filled in."""
    doc = api.get("/openapi.json", envelope=False).body
    out = []
    for path, ops in doc["paths"].items():
        if path.startswith("/internal/"):
            for method in ops:
                if method in ("get", "post", "put", "patch", "delete"):
                    out.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return out


def test_every_internal_route_takes_only_service_tokens(services, customer, driver):
    """No token: 401; a customer's or a driver's token (CSRF token or not): 403 — on every
    internal route of every service, before the body is even looked at."""
    apps = [(tok, csrf(services["core"], tok)) for tok in (customer[1], driver[1])]
    seen = 0
    for name, api in services.items():
        for method, path in _internal_routes(api):
            seen += 1
            body = {} if method != "GET" else None
            r = api.request(method, path, json=body)
            assert r.status == 401 and r.error["code"] == "unauthorized", (name, path, r)
            for tok, csrf_token in apps:
                r = api.request(method, path, json=body, token=tok, csrf=csrf_token)
                assert r.status == 403 and r.error["code"] == "forbidden", (name, path, r)
    assert seen >= 19, f"only {seen} internal routes found in the OpenAPI documents"


def test_internal_routes_take_only_service_tokens(user_api, core_api, customer):
    _, utok = customer
    body = {"username": "nobody@example.com", "password": "x" * 10}
    r = user_api.post("/internal/credentials/verify", json=body, token=utok)
    assert r.status == 403, r
    r = user_api.post("/internal/credentials/verify", json=body)
    assert r.status == 401, r
    r = user_api.post("/internal/credentials/verify", json=body,
                      token=service_token(core_api, "user-service"))
    assert r.status == 401 and r.error["code"] != "unauthorized", r


def test_revoked_access_token_is_refused(edge, core_api, user_api, customer):
    u, _ = customer
    tok = login(edge, u["email"], u["password"], "user-app")
    assert user_api.get("/users/me", token=tok).status == 200
    r = edge.post("/oauth/revoke", form={"token": tok, "client_id": "user-app"})
    assert r.status == 200, r
    for api, path in ((core_api, "/csrf"), (user_api, "/users/me")):
        r = api.get(path, token=tok)
        assert r.status == 401 and r.error["code"] == "invalid_token", r


def test_revoke_refresh_token(edge, customer):
    u, _ = customer
    b = token_response(edge, u["email"], u["password"], "user-app").body
    assert edge.post("/oauth/revoke", form={"token": b["refresh_token"],
                                            "client_id": "user-app"}).status == 200
    r = edge.post("/oauth/token", form={"grant_type": "refresh_token", "client_id": "user-app",
                                        "refresh_token": b["refresh_token"]})
    assert_oauth_error(r, 400, "invalid_grant")
    # Unknown tokens are not an error (RFC 7009 §2.2).
    assert edge.post("/oauth/revoke", form={"token": "nonsense",
                                            "client_id": "user-app"}).status == 200


def test_introspection_is_for_services_only(core_api, customer):
    u, tok = customer
    s = service_secret("user-service")
    r = core_api.post("/oauth/introspect", form={"token": tok, "client_id": "user-service",
                                                 "client_secret": s})
    assert r.status == 200 and r.body["active"] is True, r
    assert r.body["sub"] == f"user:{u['id']}" and r.body["client_id"] == "user-app"
    r = core_api.post("/oauth/introspect", form={"token": "garbage.x.y",
                                                 "client_id": "user-service",
                                                 "client_secret": s})
    assert r.status == 200 and r.body == {"active": False}, r
    r = core_api.post("/oauth/introspect", form={"token": tok, "client_id": "user-app"})
    assert_oauth_error(r, 401, "invalid_client")


# ---- CSRF ---------------------------------------------------------------------------------

def test_csrf_required_on_writes(user_api, edge, customer):
    u, tok = customer
    other = signup_user(edge)
    other_tok = login(edge, other["email"], other["password"], "user-app")
    r = user_api.patch("/users/me", json={"name": "No Csrf"}, token=tok)
    assert r.status == 403 and r.error["code"] == "csrf_token_invalid", r
    r = user_api.patch("/users/me", json={"name": "Bad Csrf"}, token=tok, csrf="AAAA" * 19)
    assert r.status == 403 and r.error["code"] == "csrf_token_invalid", r
    r = user_api.patch("/users/me", json={"name": "Other Csrf"}, token=tok,
                       csrf=csrf(edge, other_tok))
    assert r.status == 403 and r.error["code"] == "csrf_token_invalid", r
    r = user_api.patch("/users/me", json={"name": "Good Csrf"}, token=tok, csrf=csrf(edge, tok))
    assert r.status == 200 and r.result["name"] == "Good Csrf", r
    # The csrf_token form field works as well as the header.
    r = user_api.patch("/users/me", form={"name": "Form Csrf", "csrf_token": csrf(edge, tok)},
                       token=tok)
    assert r.status == 200 and r.result["name"] == "Form Csrf", r


def test_csrf_token_shape(edge, customer):
    _, tok = customer
    r = edge.get("/csrf", token=tok)
    assert r.status == 200, r
    assert set(r.result) == {"csrf_token", "expires_at"}, r
    assert r.result["expires_at"].endswith("Z")


def test_cannot_read_or_change_another_subjects_data(edge, user_api, customer):
    """A token only ever reaches its own subject: /users/me answers with the caller, and
    another user's order is not found."""
    u, tok = customer
    other = signup_user(edge)
    other_tok = login(edge, other["email"], other["password"], "user-app")
    r = user_api.get("/users/me", token=other_tok)
    assert r.status == 200 and r.result["id"] == other["id"] != u["id"], r
    r = user_api.patch("/users/me", json={"name": "Mine Only"}, token=other_tok,
                       csrf=csrf(edge, other_tok))
    assert r.status == 200
    assert user_api.get("/users/me", token=tok).result["name"] != "Mine Only"
    order = {"pickup_lat": -6.2, "pickup_lng": 106.8, "pickup_address": "A",
             "dropoff_lat": -6.21, "dropoff_lng": 106.82, "dropoff_address": "B",
             "vehicle_type": "motorcycle"}
    r = user_api.post("/orders", json=order, token=other_tok, csrf=csrf(edge, other_tok))
    # The precondition is part of the test: without the other user's order there is nothing to
    # probe, and a security check that silently skips proves nothing.
    assert r.status == 201, f"placing the other user's order failed, so the IDOR check cannot run: {r}"
    oid = r.result["id"]
    r = user_api.get(f"/orders/{oid}", token=tok)
    assert r.status in (403, 404), r
    r = user_api.post(f"/orders/{oid}/cancel", json={}, token=tok, csrf=csrf(edge, tok))
    assert r.status in (403, 404), r


# ---- authorization code + PKCE --------------------------------------------------------------

class _Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = {}
        self.action = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("name") and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")


def pkce():
    verifier = b64e(secrets.token_bytes(32))
    challenge = b64e(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def _edge_retry(fn):
    """The edge rate-limits POSTs to /oauth per address; wait out its 429 once."""
    r = fn()
    if r.status_code == 429 and "Location" not in r.headers and \
            r.headers.get("Content-Type", "").startswith("application/json") and \
            "status" in r.json():
        time.sleep(min(int(r.headers.get("Retry-After", "10")), 11))
        r = fn()
    return r


def authorize(sess, account, client_id="user-app", redirect_uri=None, state="st-123",
              challenge=None, base=CORE_URL):
    """Drive the login page as an app's browser does. Returns (response of the POST, verifier,
    redirect_uri). base: the edge, or core's own port (the edge rate-limits /oauth)."""
    redirect_uri = redirect_uri or f"http://127.0.0.1:{random.randint(20000, 60000)}/callback"
    verifier, ch = pkce()
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "code_challenge": challenge or ch, "code_challenge_method": "S256", "state": state}
    r = sess.get(base + "/oauth/authorize", params=q, timeout=10, allow_redirects=False)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"], r.text
    form = _Form()
    form.feed(r.text)
    assert form.action == "/oauth/authorize"
    data = dict(form.fields, username=account["email"], password=account["password"])
    r = _edge_retry(lambda: sess.post(base + form.action, data=data, timeout=10,
                                      allow_redirects=False))
    return r, verifier, redirect_uri


def exchange(code, verifier, redirect_uri, client_id="user-app", base=CORE_URL):
    return _edge_retry(lambda: requests.post(base + "/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": redirect_uri, "client_id": client_id}, timeout=10))


def test_authorization_code_flow_like_an_app(customer):
    u, _ = customer
    sess = requests.Session()
    r, verifier, redirect_uri = authorize(sess, u, state="xyz <&> 42", base=EDGE_URL)
    assert r.status_code in (302, 303), r.text
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == redirect_uri
    q = parse_qs(loc.query)
    assert q["state"] == ["xyz <&> 42"] and q["iss"] == [issuer()]
    t = exchange(q["code"][0], verifier, redirect_uri, base=EDGE_URL)
    assert t.status_code == 200, t.text
    assert t.headers["Cache-Control"] == "no-store"
    body = t.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    c = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert c["sub"] == f"user:{u['id']}" and c["client_id"] == "user-app"
    # The code is single-use.
    t = exchange(q["code"][0], verifier, redirect_uri, base=EDGE_URL)
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant", t.text


def test_custom_scheme_redirect_for_driver_app(driver):
    d, _ = driver
    r, verifier, uri = authorize(requests.Session(), d, client_id="driver-app",
                                 redirect_uri="antar://callback")
    assert r.status_code in (302, 303) and r.headers["Location"].startswith("antar://callback?")
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    t = exchange(code, verifier, uri, client_id="driver-app")
    assert t.status_code == 200, t.text


def test_pkce_wrong_verifier(customer):
    u, _ = customer
    r, verifier, uri = authorize(requests.Session(), u)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    t = exchange(code, pkce()[0], uri)
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant", t.text
    # A failed attempt spends the code.
    t = exchange(code, verifier, uri)
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant", t.text


def test_code_with_other_redirect_uri_or_client(customer):
    u, _ = customer
    r, verifier, uri = authorize(requests.Session(), u)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    t = exchange(code, verifier, "http://127.0.0.1:1/callback")
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant", t.text
    r, verifier, uri = authorize(requests.Session(), u)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    t = exchange(code, verifier, uri, client_id="driver-app")
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant", t.text


@pytest.mark.parametrize("uri", ["https://evil.example/callback", "http://127.0.0.1:80/other",
                                 "http://localhost:8080/callback", "antar://callback/../x",
                                 "http://127.0.0.1:99999/callback", ""])
def test_unregistered_redirect_uri_is_never_redirected_to(uri):
    _, ch = pkce()
    r = requests.get(EDGE_URL + "/oauth/authorize", params={
        "response_type": "code", "client_id": "user-app", "redirect_uri": uri,
        "code_challenge": ch, "code_challenge_method": "S256", "state": "s"},
        timeout=10, allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers, r.text


def test_plain_pkce_and_missing_challenge_are_refused():
    uri = "http://127.0.0.1:5555/callback"
    for q in ({"code_challenge": "a" * 43, "code_challenge_method": "plain"},
              {"code_challenge_method": "S256"}):
        params = dict(q, response_type="code", client_id="user-app", redirect_uri=uri, state="s")
        r = requests.get(CORE_URL + "/oauth/authorize", params=params, timeout=10,
                         allow_redirects=False)
        assert r.status_code in (302, 303), r.text
        qs = parse_qs(urlsplit(r.headers["Location"]).query)
        assert qs["error"] == ["invalid_request"] and qs["state"] == ["s"]


def test_login_page_escapes_input_and_resists_csrf(customer):
    u, _ = customer
    _, ch = pkce()
    evil = '"><script>alert(1)</script>'
    r = requests.get(EDGE_URL + "/oauth/authorize", params={
        "response_type": "code", "client_id": "user-app",
        "redirect_uri": "antar://callback", "code_challenge": ch,
        "code_challenge_method": "S256", "state": evil}, timeout=10)
    assert r.status_code == 200 and "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert r.headers.get("X-Frame-Options") == "DENY"
    form = _Form()
    form.feed(r.text)
    data = dict(form.fields, username=u["email"], password=u["password"])
    # The same form posted without the login cookie (from another site): refused.
    r = requests.post(CORE_URL + "/oauth/authorize", data=data, timeout=10,
                      allow_redirects=False)
    assert r.status_code == 403 and "Location" not in r.headers, r.text


def test_login_page_wrong_password_shows_form_again(customer):
    u, _ = customer
    r, _, _ = authorize(requests.Session(), dict(u, password="wrong-password"))
    assert r.status_code == 401 and "Location" not in r.headers
    assert "Wrong email/phone or password" in r.text


# ---- throttling -----------------------------------------------------------------------------

def test_repeated_wrong_passwords_are_throttled_per_account_and_address(core_api):
    """The first ANTAR_LOGIN_FREE_FAILS (3) guesses from one address at one account go through;
    the next one at once is 429 with Retry-After (issue 10: progressive delays, no lock-out)."""
    edge = core_api  # the edge's own rate limit would answer first
    name = unique_ip().replace(".", "") + "@example.com"
    ip = unique_ip()
    form = {"grant_type": "password", "username": name, "password": "wrong-password",
            "client_id": "user-app"}
    for _ in range(3):
        r = edge.post("/oauth/token", form=form, headers={"X-Forwarded-For": ip})
        assert_oauth_error(r, 400, "invalid_grant")
    r = edge.post("/oauth/token", form=form, headers={"X-Forwarded-For": ip})
    assert_oauth_error(r, 429, "invalid_grant")
    assert int(r.headers["Retry-After"]) > 0
    # Another address is not held back by this one's failures.
    r = edge.post("/oauth/token", form=form, headers={"X-Forwarded-For": unique_ip()})
    assert_oauth_error(r, 400, "invalid_grant")


def test_repeated_wrong_passwords_are_slowed_per_address(core_api):
    """Past ANTAR_LOGIN_IP_SOFT (50) failures from one address, that address gets one attempt
    per ANTAR_LOGIN_IP_GAP_MS: a burst sees 429 with a short Retry-After, never a lock."""
    from concurrent.futures import ThreadPoolExecutor
    ip = unique_ip()

    def guess(i):
        return core_api.post("/oauth/token", form={
            "grant_type": "password", "username": f"nobody{i}-{uuid.uuid4().hex[:6]}@example.com",
            "password": "wrong-password", "client_id": "user-app"},
            headers={"X-Forwarded-For": ip})

    failed = 0
    for i in range(120):
        r = guess(i)
        assert r.status in (400, 429), r
        if r.status == 429:
            assert 0 < int(r.headers["Retry-After"]) <= 1, r.headers
            time.sleep(1)
        else:
            failed += 1
        if failed >= 52:
            break
    with ThreadPoolExecutor(4) as ex:
        burst = list(ex.map(guess, range(1000, 1004)))
    slowed = [r for r in burst if r.status == 429]
    assert slowed, burst
    assert all(0 < int(r.headers["Retry-After"]) <= 1 for r in slowed)
    time.sleep(1.1)
    assert guess(2000).status == 400  # slowed, not locked


# ---- the password grant can be switched off ---------------------------------------------------

@pytest.mark.disruptive
def test_password_grant_switch(stack, core_api, customer):
    edge = core_api  # straight to core: the edge may not have seen core come back yet
    u, _ = customer
    os.environ["ANTAR_PASSWORD_GRANT"] = "0"
    try:
        stack.restart("core")
        r = token_response(edge, u["email"], u["password"], "user-app")
        assert_oauth_error(r, 400, "unsupported_grant_type")
        m = edge.get("/.well-known/oauth-authorization-server").body
        assert "password" not in m["grant_types_supported"]
    finally:
        del os.environ["ANTAR_PASSWORD_GRANT"]
        stack.restart("core")
    assert token_response(edge, u["email"], u["password"], "user-app").status == 200


@pytest.mark.disruptive
def test_key_rotation_publishes_ahead_and_keeps_old_tokens_valid(stack, core_api, user_api,
                                                                  customer):
    """With a 2 s key lifetime core publishes the next key, signs with it 10 s later, and keeps
    the old public key: every token, old or new, is accepted at once by every service."""
    u, _ = customer

    def fresh_token():
        r = token_response(core_api, u["email"], u["password"], "user-app")
        assert r.status == 200, r
        return r.body["access_token"]

    os.environ["ANTAR_KEY_MAX_AGE_S"] = "2"
    try:
        stack.restart("core")
        old = fresh_token()
        k_old = jwt.get_unverified_header(old)["kid"]
        kids = [k["kid"] for k in core_api.get("/.well-known/jwks.json").body["keys"]]
        assert len(kids) >= 2 and k_old in kids, kids  # the next key is already published
        new = wait_for(lambda: (lambda t: t if jwt.get_unverified_header(t)["kid"] != k_old
                                else None)(fresh_token()), timeout=20, interval=1,
                       what="a token signed with the next key")
        k_new = jwt.get_unverified_header(new)["kid"]
        kids = [k["kid"] for k in core_api.get("/.well-known/jwks.json").body["keys"]]
        assert k_old in kids and k_new in kids, kids
        assert core_key()[0]["kid"] == k_new
        for tok in (old, new):
            assert user_api.get("/users/me", token=tok).status == 200
            assert core_api.get("/csrf", token=tok).status == 200
    finally:
        del os.environ["ANTAR_KEY_MAX_AGE_S"]
        stack.restart("core")
