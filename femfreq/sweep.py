"""The frequency sweep: plan chunks, solve them serially or on dask, stream results.

Each frequency is independent, ``(K(1 + i g) + i w C - w^2 M) x(w) = P(w) b``, so
the sweep is split into chunks of frequencies. A chunk is solved by
:func:`solve_chunk` (what a dask worker runs, with the :class:`~femfreq.system.System`
already scattered to it) and comes back as a :class:`ChunkResult` holding only
the output DOF, which :func:`solve` writes to the result file as it arrives.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .system import System, as_system

__all__ = ["ChunkResult", "solve_chunk", "solve", "response_field", "METHOD_CODES"]

log = logging.getLogger(__name__)

#: codes stored in the result file's ``/method`` dataset
METHOD_CODES = {"pending": 0, "direct": 1, "fast": 2, "skipped": 3}
_METHODS = ("direct", "fast")


@dataclass
class ChunkResult:
    """What one chunk of the sweep returns: the output DOF only.

    Attributes
    ----------
    index : (k,) int64
        Positions of the chunk's frequencies in the sweep.
    response : (k, n_out) complex128
        Response at the output DOF.
    rel_residual, backward_error : (k,) float64
        ``||A x - P b|| / ||P b||`` and ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.
    method : (k,) int8
        :data:`METHOD_CODES` of the method that produced each frequency.
    worker : str
        Where it ran (dask worker address or host:pid).
    t_start, t_end : float
        Wall-clock start and end (epoch seconds).
    info : dict
        Method details (basis size, fallbacks, ...), small.
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


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def solve_chunk(system, index, freqs_hz, load, *, method="direct", solver="auto", options=None):
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
    method : {"direct", "fast"}
        A sparse direct solve at every frequency, or the certified reduced-order
        sweep over the chunk's band (:func:`femfreq.solvers.fast.solve_band`).
    solver : str
        Direct solver name (``"auto"``, ``"superlu"``, ``"pardiso"``).
    options : dict, optional
        ``tol`` (relative residual that certifies a solution, default 1e-6 for
        ``fast``; for ``direct`` solutions above it get iterative refinement),
        ``skip_singular`` (record a singular frequency as skipped instead of
        raising), ``solver_options`` (passed to the solver), ``fast_options``.

    Returns
    -------
    ChunkResult
    """
    t_start = time.time()
    options = dict(options or {})
    index = np.asarray(index, dtype=np.int64)
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    load = np.asarray(load, dtype=np.complex128)
    k = index.size
    if not (freqs_hz.shape == load.shape == (k,)):
        raise ValueError(
            f"index, freqs_hz and load must have the same length (got {k}, {freqs_hz.size}, {load.size})"
        )
    tol = options.get("tol", 1e-6)
    skip_singular = bool(options.get("skip_singular", False))
    n_out = system.output_dofs.size
    info: dict = {}
    if method == "fast":
        from .solvers.fast import solve_band

        band = solve_band(
            system, freqs_hz, load, tol=tol, direct_solver=solver, skip_singular=skip_singular,
            **options.get("fast_options", {}),
        )
        get = band.get if isinstance(band, dict) else lambda key: getattr(band, key)
        response = np.asarray(get("response"), dtype=np.complex128)
        rel = np.asarray(get("rel_residual"), dtype=np.float64)
        bwd = np.asarray(get("backward_error"), dtype=np.float64)
        codes = np.asarray(get("method"), dtype=np.int8)
        try:
            info = dict(get("info") or {})
        except (KeyError, AttributeError):
            info = {}
    elif method == "direct":
        from .solvers.base import SingularMatrixError, get_solver, solve_certified

        response = np.zeros((k, n_out), dtype=np.complex128)
        rel = np.zeros(k)
        bwd = np.zeros(k)
        codes = np.full(k, METHOD_CODES["direct"], dtype=np.int8)
        direct = get_solver(system, solver, **options.get("solver_options", {}))
        refine = int(options.get("refine", 2))
        for j in range(k):
            if load[j] == 0:
                continue  # x = 0 exactly: nothing to factor
            omega = 2.0 * np.pi * freqs_hz[j]
            try:
                x, rel[j], bwd[j] = solve_certified(direct, system, omega, load[j], tol=tol, refine=refine)
            except SingularMatrixError as exc:
                if not skip_singular:
                    raise
                log.warning("skipping %.6g Hz: %s", freqs_hz[j], exc)
                response[j] = np.nan
                rel[j] = bwd[j] = np.nan
                codes[j] = METHOD_CODES["skipped"]
                continue
            response[j] = x[system.output_dofs]
        info["solver"] = getattr(direct, "name", type(direct).__name__)
    else:
        raise ValueError(f"unknown method {method!r}; pick one of {list(_METHODS)}")
    return ChunkResult(
        index=index,
        response=response,
        rel_residual=rel,
        backward_error=bwd,
        method=codes,
        worker=_worker_name(),
        t_start=t_start,
        t_end=time.time(),
        info=info,
    )


# -- planning ---------------------------------------------------------------------------
def _serial_chunks(n_freqs: int, method: str) -> list[np.ndarray]:
    # fast: long contiguous bands (one reduced basis serves many frequencies);
    # direct: small chunks, only for progress and checkpoint granularity
    size = 256 if method == "fast" else 8
    return [np.arange(i, min(i + size, n_freqs)) for i in range(0, n_freqs, size)]


# -- inputs -------------------------------------------------------------------------------
def _build_system(model_or_K, C, M, b, *, g, output_dofs):
    """A System, the model it came from (or None), and the output description."""
    from .model import Model  # local: keeps femfreq.sweep importable on its own

    model = None
    if isinstance(model_or_K, (Model, System)):
        kind = type(model_or_K).__name__
        if any(v is not None for v in (C, M, b)):
            raise TypeError(f"give either a {kind} or the matrices K, C, M, b, not both")
        if output_dofs is not None:
            raise TypeError(f"output_dofs comes from the {kind}; set its outputs instead")
        if isinstance(model_or_K, Model):
            model = model_or_K
            system = model.system()
        else:
            system = model_or_K
        if g is not None and g != system.g:
            system = System(K=system.K, C=system.C, M=system.M, b=system.b, g=g,
                            output_dofs=system.output_dofs, name=system.name)
    elif isinstance(model_or_K, (str, os.PathLike)):
        raise TypeError(
            f"solve() takes a Model, a System or matrices; load the model file first: "
            f"femfreq.load_model({str(model_or_K)!r})"
        )
    else:
        system = as_system(model_or_K, C, M, b, g=g or 0.0, output_dofs=output_dofs)
    return system, model


def _outputs(system: System, model) -> dict:
    if model is not None:
        full = np.asarray(model.free_dofs)[system.output_dofs]
        node = full // 2
        xy = np.asarray(model.points)[node]
    else:
        full = system.output_dofs.copy()
        node = full // 2
        xy = np.full((full.size, 2), np.nan)
    return {"dof": full.astype(np.int64), "node": node.astype(np.int64),
            "direction": (full % 2).astype(np.int8), "xy": xy.astype(np.float64)}


def _frequencies_and_load(model, freqs_hz, load, history, dt, n_fft):
    """(freqs_hz, P, time_info) where time_info = (dt, n_fft) when on an rfft grid."""
    from . import spectra

    if freqs_hz is not None:
        if history is not None:
            raise TypeError("give either freqs_hz (with an optional load spectrum) or a load history, not both")
        freqs = spectra.frequency_grid(freqs_hz)
        if load is None:
            P = np.ones(freqs.size, dtype=np.complex128)
        else:
            P = np.asarray(load, dtype=np.complex128).ravel()
            if P.size == 1:
                P = np.full(freqs.size, P[0])
            if P.shape != freqs.shape:
                raise ValueError(f"load has {P.size} values but there are {freqs.size} frequencies")
            if not np.all(np.isfinite(P)):
                raise ValueError("load spectrum has non-finite values")
        return freqs, P, None
    if load is not None:
        raise TypeError("a load spectrum needs freqs_hz; give a load history for an FFT grid")
    if history is None and model is not None:
        history, dt_m, n_fft_m = model.load_history()
        dt = dt if dt is not None else dt_m
        n_fft = n_fft if n_fft is not None else n_fft_m
    if history is None:
        raise ValueError("no frequencies: give freqs_hz, or a load history (history=..., dt=...)")
    if isinstance(history, (str, os.PathLike)):
        _t, history, dt_file = _read_history(history, dt)
        dt = dt_file
    history = np.asarray(history, dtype=np.float64).ravel()
    if history.size < 2:
        raise ValueError(f"the load history needs at least 2 samples (has {history.size})")
    if not np.all(np.isfinite(history)):
        raise ValueError(f"the load history has a non-finite sample at index {int(np.flatnonzero(~np.isfinite(history))[0])}")
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"the load history needs a positive sample interval dt (got {dt})")
    n_fft = int(n_fft) if n_fft is not None else int(history.size)
    freqs = spectra.rfft_freqs(n_fft, dt)
    P = spectra.load_spectrum(history, n_fft)
    return freqs, P, (float(dt), n_fft)


def _read_history(path, dt):
    from . import spectra

    t, f = spectra.read_history(path, dt=dt)
    return t, f, float(t[1] - t[0])


class _Progress:
    """A tqdm bar over frequencies, or nothing."""

    def __init__(self, enabled, total, initial, desc):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="freq", smoothing=0.1)

    def update(self, chunk):
        if self.bar is not None:
            self.bar.update(chunk.index.size)
            worst = np.nanmax(chunk.rel_residual) if chunk.rel_residual.size else 0.0
            self.bar.set_postfix_str(f"max residual {worst:.1e}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def solve(
    model_or_K,
    C=None,
    M=None,
    b=None,
    *,
    freqs_hz=None,
    load=None,
    history=None,
    dt=None,
    n_fft=None,
    output_dofs=None,
    g=None,
    method="direct",
    solver="auto",
    tol=1e-6,
    cluster="local",
    hostfile=None,
    n_workers=None,
    security=None,
    out=None,
    resume=False,
    overwrite=False,
    skip_singular=False,
    progress=True,
    attrs=None,
    calibration=None,
):
    """Frequency response ``(K(1 + i g) + i w C - w^2 M) x(w) = P(w) b`` over a sweep.

    Parameters
    ----------
    model_or_K : Model, System or (n, n) matrix
        A :class:`femfreq.model.Model` (from :func:`femfreq.load_model`), a
        :class:`~femfreq.system.System`, or the stiffness matrix ``K`` (scipy sparse
        in any format, or dense), in which case ``C``, ``M`` and ``b`` follow.
    C, M : (n, n) matrices, optional
        Damping (may be None) and mass, when ``K`` is given.
    b : (n,) array, optional
        Load distribution vector, when ``K`` is given.
    freqs_hz : array-like or str, optional
        Frequencies in Hz: a list/array, ``"start:stop:n"`` (linear) or
        ``"log:start:stop:n"``. Without it the frequencies are the ``rfft`` bins of the
        load history, ``k / (n_fft dt)``, Nyquist included.
    load : complex array or scalar, optional
        ``P(omega)`` at ``freqs_hz`` (default 1: the frequency response function).
    history : (n_t,) array or path, optional
        Load time history (default: the model's own). Its spectrum
        ``P = rfft(history, n_fft)`` drives the sweep and the time response is
        ``irfft(x, n_fft)`` at the output DOF.
    dt : float, optional
        Sample interval of ``history`` in s.
    n_fft : int, optional
        FFT length (default the model's, or the history length).
    output_dofs : (k,) int array, optional
        0-based reduced DOF to keep (matrices only; a model defines its own).
    g : float, optional
        Structural damping factor (overrides the model's).
    method : {"direct", "fast"}
        ``direct``: a sparse direct solve at every frequency. ``fast``: the certified
        reduced-order sweep (every frequency's true residual is checked; those above
        ``tol`` fall back to a direct solve).
    solver : {"auto", "superlu", "pardiso"}
        Direct solver backend.
    tol : float
        Relative residual that certifies a solution.
    cluster : "local", None, str or distributed.Client
        ``"local"`` (default): an embedded LocalCluster started and closed here;
        ``None``: in this process, no dask; ``"tcp://host:8786"`` / ``"tls://..."``: an
        existing scheduler; or a connected ``Client``.
    hostfile : path, optional
        Start a cluster over SSH on the hosts listed in this file (one per line).
    n_workers : int, optional
        Workers of an embedded cluster (default: one per core).
    security : distributed.Security, optional
        TLS credentials for a ``tls://`` scheduler.
    out : path, optional
        HDF5 result file, written as chunks complete. Without it a temporary file is used
        and removed.
    resume : bool
        Continue the sweep in an existing ``out`` file: compute only the missing frequencies.
    overwrite : bool
        Replace an existing ``out`` file.
    skip_singular : bool
        Record a singular frequency (0 Hz on a free-free model) as skipped (NaN)
        instead of raising.
    progress : bool
        Show a progress bar with ETA.
    attrs : dict, optional
        Extra attributes for the result file.
    calibration : dict or path, optional
        A cluster calibration (``femfreq calibrate -o calib.json``): its task overhead
        sets the shortest chunk worth a dask task. Default: quick built-in figures.

    Returns
    -------
    femfreq.results.SweepResult
        Frequencies, response ``(F, n_out)`` at the output DOF, residuals, the method of
        each frequency and (on an FFT grid) the time response.

    Raises
    ------
    ValueError
        Bad matrices, frequencies or load; a singular frequency without ``skip_singular``.
    RuntimeError
        The cluster went away mid-sweep (the file keeps what was done: rerun with ``resume=True``).

    Examples
    --------
    >>> import numpy as np, femfreq
    >>> r = femfreq.solve(np.array([[4.0]]), None, np.array([[1.0]]), [1.0],
    ...                   freqs_hz=[0.0], cluster=None, progress=False)
    >>> complex(r.response[0, 0])
    (0.25+0j)
    """
    from . import results as _results

    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; pick one of {list(_METHODS)}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number (got {tol})")
    if calibration is not None and not isinstance(calibration, dict):
        from .calibrate import load_calibration

        calibration = load_calibration(calibration)  # a bad file fails before any work
    system, model = _build_system(model_or_K, C, M, b, g=g, output_dofs=output_dofs)
    freqs, P, time_info = _frequencies_and_load(model, freqs_hz, load, history, dt, n_fft)
    outputs = _outputs(system, model)

    file_attrs = {
        "method": method,
        "solver": solver,
        "tol": float(tol),
        "model_name": getattr(model, "name", system.name),
        "n_dof": system.n,
        "g": system.g,
    }
    if time_info is not None:
        file_attrs.update(dt=time_info[0], n_fft=time_info[1])
    file_attrs.update(attrs or {})
    model_summary = model.summary() if model is not None else {"n_dof": system.n, "nnz": system.nnz}

    tmpdir = None
    if out is None:
        if resume:
            raise ValueError("resume=True needs the result file to resume: pass out=...")
        tmpdir = tempfile.TemporaryDirectory(prefix="femfreq-")
        path = Path(tmpdir.name) / "sweep.h5"
    else:
        path = Path(out)
    try:
        with _results.ResultWriter.create(
            path,
            freqs_hz=freqs,
            load_spectrum=P,
            outputs=outputs,
            attrs=file_attrs,
            model=model_summary,
            resume=resume,
            overwrite=overwrite,
        ) as writer:
            todo = np.flatnonzero(~np.asarray(writer.done, dtype=bool))
            if todo.size < freqs.size:
                log.info("resuming %s: %d of %d frequencies already done", path, freqs.size - todo.size, freqs.size)
            options = {"tol": tol, "skip_singular": skip_singular}
            bar = _Progress(progress, freqs.size, freqs.size - todo.size, f"sweep {file_attrs['model_name']}")
            try:
                if todo.size:
                    for chunk in _run(system, todo, freqs, P, method, solver, options,
                                      cluster=cluster, hostfile=hostfile, n_workers=n_workers,
                                      security=security, path=path if out is not None else None,
                                      calibration=calibration):
                        writer.write_chunk(chunk)
                        bar.update(chunk)
            finally:
                bar.close()
            if time_info is not None:
                from . import spectra

                response = writer.result().response  # every row, including resumed ones
                t = np.arange(time_info[1]) * time_info[0]
                x_t = spectra.to_time(np.nan_to_num(response), time_info[1], axis=0)
                writer.write_time(t, x_t)
            writer.finish()
        result = _results.read_results(path)
        _warn_uncertified(result, tol)
        return result
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _warn_uncertified(result, tol):
    rel = np.asarray(result.rel_residual)
    bad = np.flatnonzero(rel > tol)
    if bad.size:
        warnings.warn(
            f"{bad.size} frequencies have a relative residual above tol={tol:g} "
            f"(worst {np.nanmax(rel):.2e} at {result.freqs_hz[bad[np.argmax(rel[bad])]]:.6g} Hz); "
            "see the result's rel_residual",
            RuntimeWarning,
            stacklevel=3,
        )


#: seconds per frequency per free DOF of one sparse direct solve (PARDISO, 2-D trusses,
#: measured on this project's satellite: 15k DOF 0.045 s, 612k DOF ~2 s); only a
#: first guess for chunk sizes, replaced by a calibration's ``seconds_per_dof``
_SECONDS_PER_DOF = 3.5e-6


def _lightly_damped(system, f_max) -> bool:
    """True if modes near ``f_max`` are underdamped (viscous C small against K)."""
    k = np.abs(system.k_values).max()
    c = np.abs(system.c_values).max() if system.c_values.size else 0.0
    # C ~ beta K gives a damping ratio ~ beta pi f: overdamped beyond 1 / (beta pi)
    return k == 0 or c / k * np.pi * f_max < 1.0


def _planning(system, method, calibration, freqs_hz=None, *, client=None, system_future=None):
    """Keyword arguments for :func:`femfreq.cluster.plan_chunks`.

    The calibration sets the shortest chunk worth a task. Direct: a first guess of
    the seconds per frequency. Fast with light damping: sub-bands of equal mode count
    (the cost of a band follows the modes it holds, whose density grows with f); with
    a dask ``client`` and the scattered System's future, their Sturm counts (real
    factorizations, seconds on big models) run as one task on a worker, not here.
    Fast with heavy damping: one sub-band per worker.
    """
    from . import calibrate

    kw = {"min_task_seconds": calibrate.min_task_seconds(calibration)}
    if method == "direct":
        per_dof = (calibration or {}).get("seconds_per_dof", _SECONDS_PER_DOF)
        kw["seconds_per_freq"] = float(per_dof) * system.n
    elif freqs_hz is not None and len(freqs_hz) > 1 and _lightly_damped(system, np.max(freqs_hz)):
        from .solvers.fast import mode_weights

        if client is not None and system_future is not None:
            freqs = np.asarray(freqs_hz, dtype=np.float64)
            kw["weights"] = client.submit(mode_weights, system_future, freqs, pure=False).result()
        else:
            kw["weights"] = mode_weights(system, freqs_hz)
    elif method == "fast":
        # heavy damping: one basis of a few dozen vectors covers a wide band, so every
        # extra sub-band only repeats the fixed costs (a factorization, the first
        # vectors); one contiguous sub-band per worker (level 7, C = 0.004 K, 2049
        # frequencies: 16 sub-bands took 133 s, 2 took 17 s)
        kw["chunks_per_worker"] = 1
    return kw


def _run(system, todo, freqs, P, method, solver, options, *, cluster, hostfile, n_workers, security, path,
         calibration=None):
    """Yield ChunkResults for the frequencies ``todo``, serially or on dask."""
    if cluster is None and hostfile is None:
        from .solvers import base

        try:
            for part in _serial_chunks(todo.size, method):
                idx = todo[part]
                yield solve_chunk(system, idx, freqs[idx], P[idx], method=method, solver=solver, options=options)
        finally:
            base.clear_cache()  # free the factorization (GBs on big models) once the sweep is over
        return
    from . import cluster as _cluster

    with _cluster.open_client(cluster if cluster is not None else "local", n_workers=n_workers,
                              hostfile=hostfile, security=security) as client:
        def tasks(system_future):  # planned once the System is on the workers
            n = max(1, len(client.scheduler_info().get("workers", {})))
            kw = _planning(system, method, calibration, freqs[todo], client=client, system_future=system_future)
            plan = _cluster.plan_chunks(todo.size, n, method=method, **kw)
            return [(todo[p], freqs[todo[p]], P[todo[p]]) for p in plan]

        try:
            yield from _cluster.run_on_dask(client, system, tasks, method=method, solver=solver, options=options)
        except (OSError, TimeoutError, RuntimeError) as exc:
            where = f"; results so far are in {path}: rerun with resume=True (--resume)" if path else ""
            raise RuntimeError(f"the dask cluster failed mid-sweep: {exc}{where}") from exc


def response_field(model, freq_hz, *, load=1.0, solver="auto"):
    """The full response of a model at one frequency, on every DOF.

    A sweep keeps only the output DOF; this solves one frequency for the whole field
    (for a ParaView picture of where the structure moves).

    Parameters
    ----------
    model : femfreq.model.Model
    freq_hz : float
        Frequency in Hz (>= 0).
    load : complex, optional
        ``P(omega)`` (default 1: the response per unit load).
    solver : str, optional
        Direct solver name.

    Returns
    -------
    x : (n_nodes, 2) complex array
        Displacement of every node (zero on fixed DOF).
    rel_residual : float
        Its relative residual.
    """
    from .solvers.base import get_solver, solve_certified

    f = float(freq_hz)
    if not np.isfinite(f) or f < 0:
        raise ValueError(f"freq_hz must be finite and >= 0 (got {freq_hz})")
    system = model.system()
    direct = get_solver(system, solver)
    x, rel, _ = solve_certified(direct, system, 2 * np.pi * f, complex(load), tol=1e-10, refine=2)
    return model.expand(x).reshape(-1, 2), rel
