"""The .mat file route: read a sweep's input (v7, MATLAB v7.3, Octave HDF5), write its result."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .. import _validate as v
from ..system import System
from ._convert import _complex_parts, _is_missing, _one_based, _vector

__all__ = ["read_mat_input", "write_mat_result"]

#: variable names of the .mat input file and the aliases accepted for them
_INPUT_ALIASES = {
    "K": ("K",),
    "C": ("C",),
    "M": ("M",),
    "b": ("b",),
    "freqs_hz": ("freqs", "freqs_hz", "Hertz"),
    "P": ("P", "load"),
    "output_dofs": ("output_dofs", "outputs", "out_dofs"),
    "g": ("g",),
}



def _h5_kind(f) -> str:
    """'matlab' for MATLAB v7.3 files, 'octave' for Octave's -hdf5 files."""
    for obj in f.values():
        if "MATLAB_class" in obj.attrs:
            return "matlab"
        if "OCTAVE_NEW_FORMAT" in obj.attrs or ("type" in getattr(obj, "keys", lambda: [])()):
            return "octave"
    return "matlab"


def _h5_complex(data):
    """Merge a compound (real, imag) array into complex."""
    names = data.dtype.names
    if names and len(names) == 2:
        return data[names[0]] + 1j * data[names[1]]
    return data


def _count(what, value) -> int:
    """A row or column count stored in a file (a non-negative integer scalar)."""
    a = np.asarray(value).reshape(-1)
    if a.size != 1 or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{what} must be one integer (got {a.tolist()!r})")
    x = float(a[0])
    if not np.isfinite(x) or x != int(x) or x < 0 or x > np.iinfo(np.int64).max:
        raise ValueError(f"{what} must be a non-negative integer (got {a[0]!r})")
    return int(a[0])


def _csc(name, data, indices, indptr, shape):
    """A CSC matrix from a file's arrays, built only after their structure is checked."""
    if np.issubdtype(np.asarray(indptr).dtype, np.floating) or np.issubdtype(np.asarray(indices).dtype, np.floating):
        raise ValueError(f"{name}: the sparse indices must be integers (got {np.asarray(indices).dtype} "
                         f"and {np.asarray(indptr).dtype})")
    data, indices, indptr = v.sparse_parts(name, data, indices, indptr, shape)
    return sp.csc_matrix((data, indices, indptr), shape=shape)


def _read_h5_matlab(obj, path, name):
    """One MATLAB v7.3 variable (dense, sparse, complex, empty) as numpy/scipy."""
    import h5py

    cls = obj.attrs.get("MATLAB_class", b"double")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" not in obj.attrs:
            raise ValueError(f"{path}: variable {name!r} is a MATLAB {cls} (struct/cell?), not a numeric array")
        n_rows = _count(f"{name}: MATLAB_sparse (the row count)", obj.attrs["MATLAB_sparse"])
        jc = np.asarray(obj["jc"][()]).reshape(-1)
        n_cols = max(jc.size - 1, 0)
        if "data" in obj and "ir" in obj:
            data = _h5_complex(obj["data"][()]).reshape(-1)
            ir = np.asarray(obj["ir"][()]).reshape(-1)
        else:  # an all-zero sparse matrix has no data/ir
            data, ir = np.zeros(0), np.zeros(0, dtype=np.int64)
        return _csc(name, data, ir, jc, (n_rows, n_cols))
    if int(obj.attrs.get("MATLAB_empty", 0)):
        dims = np.asarray(obj[()], dtype=np.int64).reshape(-1)
        return np.zeros(tuple(dims[::-1]) if dims.size else (0, 0)).T
    data = _h5_complex(obj[()])
    # MATLAB stores column-major: the HDF5 dataset is the transpose of the MATLAB array
    return np.asarray(data).T


def _read_h5_octave(obj, path, name):
    """One Octave -hdf5 variable (matrix, sparse matrix, complex, scalar) as numpy/scipy."""
    import h5py

    typ = obj["type"][()]
    typ = typ.decode() if isinstance(typ, bytes) else str(typ)
    value = obj["value"]
    if "sparse" in typ:
        n_rows = _count(f"{name}: nr (the row count)", value["nr"][()])
        n_cols = _count(f"{name}: nc (the column count)", value["nc"][()])
        ridx = np.asarray(value["ridx"][()]).reshape(-1)
        cidx = np.asarray(value["cidx"][()]).reshape(-1)
        data = _h5_complex(value["data"][()]).reshape(-1)
        return _csc(name, data, ridx, cidx, (n_rows, n_cols))
    if isinstance(value, h5py.Group):
        raise ValueError(f"{path}: variable {name!r} has Octave type {typ!r}; expected a numeric array")
    data = _h5_complex(value[()])
    return np.asarray(data).T


def _read_h5_variable(reader, f, path, name):
    """One variable of an HDF5 .mat file; a malformed one is a ValueError naming it."""
    try:
        return reader(f[name], path, name)
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    except (KeyError, TypeError, OSError, IndexError, AttributeError) as exc:
        raise ValueError(f"{path}: variable {name!r} is malformed ({type(exc).__name__}: {exc})") from None


