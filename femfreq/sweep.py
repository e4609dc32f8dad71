"""``solve()``: inputs -> plan -> execute -> results.

Each frequency is independent, ``(K(1 + i g) + i w C - w^2 M) x(w) = P(w) b``. The
sweep is planned into chunks (:mod:`femfreq.plan`), the chunks are solved serially or on
a dask cluster (:mod:`femfreq.execute`) by the method's solver (:mod:`femfreq.solvers`),
and each chunk's output DOF are written to the result file as they arrive
(:mod:`femfreq.results`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import _validate as v
from .errors import ClusterError, SweepInterrupted
from .options import Local, Serial, as_cluster, as_method
from .spectra import History
from ._startup import _attach_late, _attach_ordering, _system_and_client, _what
from .system import System

__all__ = ["solve"]

log = logging.getLogger(__name__)


def solve(
    model_or_K,
    C=None,
    M=None,
    b=None,
    *,
    freqs_hz=None,
    load=None,
    method="direct",
    cluster="local",
    out=None,
    resume=False,
    overwrite=False,
    progress=True,
    output_dofs=None,
    g=None,
    attrs=None,
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
        Frequencies in Hz: a list/array, ``"start:stop:n"`` (linear),
        ``"log:start:stop:n"``, or ``"auto:fmin:fmax[:n]"`` (``n`` points in every
        mode's half-power band, from the model's modes: :mod:`femfreq.grid`). Without it the frequencies are the ``rfft`` bins of the
        load history, ``k / (n_fft dt)``, Nyquist included.
    load : History, path, complex array or scalar, optional
        With ``freqs_hz``: ``P(omega)`` at those frequencies (default 1: the frequency
        response function). Without: a :class:`femfreq.spectra.History` (or the path of a
        history file) whose spectrum ``rfft(samples, n_fft)`` drives the sweep; the time
        response ``irfft(x, n_fft)`` at the output DOF is then stored too. Default: the
        model's own history.
    method : "direct", "fast", Direct or Fast
        How each frequency is solved (:mod:`femfreq.options`): ``Direct(solver=...,
        tol=...)`` a sparse direct solve at every frequency; ``Fast(tol=...)`` the
        certified reduced-order sweep (every frequency's true residual is checked; those
        above ``tol`` fall back to a direct solve).
    cluster : "local", None, str, Local, Scheduler, SSH, JobQueue or distributed.Client
        Where the sweep runs: ``"local"`` (default) an embedded LocalCluster started and
        closed here (:class:`~femfreq.options.Local` sets its size); ``None``: in this
        process, no dask; ``"tcp://host:8786"`` / ``"tls://..."`` or
        :class:`~femfreq.options.Scheduler`: an existing scheduler;
        :class:`~femfreq.options.SSH`: a cluster over SSH from a host file;
        :class:`~femfreq.options.JobQueue`: batch jobs; or a connected ``Client``.
    out : path, optional
        HDF5 result file, written as chunks complete. Without it a temporary file is used
        and removed.
    resume : bool
        Continue the sweep in an existing ``out`` file: compute only the missing frequencies.
    overwrite : bool
        Replace an existing ``out`` file.
    progress : bool
        Show a progress bar with ETA.
    output_dofs : (k,) int array, optional
        0-based reduced DOF to keep (matrices only; a model defines its own).
    g : float, optional
        Structural damping factor (overrides the model's).
    attrs : dict, optional
        Extra attributes for the result file.

    Returns
    -------
    femfreq.results.SweepResult
        Frequencies, response ``(F, n_out)`` at the output DOF, residuals, the method of
        each frequency and (on an FFT grid) the time response.

    Raises
    ------
    ValueError
        Bad matrices, frequencies or load; a singular frequency without ``skip_singular``
        (:class:`~femfreq.errors.SingularMatrixError`).
    femfreq.errors.SweepInterrupted
        The cluster went away mid-sweep: ``.path`` keeps what was done (``.done`` of
        ``.total`` frequencies); rerun with ``resume=True``. An error raised while
        solving a chunk on a worker arrives as the class it was.

    Examples
    --------
    >>> import numpy as np, femfreq
    >>> r = femfreq.solve(np.array([[4.0]]), None, np.array([[1.0]]), [1.0],
    ...                   freqs_hz=[0.0], cluster=None, progress=False)
    >>> complex(r.response[0, 0])
    (0.25+0j)
    """
    from . import results as _results
    from .grid import is_auto

    method = as_method(method)
    where = as_cluster(cluster)
    calibration = _calibration(where)  # a bad calibration file fails before any work
    with contextlib.ExitStack() as stack:  # closes a temporary result folder, then a cluster started early
        system, model, client, ordering, cluster = _system_and_client(
            stack, model_or_K, C, M, b, g=g, output_dofs=output_dofs, where=where, method=method, resume=resume)
        freqs, P, history = _frequencies_and_load(model, freqs_hz, load, system)
        if resume and out is not None and is_auto(freqs_hz):
            freqs = _results.frequencies_to_resume(out, freqs)  # recomputed from the modes: rounding differs
        base = None
        if system.base is not None:  # the load spectrum is the base acceleration; P = a_b (1 + alpha / (i w))
            base = {"direction": system.base.direction, "acceleration": P, "influence": system.base.influence}
            P = P * system.base.load_factor(2 * np.pi * freqs)
        _check_frequency_scale(system, freqs)
        outputs = _outputs(system, model)
        fingerprint = _fingerprint(system, method)

        file_attrs = {
            "method": method.name,
            "solver": method.solver,
            "tol": float(method.tol),
            "model_name": getattr(model, "name", system.name),
            "n_dof": system.n,
            "g": system.g,
        }
        if history is not None:
            file_attrs.update(dt=history.dt, n_fft=history.n_fft)
        file_attrs.update(attrs or {})
        model_summary = model.summary() if model is not None else {"n_dof": system.n, "nnz": system.nnz}

        if out is None:
            if resume:
                raise ValueError("resume=True needs the result file to resume: pass out=...")
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="femfreq-"))) / "sweep.h5"
        else:
            path = Path(out)
        with _results.ResultWriter.create(
            path,
            freqs_hz=freqs,
            load_spectrum=P,
            outputs=outputs,
            attrs=file_attrs,
            model=model_summary,
            resume=resume,
            overwrite=overwrite,
            fingerprint=fingerprint,
            defer=True,  # nothing on disk until the first chunk is solved
            base=base,
        ) as writer:
            todo = np.flatnonzero(~np.asarray(writer.done, dtype=bool))
            bar = _Progress(progress, freqs.size, freqs.size - todo.size, f"sweep {file_attrs['model_name']}")
            try:
                if todo.size:
                    chunks = _chunks(system, todo, freqs, P, method, where, calibration,
                                     _recipe(model, system, where), client=client, ordering=ordering)
                    try:
                        for chunk in chunks:
                            writer.write_chunk(chunk)
                            bar.update(chunk)
                        if cluster is not None:  # every chunk is written: close the cluster while the file is finished
                            cluster.close_in_background()
                    except ClusterError as exc:
                        if isinstance(exc, SweepInterrupted):
                            raise
                        raise SweepInterrupted(
                            f"the dask cluster failed mid-sweep: {exc}",
                            path=path if out is not None and writer.on_disk else None,
                            done=int(np.count_nonzero(writer.done)), total=freqs.size,
                        ) from exc
            finally:
                bar.close()
            if history is not None:
                from . import spectra

                response = writer.result().response  # every row, including resumed ones
                x_t = spectra.to_time(np.nan_to_num(response), history.n_fft, axis=0)
                writer.write_time(history.t(), x_t)
            writer.finish()
            result = writer.result()  # from the file this writer still holds locked
        _warn_uncertified(result, method.tol)
        return result


