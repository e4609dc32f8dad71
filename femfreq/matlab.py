"""The one bridge MATLAB calls: triplets in, plain arrays out, and the .mat file route.

MATLAB's ``py.`` interface cannot pass sparse matrices, hands numeric arrays over
as ``memoryview`` objects (or ``array.array`` in old releases), scalars as
``float``/``int`` and cannot always pass complex arrays. MATLAB code therefore
sends each sparse matrix as the ``find()`` triplets ``(i, j, v)`` with 1-based
indices, complex vectors as real and imaginary parts, and calls exactly one
function, :func:`solve_triplets`. Every dask object stays on this side: the
client, the cluster and the futures are created, used and closed inside that
call (MATLAB clients holding dask objects were seen to disconnect).

Users without the ``py.`` interface, or with matrices above the 2 GB limit of
out-of-process Python, use the file route: ``matlab/femfreq_write_input.m``
saves ``K, C, M, b, freqs, P, output_dofs`` to a ``.mat`` file (v7, MATLAB
v7.3/HDF5 or Octave's ``-hdf5``), ``femfreq sweep --matrices in.mat -o out.mat``
reads it with :func:`read_mat_input`, solves and writes
:func:`write_mat_result` (both in :func:`solve_mat`), and
``matlab/femfreq_read_result.m`` loads the answer.

Index conventions: everything MATLAB sends is 1-based and converted to 0-based
here, never in MATLAB; everything sent back (``output_dofs``) is 1-based again.
"""

from __future__ import annotations

import array
import logging
import multiprocessing
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .system import System

__all__ = [
    "solve_triplets",
    "system_from_triplets",
    "read_mat_input",
    "write_mat_result",
    "solve_mat",
]

log = logging.getLogger(__name__)

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


# -- conversion of what MATLAB passes ----------------------------------------------------------
def _is_missing(x) -> bool:
    """True for None, an empty MATLAB array ([]) or an empty sequence."""
    if x is None:
        return True
    try:
        return np.asarray(x).size == 0
    except (TypeError, ValueError):
        return False


def _as_array(name, x) -> np.ndarray:
    """A numpy array from a memoryview, array.array, list, tuple, scalar or array."""
    if x is None:
        raise TypeError(f"{name} is missing (got None)")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be numeric (got the string {x!r})")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like (got {type(x).__name__}): {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric (got dtype {arr.dtype} from {type(x).__name__})")
    return arr


def _vector(name, x, *, real=True, length=None) -> np.ndarray:
    """A finite 1-D float64 (or complex128 if ``real=False``) vector; row/column vectors are flattened."""
    arr = _as_array(name, x)
    if arr.ndim > 1 and sum(d > 1 for d in arr.shape) > 1:
        raise ValueError(f"{name} must be a vector (has shape {arr.shape})")
    arr = arr.reshape(-1)
    if np.iscomplexobj(arr):
        if real and np.any(arr.imag != 0):
            raise ValueError(f"{name} must be real (it has complex values, e.g. {arr[np.flatnonzero(arr.imag)[0]]})")
        arr = arr.real if real else arr
    arr = arr.astype(np.float64 if real else np.complex128)
    bad = ~np.isfinite(arr)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} has a non-finite value {arr[k]} at position {k + 1} (1-based)")
    if length is not None and arr.size != length:
        raise ValueError(f"{name} has {arr.size} values; expected {length}")
    return arr


def _size(name, n) -> tuple[int, int]:
    """Matrix size from a scalar n or a MATLAB size vector [rows, cols]."""
    arr = _as_array(f"{name} size", n).reshape(-1)
    if arr.size == 1:
        arr = np.array([arr[0], arr[0]])
    if arr.size != 2:
        raise ValueError(f"{name} size must be a scalar n or [rows, cols] (got {arr.tolist()})")
    if not np.all(np.isfinite(arr)) or np.any(np.mod(arr, 1) != 0) or np.any(arr < 1):
        raise ValueError(f"{name} size must be positive integers (got {arr.tolist()})")
    rows, cols = (int(v) for v in arr)
    if rows != cols:
        raise ValueError(f"{name} must be square (has size {rows} x {cols})")
    return rows, cols


