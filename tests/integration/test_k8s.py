"""deploy/k8s and .gitlab-ci.yml: linted, and checked against what the code really serves.

No cluster and no running stack are needed (a few seconds in all). yamllint (Debian's, from
scripts/setup.sh) with the repository's .yamllint must pass without a warning. Then the
manifests are read with PyYAML and held to the services' own sources of truth:

- every service Deployment's readiness and liveness probes ask GET routes of that service's
  OpenAPI file (api/<svc>.yaml), on a listener that serves them (x-antar-listener); liveness
  asks a route that documents no 503 (it must not depend on MariaDB or Redis), readiness one
  that does;
- its container ports are the service's real ports (scripts/stack.sh's bases), and ANTAR_PORT /
  ANTAR_INTERNAL_PORT say the same; every ANTAR_* variable it is given is one the code reads;
- resource requests (CPU and memory) and a memory limit are set; the pods run as non-root on
  a read-only root file system with every capability dropped; the grace period outlasts the
  services' drain (ANTAR_DRAIN_S);
- every Kubernetes object has only fields its API defines, of the right types, with the
  required ones present (the models of Debian's python3-kubernetes; the mariadb-operator
  objects are not covered: no schema of theirs is installed);
- every Deployment has a CPU HorizontalPodAutoscaler (min 2) and a PodDisruptionBudget
  (minAvailable 1) that selects its pods;
- the NetworkPolicies deny by default, admit each internal listener (9001-9003) from exactly
  the services that call it (the table in docs/communication.md), the public ports from the
  edge only (and Prometheus), MariaDB and Redis from the services only;
- the edge's HAProxy file has deploy/haproxy.cfg's frontend rules line for line, `haproxy -c`
  accepts it, and it has a server slot for every pod the HPA may start;
- the Redis ACL comes from one file (deploy/redis-acl.sh) for both deployments;
- .gitlab-ci.yml runs `make test` on debian:12 with a 90-minute limit and keeps the JUnit files
  scripts/test.sh writes.

Each checker returns a list of problems; the rejection tests feed it small bad manifests and
require the problem to be named, so a checker that stopped looking would fail here.
"""

import copy
import glob
import os
import re
import shutil
import subprocess
import tempfile

import kubernetes.client as k8s_models
import pytest
import yaml

import contract

REPO = contract.REPO
K8S = os.path.join(REPO, "deploy", "k8s")
SERVICES = ("user", "driver", "core")


# ---- the sources of truth --------------------------------------------------------------------


def _read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def real_ports():
    """{svc: (public, internal)} from scripts/stack.sh's base ports (offset 0)."""
    text = _read("scripts", "stack.sh")
    ports = {}
    for svc in SERVICES:
        pub = re.search(rf"^{svc.upper()}_PORT=\$\(\((\d+) \+ OFF\)\)", text, re.M)
        internal = re.search(rf"^{svc.upper()}_IPORT=\$\(\((\d+) \+ OFF\)\)", text, re.M)
        assert pub and internal, f"scripts/stack.sh no longer defines {svc}'s ports"
        ports[svc] = (int(pub.group(1)), int(internal.group(1)))
    return ports