def _calibration(where):
    """The cluster calibration of a where-object (None: the built-in figures)."""
    calibration = getattr(where, "calibration", None)
    if calibration is None or isinstance(calibration, dict):
        return calibration
    from .plan import load_calibration

    return load_calibration(calibration)


def _recipe(model, system, where):
    """How workers can build ``system`` themselves (None: it is uploaded).

    Not for an embedded LocalCluster: its workers share this machine's cores, where one
    upload is faster than a build per worker (docs/scaling.md has the figures).
    """
    if model is None or isinstance(where, (Local, Serial)):
        return None
    from .model.recipe import recipe_of

    recipe = recipe_of(model)
    if recipe is not None and system is not model.system():  # solve(..., g=...) replaced the System
        recipe = recipe.with_overrides(g=system.g)
    return recipe


def _chunks(system, todo, freqs, P, method, where, calibration, recipe=None, client=None, ordering=None):
    """Plan the frequencies ``todo`` and yield their ChunkResults, serially or on dask.

    ``client``: one already open on ``where`` (:func:`_system_and_client`), else one is opened here.
    ``ordering``: the future of the model's node ordering, or None. On dask the System leaves
    for the workers without waiting for it (they load the System while it ends); a late
    ordering is given to the System and to every worker's copy before the first task
    (:func:`~femfreq._startup._attach_late`).
    """
    from . import plan

    if isinstance(where, Serial):
        _attach_ordering(system, ordering)
        from .execute.serial import run_serial

        weights = None
        if plan.needs_mode_weights(system, method, freqs[todo]):
            from .solvers.fast import mode_weights

            weights = mode_weights(system, freqs[todo])
        parts = plan.plan_sweep(system, freqs[todo], 1, method, calibration=calibration, weights=weights,
                                serial=True)
        yield from run_serial(system, [(todo[p], freqs[todo[p]], P[todo[p]]) for p in parts], method)
        return
    from .execute import open_client, run_on_dask

    # the worker plan (how many fit in memory) knows what one worker will hold for this model
    opened = (open_client(client) if client is not None else
              open_client(where, worker_bytes=plan.worker_memory_bytes(system.n, system.nnz, method),
                          what=_what(system.name, system.n, method)))
    ordering = _attach_ordering(system, ordering, wait=False)  # the future still to attach, or None
    with opened as client:
        def tasks(system_future):  # planned once the System is on the workers
            _attach_late(client, system, system_future, ordering)
            workers = list(client.scheduler_info().get("workers", {}))
            n = max(1, len(workers))
            weights = None
            if plan.needs_mode_weights(system, method, freqs[todo]):
                weights = _mode_weights_on(client, system, system_future, freqs[todo], workers)
            parts = plan.plan_sweep(system, freqs[todo], n, method, calibration=calibration, weights=weights)
            return [(todo[p], freqs[todo[p]], P[todo[p]]) for p in parts]

        # workers on this machine (an embedded cluster) read the System from one file
        shared = (tempfile.TemporaryDirectory(prefix="femfreq-system-") if isinstance(where, Local)
                  else contextlib.nullcontext())
        with shared as shared_dir:
            yield from run_on_dask(client, system, tasks, method=method, recipe=recipe, shared_dir=shared_dir)


