"""A tiny HTTP client for the integration tests, and the helpers every test file shares.

Every call has a timeout. Every JSON answer outside the OAuth protocol endpoints is checked
for the house envelope ({"status", "result", "error"}, README "Try it") and handed to the optional
contract hook tests/integration/contract.py: validate(service, method, path, status, body).

    from antar_client import Api, signup_user, login, csrf
    api = Api("http://127.0.0.1:8080")
    u = signup_user(api)                      # dict: the created user + "password"
    tok = login(api, u["email"], u["password"], "user-app")
    r = api.patch("/users/me", json={"name": "Sari"}, token=tok, csrf=csrf(api, tok))
    assert r.status == 200, r
"""

import json as _json
import os
import random
import shutil
import string
import subprocess
import time
import uuid
from urllib.parse import urlsplit

import requests

DEFAULT_TIMEOUT = float(os.environ.get("ANTAR_TEST_HTTP_TIMEOUT", "20"))

# Paths whose answers are not envelopes: the OAuth protocol endpoints (RFC formats), the
# OpenAPI document itself, metrics and the docs UI.
_NON_ENVELOPE_PREFIXES = ("/oauth/", "/.well-known/", "/openapi.json", "/metrics", "/docs")
# Of those, the ones whose JSON answers are still checked against the OpenAPI file.
_RFC_PREFIXES = ("/oauth/", "/.well-known/")

# Edge routing (deploy/haproxy.cfg), used to name the service behind an edge path for the contract hook.
_EDGE_ROUTES = (
    (("/oauth", "/.well-known", "/csrf", "/fares"), "core"),
    (("/users", "/orders"), "user"),
    (("/drivers", "/offers", "/trips"), "driver"),
)

_contract = None
_contract_loaded = False


def _contract_hook():
    """contract.validate, imported on first use; None when contract.py does not exist."""
    global _contract, _contract_loaded
    if not _contract_loaded:
        _contract_loaded = True
        try:
            import contract  # noqa: F401  (written by the docs engineer)

            _contract = getattr(contract, "validate", None)
        except ImportError:
            _contract = None
    return _contract


def service_for_path(path):
    """The service the edge routes path to, or None (the edge answers itself)."""
    for prefixes, svc in _EDGE_ROUTES:
        for p in prefixes:
            if path == p or path.startswith(p + "/"):
                return svc
    return None


class Response:
    """What a test looks at: .status, .body (parsed JSON or None), .headers, .text."""

    def __init__(self, method, url, raw):
        self.method = method
        self.url = url
        self.status = raw.status_code
        self.headers = raw.headers
        self.text = raw.text
        self.body = None
        ctype = raw.headers.get("Content-Type", "")
        if "json" in ctype and raw.content:
            try:
                self.body = raw.json()
            except ValueError:
                self.body = None

    @property
    def result(self):
        return self.body.get("result") if isinstance(self.body, dict) else None

    @property
    def error(self):
        return self.body.get("error") if isinstance(self.body, dict) else None

    def __repr__(self):
        text = self.text if len(self.text) <= 600 else self.text[:600] + "…"
        return f"<{self.method} {self.url} → {self.status} {text}>"


def check_envelope(resp):
    """Assert the envelope shape of the product contract on a JSON response."""
    b = resp.body
    assert isinstance(b, dict), f"not a JSON object: {resp!r}"
    assert set(b) == {"status", "result", "error"}, f"envelope keys {sorted(b)}: {resp!r}"
    assert b["status"] == resp.status, f"envelope status {b['status']} != HTTP {resp.status}: {resp!r}"
    if 200 <= resp.status < 300:
        assert b["error"] is None, f"2xx with an error: {resp!r}"
    else:
        e = b["error"]
        assert isinstance(e, dict), f"{resp.status} without an error object: {resp!r}"
        assert set(e) == {"code", "message", "field"}, f"error keys {sorted(e)}: {resp!r}"
        assert isinstance(e["code"], str) and e["code"], f"error.code: {resp!r}"
        assert isinstance(e["message"], str), f"error.message: {resp!r}"
        assert e["field"] is None or isinstance(e["field"], str), f"error.field: {resp!r}"
        assert b["result"] is None, f"error with a result: {resp!r}"