def spec_routes(svc):
    """{path: {"listener": public|internal|both, "get": bool, "has_503": bool}}."""
    with open(os.path.join(REPO, "api", f"{svc}.yaml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    out = {}
    for path, item in doc["paths"].items():
        get = item.get("get")
        if not get:
            continue
        out[path] = {"listener": get.get("x-antar-listener", "public"),
                     "has_503": "503" in (get.get("responses") or {})}
    return out


def variables_read_by_code():
    """Every ANTAR_* name that appears as a string in lib/, services/ or include/."""
    names = set()
    for pattern in ("lib/*.c", "lib/*.h", "services/*/*.c", "services/*/*.h", "include/antar/*.h"):
        for path in glob.glob(os.path.join(REPO, pattern)):
            with open(path, encoding="utf-8", errors="replace") as f:
                names.update(re.findall(r'"(ANTAR_[A-Z0-9_]+)"', f.read()))
    # config.c builds the per-service forms (ANTAR_<SVC>_PORT …) at run time.
    return names


def internal_callers():
    """{callee: {callers}} from docs/communication.md's table of service-to-service calls."""
    graph = {svc: set() for svc in SERVICES}
    for line in _read("docs", "communication.md").splitlines():
        m = re.match(r"^\| ([a-z, ]+) → ([a-z]+) \| `(GET|POST|PUT|DELETE) ([^`]+)`", line)
        if not m:
            continue
        callers = {c.strip() for c in m.group(1).split(",")}
        callee = m.group(2)
        if callee in graph and callers <= set(SERVICES):
            graph[callee] |= callers
    return graph


def load_manifests(directory=K8S):
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if d:
                    d["_file"] = os.path.basename(path)
                    docs.append(d)
    return docs


def kind(docs, k):
    return [d for d in docs if d.get("kind") == k]


def named(docs, k, name):
    found = [d for d in kind(docs, k) if d["metadata"]["name"] == name]
    return found[0] if found else None


def pod_labels(dep):
    return dep["spec"]["template"]["metadata"].get("labels", {})


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def common_config(docs):
    cm = named(docs, "ConfigMap", "antar-common")
    return cm["data"] if cm else {}


# ---- checkers: each returns a list of problems -------------------------------------------------


def check_probes(dep, svc, routes, ports):
    problems = []
    c = dep["spec"]["template"]["spec"]["containers"][0]
    named_ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    pub, internal = ports[svc]
    for probe_name in ("livenessProbe", "readinessProbe"):
        probe = c.get(probe_name)
        if not probe or "httpGet" not in probe:
            problems.append(f"{svc}: no HTTP {probe_name}")
            continue
        path = probe["httpGet"].get("path")
        port = probe["httpGet"].get("port")
        port = named_ports.get(port, port)
        route = routes.get(path)
        if route is None:
            problems.append(f"{svc}: {probe_name} path {path} is not a GET route of api/{svc}.yaml")
            continue
        listener = {pub: "public", internal: "internal"}.get(port)
        if listener is None:
            problems.append(f"{svc}: {probe_name} port {port} is neither listener")
        elif route["listener"] not in (listener, "both"):
            problems.append(f"{svc}: {probe_name} asks {path} on the {listener} listener, "
                            f"which serves it only on {route['listener']}")
        if probe_name == "livenessProbe" and route["has_503"]:
            problems.append(f"{svc}: livenessProbe {path} can answer 503 (depends on its stores)")
        if probe_name == "readinessProbe" and not route["has_503"]:
            problems.append(f"{svc}: readinessProbe {path} never answers 503 (checks nothing)")
    return problems


def check_ports_and_env(dep, svc, ports, known_vars, config):
    problems = []
    c = dep["spec"]["template"]["spec"]["containers"][0]
    got = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    pub, internal = ports[svc]
    if got != {"http": pub, "internal": internal}:
        problems.append(f"{svc}: container ports {got}, the service listens on {pub} and {internal}")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    if env.get("ANTAR_PORT") != str(pub) or env.get("ANTAR_INTERNAL_PORT") != str(internal):
        problems.append(f"{svc}: ANTAR_PORT/ANTAR_INTERNAL_PORT do not say {pub}/{internal}")
    for name in list(env) + list(config):
        if name.startswith("ANTAR_") and name not in known_vars:
            problems.append(f"{svc}: {name} is read by no code")
    if config.get("ANTAR_HOST", "127.0.0.1").startswith("127."):
        problems.append(f"{svc}: ANTAR_HOST is loopback: nothing outside the pod reaches it")
    return problems


def check_pod_hardening(dep, name, config):
    problems = []
    spec = dep["spec"]["template"]["spec"]
    psc = spec.get("securityContext", {})
    if not psc.get("runAsNonRoot"):
        problems.append(f"{name}: runAsNonRoot not set")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: no RuntimeDefault seccomp profile")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            problems.append(f"{name}: root file system writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation allowed")
        if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
            problems.append(f"{name}: capabilities not all dropped")
        res = c.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        if not req.get("cpu") or not req.get("memory"):
            problems.append(f"{name}: CPU and memory requests must be set")
        if not lim.get("memory"):
            problems.append(f"{name}: no memory limit")
        elif req.get("memory") and _bytes(req["memory"]) > _bytes(lim["memory"]):
            problems.append(f"{name}: memory request above its limit")
    if name in SERVICES:
        drain = int(config.get("ANTAR_DRAIN_S", "10"))
        dereg_s = int(config.get("ANTAR_DEREGISTER_MS", "1500")) / 1000
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace <= drain:
            problems.append(f"{name}: terminationGracePeriodSeconds {grace} does not outlast "
                            f"ANTAR_DRAIN_S {drain}")
        if dereg_s >= drain:
            problems.append(f"{name}: ANTAR_DEREGISTER_MS leaves no time to drain")
    if not spec.get("topologySpreadConstraints") and not spec.get("affinity"):
        problems.append(f"{name}: no topology spread or anti-affinity")
    return problems


# The Kubernetes API's own models (python3-kubernetes 22.6 = API 1.22): autoscaling/v2 is
# checked against v2beta2, whose fields are the same for what the manifests use.
MODEL_PREFIX = {"v1": "V1", "v2": "V2beta2"}


def check_schema(doc):
    """Unknown fields, wrong types and missing required fields of one object, as the API
    server would refuse them."""
    problems = []
    doc = {k: v for k, v in doc.items() if not k.startswith("_")}
    version = doc.get("apiVersion", "").split("/")[-1]
    cls = MODEL_PREFIX.get(version, "?") + doc.get("kind", "?")
    if not hasattr(k8s_models, cls):
        return [f"{doc.get('kind')} {doc.get('apiVersion')}: no such Kubernetes kind"]
    _build(cls, doc, f"{doc['kind']}/{doc['metadata'].get('name')}", problems)
    return problems


def _build(type_str, value, path, problems):
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", type_str)
    if m:
        if not isinstance(value, list):
            problems.append(f"{path}: a list expected")
            return
        for i, v in enumerate(value):
            _build(m.group(1), v, f"{path}[{i}]", problems)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", type_str)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{path}: a mapping expected")
            return
        for k, v in value.items():
            _build(m.group(1), v, f"{path}.{k}", problems)
        return
    plain = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    if type_str in plain:
        if not isinstance(value, plain[type_str]) or \
                (type_str == "int" and isinstance(value, bool)):
            problems.append(f"{path}: {type_str} expected, not {type(value).__name__}")
        return
    if type_str == "object":  # IntOrString and free-form fields
        return
    cls = getattr(k8s_models, type_str)
    if not isinstance(value, dict):
        problems.append(f"{path}: an object ({type_str}) expected")
        return
    by_json = {v: k for k, v in cls.attribute_map.items()}
    kwargs = {}
    for key, v in value.items():
        attr = by_json.get(key)
        if attr is None:
            problems.append(f"{path}.{key}: no such field in {type_str}")
            continue
        _build(cls.openapi_types[attr], v, f"{path}.{key}", problems)
        kwargs[attr] = v
    try:  # the models refuse a missing required field
        cls(**kwargs)
    except ValueError as e:
        problems.append(f"{path}: {e}")


def _bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(q))
    assert m, f"unexpected quantity {q}"
    return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m.group(2)]


