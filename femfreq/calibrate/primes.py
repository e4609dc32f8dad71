"""Primes calibration workload: the sum of the unique prime factors of every integer in a range.

The reference workload of the write-up this project grew from: for every integer ``n`` in
``[a, b)`` take ``sympy.primefactors(n)`` (its distinct prime factors) and add them all up.
Over ``[2, 10**7)`` the sum is ``5495501355056``. The work per integer is small and uneven
(multiples of small primes factor faster, larger integers take longer), which makes it a good
probe of how a dask cluster balances many small tasks and how much each task costs.

Two ways to split the range over tasks are compared:

- ``"strided"``: the reference's static split, task ``i`` of ``n`` takes ``range(a + i, b, n)``.
  With ``n`` equal to the number of workers one task gets every multiple of ``n`` (cheap to
  factor) and finishes early: the reference saw 328 / 206 / 328 s on three workers.
- ``"chunks"``: contiguous blocks, several per worker, submitted most-expensive (highest
  integers) first so dask's dynamic scheduling fills the gaps with the cheap ones.

``primes_sieve`` is the independent reference: a smallest-prime-factor-free additive sieve in
numba (each prime ``p`` adds ``p`` to all its multiples), seconds over ``[2, 10**7)``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np

__all__ = [
    "REFERENCE_SUM",
    "PrimesRun",
    "primes_serial",
    "primes_sieve",
    "primes_task",
    "primes_on_dask",
    "primes_metrics",
    "split_range",
]

#: Sum of the unique prime factors of every integer in [2, 10**7) (the reference figure).
REFERENCE_SUM = (2, 10**7, 5495501355056)

_SPLITS = ("chunks", "strided")


def _check_range(a, b):
    """Validate the integer range [a, b) and return it as Python ints."""
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer (got {v!r})")
    a, b = int(a), int(b)
    if a < 0:
        raise ValueError(f"range start must be >= 0 (got a={a})")
    if b < a:
        raise ValueError(f"empty or reversed range [{a}, {b}): need b >= a")
    return a, b


def primes_serial(a: int, b: int, step: int = 1) -> int:
    """Sum of the distinct prime factors of every integer in ``range(a, b, step)`` (sympy).

    Parameters
    ----------
    a, b : int
        The half-open range ``[a, b)``, ``0 <= a <= b``. 0 and 1 have no prime factors.
    step : int, optional
        Stride of the range (the strided split uses ``step = n_tasks``).

    Returns
    -------
    int
        ``sum(sum(sympy.primefactors(n)) for n in range(a, b, step))``.

    Raises
    ------
    ValueError
        If the range is reversed, starts below 0, or ``step < 1``.
    ImportError
        If sympy (the ``calibrate`` extra) is not installed.

    Examples
    --------
    >>> primes_serial(2, 11)      # 2 + 3 + 2 + 5 + (2+3) + 7 + 2 + 3 + (2+5)
    36
    """
    a, b = _check_range(a, b)
    if int(step) < 1:
        raise ValueError(f"step must be >= 1 (got {step!r})")
    from sympy import primefactors  # the `calibrate` extra

    return int(sum(sum(primefactors(n)) for n in range(a, b, int(step))))


@numba.njit(cache=True)
def _sieve_sum(a, b):  # pragma: no cover - compiled
    """Numba additive sieve: sum over n in [a, b) of the distinct primes dividing n."""
    composite = np.zeros(b, dtype=np.bool_)
    total = 0
    for p in range(2, b):
        if composite[p]:
            continue
        for m in range(p * p, b, p):
            composite[m] = True
        # multiples of p inside [a, b): each gets p once
        first = max(p, ((a + p - 1) // p) * p)
        if first < b:
            total += p * ((b - 1 - first) // p + 1)
    return total


def primes_sieve(a: int, b: int) -> int:
    """Sum of the distinct prime factors of every integer in ``[a, b)``, by a sieve.

    Independent of sympy: each prime ``p < b`` contributes ``p`` times the number of its
    multiples in ``[a, b)``. Memory ``b`` bytes, time ``O(b log log b)`` (~1 s for 10**7).

    Parameters
    ----------
    a, b : int
        The half-open range ``[a, b)``, ``0 <= a <= b``.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If the range is reversed or starts below 0.
    """
    a, b = _check_range(a, b)
    if b <= 2:
        return 0
    return int(_sieve_sum(a, b))


def split_range(a: int, b: int, n_tasks: int, split: str = "chunks") -> list[tuple[int, int, int]]:
    """Split ``[a, b)`` into ``n_tasks`` ranges ``(start, stop, step)``.

    Parameters
    ----------
    a, b : int
        The half-open range.
    n_tasks : int
        Number of pieces (>= 1); fewer are returned when the range is shorter.
    split : {"chunks", "strided"}
        ``"chunks"``: contiguous blocks of near-equal length; ``"strided"``:
        ``range(a + i, b, n_tasks)`` for ``i < n_tasks`` (the reference split).

    Returns
    -------
    list of (start, stop, step)

    Raises
    ------
    ValueError
        For an unknown ``split`` or ``n_tasks < 1``.
    """
    a, b = _check_range(a, b)
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; pick one of {list(_SPLITS)}")
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, (int, np.integer)) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive integer (got {n_tasks!r})")
    n = int(min(n_tasks, max(b - a, 1)))
    if split == "strided":
        return [(a + i, b, n) for i in range(n)]
    edges = np.linspace(a, b, n + 1).round().astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1]), 1) for i in range(n)]


def primes_task(start: int, stop: int, step: int = 1) -> dict:
    """One task: the sympy sum over ``range(start, stop, step)`` with timing and worker name.

    Returns
    -------
    dict
        ``total``, ``start``/``stop``/``step`` (the range), ``count`` (integers),
        ``worker`` (dask worker address, or ``"local"``), ``t_start``/``t_end`` (epoch s),
        ``seconds`` (wall time of the loop) and ``cpu_seconds`` (thread CPU time).
    """
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = f"local-{os.getpid()}"
    t0, c0 = time.time(), time.thread_time()
    total = primes_serial(start, stop, step)
    t1, c1 = time.time(), time.thread_time()
    return {
        "total": total,
        "start": start,
        "stop": stop,
        "step": step,
        "count": len(range(start, stop, step)),
        "worker": worker,
        "thread": threading.get_ident(),
        "t_start": t0,
        "t_end": t1,
        "seconds": t1 - t0,
        "cpu_seconds": c1 - c0,
    }


@dataclass
class PrimesRun:
    """The outcome of :func:`primes_on_dask`.

    Attributes
    ----------
    total : int
        The sum of the distinct prime factors over the range.
    tasks : list of dict
        One record per task (see :func:`primes_task`), in submission order.
    wall_s : float
        Wall time from the first submit to the last result, seconds.
    split : str
        ``"chunks"`` or ``"strided"``.
    a, b : int
        The range.
    n_workers : int
        Worker threads in the cluster when the run started.
    """

    total: int
    tasks: list = field(default_factory=list)
    wall_s: float = 0.0
    split: str = "chunks"
    a: int = 0
    b: int = 0
    n_workers: int = 1


def _n_threads(client) -> int:
    """Total worker threads of the cluster behind ``client``."""
    info = client.scheduler_info()
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))


def primes_on_dask(client, a: int, b: int, *, split: str = "chunks", n_tasks: int | None = None) -> PrimesRun:
    """Sum of the distinct prime factors over ``[a, b)`` split into tasks on a dask cluster.

    Parameters
    ----------
    client : distributed.Client
        A connected client; its workers need sympy.
    a, b : int
        The half-open range.
    split : {"chunks", "strided"}
        How to split the range (see the module docstring).
    n_tasks : int, optional
        Number of tasks. Default: 8 per worker thread for ``"chunks"`` (dynamic balance),
        one per worker thread for ``"strided"`` (the reference split).

    Returns
    -------
    PrimesRun
        The sum, one record per task and the wall time; feed it to :func:`primes_metrics`.

    Raises
    ------
    ValueError
        For a bad range, split or task count.
    """
    a, b = _check_range(a, b)
    n_threads = _n_threads(client)
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; pick one of {list(_SPLITS)}")
    if n_tasks is None:
        n_tasks = 8 * n_threads if split == "chunks" else n_threads
    pieces = split_range(a, b, n_tasks, split)
    t0 = time.perf_counter()
    # Larger integers cost more: submit the expensive chunks first, with higher priority
    # (longest processing time first); the cheap ones fill the gaps at the end.
    order = range(len(pieces) - 1, -1, -1) if split == "chunks" else range(len(pieces))
    futures = {}
    for k in order:
        start, stop, step = pieces[k]
        futures[k] = client.submit(primes_task, start, stop, step, pure=False, priority=k if split == "chunks" else 0)
    records = client.gather([futures[k] for k in range(len(pieces))])
    wall = time.perf_counter() - t0
    total = sum(r["total"] for r in records)
    return PrimesRun(total=int(total), tasks=list(records), wall_s=wall, split=split, a=a, b=b, n_workers=n_threads)


def primes_metrics(run: PrimesRun, serial_s: float | None = None, *, clock: str = "wall") -> dict:
    """Balance and overhead figures of a :class:`PrimesRun`.

    Parameters
    ----------
    run : PrimesRun
    serial_s : float, optional
        Time of the same range computed serially in one process (``primes_serial``), on the
        same clock; without it the overhead, speedup and efficiency are ``nan``.
    clock : {"wall", "cpu"}
        Task times from the wall clock (``seconds``) or the worker thread's CPU time
        (``cpu_seconds``: robust on a machine shared with other jobs). The speedup and
        efficiency always use the run's wall time.

    Returns
    -------
    dict
        ``split``, ``n_tasks``, ``n_workers``, ``wall_s``, ``task_seconds`` (list, per task),
        ``task_spread`` (max / mean task time), ``worker_busy_s`` (dict worker -> sum of its
        task times), ``imbalance`` (max / mean of the per-worker busy time, idle workers
        counted as 0; 1 is perfect), ``task_sum_s`` (sum of task times), ``overhead``
        (``task_sum_s / serial_s``: > 1 means the tasks together took longer than the serial
        loop), ``speedup`` (``serial_s / wall_s``), ``efficiency`` (``speedup / n_workers``),
        ``idle_fraction`` (share of ``n_workers * wall_s`` in which no task ran).

    Raises
    ------
    ValueError
        For an unknown ``clock``.
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"unknown clock {clock!r}; pick 'wall' or 'cpu'")
    key_t = "seconds" if clock == "wall" else "cpu_seconds"
    seconds = [float(r[key_t]) for r in run.tasks]
    busy: dict[str, float] = {}
    for r in run.tasks:
        key = f"{r['worker']}#{r.get('thread', 0)}"
        busy[key] = busy.get(key, 0.0) + float(r[key_t])
    # workers that got no task still count in the mean
    values = list(busy.values()) + [0.0] * max(0, run.n_workers - len(busy))
    mean_busy = float(np.mean(values)) if values else float("nan")
    task_sum = float(sum(seconds))
    nan = float("nan")
    speedup = serial_s / run.wall_s if serial_s and run.wall_s > 0 else nan
    wall_sum = float(sum(float(r["seconds"]) for r in run.tasks))
    return {
        "split": run.split,
        "clock": clock,
        "range": [run.a, run.b],
        "n_tasks": len(run.tasks),
        "n_workers": run.n_workers,
        "wall_s": run.wall_s,
        "task_seconds": seconds,
        "task_spread": max(seconds) / float(np.mean(seconds)) if seconds and np.mean(seconds) > 0 else nan,
        "worker_busy_s": busy,
        "imbalance": max(values) / mean_busy if mean_busy > 0 else nan,
        "task_sum_s": task_sum,
        "overhead": task_sum / serial_s if serial_s else nan,
        "speedup": speedup,
        "efficiency": speedup / run.n_workers if not math.isnan(speedup) else nan,
        "idle_fraction": 1.0 - wall_sum / (run.n_workers * run.wall_s) if run.wall_s > 0 else nan,
    }