def _read_mat_variables(path, wanted):
    """The variables named in ``wanted`` of a .mat file (v5/v7 via scipy.io; v7.3 and
    Octave HDF5 via h5py) and the file's format; other variables are not read."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .mat file")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            kind = _h5_kind(f)
            reader = _read_h5_matlab if kind == "matlab" else _read_h5_octave
            names = [k for k in f.keys() if k in wanted]
            return {k: _read_h5_variable(reader, f, path, k) for k in names}, (
                "v7.3" if kind == "matlab" else "octave-hdf5")
    import scipy.io

    try:
        names = {v[0] for v in scipy.io.whosmat(path)}
        raw = scipy.io.loadmat(path, squeeze_me=False, variable_names=[k for k in wanted if k in names])
    except (ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from None
    return {k: v for k, v in raw.items() if not k.startswith("__")}, "v7"


def _pick(variables, key, path, *, required=True):
    """The variable stored under key or one of its aliases (vectors and scalars made dense)."""
    for alias in _INPUT_ALIASES[key]:
        if alias in variables:
            value = variables[alias]
            if sp.issparse(value) and key not in ("K", "C", "M"):
                value = value.toarray()
            return value
    if required:
        raise ValueError(
            f"{path}: variable {key!r} is missing (looked for {', '.join(_INPUT_ALIASES[key])}; "
            f"file has {', '.join(sorted(variables)) or 'nothing'})"
        )
    return None


def _mat_matrix(name, A, path, n=None):
    """A real CSC matrix from a .mat variable (sparse or dense), with a clear error."""
    if A is None:
        return None
    try:
        A = v.sparse_matrix(name, A) if sp.issparse(A) else np.atleast_2d(np.asarray(A))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if A.ndim != 2:
        raise ValueError(f"{path}: {name} must be a matrix (has {A.ndim} dimensions)")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{path}: {name} must be square (has size {A.shape[0]} x {A.shape[1]})")
    if n is not None and A.shape[0] != n:
        raise ValueError(f"{path}: {name} has size {A.shape[0]} x {A.shape[1]} but K has size {n} x {n}")
    data = A.data if sp.issparse(A) else A
    if np.iscomplexobj(data) and np.any(np.asarray(data).imag != 0):
        raise ValueError(
            f"{path}: {name} must be real (it has complex entries); give structural damping as g"
        )
    return sp.csc_matrix(A.real if np.iscomplexobj(data) else A, dtype=np.float64)


def read_mat_input(path) -> dict:
    """Read the input of a sweep from a ``.mat`` file written by MATLAB or Octave.

    The file holds ``K``, ``M`` (sparse or dense, real), optionally ``C``, ``b``,
    ``freqs`` (Hz; ``freqs_hz`` also accepted), ``P`` (load spectrum at ``freqs``,
    complex, or a scalar; default 1), ``output_dofs`` (1-based; default all) and ``g``.
    v4/v6/v7 files are read with ``scipy.io.loadmat``; MATLAB v7.3 files (HDF5: sparse
    matrices as groups with ``data``/``ir``/``jc``, dense arrays transposed, complex as
    compound real/imag) and Octave's ``save -hdf5`` files with ``h5py``.

    Parameters
    ----------
    path : str or Path
        The ``.mat`` file (see ``matlab/femfreq_write_input.m``).

    Returns
    -------
    dict
        ``system`` (:class:`~femfreq.system.System`, 0-based ``output_dofs``),
        ``freqs_hz`` (F,) float64, ``load`` (F,) complex128, ``output_dofs`` (k,) int64
        1-based as in the file, ``format`` ("v7", "v7.3" or "octave-hdf5") and ``path``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A missing or malformed variable (the message names the file and the variable).
    """
    wanted = {alias for aliases in _INPUT_ALIASES.values() for alias in aliases}
    variables, fmt = _read_mat_variables(path, wanted)
    K = _mat_matrix("K", _pick(variables, "K", path), path)
    n = K.shape[0]
    C_raw = _pick(variables, "C", path, required=False)
    C = None if C_raw is None or (not sp.issparse(C_raw) and np.asarray(C_raw).size == 0) else _mat_matrix("C", C_raw, path, n)
    M = _mat_matrix("M", _pick(variables, "M", path), path, n)
    try:
        b = _complex_parts("b", _pick(variables, "b", path), None)
        if b.size != n:
            raise ValueError(f"b has {b.size} values but K is {n} x {n}")
        b = b if np.any(b.imag != 0) else b.real
        freqs = _vector("freqs", _pick(variables, "freqs_hz", path))
        if freqs.size == 0:
            raise ValueError("freqs is empty: give at least one frequency")
        P_raw = _pick(variables, "P", path, required=False)
        load = np.ones(freqs.size, complex) if _is_missing(P_raw) else _complex_parts("P", P_raw, None, length=freqs.size)
        out_raw = _pick(variables, "output_dofs", path, required=False)
        if out_raw is None:
            out0 = np.arange(n, dtype=np.int64)
        elif _is_missing(out_raw):
            raise ValueError("output_dofs is empty: give at least one 1-based output DOF (or leave it out for all)")
        else:
            out0 = _one_based("output_dofs", out_raw, n)
        g_raw = _pick(variables, "g", path, required=False)
        g = 0.0 if _is_missing(g_raw) else float(_vector("g", g_raw, length=1)[0])
        system = System(K=K, C=C, M=M, b=b, g=g, output_dofs=out0, name=Path(path).stem)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return {
        "system": system,
        "freqs_hz": freqs,
        "load": load,
        "output_dofs": out0 + 1,
        "format": fmt,
        "path": str(path),
    }


def _column(a) -> np.ndarray:
    """A MATLAB column vector (k x 1)."""
    return np.asarray(a).reshape(-1, 1)


def _get(result, name, default=None):
    """A field of a SweepResult-like object or mapping."""
    if isinstance(result, Mapping):
        return result.get(name, default)
    return getattr(result, name, default)


def write_mat_result(path, result, *, output_dofs=None) -> Path:
    """Write a sweep result as a MATLAB v7 ``.mat`` file (``scipy.io.savemat``).

    Variables (MATLAB shapes): ``response`` (n_out x F complex: one row per output DOF),
    ``freqs_hz`` (F x 1), ``load_spectrum`` (F x 1 complex), ``rel_residual`` and
    ``backward_error`` (F x 1), ``output_dofs`` (n_out x 1, 1-based), and, when
    the sweep ran on an FFT grid, ``t`` (n_fft x 1) and ``time_response`` (n_out x n_fft):
    the result's own, or ``irfft(response, n_fft)`` when the frequencies are exactly the
    rfft bins ``k / (n_fft dt)``, ``k = 0 .. n_fft / 2`` of an even ``n_fft = 2 (F - 1)``.
    The file is written beside ``path`` and renamed into place.
    Read it in MATLAB with ``load`` or ``matlab/femfreq_read_result.m``.

    Parameters
    ----------
    path : str or Path
        Output file (``.mat`` is appended if missing, as MATLAB's ``load`` expects).
    result : femfreq.results.SweepResult or mapping
        Needs ``freqs_hz`` and ``response`` (F, n_out); other fields are optional.
    output_dofs : (n_out,) int array, optional
        0-based output DOF, written 1-based (default: ``result.outputs["dof"]``, which is the
        reduced DOF of a matrices sweep and the full DOF of a model sweep).

    Returns
    -------
    Path
        The file written.
    """
    import scipy.io

    path = Path(path)
    if path.suffix.lower() != ".mat":
        path = path.with_name(path.name + ".mat")
    freqs = np.asarray(_get(result, "freqs_hz"), dtype=np.float64).reshape(-1)
    X = np.asarray(_get(result, "response"))
    if X.ndim != 2 or X.shape[0] != freqs.size:
        raise ValueError(f"result.response must have shape (F, n_out) = ({freqs.size}, n_out) (has shape {X.shape})")
    data = {"response": X.T.astype(np.complex128), "freqs_hz": _column(freqs)}
    if output_dofs is None:
        outputs = _get(result, "outputs")
        dof = _get(outputs, "dof") if outputs is not None else None
        output_dofs = dof if dof is not None else _get(result, "output_dofs")
    if output_dofs is not None:
        data["output_dofs"] = _column(np.asarray(output_dofs, dtype=np.float64) + 1)
    for name in ("load_spectrum", "rel_residual", "backward_error"):
        value = _get(result, name)
        if value is not None:
            data[name] = _column(value)
    t = _get(result, "t")
    x_t = _get(result, "time_response")
    if x_t is None and X.size:
        grid = _rfft_grid(freqs)
        if grid is not None:  # the input's frequencies are an rfft grid: its time response too
            from ..spectra import to_time

            n_fft, dt = grid
            x_t, t = to_time(np.nan_to_num(X), n_fft, axis=0), np.arange(n_fft) * dt
    if x_t is not None:
        x_t = np.asarray(x_t)
        if x_t.ndim == 2 and x_t.size:
            data["time_response"] = x_t.T  # (n_fft, n_out) -> n_out x n_fft
            if t is not None:
                data["t"] = _column(t)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed into place: an existing file is replaced only by a complete one
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        scipy.io.savemat(tmp, data, format="5", do_compression=True, oned_as="column")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _rfft_grid(freqs):
    """``(n_fft, dt)`` when ``freqs`` are exactly the rfft bins of an even ``n_fft``
    (``k / (n_fft dt)``, k = 0 .. n_fft / 2, Nyquist included), else None."""
    from ..spectra import rfft_freqs

    if freqs.size < 2 or freqs[0] != 0 or not freqs[1] > 0:
        return None
    n_fft = 2 * (freqs.size - 1)
    dt = 1.0 / (n_fft * freqs[1])
    exact = rfft_freqs(n_fft, dt)
    if not np.allclose(freqs, exact, rtol=1e-12, atol=1e-12 * freqs[-1]):
        return None
    return n_fft, dt
