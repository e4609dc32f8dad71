"""Certified fast sweep vs direct solves, side by side on the same model.

The band 0..1000 Hz (2049 frequencies) is cut into contiguous chunks, as the sweep
does for ``method="fast"``; the chunks run on two 1-thread worker processes (the
layout of a 2-worker dask sweep on this 2-core machine), each building and
certifying its own basis with :func:`femfreq.solvers.fast.solve_band`. Then direct
solves (``get_solver(system, "auto")``) at sampled frequencies -- the highest
resonance peaks of the fast result, 0 Hz, the band edges and a few others -- give
the per-frequency direct time and the largest relative difference
``||x_fast - x_direct|| / ||x_direct||`` at the output DOF.

Two damping cases: the reference ``C = 0.004 K`` and light structural damping
``g = 0.02`` without ``C``. Quick: satellite level 3 (~15k DOF); full: level 7
(~612k DOF), targets < 120 s and < 240 s for the whole sweep.

    python -m benchmarks.bench_fast          # quick
    python -m benchmarks.bench_fast --full   # level 7: heavy (several GB per worker)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from benchmarks._common import model_key, one_thread_env

TARGETS_S = {"beta": 120.0, "g": 240.0}
#: the whole job's goals at level 7 (model build to closed result file, 2 workers)
WHOLE_GOALS_S = {"beta": 15.0, "g": 60.0}


def _cache_dir() -> Path:
    d = Path(os.environ.get("FEMFREQ_BENCH_CACHE", Path(tempfile.gettempdir()) / "femfreq-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _prepare(level: int) -> tuple[Path, str]:
    """Write (once) the satellite's K, C, M, b and output DOF to an .npz; return path, description."""
    path = _cache_dir() / f"fast-satellite-level{level}-{model_key()}.npz"
    if path.exists():
        return path, str(np.load(path)["description"])
    from femfreq.model import load_model

    t0 = time.perf_counter()
    s = load_model("satellite", level=level).system()
    description = f"satellite level {level}, {s.n:,} DOF (built in {time.perf_counter() - t0:.0f} s)"
    np.savez(path, K_data=s.K.data, K_indices=s.K.indices, K_indptr=s.K.indptr,
             C_data=s.C.data, C_indices=s.C.indices, C_indptr=s.C.indptr,
             M_data=s.M.data, M_indices=s.M.indices, M_indptr=s.M.indptr,
             b=s.b, out=s.output_dofs, description=description)
    return path, description


def _load_system(path, case):
    from femfreq.system import System

    z = np.load(path)
    n = z["b"].size
    K, C, M = (sp.csc_matrix((z[f"{k}_data"], z[f"{k}_indices"], z[f"{k}_indptr"]), shape=(n, n))
               for k in "KCM")
    if case == "beta":
        return System(K=K, C=C, M=M, b=z["b"], output_dofs=z["out"], name="satellite-beta")
    return System(K=K, C=None, M=M, b=z["b"], g=0.02, output_dofs=z["out"], name="satellite-g")


_SYSTEMS = {}


