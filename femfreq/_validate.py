"""The argument checks every stage shares: one home, one wording of the messages.

Each check returns the normalised value or raises a ``TypeError``/``ValueError``
that quotes the argument's name, the value at fault and what was expected.
"""

from __future__ import annotations

import math
import operator

import numpy as np


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


def one_of(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; pick one of {sorted(choices)}")
    return value
