"""Random vibration response: response PSD = |H(f)|^2 ASD(f), rms by exact power-law integration.

For a linear structure driven by one stationary random input with spectral
density ``W(f)`` (an :class:`~femfreq.vibration.asd.ASD`), each output's
response spectral density is

    G(f) = |H_q(f)|^2 W(f),    H_q(f) = (i w)^(k_q - k_frf) H(f),    w = 2 pi f,

where ``H`` is the complex frequency response per unit input and the power of
``i w`` turns the quantity ``H`` describes (``k_frf``) into the one asked for
(``k_q``; displacement 0, velocity 1, acceleration 2). The rms is
``sqrt(int G df)``. The grid of a sweep is usually non-uniform (denser at the
peaks) and coarse where the response falls off as a power of ``f``: between
grid points ``G`` is taken as a power law (straight on log-log axes), which
integrates exactly; the ASD breakpoints inside the band are inserted into the
grid (``|H_q|^2`` interpolated log-log there) so each sub-segment is a product
of two power laws, again a power law.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._validate import frequencies, one_of
from .asd import ASD, as_asd

__all__ = ["RandomResponse", "random_response", "miles_grms", "DominantMode", "dominant_mode"]

#: Powers of ``i w`` relative to displacement.
QUANTITIES = {"displacement": 0, "velocity": 1, "acceleration": 2}


@dataclass(frozen=True, eq=False)
class RandomResponse:
    """The response of every output to a random input (see :func:`random_response`).

    Attributes
    ----------
    freqs_hz : (F,) float64
        The frequencies of the transfer function, Hz.
    psd : (F, n_out) float64
        Response spectral density ``|H_q|^2 W`` at ``freqs_hz`` (zero outside the
        ASD band); (unit of ``H_q`` x input unit)^2 / Hz, g^2/Hz for acceleration
        transmissibility under an ASD in g^2/Hz.
    rms : (n_out,) float64
        ``sqrt`` of the integral of the PSD over ``band_hz`` (Grms for that case).
    quantity : str
        ``"acceleration"``, ``"velocity"`` or ``"displacement"``.
    asd : ASD
        The input specification.
    band_hz : (float, float)
        The band integrated: the overlap of the frequency grid and the ASD band.
    labels : tuple of str
        One name per output.
    interface_force_psd : (F, 2) float64 or None
        Base excitation only: spectral density of the force the base applies to the
        structure (x, y), ``|F / a_b|^2 W``. ``F / a_b`` is a mass, so under an ASD in
        g^2/Hz this is in (mass x g)^2/Hz: multiply the rms by g in the model's
        acceleration unit for a force. None for a point load.
    interface_force_rms : (2,) float64 or None
        Its rms over ``band_hz`` (the figure used to notch a shaker input).
    """

    freqs_hz: np.ndarray
    psd: np.ndarray
    rms: np.ndarray
    quantity: str
    asd: ASD
    band_hz: tuple
    labels: tuple
    interface_force_psd: np.ndarray | None = None
    interface_force_rms: np.ndarray | None = None

    def __post_init__(self):
        for name in ("freqs_hz", "psd", "rms", "interface_force_psd", "interface_force_rms"):
            value = getattr(self, name)
            if value is None:
                continue
            a = np.array(value, dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def mean_square(self) -> np.ndarray:
        """(n_out,) float64: ``rms**2``, the integral of each output's PSD."""
        return self.rms**2


