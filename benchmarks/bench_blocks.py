"""Block solves with the fast sweep's real symmetric factorization, and the band at two tolerances.

Two measurements, each side by side in one single-thread process (medians):

1. ``k`` single-right-hand-side solves against one ``k``-right-hand-side solve with the
   factorization of ``K - s M`` that :func:`femfreq.solvers.fast.solve_band` uses
   (PARDISO type -2 when MKL loads, else SuperLU), ``k = 1, 2, 4, 8, 16``: what a
   block Krylov sequence could save per vector.
2. ``solve_band`` over 2049 frequencies 0..1000 Hz (``g = 0.02``, ``C = 0``) cut into
   16 sub-bands of equal mode count (the sweep's layout), run one after another, at
   ``tol = 1e-6`` and ``1e-8`` interleaved: the tighter tolerance's time ratio.

Quick: satellite level 3; ``--level 4,5`` for the sizes of the notes in docs/fast_sweep.md.

    python -m benchmarks.bench_blocks              # quick
    python -m benchmarks.bench_blocks --level 4,5  # ~1 min + ~5 min (level 5 band)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from benchmarks._common import markdown, one_thread_env

BLOCKS = (1, 2, 4, 8, 16)


def _median_pair(single, block, reps):
    """Median seconds of ``single()`` and ``block()``, alternated ``reps`` times."""
    ts, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        single()
        ts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        block()
        tb.append(time.perf_counter() - t0)
    return float(np.median(ts)), float(np.median(tb))


def solve_rows(system, description, *, reps=7, shift_hz=500.0):
    """One row per ``k``: k single solves vs one k-RHS solve (ms, per RHS, ratio)."""
    from femfreq.solvers.fast.factors import ShiftedFactors

    factors = ShiftedFactors(system, "auto")
    try:
        F = factors.factor((2 * np.pi * shift_hz) ** 2)
        B = np.asfortranarray(np.random.default_rng(0).standard_normal((system.n, max(BLOCKS))))
        F.solve(B[:, :2])  # warm-up: first-call allocations
        rows = []
        for k in BLOCKS:
            single, block = _median_pair(lambda k=k: [F.solve(B[:, j]) for j in range(k)],
                                         lambda k=k: F.solve(B[:, :k]), reps)
            rows.append({"model": description, "factor": F.name, "k": k,
                         "k single (ms)": round(1e3 * single, 1), "one k-RHS (ms)": round(1e3 * block, 1),
                         "per RHS single/block (ms)": f"{1e3 * single / k:.1f}/{1e3 * block / k:.1f}",
                         "ratio single/block": round(single / block, 2)})
        return rows
    finally:
        factors.close()


def _sweep(system, freqs, parts, tol):
    """solve_band on each sub-band in turn: (seconds, totals)."""
    from femfreq.solvers import clear_caches
    from femfreq.solvers.fast import solve_band

    clear_caches()  # every run pays its own analysis
    t0 = time.perf_counter()
    bases, fact, fallbacks, worst = [], 0, 0, 0.0
    for p in parts:
        r = solve_band(system, freqs[p], np.ones(p.size), tol=tol)
        bases += r.info["basis_sizes"]
        fact += r.info["n_factorizations"]
        fallbacks += r.info["n_fallback"]
        worst = max(worst, float(r.rel_residual.max()))
    return time.perf_counter() - t0, {"vectors": sum(bases), "factorizations": fact, "fallbacks": fallbacks,
                                      "max_rel_residual": worst}


def tol_rows(system, description, *, reps=3, n_chunks=16):
    """tol 1e-6 and 1e-8 interleaved on the sweep's sub-bands: medians and their ratio."""
    from femfreq.plan import plan_chunks
    from femfreq.solvers.fast import mode_weights

    freqs = np.linspace(0.0, 1000.0, 2049)
    parts = plan_chunks(freqs.size, 1, method="fast", chunks_per_worker=n_chunks,
                        weights=mode_weights(system, freqs))
    times = {1e-6: [], 1e-8: []}
    totals = {}
    for _ in range(reps):
        for tol in times:
            t, totals[tol] = _sweep(system, freqs, parts, tol)
            times[tol].append(t)
    med = {tol: float(np.median(t)) for tol, t in times.items()}
    return [{"model": description, "tol": f"{tol:g}", "sub-bands": len(parts), "median_s": round(med[tol], 1),
             **totals[tol], "ratio vs 1e-6": round(med[tol] / med[1e-6], 2)} for tol in times]


def _system(level):
    from benchmarks.bench_fast import _load_system, _prepare

    path, description = _prepare(level)
    return _load_system(path, "g"), description.split(" (")[0]


def run(quick: bool = True, *, levels=None, band=True) -> dict:
    """Block-solve ratios (and the band's tol ratio) at the given satellite levels (quick: 3)."""
    levels = levels or ([3] if quick else [4, 5])
    solves, tols = [], []
    with one_thread_env():
        for level in levels:
            system, description = _system(level)
            solves += solve_rows(system, description)
            if band:
                tols += tol_rows(system, description, reps=1 if quick else 3)
    notes = ("One process, one thread; 'k single' = k calls with one right-hand side, 'one k-RHS' = one call "
             "with k (medians of 7, alternated). Band: 2049 frequencies 0..1000 Hz, g = 0.02, C = 0, 16 "
             "sub-bands of equal mode count solved one after another, tol 1e-6 and 1e-8 interleaved "
             "(medians). The machine is shared: compare the ratios, not the times.")
    return {"name": "block solves and the tolerance ratio", "rows": solves + tols, "notes": notes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--level", default=None, help="satellite levels, comma separated (default 3)")
    p.add_argument("--no-band", action="store_true", help="only the solve timings")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.level.split(",")] if args.level else None
    result = run(quick=levels is None, levels=levels, band=not args.no_band)
    solves = [r for r in result["rows"] if "k" in r]
    tols = [r for r in result["rows"] if "tol" in r]
    print(markdown({**result, "rows": solves}))
    if tols:
        print(markdown({"name": "fast band: tol 1e-8 vs 1e-6", "rows": tols, "notes": ""}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
