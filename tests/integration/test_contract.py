"""Contract tests: the OpenAPI files in api/ are the truth, and these prove the code follows them.

- the routes each binary registers (`antar-<svc> --routes`) equal the paths and methods of its
  OpenAPI file, exactly;
- the files pass the OpenAPI linter (Redocly, config api/redocly.yaml);
- every documented example validates against its schema through contract.py, and contract.py
  rejects bodies that break the contract (so the hook antar_client.py runs on every response
  of the other integration tests is known to bite);
- each running service serves its YAML as /openapi.json, and Swagger UI at /docs with local
  assets only.
"""

import importlib.util
import json
import os
import re
import subprocess
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

import contract

REPO = contract.REPO
SERVICES = contract.SERVICES
WRITE_METHODS = ("post", "put", "patch", "delete")


def _bin_dir():
    d = os.environ.get("ANTAR_BIN_DIR")
    if d:
        return d
    for cand in ("build/bin", "build-release/bin"):
        p = os.path.join(REPO, cand)
        if os.path.isdir(p):
            return p
    return os.path.join(REPO, "build", "bin")


def _load(svc):
    with open(os.path.join(REPO, "api", f"{svc}.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


# ---- the files themselves (no running stack needed) ----------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_routes_equal_spec(svc):
    exe = os.path.join(_bin_dir(), f"antar-{svc}")
    assert os.access(exe, os.X_OK), f"{exe} not built (set ANTAR_BIN_DIR)"
    p = subprocess.run([exe, "--routes"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, ANTAR_LOG_LEVEL="error"))
    assert p.returncode == 0, f"{exe} --routes failed ({p.returncode}): {p.stderr[-2000:]}"
    got = set()
    for line in p.stdout.splitlines():
        if line.strip():
            method, pattern = line.split(None, 1)
            got.add((method.upper(), pattern.strip()))
    want = contract.spec(svc).routes()
    assert got == want, (f"{svc}: registered but not documented in api/{svc}.yaml: "
                         f"{sorted(got - want)}; documented but not registered: {sorted(want - got)}")


def test_lint():
    redocly = os.path.join(REPO, "third_party", "node_modules", ".bin", "redocly")
    assert os.access(redocly, os.X_OK), \
        f"{redocly} missing: run `npm install --prefix third_party` (scripts/setup.sh does)"
    p = subprocess.run([redocly, "lint", "--config", os.path.join(REPO, "api", "redocly.yaml")],
                       cwd=REPO, capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true",
                                NO_COLOR="1"))
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"redocly lint failed:\n{out[-6000:]}"
    assert not re.search(r"You have \d+ warnings?", out), f"redocly lint warnings:\n{out[-6000:]}"


@pytest.mark.parametrize("svc", SERVICES)
def test_spec_conventions(svc):
    """House rules the linter does not know: roles on every operation, both encodings on every
    write that takes a body, the envelope on every JSON response outside the OAuth endpoints."""
    doc = _load(svc)
    assert doc["openapi"] == "3.1.0"
    problems = []
    for template, item in doc["paths"].items():
        for m, op in item.items():
            if m not in contract.METHODS:
                continue
            where = f"{m.upper()} {template}"
            roles = op.get("x-antar-roles")
            if not roles:
                problems.append(f"{where}: no x-antar-roles")
            if template.startswith("/internal/") and roles != ["service"]:
                problems.append(f"{where}: internal route not limited to service tokens")
            rfc = op.get("x-antar-envelope") is False
            body = op.get("requestBody")
            if m in WRITE_METHODS and body and not rfc:
                types = set(body.get("content", {}))
                if types != {"application/json", "application/x-www-form-urlencoded"}:
                    problems.append(f"{where}: request body types {sorted(types)}")
            if op.get("x-antar-csrf") and not any("csrfToken" in s for s in op.get("security", [])):
                problems.append(f"{where}: x-antar-csrf without the csrfToken security scheme")
            for status, resp in op.get("responses", {}).items():
                if rfc or (template.startswith(("/docs", "/openapi.json", "/metrics", "/console/")) and
                       status == "200"):
                    continue
                if op.get("x-antar-stream") and status == "200":
                    # A Server-Sent Events stream (GET /events): text/event-stream, no envelope.
                    if "text/event-stream" not in contract.spec(svc).deref(resp).get("content", {}):
                        problems.append(f"{where} {status}: a stream without text/event-stream")
                    continue
                resp = contract.spec(svc).deref(resp)
                media = resp.get("content", {}).get("application/json")
                if media is None:
                    problems.append(f"{where} {status}: no application/json response")
                    continue
                ref = media["schema"].get("$ref", "")
                if not ref.endswith("Envelope"):
                    problems.append(f"{where} {status}: schema {ref or 'inline'} is not an envelope")
    assert not problems, "\n".join(problems)


def _examples(svc, with_op=False):
    """Every response example of the file (`example`, and each value of `examples`)."""
    doc = _load(svc)
    sp = contract.spec(svc)
    for template, item in doc["paths"].items():
        for m, op in item.items():
            if m not in contract.METHODS:
                continue
            for status, resp in op.get("responses", {}).items():
                resp = sp.deref(resp)
                for media, mt in (resp.get("content") or {}).items():
                    found = [mt["example"]] if "example" in mt else []
                    found += [sp.deref(e)["value"] for e in (mt.get("examples") or {}).values()]
                    for ex in found:
                        if with_op:
                            yield template, m.upper(), int(status), media, ex, op
                        else:
                            yield template, m.upper(), int(status), media, ex


@pytest.mark.parametrize("svc", SERVICES)
def test_examples_pass_contract(svc):
    path_for = lambda t: re.sub(r"\{[^}]+\}", "17", t)  # noqa: E731
    n = 0
    for template, method, status, media, example in _examples(svc):
        contract.validate(svc, method, path_for(template), status, example, media)
        n += 1
    assert n > 20, f"only {n} examples in api/{svc}.yaml"


# ---- error examples versus the error table (docs/errors.md) ---------------------------------


def _gen_errors():
    spec = importlib.util.spec_from_file_location(
        "gen_errors", os.path.join(REPO, "scripts", "gen_errors.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _error_examples(svc):
    for template, method, status, media, ex, op in _examples(svc, with_op=True):
        if isinstance(ex, dict) and isinstance(ex.get("error"), dict) and "code" in ex["error"]:
            yield f"{method} {template} {status}", status, ex["error"], op


def test_errors_md_is_generated():
    gen = _gen_errors()
    with open(os.path.join(REPO, "docs", "errors.md"), encoding="utf-8") as f:
        have = f.read()
    assert have == gen.render(REPO), "docs/errors.md is not scripts/gen_errors.py's output: run it"


@pytest.mark.parametrize("svc", SERVICES)
def test_spec_links_the_error_catalogue(svc):
    doc = _load(svc)
    assert doc.get("externalDocs", {}).get("url", "").endswith("docs/errors.md"), doc.get("externalDocs")
    assert "docs/errors.md" in doc["info"]["description"]


@pytest.mark.parametrize("svc", SERVICES)
def test_error_examples_use_the_table(svc):
    """Every error example's code exists in the error table (or the edge's), with that status."""
    table = _gen_errors().codes_by_status(REPO)
    problems = []
    n = 0
    for where, status, err, _op in _error_examples(svc):
        n += 1
        if err["code"] not in table:
            problems.append(f"{where}: code {err['code']!r} is not in the error table")
        elif status not in table[err["code"]]:
            problems.append(f"{where}: {err['code']} is sent with {sorted(table[err['code']])}, not {status}")
    assert n > 30, f"only {n} error examples in api/{svc}.yaml"
    assert not problems, "\n".join(problems)


def test_error_table_check_bites():
    """The table check above rejects what the issue found in the old examples."""
    table = _gen_errors().codes_by_status(REPO)
    assert "conflict" in table and 409 in table["duplicate"]
    assert "pickup_lat_invalid" not in table
    assert 422 not in table["conflict"] and 409 not in table["invalid_field"]


def _op_fields(sp, op):
    """Names a route takes: body properties, parameters (path, query, header)."""
    names = {sp.deref(p)["name"] for p in op.get("parameters", [])}
    body = op.get("requestBody")
    if body:
        for mt in sp.deref(body).get("content", {}).values():
            schema = sp.deref(mt.get("schema", {}))
            for part in [schema] + [sp.deref(x) for x in schema.get("allOf", [])]:
                names |= set(part.get("properties", {}))
    return names


@pytest.mark.parametrize("svc", SERVICES)
def test_error_examples_fit_their_route(svc):
    """A route's examples are errors that route can answer: no CSRF error on a route that takes no
    CSRF token (every GET among them), and a 422's `field` is one the route takes (an
    `unknown_field` example names one it does not)."""
    sp = contract.spec(svc)
    problems = []
    for where, status, err, op in _error_examples(svc):
        if err["code"] == "csrf_token_invalid" and not op.get("x-antar-csrf"):
            problems.append(f"{where}: csrf_token_invalid on a route without x-antar-csrf")
        if status == 422:
            fields = _op_fields(sp, op)
            f = err.get("field")
            if err["code"] == "unknown_field":
                if f in fields:
                    problems.append(f"{where}: unknown_field names {f}, which the route takes")
            elif f not in fields:
                problems.append(f"{where}: field {f!r} is not one of the route's {sorted(fields)}")
            if f and f not in (err.get("message") or ""):
                problems.append(f"{where}: the message does not name the field {f}")
    assert not problems, "\n".join(problems)


# ---- docs/api: the rendered reference and the request collections --------------------------


def _build_api_docs():
    spec = importlib.util.spec_from_file_location(
        "build_api_docs", os.path.join(REPO, "scripts", "build_api_docs.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("svc", SERVICES)
def test_http_collection_is_generated(svc):
    with open(os.path.join(REPO, "docs", "api", f"{svc}.http"), encoding="utf-8") as f:
        have = f.read()
    assert have == _build_api_docs().render_http(svc), \
        f"docs/api/{svc}.http is stale: run make api-docs"
    ops = sum(1 for item in _load(svc)["paths"].values() for m in item if m in contract.METHODS)
    assert have.count("\n### ") == ops, "not one request per operation"


@pytest.mark.parametrize("svc", SERVICES)
def test_reference_page_is_current_and_offline(svc):
    """The page embeds this spec (so it was built from the current file) and loads nothing from
    outside: every script, stylesheet, image and font it references is a file beside it."""
    path = os.path.join(REPO, "docs", "api", f"{svc}.html")
    with open(path, encoding="utf-8") as f:
        page = f.read()
    m = re.search(r"__redoc_state = (\{.*?\});\s*\n", page, re.S)
    assert m, f"{path}: no embedded Redoc state"
    embedded = json.loads(m.group(1))["spec"]["data"]
    assert embedded == _load(svc), f"{path} was built from another api/{svc}.yaml: run make api-docs"
    refs = re.findall(r"<(?:script|link|img|iframe)\b[^>]*?(?:src|href)=[\"']([^\"']+)", page, re.I)
    refs += re.findall(r"@import\s+url\(([^)]+)\)|url\((?:https?:)?//[^)]+\)", page)
    assert "redoc.standalone.js" in refs, refs
    for ref in filter(None, refs):
        assert not re.match(r"(?:[a-z]+:)?//", ref, re.I), f"{path} loads {ref} from outside"
        assert os.path.isfile(os.path.join(REPO, "docs", "api", ref)), f"{path}: {ref} missing"


ORDER = {
    "id": 1042, "status": "searching", "pickup_lat": -6.1754, "pickup_lng": 106.8272,
    "pickup_address": "Monas", "dropoff_lat": -6.2443, "dropoff_lng": 106.7983,
    "dropoff_address": "Blok M", "vehicle_type": "motorcycle", "distance_m": 9120,
    "duration_s": 1560, "pickup_eta_s": None, "price": 27500, "currency": "IDR",
    "surge_multiplier": 1.0, "driver": None,
    "created_at": "2025-05-14T08:30:12.345Z", "updated_at": "2025-05-14T08:30:12.345Z",
    "accepted_at": None, "picked_up_at": None, "completed_at": None, "cancelled_at": None,
}


def _env(status, result):
    return {"status": status, "result": result, "error": None}


def _err(status, code, field=None):
    return {"status": status, "result": None, "error": {"code": code, "message": "m", "field": field}}


@pytest.mark.parametrize("svc,method,path,status,body", [
    ("user", "GET", "/orders/1042", 200, _env(200, ORDER)),
    ("edge", "GET", "/orders/1042", 200, _env(200, ORDER)),
    ("user", "POST", "/users", 422, _err(422, "missing_field", "email")),
    ("user", "GET", "/no/such/path", 404, _err(404, "not_found")),
    ("user", "DELETE", "/users/me", 405, _err(405, "method_not_allowed")),
    ("core", "POST", "/oauth/token", 400, {"error": "invalid_grant", "error_description": "x"}),
    ("edge", "GET", "/internal/orders/1", 404, _err(404, "not_found")),
])
def test_contract_accepts(svc, method, path, status, body):
    contract.validate(svc, method, path, status, body)


@pytest.mark.parametrize("why,svc,method,path,status,body", [
    ("enum", "user", "GET", "/orders/1042", 200, _env(200, dict(ORDER, status="waiting"))),
    ("float money", "user", "GET", "/orders/1042", 200, _env(200, dict(ORDER, price=27500.5))),
    ("local time", "user", "GET", "/orders/1042", 200,
     _env(200, dict(ORDER, created_at="2025-05-14T15:30:12+07:00"))),
    ("missing key", "user", "GET", "/orders/1042", 200,
     _env(200, {k: v for k, v in ORDER.items() if k != "price"})),
    ("contact data leak", "user", "GET", "/orders/1042", 200, _env(200, dict(ORDER, driver={
        "id": 5, "name": "Budi", "vehicle_type": "car", "plate_number": "B 1 X", "rating": 4.5,
        "phone": "+628123456789"}))),
    ("status mismatch", "user", "GET", "/orders/1042", 200, _env(201, ORDER)),
    ("errors plural", "user", "POST", "/users", 422,
     {"status": 422, "result": None, "errors": [{"code": "x", "message": "m", "field": None}]}),
    ("undocumented status", "user", "POST", "/users", 418, _err(418, "teapot")),
    ("undocumented path", "user", "GET", "/no/such/path", 200, _env(200, {})),
    ("undocumented method", "user", "DELETE", "/users/me", 200, _env(200, {})),
    ("envelope on RFC endpoint", "core", "POST", "/oauth/token", 400, _err(400, "invalid_grant")),
    ("edge answered 200 itself", "edge", "GET", "/internal/orders/1", 200, _env(200, {})),
])
def test_contract_rejects(why, svc, method, path, status, body):
    with pytest.raises(AssertionError):
        contract.validate(svc, method, path, status, body)


# ---- the running services ------------------------------------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_served_openapi_equals_yaml(services, svc):
    r = services[svc].get("/openapi.json", envelope=False)
    assert r.status == 200, r
    assert "json" in r.headers.get("Content-Type", ""), r.headers
    assert r.body == _load(svc), f"{svc}: /openapi.json differs from api/{svc}.yaml (rebuild api_json?)"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.links.append(v)


def _is_local(url, base):
    u = urlsplit(urljoin(base, url))
    return u.scheme in ("http", "https") and u.hostname in ("127.0.0.1", "localhost", "::1",
                                                            urlsplit(base).hostname)


@pytest.mark.parametrize("svc", SERVICES)
def test_docs_are_offline(services, svc):
    api = services[svc]
    base = api.base_url + "/docs"
    r = api.get("/docs", envelope=False)
    assert r.status == 200 and "text/html" in r.headers.get("Content-Type", ""), r
    html = r.text
    parser = _Links()
    parser.feed(html)
    assert parser.links, f"{svc}: /docs references no assets"
    absolute = re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", html)
    outside = [u for u in absolute if not _is_local(u, base)]
    assert not outside, f"{svc}: /docs references outside URLs {outside}"
    for link in parser.links:
        assert _is_local(link, base), f"{svc}: /docs asset {link} is not local"
        path = urlsplit(urljoin(base, link)).path
        a = api.get(path, envelope=False)
        assert a.status == 200, f"{svc}: /docs asset {path} → {a.status}"
    assert "/openapi.json" in html, f"{svc}: /docs does not load /openapi.json"
    js = api.get("/docs/swagger-ui-bundle.js", envelope=False)
    assert js.status == 200 and "javascript" in js.headers.get("Content-Type", ""), js
    assert len(js.text) > 100_000, "swagger-ui-bundle.js is suspiciously small"
    for bad in ("/docs/..%2fpackage.json", "/docs/.hidden", "/docs/nope.exe"):
        b = api.get(bad, envelope=False)
        assert b.status == 404, f"{svc}: {bad} → {b.status}"