def random_response(result_or_freqs_and_transfer, asd, quantity: str = "acceleration", *,
                    frf_quantity: str = "displacement") -> RandomResponse:
    """Response PSD and rms of every output under a random input of spectral density ``asd``.

    Parameters
    ----------
    result_or_freqs_and_transfer : SweepResult or (freqs_hz, H)
        The complex transfer function ``H`` per unit input on increasing
        frequencies (Hz; any spacing, at least two points): either a complete
        :class:`femfreq.results.SweepResult` (its ``frf``, response divided by
        the load spectrum ``P(w)``, with its ``labels``), or a pair of
        ``freqs_hz (F,)`` and ``H (F,)`` or ``(F, n_out)``.
        **What H must be.** The response of each output to a *unit* input of
        the kind the ASD describes, as the quantity ``frf_quantity``: for a
        sweep of femfreq's point-load model that is displacement per unit
        force (m/N), so an ASD must be a force spectrum (N^2/Hz); for base
        excitation, displacement (or acceleration) of the output per unit base
        acceleration, with the ASD in g^2/Hz. The units multiply:
        rms acceleration of an acceleration transmissibility (dimensionless)
        under g^2/Hz is in g; displacement per unit base acceleration in s^2
        times g gives g s^2 (multiply by 9.80665 for metres).
    asd : ASD, str, path or (n, 2) pairs
        The input specification (see :func:`femfreq.vibration.asd.as_asd`);
        zero outside its band.
    quantity : {"acceleration", "velocity", "displacement"}
        The response quantity wanted.
    frf_quantity : {"displacement", "velocity", "acceleration"}, keyword-only
        What ``H`` is (default displacement, as femfreq's sweep computes);
        ``H`` is multiplied by ``(i w)^(k_quantity - k_frf)``.

    Returns
    -------
    RandomResponse
        ``.freqs_hz (F,)``, ``.psd (F, n_out)``, ``.rms (n_out,)`` and the band integrated.

    Raises
    ------
    TypeError
        If the first argument is neither a result nor a ``(freqs_hz, H)`` pair.
    ValueError
        If frequencies are not strictly increasing, ``H`` does not have one row
        per frequency or has a non-finite value, the result is incomplete, the
        grid does not overlap the ASD band, or a quantity is unknown.

    Warns
    -----
    UserWarning
        If the grid covers only part of the ASD band (only the overlap is integrated).

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.vibration import random_response
    >>> f = np.geomspace(20.0, 2000.0, 5)
    >>> flat = random_response((f, np.ones(5)), "20:0.04,2000:0.04", frf_quantity="acceleration")
    >>> round(float(flat.rms[0]), 6) == round(float(np.sqrt(0.04 * 1980.0)), 6)
    True
    """
    one_of("quantity", quantity, QUANTITIES)
    one_of("frf_quantity", frf_quantity, QUANTITIES)
    asd = as_asd(asd)
    freqs, H, labels = _transfer(result_or_freqs_and_transfer)
    gain = _quantity_gain(freqs, QUANTITIES[quantity] - QUANTITIES[frf_quantity])
    level = asd(freqs)
    H2 = np.abs(H) ** 2 * gain[:, None]
    lo, hi = max(freqs[0], asd.band_hz[0]), min(freqs[-1], asd.band_hz[1])
    if not lo < hi:
        raise ValueError(f"the frequencies ({freqs[0]:g} to {freqs[-1]:g} Hz) do not overlap the ASD band "
                         f"({asd.band_hz[0]:g} to {asd.band_hz[1]:g} Hz)")
    if (lo, hi) != asd.band_hz:
        warnings.warn(f"the frequencies cover {lo:g} to {hi:g} Hz of the ASD band {asd.band_hz[0]:g} to "
                      f"{asd.band_hz[1]:g} Hz; the rms integrates that overlap only", stacklevel=2)
    mean_square = _integrate_psd(freqs, H2, asd, lo, hi)
    force_psd = force_rms = None
    Hf = _interface_transfer(result_or_freqs_and_transfer)
    if Hf is not None:  # base excitation: the force the base applies, per unit base acceleration
        F2 = np.abs(Hf) ** 2
        force_psd = F2 * level[:, None]
        force_rms = np.sqrt(_integrate_psd(freqs, F2, asd, lo, hi))
    return RandomResponse(freqs_hz=freqs, psd=H2 * level[:, None], rms=np.sqrt(mean_square),
                          quantity=quantity, asd=asd, band_hz=(float(lo), float(hi)), labels=labels,
                          interface_force_psd=force_psd, interface_force_rms=force_rms)


