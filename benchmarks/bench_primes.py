"""Primes on dask: our chunked split vs the reference's strided split, side by side in one run.

Sum of the unique prime factors of every integer in [A, B) (``sympy.primefactors``), computed
serially in this process, then on a local dask cluster of 2 one-thread worker processes with

- ``strided``: task i takes ``range(A + i, B, n_workers)`` (the reference split), and the
  same with 3 tasks (the reference ran 3 jobs: the one holding the multiples of 3 is cheaper),
- ``chunks x1``: one contiguous block per worker (static, equal lengths),
- ``chunks x8``: 8 contiguous blocks per worker, most expensive first (our default).

Quick: [2, 400000); full: [2, 10**7) (the reference range; sum 5495501355056). The sieve
(``primes_sieve``) checks every sum.
"""

from __future__ import annotations

import os
import sys
import time

N_WORKERS = 2


def _ranges(quick):
    return (2, 400_000) if quick else (2, 10**7)


def run(quick: bool = True) -> dict:
    """Run the comparison; rows = one per split, with imbalance, overhead and efficiency."""
    from femfreq.calibrate.primes import primes_metrics, primes_on_dask, primes_serial, primes_sieve
    from femfreq.execute import open_client
    from femfreq.options import Local

    a, b = _ranges(quick)
    load = [round(x, 1) for x in os.getloadavg()]
    t0 = time.perf_counter()
    expected = primes_sieve(a, b)
    sieve_s = time.perf_counter() - t0

    primes_serial(2, 100)  # import sympy before timing
    t0, c0 = time.perf_counter(), time.thread_time()
    serial = primes_serial(a, b)
    serial_s, serial_cpu = time.perf_counter() - t0, time.thread_time() - c0

    rows, details = [], []
    rows.append({"split": "serial (1 process)", "n_tasks": 1, "wall_s": serial_s, "correct": serial == expected})
    cases = (
        ("strided", "strided", N_WORKERS),
        ("strided, 3 tasks (reference)", "strided", 3),
        ("chunks x1", "chunks", N_WORKERS),
        ("chunks x8 (default)", "chunks", 8 * N_WORKERS),
    )
    with open_client(Local(n_workers=N_WORKERS, threads_per_worker=1, dashboard=False)) as client:
        client.run(primes_serial, 2, 100)  # import sympy in every worker before timing
        for label, split, n_tasks in cases:
            run_ = primes_on_dask(client, a, b, split=split, n_tasks=n_tasks)
            # the serial CPU time is what the serial loop takes on an idle core
            wall = primes_metrics(run_, serial_cpu)
            cpu = primes_metrics(run_, serial_cpu, clock="cpu")
            rows.append(
                {
                    "split": label,
                    "n_tasks": wall["n_tasks"],
                    "wall_s": wall["wall_s"],
                    "correct": run_.total == expected,
                    "task_cpu_s": [round(v, 2) for v in cpu["task_seconds"]] if n_tasks <= 4 else f"{len(run_.tasks)} tasks",
                    "busy_cpu_per_worker_s": sorted(round(v, 2) for v in cpu["worker_busy_s"].values()),
                    "critical_cpu_s": max(cpu["worker_busy_s"].values()),
                    "imbalance_wall": wall["imbalance"],
                    "imbalance_cpu": cpu["imbalance"],
                    "overhead_cpu": cpu["overhead"],
                    "speedup": wall["speedup"],
                    "efficiency": wall["efficiency"],
                }
            )
            t_first = min(t["t_start"] for t in run_.tasks)
            details.append(
                {
                    "split": label,
                    "tasks": [
                        {"worker": t["worker"], "start": t["t_start"] - t_first, "seconds": t["seconds"],
                         "cpu_seconds": t["cpu_seconds"], "range": [t["start"], t["stop"], t["step"]]}
                        for t in run_.tasks
                    ],
                }
            )
    strided = next(r for r in rows if r["split"] == "strided")
    for r in rows[1:]:
        r["wall_vs_strided"] = r["wall_s"] / strided["wall_s"]
        r["critical_cpu_vs_strided"] = r["critical_cpu_s"] / strided["critical_cpu_s"]
    return {
        "name": "Primes: sum of unique prime factors, strided vs chunked split",
        "rows": rows,
        "notes": (
            f"Range [{a}, {b}), sum {expected} (sieve, {sieve_s:.2f} s); {N_WORKERS} local dask workers x 1 thread; "
            f"serial {serial_s:.2f} s wall, {serial_cpu:.2f} s CPU. "
            f"load average at start {load}. imbalance = max/mean per-worker busy time (wall clock, or the "
            "workers' CPU time: on a machine shared with other jobs the dynamic split balances wall time, "
            "so its CPU imbalance follows the CPU share each worker got); the static splits' task_cpu_s "
            "show their unequal work. overhead_cpu = sum of task CPU times / serial CPU time; "
            "speedup = serial CPU time / dask wall (the serial CPU time is its wall time on an idle core), "
            "efficiency = speedup / workers; "
            "wall_vs_strided < 1 is faster than the reference split; critical_cpu_s = CPU time of the busiest "
            "worker, the wall time on an idle machine (its ratio does not depend on the load of the moment)."
        ),
        "details": details,
        "range": [a, b],
        "expected": expected,
    }


def plot(result: dict, out_dir: str) -> list[str]:
    """Task timelines per worker, one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    details = result["details"]
    fig, axes = plt.subplots(len(details), 1, figsize=(8, 1.6 + 1.3 * len(details)), sharex=True, squeeze=False)
    for ax, d in zip(axes[:, 0], details):
        workers = sorted({t["worker"] for t in d["tasks"]})
        for t in d["tasks"]:
            y = workers.index(t["worker"])
            ax.barh(y, t["seconds"], left=t["start"], height=0.6, edgecolor="k", linewidth=0.5)
        ax.set_yticks(range(len(workers)), [f"worker {i}" for i in range(len(workers))])
        ax.set_title(f"{d['split']}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds since first task started")
    a, b = result["range"]
    fig.suptitle(f"Primes [{a}, {b}): tasks per worker")
    fig.tight_layout()
    path = os.path.join(out_dir, "primes_tasks.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    from benchmarks._common import markdown

    res = run(quick="--full" not in sys.argv[1:])
    print(markdown(res))
