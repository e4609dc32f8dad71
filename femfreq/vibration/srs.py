"""Shock response spectra: peak absolute acceleration of single-DOF oscillators on a shaking base.

Each oscillator (natural frequency ``fn``, damping ``zeta = 1/(2Q)``) moves
relative to its base as ``z'' + 2 zeta wn z' + wn^2 z = -a_b(t)``; its absolute
acceleration is ``y = -(2 zeta wn z' + wn^2 z)``. The response is computed with
Smallwood's ramp-invariant digital filter (D. O. Smallwood, "An improved
recursive formula for calculating shock response spectra", Shock and Vibration
Bulletin 51, 1981; the filter of ISO 18431-4), exact at the sample instants
when the input is linear between samples::

    y[j] = b0 a[j] + b1 a[j-1] + b2 a[j-2] - a1 y[j-1] - a2 y[j-2]
    E = exp(-zeta wn dt),  K = wd dt,  C = E cos K,  S = E sin K,  S' = S / K
    b0 = 1 - S',  b1 = 2 (S' - C),  b2 = E^2 - S',  a1 = -2 C,  a2 = E^2

(``wd = wn sqrt(1 - zeta^2)``). The peak between samples is caught by refining
the step (the input interpolated linearly, which is the filter's own
assumption) until each oscillator period has at least ``points_per_cycle``
steps, and the residual (free) response after the record by appending a period
of zero input.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._validate import as_float, as_int, frequencies, one_of

__all__ = ["ShockSpectrum", "shock_response_spectrum", "octave_frequencies", "smallwood_coefficients"]

_KINDS = ("maximax", "positive", "negative")


@dataclass(frozen=True, eq=False)
class ShockSpectrum:
    """The shock response spectrum of one or more acceleration channels.

    Attributes
    ----------
    freqs_hz : (n_f,) float64
        Natural frequencies of the oscillators, Hz.
    q : float
        Amplification ``Q = 1/(2 zeta)``.
    positive : (n_f,) or (n_f, k) float64
        Largest absolute acceleration of each oscillator, in the unit of the input.
    negative : (n_f,) or (n_f, k) float64
        Magnitude of the most negative absolute acceleration (reported >= 0).
    maximax : (n_f,) or (n_f, k) float64
        ``max(positive, negative)``: the largest magnitude.
    kind : str
        Which of the three :attr:`srs` returns.
    """

    freqs_hz: np.ndarray
    q: float
    positive: np.ndarray
    negative: np.ndarray
    maximax: np.ndarray
    kind: str = "maximax"

    def __post_init__(self):
        one_of("kind", self.kind, _KINDS)
        for name in ("freqs_hz", "positive", "negative", "maximax"):
            a = np.array(getattr(self, name), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def srs(self) -> np.ndarray:
        """The spectrum named by :attr:`kind` (the maximax one by default)."""
        return getattr(self, self.kind)


def shock_response_spectrum(t, accel, freqs_hz, q: float = 10.0, *, kind: str = "maximax",
                            points_per_cycle: int = 32, residual: bool = True) -> ShockSpectrum:
    """Absolute-acceleration shock response spectrum by Smallwood's ramp-invariant filter.

    Parameters
    ----------
    t : (n_t,) float64
        Uniformly spaced, increasing sample times, s.
    accel : (n_t,) or (n_t, k) float64
        Base acceleration history (any unit, e.g. g); ``k`` channels are done at once.
    freqs_hz : (n_f,) float64
        Oscillator natural frequencies, Hz (> 0); see :func:`octave_frequencies`.
    q : float
        Amplification ``Q = 1/(2 zeta)``, > 0.5 (10 is customary for pyroshock).
    kind : {"maximax", "positive", "negative"}, keyword-only
        Which spectrum :attr:`ShockSpectrum.srs` returns; all three are computed.
    points_per_cycle : int, keyword-only
        Each oscillator is filtered with a step of at most ``1 / (points_per_cycle fn)``
        (the input interpolated linearly in between), so a peak between two samples is
        missed by at most ``1 - cos(pi / points_per_cycle)`` (0.5 % for 32). 1 turns
        the refinement off (the plain filter at the sample rate).
    residual : bool, keyword-only
        Append one period of each oscillator of zero input, so the free response
        after the record counts (the input is taken to be at rest after the record).

    Returns
    -------
    ShockSpectrum
        ``.positive``, ``.negative``, ``.maximax`` of shape ``(n_f,)`` for a 1-D
        ``accel`` or ``(n_f, k)``, in the unit of ``accel``.

    Raises
    ------
    ValueError
        If ``t`` is not 1-D, increasing and uniform (to 1e-6 of the step), ``accel``
        does not have ``n_t`` rows or is not finite, a natural frequency is not > 0,
        ``q <= 0.5`` or ``kind`` is unknown.

    Warns
    -----
    UserWarning
        If the sample rate is below 10 times the highest natural frequency: the
        samples then do not describe the input well at that frequency.

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.vibration import shock_response_spectrum
    >>> t = np.arange(0, 0.01, 1e-5)
    >>> pulse = np.where(t < 1e-3, 100.0 * np.sin(np.pi * t / 1e-3), 0.0)  # 100 g, 1 ms half-sine
    >>> s = shock_response_spectrum(t, pulse, [5000.0])
    >>> bool(100.0 < s.maximax[0] < 115.0)
    True
    """
    one_of("kind", kind, _KINDS)
    q = as_float("q", q)
    if not q > 0.5:
        raise ValueError(f"q must be > 0.5 (an underdamped oscillator; got {q!r})")
    points_per_cycle = as_int("points_per_cycle", points_per_cycle, minimum=1)
    dt, a = _uniform_history(t, accel)
    fn = frequencies(freqs_hz)
    if fn.size == 0 or np.any(fn <= 0):
        raise ValueError(f"freqs_hz must be one or more natural frequencies > 0 Hz (got {fn.tolist()!r})")
    if 1.0 / dt < 10.0 * fn.max():
        warnings.warn(f"the sample rate {1.0 / dt:g} Hz is below 10 x the highest natural frequency "
                      f"{fn.max():g} Hz; the spectrum there is not reliable", stacklevel=2)
    zeta = 0.5 / q
    peaks = np.array([_peaks(a, dt, f, zeta, points_per_cycle, residual) for f in fn])  # (n_f, 2, k)
    positive, negative = peaks[:, 0], peaks[:, 1]
    if np.ndim(accel) == 1:
        positive, negative = positive[:, 0], negative[:, 0]
    return ShockSpectrum(freqs_hz=fn, q=q, positive=positive, negative=negative,
                         maximax=np.maximum(positive, negative), kind=kind)


def octave_frequencies(f_min: float, f_max: float, fraction: int = 6) -> np.ndarray:
    """Natural frequencies spaced by ``1/fraction`` octave: ``f_min 2^(j/fraction)`` up to ``f_max``.

    Parameters
    ----------
    f_min, f_max : float
        Band, Hz (``0 < f_min <= f_max``); ``f_max`` is included when it falls on
        the sequence (to 1e-9 relative).
    fraction : int
        Bands per octave: 6 or 12 for shock spectra (3 for 1/3-octave).

    Returns
    -------
    (n,) float64

    Raises
    ------
    ValueError
        If ``f_min`` or ``f_max`` is not finite and > 0, ``f_min > f_max``, or ``fraction < 1``.

    Examples
    --------
    >>> from femfreq.vibration import octave_frequencies
    >>> octave_frequencies(100.0, 400.0, fraction=2).round(1).tolist()
    [100.0, 141.4, 200.0, 282.8, 400.0]
    """
    lo, hi = as_float("f_min", f_min, positive=True), as_float("f_max", f_max, positive=True)
    fraction = as_int("fraction", fraction, minimum=1)
    if lo > hi:
        raise ValueError(f"f_min must be <= f_max (got {lo:g} and {hi:g} Hz)")
    n = int(math.floor(fraction * math.log2(hi / lo) + 1e-9))
    return lo * 2.0 ** (np.arange(n + 1) / fraction)


def _uniform_history(t, accel):
    """``(dt, accel (n_t, k) float64)`` after checking the shapes and the uniform sampling."""
    t = np.asarray(t, dtype=np.float64)
    a = np.asarray(accel, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t must be a 1-D array of at least two sample times (got shape {t.shape})")
    if a.ndim not in (1, 2) or a.shape[0] != t.size:
        raise ValueError(f"accel must have shape (n_t,) or (n_t, k) with n_t = {t.size} samples, like t "
                         f"(got shape {a.shape})")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        raise ValueError("t and accel must be finite")
    steps = np.diff(t)
    dt = (t[-1] - t[0]) / (t.size - 1)
    if not dt > 0 or np.max(np.abs(steps - dt)) > 1e-6 * dt:
        raise ValueError(f"t must be increasing and uniformly sampled (steps from {steps.min():g} to "
                         f"{steps.max():g} s); resample the record first")
    return dt, a.reshape(t.size, -1)


def _peaks(a, dt, fn, zeta, points_per_cycle, residual):
    """(2, k): the largest and the magnitude of the most negative absolute acceleration at ``fn``."""
    from scipy.signal import lfilter

    if residual:
        a = np.concatenate([a, np.zeros((int(math.ceil(1.0 / (fn * dt))) + 1, a.shape[1]))])
    m = max(1, int(math.ceil(points_per_cycle * fn * dt)))
    if m > 1:  # linear interpolation: the input the ramp-invariant filter assumes anyway
        frac = (np.arange(m) / m)[None, :, None]
        a = np.concatenate([(a[:-1, None] * (1 - frac) + a[1:, None] * frac).reshape(-1, a.shape[1]), a[-1:]])
    b, den = smallwood_coefficients(fn, zeta, dt / m)
    y = lfilter(b, den, a, axis=0)
    return np.stack([np.maximum(y.max(axis=0), 0.0), np.maximum(-y.min(axis=0), 0.0)])


def smallwood_coefficients(fn: float, zeta: float, dt: float):
    """Smallwood's ramp-invariant filter for absolute acceleration: ``(b (3,), a (3,))`` for ``lfilter``.

    Parameters
    ----------
    fn : float
        Natural frequency, Hz.
    zeta : float
        Damping ratio, ``0 <= zeta < 1``.
    dt : float
        Time step, s.
    """
    wn = 2.0 * math.pi * fn
    wd = wn * math.sqrt(1.0 - zeta * zeta)
    E = math.exp(-zeta * wn * dt)
    K = wd * dt
    C, S = E * math.cos(K), E * math.sin(K)
    Sp = S / K
    return np.array([1.0 - Sp, 2.0 * (Sp - C), E * E - Sp]), np.array([1.0, -2.0 * C, E * E])