def _mode_weights_on(client, system, system_future, freqs, workers):
    """:func:`~femfreq.solvers.fast.mode_weights` with its Sturm counts (real factorizations,
    seconds on a big model) made on the workers: the two at once on two workers, each of
    which keeps the analysis for its first sub-band, instead of both on one while the
    other idles."""
    from .solvers.fast import count_modes, mode_weights, sturm_frequencies

    points = sturm_frequencies(freqs)
    if len(workers) < 2 or len(points) != 2:
        return client.submit(mode_weights, system_future, freqs, pure=False).result()
    futures = [client.submit(count_modes, system_future, [f], workers=[w], allow_other_workers=True, pure=False)
               for f, w in zip(points, workers)]
    try:
        counts = [int(fut.result()[0]) for fut in futures]
    except ValueError:  # no MKL on the workers: no inertia, the default exponent
        return mode_weights(system, freqs, counts=False)
    return mode_weights(system, freqs, sturm_counts=counts)


def _frequencies_and_load(model, freqs_hz, load, system):
    """(freqs_hz, P, history): history is the History when the sweep is on its rfft grid.

    An ``"auto:..."`` spec is resolved on ``system`` (its modes set the grid). With a base
    (``system.base``), ``P`` is the base acceleration (default: the model base's acceleration).
    """
    from . import spectra

    if freqs_hz is not None:
        if isinstance(load, (History, str, os.PathLike)):
            raise TypeError("a load history sets its own rfft frequencies: give either freqs_hz or a History")
        freqs = spectra.frequency_grid(freqs_hz, system=system)
        if load is None:
            model_base = getattr(model, "base", None) if system.base is not None else None
            load = model_base.acceleration if model_base is not None else 1.0
        P = v.load_spectrum(load, freqs.size)
        return freqs, P, None
    if system.base is not None and load is None:
        raise ValueError("base motion needs frequencies: give freqs_hz (or a base acceleration History as load)")
    if load is None and model is not None:
        samples, dt, n_fft = model.load_history()
        if samples is not None:
            load = History(samples, dt=dt, n_fft=n_fft)
    if load is None:
        raise ValueError("no frequencies: give freqs_hz, or a load history (load=History(samples, dt=...))")
    if isinstance(load, (str, os.PathLike)):
        load = History(load)
    if not isinstance(load, History):
        raise TypeError("a load spectrum needs freqs_hz; give a History for an FFT grid")
    return load.freqs_hz(), load.spectrum(), load


