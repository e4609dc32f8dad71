"""Direct solvers per frequency: fresh SuperLU vs MKL PARDISO with the analysis reused.

Each backend runs in its own subprocess (one thread, ``OMP/MKL/OPENBLAS_NUM_THREADS=1``)
so its peak RSS is its own; PARDISO is also run as two 1-thread processes side by
side (the layout of a 2-worker dask sweep on 2 cores). The system is the satellite
model (quick: level 4, ~44k DOF; full: level 7, ~612k DOF) when ``femfreq.model``
can build it, else a synthetic triangulated grid of about the same size; it is
built once and handed to the workers as an ``.npz`` file (cached in
``$FEMFREQ_BENCH_CACHE``, default ``<tmp>/femfreq-bench``).

    python -m benchmarks.bench_solvers          # quick
    python -m benchmarks.bench_solvers --full   # level 7: heavy (SuperLU ~6 GB, ~30 s per frequency)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from benchmarks._common import ONE_THREAD, markdown, model_key, one_thread_env

# figures from issue 6 (611,880 DOF, this kind of machine, 1 thread)
ISSUE = {"superlu_s": 26.0, "pardiso_s": 2.1, "pardiso_side_by_side_s": 1.94,
         "superlu_gb": 5.8, "pardiso_gb": 1.4, "pardiso_analysis_s": 2.0}



def _cache_dir() -> Path:
    d = Path(os.environ.get("FEMFREQ_BENCH_CACHE", Path(tempfile.gettempdir()) / "femfreq-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _grid_matrices(nx, ny, *, E=1e7, rho=0.1, beta=0.004):
    """Triangulated nx x ny grid of rods, bottom row fixed: K, C, M, b (vectorised)."""
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    points = np.column_stack([i.ravel(), j.ravel()]).astype(float)
    ids = j * nx + i
    edges = np.concatenate([
        np.column_stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()]),
        np.column_stack([ids[:-1, :].ravel(), ids[1:, :].ravel()]),
        np.column_stack([ids[:-1, :-1].ravel(), ids[1:, 1:].ravel()]),
    ])
    n = 2 * len(points)
    area = np.sqrt(2.0 / n)  # the reference's section
    d = points[edges[:, 1]] - points[edges[:, 0]]
    L = np.linalg.norm(d, axis=1)
    v = np.column_stack([-d / L[:, None], d / L[:, None]])
    ke = (E * area / L)[:, None, None] * v[:, :, None] * v[:, None, :]
    dofs = np.column_stack([2 * edges[:, 0], 2 * edges[:, 0] + 1, 2 * edges[:, 1], 2 * edges[:, 1] + 1])
    K = sp.coo_matrix((ke.ravel(), (np.repeat(dofs, 4, axis=1).ravel(), np.tile(dofs, 4).ravel())), (n, n)).tocsc()
    m = np.zeros(n)
    np.add.at(m, dofs.ravel(), np.repeat(rho * area * L / 2, 4))
    free = np.arange(2 * nx, n)
    K = K[free][:, free]
    M = sp.diags(m[free]).tocsc()
    b = np.zeros(free.size)
    b[-1] = -1.0
    return K, beta * K, M, b


def _prepare(level: int) -> tuple[Path, str]:
    """Write (once) the system's matrices to an .npz; return its path and a description."""
    path = _cache_dir() / f"satellite-level{level}-{model_key()}.npz"
    if path.exists():
        return path, str(np.load(path)["description"])
    try:
        from femfreq.model import load_model

        t0 = time.perf_counter()
        system = load_model("satellite", level=level).system()
        description = f"satellite level {level} (built in {time.perf_counter() - t0:.0f} s)"
        K, C, M, b = system.K, system.C, system.M, system.b
    except Exception as exc:  # noqa: BLE001 - models not available: synthetic stand-in
        n_target = {4: 44_344, 7: 611_544}.get(level, 44_344)
        side = int(round(np.sqrt(n_target / 2)))
        path = _cache_dir() / f"grid{side}.npz"
        if path.exists():
            return path, str(np.load(path)["description"])
        K, C, M, b = _grid_matrices(side, side)
        description = f"synthetic {side}x{side} triangulated grid (satellite unavailable: {exc})"
    np.savez(path, K_data=K.data, K_indices=K.indices, K_indptr=K.indptr,
             C_data=C.data, C_indices=C.indices, C_indptr=C.indptr,
             M_data=M.data, M_indices=M.indices, M_indptr=M.indptr, b=b, description=description)
    return path, description


