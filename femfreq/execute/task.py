"""The unit of work of a sweep: one chunk of frequencies, solved where the System is.

:func:`solve_chunk` is what a dask worker runs (with the scattered
:class:`~femfreq.system.System`) and what the serial runner calls in this process.
Its options are one frozen method object (:class:`~femfreq.options.Direct` or
:class:`~femfreq.options.Fast`) that travels to the workers unchanged; it returns
a :class:`ChunkResult` holding only the output DOF.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from dataclasses import dataclass

import numpy as np

from ..codes import Method
from ..errors import SingularMatrixError
from ..options import Direct, Fast, as_method

__all__ = ["ChunkResult", "solve_chunk"]

log = logging.getLogger(__name__)


@dataclass
class ChunkResult:
    """What one chunk of the sweep returns: the output DOF only.

    Attributes
    ----------
    index : (k,) int64
        Positions of the chunk's frequencies in the sweep.
    response : (k, n_out) complex128 or FactoredResponse
        Response at the output DOF; a :class:`~femfreq.solvers.fast.response.FactoredResponse`
        (the bases at the outputs and the reduced solutions) from a fast chunk solved with
        ``factored=True``, until :meth:`expanded`.
    rel_residual, backward_error : (k,) float64
        ``||A x - P b|| / ||P b||`` and ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.
    method : (k,) int8
        :class:`~femfreq.codes.Method` code of each frequency.
    worker : str
        Where it ran (dask worker address or host:pid).
    t_start, t_end : float
        Wall-clock start and end (epoch seconds).
    info : dict
        Method details (basis size, fallbacks, ...), small.
    interface_force : (k, 2) complex128 or None
        For base motion (``system.base``): the force the base applies to the structure,
        x and y; None for a point load.
    """

    index: np.ndarray
    response: np.ndarray
    rel_residual: np.ndarray
    backward_error: np.ndarray
    method: np.ndarray
    worker: str
    t_start: float
    t_end: float
    info: dict | None = None
    interface_force: np.ndarray | None = None

    def expanded(self) -> "ChunkResult":
        """This result with a dense ``response`` (itself when it already is)."""
        if isinstance(self.response, np.ndarray):
            return self
        return dataclasses.replace(self, response=np.asarray(self.response.toarray(), dtype=np.complex128))


def _worker_threads() -> tuple[int, int]:
    """(threads, chunks running) of the dask worker running this task; (1, 1) outside dask."""
    try:
        from distributed import get_worker

        state = get_worker().state
        return max(1, int(state.nthreads)), max(1, int(state.executing_count))
    except (ImportError, ValueError, AttributeError):
        return 1, 1


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def solve_chunk(system, index, freqs_hz, load, method: Direct | Fast | str = "direct", *,
                factored: bool = False) -> ChunkResult:
    """Solve one chunk of frequencies and keep the output DOF.

    Parameters
    ----------
    system : System
        The structure (on a dask worker: the scattered copy).
    index : (k,) int array
        Positions of these frequencies in the whole sweep.
    freqs_hz : (k,) float array
        Frequencies in Hz.
    load : (k,) complex array
        Load spectrum ``P(omega)`` at these frequencies.
    method : Direct, Fast or {"direct", "fast"}
        A sparse direct solve at every frequency, or the certified reduced-order
        sweep over the chunk's band (:func:`femfreq.solvers.fast.solve_band`), with
        their options.
    factored : bool, optional
        A fast chunk returns its response factored (``solve_band(..., factored=True)``):
        a few MB to send back instead of ``16 k n_out`` bytes; :meth:`ChunkResult.expanded`
        makes it dense. What a dask worker runs; no effect on a direct chunk or with base
        motion (default False).

    Returns
    -------
    ChunkResult
        Its ``info["threads"]``: the MKL threads the chunk's factorizations used. On a
        dask worker with T threads PARDISO factors with T (a direct chunk: the worker's
        solver serialises its chunks; ``Direct(solver_options={"threads": k})`` wins),
        a fast chunk with T divided among the chunks running on that worker; 1 outside
        dask.

    Raises
    ------
    femfreq.errors.SingularMatrixError
        A singular frequency, unless the method's ``skip_singular`` is set.
    """
    t_start = time.time()
    method = as_method(method)
    index = np.asarray(index, dtype=np.int64)
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    load = np.asarray(load, dtype=np.complex128)
    k = index.size
    if not (freqs_hz.shape == load.shape == (k,)):
        raise ValueError(
            f"index, freqs_hz and load must have the same length (got {k}, {freqs_hz.size}, {load.size})"
        )
    if isinstance(method, Fast):
        response, rel, bwd, codes, info = _fast(system, freqs_hz, load, method,
                                                factored and system.base is None)
    else:
        response, rel, bwd, codes, info = _direct(system, freqs_hz, load, method)
    if isinstance(response, np.ndarray):  # else factored (a fast chunk; never with a base)
        response = np.asarray(response, dtype=np.complex128)
    force = None
    if system.base is not None:
        response, force = _base_results(system, freqs_hz, load, response)
    return ChunkResult(
        index=index,
        response=response,
        rel_residual=np.asarray(rel, dtype=np.float64),
        backward_error=np.asarray(bwd, dtype=np.float64),
        method=np.asarray(codes, dtype=np.int8),
        worker=_worker_name(),
        t_start=t_start,
        t_end=time.time(),
        info=info,
        interface_force=force,
    )


def _base_results(system, freqs_hz, load, response):
    """Split the solution at the outputs and at the DOF coupled to the base: (response, interface force).

    Only ``(k, 2)`` leaves the chunk: the coupled DOF are reduced to the force here.
    """
    base = system.base
    omega = 2.0 * np.pi * freqs_hz
    accel = load / base.load_factor(omega)  # P = a_b (1 + alpha / (i w))
    force = base.interface_force(omega, accel, response[:, base.n_outputs:], system.g)
    return np.ascontiguousarray(response[:, :base.n_outputs]), force


def _fast(system, freqs_hz, load, method: Fast, factored=False):
    """The certified reduced-order sweep of the chunk's band: (response, rel, bwd, codes, info)."""
    from ..solvers.fast import solve_band

    threads, running = _worker_threads()
    share = max(1, threads // running)  # the chunks running at once share the worker's threads
    if threads > 1:
        from ..solvers.pardiso import mkl_threads

        with mkl_threads(share):
            band = solve_band(system, freqs_hz, load, factored=factored, **method.band_kwargs)
    else:
        band = solve_band(system, freqs_hz, load, factored=factored, **method.band_kwargs)
    info = dict(band.info or {}, threads=share)
    return band.response, band.rel_residual, band.backward_error, band.method, info


def _solver_options(system, method: Direct) -> dict:
    """The backend options of ``method``, with PARDISO's ``threads`` from the dask worker's threads."""
    from ..solvers import resolve_solver_name

    kwargs = method.solver_kwargs
    threads, _ = _worker_threads()
    # a dask nanny sets MKL_NUM_THREADS=1: a worker started with more threads says so here
    if threads > 1 and "threads" not in kwargs and resolve_solver_name(system, method.solver) == "pardiso":
        kwargs["threads"] = threads
    return kwargs


def _direct(system, freqs_hz, load, method: Direct):
    """A certified direct solve per frequency: (response, rel, bwd, codes, info)."""
    from ..solvers import get_solver, solve_certified

    k = freqs_hz.size
    response = np.zeros((k, system.output_dofs.size), dtype=np.complex128)
    rel = np.zeros(k)
    bwd = np.zeros(k)
    codes = np.full(k, Method.DIRECT, dtype=np.int8)
    direct = get_solver(system, method.solver, **_solver_options(system, method))
    for j in range(k):
        if load[j] == 0:
            continue  # x = 0 exactly: nothing to factor
        omega = 2.0 * np.pi * freqs_hz[j]
        try:
            x, rel[j], bwd[j] = solve_certified(direct, system, omega, load[j], tol=method.tol,
                                                refine=method.refine)
        except SingularMatrixError as exc:
            if not method.skip_singular:
                raise
            log.warning("skipping %.6g Hz: %s", freqs_hz[j], exc)
            response[j] = np.nan
            rel[j] = bwd[j] = np.nan
            codes[j] = Method.SKIPPED
            continue
        response[j] = x[system.output_dofs]
    info = {"solver": getattr(direct, "name", type(direct).__name__), "threads": int(getattr(direct, "threads", 1))}
    return response, rel, bwd, codes, info
