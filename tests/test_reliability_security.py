"""Security checks as tests: no pickle, no secrets, names are data, bind refusal via config.

test_auth.py covers API keys (401/403, logging without the key) and ``--host 0.0.0.0``
without keys. Added here:

* no module of engine/, ail_connector/ or misp_modules/ imports pickle or a pickle-based
  serialiser, nor loads numpy arrays with ``allow_pickle`` (douglas-quaid pickled features:
  unpickling data from a shared Redis is code execution). Read with :mod:`ast`, which also
  sees dynamic imports and ``allow_pickle``; and ruff really flags a pickle import (S403
  is a preview rule: ruff.toml must keep preview with explicit-preview-rules for it);
* no private key, token or credential file is tracked by git;
* picture names, upload file names, tags and metadata that look like paths
  (``../../x``, ``/tmp/x``) are stored verbatim and nothing is ever written under them,
  through the API, batch jobs and the CLI; only Redis's files appear in QUAID_HOME;
* a non-loopback address given by configuration (``QUAID_HOST``), not only by ``--host``,
  is refused without keys, before anything starts.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from drawing import drawn
from serverproc import ServerProcess, run_quaid

from engine.store import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("engine", "ail_connector", "misp_modules")
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "joblib", "jsonpickle"}


def shipped_python() -> list[Path]:
    files = [p for folder in SHIPPED for p in (ROOT / folder).rglob("*") if p.is_file()]
    return [p for p in files if p.suffix == ".py" or (p.suffix == "" and _is_python(p))]


def _is_python(path: Path) -> bool:
    try:
        return path.read_bytes()[:64].startswith(b"#!") and b"python" in path.read_bytes()[:64]
    except OSError:
        return False


def pickle_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every import of a pickler, dynamic import of one, or ``allow_pickle=...``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call):
            called = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0] if node.args else None
            if called in ("__import__", "import_module") and isinstance(first, ast.Constant) \
                    and str(first.value).split(".")[0] in PICKLERS:
                found.append((node.lineno, f"{called}({first.value!r})"))
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (isinstance(keyword.value, ast.Constant)
                                                          and keyword.value.value is False):
                    found.append((node.lineno, "allow_pickle"))
    return found


def test_the_pickle_detector_finds_what_it_must():
    source = "import pickle\nfrom dill import loads\nimport importlib\nimportlib.import_module('shelve')\n" \
             "np.load(f, allow_pickle=True)\nnp.load(f, allow_pickle=False)\nimport json\n"
    assert [line for line, _ in pickle_uses(ast.parse(source))] == [1, 2, 4, 5]


def test_no_pickle_anywhere_in_shipped_code():
    files = shipped_python()
    assert len(files) > 40  # the walk really found the code
    offenders = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in files
                 for line, what in pickle_uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))]
    assert offenders == []


def test_ruff_flags_pickle_imports_and_loads():
    ruff = Path(sys.executable).with_name("ruff")
    source = "import pickle\n\n\ndef load(data):\n    return pickle.loads(data)\n"
    done = subprocess.run([str(ruff), "check", "--output-format", "json", "--stdin-filename",
                           "engine/probe.py", "-"], input=source, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert {"S403", "S301"} <= {finding["code"] for finding in json.loads(done.stdout)}


SECRET_FILE_NAMES = re.compile(r"(^|/)(id_(rsa|dsa|ecdsa|ed25519)(\.pub)?|\.env(\..+)?|\.netrc|\.pypirc|"
                               r"credentials(\.json)?|.*\.(pem|key|p12|pfx|jks|keystore|kdbx))$", re.I)
SECRET_CONTENT = re.compile("|".join([
    "-----BEGIN " + r"(RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY" + "-----",
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36}\b",  # GitHub token
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack token
    r"\bsk-[A-Za-z0-9]{32,}\b",  # API secret keys of several vendors
]))


def test_no_secret_is_tracked_by_git():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [p for p in tracked.decode().split("\0") if p]
    assert len(paths) > 50
    assert [p for p in paths if SECRET_FILE_NAMES.search(p)] == []
    found = []
    for relative in paths:
        path = ROOT / relative
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{relative}: {m.group(0)[:12]}..." for m in SECRET_CONTENT.finditer(text)]
    assert found == []


# --- names are data, never paths -----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("reliability-security") / "home"
    with ServerProcess(home) as proc:
        yield proc
    EmbeddedRedis(home / "redis").stop()


def hostile_names(marker: str) -> list[str]:
    return [f"../../{marker}", f"../../../../../../tmp/{marker}", f"/tmp/{marker}", f"..\\..\\{marker}",
            f"./{marker}/../../{marker}", f"~/{marker}", f"file:///tmp/{marker}"]


def files_named(marker: str, roots: list[Path]) -> list[Path]:
    """Files or folders whose name contains ``marker`` in or directly around the given folders."""
    seen = []
    for root in roots:
        if root.is_dir():
            seen += [p for p in root.rglob(f"*{marker}*")]
    return seen


def test_path_like_names_and_metadata_are_stored_verbatim_and_never_written(server, tmp_path):
    marker = f"quaid-escape-{uuid.uuid4().hex[:12]}"
    names = hostile_names(marker)
    home = server.home
    stored = []
    for n, name in enumerate(names):
        form = {"name": name, "tags": [name], "metadata": json.dumps({"path": name, name: 1})}
        response = server.post("/api/v1/pictures", files={"file": (name, drawn(8100 + n))}, data=form)
        assert response.status_code == 201, response.text
        record = server.get(f"/api/v1/pictures/{response.json()['id']}").json()
        assert record["name"] == name and record["tags"] == [name]
        assert record["metadata"] == {"path": name, name: 1}
        stored.append(record["id"])
    for n, name in enumerate(names):  # the upload's file name, the default name
        if "\\" in name:
            continue  # urllib3 does not escape backslashes in multipart file names: not what was meant
        response = server.post("/api/v1/pictures", files={"file": (name, drawn(8150 + n))})
        assert server.get(f"/api/v1/pictures/{response.json()['id']}").json()["name"] == name

    names = [name for name in names if "\\" not in name]
    parts = [("file", (name, drawn(8200 + n))) for n, name in enumerate(names)]
    job = server.post("/api/v1/jobs", files=parts, data={"action": "add"}).json()["job"]
    deadline = time.monotonic() + 120
    while (state := server.get(f"/api/v1/jobs/{job}").json())["status"] != "done":
        assert time.monotonic() < deadline and state["status"] != "failed", state
        time.sleep(0.2)
    assert [r["file"] for r in state["results"]] == names
    assert [r["name"] for r in state["results"]] == names

    picture = tmp_path / "p.png"
    picture.write_bytes(drawn(8300))
    cli_home = tmp_path / "cli-home"
    done = run_quaid(cli_home, "add", str(picture), "--meta", f"path=../../{marker}", "--tag", f"../{marker}",
                     "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "added"
    EmbeddedRedis(cli_home / "redis").stop()

    around = [ROOT, ROOT.parent, home, home.parent, home.parent.parent, tmp_path, Path("/tmp")]
    assert [p for p in around[1:] if any(p.glob(f"*{marker}*"))] == []
    assert files_named(marker, [ROOT, home, tmp_path]) == []
    assert not Path(f"/tmp/{marker}").exists() and not (Path.home() / marker).exists()
    written = sorted(p.relative_to(home).parts[0] for p in home.rglob("*") if p.is_file())
    # the store's own folders: Redis, the disk tier (bulk/) and the index snapshot (index/)
    assert set(written) <= {"redis", "bulk", "index"} | {p.name for p in home.glob("serve-*.log")}, written


def test_a_public_host_from_the_configuration_is_refused_without_keys(tmp_path):
    done = run_quaid(tmp_path, "serve", "--port", "0", env={"QUAID_HOST": "0.0.0.0"})
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0 without API keys" in lines[0], done.stderr
    assert not (tmp_path / "redis").exists()  # refused before starting Redis
