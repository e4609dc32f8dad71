"""Workers femfreq starts: glibc's malloc thresholds, PARDISO's threads, memory per worker.

1. One fast sub-band (:func:`femfreq.execute.task.solve_chunk` with ``Fast()``, g = 0.02,
   C = 0) on a 1-thread dask worker started by plain dask (its nanny exports
   ``MALLOC_TRIM_THRESHOLD_=65536``), on one started by femfreq (``femfreq.execute.MALLOC_ENV``),
   and in a plain spawned process (glibc's default, dynamic thresholds): interleaved, medians
   of the time and the minor page faults measured inside the task
   (``getrusage(RUSAGE_THREAD)``), and each process's resident memory after the runs.
2. Direct factor + solve per frequency on a worker of ``Local(n_workers=1,
   threads_per_worker=2)``: PARDISO with the worker's 2 threads vs pinned to 1
   (``Direct(solver_options={"threads": 1})``), interleaved, medians; the ratio.
3. Memory: the planner's estimate per worker (:func:`femfreq.plan.worker_memory_bytes`)
   beside PARDISO's own report, a worker's resident memory before it holds a System,
   and the plan for this machine.

Quick: satellite level 3; full: level 5. ``--level N``: part 1 only, at level N (glibc's
dynamic mmap threshold stops at 32 MiB: only from level 6 on are a sub-band's tall blocks
larger than that).

    python -m benchmarks.bench_workers            # quick (< 1 min on a quiet machine)
    python -m benchmarks.bench_workers --full     # level 5 (several minutes)
    python -m benchmarks.bench_workers --level 7  # part 1 at 613,516 DOF (~10 min, ~8 GB)
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
from benchmarks._common import markdown, one_thread_env


def timed_chunk(system, index, freqs, load, method):
    """``solve_chunk`` timed inside the task: (seconds, minor page faults, ChunkResult); caches cleared first."""
    import resource

    from femfreq.execute.task import solve_chunk
    from femfreq.solvers import clear_caches

    clear_caches()
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    faults = resource.getrusage(who).ru_minflt
    t0 = time.perf_counter()
    out = solve_chunk(system, index, freqs, load, method)
    seconds = time.perf_counter() - t0
    return seconds, resource.getrusage(who).ru_minflt - faults, out


def warm_direct(system, index, freqs, load, method):
    """A direct chunk on a warm solver (the analysis done by a first call): (seconds per frequency, result)."""
    from femfreq.execute.task import solve_chunk

    solve_chunk(system, index[:1], freqs[:1], load[:1], method)
    out = solve_chunk(system, index, freqs, load, method)
    return (out.t_end - out.t_start) / index.size, out


def worker_rss() -> int:
    """Resident bytes of this process with femfreq's solvers imported."""
    import femfreq.execute.task  # noqa: F401
    import femfreq.solvers.fast  # noqa: F401

    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
    return 0


