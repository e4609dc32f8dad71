"""What MATLAB passes, made numpy: memoryviews, array.array, scalars, 1-based indices.

MATLAB's ``py.`` interface hands numeric arrays over as ``memoryview`` objects (or
``array.array`` in old releases), scalars as ``float``/``int``, ``[]`` as an empty array
and ``py.None`` for a missing value. These helpers turn each into a checked numpy array,
and 1-based MATLAB indices into 0-based ones; every message names the argument.
"""

from __future__ import annotations

import numpy as np

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
