"""Sending the model to the workers, and the scale model of a sweep on N workers.

Three parts, one run:

1. Pickled bytes of the satellite's System, the former pickle (every attribute: K, C,
   M as CSC and the aligned values) against the lean one (one pattern, each matrix's own
   values, a proportional C as two numbers), levels 3 and 5 (``--full``: 7 too).
2. The routes to 8 local worker processes at levels 3 and 5: the former pickle through
   ``scatter(broadcast=True)``, the lean System the same way, the lean System scattered
   to one worker then ``client.replicate``, and the model recipe (each worker builds and
   checks). Bytes the client's process writes to its sockets (the LocalCluster's
   scheduler runs in it, so the scheduler's sends count as the client's) and seconds
   until every worker holds the System.
3. The scale model: calibration figures (analysis and per-frequency time alone and two
   processes side by side, task overhead, time to put the System on N workers) predict
   the wall time of a direct sweep on N = 1, 2, 4, 8 local workers; the same sweeps are
   then measured (level 4, one thread per worker).

    python -m benchmarks.bench_broadcast          # quick
    python -m benchmarks.bench_broadcast --full
"""

from __future__ import annotations

import math
import os
import pickle
import statistics
import sys
import time

import numpy as np
from benchmarks._common import markdown, one_thread_env

CORES = os.cpu_count() or 1


def _pickled(obj) -> int:
    buffers = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


class _Former:
    """Pickles as the former System did: every attribute (K, C, M as CSC, the pattern, the aligned values)."""

    def __init__(self, system):
        self.__dict__.update(vars(system))


def _former(system) -> _Former:
    return _Former(system)


class _SocketBytes:
    """Counts the bytes this process's dask comms write (TCP.write returns them)."""

    def __init__(self):
        from distributed.comm import tcp

        self.total, self._tcp = 0, tcp
        self._write = tcp.TCP.write
        counter = self

        async def write(comm, msg, serializers=None, on_error="message"):
            n = await counter._write(comm, msg, serializers=serializers, on_error=on_error)
            counter.total += n or 0
            return n

        tcp.TCP.write = write

    def close(self):
        self._tcp.TCP.write = self._write


def _noop(system, index, freqs_hz, load, method=None):
    from femfreq.execute.task import ChunkResult

    k, now = len(index), time.time()
    return ChunkResult(index=np.asarray(index), response=np.zeros((k, system.output_dofs.size), complex),
                       rel_residual=np.zeros(k), backward_error=np.zeros(k), method=np.ones(k, np.int8),
                       worker="", t_start=now, t_end=now)


def _routes(client, model, counter, repeats):
    """{route: (median seconds, median client bytes)} on this client's workers."""
    from femfreq.execute import run_on_dask
    from femfreq.model.recipe import recipe_of

    system = model.system()
    workers = sorted(client.scheduler_info()["workers"])
    one = [(np.array([0]), np.array([1.0]), np.array([1.0 + 0j]))]

    def scatter_all(obj):
        f = client.scatter(obj, broadcast=True, hash=False)
        return f

    def one_then_replicate(obj):
        f = client.scatter(obj, workers=workers[:1], hash=False)
        client.replicate([f])
        return f

    def recipe(obj):
        stats = {}
        for _ in run_on_dask(client, obj, one, function=_noop, stats=stats, recipe=recipe_of(model)):
            pass
        assert stats["system_route"] == "recipe"
        return None

    cases = {"former pickle, scatter(broadcast=True)": (scatter_all, _former(system)),
             "lean, scatter(broadcast=True)": (scatter_all, system),
             "lean, scatter to one + replicate": (one_then_replicate, system),
             "recipe (each worker builds)": (recipe, system)}
    out = {}
    for name, (send, obj) in cases.items():
        seconds, sent = [], []
        for _ in range(repeats):
            before = counter.total
            t0 = time.perf_counter()
            f = send(obj)
            if f is not None:
                assert len(client.who_has([f])[f.key]) == len(workers)
            seconds.append(time.perf_counter() - t0)
            sent.append(counter.total - before)
            if f is not None:
                f.release()
                del f
            time.sleep(0.3)
        out[name] = (statistics.median(seconds), statistics.median(sent))
    return out


def _calibrate(system, freqs, solver):
    """Analysis time, per-frequency time alone and per process with 2 side by side (this machine)."""
    import concurrent.futures as cf

    with cf.ProcessPoolExecutor(2) as pool:
        alone = pool.submit(_timed_chunk, system, freqs, solver).result()
        pair = [f.result() for f in [pool.submit(_timed_chunk, system, freqs, solver) for _ in range(2)]]
    t_analysis, t_freq = alone
    t_freq2 = statistics.mean(p[1] for p in pair)
    return t_analysis, t_freq, t_freq2


def _timed_chunk(system, freqs, solver):
    """(first frequency minus a steady one, steady seconds per frequency), one thread, fresh caches."""
    from threadpoolctl import threadpool_limits

    from femfreq.execute.task import solve_chunk
    from femfreq.options import Direct
    from femfreq.solvers import clear_caches

    clear_caches()
    with threadpool_limits(1):
        t0 = time.perf_counter()
        solve_chunk(system, np.arange(1), freqs[:1], np.ones(1, complex), Direct(solver=solver))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        solve_chunk(system, np.arange(freqs.size - 1), freqs[1:], np.ones(freqs.size - 1, complex),
                    Direct(solver=solver))
        steady = (time.perf_counter() - t0) / (freqs.size - 1)
    clear_caches()
    return first - steady, steady


