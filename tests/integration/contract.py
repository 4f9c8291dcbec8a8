"""Contract checks: every response the integration tests receive must match api/<service>.yaml.

    validate(service, method, path, status, body, content_type=None)

finds the OpenAPI operation for (method, path) by matching path against the document's templated
paths, picks the documented response for status (exact code, then "4XX"-style ranges, then
"default"), and validates body against its schema with python3-jsonschema's Draft202012Validator.
$refs resolve against the whole OpenAPI document. Any mismatch raises AssertionError with the
route, the status, the failing JSON path and the reason. An undocumented path, method or status
is a failure too, with two exceptions that are the router's documented behaviour (see the info
section of every spec): a path no route matches answers 404 `not_found`, and a method the path does
not take answers 405 `method_not_allowed`, both as an ErrorEnvelope.

service is "user", "driver", "core", or "edge" (the service is then found from the path by the
HAProxy rules of deploy/haproxy.cfg; paths the edge answers itself must be a 404 or 503 ErrorEnvelope).
"""

import functools
import json
import os
import re
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

REPO = os.environ.get("ANTAR_REPO") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
API_DIR = os.path.join(REPO, "api")
SERVICES = ("user", "driver", "core")

# HAProxy edge rules (deploy/haproxy.cfg): a prefix matches the path itself or
# anything below it.
EDGE_ROUTES = (
    (("/oauth", "/.well-known", "/csrf", "/fares"), "core"),
    (("/users", "/orders", "/events"), "user"),
    (("/drivers", "/offers", "/trips"), "driver"),
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# RFC 3339 date-time, and the house rule on top of it: UTC ("Z" or +00:00).
_DATE_TIME = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|\+00:00)$")

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=())
def _is_date_time(value):
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


def edge_service(path):
    """The service the edge routes path to, or None when the edge answers itself."""
    for prefixes, svc in EDGE_ROUTES:
        for p in prefixes:
            if path == p or path.startswith(p + "/"):
                return svc
    return None


def _pointer_escape(token):
    return token.replace("~", "~0").replace("/", "~1")