def _interface_transfer(result):
    """(F, 2) interface force per unit base acceleration of a base-motion result, else None."""
    force = getattr(result, "interface_force", None)
    base = getattr(result, "base", None)
    if force is None or not base:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        Hf = np.asarray(force) / np.asarray(base["acceleration"]).reshape(-1, 1)
    return np.where(np.isfinite(Hf), Hf, 0.0)


def miles_grms(fn, q, asd_value):
    """Miles' equation: rms response of one mode under a flat ASD, ``sqrt(pi/2 fn Q W(fn))``.

    A cross-check for a dominant mode, not the computation: it assumes a
    single degree of freedom, a flat input around ``fn`` and light damping.

    Parameters
    ----------
    fn : float or array_like
        Natural frequency, Hz (> 0).
    q : float or array_like
        Amplification ``Q = 1/(2 zeta)`` (viscous) or ``1/g`` (structural), > 0.
    asd_value : float, array_like, ASD or callable
        The input level at ``fn`` (g^2/Hz), or a specification evaluated at ``fn``.

    Returns
    -------
    float or ndarray
        The rms response (Grms for g^2/Hz), with the broadcast shape of the inputs.

    Raises
    ------
    ValueError
        If ``fn`` or ``q`` is not finite and > 0, or the level is negative.

    Examples
    --------
    >>> from femfreq.vibration import miles_grms
    >>> round(miles_grms(100.0, 10.0, 0.04), 3)
    7.927
    """
    fn_a = np.asarray(fn, dtype=np.float64)
    q_a = np.asarray(q, dtype=np.float64)
    for name, a in (("fn", fn_a), ("q", q_a)):
        if not np.all(np.isfinite(a) & (a > 0)):
            raise ValueError(f"{name} must be finite and > 0 (got {a.tolist()!r})")
    w = np.asarray(asd_value(fn_a) if callable(asd_value) else asd_value, dtype=np.float64)
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError(f"asd_value must be finite and >= 0 (got {w.tolist()!r})")
    out = np.sqrt(0.5 * math.pi * fn_a * q_a * w)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class DominantMode:
    """The mode that dominates each output's response PSD, and its single-mode rms estimate.

    Attributes
    ----------
    freqs_hz : (n_out,) float64
        Natural frequency of the dominant mode, Hz: among the (8 highest) peaks of
        the response PSD inside the band, the one whose single-mode mean square
        (below) is the largest; located between grid points by the parabola of
        ``1/|H_q|^2`` through the three points around the peak. Without a
        resonance, the frequency of the largest PSD.
    q : (n_out,) float64
        Amplification ``fn / (f2 - f1)`` at the half-power points of ``|H_q|^2``
        from that parabola (the Lorentzian shape of a lightly damped mode; read
        off the grid when the points do not make one); NaN where the peak is not a resonance the grid resolves
        (at a band edge, half-power points outside the band on both sides, or
        ``Q < 2``: too damped for a single-mode estimate).
    gain : (n_out,) float64
        ``|H_q(fn)|``, the peak of the transfer function of the quantity.
    rms : (n_out,) float64
        ``|H_q(fn)| sqrt(pi fn W(fn) / (2 Q))``, the rms of one lightly damped mode
        under an input flat around ``fn``; NaN where ``q`` is. For a
        transmissibility (``|H_q(fn)| = Q``) it is Miles' equation
        :func:`miles_grms`.
    """

    freqs_hz: np.ndarray
    q: np.ndarray
    gain: np.ndarray
    rms: np.ndarray