def predict(n_workers, n_freqs, n_tasks, *, t_analysis, t_freq, t_freq_shared, t_task, t_send, cores):
    """Predicted wall time (s) of a direct sweep on ``n_workers`` one-thread workers sharing ``cores``.

    ``T = t_send + t_analysis s + ceil(F / N) t_f s' + n_tasks t_task`` with the
    oversubscription ``s = max(1, N / cores)`` (N processes share the cores) and ``t_f``
    the per-frequency time alone (N = 1) or side by side on every core (N > 1: memory
    bandwidth is shared), times ``s`` again when N > cores. Chunks are small against the
    sweep, so the last chunk's imbalance is left out.
    """
    share = max(1.0, n_workers / cores)
    t_f = t_freq if n_workers == 1 else t_freq_shared
    return t_send + t_analysis * share + math.ceil(n_freqs / n_workers) * t_f * share + n_tasks * t_task


def _sweep_on(n_workers, model, freqs, solver):
    """(seconds from the first byte sent to the last result, seconds to put the System there, tasks)."""
    from femfreq.execute import open_client, run_on_dask
    from femfreq.model.recipe import recipe_of
    from femfreq.options import Direct, Local
    from femfreq.plan import plan_chunks

    system = model.system()
    with open_client(Local(n_workers=n_workers, threads_per_worker=1, dashboard=False)) as client:
        client.wait_for_workers(n_workers)
        tasks = [(p, freqs[p], np.ones(p.size, complex)) for p in plan_chunks(freqs.size, n_workers)]
        stats = {}
        t0 = time.perf_counter()
        for _ in run_on_dask(client, system, tasks, method=Direct(solver=solver), stats=stats,
                             recipe=recipe_of(model)):
            pass
        return time.perf_counter() - t0, stats["scatter_seconds"], len(tasks), stats


def _task_overhead(client, n=300):
    from operator import add

    from distributed import as_completed

    t0 = time.perf_counter()
    for f in as_completed([client.submit(add, i, 1, pure=False) for i in range(n)]):
        f.release()
    return (time.perf_counter() - t0) / n


def run(quick: bool = True) -> dict:
    """Pickled sizes, the routes to 8 workers, and the scale model against measured sweeps.

    Returns
    -------
    dict
        ``{"name", "rows", "notes"}``.
    """
    from femfreq.execute import open_client
    from femfreq.model import load_model
    from femfreq.options import Local
    from femfreq.solvers import available_solvers

    load_before = os.getloadavg()[0]
    rows = []
    size_levels = (3, 5) if quick else (3, 5, 7)
    for level in size_levels:
        t0 = time.perf_counter()
        system = load_model("satellite", level=level).system()
        build = time.perf_counter() - t0
        former, lean = _pickled(_former(system)), _pickled(system)
        rows.append({"part": "size", "case": f"level {level} ({system.n} DOF, nnz {system.nnz})",
                     "value": f"{former / 1e6:.1f} -> {lean / 1e6:.1f} MB",
                     "detail": f"{former / lean:.1f}x smaller; {lean / system.nnz:.1f} bytes per entry; "
                               f"model + System built in {build:.1f} s"})
        del system

    repeats = 3
    with one_thread_env(), open_client(Local(n_workers=8, threads_per_worker=1, dashboard=False)) as client:
        client.wait_for_workers(8)
        counter = _SocketBytes()
        try:
            for level in (3, 5):
                model = load_model("satellite", level=level)
                for name, (seconds, sent) in _routes(client, model, counter, repeats).items():
                    rows.append({"part": f"8 workers, level {level}", "case": name,
                                 "value": f"{seconds:.2f} s", "detail": f"{sent / 1e6:.3f} MB sent by the client"})
        finally:
            counter.close()
        t_task = _task_overhead(client)

    # the scale model: calibrate, predict, measure
    solver = "pardiso" if "pardiso" in available_solvers() else "superlu"
    level, n_freqs = (4, 32) if quick else (4, 128)
    model = load_model("satellite", level=level)
    freqs = np.linspace(50.0, 1000.0, n_freqs)
    t_analysis, t_freq, t_freq2 = _calibrate(model.system(), freqs[:6], solver)
    measured = {}
    for n in (1, 2, 4, 8):
        with one_thread_env():
            measured[n] = _sweep_on(n, model, freqs, solver)
    for n, (wall, t_send, n_tasks, _) in measured.items():
        p = predict(n, n_freqs, n_tasks, t_analysis=t_analysis, t_freq=t_freq, t_freq_shared=t_freq2,
                    t_task=t_task, t_send=t_send, cores=CORES)
        rows.append({"part": f"scale, level {level}", "case": f"{n} workers",
                     "value": f"{wall:.2f} s measured", "detail": f"{p:.2f} s predicted ({100 * (p / wall - 1):+.0f} %); "
                                                                f"{n_tasks} chunks, System on the workers in {t_send:.2f} s"})
    load_after = os.getloadavg()[0]
    notes = (
        f"Calibration (level {level}, {solver}, one thread): analysis {t_analysis:.3f} s, "
        f"{t_freq:.3f} s per frequency alone, {t_freq2:.3f} s per frequency per process with 2 side by side, "
        f"task overhead {1e3 * t_task:.2f} ms; {n_freqs} frequencies; {CORES} cores. "
        f"Sizes: pickle protocol 5, arrays out of band (as dask sends them). Routes: median of {repeats}; "
        "'sent by the client' counts what this process's dask comms write (client and the LocalCluster's "
        "scheduler). Load average "
        f"{load_before:.1f} before, {load_after:.1f} after (the machine is shared: read ratios, not seconds)."
    )
    return {"name": "broadcast", "rows": rows, "notes": notes}


if __name__ == "__main__":
    print(markdown(run(quick="--full" not in sys.argv[1:])))