def _fingerprint(system: System, method) -> dict:
    """What determines the answer besides frequencies, load and outputs (compared on resume).

    Hashes of K, C, M (values and pattern), b and the output DOF, with g, the method, tol,
    the solver asked for and skip_singular. Not included: the options that change only
    how a frequency is solved, never what is accepted (Fast's basis options, Direct's
    refine and backend options, the solver "auto" resolves to): every frequency is
    certified against ``tol`` whatever they are.
    """
    out = {**system.digest(), "method": method.name, "tol": float(method.tol), "solver": method.solver,
           "skip_singular": int(method.skip_singular)}
    if system.base is not None:
        out["base_direction"] = [float(c) for c in system.base.direction]
    return out



def _check_frequency_scale(system, freqs):
    """Refuse frequencies at which ``omega^2 M`` overflows or swamps ``K`` entirely.

    Past ``omega^2 max|M| > max|K| / eps`` the stiffness is below the rounding of the mass
    term: the answer no longer depends on K, solvers overflow or report a singular matrix.
    """
    if freqs.size == 0:
        return
    f = float(freqs.max())
    k, m = v.max_abs(system.K.data), v.max_abs(system.M.data)
    if m == 0.0:
        return
    with np.errstate(over="ignore"):
        mass_term = float((2 * np.pi * np.float64(f)) ** 2 * m)
    limit = k / np.finfo(float).eps if k > 0 else np.finfo(float).max / 1e6
    if not np.isfinite(mass_term) or mass_term > limit:
        f_max = np.sqrt(limit / m) / (2 * np.pi)
        raise ValueError(f"frequency {f:g} Hz is beyond what this model can resolve: omega^2 max|M| "
                         f"{'overflows' if not np.isfinite(mass_term) else f'= {mass_term:.3g}'} while "
                         f"max|K| = {k:.3g}; frequencies must stay below about {f_max:.3g} Hz")


def _outputs(system: System, model) -> dict:
    dofs = system.output_dofs if system.base is None else system.output_dofs[: system.base.n_outputs]
    if model is not None:
        full = np.asarray(model.free_dofs)[dofs]
        node = full // 2
        xy = np.asarray(model.points)[node]
    else:
        full = dofs.copy()
        node = full // 2
        xy = np.full((full.size, 2), np.nan)
    return {"dof": full.astype(np.int64), "node": node.astype(np.int64),
            "direction": (full % 2).astype(np.int8), "xy": xy.astype(np.float64)}


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


