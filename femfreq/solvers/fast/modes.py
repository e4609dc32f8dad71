"""Mode counts (Sturm) and the mode weights the planner cuts sub-bands with."""

from __future__ import annotations

import numpy as np

from ...system import System
from .. import mkl_available
from .factors import shifted_factors

__all__ = ["count_modes", "mode_weights", "sturm_frequencies"]

#: exponent p of the mode count N(f) ~ f^p when no Sturm count is made (a 2-D body has
#: p near 2; docs/fast_sweep.md gives the satellite's counts)
_DEFAULT_MODE_EXPONENT = 1.8


def count_modes(system, freqs_hz, *, factor="auto"):
    """Number of undamped modes below each frequency (Sturm count).

    The inertia of ``K - (2 pi f)^2 M`` (number of negative pivots of its symmetric
    indefinite LDL^T factorization, MKL PARDISO mtype -2) is the number of
    eigenvalues of the pencil ``(K, M)`` below ``(2 pi f)^2``. One real
    factorization per frequency.

    Parameters
    ----------
    system : System
        ``K``, ``M`` (n, n) are used.
    freqs_hz : (k,) array_like
        Frequencies in Hz (> 0).
    factor : {"auto", "pardiso"}
        Backend; the inertia needs PARDISO.

    Returns
    -------
    (k,) int64 array
        Number of modes below each frequency (a mode exactly at ``f`` may go either way).

    Raises
    ------
    TypeError
        If ``system`` is not a :class:`~femfreq.system.System`.
    ValueError
        For non-positive or non-finite frequencies, or if PARDISO (MKL) is not available.
    """
    if not isinstance(system, System):
        raise TypeError(f"system must be a femfreq System (got {type(system).__name__})")
    f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    if f.ndim != 1 or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(f"freqs_hz must be positive finite frequencies in Hz (got {freqs_hz!r})")
    if factor not in ("auto", "pardiso"):
        raise ValueError(f"count_modes needs factor 'auto' or 'pardiso' (got {factor!r})")
    if not mkl_available():
        raise ValueError("count_modes needs the MKL runtime (libmkl_rt) for the inertia of K - s M")
    out = np.empty(f.size, dtype=np.int64)
    # the process's kept analysis (what solve_band uses): the sub-bands solved next
    # in this process (a dask worker) skip their analysis
    with shifted_factors(system, "pardiso") as factors:
        for i, fi in enumerate(f):
            out[i] = factors.factor((2 * np.pi * fi) ** 2).n_negative
    return out


def sturm_frequencies(freqs_hz):
    """The two frequencies (Hz) at which :func:`mode_weights` counts modes: the top of the
    sweep and half of it; an empty tuple when it makes no count (fewer than two
    frequencies, or only 0 Hz).

    A caller with several processes (a dask cluster) can run :func:`count_modes` at each
    on a different worker at once and pass the two counts as ``sturm_counts``.
    """
    f = np.abs(np.atleast_1d(np.asarray(freqs_hz, dtype=float)))
    if f.ndim != 1 or f.size < 2 or not np.all(np.isfinite(f)) or f.max() == 0:
        return ()
    return _sturm_points(float(f.max()))


def _sturm_points(top):
    """Where the mode count is made: the top frequency and half of it (``p = log2`` of the ratio)."""
    return (top, top / 2)


def _mode_exponent(system, top, counts, factor, sturm_counts=None):
    """Exponent p of N(f) ~ f^p from Sturm counts at top and top / 2 (default 1.8)."""
    p = _DEFAULT_MODE_EXPONENT
    if sturm_counts is None and counts and top > 0 and mkl_available():
        sturm_counts = count_modes(system, list(_sturm_points(top)), factor=factor)
    if sturm_counts is not None:
        n_top, n_half = (int(c) for c in sturm_counts)
        if n_top > n_half > 0:
            p = float(np.clip(np.log2(n_top / n_half), 0.5, 4.0))
    return p


def mode_weights(system, freqs_hz, *, counts=True, factor="auto", sturm_counts=None):
    """Relative fast-sweep cost of each frequency: the modes per grid step, ``dN/df * df``.

    A light-damping fast sweep costs roughly in proportion to the modes in a band (its
    basis must contain them), and the mode density grows with frequency. The mode
    count is fitted by a power law ``N(f) ~ f^p`` with ``p`` from Sturm counts
    (:func:`count_modes`) at the top frequency and half of it (two real
    factorizations), or ``p = 1.8`` without them (``counts=False``, or without MKL).
    Pass the result as ``weights`` to :func:`femfreq.plan.plan_chunks`.

    Parameters
    ----------
    system : System
        The model.
    freqs_hz : (k,) array_like
        Sweep frequencies in Hz.
    counts : bool
        Use Sturm counts (two real factorizations) for ``p``, else ``p = 1.8``.
    factor : str
        Backend for the counts.
    sturm_counts : (int, int), optional
        The mode counts below the two :func:`sturm_frequencies` (top, half of it), when
        they were made elsewhere: no factorization here.

    Returns
    -------
    (k,) float array
        Non-negative weights summing to 1 (uniform for a single frequency).

    Raises
    ------
    ValueError
        For non-finite frequencies, or ``sturm_counts`` that is not two counts.
    """
    if sturm_counts is not None and np.shape(sturm_counts) != (2,):
        raise ValueError(f"sturm_counts must be the two mode counts (top, half of it), got {sturm_counts!r}")
    f = np.abs(np.atleast_1d(np.asarray(freqs_hz, dtype=float)))
    if f.ndim != 1 or not np.all(np.isfinite(f)):
        raise ValueError(f"freqs_hz must be finite frequencies in Hz (got {freqs_hz!r})")
    if f.size < 2 or f.max() == 0:
        return np.full(f.size, 1.0 / max(f.size, 1))
    top = float(f.max())
    p = _mode_exponent(system, top, counts, factor, sturm_counts)
    order = np.argsort(f, kind="stable")
    fs = f[order]
    # modes between the midpoints around each frequency, N(f) ~ f^p: finite at 0 Hz
    # for any p (the derivative p f^(p-1) is not when p < 1)
    edges = np.concatenate([fs[:1], (fs[1:] + fs[:-1]) / 2, fs[-1:]]) / top
    w = np.empty(f.size)
    w[order] = edges[1:] ** p - edges[:-1] ** p
    return w / w.sum() if w.sum() > 0 else np.full(f.size, 1.0 / f.size)