class Spec:
    """One parsed OpenAPI document with its path matchers and a validator cache."""

    def __init__(self, service, api_dir=API_DIR):
        self.service = service
        self.file = os.path.join(api_dir, f"{service}.yaml")
        with open(self.file, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.uri = f"urn:antar:api:{service}"
        self._validators = {}
        self._matchers = []
        for template in self.doc.get("paths", {}):
            names = re.findall(r"\{([^}/]+)\}", template)
            rx = "^" + re.sub(r"\\\{[^}/]+\\\}", "([^/]*)", re.escape(template)) + "$"
            self._matchers.append((len(names), template, re.compile(rx)))
        # Literal paths win over templated ones ("/users/me" before "/users/{id}").
        self._matchers.sort(key=lambda m: (m[0], m[1]))
        self._resolver_kw = self._make_resolver()

    def _make_resolver(self):
        """A registry (jsonschema ≥ 4.18, `referencing`) or a RefResolver (older Debian
        versions) over the whole document, so that #/components/... refs resolve."""
        try:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
            return {"registry": Registry().with_resource(self.uri, resource)}
        except ImportError:
            from jsonschema import RefResolver

            return {"resolver": RefResolver(base_uri=self.uri, referrer=self.doc)}

    def routes(self):
        """{(METHOD, template)} of every operation in the document."""
        out = set()
        for template, item in self.doc.get("paths", {}).items():
            for m in METHODS:
                if m in item:
                    out.add((m.upper(), template))
        return out

    def match(self, path):
        """(template, path item) for a concrete path, or (None, None)."""
        for _, template, rx in self._matchers:
            if rx.match(path):
                return template, self.doc["paths"][template]
        return None, None

    def deref(self, obj):
        """Follow a local $ref (responses may be references to components/responses)."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if not ref.startswith("#/"):
                raise AssertionError(f"{self.file}: only local $refs are supported, got {ref}")
            node = self.doc
            for tok in ref[2:].split("/"):
                node = node[tok.replace("~1", "/").replace("~0", "~")]
            obj = node
            seen += 1
            if seen > 20:
                raise AssertionError(f"{self.file}: $ref loop at {ref}")
        return obj

    def validator(self, pointer):
        """A Draft 2020-12 validator for the schema at the JSON pointer (into the document)."""
        v = self._validators.get(pointer)
        if v is None:
            v = Draft202012Validator({"$ref": f"{self.uri}#{pointer}"}, format_checker=FORMATS,
                                     **self._resolver_kw)
            self._validators[pointer] = v
        return v

    def schema_errors(self, pointer, instance, limit=5):
        errs = sorted(self.validator(pointer).iter_errors(instance),
                      key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
        out = []
        for e in errs[:limit]:
            where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in e.absolute_path)
            msg = e.message
            if e.context:  # oneOf/anyOf: say why the closest branch failed
                best = best_match(e.context)
                sub = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in best.relative_path)
                msg += f" (closest: {sub or '$'} {best.message})"
            out.append(f"{where}: {msg}")
        return out


@functools.lru_cache(maxsize=None)
def spec(service):
    if service not in SERVICES:
        raise AssertionError(f"contract: unknown service {service!r} (one of {SERVICES} or 'edge')")
    return Spec(service)


def _short(body):
    try:
        text = json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(body)
    return text if len(text) <= 500 else text[:500] + "…"


def _is_error_envelope(body, status, code):
    return (isinstance(body, dict) and set(body) == {"status", "result", "error"}
            and body["status"] == status and body["result"] is None
            and isinstance(body["error"], dict) and body["error"].get("code") == code)


def _router_answer(sp, where, status, body, code):
    """A 404/405 from the router for a path/method the spec does not have."""
    ptr = "/components/schemas/ErrorEnvelope"
    errs = sp.schema_errors(ptr, body)
    if errs or not _is_error_envelope(body, status, code):
        raise AssertionError(f"contract: {where} → {status}: expected the router's {code} "
                             f"ErrorEnvelope; {'; '.join(errs) or 'wrong code/status'}; body {_short(body)}")


def _pick_response(responses, status):
    key = str(status)
    if key in responses:
        return key
    rng = f"{status // 100}XX"
    for k in responses:
        if k.upper() == rng:
            return k
    if "default" in responses:
        return "default"
    return None


def _is_empty(body):
    return body is None or body == "" or body == b""


def validate(service, method, path, status, body, content_type=None):
    """Check one response against the OpenAPI document of service. Raises AssertionError."""
    method = method.upper()
    path = urlsplit(path).path or "/"
    where = f"{service} {method} {path}"
    if service == "edge":
        target = edge_service(path)
        if target is None:
            # The edge answers by itself: unknown prefixes and /internal are 404, and a backend
            # that is down is a 503, both in the house envelope.
            if status not in (404, 503) or spec("core").schema_errors(
                    "/components/schemas/ErrorEnvelope", body):
                raise AssertionError(f"contract: {where} → {status}: the edge routes no service here, so "
                                     f"only a 404/503 ErrorEnvelope is allowed; body {_short(body)}")
            return
        service = target
        where = f"{service} (edge) {method} {path}"
    sp = spec(service)

    template, item = sp.match(path)
    if template is None:
        if status == 404:
            _router_answer(sp, where, status, body, "not_found")
            return
        raise AssertionError(f"contract: {where} → {status}: path not documented in {sp.file}")
    op = item.get(method.lower())
    if op is None:
        if status == 405:
            _router_answer(sp, where, status, body, "method_not_allowed")
            return
        raise AssertionError(f"contract: {where} → {status}: method not documented for {template} "
                             f"in {sp.file}")

    responses = op.get("responses", {})
    key = _pick_response(responses, status)
    if key is None:
        raise AssertionError(f"contract: {where} → {status}: status not documented for {method} {template} "
                             f"(documented: {', '.join(sorted(responses))}); body {_short(body)}")
    resp = sp.deref(responses[key])
    content = resp.get("content") or {}
    if not content:
        if not _is_empty(body):
            raise AssertionError(f"contract: {where} → {status}: documented without a body, got {_short(body)}")
        return

    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and ctype in content:
        media = ctype
    elif "application/json" in content and (not ctype or "json" in ctype):
        media = "application/json"
    elif ctype:
        raise AssertionError(f"contract: {where} → {status}: content type {ctype} not documented "
                             f"(documented: {', '.join(content)})")
    else:
        media = next(iter(content))
    if "json" not in media:
        # HTML pages, static files, metrics text: the status and type are the contract.
        return
    if "schema" not in content[media]:
        return

    # Pointer to the schema inside the document, through a components/responses ref if any.
    raw = responses[key]
    if isinstance(raw, dict) and "$ref" in raw:
        base = raw["$ref"][1:]
    else:
        base = "/paths/" + _pointer_escape(template) + "/" + method.lower() + "/responses/" + \
               _pointer_escape(key)
    pointer = base + "/content/" + _pointer_escape(media) + "/schema"

    errs = sp.schema_errors(pointer, body)
    if errs:
        raise AssertionError(f"contract: {where} → {status}: body does not match {os.path.basename(sp.file)} "
                             f"{method} {template} response {key}:\n  " + "\n  ".join(errs)
                             + f"\n  body: {_short(body)}")
    # The envelope's status repeats the HTTP status (the product contract).
    if isinstance(body, dict) and set(body) == {"status", "result", "error"} and body["status"] != status:
        raise AssertionError(f"contract: {where} → {status}: envelope status {body['status']} "
                             f"!= HTTP status {status}")


def operation(service, method, path):
    """(template, operation) documented for a concrete path, or (None, None)."""
    sp = spec(service)
    template, item = sp.match(urlsplit(path).path)
    if template is None:
        return None, None
    return template, item.get(method.lower())
