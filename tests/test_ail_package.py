"""The AIL connector as its own distribution: Python >= 3.8 (AIL builds its virtualenv from the
system ``python3``: 3.8 on Ubuntu 20.04) and ``requests`` as its only dependency; it carries
``quaid_client`` (the repository's client of quaid's API, under the same rules) inside it.

Checked three ways: ``vermin`` (minimum Python version of every file), an import that loads
nothing of quaid's engine, and a real Python 3.8 when one is installed (pyenv's or
``python3.8`` on PATH): ``pip install ./ail_connector`` into a fresh virtualenv, from a copy
of the repository's layout, then both packages used there.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ail_connector"
CLIENT = ROOT / "quaid_client"
BIN = Path(sys.executable).parent
LIBRARY_MODULES = tuple("ail_connector." + name for name in (
    "actions", "ail_objects", "config", "correlator", "layout", "sweep", "tags", "ail_module",
    "ail_module.launch"))
MODULES = (*LIBRARY_MODULES, "quaid_client", "quaid_client.client", "quaid_client.errors")


def vermin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "vermin"), "-t=3.8-", "--violations", "--no-tips", *args],
                          capture_output=True, text=True, timeout=300)


def test_vermin_finds_nothing_newer_than_python_3_8():
    done = vermin(str(PACKAGE), str(CLIENT))
    assert done.returncode == 0, done.stdout + done.stderr


def test_vermin_would_catch_a_newer_feature(tmp_path):
    """The check above can fail: the same call on a copy with a Python 3.9 call does."""
    copy = tmp_path / "ail_connector"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "tags.py").open("a") as f:
        f.write("\n\nimport zoneinfo  # noqa: E402\n")  # new in Python 3.9
    done = vermin(str(copy))
    assert done.returncode != 0 and "zoneinfo" in done.stdout


@pytest.mark.parametrize("path", [PACKAGE / "correlator.py", CLIENT / "client.py"])
def test_ruff_checks_the_connector_and_its_client_for_python_3_8(path):
    settings = subprocess.run([str(BIN / "ruff"), "check", "--show-settings", str(path)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT).stdout
    assert "linter.unresolved_target_version = 3.8\n" in settings


def test_the_package_imports_without_the_engine():
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {MODULES!r}:
            importlib.import_module(name)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       ("engine", "numpy", "PIL", "cv2", "flask", "redis", "faiss", "pymisp"))
        print(heavy)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def python38() -> str | None:
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates.append(shutil.which("python3.8") or "")
    return next((c for c in candidates if c and "/shims/" not in c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def py38_venv(tmp_path_factory):
    interpreter = python38()
    if interpreter is None:
        pytest.skip("no Python 3.8 interpreter on this host (python3.8 on PATH or pyenv 3.8.x)")
    base = tmp_path_factory.mktemp("py38")
    source = base / "ail_connector"  # a copy of the layout it builds from: pip builds in the source folder
    for folder in (PACKAGE, CLIENT):
        shutil.copytree(folder, base / folder.name,
                        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = base / "venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    return venv


def test_installs_and_works_on_python_3_8(py38_venv, tmp_path):
    python = str(py38_venv / "bin" / "python")
    code = textwrap.dedent(f"""
        import importlib, sys
        assert sys.version_info[:2] == (3, 8), sys.version
        for name in {MODULES!r}:
            importlib.import_module(name)
        import quaid_client
        try:
            quaid_client.QuaidClient("http://127.0.0.1:1", retries=0, timeout=1).status()
        except quaid_client.ServiceUnavailable as exc:
            assert "unreachable" in str(exc), exc
        else:
            raise AssertionError("nothing listens on port 1")
        from ail_connector.config import read_settings
        from ail_connector.tags import DEFAULT_ACCEPTED_TAGS, DEFAULT_REVIEW_TAGS, TaxonomyIndex
        index = TaxonomyIndex.shipped()  # the JSON extract is installed with the package
        assert [index.problem(t) for t in DEFAULT_ACCEPTED_TAGS + DEFAULT_REVIEW_TAGS] == ["", "", ""]
        settings = read_settings([("url", "http://127.0.0.1:1"), ("state_dir", "$AIL_HOME/Q")], "/ail", index)
        assert settings.state_dir == "/ail/Q"
        print("ok")
    """)
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    show = subprocess.run([python, "-m", "pip", "show", "quaid-ail-connector"], capture_output=True,
                          text=True, timeout=120).stdout
    assert "Requires: requests\n" in show


def test_quaid_ail_start_on_python_3_8_says_what_is_missing(py38_venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIL_")}
    done = subprocess.run([str(py38_venv / "bin" / "quaid-ail-start")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "quaid-ail-start: AIL_HOME and AIL_BIN are not set: activate AIL's virtualenv first "
        "(. $AIL_HOME/AILENV/bin/activate)"]
