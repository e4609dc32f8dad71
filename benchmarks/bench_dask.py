"""The sweep on dask: serial vs a 2-worker LocalCluster, dask overhead per task, scatter cost.

Same model, solver and frequencies in one run: the serial sweep (this process, one
thread) and the same sweep through :func:`femfreq.execute.run_on_dask` on an
embedded ``LocalCluster`` of 2 one-thread worker processes (cluster start-up
excluded; scatter and each worker's solver analysis included). Parallel efficiency
is ``T_serial / (2 T_dask)``. The dask overhead per task is measured with empty
tasks, both plain ``client.submit`` and through ``run_on_dask`` with a no-op chunk
function; the scatter of the System to both workers is timed on its own.

Model: the satellite (quick: level 4, ~44k DOF; full: level 5, ~148k DOF) with
MKL PARDISO (about 0.3 s per frequency at level 4 here), or SuperLU where PARDISO
is missing.

    python -m benchmarks.bench_dask          # quick
    python -m benchmarks.bench_dask --full
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from operator import add

import numpy as np
from benchmarks._common import markdown


def noop_chunk(system, index, freqs_hz, load, method=None):
    """A chunk function that solves nothing (measures the pipeline's own cost)."""
    from femfreq.execute.task import ChunkResult

    k = len(index)
    n_out = system.output_dofs.size
    now = time.time()
    return ChunkResult(index=np.asarray(index), response=np.zeros((k, n_out), complex),
                       rel_residual=np.zeros(k), backward_error=np.zeros(k),
                       method=np.ones(k, np.int8), worker="", t_start=now, t_end=now)


def _system(level):
    from femfreq.model import load_model

    t0 = time.perf_counter()
    system = load_model("satellite", level=level).system()
    return system, time.perf_counter() - t0


def _solver():
    from femfreq.solvers import available_solvers

    return "pardiso" if "pardiso" in available_solvers() else "superlu"


def _empty_tasks(client, n):
    from distributed import as_completed

    t0 = time.perf_counter()
    futures = [client.submit(add, 1, i, pure=False) for i in range(n)]
    for f in as_completed(futures):
        f.result()
    return (time.perf_counter() - t0) / n


def _noop_sweep(client, system, n):
    from femfreq.execute import run_on_dask

    tasks = [(np.array([i]), np.array([float(i)]), np.ones(1, complex)) for i in range(n)]
    stats = {}
    t0 = time.perf_counter()
    for _ in run_on_dask(client, system, tasks, function=noop_chunk, stats=stats):
        pass
    return (time.perf_counter() - t0 - stats["scatter_seconds"]) / n


def _side_by_side(client, system, freqs, solver, repeats):
    """The machine's own 2-process efficiency: one chunk alone vs on both workers at once.

    Pinned tasks, analysis already done (warm caches): no scheduling, no scatter in it.
    """
    from femfreq.execute.task import solve_chunk
    from femfreq.options import Direct

    workers = sorted(client.scheduler_info()["workers"])
    data = client.scatter(system, broadcast=True, hash=False)
    args = (np.arange(freqs.size), freqs, np.ones(freqs.size, complex))

    def timed(on):
        t0 = time.perf_counter()
        futures = [client.submit(solve_chunk, data, *args, Direct(solver=solver), pure=False, workers=[w]) for w in on]
        for f in futures:
            f.result()
        return time.perf_counter() - t0

    for w in workers:  # warm: each worker's solver analysis
        timed([w])
    alone = statistics.median(timed(workers[:1]) for _ in range(repeats))
    pair = statistics.median(timed(workers) for _ in range(repeats))
    data.release()
    return alone / pair


def _fmt_list(values):
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def run(quick: bool = True) -> dict:
    """Serial vs 2-worker dask sweep, per-task overhead and scatter cost.

    Returns
    -------
    dict
        ``{"name", "rows", "notes"}``.
    """
    from threadpoolctl import threadpool_limits

    from femfreq.execute import open_client, run_on_dask
    from femfreq.options import Local
    from femfreq.plan import plan_chunks
    from femfreq.execute.task import solve_chunk
    from femfreq.options import Direct

    level, n_freqs, repeats = (4, 48, 3) if quick else (5, 96, 3)
    n_workers = 2
    system, build_s = _system(level)
    solver = _solver()
    freqs = np.linspace(50.0, 1000.0, n_freqs)
    load = np.ones(n_freqs, dtype=complex)
    load_before = os.getloadavg()[0]

    def serial_sweep():
        # this process, one thread, analysis included (as in a real sweep)
        from femfreq.solvers import clear_caches

        clear_caches()
        with threadpool_limits(1):
            t0 = time.perf_counter()
            out = solve_chunk(system, np.arange(n_freqs), freqs, load, Direct(solver=solver))
            seconds = time.perf_counter() - t0
        clear_caches()
        return out, seconds

    # warm-up (imports, JIT, first allocations) in both, so that both measure a steady sweep
    with threadpool_limits(1):
        solve_chunk(system, np.arange(2), freqs[:2], load[:2], Direct(solver=solver))
    rows = []
    with open_client(Local(n_workers=n_workers, dashboard=False)) as client:
        from femfreq.solvers import clear_caches

        warm = [(np.array([i]), freqs[i : i + 1], load[i : i + 1]) for i in range(2 * n_workers)]
        t0 = time.perf_counter()
        for _ in run_on_dask(client, system, warm, method=Direct(solver=solver)):
            pass
        t_warm = time.perf_counter() - t0
        # serial and dask sweeps interleaved, medians: the machine's load swings
        t_serials, t_dasks, busys, pair_effs = [], [], [], []
        for _ in range(repeats):
            serial, t_serial_k = serial_sweep()
            client.run(clear_caches)  # each worker pays its analysis, as serial does
            if not t_serials:  # one plan for all repeats, from the first serial estimate
                plan = plan_chunks(n_freqs, n_workers, seconds_per_freq=t_serial_k / n_freqs)
                tasks = [(p, freqs[p], load[p]) for p in plan]
            stats = {}
            t0 = time.perf_counter()
            results = list(run_on_dask(client, system, tasks, method=Direct(solver=solver), stats=stats))
            t_dask_k = time.perf_counter() - t0
            t_serials.append(t_serial_k)
            t_dasks.append(t_dask_k)
            busys.append(sum(r.t_end - r.t_start for r in results))
            pair_effs.append(t_serial_k / (n_workers * t_dask_k))
        t_serial, t_dask, busy = (statistics.median(v) for v in (t_serials, t_dasks, busys))
        got = np.empty_like(serial.response)
        for r in results:
            got[r.index] = r.response
        err = float(np.max(np.abs(got - serial.response)) / np.max(np.abs(serial.response)))

        machine_eff = _side_by_side(client, system, freqs[: max(2, n_freqs // 8)], solver, repeats)
        empty = statistics.median(_empty_tasks(client, 400) for _ in range(repeats))
        pipeline = statistics.median(_noop_sweep(client, system, 100) for _ in range(repeats))
        scatter_s = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f = client.scatter(system, broadcast=True, hash=False)
            scatter_s.append(time.perf_counter() - t0)
            f.release()
            del f
    load_after = os.getloadavg()[0]

    eff = t_serial / (n_workers * t_dask)
    per_task = t_dask / len(tasks)
    rows.append({"measure": "serial sweep", "value": f"{t_serial:.2f} s",
                 "detail": f"{n_freqs} freqs, {t_serial / n_freqs:.3f} s/freq, {solver}, 1 thread; median of "
                           f"{_fmt_list(t_serials)} s"})
    rows.append({"measure": f"dask sweep, {n_workers} workers", "value": f"{t_dask:.2f} s",
                 "detail": f"{len(tasks)} chunks of {min(t[0].size for t in tasks)}-{max(t[0].size for t in tasks)} "
                           f"freqs; median of {_fmt_list(t_dasks)} s; max rel. diff to serial {err:.1e}"})
    rows.append({"measure": "parallel efficiency", "value": f"{100 * eff:.0f} %",
                 "detail": f"median T_serial / ({n_workers} median T_dask); pairwise "
                           f"{', '.join(f'{100 * e:.0f}' for e in pair_effs)} %; workers busy "
                           f"{100 * busy / (n_workers * t_dask):.0f} % of the wall time"})
    rows.append({"measure": "machine's 2-process efficiency", "value": f"{100 * machine_eff:.0f} %",
                 "detail": "one chunk alone / the same chunk on both workers at once (pinned, warm, no "
                           "scheduling): the best any 2-worker sweep can do on this machine now"})
    rows.append({"measure": "dask efficiency relative to that", "value": f"{100 * eff / machine_eff:.0f} %",
                 "detail": "parallel efficiency / machine's 2-process efficiency"})
    rows.append({"measure": "time per frequency inside a worker", "value": f"{busy / n_freqs:.3f} s",
                 "detail": f"vs {t_serial / n_freqs:.3f} s serial (analysis included in both)"})
    rows.append({"measure": "first chunks on fresh workers", "value": f"{t_warm:.2f} s",
                 "detail": f"{2 * n_workers} one-frequency chunks: imports, JIT, analysis (paid once per "
                           "worker per sweep; excluded above, as the serial warm-up is)"})
    rows.append({"measure": "dask overhead per empty task", "value": f"{1e3 * empty:.2f} ms",
                 "detail": f"client.submit + as_completed, 400 tasks on {n_workers} workers (wall/task), "
                           f"median of {repeats}"})
    rows.append({"measure": "run_on_dask overhead per no-op chunk", "value": f"{1e3 * pipeline:.2f} ms",
                 "detail": f"100 chunks, scatter excluded, median of {repeats}; "
                           f"{100 * pipeline / per_task:.2f} % of this sweep's mean chunk ({per_task:.2f} s)"})
    rows.append({"measure": "scatter (broadcast to 2 workers)", "value": f"{statistics.median(scatter_s):.3f} s",
                 "detail": f"{stats['scatter_bytes'] / 1e6:.1f} MB of arrays; in-sweep scatter "
                           f"{stats['scatter_seconds']:.3f} s; median of {repeats}"})
    notes = (
        f"satellite level {level}: {system.n} DOF, nnz {system.nnz} (built in {build_s:.1f} s). "
        f"2 one-thread worker processes of an embedded LocalCluster; cluster start-up and the first "
        f"(warm-up) chunks excluded, scatter and each worker's solver analysis included; serial and dask "
        f"sweeps interleaved {repeats} times. Machine: {os.cpu_count()} cores, "
        f"shared: load average {load_before:.1f} before, {load_after:.1f} after "
        "(a load above the core count makes both timings, and the efficiency, noisy). "
        "Target: >= 85 % efficiency on 2 workers when one frequency takes >= 0.3 s."
    )
    return {"name": "dask", "rows": rows, "notes": notes}




if __name__ == "__main__":
    print(markdown(run(quick="--full" not in sys.argv[1:])))
