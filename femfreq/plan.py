"""The sweep planner: which frequencies go together in one chunk, for serial and dask alike.

numpy only: planning never imports a solver, dask or the calibration workloads. The
inputs are the sweep's size, the number of workers, the method, a cluster calibration
(its task overhead sets the shortest chunk worth a task) and, for a lightly damped fast
sweep, the relative cost of each frequency (the mode density, from
:func:`femfreq.solvers.fast.mode_weights`, which the caller computes where the System is).

- :func:`plan_sweep`: the chunks of one sweep (what :func:`femfreq.solve` uses);
- :func:`plan_chunks`: contiguous chunks, balanced by count or by weight, ends first;
- :func:`needs_mode_weights`: whether the fast sweep's cost follows the modes;
- :func:`load_calibration`, :func:`min_task_seconds`, :func:`min_chunk_items`,
  :data:`DEFAULT_CALIBRATION`: the calibration figures the planner reads;
- :func:`plan_workers`: workers x threads for one host from its cores and memory;
- :func:`worker_memory_bytes`: a worker's memory for a System of a given size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import _validate as v
from .errors import ClusterError

__all__ = [
    "CALIBRATION_FORMAT",
    "DEFAULT_CALIBRATION",
    "SECONDS_PER_DOF",
    "WORKER_BASE_BYTES",
    "load_calibration",
    "min_chunk_items",
    "min_task_seconds",
    "needs_mode_weights",
    "plan_chunks",
    "plan_sweep",
    "plan_workers",
    "worker_memory_bytes",
]

#: seconds per frequency per free DOF of one sparse direct solve (PARDISO, 2-D trusses;
#: figures in docs/cluster.md): only a first guess for chunk sizes, replaced by a
#: calibration's ``seconds_per_dof``
SECONDS_PER_DOF = 3.5e-6

CALIBRATION_FORMAT = "femfreq-calibration"
_VERSION = 1

#: Quick defaults when no calibration was run (a LocalCluster on one machine, measured here).
DEFAULT_CALIBRATION = {
    "format": CALIBRATION_FORMAT,
    "format_version": _VERSION,
    "source": "default",
    "task_overhead_s": 0.01,
    "task_latency_s": 0.01,
    "tasks_per_s": 200.0,
    "result_bandwidth_Bps": 2.0e8,
    "worker_speed": {},
    "speed_spread": 1.0,
}

_REQUIRED = ("task_overhead_s", "task_latency_s", "result_bandwidth_Bps")


def _check(calib, where):
    """Validate the keys the planner needs."""
    if not isinstance(calib, dict):
        raise TypeError(f"{where}: a calibration must be a dict (got {type(calib).__name__})")
    missing = [k for k in _REQUIRED if k not in calib]
    if missing:
        raise ValueError(f"{where}: not a calibration (missing {', '.join(missing)})")
    for k in _REQUIRED:
        v = calib[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: {k} must be a finite number >= 0 (got {v!r})")


def load_calibration(path) -> dict:
    """Read a calibration JSON written by :func:`save_calibration`.

    Raises
    ------
    ValueError
        If the file is not JSON or is not a calibration (missing or bad planner keys).
    OSError
        If it cannot be read.
    """
    text = Path(path).read_text()
    try:
        calib = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not a JSON calibration file ({exc.msg})") from None
    _check(calib, str(path))
    return calib


def min_task_seconds(calibration: dict | None = None, *, max_overhead: float = 0.05) -> float:
    """Shortest task (seconds) whose dask overhead stays below ``max_overhead`` of its time.

    ``task_overhead_s / max_overhead``, with :data:`DEFAULT_CALIBRATION` when ``calibration``
    is None.

    Raises
    ------
    ValueError
        If ``max_overhead`` is not in (0, 1].
    """
    if not (isinstance(max_overhead, (int, float)) and 0 < max_overhead <= 1):
        raise ValueError(f"max_overhead must be in (0, 1] (got {max_overhead!r})")
    calib = DEFAULT_CALIBRATION if calibration is None else calibration
    _check(calib, "calibration")
    return float(calib["task_overhead_s"]) / max_overhead


def min_chunk_items(seconds_per_item: float, calibration: dict | None = None, *, max_overhead: float = 0.05) -> int:
    """Fewest items (e.g. frequencies) per task so the dask overhead stays below ``max_overhead``.

    Parameters
    ----------
    seconds_per_item : float
        Compute time of one item on one worker (> 0), e.g. one factor + solve.
    calibration : dict, optional
        From :func:`calibrate` / :func:`load_calibration`; default :data:`DEFAULT_CALIBRATION`.
    max_overhead : float
        Acceptable overhead as a fraction of the task time.

    Returns
    -------
    int
        ``ceil(min_task_seconds / seconds_per_item)``, at least 1.

    Raises
    ------
    ValueError
        If ``seconds_per_item`` is not a positive finite number.
    """
    if isinstance(seconds_per_item, bool) or not isinstance(seconds_per_item, (int, float)) or not (
        math.isfinite(seconds_per_item) and seconds_per_item > 0
    ):
        raise ValueError(f"seconds_per_item must be a positive number (got {seconds_per_item!r})")
    return max(1, math.ceil(min_task_seconds(calibration, max_overhead=max_overhead) / seconds_per_item))



def plan_chunks(
    n_freqs: int,
    n_workers: int,
    *,
    method: str = "direct",
    seconds_per_freq: float | None = None,
    target_task_seconds: float = 10.0,
    min_task_seconds: float = 0.2,
    chunks_per_worker: int | None = None,
    weights=None,
) -> list[np.ndarray]:
    """Split a sweep into chunks of contiguous frequencies for dynamic scheduling.

    There are many more chunks than workers (at least ``chunks_per_worker`` per
    worker when there are enough frequencies), so a slow worker or a costly chunk
    does not hold the sweep, and each chunk is long enough for dask's per-task
    overhead (a few ms) to stay a few percent.

    Parameters
    ----------
    n_freqs : int
        Number of frequencies to solve (>= 0).
    n_workers : int
        Number of workers (>= 1).
    method : {"direct", "fast"}
        ``"fast"`` (reduced-order sub-bands): at least 16 frequencies and 8 chunks
        per worker by default (bands of ~15..40 modes are cheapest with light
        damping, see docs/fast_sweep.md); ``"direct"`` 8 per worker.
    seconds_per_freq : float, optional
        Estimated cost of one frequency. With it, chunks aim at
        ``target_task_seconds`` each but never below ``min_task_seconds``.
    target_task_seconds : float
        Preferred chunk duration when ``seconds_per_freq`` is known.
    min_task_seconds : float
        Shortest chunk worth a task (dask's overhead is ~1-10 ms per task).
    chunks_per_worker : int, optional
        Minimum number of chunks per worker (balance and progress granularity).
    weights : (n_freqs,) array_like, optional
        Relative cost of each position (e.g. the mode density for ``"fast"``:
        :func:`femfreq.solvers.fast.mode_weights`). The chunk boundaries then
        split the cumulative weight evenly (same number of chunks), in the same
        order as below.

    Returns
    -------
    list of (k_i,) int64 arrays
        Positions ``0..n_freqs-1``; each chunk is a contiguous block and together
        they cover every position once. The order interleaves the two ends of the
        band (last, first, second last, second, ...) so that costly high-frequency
        chunks do not all come last.

    Raises
    ------
    ValueError
        Negative ``n_freqs``, ``n_workers < 1``, a non-positive time, or an unknown method.

    Examples
    --------
    >>> from femfreq.plan import plan_chunks
    >>> [c.tolist() for c in plan_chunks(6, 1, chunks_per_worker=3)]
    [[4, 5], [0, 1], [2, 3]]
    """
    if method not in ("direct", "fast"):
        raise ValueError(f"unknown method {method!r}; pick one of ['direct', 'fast']")
    n_freqs = v.as_int("n_freqs", n_freqs, minimum=0)
    n_workers = v.as_int("n_workers", n_workers, minimum=1)
    if chunks_per_worker is None:
        chunks_per_worker = 8
    chunks_per_worker = v.as_int("chunks_per_worker", chunks_per_worker, minimum=1)
    for name, value in (("target_task_seconds", target_task_seconds), ("min_task_seconds", min_task_seconds)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds (got {value!r})")
    if seconds_per_freq is not None and not (np.isfinite(seconds_per_freq) and seconds_per_freq > 0):
        raise ValueError(f"seconds_per_freq must be a positive number (got {seconds_per_freq!r})")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (n_freqs,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"weights must be {n_freqs} non-negative finite numbers "
                             f"(got shape {weights.shape})")
    if n_freqs == 0:
        return []
    # balance: at least chunks_per_worker chunks per worker
    size = n_freqs / (n_workers * chunks_per_worker)
    min_size = 16 if method == "fast" else 1
    if seconds_per_freq is not None:
        size = min(size, target_task_seconds / seconds_per_freq)
        # overhead: no chunk shorter than min_task_seconds
        min_size = max(min_size, math.ceil(min_task_seconds / seconds_per_freq))
    size = int(min(n_freqs, max(min_size, math.floor(size), 1)))
    n_chunks = max(1, n_freqs // size)  # floor: no chunk shorter than size
    blocks = np.array_split(np.arange(n_freqs, dtype=np.int64), n_chunks)
    if weights is not None and n_chunks > 1 and weights.sum() > 0:
        # equal cumulative weight (plus a 1 % share per position so zero-weight runs stay finite)
        cum = np.cumsum(weights / weights.sum() + 0.01 / n_freqs)
        edges = np.searchsorted(cum, cum[-1] * np.arange(1, n_chunks) / n_chunks, side="right")
        edges = np.clip(edges, 1, n_freqs - 1)
        blocks = [b for b in np.split(np.arange(n_freqs, dtype=np.int64), np.unique(edges)) if b.size]
        n_chunks = len(blocks)
    # both ends first: the top (densest modes, or latest) and the bottom (widest band of a
    # fast sweep, and the quasi-static basis) cost most, and a costly chunk submitted
    # last leaves the other workers idle at the end of the sweep
    order = np.empty(n_chunks, dtype=np.int64)
    order[0::2] = np.arange(n_chunks - 1, n_chunks - 1 - (n_chunks + 1) // 2, -1)
    order[1::2] = np.arange(n_chunks // 2)
    return [blocks[i] for i in order]


def needs_mode_weights(system, method, freqs_hz) -> bool:
    """True for a fast sweep of a lightly damped system over more than one frequency.

    Its cost then follows the modes in each sub-band (the basis must hold them), and the
    mode density grows with frequency: the chunks are balanced by
    :func:`femfreq.solvers.fast.mode_weights` instead of by count.
    """
    name = getattr(method, "name", method)
    return name == "fast" and len(freqs_hz) > 1 and _lightly_damped(system, float(np.max(freqs_hz)))


def _lightly_damped(system, f_max) -> bool:
    """True if modes near ``f_max`` are underdamped (viscous C small against K)."""
    k, c = v.max_abs(system.k_values), v.max_abs(system.c_values)
    # C ~ beta K gives a damping ratio ~ beta pi f: overdamped beyond 1 / (beta pi)
    return k == 0 or c / k * np.pi * f_max < 1.0


def plan_sweep(system, freqs_hz, n_workers, method, *, calibration=None, weights=None,
               serial=False) -> list[np.ndarray]:
    """The chunks of one sweep: positions into ``freqs_hz``.

    Parameters
    ----------
    system : femfreq.system.System
        Its size sets the first guess of a direct solve's cost.
    freqs_hz : (F,) array
        The frequencies to solve.
    n_workers : int
        Workers that run chunks at once (1 for a serial sweep).
    method : Direct, Fast or str
        ``"direct"``: chunks of about equal count, sized from the cost per frequency.
        ``"fast"``: with ``weights`` (light damping), sub-bands of equal mode count;
        without (heavy damping: one basis of a few dozen vectors covers a wide band, so
        every extra sub-band only repeats a factorization), one sub-band per worker.
    calibration : dict, optional
        From :func:`load_calibration` (default :data:`DEFAULT_CALIBRATION`).
    weights : (F,) array, optional
        Relative cost per frequency (:func:`femfreq.solvers.fast.mode_weights`).
    serial : bool
        In this process: chunks of 8 frequencies for a direct sweep (progress and
        checkpoints), in frequency order.

    Returns
    -------
    list of int64 arrays
        Chunks covering ``0..F-1`` once each.
    """
    n = len(freqs_hz)
    name = getattr(method, "name", method)
    kw = {"min_task_seconds": min_task_seconds(calibration)}
    if name == "direct":
        per_dof = (calibration or {}).get("seconds_per_dof", SECONDS_PER_DOF)
        kw["seconds_per_freq"] = float(per_dof) * system.n
        if serial:
            kw["chunks_per_worker"] = max(1, math.ceil(n / 8))
    elif weights is not None:
        # light damping: the cost of a sub-band grows faster than its mode count (the basis
        # holds its modes, and each certification pass touches all of it), so the sweep
        # wants many narrow sub-bands whatever the number of workers: at least 12 in all
        # (16 before the predicted last block and the median new-shift rule; 12 measured
        # as fast or faster at levels 5-7, docs/fast_sweep.md)
        kw["weights"] = weights
        kw["chunks_per_worker"] = max(6, math.ceil(12 / v.as_int("n_workers", n_workers, minimum=1)))
    else:
        kw["chunks_per_worker"] = 1
    chunks = plan_chunks(n, n_workers, method=name, **kw)
    if serial:
        chunks.sort(key=lambda c: int(c[0]) if c.size else -1)
    return chunks


# -- workers x threads on one host -----------------------------------------------------
#: resident bytes of a dask worker process before it holds a System: the interpreter,
#: numpy, scipy, distributed and femfreq's solvers imported (measured, docs/scaling.md)
WORKER_BASE_BYTES = 200e6

#: bytes per stored entry of the System on a worker: K, C, M values, their shared pattern
#: and the per-DOF vectors, as measured on the satellite levels 3-5 (docs/scaling.md)
_SYSTEM_BYTES_PER_NNZ = 45.0

#: nnz of a nested-dissection LDL^T factor per DOF of the 2-D rod models:
#: ``a + b log2(n)``, fitted to PARDISO's reports at levels 3-5 (docs/scaling.md)
_FACTOR_NNZ_PER_DOF = (-38.2, 5.69)

#: bytes per factor entry: complex values + index (PARDISO's iparm[15..16], levels 3-5),
#: and the analysis (iparm[14]) and work vectors on top, per DOF
_COMPLEX_FACTOR_BYTES, _ANALYSIS_BYTES_PER_DOF = 30.0, 450.0

#: the fast sweep's sub-band: a real factor of ``K - s M`` (half the complex entry)
#: kept per shift, and a basis of this many vectors held three times (V, K V, M V)
_REAL_FACTOR_BYTES, _FAST_BASIS_VECTORS = 14.0, 100


def worker_memory_bytes(n: int, nnz: int, method="direct") -> float:
    """Estimated peak memory (bytes) of one worker sweeping a System of ``n`` DOF and ``nnz`` entries.

    ``WORKER_BASE_BYTES + 45 nnz`` (the process and its copy of the System) plus, for a
    direct sweep, one complex factor of ``L = n (a + b log2 n)`` entries at 30 bytes each
    and the analysis (450 bytes per DOF); for a fast sweep, two real factors of ``K - s M``
    (14 bytes per entry) and a sub-band basis of 100 vectors held as V, K V and M V
    (``24 * 100 * n`` bytes). The constants are fitted to PARDISO's reported factor
    memory and the measured peak resident memory at satellite levels 3-5 (their figures
    and the level-7 check in docs/scaling.md); other meshes may fill in differently.

    Parameters
    ----------
    n : int
        DOF of the System (>= 1).
    nnz : int
        Stored entries of its matrices' shared pattern (>= 0).
    method : Direct, Fast or {"direct", "fast"}

    Returns
    -------
    float
        Bytes.

    Examples
    --------
    >>> from femfreq.plan import worker_memory_bytes
    >>> round(worker_memory_bytes(613_516, 8_600_000, "direct") / 1e9, 1)  # satellite level 7
    2.2
    """
    n = v.as_int("n", n, minimum=1)
    nnz = v.as_int("nnz", nnz, minimum=0)
    name = getattr(method, "name", method)
    if name not in ("direct", "fast"):
        raise ValueError(f"method must be 'direct' or 'fast' (got {method!r})")
    a, b = _FACTOR_NNZ_PER_DOF
    factor_nnz = n * max(1.0, a + b * math.log2(max(n, 2)))
    if name == "direct":
        solve = factor_nnz * _COMPLEX_FACTOR_BYTES + _ANALYSIS_BYTES_PER_DOF * n
    else:
        solve = 2 * factor_nnz * _REAL_FACTOR_BYTES + 24.0 * _FAST_BASIS_VECTORS * n
    return WORKER_BASE_BYTES + _SYSTEM_BYTES_PER_NNZ * nnz + solve


def plan_workers(cores: int, memory_bytes: float, per_worker_bytes: float, *, n_workers: int | None = None,
                 threads_per_worker: int | None = None, what: str = "the sweep") -> tuple[int, int]:
    """Workers x threads for one host: as many workers as its cores and memory allow.

    Without ``n_workers`` and ``threads_per_worker``: one worker per core while they fit
    in ``memory_bytes``, else fewer workers sharing the cores as threads (PARDISO factors
    with its worker's threads). A given ``n_workers`` or ``threads_per_worker`` is kept and
    the other one chosen.

    Parameters
    ----------
    cores : int
        Cores of the host (>= 1).
    memory_bytes : float
        Memory the workers may use in all (> 0).
    per_worker_bytes : float
        Peak memory of one worker (>= 0; 0: memory does not limit), e.g. from
        :func:`worker_memory_bytes`.
    n_workers, threads_per_worker : int, optional
        Fixed by the user (>= 1).
    what : str
        Names the model in the refusal (e.g. ``"satellite level 7, direct"``).

    Returns
    -------
    n_workers, threads_per_worker : int

    Raises
    ------
    femfreq.errors.ClusterError
        Not even one worker fits, or the ``n_workers`` asked for do not fit; the message
        gives the memory per worker and what is available.
    ValueError, TypeError
        A number out of range.

    Examples
    --------
    >>> from femfreq.plan import plan_workers
    >>> plan_workers(8, 16e9, 2e9)
    (8, 1)
    >>> plan_workers(8, 5e9, 2e9)  # memory for two workers: four threads each
    (2, 4)
    """
    cores = v.as_int("cores", cores, minimum=1)
    memory = v.positive_float("memory_bytes", memory_bytes)
    per_worker = v.as_float("per_worker_bytes", per_worker_bytes, nonneg=True)
    fit = math.floor(memory / per_worker) if per_worker > 0 else cores
    need = f"{what} needs ~{per_worker / 1e9:.1f} GB per worker"
    if fit < 1:
        raise ClusterError(f"{need}; this machine has {memory / 1e9:.1f} GB available: not one worker fits "
                           "(a machine with more memory, or a smaller model)")
    if n_workers is not None:
        n = v.as_int("n_workers", n_workers, minimum=1)
        if n > fit:
            raise ClusterError(f"{need}; this machine has {memory / 1e9:.1f} GB available: {n} workers do not "
                               f"fit, {fit} do (n_workers={fit}, or leave it unset)")
    elif threads_per_worker is not None:
        n = max(1, min(cores // v.as_int("threads_per_worker", threads_per_worker, minimum=1), fit))
    else:
        n = min(cores, fit)
    threads = (v.as_int("threads_per_worker", threads_per_worker, minimum=1) if threads_per_worker is not None
               else max(1, cores // n))
    return n, threads
