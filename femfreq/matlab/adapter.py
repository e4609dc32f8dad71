"""The one function MATLAB's ``py.`` interface calls, and the .mat-in/.mat-out sweep.

Every dask object stays on this side: the client, the cluster and the futures are
created, used and closed inside :func:`solve_triplets` (MATLAB clients holding dask
objects were seen to disconnect).
"""

from __future__ import annotations

import array
import logging
import multiprocessing
import sys
from pathlib import Path

import numpy as np

from ._convert import _complex_parts, _is_missing, _vector
from .matfile import read_mat_input, write_mat_result
from .triplets import system_from_triplets

__all__ = ["solve_triplets", "solve_mat"]

log = logging.getLogger("femfreq.matlab")


def _fix_executable():
    """Point multiprocessing at a Python interpreter when embedded in MATLAB.

    Inside MATLAB's in-process Python ``sys.executable`` is the MATLAB executable, and a
    LocalCluster's spawned worker processes would start MATLAB instead of Python.
    """
    exe = Path(sys.executable or "")
    if exe.name.lower().startswith(("python", "pypy")):
        return
    candidates = [Path(getattr(sys, "_base_executable", "") or "")]
    for prefix in (sys.exec_prefix, sys.prefix):
        candidates += [Path(prefix) / "bin" / "python3", Path(prefix) / "python.exe"]
    for c in candidates:
        if c.name.lower().startswith("python") and c.is_file():
            log.info("sys.executable is %s (embedded); dask workers will use %s", exe, c)
            multiprocessing.set_executable(str(c))
            return
    log.warning("sys.executable is %s and no Python interpreter was found for worker processes", exe)


def _matlab_array(a) -> array.array:
    """A flat column-major ``array.array('d')`` that every MATLAB release converts with double()."""
    return array.array("d", np.asarray(a, dtype=np.float64).ravel(order="F").tobytes())


def _optional_str(x):
    """None for None, [] or a blank string (MATLAB's '' or py.None); else the string."""
    if x is None or (not isinstance(x, (str, bytes)) and _is_missing(x)):
        return None
    s = x.decode() if isinstance(x, bytes) else str(x)
    return s if s.strip() else None


def _scheduler_arg(scheduler):
    """MATLAB's 'Scheduler' option: (serial, address or None)."""
    if scheduler is None:
        return False, None
    s = str(scheduler).strip()
    if s.lower() in ("", "none", "serial"):
        return True, None
    return False, (None if s.lower() == "local" else s)