def dominant_mode(response: RandomResponse) -> DominantMode:
    """Each output's dominant mode and Miles' single-mode estimate of its contribution to the rms.

    Near a lightly damped mode ``|H_q|^2`` is a Lorentzian, whose area is
    ``pi / 2`` times its peak times its half-power bandwidth ``fn / Q``; so one
    mode under a level ``W(fn)`` gives ``rms^2 = |H_q(fn)|^2 W(fn) pi fn / (2 Q)``; with the
    transmissibility ``|H_q(fn)| = Q`` of a base-driven oscillator this is Miles'
    equation ``sqrt(pi/2 fn Q W(fn))``. A cross-check of :attr:`RandomResponse.rms`:
    close to it when one mode dominates, below it when several contribute.

    Parameters
    ----------
    response : RandomResponse
        From :func:`random_response`; ``|H_q|^2`` is recovered as ``psd / W``
        inside the band.

    Returns
    -------
    DominantMode

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.vibration import dominant_mode, miles_grms, random_response
    >>> f = np.linspace(20.0, 2000.0, 20000)
    >>> T = (1 + 0.05j) / (1 + 0.05j - (f / 100.0) ** 2)      # oscillator, 100 Hz, Q = 20
    >>> r = random_response((f, T), "20:0.04,2000:0.04", frf_quantity="acceleration")
    >>> m = dominant_mode(r)
    >>> round(float(m.freqs_hz[0])), round(float(m.q[0]), 1)
    (100, 20.0)
    >>> bool(abs(m.rms[0] / miles_grms(100.0, 20.0, 0.04) - 1) < 0.01)
    True
    """
    f = response.freqs_hz
    level = response.asd(f)
    lo, hi = response.band_hz
    inside = (f >= lo) & (f <= hi) & (level > 0)
    n_out = response.psd.shape[1]
    out = {name: np.full(n_out, np.nan) for name in ("freqs_hz", "q", "gain", "rms")}
    if inside.sum() < 3:
        return DominantMode(**out)
    idx = np.flatnonzero(inside)
    fb, psd = f[idx], response.psd[idx]
    H2 = psd / level[idx, None]
    for j in range(n_out):
        best = None
        for k in _peaks_of(psd[:, j]):
            fn, peak, q = _resonance(fb[k - 1:k + 2], H2[k - 1:k + 2, j])
            if not np.isfinite(q):
                fn, peak, q = fb[k], H2[k, j], _half_power_q(fb, H2[:, j], k)
            if not q >= _MIN_Q:
                continue
            mean_square = peak * math.pi * fn * float(response.asd(fn)) / (2.0 * q)
            if best is None or mean_square > best[-1]:
                best = (fn, peak, q, mean_square)
        if best is None:  # no resonance: the largest value, without an estimate
            k = int(np.argmax(psd[:, j]))
            out["freqs_hz"][j], out["gain"][j] = fb[k], math.sqrt(H2[k, j])
            continue
        fn, peak, q, mean_square = best
        out["freqs_hz"][j], out["gain"][j], out["q"][j], out["rms"][j] = fn, math.sqrt(peak), q, math.sqrt(mean_square)
    return DominantMode(**out)


def _peaks_of(psd, most=8):
    """Indices of the (at most ``most``) highest interior local maxima of ``psd``, above 1e-6 of the largest."""
    inner = np.flatnonzero((psd[1:-1] > psd[:-2]) & (psd[1:-1] >= psd[2:])) + 1
    inner = inner[psd[inner] > 1e-6 * psd.max()] if inner.size else inner
    return inner[np.argsort(-psd[inner], kind="stable")[:most]]


def _resonance(f, H2):
    """``(fn, peak |H|^2, Q)`` of a lightly damped resonance through three points around its peak.

    Near the resonance ``1/|H|^2`` is a parabola in ``f``, ``m + c (f - fn)^2`` (the
    Lorentzian), whose half-power points are ``fn -+ sqrt(m/c)``: fitting it to the three
    points gives Q on a grid coarser than the peak, where reading the crossings off the
    grid does not. NaN for Q when the points do not make such a parabola.
    """
    c2, c1, c0 = np.polyfit(f, 1.0 / H2, 2)
    if not c2 > 0:
        return f[1], H2[1], np.nan
    fn = -c1 / (2.0 * c2)
    m = c0 - c1 * c1 / (4.0 * c2)
    if not (m > 0 and f[0] <= fn <= f[2]):
        return f[1], H2[1], np.nan
    return fn, 1.0 / m, fn / (2.0 * math.sqrt(m / c2))