def _one_based(name, x, n) -> np.ndarray:
    """0-based int64 indices from 1-based MATLAB indices (doubles or integers), checked against n."""
    arr = _as_array(name, x).reshape(-1)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real integer indices (got complex values)")
    if not np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr) | (np.mod(arr, 1) != 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} must hold integer indices (got {arr[k]} at position {k + 1})")
    arr = arr.astype(np.int64)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 1:
            hint = " (this looks 0-based: MATLAB indices, as find() returns them, start at 1)" if lo == 0 else ""
            raise ValueError(f"{name} has index {lo}; indices must be 1-based, in 1..{n}{hint}")
        if hi > n:
            raise ValueError(
                f"{name} has index {hi} > n = {n}; indices must be 1-based, in 1..{n} "
                "(0-based indices shifted by one, or a matrix of another size?)"
            )
    return arr - 1


def _triplets(name, i, j, v, n, *, required=True):
    """A CSC matrix from 1-based triplets; None when the triplets are absent and not required."""
    if all(_is_missing(x) for x in (i, j, v)):
        if required:
            raise ValueError(f"{name} is empty: give its find() triplets (i, j, v)")
        return None
    values = _as_array(f"{name} values", v).reshape(-1)
    if np.iscomplexobj(values) and np.any(values.imag != 0):
        raise ValueError(
            f"{name} must be real (it has complex values, e.g. {values[np.flatnonzero(values.imag)[0]]}); "
            "give structural damping as g (K(1 + i g)), not as a complex stiffness"
        )
    rows = _one_based(f"{name} row indices", i, n)
    cols = _one_based(f"{name} column indices", j, n)
    if not (rows.size == cols.size == values.size):
        raise ValueError(
            f"{name} triplets have different lengths: i {rows.size}, j {cols.size}, v {values.size}"
        )
    values = values.real.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has a non-finite entry {values[k]} at row {rows[k] + 1}, column {cols[k] + 1} (1-based)"
        )
    # coo -> csc sums duplicates, as MATLAB's sparse(i, j, v) does
    return sp.csc_matrix((values, (rows, cols)), shape=(n, n))


def _complex_parts(name, re, im, length=None):
    """A complex vector from separate real and imaginary parts (imaginary part optional)."""
    arr = _as_array(name, re)
    if np.iscomplexobj(arr):  # a complex array passed directly
        if not _is_missing(im):
            raise ValueError(f"{name}: give either a complex array or real and imaginary parts, not both")
        out = _vector(name, arr, real=False)
    else:
        out = _vector(name if _is_missing(im) else f"{name} (real part)", arr).astype(np.complex128)
        if not _is_missing(im):
            im_v = _vector(f"{name} (imaginary part)", im)
            if im_v.size != out.size:
                raise ValueError(
                    f"{name}: real part has {out.size} values but imaginary part has {im_v.size}"
                )
            out = out + 1j * im_v
    if length is not None and out.size == 1 and length > 1:
        out = np.full(length, out[0])
    if length is not None and out.size != length:
        raise ValueError(f"{name} has {out.size} values; expected {length} (one per frequency) or 1")
    return out