def solve_triplets(
    Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, n, b, freqs_hz, P_re, P_im, output_dofs, *,
    b_im=None, g=0.0, C_size=None, M_size=None, method="direct", solver="auto", tol=1e-6,
    scheduler="local", hostfile=None, n_workers=None, out=None, overwrite=False, progress=False,
    matlab_arrays=False,
) -> dict:
    """Frequency sweep of matrices sent by MATLAB as ``find()`` triplets.

    The only function MATLAB calls (``py.femfreq.matlab.solve_triplets(...)``, see
    ``matlab/femfreq_solve.m``). It converts the arguments, runs :func:`femfreq.solve`
    (on dask unless ``scheduler`` is ``"none"``) and returns plain arrays.

    Parameters
    ----------
    Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, n, b, output_dofs
        As in :func:`system_from_triplets` (1-based indices).
    freqs_hz : (F,) array-like
        Frequencies in Hz.
    P_re, P_im : (F,) array-likes or scalars
        Real and imaginary parts of the load spectrum ``P(omega)``; ``P_im`` may be
        None or empty (real load). A complex ``P_re`` is accepted as well.
    b_im, g, C_size, M_size
        As in :func:`system_from_triplets`.
    method : {"direct", "fast"}
        Sweep method.
    solver : str
        Direct solver backend ("auto", "superlu", "pardiso").
    tol : float
        Residual that certifies a frequency.
    scheduler : str, optional
        ``"local"`` (default: an embedded LocalCluster), ``"none"`` or ``""`` (no dask,
        in this process) or a scheduler address ``"tcp://host:8786"``.
    hostfile : str, optional
        SSH host file: start the cluster on these hosts.
    n_workers : int, optional
        Workers of the embedded cluster.
    out : str, optional
        Also keep the HDF5 result file here.
    overwrite : bool
        Replace an existing ``out``.
    progress : bool
        Progress bar (on stderr; off by default, MATLAB does not show it).
    matlab_arrays : bool
        Return flat column-major ``array.array('d')`` objects (plus their ``shape``) instead
        of numpy arrays: ``double()`` converts them in every MATLAB release (and needs no
        numpy support on the MATLAB side), ``double(numpy array)`` from R2018b on.

    Returns
    -------
    dict
        ``response_re``, ``response_im`` : (n_out, F) float64, the response at the output DOF
        (one row per output DOF, one column per frequency, as MATLAB wants it);
        ``freqs_hz`` (F,); ``rel_residual`` (F,); ``backward_error`` (F,);
        ``output_dofs`` (n_out,) 1-based; ``shape`` (n_out, F) as a tuple of ints.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (see :func:`system_from_triplets`), frequencies or load.
    """
    from ..options import cluster_from, method_from
    from ..sweep import solve

    system = system_from_triplets(
        Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, n, b, output_dofs,
        b_im=b_im, g=g, C_size=C_size, M_size=M_size,
    )
    freqs = _vector("freqs_hz", freqs_hz)
    if freqs.size == 0:
        raise ValueError("freqs_hz is empty: give at least one frequency")
    load = _complex_parts("P", P_re, P_im, length=freqs.size)
    serial, address = _scheduler_arg(scheduler)
    hostfile = _optional_str(hostfile)
    workers = None if _is_missing(n_workers) else int(_vector("n_workers", n_workers, length=1)[0])
    cluster = cluster_from(serial=serial and hostfile is None, scheduler=address, hostfile=hostfile,
                           n_workers=workers)
    if not serial or hostfile is not None:
        _fix_executable()
    result = solve(
        system,
        freqs_hz=freqs,
        load=load,
        method=method_from(str(method), solver=str(solver), tol=float(tol)),
        cluster=cluster,
        out=_optional_str(out),
        overwrite=bool(overwrite),
        progress=bool(progress),
    )
    return _result_dict(result, system.output_dofs, matlab_arrays=bool(matlab_arrays))


def _per_frequency(values, F) -> np.ndarray:
    """(F,) float64 values, NaN when the result does not have them."""
    return np.full(F, np.nan) if values is None else np.asarray(values, dtype=np.float64).reshape(F)


def _result_dict(result, output_dofs0, *, matlab_arrays):
    """The dict solve_triplets returns, from a SweepResult."""
    X = np.asarray(result.response).T  # (F, n_out) -> (n_out, F)
    F = X.shape[1]
    out = {
        "response_re": np.ascontiguousarray(X.real, dtype=np.float64),
        "response_im": np.ascontiguousarray(X.imag, dtype=np.float64),
        "freqs_hz": np.asarray(result.freqs_hz, dtype=np.float64),
        "rel_residual": _per_frequency(getattr(result, "rel_residual", None), F),
        "backward_error": _per_frequency(getattr(result, "backward_error", None), F),
        "output_dofs": np.asarray(output_dofs0, dtype=np.float64) + 1,
        "shape": (int(X.shape[0]), int(F)),
    }
    if matlab_arrays:
        for key, value in out.items():
            if key != "shape":
                out[key] = _matlab_array(value)
    return out


def solve_mat(input_path, output_path, **options):
    """Read a ``.mat`` input, run :func:`femfreq.solve` and write the ``.mat`` result.

    Parameters
    ----------
    input_path, output_path : str or Path
        See :func:`read_mat_input` and :func:`write_mat_result`.
    **options
        Passed to :func:`femfreq.solve` (``cluster``, ``method``, ``out``...).

    Returns
    -------
    femfreq.results.SweepResult
    """
    from ..sweep import solve

    out = Path(output_path)
    out = out if out.suffix.lower() == ".mat" else out.with_name(out.name + ".mat")
    if out.resolve() == Path(input_path).resolve():
        raise ValueError(f"the result {output_path} would write over the input {input_path}")
    inp = read_mat_input(input_path)
    options.setdefault("progress", False)
    if options.get("cluster", "local") is not None:
        _fix_executable()
    result = solve(inp["system"], freqs_hz=inp["freqs_hz"], load=inp["load"], **options)
    write_mat_result(output_path, result, output_dofs=inp["system"].output_dofs)
    return result