def _chunk(args):
    """One worker task: solve_band on a contiguous chunk; returns arrays, info and peak RSS."""
    path, case, freqs, tol = args
    from femfreq.solvers.fast import solve_band

    key = (str(path), case)
    if key not in _SYSTEMS:
        _SYSTEMS[key] = _load_system(path, case)
    t0 = time.perf_counter()
    r = solve_band(_SYSTEMS[key], freqs, np.ones(freqs.size), tol=tol)
    info = {k: v for k, v in r.info.items() if k != "fast_residual"}
    return {"response": r.response, "rel": r.rel_residual, "method": r.method,
            "seconds": time.perf_counter() - t0, "info": info, "pid": os.getpid(),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _fast_sweep(path, case, freqs, n_chunks, n_workers, tol, split="modes"):
    """The whole fast sweep on n_workers 1-thread processes; (wall seconds, merged results).

    ``split="modes"``: sub-bands of equal mode count (the planner with
    ``mode_weights``, Sturm counts included in the wall time), in the planner's order;
    ``"width"``: equal widths in order.
    """
    with one_thread_env():
        t0 = time.perf_counter()
        if split == "modes":
            from femfreq.plan import plan_chunks
            from femfreq.solvers.fast import mode_weights

            weights = mode_weights(_load_system(path, case), freqs)
            parts = plan_chunks(freqs.size, 1, method="fast", chunks_per_worker=n_chunks, weights=weights)
        else:
            parts = np.array_split(np.arange(freqs.size), n_chunks)
        chunks = [freqs[c] for c in parts]
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn")) as pool:
            outs = list(pool.map(_chunk, [(path, case, c, tol) for c in chunks]))
        wall = time.perf_counter() - t0
    pos = np.argsort(np.concatenate(parts), kind="stable")
    merged = {
        "response": np.concatenate([o["response"] for o in outs])[pos],
        "rel": np.concatenate([o["rel"] for o in outs])[pos],
        "method": np.concatenate([o["method"] for o in outs])[pos],
        "basis_sizes": [m for o in outs for m in o["info"]["basis_sizes"]],
        "n_factorizations": sum(o["info"]["n_factorizations"] for o in outs),
        "chunk_seconds": [o["seconds"] for o in outs],
        "phase_s": {ph: sum(o["info"]["timings"][ph] for o in outs) for ph in outs[0]["info"]["timings"]},
        "peak_mb": max(o["peak_mb"] for o in outs),
        "factor": outs[0]["info"]["factor"],
    }
    return wall, merged


def _sample(freqs, response, n_peaks):
    """Indices of the highest resonance peaks of |x| plus 0 Hz, the edges and a few others."""
    amp = np.linalg.norm(response, axis=1)
    peaks = np.flatnonzero((amp[1:-1] > amp[:-2]) & (amp[1:-1] >= amp[2:])) + 1
    peaks = peaks[np.argsort(amp[peaks])[::-1][:n_peaks]]
    others = np.linspace(0, freqs.size - 1, 5).astype(int)
    return np.unique(np.concatenate([peaks, others]))


def _case(path, description, case, *, n_freqs, n_chunks, n_workers, tol, n_peaks, split="modes"):
    from femfreq.solvers import get_solver

    freqs = np.linspace(0.0, 1000.0, n_freqs)
    wall, fast = _fast_sweep(path, case, freqs, n_chunks, n_workers, tol, split)
    system = _load_system(path, case)
    idx = _sample(freqs, fast["response"], n_peaks)
    solver = get_solver(system, "auto", threads=1) if _has_threads_option() else get_solver(system, "auto")
    times, diffs = [], []
    for i in idx:
        t0 = time.perf_counter()
        x = solver.solve(2 * np.pi * freqs[i], system.b.astype(complex))
        times.append(time.perf_counter() - t0)
        ref = x[system.output_dofs]
        diffs.append(np.linalg.norm(fast["response"][i] - ref) / np.linalg.norm(ref))
    t_direct = float(np.median(times[1:] if len(times) > 1 else times))  # first includes warm-up
    return {
        "model": description.split(" (")[0],
        "damping": "C = 0.004 K" if case == "beta" else "g = 0.02, C = 0",
        "n_freqs": n_freqs,
        "workers": n_workers,
        "chunks": f"{n_chunks} ({split})",
        "fast_wall_s": round(wall, 1),
        "target_s (level 7)": TARGETS_S[case],
        "basis_sizes": "+".join(str(m) for m in fast["basis_sizes"]),
        "basis_total": int(sum(fast["basis_sizes"])),
        "factorizations": fast["n_factorizations"],
        "fallbacks": int((fast["method"] == 1).sum()),
        "max_rel_residual": float(fast["rel"].max()),
        "sampled_freqs": len(idx),
        "max_rel_diff_vs_direct": float(max(diffs)),
        "direct_s_per_freq": round(t_direct, 3),
        "direct_sweep_est_s (2 workers)": round(t_direct * n_freqs / n_workers, 1),
        "speedup": round(t_direct * n_freqs / n_workers / wall, 1),
        "chunk_s": "/".join(f"{t:.0f}" for t in fast["chunk_seconds"]),
        "cpu_s (factor/krylov/certify)": "/".join(f"{fast['phase_s'][k]:.0f}" for k in ("factor", "krylov", "certify")),
        "peak_rss_per_worker_mb": round(fast["peak_mb"]),
        "direct_backend": solver.name,
        "factor_backend": fast["factor"],
    }


def whole_job(level: int, case: str, *, n_freqs: int = 2049) -> dict:
    """The whole job as a user runs it: build the model, then ``femfreq.solve(method="fast")``
    on an embedded LocalCluster of 2 one-thread workers, writing the HDF5 result file.

    The wall time covers meshing and assembly, cluster start, scatter, Sturm counts,
    every sub-band and the file; the result file's residuals and methods are read back.
    """
    import dataclasses

    import femfreq
    from femfreq.model import Damping, load_model
    from femfreq.results import read_results

    out = Path(tempfile.mkdtemp()) / f"satellite{level}-{case}.h5"
    with one_thread_env():
        t0, epoch0 = time.perf_counter(), time.time()
        model = load_model("satellite", level=level)
        if case == "g":
            model = dataclasses.replace(model, damping=Damping(g=0.02))
        t_model = time.perf_counter() - t0
        femfreq.solve(model, method="fast", freqs_hz=np.linspace(0.0, 1000.0, n_freqs), out=out,
                      cluster=femfreq.Local(n_workers=2), progress=False)
        wall = time.perf_counter() - t0
    r = read_results(out)
    import h5py

    with h5py.File(out, "r") as h5:  # the timeline: when the first task started, the last ended
        chunks = h5["chunks"][:]
    row = {
        "model": f"satellite level {level}, {model.n_free:,} DOF",
        "damping": "C = 0.004 K" if case == "beta" else "g = 0.02, C = 0",
        "n_freqs": n_freqs, "workers": 2,
        "whole_job_s": round(wall, 1), "model_build_s": round(t_model, 1),
        "goal_s (level 7)": WHOLE_GOALS_S[case],
        "fallbacks": int((r.method == 1).sum()), "fast": int((r.method == 2).sum()),
        "max_rel_residual": float(np.max(r.rel_residual)),
        "result_file_mb": round(out.stat().st_size / 2**20, 1),
        "first_task_start_s": round(float(chunks["t_start"].min()) - epoch0, 1),
        "last_task_end_s": round(float(chunks["t_end"].max()) - epoch0, 1),
        # balance: chunk seconds per worker, and how long the first worker to finish then idled
        "busy_s_per_worker": "/".join(f"{b:.0f}" for b in _busy(chunks).values()),
        "idle_tail_s": round(float(chunks["t_end"].max()) - min(_last_ends(chunks).values()), 1),
    }
    out.unlink()
    return row


def _workers(chunks):
    return [w.decode() if isinstance(w, bytes) else str(w) for w in chunks["worker"]]


def _busy(chunks) -> dict:
    """Seconds of chunks per worker (the /chunks table of a result file)."""
    busy = {}
    for w, a, b in zip(_workers(chunks), chunks["t_start"], chunks["t_end"]):
        busy[w] = busy.get(w, 0.0) + float(b - a)
    return busy


def _last_ends(chunks) -> dict:
    ends = {}
    for w, b in zip(_workers(chunks), chunks["t_end"]):
        ends[w] = max(ends.get(w, -np.inf), float(b))
    return ends


def direct_side_by_side(level: int, freqs_hz=(100.0, 400.0, 700.0)) -> dict:
    """PARDISO per frequency on two 1-thread processes side by side (a 2-worker direct sweep's layout).

    Uses :mod:`benchmarks.bench_solvers`' worker on the same satellite level
    (C = 0.004 K; a complex factorization costs the same for g = 0.02). The median
    over both processes and all but nothing else: the analysis is timed apart.
    """
    from benchmarks import bench_solvers as bs

    path, _ = bs._prepare(level)
    spec = {"path": str(path), "backend": "pardiso", "freqs_hz": list(freqs_hz), "options": {"threads": 1}}
    pair = [bs._spawn(spec), bs._spawn(spec)]
    side = [bs._collect(p, 3600) for p in pair]
    times = np.concatenate([r["times_s"] for r in side])
    return {"per_freq_s": float(np.median(times)), "analysis_s": float(np.median([r["analysis_s"] for r in side])),
            "factor_gflop": side[0]["stats"].get("factor_mflop", 0) / 1e3}


def _has_threads_option():
    try:
        from femfreq.solvers.pardiso import PardisoSolver  # noqa: F401
    except ImportError:
        return False
    import inspect

    return "threads" in inspect.signature(PardisoSolver.__init__).parameters


def run(quick: bool = True, *, level: int | None = None, cases=("beta", "g"), split="auto",
        n_chunks: int | None = None, progress=None) -> dict:
    """Fast vs direct on the satellite (quick: level 3; full: level 7), both damping cases."""
    level = level or (3 if quick else 7)
    path, description = _prepare(level)
    rows = []
    for case in cases:
        rows.append(_case(path, description, case, n_freqs=2049, n_chunks=n_chunks or (2 if case == "beta" else 12),
                          n_workers=2, tol=1e-6, n_peaks=6,
                          split=split if split != "auto" else ("width" if case == "beta" else "modes")))
        if progress is not None:
            progress(rows[-1])
    notes = (
        f"{description}; 2049 frequencies 0..1000 Hz, tol 1e-6 (relative residual), contiguous "
        "chunks on 2 one-thread processes, each chunk its own certified basis (solve_band). "
        "Direct: get_solver('auto') at the sampled frequencies (6 highest resonance peaks of the "
        "fast result + 5 spread), median time per frequency; 'direct_sweep_est_s' = that x 2049 / 2. "
        "The machine is shared: wall times are indicative. Targets (issue 6, level 7): "
        "< 120 s with C = 0.004 K, < 240 s with g = 0.02."
    )
    return {"name": "fast sweep vs direct", "rows": rows, "notes": notes}


def tolerance_cost(level: int, case: str = "g", tols=(1e-6, 1e-8), *, repeats: int = 2,
                   n_chunks: int = 12) -> dict:
    """The fast sweep at each tolerance, interleaved ``repeats`` times in one run: wall
    seconds (median), vectors, factorizations, the largest residual and the ratio to the
    first tolerance. The same sub-bands (12 of equal mode count for g, as the planner makes for 2 workers) on 2 one-thread
    processes; the Sturm counts are in each wall time."""
    path, description = _prepare(level)
    freqs = np.linspace(0.0, 1000.0, 2049)
    split = "width" if case == "beta" else "modes"
    n_chunks = 2 if case == "beta" else n_chunks
    walls = {t: [] for t in tols}
    last = {}
    for _ in range(repeats):
        for t in tols:
            wall, merged = _fast_sweep(path, case, freqs, n_chunks, 2, t, split)
            walls[t].append(wall)
            last[t] = merged
    base = float(np.median(walls[tols[0]]))
    rows = []
    for t in tols:
        m = last[t]
        rows.append({
            "model": description.split(" (")[0], "damping": "C = 0.004 K" if case == "beta" else "g = 0.02, C = 0",
            "tol": f"{t:.0e}", "runs_s": "/".join(f"{w:.1f}" for w in walls[t]),
            "median_s": round(float(np.median(walls[t])), 1),
            f"ratio to {tols[0]:.0e}": round(float(np.median(walls[t])) / base, 2),
            "vectors": int(sum(m["basis_sizes"])), "factorizations": m["n_factorizations"],
            "fallbacks": int((m["method"] == 1).sum()), "max_rel_residual": float(m["rel"].max()),
        })
    return {"name": "fast sweep cost against its tolerance", "rows": rows,
            "notes": f"{description}; 2049 frequencies 0..1000 Hz, {n_chunks} sub-bands ({split}) on 2 one-thread "
                     f"processes, the tolerances interleaved {repeats} times in one run (median)."}


def _markdown(result) -> str:
    rows = result["rows"]
    keys = list(rows[0])
    out = [f"## {result['name']}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(f"{r[k]:.2e}" if isinstance(r[k], float) and 0 < abs(r[k]) < 1e-2
                                       else str(r[k]) for k in keys) + " |")
    return "\n".join(out + ["", result["notes"]])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="level 7 (612k DOF): heavy")
    p.add_argument("--level", type=int, help="satellite level (default 3, or 7 with --full)")
    p.add_argument("--cases", default="beta,g", help="damping cases: beta (C = 0.004 K), g (g = 0.02)")
    p.add_argument("--split", choices=["auto", "modes", "width"], default="auto",
                   help="sub-bands of equal mode count or of equal width; auto: modes for g, width for beta "
                        "(heavy damping: the cost does not follow the modes)")
    p.add_argument("--chunks", type=int, help="number of sub-bands (default 2 for beta, 12 for g)")
    p.add_argument("--whole", action="store_true",
                   help="time the whole job instead: model build + femfreq.solve(method='fast') on a "
                        "2-worker LocalCluster + result file (no direct comparison)")
    p.add_argument("--repeats", type=int, default=1,
                   help="with --whole: run each case this many times; the table gives the median whole job "
                        "(other columns from the median run) and every run's time")
    p.add_argument("--tols", help="compare the cost at these tolerances instead, e.g. 1e-6,1e-8 "
                                  "(interleaved runs, one damping case: the first of --cases)")
    args = p.parse_args(argv)
    if args.tols:
        level = args.level or (7 if args.full else 4)
        result = tolerance_cost(level, args.cases.split(",")[0], tuple(float(t) for t in args.tols.split(",")))
        print(_markdown(result))
        return 0
    if args.whole:
        level = args.level or (7 if args.full else 3)
        load_before = os.getloadavg()[0]
        rows = []
        for case in args.cases.split(","):
            runs = []
            for _ in range(args.repeats):
                runs.append(whole_job(level, case))
                print(runs[-1], file=sys.stderr, flush=True)
            row = sorted(runs, key=lambda r: r["whole_job_s"])[(len(runs) - 1) // 2]  # the median run
            if len(runs) > 1:
                row["runs_s"] = "/".join(f"{r['whole_job_s']:.1f}" for r in runs)
                row["whole_job_s"] = round(float(np.median([r["whole_job_s"] for r in runs])), 1)
            rows.append(row)
        direct = direct_side_by_side(level)
        sweep = direct["per_freq_s"] * 2049 / 2  # two workers, the analysis left out (it favours direct)
        for row in rows:
            row["direct_s_per_freq (2 side by side)"] = round(direct["per_freq_s"], 3)
            row["direct_sweep_est_s"] = round(sweep)
            row["direct/fast"] = round(sweep / row["whole_job_s"], 1)
        print(_markdown({"name": "fast sweep, whole job", "rows": rows,
                         "notes": "wall time from model build to the closed result file; "
                                  "2049 frequencies 0..1000 Hz, tol 1e-6, embedded LocalCluster of 2 one-thread "
                                  "workers. Direct, in the same run: PARDISO on two 1-thread processes side by side, "
                                  f"median of 2 x 3 frequencies ({direct['factor_gflop']:.1f} GFlop per "
                                  f"factorization, {direct['factor_gflop'] / direct['per_freq_s']:.1f} GFlop/s); "
                                  "'direct/fast' = (direct per frequency x 2049 / 2) / fast whole job. "
                                  f"Load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after."}))
        return 0
    result = run(quick=not args.full, level=args.level, cases=args.cases.split(","), split=args.split,
                 n_chunks=args.chunks,
                 progress=lambda row: print(row, file=sys.stderr, flush=True))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
