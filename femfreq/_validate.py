"""The argument checks every stage shares: one home, one wording of the messages.

Each check returns the normalised value or raises a ``TypeError``/``ValueError``
that quotes the argument's name, the value at fault and what was expected.
"""

from __future__ import annotations

import math
import operator

import numpy as np

#: the longest FFT a sweep accepts: 2**27 samples (a 1 GiB complex spectrum per output DOF;
#: longer ones are far beyond any load history and end in a MemoryError)
MAX_N_FFT = 2**27


def as_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (a float with an integral value is refused: ``16.5`` and ``16.0`` alike)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer (got {value!r})")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer (got {value!r})") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {v})")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum} (got {v})")
    return int(v)


def as_float(name: str, value, *, positive: bool = False, nonneg: bool = False) -> float:
    """A finite float; ``positive`` asks for > 0, ``nonneg`` for >= 0."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number (got {value!r})")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number (got {value!r})") from None
    bound = " and > 0" if positive else " and >= 0" if nonneg else ""
    if not math.isfinite(v) or (positive and not v > 0) or (nonneg and not v >= 0):
        shown = value if type(value) in (int, float, str) else v  # as written, but no np.float64(...)
        raise ValueError(f"{name} must be finite{bound} (got {shown!r})")
    return v


def positive_float(name: str, value) -> float:
    """A finite float > 0."""
    return as_float(name, value, positive=True)


def frequencies(freqs_hz, name: str = "freqs_hz") -> np.ndarray:
    """A 1-D float64 array of finite frequencies >= 0 Hz (possibly empty)."""
    f = np.asarray(freqs_hz)
    if f.dtype == bool or not (np.issubdtype(f.dtype, np.number) or f.dtype == object):
        raise TypeError(f"{name} must be numbers in Hz (got dtype {f.dtype})")
    try:
        f = np.asarray(f, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be real numbers in Hz") from None
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (got shape {f.shape})")
    bad = np.flatnonzero(~np.isfinite(f) | (f < 0))
    if bad.size:
        raise ValueError(f"{name} must be finite and >= 0 Hz (got {float(f[bad[0]])!r} at index {int(bad[0])})")
    return f


def load_spectrum(load, n: int, name: str = "load") -> np.ndarray:
    """``P(omega)`` at ``n`` frequencies: a scalar (broadcast) or ``n`` finite complex values."""
    P = np.asarray(load)
    if P.dtype == bool:
        raise TypeError(f"{name} must be numbers, not booleans")
    try:
        P = np.asarray(P, dtype=np.complex128).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be complex numbers") from None
    if P.size == 1:
        P = np.full(n, P[0])
    if P.shape != (n,):
        raise ValueError(f"{name} has {P.size} values but there are {n} frequencies")
    bad = np.flatnonzero(~np.isfinite(P))
    if bad.size:
        raise ValueError(f"{name} has a non-finite value at index {int(bad[0])}")
    return P


def index_array(name: str, value, n: int, *, allow_empty: bool = True, unique: bool = False) -> np.ndarray:
    """A 1-D int64 array of indices in ``[0, n)``.

    Booleans are refused (a mask is not a list of indices: ``[True, False]`` would
    silently become ``[1, 0]``), and so are floats and out-of-range values.
    """
    a = np.asarray(value)
    if a.dtype == bool:
        raise TypeError(f"{name} must be integer indices, not a boolean mask "
                        f"(use numpy.flatnonzero(mask) for the indices of a mask)")
    if a.size == 0:
        a = a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must be integer indices (got dtype {a.dtype})")
    a = a.astype(np.int64).ravel()
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = np.flatnonzero((a < 0) | (a >= n))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}] = {int(a[bad[0]])} is out of range [0, {n})")
    if unique and np.unique(a).size != a.size:
        raise ValueError(f"{name} has repeated indices")
    return a


def max_abs(values) -> float:
    """``max |values|`` (0 for none) in two passes, without an ``abs`` copy (at level 7 two such
    copies, 68 MB each, took 0.2 s of the job's start, mostly faulting their pages in)."""
    values = np.asarray(values)
    return float(max(values.max(), -values.min())) if values.size else 0.0


def one_of(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; pick one of {sorted(choices)}")
    return value


def _integer_array(name: str, value) -> np.ndarray:
    """A 1-D signed index array: as given if signed (no copy: a scipy matrix's int32 indices
    stay int32), else an int64 copy (unsigned values beyond int64 are refused, not wrapped)."""
    a = np.asarray(value)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (got dtype {a.dtype})")
    a = a.reshape(-1)
    if a.dtype.kind == "i":
        return a
    if a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has the value {int(a.max())}, beyond any matrix size")
    return a.astype(np.int64)


def sparse_parts(name: str, data, indices, indptr, shape, *, compressed: str = "column"):
    """Checked compressed sparse arrays ``(data, indices, indptr)`` of a ``shape`` matrix.

    Checks what scipy's C++ routines trust without looking (a bad pointer corrupts
    memory there): ``indptr`` has one entry per column (``compressed="column"``, CSC)
    or row (CSR) plus one, starts at 0, never decreases and ends at ``len(indices)``;
    every index is in range; ``data`` has one finite number per index. Run it before
    scipy builds a matrix from the arrays.

    Returns
    -------
    data : (nnz,) array
        As given (real or complex), flattened.
    indices, indptr : signed integer arrays
        As given when signed (not copied), else int64.

    Raises
    ------
    ValueError
        The message names the matrix and the first value at fault.
    """
    try:
        rows, cols = (operator.index(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: the shape must be two integers (got {shape!r})") from None
    if rows < 0 or cols < 0:
        raise ValueError(f"{name}: the shape must not be negative (got {rows} x {cols})")
    major, minor = (cols, rows) if compressed == "column" else (rows, cols)
    unit = "column" if compressed == "column" else "row"
    indptr = _integer_array(f"{name}: the {unit} pointers", indptr)
    indices = _integer_array(f"{name}: the indices", indices)
    data = np.asarray(data)
    if data.dtype == bool or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{name}: the values must be numbers (got dtype {data.dtype})")
    data = data.reshape(-1)
    if indptr.size != major + 1:
        raise ValueError(f"{name}: {indptr.size} {unit} pointers for {major} {unit}s (need {major + 1})")
    if indptr[0] != 0:
        raise ValueError(f"{name}: the {unit} pointers must start at 0 (got {int(indptr[0])})")
    drop = np.flatnonzero(np.diff(indptr) < 0)
    if drop.size:
        k = int(drop[0])
        raise ValueError(f"{name}: the {unit} pointers decrease at {unit} {k} "
                         f"({int(indptr[k])} then {int(indptr[k + 1])}); they must never decrease")
    if indptr[-1] != indices.size:
        raise ValueError(f"{name}: the {unit} pointers end at {int(indptr[-1])} "
                         f"but there are {indices.size} indices")
    if data.size != indices.size:
        raise ValueError(f"{name}: {data.size} values for {indices.size} indices")
    bad = np.flatnonzero((indices < 0) | (indices >= minor))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}: index {int(indices[k])} (entry {k}) is out of range [0, {minor})")
    bad = np.flatnonzero(~np.isfinite(data))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}: non-finite value {data[k]} (entry {k})")
    return data, indices, indptr


def sparse_matrix(name: str, A):
    """A CSC matrix from any scipy sparse matrix or array, its structure checked first.

    CSC, CSR and COO arrays are checked as stored (:func:`sparse_parts`) before scipy
    converts them; other formats (BSR, DIA, LIL, DOK) go through COO, which is checked
    the same way, before scipy's compiled routines see the arrays.
    """
    import scipy.sparse as sp

    fmt = A.format
    if fmt not in ("csc", "csr", "coo"):
        A = A.tocoo()
        fmt = "coo"
    shape = A.shape
    if fmt == "coo":
        rows, cols = A.coords if hasattr(A, "coords") else (A.row, A.col)
        rows = _integer_array(f"{name}: the row indices", rows)
        cols = _integer_array(f"{name}: the column indices", cols)
        data = np.asarray(A.data)
        if not (rows.size == cols.size == data.size):
            raise ValueError(f"{name}: {rows.size} row indices, {cols.size} column indices, {data.size} values")
        for what, idx, size in (("row", rows, shape[0]), ("column", cols, shape[1])):
            bad = np.flatnonzero((idx < 0) | (idx >= size))
            if bad.size:
                k = int(bad[0])
                raise ValueError(f"{name}: {what} index {int(idx[k])} (entry {k}) is out of range [0, {size})")
        # one entry per column: the CSC check of the values
        sparse_parts(name, data, np.zeros(data.size, np.int64), np.arange(data.size + 1), (1, data.size))
        return sp.csc_matrix((data.reshape(-1), (rows, cols)), shape=shape)
    data, indices = A.data, A.indices
    end = A.indptr[-1] if np.size(A.indptr) else 0
    if 0 <= end <= np.size(indices):  # scipy may keep unused storage after the last pointer
        data, indices = np.asarray(data).reshape(-1)[:end], np.asarray(indices).reshape(-1)[:end]
    data, indices, indptr = sparse_parts(name, data, indices, A.indptr, shape,
                                         compressed="column" if fmt == "csc" else "row")
    cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
    return sp.csc_matrix(cls((data, indices, indptr), shape=shape))


def float_csc(name: str, A, n: int | None = None, *, copy: bool = True):
    """A checked real float64 CSC matrix of ``A`` (sparse or dense), square, ``(n, n)`` when
    ``n`` is given, every entry finite; a copy unless ``copy=False`` and ``A`` is one already.

    A complex ``A`` with a zero imaginary part is taken as real; a non-zero one is refused
    (hysteretic damping goes through ``g``). The errors name the matrix and the entry at fault.
    """
    import scipy.sparse as sp

    if sp.issparse(A):
        A = sparse_matrix(name, A)  # checks the structure before scipy's compiled code reads it
    else:
        A = np.asarray(A)
        if A.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (has shape {A.shape})")
        A = sp.csc_matrix(A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square (has shape {A.shape})")
    if n is not None and A.shape != (n, n):
        raise ValueError(f"{name} has shape {A.shape}; expected ({n}, {n}) like K")
    if np.iscomplexobj(A.data):
        if np.any(A.data.imag != 0):
            raise ValueError(
                f"{name} must be real (it has complex entries); give hysteretic "
                "damping through g, K(1 + i g), not a complex K"
            )
        A = sp.csc_matrix(A.real)
    A = A.astype(np.float64, copy=copy)
    bad = ~np.isfinite(A.data)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        col = int(np.searchsorted(A.indptr, k, side="right") - 1)
        raise ValueError(
            f"{name} has a non-finite entry {A.data[k]} at row {A.indices[k]}, column {col}"
        )
    return A
