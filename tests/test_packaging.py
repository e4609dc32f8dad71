"""Packaging: a built wheel carries every subpackage and the shipped models, and finds them.

The wheel is built by pip from a copy of the sources in a temporary folder (setuptools
builds in-tree, so building from the repository would leave ``build/`` and
``*.egg-info`` there). With setuptools >= 77 installed (what ``[build-system]`` asks for)
the build runs offline with ``--no-build-isolation``; with an older setuptools pip builds in
an isolated environment, which needs the package index. The installed wheel is imitated by
extracting it and importing femfreq from there in a subprocess (a venv install would add
~20 s for the same check: a wheel is a zip of the site-packages layout).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from femfreq.model import load_model, models_dir, shipped_models

ROOT = Path(__file__).resolve().parents[1]
MODEL_SUFFIXES = (".toml", ".poly")


def _setuptools_version() -> tuple[int, ...]:
    try:
        text = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built by pip from a copy of the repository's sources."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("femfreq", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(tmp / "dist")]
    if _setuptools_version() >= (77,):
        cmd.append("--no-build-isolation")
    proc = subprocess.run([*cmd, str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip wheel failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted((tmp / "dist").glob("femfreq-*.whl"))
    assert len(wheels) == 1, f"expected one femfreq wheel, found {[w.name for w in wheels]}"
    return wheels[0]


def _repo_model_files() -> list[str]:
    return sorted(p.name for p in (ROOT / "models").iterdir() if p.suffix in MODEL_SUFFIXES)


def test_wheel_ships_the_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _repo_model_files()
    assert {"satellite.toml", "satellite.poly", "beam.toml", "beam.poly", "rod.toml"} <= set(expected)
    missing = [f for f in expected if f"femfreq/models/{f}" not in names]
    assert not missing, f"models missing from {wheel.name}: {missing}"
    # the data is in the package, not at the top level of site-packages
    assert not any(n.startswith("models/") for n in names)


def test_wheel_has_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "femfreq").rglob("*.py") if "__pycache__" not in p.parts
    )
    missing = [m for m in modules if m not in names]
    assert not missing, f"modules missing from {wheel.name} (add the subpackage to pyproject.toml): {missing}"
    # the benchmark suite and its runner stay in the repository
    assert not any(n.startswith("benchmarks/") or "/benchmarks/" in n for n in names)


_CHECK = """
import json, sys
import femfreq
from femfreq.model import load_model, models_dir, shipped_models
m = load_model("satellite", level=1)
K, C, M, b = m.matrices()
json.dump({"femfreq": femfreq.__file__, "models_dir": str(models_dir()), "shipped": shipped_models(),
           "source": str(m.source["file"]), "n_dof": int(K.shape[0]), "nnz": int(K.nnz)}, sys.stdout)
"""


def test_installed_wheel_loads_a_shipped_model(wheel, tmp_path):
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # the subprocess really used the extracted wheel, not the checkout
    assert Path(got["femfreq"]).resolve().is_relative_to(site.resolve())
    assert Path(got["models_dir"]).resolve() == (site / "femfreq" / "models").resolve()
    assert Path(got["source"]).resolve() == (site / "femfreq" / "models" / "satellite.toml").resolve()
    assert got["shipped"] == shipped_models()
    # the same model as read from the checkout
    ref = load_model(ROOT / "models" / "satellite.toml", level=1)
    K = ref.matrices()[0]
    assert (got["n_dof"], got["nnz"]) == (K.shape[0], K.nnz)


def test_installed_wheel_bench_says_where_the_suite_is(wheel, tmp_path):
    # no checkout around an installed femfreq: one clear line, exit code 2, no traceback
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "femfreq", "bench", "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "ships with the femfreq source repository" in lines[0] and "python -m benchmarks --quick" in lines[0]


def test_checkout_models_dir():
    # a checkout / editable install reads the repository's models/ folder
    assert models_dir().resolve() == (ROOT / "models").resolve()
    assert shipped_models() == sorted(p.stem for p in (ROOT / "models").glob("*.toml"))


def test_sources_have_no_undefined_names():
    """pyflakes over the package, the benchmarks and the tests: a name used but defined
    nowhere (``NameError`` when its line runs) fails, as does a syntax error. A name lost in
    a move between modules raises only when its branch runs; this finds it without running
    it. Style messages (unused imports: the optional-dependency probes import only to test
    availability) are not failures, so a pyflakes release with new style checks cannot
    turn CI red."""
    pytest.importorskip("pyflakes", reason="pyflakes is in the test extra")
    from pyflakes import api, messages
    from pyflakes.reporter import Reporter

    fatal = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)

    class Collect(Reporter):
        def __init__(self):
            self.found = []

        def flake(self, message):
            if isinstance(message, fatal):
                self.found.append(str(message))

        def syntaxError(self, filename, msg, lineno, offset, text):  # noqa: N802 - pyflakes' API
            self.found.append(f"{filename}:{lineno}: syntax error: {msg}")

        def unexpectedError(self, filename, msg):  # noqa: N802 - pyflakes' API
            self.found.append(f"{filename}: {msg}")

    reporter = Collect()
    for folder in ("femfreq", "benchmarks", "tests"):
        api.checkRecursive([str(ROOT / folder)], reporter)
    assert not reporter.found, "\n".join(reporter.found)