def system_from_triplets(
    Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, n, b, output_dofs, *, b_im=None, g=0.0, C_size=None, M_size=None,
    name="matlab",
) -> System:
    """A :class:`~femfreq.system.System` from MATLAB ``find()`` triplets.

    Parameters
    ----------
    Ki, Kj, Kv : (nnz,) array-likes
        1-based row and column indices and real values of ``K`` (as ``[i, j, v] = find(K)``).
        Memoryviews, ``array.array``, lists, tuples or numpy arrays; indices may be doubles.
    Ci, Cj, Cv : array-likes or None
        The same for ``C``; empty or None for no viscous damping.
    Mi, Mj, Mv : array-likes
        The same for ``M``.
    n : int or (2,) array-like
        Size of ``K``: a scalar or MATLAB's ``size(K)``.
    b : (n,) array-like
        Load vector (real part if ``b_im`` is given).
    output_dofs : (k,) array-like
        1-based output DOF.
    b_im : (n,) array-like, optional
        Imaginary part of ``b``.
    g : float, optional
        Structural damping factor, ``K (1 + i g)``.
    C_size, M_size : int or (2,) array-like, optional
        ``size(C)`` and ``size(M)``, checked against ``size(K)``.
    name : str, optional
        Label of the system.

    Returns
    -------
    System
        With 0-based ``output_dofs``.

    Raises
    ------
    ValueError
        Non-square or mismatched sizes, indices of 0 ("looks 0-based") or above n, triplets of
        different lengths, complex K, C or M, NaN/inf, empty output list.
    TypeError
        Non-numeric arguments.
    """
    n_rows, _ = _size("K", n)
    for other, size in (("C", C_size), ("M", M_size)):
        if not _is_missing(size):
            s = _size(other, size)
            if s != (n_rows, n_rows):
                raise ValueError(f"{other} has size {s[0]} x {s[1]} but K has size {n_rows} x {n_rows}")
    K = _triplets("K", Ki, Kj, Kv, n_rows)
    C = _triplets("C", Ci, Cj, Cv, n_rows, required=False)
    M = _triplets("M", Mi, Mj, Mv, n_rows)
    b_vec = _complex_parts("b", b, b_im)
    if b_vec.size != n_rows:
        raise ValueError(f"b has {b_vec.size} values but K is {n_rows} x {n_rows}")
    if not np.any(b_vec.imag != 0):
        b_vec = b_vec.real
    if _is_missing(output_dofs):
        raise ValueError("output_dofs is empty: give at least one 1-based output DOF")
    out = _one_based("output_dofs", output_dofs, n_rows)
    g = float(_vector("g", g, length=1)[0])
    return System(K=K, C=C, M=M, b=b_vec, g=g, output_dofs=out, name=name)


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
    from .options import cluster_from, method_from
    from .sweep import solve

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


# -- the .mat file route ---------------------------------------------------------------------
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


def _read_h5_matlab(obj, path, name):
    """One MATLAB v7.3 variable (dense, sparse, complex, empty) as numpy/scipy."""
    import h5py

    cls = obj.attrs.get("MATLAB_class", b"double")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" not in obj.attrs:
            raise ValueError(f"{path}: variable {name!r} is a MATLAB {cls} (struct/cell?), not a numeric array")
        n_rows = int(obj.attrs["MATLAB_sparse"])
        jc = np.asarray(obj["jc"][()], dtype=np.int64).reshape(-1)
        n_cols = jc.size - 1
        if "data" in obj and "ir" in obj:
            data = _h5_complex(obj["data"][()]).reshape(-1)
            ir = np.asarray(obj["ir"][()], dtype=np.int64).reshape(-1)
        else:  # an all-zero sparse matrix has no data/ir
            data, ir = np.zeros(0), np.zeros(0, dtype=np.int64)
        return sp.csc_matrix((data, ir, jc), shape=(n_rows, n_cols))
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
        n_rows = int(value["nr"][()])
        n_cols = int(value["nc"][()])
        ridx = np.asarray(value["ridx"][()], dtype=np.int64).reshape(-1)
        cidx = np.asarray(value["cidx"][()], dtype=np.int64).reshape(-1)
        data = _h5_complex(value["data"][()]).reshape(-1)
        return sp.csc_matrix((data, ridx, cidx), shape=(n_rows, n_cols))
    if isinstance(value, h5py.Group):
        raise ValueError(f"{path}: variable {name!r} has Octave type {typ!r}; expected a numeric array")
    data = _h5_complex(value[()])
    return np.asarray(data).T


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
            return {k: reader(f[k], path, k) for k in names}, ("v7.3" if kind == "matlab" else "octave-hdf5")
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
    A = sp.csc_matrix(A) if sp.issparse(A) else np.atleast_2d(np.asarray(A))
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
    the sweep ran on an FFT grid, ``t`` (n_fft x 1) and ``time_response`` (n_out x n_fft).
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
    if x_t is not None:
        x_t = np.asarray(x_t)
        if x_t.ndim == 2 and x_t.size:
            data["time_response"] = x_t.T  # (n_fft, n_out) -> n_out x n_fft
            if t is not None:
                data["t"] = _column(t)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, data, format="5", do_compression=True, oned_as="column")
    return path


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
    from .sweep import solve

    inp = read_mat_input(input_path)
    options.setdefault("progress", False)
    if options.get("cluster", "local") is not None:
        _fix_executable()
    result = solve(inp["system"], freqs_hz=inp["freqs_hz"], load=inp["load"], **options)
    write_mat_result(output_path, result, output_dofs=inp["system"].output_dofs)
    return result
