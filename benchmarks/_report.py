"""The benchmark suite runner behind ``python -m benchmarks`` (and ``femfreq bench`` in a checkout).

A benchmark package is a folder of modules ``bench_<topic>.py``, each defining
``run(quick: bool = True) -> dict`` returning ``{"name": str, "rows": [dict, ...], "notes": str}``
and optionally ``plot(result: dict, out_dir: str) -> list[str]`` (PNG files it wrote).
:func:`run_suite` runs each module in its own Python process (a crash, a hang past the
timeout or a stray cluster of one benchmark does not take the others down), collects the
results and writes ``results.json`` and ``results.md`` (one table per benchmark, machine
information on top) into the output folder, with the plots next to them.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

_VERSIONS = ("femfreq", "numpy", "scipy", "numba", "dask", "distributed", "h5py", "sympy", "mkl")

# Runs one benchmark module in a fresh interpreter: argv = package, topic, mode, json out, plot dir.
_DRIVER = r"""
import importlib, json, os, sys, time, traceback
import numpy as np
pkg, topic, mode, out, plots = sys.argv[1:6]
def default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return repr(o)
module = importlib.import_module(f"{pkg}.bench_{topic}")
t0 = time.perf_counter()
result = module.run(quick=(mode == "quick"))
if not isinstance(result, dict):
    raise TypeError(f"bench_{topic}.run returned {type(result).__name__}, expected a dict")
result = dict(result)
result["seconds"] = time.perf_counter() - t0
if hasattr(module, "plot"):
    try:
        result["plots"] = [os.path.basename(os.fspath(p)) for p in (module.plot(result, plots) or [])]
    except Exception:
        result["plot_error"] = traceback.format_exc(limit=3)
with open(out, "w") as f:
    json.dump(result, f, default=default, allow_nan=True)
"""


def discover(package_dir) -> list[str]:
    """Topics of the ``bench_<topic>.py`` modules in ``package_dir``, sorted.

    Raises
    ------
    ValueError
        If ``package_dir`` is not a folder with an ``__init__.py``.
    """
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"{package_dir} is not a benchmark package (no __init__.py)")
    return sorted(p.stem[len("bench_") :] for p in package_dir.glob("bench_*.py"))


def machine_info() -> dict:
    """CPU model, cores, memory, OS, load average, Python and package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "logical_cores": os.cpu_count(), "physical_cores": None, "memory_gb": None}
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is in the test extra
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    info["os"] = platform.platform()
    info["host"] = platform.node()
    info["python"] = platform.python_version()
    versions = {}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    info["versions"] = versions
    return info


def _git_commit(folder: Path) -> str | None:
    """The short commit of the repository holding ``folder`` (None outside git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _kill_group(proc) -> None:
    """Kill the process group of a benchmark subprocess and reap it."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def run_one(package_dir, topic: str, *, quick: bool = True, plot_dir=None, timeout: float | None = None) -> dict:
    """Run ``bench_<topic>`` of ``package_dir`` in a subprocess; never raises for its failures.

    Returns
    -------
    dict
        The module's result plus ``topic``, ``status`` (``"ok"``, ``"failed"``,
        ``"timeout"``) and ``seconds``; on failure ``error`` holds the end of its stderr.
    """
    package_dir = Path(package_dir).resolve()
    plot_dir = Path(plot_dir or tempfile.mkdtemp(prefix="femfreq-bench-"))
    plot_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package_dir.parent)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="femfreq-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-c", _DRIVER, package_dir.name, topic, "quick" if quick else "full", str(out), str(plot_dir)]
        t0 = time.perf_counter()
        # own process group: a timeout or an interrupt stops the benchmark and its dask workers
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=package_dir.parent,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return {"topic": topic, "name": topic, "status": "timeout", "seconds": time.perf_counter() - t0,
                    "rows": [], "error": f"no result after {timeout} s"}
        except BaseException:
            _kill_group(proc)
            raise
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            return {"topic": topic, "name": topic, "status": "failed", "seconds": seconds, "rows": [],
                    "error": tail or f"exit code {proc.returncode}"}
        result = json.loads(out.read_text())
    result.setdefault("name", topic)
    result.setdefault("rows", [])
    result.setdefault("notes", "")
    result["topic"] = topic
    result["status"] = "ok"
    result["seconds"] = seconds
    return result