def _half_power_q(f, H2, k):
    """``f[k] / (f2 - f1)`` at the half-power points of ``H2`` around its peak ``k`` (NaN if not found)."""
    half = 0.5 * H2[k]
    sides = []
    for step, stop in ((-1, -1), (1, f.size)):
        i = k
        while i + step != stop and H2[i + step] > half:
            i += step
        if i + step == stop:
            sides.append(np.nan)
            continue
        j = i + step  # H2[j] <= half < H2[i]: linear interpolation between the two
        sides.append(abs(f[i] + (f[j] - f[i]) * (H2[i] - half) / (H2[i] - H2[j]) - f[k]))
    below, above = sides
    if np.isnan(below) and np.isnan(above):
        return np.nan
    width = below + above if not (np.isnan(below) or np.isnan(above)) else 2.0 * np.nanmax(sides)
    return float(f[k] / width) if width > 0 else np.nan


def _transfer(source):
    """``(freqs_hz (F,), H (F, n_out) complex, labels)`` from a result or a ``(freqs, H)`` pair."""
    if hasattr(source, "freqs_hz") and hasattr(source, "response"):
        done = getattr(source, "done", None)
        if done is not None and not np.all(done):
            missing = int(np.size(done) - np.count_nonzero(done))
            raise ValueError(f"the result is incomplete ({missing} of {np.size(done)} frequencies not done); "
                             f"resume the sweep first")
        freqs, H = source.freqs_hz, getattr(source, "frf", source.response)
        labels = getattr(source, "labels", None)
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        (freqs, H), labels = source, None
    else:
        raise TypeError(f"expected a SweepResult or a (freqs_hz, H) pair (got {type(source).__name__})")
    freqs = frequencies(freqs)
    if freqs.size < 2 or np.any(np.diff(freqs) <= 0):
        raise ValueError(f"freqs_hz must be at least two strictly increasing frequencies (got {freqs.size} "
                         f"values{'' if freqs.size < 2 else ', not increasing'})")
    try:
        H = np.asarray(H, dtype=np.complex128)
    except (TypeError, ValueError):
        raise TypeError("the transfer function H must be complex numbers") from None
    if H.ndim == 1:
        H = H[:, None]
    if H.ndim != 2 or H.shape[0] != freqs.size:
        raise ValueError(f"the transfer function H must have shape (F,) or (F, n_out) with F = {freqs.size} "
                         f"frequencies (got shape {H.shape})")
    bad = np.argwhere(~np.isfinite(H))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"the transfer function H is not finite at {freqs[i]:g} Hz (row {i}, output {j})")
    if labels is None or len(labels) != H.shape[1]:
        labels = [f"output {j}" for j in range(H.shape[1])]
    return freqs, H, tuple(str(x) for x in labels)


def _quantity_gain(freqs, power):
    """(F,) ``|i w|^(2 power)``; 0 at 0 Hz for a power != 0 (0 Hz is outside every ASD band)."""
    omega = 2.0 * math.pi * freqs
    if not power:
        return np.ones_like(omega)
    with np.errstate(divide="ignore"):
        return np.where(omega > 0, omega ** (2.0 * power), 0.0)


