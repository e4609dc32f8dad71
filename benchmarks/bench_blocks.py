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


def _sweep(system, freqs, parts, tol, bands=None):
    """solve_band on each sub-band in turn: (seconds, totals); one row per band into ``bands``."""
    from femfreq.solvers import clear_caches
    from femfreq.solvers.fast import solve_band

    clear_caches()  # every run pays its own analysis
    t0 = time.perf_counter()
    bases, fact, fallbacks, worst = [], 0, 0, 0.0
    for i, p in enumerate(parts):
        tb = time.perf_counter()
        r = solve_band(system, freqs[p], np.ones(p.size), tol=tol)
        bases += r.info["basis_sizes"]
        fact += r.info["n_factorizations"]
        fallbacks += r.info["n_fallback"]
        worst = max(worst, float(r.rel_residual.max()))
        if bands is not None:
            bands.append({"tol": f"{tol:g}", "band": i, "hz": f"{freqs[p][0]:.0f}..{freqs[p][-1]:.0f}",
                          "s": round(time.perf_counter() - tb, 1), "vectors": sum(r.info["basis_sizes"]),
                          "shifts_hz": " ".join(f"{x:.0f}" for x in r.info["shifts_hz"]),
                          "max_rel_residual": float(r.rel_residual.max())})
    return time.perf_counter() - t0, {"vectors": sum(bases), "factorizations": fact, "fallbacks": fallbacks,
                                      "max_rel_residual": worst}


def tol_rows(system, description, *, reps=3, n_chunks=16, bands=None):
    """tol 1e-6 and 1e-8 interleaved on the sweep's sub-bands: medians and their ratio (the
    last repetition's bands into ``bands``)."""
    from femfreq.plan import plan_chunks
    from femfreq.solvers.fast import mode_weights

    freqs = np.linspace(0.0, 1000.0, 2049)
    parts = plan_chunks(freqs.size, 1, method="fast", chunks_per_worker=n_chunks,
                        weights=mode_weights(system, freqs))
    parts.sort(key=lambda c: int(c[0]))  # in frequency order
    times = {1e-6: [], 1e-8: []}
    totals = {}
    for rep in range(reps):
        for tol in times:
            t, totals[tol] = _sweep(system, freqs, parts, tol, bands if rep == reps - 1 else None)
            times[tol].append(t)
    med = {tol: float(np.median(t)) for tol, t in times.items()}
    return [{"model": description, "tol": f"{tol:g}", "sub-bands": len(parts), "median_s": round(med[tol], 1),
             **totals[tol], "ratio vs 1e-6": round(med[tol] / med[1e-6], 2)} for tol in times]


def _system(level):
    from benchmarks.bench_fast import _load_system, _prepare

    path, description = _prepare(level)
    return _load_system(path, "g"), description.split(" (")[0]


def run(quick: bool = True, *, levels=None, band=True, solves=True, chunks=16, reps=None) -> dict:
    """Block-solve ratios (and the band's tol ratio) at the given satellite levels (quick: 3).

    ``chunks`` sub-bands; ``reps`` repetitions of the band part (default 1 quick, else 3).
    The result's ``"bands"``: each band's time, vectors and shifts in the last repetition.
    """
    levels = levels or ([3] if quick else [4, 5])
    reps = reps or (1 if quick else 3)
    rows, tols, bands = [], [], []
    with one_thread_env():
        for level in levels:
            system, description = _system(level)
            if solves:
                rows += solve_rows(system, description)
            if band:
                tols += tol_rows(system, description, reps=reps, n_chunks=chunks, bands=bands)
    notes = ("One process, one thread; 'k single' = k calls with one right-hand side, 'one k-RHS' = one call "
             f"with k (medians of 7, alternated). Band: 2049 frequencies 0..1000 Hz, g = 0.02, C = 0, {chunks} "
             "sub-bands of equal mode count solved one after another, tol 1e-6 and 1e-8 interleaved "
             "(medians). The machine is shared: compare the ratios, not the times.")
    return {"name": "block solves and the tolerance ratio", "rows": rows + tols, "notes": notes, "bands": bands}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--level", default=None, help="satellite levels, comma separated (default 3)")
    p.add_argument("--no-band", action="store_true", help="only the solve timings")
    p.add_argument("--no-solves", action="store_true", help="only the band at two tolerances")
    p.add_argument("--chunks", type=int, default=16, help="sub-bands of the band part (default 16)")
    p.add_argument("--reps", type=int, default=None, help="repetitions of the band part (default 1, or 3 "
                                                          "with --level)")
    p.add_argument("--per-band", action="store_true", help="also each band's time, vectors and shifts")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.level.split(",")] if args.level else None
    result = run(quick=levels is None, levels=levels, band=not args.no_band, solves=not args.no_solves,
                 chunks=args.chunks, reps=args.reps)
    solves = [r for r in result["rows"] if "k" in r]
    tols = [r for r in result["rows"] if "tol" in r]
    if solves:
        print(markdown({**result, "rows": solves}))
    if tols:
        print(markdown({"name": "fast band: tol 1e-8 vs 1e-6", "rows": tols,
                        "notes": "" if solves else result["notes"]}))
    if args.per_band and result["bands"]:
        print(markdown({"name": "each band, last repetition", "rows": result["bands"], "notes": ""}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