class Api:
    """One base URL (the edge, or one service's own port). service names it for the contract
    hook ("user", "driver", "core"); None means the edge (the service is found from the path).
    internal_url is the service's internal listener: paths under /internal/ go there, the only
    port that serves them (the public port answers them 404)."""

    def __init__(self, base_url, service=None, timeout=DEFAULT_TIMEOUT, internal_url=None):
        self.base_url = base_url.rstrip("/")
        self.internal_url = internal_url.rstrip("/") if internal_url else None
        self.service = service
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method, path, json=None, form=None, data=None, token=None, csrf=None,
                headers=None, params=None, envelope=True, timeout=None):
        """json: a body sent as application/json; form: a dict sent form-urlencoded; data: raw
        bytes/str sent as is (set Content-Type in headers). envelope=False skips the check."""
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        if csrf:
            h["X-CSRF-Token"] = csrf
        if headers:
            h.update(headers)
        kw = {}
        if json is not None:
            kw["data"] = _json.dumps(json)
            h.setdefault("Content-Type", "application/json")
        elif form is not None:
            kw["data"] = form
        elif data is not None:
            kw["data"] = data
        base = self.base_url
        if self.internal_url and (path == "/internal" or path.startswith("/internal/")):
            base = self.internal_url
        url = base + path
        raw = self.session.request(method, url, headers=h, params=params,
                                   timeout=timeout or self.timeout, allow_redirects=False, **kw)
        resp = Response(method, url, raw)
        bare = urlsplit(path).path
        is_json = "json" in raw.headers.get("Content-Type", "")
        if envelope and is_json and not bare.startswith(_NON_ENVELOPE_PREFIXES):
            check_envelope(resp)
            self._validate(method, bare, resp)
        elif envelope and is_json and bare.startswith(_RFC_PREFIXES):
            # The OAuth endpoints answer in their RFCs' formats, not the envelope; their
            # documented schemas still hold.
            self._validate(method, bare, resp)
        return resp

    def _validate(self, method, bare, resp):
        hook = _contract_hook()
        if hook is not None:
            svc = self.service or service_for_path(bare)
            if svc is not None:
                hook(svc, method, bare, resp.status, resp.body)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---- data helpers -------------------------------------------------------------------------


def unique_email(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:16]}@example.com"


def unique_phone():
    return "+62812" + "".join(random.choice(string.digits) for _ in range(7))


def unique_plate():
    letters = "".join(random.choice(string.ascii_uppercase) for _ in range(3))
    return f"B {random.randint(1000, 9999)} {letters}"


def _password():
    return "pw-" + uuid.uuid4().hex[:12]


def signup_user(api, expect=201, **over):
    """POST /users. Returns the created user (result) with "password" added."""
    body = {"name": "Sari Test", "email": unique_email("u"), "phone": unique_phone(),
            "password": _password()}
    body.update(over)
    r = api.post("/users", json=body)
    assert r.status == expect, r
    out = dict(r.result or {})
    out["password"] = body["password"]
    return out


def signup_driver(api, expect=201, **over):
    """POST /drivers. Returns the created driver (result) with "password" added."""
    body = {"name": "Budi Driver", "email": unique_email("d"), "phone": unique_phone(),
            "password": _password(), "vehicle_type": "motorcycle",
            "plate_number": unique_plate()}
    body.update(over)
    r = api.post("/drivers", json=body)
    assert r.status == expect, r
    out = dict(r.result or {})
    out["password"] = body["password"]
    return out


def token_response(api, username, password, client_id):
    """POST /oauth/token (password grant, form). The raw Response (RFC 6749 JSON)."""
    return api.post("/oauth/token", form={"grant_type": "password", "username": username,
                                          "password": password, "client_id": client_id})


def login(api, username, password, client_id="user-app"):
    """Password grant; returns the access token."""
    r = token_response(api, username, password, client_id)
    assert r.status == 200, r
    assert isinstance(r.body, dict) and r.body.get("access_token"), r
    return r.body["access_token"]


