"""scripts/setup.sh's Node.js decision, on a PATH that hides or fakes `node` and `npm`.

A fresh Debian 12 machine has no Node.js; setup.sh must then add Debian's nodejs and npm to what
it installs, keep a node that is already there (and new enough), and stop with a clear message on
one that is too old. The script runs in its dry-run mode (ANTAR_SETUP_DRY_RUN=1), which decides
and prints but installs nothing, so these tests are safe on any machine and need no stack. The
PATH is a temporary folder of links to every program on the real PATH except node, npm, npx and
nodejs, removed afterwards.
"""

import os
import subprocess
import tempfile

import pytest

import contract

SETUP = os.path.join(contract.REPO, "scripts", "setup.sh")
HIDDEN = {"node", "nodejs", "npm", "npx"}


def _dpkg_installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg],
                       capture_output=True, text=True, timeout=30)
    return p.returncode == 0 and p.stdout.strip() == "installed"


@pytest.fixture
def bare_path():
    """A folder of links to the real PATH's programs, without any Node.js; yields its path."""
    with tempfile.TemporaryDirectory(prefix="antar-setup-path-") as d:
        for src_dir in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
            if not os.path.isdir(src_dir):
                continue
            for name in os.listdir(src_dir):
                dst = os.path.join(d, name)
                src = os.path.join(src_dir, name)
                if name in HIDDEN or os.path.lexists(dst) or not os.access(src, os.X_OK):
                    continue
                os.symlink(src, dst)
        yield d


def _fake(folder, name, version):
    """A stand-in `node` (answers --version and the -p major query) or `npm`."""
    major = version.lstrip("v").split(".")[0]
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n"
                f'case "$1" in --version) echo {version} ;; -p) echo {major} ;; *) exit 0 ;; esac\n')
    os.chmod(path, 0o755)


def _run(path):
    env = dict(os.environ, PATH=path, ANTAR_SETUP_DRY_RUN="1")
    p = subprocess.run(["bash", SETUP], capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout + p.stderr


def _would_install(out):
    for line in out.splitlines():
        if "would install" in line:
            return set(line.split(":", 2)[2].split())
    raise AssertionError(f"no 'would install' line in:\n{out}")


def test_hidden_node_adds_debian_nodejs_and_npm(bare_path):
    assert not any(os.path.exists(os.path.join(bare_path, n)) for n in HIDDEN)
    rc, out = _run(bare_path)
    assert rc == 0, out
    assert "node not found on PATH: adding Debian's nodejs and npm" in out, out
    plan = _would_install(out)
    for pkg in ("nodejs", "npm"):
        # Either it is in the plan, or dpkg already has it (then apt has nothing to do for it).
        assert pkg in plan or _dpkg_installed(pkg), f"{pkg} neither planned nor installed:\n{out}"


def test_hidden_npm_only_adds_npm(bare_path):
    _fake(bare_path, "node", "v20.11.0")
    rc, out = _run(bare_path)
    assert rc == 0, out
    assert "adding Debian's npm" in out and "nodejs and npm" not in out, out
    assert "nodejs" not in _would_install(out), out


def test_newer_node_is_kept(bare_path):
    _fake(bare_path, "node", "v22.3.0")
    _fake(bare_path, "npm", "10.8.0")
    rc, out = _run(bare_path)
    assert rc == 0, out
    assert "using node v22.3.0" in out, out
    assert not {"nodejs", "npm"} & _would_install(out), out


def test_too_old_node_stops_with_a_reason(bare_path):
    _fake(bare_path, "node", "v16.20.0")
    _fake(bare_path, "npm", "8.19.0")
    rc, out = _run(bare_path)
    assert rc != 0, out
    assert "v16.20.0" in out and "older than 18" in out, out
    assert "would install" not in out, out