def _integrate_psd(freqs, H2, asd, lo, hi):
    """(n_out,) ``int_lo^hi |H_q|^2 W df`` on the grid plus the ASD breakpoints inside (lo, hi)."""
    inner = (freqs > lo) & (freqs < hi)
    kinks = asd.freqs_hz[(asd.freqs_hz > lo) & (asd.freqs_hz < hi)]
    split = np.unique(np.concatenate([freqs[inner], kinks, [lo, hi]]))
    a, b = split[:-1], split[1:]
    seg = np.clip(np.searchsorted(freqs, a, side="right") - 1, 0, freqs.size - 2)
    j = np.clip(np.searchsorted(asd.freqs_hz, a, side="right") - 1, 0, asd.freqs_hz.size - 2)
    w = (asd(a), asd(b), asd.exponents[j])
    block = max(1, _BLOCK_ELEMENTS // (a.size * _NODES.size))
    return np.concatenate([_segment_integrals(freqs, H2[:, c:c + block], seg, a, b, w).sum(axis=0)
                           for c in range(0, H2.shape[1], block)])


def _segment_integrals(freqs, H2, seg, a, b, w):
    """(S, m) integrals over sub-segments ``[a, b]`` of grid segments ``seg`` (see the module docs)."""
    w_a, w_b, b_w = w
    i = seg
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u, y = np.log(freqs), np.log(H2)
        delta, slope = _monotone_slopes(u, y)
        ua, hs = np.log(a), np.log(b / a)
        h = (u[i + 1] - u[i])[:, None, None]
        d = delta[i]
        # exact part: the chord of log|H_q|^2 times the power-law W times f, a power law in f
        bh = (d + b_w[:, None] + 1.0) * hs[:, None]
        y_a = y[i] + d * (ua - u[i])[:, None]
        exact = np.exp(y_a) * (w_a * a * hs)[:, None] * _expm1_over(bh)
        # the cubic's departure from the chord, q, weighted by the exact part (Gauss nodes in its integral)
        t = ((ua - u[i])[:, None, None] + hs[:, None, None] * _nodes_fraction(bh)) / h
        q = h * t * (1 - t) * ((slope[i] - d)[..., None] * (1 - t) - (slope[i + 1] - d)[..., None] * t)
        cubic = exact * (np.exp(q) @ _WEIGHTS)
        ok = np.isfinite(y[i]) & np.isfinite(y[i + 1]) & (freqs[i] > 0)[:, None]
        frac_a = ((a - freqs[i]) / (freqs[i + 1] - freqs[i]))[:, None]
        frac_b = ((b - freqs[i]) / (freqs[i + 1] - freqs[i]))[:, None]
        H2_a = H2[i] + frac_a * (H2[i + 1] - H2[i])
        H2_b = H2[i] + frac_b * (H2[i + 1] - H2[i])
        trapezoid = 0.5 * (H2_a * w_a[:, None] + H2_b * w_b[:, None]) * (b - a)[:, None]
    return np.where(ok, cubic, trapezoid)


def _monotone_slopes(u, y):
    """Chords ``(F-1, m)`` and Fritsch-Carlson (PCHIP) slopes ``(F, m)`` of ``y(u)``; 0 at extrema."""
    h = np.diff(u)[:, None]
    delta = np.diff(y, axis=0) / h
    finite = np.isfinite(delta)
    chord = np.where(finite, delta, 0.0)
    slope = np.empty_like(y)
    slope[0], slope[-1] = chord[0], chord[-1]
    if y.shape[0] > 2:
        d0, d1, f0, f1 = chord[:-1], chord[1:], finite[:-1], finite[1:]
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        same = f0 & f1 & (d0 * d1 > 0)
        harmonic = (w1 + w2) / (w1 / np.where(same, d0, 1.0) + w2 / np.where(same, d1, 1.0))
        one_sided = np.where(f0 & ~f1, d0, np.where(f1 & ~f0, d1, 0.0))
        slope[1:-1] = np.where(same, harmonic, one_sided)
    return delta, slope


def _expm1_over(x):
    """``(e^x - 1) / x``, 1 at 0."""
    small = np.abs(x) < 1e-12
    return np.where(small, 1.0 + 0.5 * x, np.expm1(x) / np.where(small, 1.0, x))


def _nodes_fraction(bh):
    """(S, m, K) Gauss nodes as fractions of a segment, for the weight ``e^(bh s)`` on s in [0, 1]."""
    x, t = bh[..., None], _NODES
    small = np.abs(x) < 1e-12
    # the inverse of the weight's cumulative integral; the log form avoids overflow for large bh
    rising = x + np.log(t + (1 - t) * np.exp(-np.abs(x)))
    falling = np.log1p(np.expm1(-np.abs(x)) * t)
    return np.where(small, t, np.where(x > 0, rising, falling) / np.where(small, 1.0, x))


#: Below this amplification a peak is not treated as a resonance (Miles' equation needs light damping).
_MIN_Q = 2.0

_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(6)
_NODES = 0.5 * (1.0 + _GAUSS_X)
_WEIGHTS = 0.5 * _GAUSS_W
_BLOCK_ELEMENTS = 4_000_000