def csrf(api, token):
    """GET /csrf; returns the csrf_token."""
    r = api.get("/csrf", token=token)
    assert r.status == 200, r
    return r.result["csrf_token"]


class Session:
    """A signed-up, logged-in account: .account (result + password), .token, .csrf."""

    def __init__(self, account, token, csrf_token):
        self.account = account
        self.token = token
        self.csrf = csrf_token

    @property
    def id(self):
        return self.account.get("id")


def new_user(api, login_api=None, **over):
    """Sign up a customer on api, log in and fetch a CSRF token on login_api (default: api, the
    edge or core's own port). over: sign-up fields to change."""
    u = signup_user(api, **over)
    via = login_api or api
    tok = login(via, u["email"], u["password"], "user-app")
    return Session(u, tok, csrf(via, tok))


def new_driver(api, login_api=None, **over):
    """As new_user, for a driver (driver-app)."""
    d = signup_driver(api, **over)
    via = login_api or api
    tok = login(via, d["email"], d["password"], "driver-app")
    return Session(d, tok, csrf(via, tok))


# ---- the stack's own secrets --------------------------------------------------------------

REPO = os.environ.get("ANTAR_REPO") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# The secrets.env key of each service client (scripts/stack.sh writes the file).
SERVICE_SECRET_KEYS = {"user-service": "CLIENT_SECRET_USER",
                       "driver-service": "CLIENT_SECRET_DRIVER",
                       "core-service": "CLIENT_SECRET_CORE",
                       "ops": "CLIENT_SECRET_OPS"}


def run_dir():
    """The stack's run folder: $ANTAR_RUN_DIR, else <repo>/.run (stack.sh's default)."""
    return os.environ.get("ANTAR_RUN_DIR") or os.path.join(REPO, ".run")


def stack_secrets():
    """KEY=value lines of <run dir>/secrets.env as a dict; {} when there is no such file."""
    out = {}
    try:
        with open(os.path.join(run_dir(), "secrets.env")) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    out[k] = v
    except OSError:
        pass
    return out


def service_secret(client):
    """The client secret of a service client ("user-service", …): $ANTAR_TEST_<KEY>, else the
    stack's secrets.env; None when neither has it."""
    key = SERVICE_SECRET_KEYS[client]
    return os.environ.get("ANTAR_TEST_" + key) or stack_secrets().get(key)


def service_token(api, client="core-service"):
    """A client_credentials access token of a service client, from core (api: core's port or the
    edge). Fails the calling test when this run has no secret for that client: the tests that
    need one check access control, and a skip there would pass a check that never ran."""
    secret = service_secret(client)
    assert secret, (f"no client secret for {client} available to the tests "
                    f"(ANTAR_TEST_{SERVICE_SECRET_KEYS[client]} or the stack's secrets.env)")
    r = api.post("/oauth/token", form={"grant_type": "client_credentials", "client_id": client,
                                       "client_secret": secret})
    assert r.status == 200, r
    return r.body["access_token"]


def wait_for(fn, timeout=10.0, interval=0.2, what="condition"):
    """Call fn until it returns a truthy value; return it, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def redis_cli(*args):
    """Run redis-cli against the stack's Redis ($ANTAR_REDIS_PORT, else 6380 + the port offset)
    and return its output. Fails the calling test when redis-cli is not installed (setup.sh
    installs it with redis-tools)."""
    assert shutil.which("redis-cli"), "redis-cli is not installed (scripts/setup.sh installs redis-tools)"
    offset = int(os.environ.get("ANTAR_PORT_OFFSET", "0") or 0)
    port = int(os.environ.get("ANTAR_REDIS_PORT") or 6380 + offset)
    # The stack's Redis has no default user: the admin ACL user, password by environment.
    env = dict(os.environ, REDISCLI_AUTH=stack_secrets().get("REDIS_PASSWORD_ADMIN", ""))
    p = subprocess.run(["redis-cli", "--no-auth-warning", "--user", "antar_admin", "-p", str(port),
                        *map(str, args)], capture_output=True, text=True, timeout=10, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()
