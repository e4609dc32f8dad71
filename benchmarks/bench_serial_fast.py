"""The serial fast sweep: fixed 256-frequency bands (before) vs the planner's mode-weighted bands (after).

Satellite with light structural damping (g = 0.02, C = 0), 2049 frequencies 0..1000 Hz,
tol 1e-6, one thread, in this process, side by side in one run:

- ``fixed 256``: what a serial ``femfreq.solve(method="fast", cluster=None)`` did before the
  restructuring: contiguous bands of 256 frequencies, each its own certified basis;
- ``solve(cluster=None)``: the serial sweep now: the same planner as the dask path
  (:func:`femfreq.plan.plan_sweep` with :func:`femfreq.solvers.fast.mode_weights`, one worker);
- ``2-worker plan, in process``: the bands a 2-worker dask sweep would get, run one after
  another here (the figure the serial sweep should come within 1.2x of).

Each row is the median of the repeats; the three variants alternate within a repeat.

    python -m benchmarks.bench_serial_fast          # quick: level 2
    python -m benchmarks.bench_serial_fast --full   # level 4, 3 repeats
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import numpy as np
from benchmarks._common import markdown, one_thread_env


def _system(level):
    from femfreq.model import Damping, load_model

    model = load_model("satellite", level=level)
    return dataclasses.replace(model, damping=Damping(g=0.02)).system()


def _run_bands(system, freqs, bands):
    """Solve the bands one after another with the fast method; (seconds, max residual, n fallbacks)."""
    from femfreq.execute.task import solve_chunk
    from femfreq.options import Fast
    from femfreq.solvers import clear_caches

    t0 = time.perf_counter()
    worst, fallbacks = 0.0, 0
    try:
        for idx in bands:
            r = solve_chunk(system, idx, freqs[idx], np.ones(idx.size), Fast())
            worst = max(worst, float(np.nanmax(r.rel_residual)))
            fallbacks += int(np.sum(r.method == 1))
    finally:
        clear_caches()
    return time.perf_counter() - t0, worst, fallbacks, len(bands)


def _variants(system, freqs):
    from femfreq import plan
    from femfreq.solvers.fast import mode_weights

    def fixed():
        return _run_bands(system, freqs, [np.arange(i, min(i + 256, freqs.size)) for i in range(0, freqs.size, 256)])

    def serial():
        import femfreq

        t0 = time.perf_counter()
        r = femfreq.solve(system, freqs_hz=freqs, method="fast", cluster=None, progress=False)
        seconds = time.perf_counter() - t0
        n_bands = len(plan.plan_sweep(system, freqs, 1, "fast", weights=mode_weights(system, freqs), serial=True))
        return seconds, float(np.nanmax(r.rel_residual)), int(np.sum(r.method == 1)), n_bands

    def two_worker_plan():
        t0 = time.perf_counter()
        bands = plan.plan_sweep(system, freqs, 2, "fast", weights=mode_weights(system, freqs))
        _, worst, fallbacks, n = _run_bands(system, freqs, bands)
        return time.perf_counter() - t0, worst, fallbacks, n  # the Sturm counts included, as in solve()

    return {"fixed 256 (before)": fixed, "solve(cluster=None) (after)": serial,
            "2-worker plan, in process": two_worker_plan}


def run(quick: bool = True, *, level: int | None = None, repeats: int | None = None) -> dict:
    level = level or (2 if quick else 4)
    repeats = repeats or (1 if quick else 3)
    freqs = np.linspace(0.0, 1000.0, 2049)
    with one_thread_env():
        system = _system(level)
        variants = _variants(system, freqs)
        times = {name: [] for name in variants}
        last = {}
        for _ in range(repeats):
            for name, fn in variants.items():
                seconds, worst, fallbacks, n_bands = fn()
                times[name].append(seconds)
                last[name] = (worst, fallbacks, n_bands)
    reference = statistics.median(times["2-worker plan, in process"])
    rows = []
    for name, ts in times.items():
        worst, fallbacks, n_bands = last[name]
        rows.append({
            "variant": name,
            "median_s": round(statistics.median(ts), 1),
            "runs_s": "/".join(f"{t:.1f}" for t in ts),
            "ratio_to_2_worker_plan": round(statistics.median(ts) / reference, 2),
            "bands": n_bands,
            "fallbacks": fallbacks,
            "max_rel_residual": worst,
        })
    notes = (f"satellite level {level}, {system.n:,} DOF, g = 0.02, C = 0; 2049 frequencies 0..1000 Hz, "
             f"tol 1e-6, one thread, {repeats} repeat(s), variants alternating. 'ratio' is against the "
             "2-worker plan run in this process (target for the serial sweep: <= 1.2).")
    return {"name": "serial fast sweep: bands before/after", "rows": rows, "notes": notes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="level 4, 3 repeats")
    p.add_argument("--level", type=int, help="satellite level (default 2, or 4 with --full)")
    p.add_argument("--repeats", type=int, help="repeats (default 1, or 3 with --full)")
    args = p.parse_args(argv)
    print(markdown(run(quick=not args.full, level=args.level, repeats=args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