def _load_system(path):
    from femfreq.system import System

    z = np.load(path)
    n = z["b"].size
    mats = {k: sp.csc_matrix((z[f"{k}_data"], z[f"{k}_indices"], z[f"{k}_indptr"]), shape=(n, n)) for k in "KCM"}
    return System(K=mats["K"], C=mats["C"], M=mats["M"], b=z["b"], name=Path(path).stem)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so building the system does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _worker(spec: dict) -> dict:
    """Runs in a subprocess: analyse once, then time factor + solve per frequency."""
    from femfreq.solvers import get_solver

    system = _load_system(spec["path"])
    import gc

    gc.collect()
    _reset_peak()
    base_rss = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    solver = get_solver(system, spec["backend"], **spec.get("options", {}))
    analysis, analysis_cpu = time.perf_counter() - t0, time.process_time() - c0
    times, cpu, residuals = [], [], []
    for f in spec["freqs_hz"]:
        omega = 2 * np.pi * f
        t0, c0 = time.perf_counter(), time.process_time()
        x = solver.solve(omega, system.b)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        residuals.append(system.residuals(omega, x, 1.0))
    peak = _peak_mb()
    out = {
        "backend": spec["backend"], "n": system.n, "nnz": system.nnz, "analysis_s": analysis,
        "analysis_cpu_s": analysis_cpu, "times_s": times, "cpu_s": cpu, "rel_residual": [r[0] for r in residuals],
        "backward_error": [r[1] for r in residuals], "peak_rss_mb": peak, "base_rss_mb": base_rss,
        "stats": {k: v for k, v in solver.stats.items() if isinstance(v, (int, float))},
    }
    solver.close()
    return out


def _spawn(spec):
    env = dict(os.environ, **ONE_THREAD)
    cmd = [sys.executable, "-m", "benchmarks.bench_solvers", "--worker", json.dumps(spec)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)