def malloc_env():
    """This process's glibc malloc thresholds from its environment, as one short string."""
    return ", ".join(f"{k}={os.environ.get(k)}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))


_POOL_SYSTEM = None


def _pool_init(system):
    global _POOL_SYSTEM
    _POOL_SYSTEM = system


def _pool_chunk(index, freqs, load, method):
    return timed_chunk(_POOL_SYSTEM, index, freqs, load, method)


def _system(level):
    from femfreq.model import load_model
    from femfreq.system import System

    s = load_model("satellite", level=level).system()
    return System(K=s.K, C=None, M=s.M, b=s.b, g=0.02, output_dofs=s.output_dofs, name=f"satellite-{level}-g")


def _malloc_rows(system, n_freqs, repeats):
    """Part 1: the same fast sub-band under three environments, interleaved."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import dask
    from distributed import Client, LocalCluster

    from femfreq.execute import KEEP_REPLICAS_CONFIG, open_client
    from femfreq.options import Fast, Local

    freqs = np.linspace(300.0, 420.0, n_freqs)
    args = (np.arange(n_freqs), freqs, np.ones(n_freqs, complex), Fast())
    # the plain process and femfreq's worker first: a dask nanny leaves its environment here
    with one_thread_env(), ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_pool_init,
                                               initargs=(system,)) as pool, \
            open_client(Local(n_workers=1, threads_per_worker=1, dashboard=False)) as ff_client:
        pool.submit(int).result()  # the process starts now
        with dask.config.set(KEEP_REPLICAS_CONFIG):
            plain_dask = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
        with plain_dask, Client(plain_dask) as dask_client:
            got, envs = _interleave(system, args, repeats, pool, ff_client, dask_client)
    base = statistics.median(s for s, _, _ in got["plain process"])
    rows = []
    for name, results in got.items():
        t = statistics.median(s for s, _, _ in results)
        faults = statistics.median(f for _, f, _ in results)
        out = results[-1][2]
        env, rss = envs[name]
        rows.append({"measure": f"fast sub-band, {name}", "value": f"{t:.2f} s",
                     "detail": f"x{t / base:.2f} of the plain process; {faults / 1e6:.2f} M minor faults; "
                               f"{rss / 1e6:.0f} MB resident after the runs; {env}; basis "
                               f"{out.info.get('basis_size')}, max rel. residual {np.max(out.rel_residual):.1e}; "
                               f"runs {', '.join(f'{s:.2f}' for s, _, _ in results)}"})
    return rows


def _interleave(system, args, repeats, pool, ff_client, dask_client):
    """The timed runs of each environment, interleaved: ({name: [(s, faults, result)]},
    {name: (malloc settings, resident bytes after the runs)})."""
    clients = {"dask default": dask_client, "femfreq": ff_client}
    envs = {name: next(iter(c.run(malloc_env).values())) for name, c in clients.items()}
    envs["plain process"] = pool.submit(malloc_env).result()
    futures = {name: c.scatter(system, broadcast=True, hash=False) for name, c in clients.items()}
    runs = {name: (lambda c=c, f=futures[name]: c.submit(timed_chunk, f, *args, pure=False).result())
            for name, c in clients.items()}
    runs["plain process"] = lambda: pool.submit(_pool_chunk, *args).result()
    for run in runs.values():  # warm-up: imports, JIT, first allocations
        run()
    got = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            got[name].append(run())
    rss = {name: next(iter(c.run(worker_rss).values())) for name, c in clients.items()}
    rss["plain process"] = pool.submit(worker_rss).result()
    return got, {name: (envs[name], rss[name]) for name in envs}


def _thread_rows(system, n_freqs, repeats):
    """Part 2: PARDISO with the worker's 2 threads vs pinned to 1, interleaved."""
    from femfreq.execute import open_client
    from femfreq.options import Direct, Local

    freqs = np.linspace(50.0, 1000.0, n_freqs)
    args = (np.arange(n_freqs), freqs, np.ones(n_freqs, complex))
    methods = {2: Direct(solver="pardiso"), 1: Direct(solver="pardiso", solver_options={"threads": 1})}
    with open_client(Local(n_workers=1, threads_per_worker=2, dashboard=False)) as client:
        future = client.scatter(system, broadcast=True, hash=False)
        per = {k: [] for k in methods}
        threads = {}
        for _ in range(repeats):
            for k, method in methods.items():
                seconds, out = client.submit(warm_direct, future, *args, method, pure=False).result()
                per[k].append(seconds)
                threads[k] = out.info["threads"]
    t1, t2 = statistics.median(per[1]), statistics.median(per[2])
    return [
        {"measure": "direct, 1 thread (pinned)", "value": f"{t1:.3f} s/freq",
         "detail": f"info threads={threads[1]}; runs {', '.join(f'{s:.3f}' for s in per[1])}"},
        {"measure": "direct, the worker's 2 threads", "value": f"{t2:.3f} s/freq",
         "detail": f"info threads={threads[2]}; runs {', '.join(f'{s:.3f}' for s in per[2])}"},
        {"measure": "2-thread speed-up", "value": f"x{t1 / t2:.2f}",
         "detail": "median 1-thread / median 2-thread time per frequency (factor + solve, analysis excluded)"},
    ]


def _memory_rows(system):
    """Part 3: the estimate per worker beside PARDISO's report; a bare worker's memory; this machine's plan."""
    from femfreq.execute import open_client
    from femfreq.options import Direct, Fast, Local
    from femfreq.plan import WORKER_BASE_BYTES, plan_workers, worker_memory_bytes
    from femfreq.solvers import PardisoSolver

    solver = PardisoSolver(system)
    solver.solve(100.0, system.b)
    reported = 1024 * (solver.stats["factor_memory_kb"] + solver.stats["analysis_memory_kb"])
    factor_nnz = solver.stats["factor_nnz"]
    solver.close()
    direct, fast = (worker_memory_bytes(system.n, system.nnz, m) for m in (Direct(), Fast()))
    with open_client(Local(n_workers=1, dashboard=False)) as client:
        (rss,) = client.run(worker_rss).values()
    import psutil

    available = psutil.virtual_memory().available
    plan = plan_workers(os.cpu_count() or 1, available, direct)
    return [
        {"measure": "estimate per worker, direct", "value": f"{direct / 1e6:.0f} MB",
         "detail": f"of which factor + analysis {(direct - WORKER_BASE_BYTES - 45 * system.nnz) / 1e6:.0f} MB; "
                   f"PARDISO reports {reported / 1e6:.0f} MB (factor nnz {factor_nnz:,})"},
        {"measure": "estimate per worker, fast", "value": f"{fast / 1e6:.0f} MB",
         "detail": "two real factors + a 100-vector basis (V, KV, MV)"},
        {"measure": "a worker before it holds a System", "value": f"{rss / 1e6:.0f} MB",
         "detail": f"resident, femfreq's solvers imported; the planner assumes {WORKER_BASE_BYTES / 1e6:.0f} MB"},
        {"measure": "plan for this machine, direct", "value": f"{plan[0]} x {plan[1]}",
         "detail": f"workers x threads: {os.cpu_count()} cores, {available / 1e9:.1f} GB available"},
    ]


def run(quick: bool = True, level: int | None = None) -> dict:
    """The three parts at satellite level 3 (quick) or 5 (full); part 1 only at ``level``.

    Returns
    -------
    dict
        ``{"name", "rows", "notes"}``.
    """
    only_malloc = level is not None
    if only_malloc:
        level, band, n_direct, repeats = int(level), 150, 0, 3
    else:
        level, band, n_direct, repeats = (3, 100, 8, 3) if quick else (5, 150, 6, 3)
    t0 = time.perf_counter()
    system = _system(level)
    build_s = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    rows = _malloc_rows(system, band, repeats)
    if not only_malloc:
        rows += _thread_rows(system, n_direct, repeats)
        rows += _memory_rows(system)
    load_after = os.getloadavg()[0]
    direct = f"direct chunks of {n_direct} frequencies; " if n_direct else ""
    notes = (
        f"satellite level {level}: {system.n:,} DOF, nnz {system.nnz:,} (built in {build_s:.1f} s); fast "
        f"sub-band of {band} frequencies 300-420 Hz, g = 0.02, C = 0; {direct}"
        f"interleaved {repeats} times, medians. Machine: {os.cpu_count()} cores, shared: load average "
        f"{load_before:.1f} before, {load_after:.1f} after (above the core count the 2-thread speed-up is "
        "mostly lost to the other processes)."
    )
    return {"name": "workers", "rows": rows, "notes": notes}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(markdown(run(quick="--full" not in args, level=int(args[args.index("--level") + 1]) if "--level" in args
                       else None)))