def check_hpa_pdb(docs, dep):
    problems = []
    name = dep["metadata"]["name"]
    hpas = [h for h in kind(docs, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"]["name"] == name]
    if not hpas:
        problems.append(f"{name}: no HorizontalPodAutoscaler")
    for h in hpas:
        if h["spec"].get("minReplicas", 1) < 2:
            problems.append(f"{name}: HPA minReplicas below 2")
        cpu = [m for m in h["spec"].get("metrics", [])
               if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
        if not cpu:
            problems.append(f"{name}: HPA does not scale on CPU")
    pdbs = [p for p in kind(docs, "PodDisruptionBudget")
            if selects(p["spec"]["selector"], pod_labels(dep))]
    if not pdbs:
        problems.append(f"{name}: no PodDisruptionBudget selects its pods")
    for p in pdbs:
        if p["spec"].get("minAvailable") != 1:
            problems.append(f"{name}: PDB minAvailable is not 1")
    return problems


def _peers_admitted(docs, pod_lbls, port):
    """Who the policies admit to (pod, port): a set of app names, or "*" entries for
    namespace-wide, ipBlock or unrestricted sources."""
    who = set()
    for pol in kind(docs, "NetworkPolicy"):
        if not selects(pol["spec"]["podSelector"], pod_lbls):
            continue
        for rule in pol["spec"].get("ingress", []) or []:
            rule_ports = [p.get("port") for p in rule.get("ports", [])]
            if rule_ports and port not in rule_ports:
                continue
            sources = rule.get("from")
            if not sources:
                who.add("*anyone")
                continue
            for src in sources:
                if "ipBlock" in src:
                    who.add("*ipBlock")
                elif "namespaceSelector" in src:
                    who.add("*namespace:" + ",".join(
                        f"{k}={v}" for k, v in
                        sorted((src["namespaceSelector"].get("matchLabels") or {}).items())))
                else:
                    ml = src.get("podSelector", {}).get("matchLabels") or {}
                    who.add(ml.get("app.kubernetes.io/name")
                            or ml.get("app.kubernetes.io/instance")
                            or ("services" if ml.get("app.kubernetes.io/component") == "service"
                                else "*pods:" + repr(sorted(ml.items()))))
    return who


def _egress_to_internal(docs, pod_lbls, ports):
    """The services whose internal listener the policies let this pod call."""
    internal = {p[1]: svc for svc, p in ports.items()}
    out = set()
    for pol in kind(docs, "NetworkPolicy"):
        if not selects(pol["spec"]["podSelector"], pod_lbls):
            continue
        for rule in pol["spec"].get("egress", []) or []:
            for p in rule.get("ports", []):
                if p.get("port") not in internal:
                    continue
                for dst in rule.get("to") or [{"podSelector": {}}]:
                    ml = dst.get("podSelector", {}).get("matchLabels") or {}
                    out.add(ml.get("app.kubernetes.io/name", "*any") + f":{p['port']}")
    return out


def check_network(docs, ports, callers):
    problems = []
    deny = [p for p in kind(docs, "NetworkPolicy")
            if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}]
    if not deny:
        problems.append("no default-deny NetworkPolicy (ingress and egress)")
    for svc in SERVICES:
        dep = named(docs, "Deployment", svc)
        if not dep:
            problems.append(f"{svc}: no Deployment")
            continue
        lbls = pod_labels(dep)
        pub, internal = ports[svc]
        got = _peers_admitted(docs, lbls, internal)
        if got != callers[svc]:
            problems.append(f"{svc}: internal port {internal} admits {sorted(got)}, "
                            f"its callers are {sorted(callers[svc])}")
        got = _peers_admitted(docs, lbls, pub)
        if not got or not got <= {"edge", "*namespace:antar.id/monitoring=true"}:
            problems.append(f"{svc}: public port {pub} admits {sorted(got)}, not only the edge")
        want = {f"{c}:{ports[c][1]}" for c in SERVICES if svc in callers[c]}
        got = _egress_to_internal(docs, lbls, ports)
        if got != want:
            problems.append(f"{svc}: may call internal listeners {sorted(got)}, "
                            f"it calls {sorted(want)}")
    for store, port in (("mariadb", 3306), ("redis", 6379), ("sentinel", 26379)):
        targets = [d for d in kind(docs, "StatefulSet") if d["metadata"]["name"] == store]
        lbls = (pod_labels(targets[0]) if targets
                else {"app.kubernetes.io/instance": "mariadb-galera"})
        got = _peers_admitted(docs, lbls, port)
        allowed = {"services", "redis", "sentinel", "mariadb-galera",
                   "*namespace:kubernetes.io/metadata.name=mariadb-operator"}
        if "services" not in got or not got <= allowed or "edge" in got:
            problems.append(f"{store}: port {port} admits {sorted(got)}")
    return problems


def frontend_lines(cfg_text):
    """The `frontend edge` section's directives, comments and bind lines left out."""
    lines, inside = [], False
    for raw in cfg_text.splitlines():
        line = raw.strip()
        if re.match(r"^(frontend|backend|defaults|global|resolvers|http-errors)\b", line):
            inside = line == "frontend edge"
            continue
        if inside and line and not line.startswith("#") and not line.startswith("bind "):
            lines.append(line)
    return lines


def edge_config(docs):
    return named(docs, "ConfigMap", "edge-haproxy")["data"]["haproxy.cfg"]


# ---- the tests --------------------------------------------------------------------------------


def _yamllint(*paths):
    return subprocess.run(["yamllint", "--strict", "-f", "parsable",
                           "-c", os.path.join(REPO, ".yamllint"), *paths],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_yamllint_passes():
    p = _yamllint("deploy/k8s", ".gitlab-ci.yml")
    assert p.returncode == 0, f"yamllint:\n{p.stdout}{p.stderr}"


def test_yamllint_rejects_a_bad_file():
    with tempfile.TemporaryDirectory() as d:
        bad = os.path.join(d, "bad.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("kind: Service\nkind: Deployment\nmetadata:\n    name:  x \n")
        p = _yamllint(bad)
    assert p.returncode != 0
    assert "key-duplicates" in p.stdout and "trailing-spaces" in p.stdout, p.stdout


def test_kustomization_lists_every_manifest_and_secret():
    with open(os.path.join(K8S, "kustomization.yaml"), encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    files = {os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml"))}
    assert set(kust["resources"]) == files - {"kustomization.yaml"}
    generated = {g["name"] for g in kust["secretGenerator"]}
    docs = load_manifests()
    referenced = set()
    for d in docs:
        text = yaml.safe_dump(d)
        referenced.update(re.findall(r"secretName: (\S+)", text))
        for m in re.finditer(r"secretRef:\n\s+name: (\S+)", text):
            referenced.add(m.group(1))
        # secretKeyRef (env), passwordSecretKeyRef and rootPasswordSecretKeyRef (MariaDB).
        for m in re.finditer(r"[sS]ecretKeyRef:\n\s+key: \S+\n\s+name: (\S+)", text):
            referenced.add(m.group(1))
    # The edge's certificate is the city's own (docs/operations.md): made outside kustomize.
    assert referenced - {"antar-edge-tls"} == generated, (referenced, generated)


def test_objects_match_the_kubernetes_api():
    docs = [d for d in load_manifests() if not d["apiVersion"].startswith("k8s.mariadb.com/")]
    assert len(docs) > 20
    problems = []
    for d in docs:
        problems += check_schema(d)
    assert problems == []


def test_schema_checker_rejects_unknown_fields_types_and_missing_names(good):
    dep = copy.deepcopy(named(good, "Deployment", "user"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    c["ports"][0]["containerPort"] = "8001"
    del c["name"]
    problems = check_schema(dep)
    assert any("readinesProbe: no such field in V1Container" in p for p in problems), problems
    assert any("containerPort: int expected, not str" in p for p in problems), problems
    assert any("`name`, must not be `None`" in p for p in problems), problems
    assert check_schema({"apiVersion": "apps/v1", "kind": "Deploymnet",
                         "metadata": {"name": "x"}}) == \
        ["Deploymnet apps/v1: no such Kubernetes kind"]


def test_services_probes_ports_env_resources():
    docs = load_manifests()
    ports = real_ports()
    known = variables_read_by_code()
    config = common_config(docs)
    assert config, "no antar-common ConfigMap"
    problems = []
    for svc in SERVICES:
        dep = named(docs, "Deployment", svc)
        assert dep, f"no Deployment {svc}"
        problems += check_probes(dep, svc, spec_routes(svc), ports)
        problems += check_ports_and_env(dep, svc, ports, known, config)
    assert problems == []


def test_every_deployment_hardened_with_hpa_and_pdb():
    docs = load_manifests()
    config = common_config(docs)
    deps = kind(docs, "Deployment")
    assert {d["metadata"]["name"] for d in deps} == {"user", "driver", "core", "edge"}
    problems = []
    for dep in deps:
        problems += check_pod_hardening(dep, dep["metadata"]["name"], config)
        problems += check_hpa_pdb(docs, dep)
    for sts in kind(docs, "StatefulSet"):
        problems += check_pod_hardening(sts, sts["metadata"]["name"], config)
    assert problems == []


def test_peer_urls_name_the_internal_services():
    docs = load_manifests()
    config = common_config(docs)
    ports = real_ports()
    for svc in SERVICES:
        url = config[f"ANTAR_{svc.upper()}_URL"]
        m = re.fullmatch(r"http://([a-z-]+):(\d+)", url)
        assert m, url
        service = named(docs, "Service", m.group(1))
        assert service and selects({"matchLabels": service["spec"]["selector"]},
                                   pod_labels(named(docs, "Deployment", svc)))
        assert int(m.group(2)) == ports[svc][1]
        assert {"name": "internal", "port": ports[svc][1], "targetPort": "internal"} in \
            service["spec"]["ports"]


def test_network_policies():
    callers = internal_callers()
    # The graph docs/communication.md documents today: every service calls the other two.
    assert callers == {"user": {"core", "driver"}, "driver": {"core", "user"},
                       "core": {"user", "driver"}}
    assert check_network(load_manifests(), real_ports(), callers) == []


def test_edge_config_follows_deploy_haproxy_cfg():
    docs = load_manifests()
    cfg = edge_config(docs)
    assert frontend_lines(cfg) == frontend_lines(_read("deploy", "haproxy.cfg"))
    # A slot for every pod the HPA may run, through the headless Service of its pods.
    for svc, port in ((s, real_ports()[s][0]) for s in SERVICES):
        hpa = named(docs, "HorizontalPodAutoscaler", svc)
        slots = re.findall(rf'server-template \w+ (\d+) "{svc}-pods\.\$\{{POD_NAMESPACE\}}'
                           rf'\.svc\.cluster\.local:{port}" check', cfg)
        assert slots and all(int(n) >= hpa["spec"]["maxReplicas"] for n in slots), svc
        pods = named(docs, "Service", f"{svc}-pods")
        assert pods["spec"]["clusterIP"] == "None"
        assert pods["spec"].get("publishNotReadyAddresses") is True


def test_edge_config_is_valid_haproxy():
    cfg = edge_config(load_manifests())
    with tempfile.TemporaryDirectory() as d:
        pem = os.path.join(d, "edge.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", pem + ".key",
                        "-out", pem + ".crt", "-days", "1", "-subj", "/CN=edge"],
                       check=True, capture_output=True, timeout=30)
        with open(pem, "w", encoding="utf-8") as out:
            for part in (".crt", ".key"):
                with open(pem + part, encoding="utf-8") as f:
                    out.write(f.read())
        cfg = cfg.replace("/usr/local/share/antar/errors/",
                          os.path.join(REPO, "deploy", "errors") + "/")
        cfg = cfg.replace("/etc/antar/tls/edge.pem", pem)
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cfg)
        env = dict(os.environ, POD_NAMESPACE="antar", ANTAR_EDGE_RATE_LIMIT="30",
                   ANTAR_EDGE_LOGIN_RATE_LIMIT="20", ANTAR_EDGE_BODY_LIMIT="65536")
        p = subprocess.run(["haproxy", "-c", "-f", path], env=env, capture_output=True,
                           text=True, timeout=30)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "Configuration file is valid" in out, out
    assert "[WARNING]" not in out and "[ALERT]" not in out, out


def test_redis_acl_is_one_file_for_both_deployments():
    """The local stack and Kubernetes write their Redis users from deploy/redis-acl.sh; neither
    keeps rules of its own that could drift."""
    for parts in (("scripts", "stack.sh"), ("deploy", "k8s", "make-secrets.sh")):
        text = _read(*parts)
        assert "redis-acl.sh" in text and "redis_acl_text" in text, parts
        assert not re.search(r"^user antar_", text, re.M), parts
    shared = _read("deploy", "redis-acl.sh")
    for user in ("default", "antar_core", "antar_user", "antar_driver", "antar_admin",
                 "antar_repl", "antar_sentinel"):
        assert re.search(rf"^user {user} ", shared, re.M), user


def test_make_secrets_writes_what_kustomize_reads():
    with tempfile.TemporaryDirectory() as top:
        # The script's folder layout: deploy/k8s/make-secrets.sh beside deploy/redis-acl.sh.
        d = os.path.join(top, "k8s")
        os.mkdir(d)
        script = os.path.join(d, "make-secrets.sh")
        shutil.copy(os.path.join(K8S, "make-secrets.sh"), script)
        shutil.copy(os.path.join(REPO, "deploy", "redis-acl.sh"), top)
        p = subprocess.run(["bash", script], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(K8S, "kustomization.yaml"), encoding="utf-8") as f:
            kust = yaml.safe_load(f)
        for g in kust["secretGenerator"]:
            for rel in g.get("envs", []) + g.get("files", []):
                path = os.path.join(d, rel)
                assert os.path.isfile(path) and os.stat(path).st_mode & 0o077 == 0, rel
        with open(os.path.join(d, "secrets", "users.acl"), encoding="utf-8") as f:
            acl = f.read()
        with open(os.path.join(d, "secrets", "redis.env"), encoding="utf-8") as f:
            redis_env = f.read()
        # Hashes only: no password of redis.env appears in the ACL file.
        for line in redis_env.splitlines():
            assert line.split("=", 1)[1] not in acl
        assert re.search(r"^user antar_user on #[0-9a-f]{64} ", acl, re.M)
        # A second run keeps what is there.
        p = subprocess.run(["bash", script], capture_output=True, text=True, timeout=30)
        with open(os.path.join(d, "secrets", "users.acl"), encoding="utf-8") as f:
            assert f.read() == acl


def test_gitlab_ci_runs_make_test_on_debian_12():
    with open(os.path.join(REPO, ".gitlab-ci.yml"), encoding="utf-8") as f:
        ci = yaml.safe_load(f)
    job = ci["make-test"]
    assert job["image"] == "debian:12"
    assert job["timeout"] == "90m"
    assert "make test" in job["script"]
    junit = job["artifacts"]["reports"]["junit"]
    test_sh = _read("scripts", "test.sh")
    run_dir = re.search(r'ANTAR_RUN_DIR="\$\{ANTAR_RUN_DIR:-\$REPO/([^}]+)\}"', test_sh).group(1)
    for var in ("ctest_xml", "py_xml"):
        name = re.search(rf'^{var}="\$LOG/([^"]+)"', test_sh, re.M).group(1)
        assert f"{run_dir}/log/{name}" in junit
    rules = [r["if"] for r in ci["workflow"]["rules"]]
    assert any("merge_request_event" in r for r in rules)
    assert any("CI_DEFAULT_BRANCH" in r for r in rules)
    for cache in job["cache"]:
        for path in cache["paths"]:
            assert not path.startswith((".run", "build")), f"{path} must not be cached"


# ---- the checkers reject what they must -----------------------------------------------------


@pytest.fixture(scope="module")
def good():
    return load_manifests()


def test_probe_checker_rejects_a_made_up_path_and_a_dependent_liveness(good):
    dep = copy.deepcopy(named(good, "Deployment", "user"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["path"] = "/healthz"
    c["livenessProbe"]["httpGet"]["path"] = "/health/ready"
    problems = check_probes(dep, "user", spec_routes("user"), real_ports())
    assert any("/healthz is not a GET route of api/user.yaml" in p for p in problems), problems
    assert any("livenessProbe /health/ready can answer 503" in p for p in problems), problems
    del c["livenessProbe"]
    c["readinessProbe"]["httpGet"]["path"] = "/health/live"
    problems = check_probes(dep, "user", spec_routes("user"), real_ports())
    assert "user: no HTTP livenessProbe" in problems
    assert any("readinessProbe /health/live never answers 503" in p for p in problems)


def test_probe_checker_rejects_a_route_on_the_wrong_listener():
    routes = {"/health/live": {"listener": "public", "has_503": False},
              "/health/ready": {"listener": "both", "has_503": True}}
    dep = copy.deepcopy(named(load_manifests(), "Deployment", "core"))
    problems = check_probes(dep, "core", routes, real_ports())
    assert any("on the internal listener, which serves it only on public" in p
               for p in problems), problems


def test_port_and_env_checker_rejects_wrong_ports_and_unknown_variables(good):
    dep = copy.deepcopy(named(good, "Deployment", "driver"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["ports"][1]["containerPort"] = 9999
    c["env"].append({"name": "ANTAR_DB_PASWORD", "value": "x"})
    config = dict(common_config(good), ANTAR_HOST="127.0.0.1")
    problems = check_ports_and_env(dep, "driver", real_ports(), variables_read_by_code(), config)
    assert any("container ports" in p for p in problems)
    assert "driver: ANTAR_DB_PASWORD is read by no code" in problems
    assert any("ANTAR_HOST is loopback" in p for p in problems)


def test_hardening_checker_rejects_missing_requests_root_and_short_grace(good):
    dep = copy.deepcopy(named(good, "Deployment", "core"))
    spec = dep["spec"]["template"]["spec"]
    del spec["containers"][0]["resources"]["requests"]["cpu"]
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    spec["securityContext"]["runAsNonRoot"] = False
    spec["terminationGracePeriodSeconds"] = 10
    problems = check_pod_hardening(dep, "core", common_config(good))
    for expected in ("CPU and memory requests", "root file system writable",
                     "runAsNonRoot", "does not outlast ANTAR_DRAIN_S"):
        assert any(expected in p for p in problems), (expected, problems)


def test_hpa_pdb_checker_rejects_a_deployment_without_them(good):
    docs = [d for d in good if not (d["kind"] in ("HorizontalPodAutoscaler",
                                                  "PodDisruptionBudget")
                                    and d["metadata"]["name"] == "driver")]
    problems = check_hpa_pdb(docs, named(docs, "Deployment", "driver"))
    assert problems == ["driver: no HorizontalPodAutoscaler",
                        "driver: no PodDisruptionBudget selects its pods"]


def test_network_checker_rejects_an_open_internal_port(good):
    docs = copy.deepcopy(good)
    pol = named(docs, "NetworkPolicy", "core")
    # The edge let into core's internal listener: /internal/... reachable from the internet.
    pol["spec"]["ingress"][1]["from"].append(
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge"}}})
    problems = check_network(docs, real_ports(), internal_callers())
    assert any(p.startswith("core: internal port 9003 admits ['driver', 'edge', 'user']")
               for p in problems), problems
    # And a missing caller: driver-service could no longer reach user-service.
    docs = copy.deepcopy(good)
    pol = named(docs, "NetworkPolicy", "user")
    pol["spec"]["ingress"][1]["from"] = pol["spec"]["ingress"][1]["from"][:1]
    problems = check_network(docs, real_ports(), internal_callers())
    assert any("user: internal port 9001 admits ['core']" in p for p in problems), problems
    # An egress rule to a listener it never calls (and none to one it does).
    docs = copy.deepcopy(good)
    pol = named(docs, "NetworkPolicy", "user")
    pol["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"][
        "app.kubernetes.io/name"] = "user"
    problems = check_network(docs, real_ports(), internal_callers())
    assert any(p.startswith("user: may call internal listeners ['core:9003', 'user:9002']")
               for p in problems), problems
    # No default deny.
    docs = [d for d in good if d["metadata"]["name"] != "default-deny"]
    assert "no default-deny NetworkPolicy (ingress and egress)" in \
        check_network(docs, real_ports(), internal_callers())


def test_frontend_comparison_sees_a_dropped_rule():
    cfg = _read("deploy", "haproxy.cfg")
    dropped = cfg.replace("    http-request deny deny_status 400 if path_encoded_unreserved "
                          "or path_odd_segment\n", "")
    assert dropped != cfg
    assert frontend_lines(dropped) != frontend_lines(cfg)
