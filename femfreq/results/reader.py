"""Reading a result file: :func:`read_results` and the attribute decoding."""

from __future__ import annotations

import json
import logging
import os
import re

import numpy as np

from ._format import FORMAT, FORMAT_VERSION
from .result import SweepResult

__all__ = ["read_results"]

logger = logging.getLogger(__name__)


def read_results(path) -> SweepResult:
    """Read a result file written by :class:`ResultWriter`.

    A file from an interrupted sweep reads fine: rows not done are NaN and
    ``done`` says which are there (``result.complete`` is False). Files of format
    versions 1 to 4 read the same way (see :mod:`femfreq.results` for what changed).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    SweepResult

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not HDF5 or not a femfreq result file (the message names the path).
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"result file {path!r} does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path!r} is not an HDF5 file, so not a femfreq result file")
    with _open_for_reading(path) as h5:
        return _result_from_h5(h5, path)


def _result_from_h5(h5, path) -> SweepResult:
    """Build a SweepResult from an open result file."""
    version = _format_version(h5)
    if version is None:
        raise ValueError(f"{path!r} is not a femfreq result file (no format={FORMAT!r} attribute in '/')")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path!r} has result format version {version}; this femfreq reads up to {FORMAT_VERSION}")
    done = h5["done"][()].astype(bool)
    t = h5["time/t"][()]
    time_response = h5["time/response"][()]
    if t.size == 0 or not np.isfinite(t[0]):
        t, time_response = None, None
    table = h5["chunks"][()]
    table = table[table["count"] > 0]
    chunks = {name: table[name] for name in ("start", "count", "t_start", "t_end")}
    chunks["worker"] = np.array([_attr_str(w) for w in table["worker"]], dtype=object)
    return SweepResult(
        freqs_hz=h5["freqs_hz"][()],
        response=h5["response"][()],
        done=done,
        rel_residual=h5["rel_residual"][()],
        backward_error=h5["backward_error"][()],
        method=h5["method"][()],
        load_spectrum=h5["load_spectrum"][()],
        outputs={name: h5[f"outputs/{name}"][()] for name in ("node", "direction", "dof", "xy")},
        t=t,
        time_response=time_response,
        attrs=_read_attrs(h5.attrs),
        chunks=chunks,
        model=_read_attrs(h5["model"].attrs),
        versions=_read_attrs(h5["versions"].attrs),
        path=str(path),
        base=_read_base(h5),
    )


def _read_base(h5) -> dict | None:
    """The ``/base`` group of a base-motion file (None for a point load or a file before version 4)."""
    if _attr_str(h5.attrs.get("analysis")) != "base_motion" or "base" not in h5:
        return None
    g = h5["base"]
    return {"direction": np.asarray(h5.attrs["base_direction"], dtype=np.float64),
            **{name: g[name][()] for name in ("acceleration", "influence", "interface_force")}}


def frequencies_to_resume(path, freqs_hz, *, rtol: float = 1e-9) -> np.ndarray:
    """The frequencies to resume ``path`` with: the file's own when ``freqs_hz`` is the same
    grid up to rounding, else ``freqs_hz`` (whose difference the resume then reports).

    An ``"auto:..."`` grid is recomputed from the model's modes on every run, and their
    last bits depend on the BLAS/MKL thread count (level 2: 204 frequencies, different
    bits with 1 and 2 threads), so a resume on another machine or thread setting would
    otherwise be refused as a different sweep.

    Parameters
    ----------
    path : str or path-like
        A result file (a missing or unreadable one gives ``freqs_hz`` back).
    freqs_hz : (F,) array
        This run's grid.
    rtol : float
        Largest relative difference still taken for rounding.
    """
    import h5py

    path = os.fspath(path)
    if not (os.path.isfile(path) and h5py.is_hdf5(path)):
        return freqs_hz
    try:
        with _open_for_reading(path) as h5:
            old = h5["freqs_hz"][()] if "freqs_hz" in h5 else None
    except OSError:
        return freqs_hz
    if old is None or old.shape != np.shape(freqs_hz) or not np.allclose(old, freqs_hz, rtol=rtol, atol=0):
        return freqs_hz
    if not np.array_equal(old, freqs_hz):
        logger.info("%s: resuming on the file's frequencies (this run's grid differs only by rounding, "
                    "at most %.1e relative)", path,
                    float(np.max(np.abs(old - freqs_hz) / np.maximum(np.abs(old), 1e-300))))
    return old


def _format_version(h5) -> int | None:
    """The file's ``format_version`` (0 when absent), or None if it is not a femfreq result file."""
    if _attr_str(h5.attrs.get("format")) != FORMAT:
        return None
    return int(h5.attrs.get("format_version", 0))


def _open_for_reading(path):
    """Open read-only; without the file lock when a running sweep holds it."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        # a sweep still writing holds an exclusive lock; the metadata does not change while
        # it runs (see femfreq.results.writer), so reading without the lock is safe
        if not re.search(r"\block", str(exc).lower()):  # a word: "sblock" in a truncation message is not one
            raise _unreadable(path, exc) from None
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    logger.info("%s is locked by a running sweep; reading it without the lock", path)
    return f


def _unreadable(path, exc) -> OSError:
    """The error for a result file HDF5 cannot open: say truncated/corrupt when it exists."""
    if not os.path.isfile(path):
        return exc
    return OSError(f"{path}: not a readable HDF5 result file: it is truncated or corrupt ({exc})")


def _attr_str(value):
    """An attribute value as str (bytes decoded as UTF-8; None stays None)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.ndim == 0:
        return _attr_str(value[()])
    return value if isinstance(value, str) else (None if value is None else str(value))


def _read_attrs(attrs) -> dict:
    """Attributes as a dict of Python values (JSON strings parsed back, arrays of strings as lists)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.ravel()]
        out[key] = value
    return out