def _collect(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode:
        raise RuntimeError(f"benchmark worker failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _row(label, r, processes=1):
    t = np.asarray(r["times_s"])
    return {
        "backend": r["backend"], "layout": label, "n_dof": r["n"], "nnz": r["nnz"],
        "freqs": len(t), "analysis_s": round(r["analysis_s"], 3),
        "analysis_cpu_s": round(r["analysis_cpu_s"], 3),
        "per_freq_median_s": round(float(np.median(t)), 3),
        "per_freq_max_s": round(float(t.max()), 3),
        "per_freq_cpu_median_s": round(float(np.median(r["cpu_s"])), 3),
        "factor_gflop": round(r["stats"]["factor_mflop"] / 1e3, 1) if "factor_mflop" in r["stats"] else None,
        "gflop_per_s": (round(r["stats"]["factor_mflop"] / 1e3 / float(np.median(t)), 1)
                        if "factor_mflop" in r["stats"] else None),
        "peak_rss_mb": round(r["peak_rss_mb"]), "solver_rss_mb": round(r["peak_rss_mb"] - r["base_rss_mb"]),
        "max_rel_residual": float(f"{max(r['rel_residual']):.2e}"),
        "max_backward_error": float(f"{max(r['backward_error']):.2e}"),
    }


def run(quick: bool = True) -> dict:
    """Per-frequency time and peak RSS of each direct backend (1 thread), side by side.

    Parameters
    ----------
    quick : bool
        True: satellite level 4 (~44k DOF), a few frequencies; False: level 7
        (~612k DOF), one SuperLU frequency, three PARDISO frequencies.

    Returns
    -------
    dict
        ``{"name", "rows", "notes"}``.
    """
    from femfreq.solvers import available_solvers

    level = 4 if quick else 7
    path, description = _prepare(level)
    freqs_lu = [100.0, 400.0, 700.0] if quick else [400.0]
    freqs_pd = [100.0, 250.0, 400.0, 550.0, 700.0] if quick else [100.0, 400.0, 700.0]
    timeout = 900 if quick else 3600
    rows, results = [], {}
    load_before = os.getloadavg()[0]
    results["superlu"] = _collect(_spawn({"path": str(path), "backend": "superlu", "freqs_hz": freqs_lu}), timeout)
    rows.append(_row("1 process", results["superlu"]))
    have_pardiso = "pardiso" in available_solvers()
    if have_pardiso:
        spec = {"path": str(path), "backend": "pardiso", "freqs_hz": freqs_pd, "options": {"threads": 1}}
        results["pardiso"] = _collect(_spawn(spec), timeout)
        rows.append(_row("1 process", results["pardiso"]))
        pair = [_spawn(spec), _spawn(spec)]
        side = [_collect(p, timeout) for p in pair]
        for k, r in enumerate(side):
            rows.append(_row(f"2 side by side (#{k + 1})", r))
    if have_pardiso:
        sweep = _dask_sweep(path, n_freqs=16 if quick else 48)
        rows.append(sweep["row"])
    notes = [f"system: {description}; 1 thread per process; C = 0.004 K; frequencies "
             f"superlu {freqs_lu} Hz, pardiso {freqs_pd} Hz; medians of the per-frequency times "
             f"(wall and CPU: the machine is shared, load average {load_before:.1f} before and "
             f"{os.getloadavg()[0]:.1f} after the run)."]
    if have_pardiso:
        med = lambda key, r: float(np.median(r[key]))  # noqa: E731
        lu, pd = med("times_s", results["superlu"]), med("times_s", results["pardiso"])
        lu_cpu, pd_cpu = med("cpu_s", results["superlu"]), med("cpu_s", results["pardiso"])
        pd2 = float(np.median(np.concatenate([r["times_s"] for r in side])))
        notes.append(
            f"ratio superlu / pardiso per frequency (1 core): {lu / pd:.1f}x wall, {lu_cpu / pd_cpu:.1f}x CPU "
            f"(target >= 10x at level 7); side by side pardiso {pd2:.2f} s per frequency per process "
            f"= {2 / pd2:.2f} frequencies/s on 2 cores."
        )
        notes.append(
            "issue 6 figures at 611,880 DOF: superlu ~%.0f s (%.1f GB), pardiso %.1f s (%.1f GB, analysis %.1f s), "
            "side by side %.2f s each." % (ISSUE["superlu_s"], ISSUE["superlu_gb"], ISSUE["pardiso_s"],
                                          ISSUE["pardiso_gb"], ISSUE["pardiso_analysis_s"],
                                          ISSUE["pardiso_side_by_side_s"])
        )
        notes.append(
            f"dask sweep row: femfreq.solve on an embedded LocalCluster of 2 one-thread workers, "
            f"{sweep['n']} frequencies spread over 0..1000 Hz in {sweep['wall']:.1f} s: start-up (call to the "
            f"first chunk: cluster, scatter) {sweep['startup']:.1f} s, then {sweep['per_freq']:.2f} s per "
            f"frequency per worker (steady, from the chunk timeline), so 2048 frequencies "
            f"~ {sweep['est_2048_min']:.1f} min (goal: 35 min)."
        )
    else:
        notes.append("pardiso not available here: only superlu measured.")
    return {"name": "solvers", "rows": rows, "notes": " ".join(notes)}




def _dask_sweep(path, n_freqs):
    """A direct sweep through femfreq.solve on 2 one-thread local workers: the real pipeline.

    The result file's chunk timeline splits the wall time into the start-up (call to
    the first chunk: cluster, scatter, analyses) and the steady rate (frequencies per
    second once every worker is busy), so the 2048-frequency estimate is
    ``start-up + 2048 / rate`` rather than the short run's average.
    """
    import h5py

    import femfreq

    system = _load_system(path)
    freqs = np.linspace(0.0, 1000.0, n_freqs + 1)[1:]  # 0 Hz (K alone) is not typical
    out = Path(tempfile.mkdtemp()) / "direct.h5"
    with one_thread_env():
        t0, epoch0 = time.perf_counter(), time.time()
        result = femfreq.solve(system, freqs_hz=freqs, method=femfreq.Direct(solver="pardiso"),
                               cluster=femfreq.Local(n_workers=2), progress=False, out=out)
        wall = time.perf_counter() - t0
    with h5py.File(out, "r") as h5:
        chunks = h5["chunks"][:]
    out.unlink()
    # the steady rate: each worker's frequencies over its busy time after its first chunk
    per_worker = []
    for w in np.unique(chunks["worker"]):
        c = np.sort(chunks[chunks["worker"] == w], order="t_start")
        if c.size > 1:
            per_worker.append((c["t_end"][-1] - c["t_end"][0]) / c["count"][1:].sum())
    per = float(np.median(per_worker)) if per_worker else 2 * wall / n_freqs  # s per frequency per worker
    startup = float(chunks["t_start"].min() - epoch0)
    est_2048 = startup + per * 2048 / 2
    row = {
        "backend": "pardiso", "layout": "dask sweep, 2 workers", "n_dof": system.n, "nnz": system.nnz,
        "freqs": n_freqs, "analysis_s": None, "analysis_cpu_s": None,
        "per_freq_median_s": round(per, 3), "per_freq_max_s": None, "per_freq_cpu_median_s": None,
        "factor_gflop": None, "gflop_per_s": None,
        "peak_rss_mb": None, "solver_rss_mb": None,
        "max_rel_residual": float(f"{np.max(result.rel_residual):.2e}"),
        "max_backward_error": float(f"{np.max(result.backward_error):.2e}"),
    }
    return {"row": row, "n": n_freqs, "wall": wall, "per_freq": per, "startup": startup,
            "est_2048_min": est_2048 / 60}


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="level 7 (~612k DOF): heavy")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    print(markdown(run(quick=not args.full)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
