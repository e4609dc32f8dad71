"""The benchmark suite runner (benchmarks/_report.py), ``python -m benchmarks`` and ``femfreq bench``.

Fake benchmark packages (one passing with a plot, one raising, one hanging) run through the
real runner, each benchmark in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from benchmarks import _report
from femfreq._cli.main import main

ROOT = Path(__file__).resolve().parents[1]


_OK = '''
"""A fake benchmark."""
import os

def run(quick: bool = True) -> dict:
    return {"name": "Fake OK", "rows": [{"case": "a", "quick": quick, "ratio": 1.5}, {"case": "b", "extra": 2}],
            "notes": "fake notes"}

def plot(result, out_dir):
    path = os.path.join(out_dir, "fake.png")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    fig.savefig(path)
    return [path]
'''

_BROKEN = '''
def run(quick: bool = True) -> dict:
    raise RuntimeError("boom in the fake benchmark")
'''

_SLOW = '''
import time

def run(quick: bool = True) -> dict:
    time.sleep(60)
    return {"name": "never", "rows": []}
'''


@pytest.fixture
def fake_package(tmp_path):
    pkg = tmp_path / f"fakebench_{uuid.uuid4().hex[:8]}"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""Fake benchmarks."""\n')
    (pkg / "bench_ok.py").write_text(textwrap.dedent(_OK))
    (pkg / "bench_broken.py").write_text(textwrap.dedent(_BROKEN))
    (pkg / "bench_slow.py").write_text(textwrap.dedent(_SLOW))
    (pkg / "helpers.py").write_text("X = 1\n")  # not a benchmark
    return pkg


def test_runner_writes_json_and_markdown(fake_package, tmp_path):
    assert _report.discover(fake_package) == ["broken", "ok", "slow"]
    out = tmp_path / "out"
    lines = []
    report = _report.run_suite(fake_package, quick=False, only="ok,broken", out_dir=out, echo=lines.append)
    data = json.loads((out / "results.json").read_text())
    status = {b["topic"]: b["status"] for b in data["benchmarks"]}
    assert status == {"broken": "failed", "ok": "ok"}
    broken = next(b for b in data["benchmarks"] if b["topic"] == "broken")
    assert "boom in the fake benchmark" in broken["error"]
    ok = next(b for b in data["benchmarks"] if b["topic"] == "ok")
    assert ok["rows"][0] == {"case": "a", "quick": False, "ratio": 1.5}
    assert ok["plots"] == ["fake.png"] and (out / "fake.png").stat().st_size > 0
    assert data["mode"] == "full" and data["machine"]["logical_cores"] >= 1
    assert "numpy" in data["machine"]["versions"]
    md = (out / "results.md").read_text()
    assert "| case | quick | ratio | extra |" in md
    assert "| a | False | 1.5 |  |" in md and "| b |  |  | 2 |" in md
    assert "fake notes" in md and "![fake](fake.png)" in md
    assert "boom in the fake benchmark" in md and "Machine:" in md
    assert report["markdown"] == str(out / "results.md")
    assert any("ok: ok" in line for line in lines)


def test_runner_timeout_and_unknown(fake_package, tmp_path):
    t0 = time.perf_counter()
    report = _report.run_suite(fake_package, only=["slow"], out_dir=tmp_path / "o", timeout=3)
    assert time.perf_counter() - t0 < 50  # the 60 s sleep was cut, not waited for
    assert report["benchmarks"][0]["status"] == "timeout"
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) \['nope'\]"):
        _report.run_suite(fake_package, only="nope", out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="not a benchmark package"):
        _report.discover(tmp_path / "o")


def test_cli_bench_runs_the_checkouts_suite(fake_package, tmp_path, capfd):
    # femfreq bench runs `python -m benchmarks` of the checkout, with the same options
    assert main(["bench", "--package", str(fake_package), "--only", "ok", "-o", str(tmp_path / "r")]) == 0
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["mode"] == "quick" and data["benchmarks"][0]["rows"][0]["quick"] is True
    assert "| case | quick | ratio | extra |" in capfd.readouterr().out
    assert main(["bench", "--package", str(fake_package), "--only", "broken", "-o", str(tmp_path / "r")]) == 1
    capfd.readouterr()
    assert main(["bench", "--list"]) == 0  # the repository's own suite
    listed = capfd.readouterr().out.split()
    assert {"primes", "mandelbrot", "solvers"} <= set(listed)


def test_python_m_benchmarks(fake_package, tmp_path):
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--list"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and {"primes", "fast"} <= set(run.stdout.split())
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--package", str(fake_package), "--only", "nope"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "unknown benchmark(s) ['nope']" in run.stderr


def test_markdown_cells():
    md = _report.table([{"small": 0.000123, "big": 2.5e7, "pi": 3.14159, "text": "a|b", "none": None}])
    assert md.splitlines()[2] == "| 1.230e-04 | 2.500e+07 | 3.142 | a\\|b |  |"
    assert _report.table([]) == "(no rows)\n"