def run_suite(package_dir, *, quick: bool = True, only=None, out_dir=None, timeout: float | None = None, echo=None) -> dict:
    """Run every benchmark of a package and write ``results.json`` and ``results.md``.

    Parameters
    ----------
    package_dir : str or PathLike
        The benchmark package folder (with ``__init__.py`` and ``bench_*.py``).
    quick : bool
        Quick sizes (the suite takes minutes) or full sizes.
    only : list of str or str, optional
        Topics to run (``"primes,mandelbrot"`` or a list); default all.
    out_dir : str or PathLike, optional
        Where to write the JSON, the Markdown and the plots; default ``package_dir/results``.
    timeout : float, optional
        Seconds after which one benchmark is stopped and reported as ``"timeout"``.
    echo : callable, optional
        Called with one progress line per benchmark (e.g. ``print``).

    Returns
    -------
    dict
        ``{"mode", "started", "commit", "machine", "seconds", "benchmarks": [...],
        "json": path, "markdown": path}``.

    Raises
    ------
    ValueError
        If the package is not one, or ``only`` names a topic it does not have.
    """
    package_dir = Path(package_dir).resolve()
    topics = discover(package_dir)
    if only:
        wanted = [t.strip() for t in (only.split(",") if isinstance(only, str) else only) if t.strip()]
        unknown = [t for t in wanted if t not in topics]
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; pick from {topics}")
        topics = [t for t in topics if t in wanted]
    out_dir = Path(out_dir) if out_dir is not None else package_dir / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "format": "femfreq-benchmarks",
        "mode": "quick" if quick else "full",
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(package_dir),
        "machine": machine_info(),
        "benchmarks": [],
    }
    t0 = time.perf_counter()
    for topic in topics:
        if echo:
            echo(f"running bench_{topic} ({report['mode']}) ...")
        result = run_one(package_dir, topic, quick=quick, plot_dir=out_dir, timeout=timeout)
        if result["status"] != "ok":
            log.warning("benchmark %s %s: %s", topic, result["status"], result.get("error", ""))
        if echo:
            echo(f"  {topic}: {result['status']} in {result['seconds']:.1f} s")
        report["benchmarks"].append(result)
    report["seconds"] = time.perf_counter() - t0
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    md_path.write_text(to_markdown(report))
    report["json"], report["markdown"] = str(json_path), str(md_path)
    return report


def _fmt(v) -> str:
    """One table cell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v, default=str)
        return s if len(s) <= 60 else s[:57] + "..."
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    """A Markdown table of dict rows, columns in first-seen order."""
    if not rows:
        return "(no rows)\n"
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine_line(machine: dict) -> str:
    """One line describing the machine and the versions."""
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    cores = f"{machine.get('logical_cores')} logical"
    if machine.get("physical_cores"):
        cores += f" / {machine['physical_cores']} physical"
    load = machine.get("load_average")
    return (
        f"{machine.get('cpu')}, {cores} cores, {machine.get('memory_gb')} GB RAM, {machine.get('os')}; "
        f"Python {machine.get('python')}; {versions}" + (f"; load average at start {load}" if load else "")
    )


def to_markdown(report: dict) -> str:
    """The Markdown report: machine, a summary table, then one section per benchmark."""
    out = [f"# femfreq benchmarks ({report['mode']})", ""]
    commit = f", commit {report['commit']}" if report.get("commit") else ""
    out += [f"Run {report['started']}{commit}, {report.get('seconds', 0):.0f} s in total.", ""]
    out += [f"Machine: {machine_line(report['machine'])}.", ""]
    summary = [
        {"benchmark": b["topic"], "status": b["status"], "seconds": round(b["seconds"], 1), "rows": len(b.get("rows", []))}
        for b in report["benchmarks"]
    ]
    out += [table(summary), ""]
    for b in report["benchmarks"]:
        out += [f"## {b.get('name', b['topic'])} (`bench_{b['topic']}`): {b['status']}, {b['seconds']:.1f} s", ""]
        if b["status"] != "ok":
            out += ["```", b.get("error", ""), "```", ""]
            continue
        if b.get("notes"):
            out += [b["notes"].strip(), ""]
        out += [table(b.get("rows", [])), ""]
        for p in b.get("plots", []):
            out += [f"![{Path(p).stem}]({p})", ""]
        if b.get("plot_error"):
            out += [f"(plot failed: {b['plot_error'].strip().splitlines()[-1]})", ""]
    return "\n".join(out)
