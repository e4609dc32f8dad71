"""Calibrate a dask cluster: task overhead, per-worker speed and result bandwidth.

:func:`calibrate` measures, on the workers behind a ``distributed.Client``,

- the cost of a task (``task_overhead_s``: worker-seconds lost per task when the cluster is
  saturated with empty tasks, and ``task_latency_s``: one submit-to-result round trip),
- the speed of each worker on a fixed small workload (numba Mandelbrot block, numpy matmul),
- the bandwidth of returning array results to the client.

The result is a small JSON-able dict (keys documented in ``docs/calibration.md``), saved with
:func:`save_calibration` and read back with :func:`load_calibration`. The sweep planner uses
``task_overhead_s`` to choose chunk sizes: a task must run at least
``task_overhead_s / max_overhead`` seconds for the dask overhead to stay below
``max_overhead`` (:func:`min_task_seconds`, :func:`min_chunk_items`); without a calibration
it uses :data:`DEFAULT_CALIBRATION`.

Two reference workloads live in submodules: :mod:`femfreq.calibrate.primes` (sum of unique
prime factors, load balance and overhead of many small tasks) and
:mod:`femfreq.calibrate.mandelbrot` (escape-time image streamed to HDF5, throughput).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import socket
import statistics
import time
from pathlib import Path

import numpy as np

from ..plan import (  # the figures the planner reads live with the planner
    _VERSION,
    CALIBRATION_FORMAT,
    DEFAULT_CALIBRATION,
    _check,
    load_calibration,
    min_chunk_items,
    min_task_seconds,
)

__all__ = [
    "DEFAULT_CALIBRATION",
    "CALIBRATION_FORMAT",
    "calibrate",
    "save_calibration",
    "load_calibration",
    "min_task_seconds",
    "min_chunk_items",
]

log = logging.getLogger(__name__)


# fixed probe workload: a block of the reference window, and a dense matmul
_PROBE_MANDELBROT = (320, 320, 255)
_PROBE_MATMUL_N = 512


def _noop(i=None):
    """An empty task."""
    return i


def _make_bytes(n: int, seed: int):
    """A task returning an ``n``-byte uint8 array (distinct content per call)."""
    a = np.empty(n, dtype=np.uint8)
    a[:] = seed % 251
    return a


def _warmup():
    """Import and compile the probe kernels in a worker (excluded from the timings)."""
    from .mandelbrot import REFERENCE_WINDOW, mandelbrot_block

    mandelbrot_block(*REFERENCE_WINDOW, 8, 8, 0, 8, 10)
    return os.getpid()


def _speed_probe(repeats: int = 3) -> dict:
    """Per-worker speed: median numba Mandelbrot Mpixel/s and single-thread numpy matmul GFLOP/s."""
    from threadpoolctl import threadpool_limits

    from .mandelbrot import REFERENCE_WINDOW, mandelbrot_block

    w, h, it = _PROBE_MANDELBROT
    mandelbrot_block(*REFERENCE_WINDOW, w, 4, 0, 4, it)  # compile / warm
    tm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mandelbrot_block(*REFERENCE_WINDOW, w, h, 0, h, it)
        tm.append(time.perf_counter() - t0)
    n = _PROBE_MATMUL_N
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    tf = []
    with threadpool_limits(limits=1):
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            tf.append(time.perf_counter() - t0)
    return {
        "mandelbrot_mpix_s": w * h / statistics.median(tm) / 1e6,
        "matmul_gflops": 2.0 * n**3 / statistics.median(tf) / 1e9,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _workers(client) -> dict:
    """Worker address -> nthreads."""
    info = client.scheduler_info()
    return {addr: int(w.get("nthreads", 1)) for addr, w in info.get("workers", {}).items()}


def calibrate(client, *, quick: bool = True) -> dict:
    """Measure task overhead, per-worker speed and result bandwidth of a dask cluster.

    Parameters
    ----------
    client : distributed.Client
        A connected client with at least one worker.
    quick : bool
        Small sample sizes (a few seconds) when true; more repeats and larger results
        (up to 128 MB) when false.

    Returns
    -------
    dict
        JSON-able; the keys are documented in ``docs/calibration.md``. The planner's inputs:
        ``task_overhead_s`` (worker-seconds per task), ``task_latency_s`` (s),
        ``result_bandwidth_Bps`` (bytes/s), ``worker_speed`` (address -> figures),
        ``speed_spread`` (fastest / slowest Mandelbrot rate).

    Raises
    ------
    ValueError
        If the cluster has no workers.
    """
    workers = _workers(client)
    if not workers:
        raise ValueError(f"the cluster at {client.scheduler.address} has no workers")
    n_threads = sum(workers.values())
    t_begin = time.perf_counter()
    client.run(_warmup)

    # 1. latency: one task at a time, submit -> result
    n_seq = 20 if quick else 100
    lat = []
    for i in range(n_seq):
        t0 = time.perf_counter()
        client.submit(_noop, i, pure=False).result()
        lat.append(time.perf_counter() - t0)
    latency = statistics.median(lat)

    # 2. throughput: many empty tasks at once; each costs the cluster n_threads * wall / n
    n_map = 400 if quick else 2000
    t0 = time.perf_counter()
    futures = client.map(_noop, range(n_map), pure=False)
    client.gather(futures)
    wall_map = time.perf_counter() - t0
    del futures
    tasks_per_s = n_map / wall_map
    overhead = n_threads * wall_map / n_map

    # 3. speed of each worker on the same fixed workload, all at once (as in a sweep)
    probes = {
        addr: client.submit(_speed_probe, 5 if quick else 9, workers=[addr], allow_other_workers=False, pure=False)
        for addr in workers
    }
    speed = {addr: fut.result() for addr, fut in probes.items()}
    rates = [s["mandelbrot_mpix_s"] for s in speed.values()]

    # 4. result bandwidth: arrays returned from a worker to the client
    sizes = [1 << 20, 8 << 20, 32 << 20] if quick else [1 << 20, 8 << 20, 32 << 20, 128 << 20]
    repeats = 3 if quick else 5
    by_size = []
    for size in sizes:
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            arr = client.submit(_make_bytes, size, r, pure=False).result()
            times.append(time.perf_counter() - t0)
            del arr
        t = statistics.median(times)
        by_size.append({"bytes": size, "seconds": t, "Bps": size / max(t - latency, 1e-9)})
    # the largest transfer is the least dominated by latency
    bandwidth = by_size[-1]["Bps"]

    import dask
    import distributed

    return {
        "format": CALIBRATION_FORMAT,
        "format_version": _VERSION,
        "source": "measured",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(quick),
        "scheduler": client.scheduler.address,
        "client_host": socket.gethostname(),
        "n_workers": len(workers),
        "n_threads": n_threads,
        "workers": workers,
        "task_latency_s": latency,
        "task_overhead_s": overhead,
        "tasks_per_s": tasks_per_s,
        "result_bandwidth_Bps": bandwidth,
        "bandwidth_by_size": by_size,
        "worker_speed": speed,
        "speed_spread": max(rates) / min(rates) if min(rates) > 0 else float("inf"),
        "probe": {"mandelbrot": list(_PROBE_MANDELBROT), "matmul_n": _PROBE_MATMUL_N},
        "calibration_s": time.perf_counter() - t_begin,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
        },
    }


def _json_default(obj):
    """Turn numpy scalars/arrays and paths into JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a calibration file")


def save_calibration(path, calibration: dict) -> Path:
    """Write a calibration dict to a JSON file (creating parent folders); return the path.

    Raises
    ------
    ValueError
        If ``calibration`` lacks one of the planner keys (``task_overhead_s``,
        ``task_latency_s``, ``result_bandwidth_Bps``).
    """
    _check(calibration, "calibration")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration, indent=2, default=_json_default) + "\n")
    return path


from .mandelbrot import mandelbrot_block, mandelbrot_numpy, mandelbrot_on_dask  # noqa: E402
from .primes import primes_metrics, primes_on_dask, primes_serial, primes_sieve  # noqa: E402

__all__ += [
    "primes_serial",
    "primes_sieve",
    "primes_on_dask",
    "primes_metrics",
    "mandelbrot_block",
    "mandelbrot_numpy",
    "mandelbrot_on_dask",
]
