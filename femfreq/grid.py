"""Frequency grids that resolve the resonance peaks: the ``"auto:FMIN:FMAX[:N]"`` spec.

A lightly damped mode at ``f_k`` with loss factor ``eta_k`` has a half-power band

    [f_k sqrt(1 - eta_k), f_k sqrt(1 + eta_k)],   width ~ eta_k f_k,

(exact for a single degree of freedom with structural damping ``eta = g``; for viscous
damping ``eta_k = 2 zeta_k``). A uniform grid coarser than that band misses the peak:
with ``g = 0.02`` the default 0.488 Hz ``rfft`` grid puts fewer than five points in
every band below ~120 Hz. :func:`peak_grid` puts at least ``N`` points in every band,
one of them on the natural frequency, widens the spacing linearly away from each band
(the tails of a resonance vary on the scale of the distance to it) up to a
log-spaced background, like Nastran's FREQ4 but with the bandwidth of each mode.
:func:`modal_bands` finds the modes and their loss factors from the system:

- natural frequencies from shift-invert Lanczos (``scipy.sparse.linalg.eigsh``) on
  slices of the spectrum, with the real factorizations of ``K - s M`` the fast sweep
  uses (:mod:`femfreq.solvers.fast.factors`), counted against the Sturm count (the
  inertia of ``K - s M``) when PARDISO is available; dense ``eigh`` on small systems;
- loss factors ``eta_k = g + (phi_k^T C phi_k) / omega_k`` with mass-normalised
  ``phi_k``: the modal projection of ``C``, exact for ``C = alpha M + beta K``
  (``eta = g + alpha / omega + beta omega``).

:func:`auto_grid` joins the two; :func:`parse_auto` reads the spec, which
:func:`femfreq.spectra.frequency_grid` and :func:`femfreq.solve` accept.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from .system import System

__all__ = ["AutoSpec", "Modes", "auto_grid", "is_auto", "modal_bands", "parse_auto", "peak_grid",
           "DEFAULT_POINTS_PER_BAND"]

log = logging.getLogger(__name__)

#: Points in every half-power band by default: the smallest count measured to capture every
#: peak of the satellite to 99 %, overlapping modes included (benchmarks/bench_autogrid.py).
DEFAULT_POINTS_PER_BAND = 21
#: Background points per decade, between the modes.
BACKGROUND_PER_DECADE = 48
#: Away from a band the spacing grows by this fraction of the distance to the band.
SHOULDER_SLOPE = 0.35
#: Loss factor floor: an undamped mode gets the band of this damping (its peak is infinite).
MIN_LOSS_FACTOR = 1e-4
#: Modes this far outside [FMIN, FMAX] (relative) still shape the grid near the ends.
_MARGIN = 0.1
#: Systems up to this size get their modes from a dense eigensolver.
_DENSE_MAX_N = 500
#: Significant digits kept of each natural frequency: a rerun (resume) gets the same grid.
_DIGITS = 9


@dataclass(frozen=True)
class AutoSpec:
    """A parsed ``"auto:FMIN:FMAX[:N]"``: the band (Hz) and the points per half-power band."""

    fmin_hz: float
    fmax_hz: float
    points_per_band: int = DEFAULT_POINTS_PER_BAND


@dataclass(frozen=True)
class Modes:
    """Undamped natural frequencies and loss factors of the modes in a band.

    Attributes
    ----------
    freqs_hz : (m,) float64
        Natural frequencies, increasing.
    loss_factors : (m,) float64
        ``eta_k = g + phi_k^T C phi_k / omega_k``: the half-power band is about ``eta_k f_k`` wide.
    overlap_from_hz : float
        Above this frequency the modes were not sought one by one: they overlap (more
        than two per half-power band), and the grid spacing follows the loss factor
        ``eta(f) = g + alpha / omega + beta omega`` of ``overlap_damping = (g, alpha,
        beta)`` (``C ~ alpha M + beta K``) instead (``inf``: every mode is listed).
    """

    freqs_hz: np.ndarray
    loss_factors: np.ndarray
    overlap_from_hz: float = math.inf
    overlap_damping: tuple = (0.0, 0.0, 0.0)

    @property
    def half_power_bands(self) -> np.ndarray:
        """(m, 2) float64: ``f_k sqrt(1 -+ eta_k)``, the half-power frequencies of each mode."""
        eta = np.minimum(self.loss_factors, 0.99)
        return self.freqs_hz[:, None] * np.sqrt(1 + np.outer(eta, [-1.0, 1.0]))


def is_auto(spec) -> bool:
    """True if ``spec`` is a string of the ``"auto:..."`` family."""
    return isinstance(spec, str) and spec.strip().lower().split(":", 1)[0].strip() == "auto"


def parse_auto(spec: str) -> AutoSpec:
    """Read ``"auto:FMIN:FMAX"`` or ``"auto:FMIN:FMAX:N"``.

    Parameters
    ----------
    spec : str
        ``0 < FMIN < FMAX`` in Hz; ``N >= 1`` points per half-power band
        (default :data:`DEFAULT_POINTS_PER_BAND`).

    Returns
    -------
    AutoSpec

    Raises
    ------
    ValueError
        A malformed spec; the message quotes it.

    Examples
    --------
    >>> parse_auto("auto:20:2000:9")
    AutoSpec(fmin_hz=20.0, fmax_hz=2000.0, points_per_band=9)
    """
    if not is_auto(spec):
        raise ValueError(f"frequency spec {spec!r} is not of the form 'auto:FMIN:FMAX[:N]'")
    parts = [p.strip() for p in spec.strip().split(":")[1:]]
    if len(parts) not in (2, 3):
        raise ValueError(f"frequency spec {spec!r} must be 'auto:FMIN:FMAX' or 'auto:FMIN:FMAX:N'")
    try:
        fmin, fmax = float(parts[0]), float(parts[1])
        n = int(parts[2]) if len(parts) == 3 else DEFAULT_POINTS_PER_BAND
    except ValueError:
        raise ValueError(f"frequency spec {spec!r}: FMIN and FMAX must be numbers and N an integer") from None
    if not (math.isfinite(fmin) and math.isfinite(fmax)) or fmin <= 0:
        raise ValueError(f"frequency spec {spec!r}: FMIN and FMAX must be finite and > 0 Hz")
    if not fmax > fmin:
        raise ValueError(f"frequency spec {spec!r}: FMAX {fmax:g} must be above FMIN {fmin:g}")
    if n < 1:
        raise ValueError(f"frequency spec {spec!r}: N (points per half-power band) must be >= 1 (got {n})")
    return AutoSpec(fmin, fmax, n)


def auto_grid(system, spec, *, modes=None) -> np.ndarray:
    """The frequencies of an ``"auto:FMIN:FMAX[:N]"`` spec for ``system``.

    Parameters
    ----------
    system : System
        The model's matrices (``K``, ``C``, ``M``, ``g``).
    spec : str or AutoSpec
        ``"auto:FMIN:FMAX"`` (or with ``:N``, the points per half-power band).
    modes : Modes, optional
        The modes, if already known (default: :func:`modal_bands` over the band
        widened by 10 % each side).

    Returns
    -------
    freqs_hz : (F,) float64
        Sorted, unique, from FMIN to FMAX (:func:`peak_grid`).

    Raises
    ------
    ValueError
        A malformed spec.
    TypeError
        If ``system`` is not a :class:`~femfreq.system.System`.
    """
    s = spec if isinstance(spec, AutoSpec) else parse_auto(spec)
    if modes is None:
        modes = modal_bands(system, s.fmin_hz * (1 - _MARGIN), s.fmax_hz * (1 + _MARGIN))
    freqs = peak_grid(modes.freqs_hz, modes.loss_factors, s.fmin_hz, s.fmax_hz,
                      points_per_band=s.points_per_band,
                      overlap=(modes.overlap_from_hz, *modes.overlap_damping))
    log.info("auto grid %g..%g Hz: %d modes, %d frequencies", s.fmin_hz, s.fmax_hz, modes.freqs_hz.size,
             freqs.size)
    return freqs


# ---------------------------------------------------------------------------
# placing the points
# ---------------------------------------------------------------------------
def peak_grid(mode_freqs_hz, loss_factors, fmin_hz, fmax_hz, *, points_per_band=DEFAULT_POINTS_PER_BAND,
              per_decade=BACKGROUND_PER_DECADE, overlap=None) -> np.ndarray:
    """Frequencies with at least ``points_per_band`` points in every half-power band.

    The target spacing at ``f`` is the smallest of the background's
    ``f (10^(1/per_decade) - 1)`` and, for every mode, ``h_k + s d_k(f)``: ``h_k`` is
    the half-power width ``f_k (sqrt(1 + eta_k) - sqrt(1 - eta_k))`` over
    ``points_per_band`` and ``d_k`` the distance from ``f`` to the band (0 inside,
    ``s`` = :data:`SHOULDER_SLOPE`). The points are spread evenly in the integral of
    1 / spacing between anchors: FMIN, FMAX and the natural frequencies (each peak's
    top, exactly, for an isolated mode; modes closer than half a spacing share one).

    Parameters
    ----------
    mode_freqs_hz : (m,) array_like
        Natural frequencies (Hz, > 0); modes outside [FMIN, FMAX] shape the spacing
        near the ends.
    loss_factors : (m,) array_like
        Loss factor of each mode (``g``, or ``2 zeta``; floored at
        :data:`MIN_LOSS_FACTOR`).
    fmin_hz, fmax_hz : float
        The band, ``0 < fmin_hz < fmax_hz``.
    points_per_band : int
        Minimum number of points in each half-power band inside [FMIN, FMAX].
    per_decade : int
        Background points per decade.
    overlap : (from_hz, g, alpha, beta), optional
        Above ``from_hz`` the modes overlap and are not listed: the spacing there is
        at most ``eta(f) f / points_per_band`` with ``eta = g + alpha / omega + beta omega``.

    Returns
    -------
    freqs_hz : (F,) float64
        Sorted, unique, FMIN and FMAX included.

    Raises
    ------
    ValueError
        For a bad band, counts, or modes (non-positive frequencies, negative loss
        factors, mismatched lengths).

    Examples
    --------
    >>> f = peak_grid([100.0], [0.02], 50.0, 200.0, points_per_band=5)
    >>> int(np.sum((f >= 100 * np.sqrt(0.98)) & (f <= 100 * np.sqrt(1.02)))) >= 5
    True
    """
    fmin = v.positive_float("fmin_hz", fmin_hz)
    fmax = v.positive_float("fmax_hz", fmax_hz)
    if not fmax > fmin:
        raise ValueError(f"fmax_hz {fmax:g} must be above fmin_hz {fmin:g}")
    n_band = v.as_int("points_per_band", points_per_band, minimum=1)
    per_decade = v.as_int("per_decade", per_decade, minimum=1)
    fk, eta = _checked_modes(mode_freqs_hz, loss_factors)
    # the integral of 1 / spacing on a log grid fine enough for the narrowest band
    ratio = 10 ** (1 / per_decade)
    width = fk * (np.sqrt(1 + eta) - np.sqrt(np.maximum(1 - eta, 0.0)))
    # spacing <= width / n keeps n points in the band wherever it falls on the grid
    h_mode = width / n_band
    finest = float(np.min(h_mode / fk, initial=ratio - 1))
    if overlap is not None and overlap[0] < fmax:
        finest = min(finest, MIN_LOSS_FACTOR / n_band) if _overlap_eta_min(overlap, fmin, fmax) <= MIN_LOSS_FACTOR \
            else min(finest, _overlap_eta_min(overlap, fmin, fmax) / n_band)
    step = min(ratio - 1, finest) / 4
    aux = np.exp(np.arange(math.log(fmin), math.log(fmax) + step, step))
    aux = np.unique(np.clip(np.concatenate([aux, [fmin, fmax]]), fmin, fmax))
    h = _spacing(aux, fk, eta, h_mode, ratio)
    if overlap is not None and overlap[0] < fmax:
        from_hz, g, alpha, beta = (float(x) for x in overlap)
        w = 2 * np.pi * aux
        eta_f = np.maximum(g + alpha / w + beta * w, MIN_LOSS_FACTOR)
        dense = aux >= from_hz
        h[dense] = np.minimum(h[dense], eta_f[dense] * aux[dense] / n_band)
    phi = np.concatenate([[0.0], np.cumsum(np.diff(aux) * 0.5 * (1 / h[1:] + 1 / h[:-1]))])
    anchors = _anchors(fk, h_mode, fmin, fmax)
    return _spread(aux, phi, anchors)


def _overlap_eta_min(overlap, fmin, fmax):
    """Smallest ``g + alpha / omega + beta omega`` over [fmin, fmax]."""
    _, g, alpha, beta = (float(x) for x in overlap)
    w = 2 * np.pi * np.geomspace(fmin, fmax, 64)
    if alpha > 0 and beta > 0:
        w = np.append(w, np.clip(np.sqrt(alpha / beta), w[0], w[-1]))
    return float(np.min(g + alpha / w + beta * w))


def _checked_modes(mode_freqs_hz, loss_factors):
    """Float arrays (f_k, eta_k), sorted by frequency, eta floored."""
    fk = np.atleast_1d(np.asarray(mode_freqs_hz, dtype=np.float64))
    eta = np.atleast_1d(np.asarray(loss_factors, dtype=np.float64))
    if fk.ndim != 1 or eta.shape != fk.shape:
        raise ValueError(f"mode_freqs_hz and loss_factors must be 1-D of one length "
                         f"(got shapes {fk.shape} and {eta.shape})")
    if not np.all(np.isfinite(fk) & (fk > 0)):
        raise ValueError(f"mode frequencies must be finite and > 0 Hz (got {fk[~(np.isfinite(fk) & (fk > 0))][:3]})")
    if not np.all(np.isfinite(eta) & (eta >= 0)):
        raise ValueError(f"loss factors must be finite and >= 0 (got {eta[~(np.isfinite(eta) & (eta >= 0))][:3]})")
    order = np.argsort(fk, kind="stable")
    return fk[order], np.maximum(eta[order], MIN_LOSS_FACTOR)


def _spacing(f, fk, eta, h_mode, ratio):
    """Target spacing at the frequencies ``f``: background, or a band's, widening away from it."""
    h = f * (ratio - 1)
    lo = fk * np.sqrt(np.maximum(1 - eta, 0.0))
    hi = fk * np.sqrt(1 + eta)
    for k in range(fk.size):
        # a mode matters where its spacing undercuts the background's
        reach = (hi[k] * (ratio - 1) - h_mode[k]) / (SHOULDER_SLOPE - (ratio - 1)) if SHOULDER_SLOPE > ratio - 1 \
            else np.inf
        i0, i1 = np.searchsorted(f, [lo[k] - reach, hi[k] + reach])
        if i0 >= i1:
            continue
        seg = f[i0:i1]
        d = np.maximum(np.maximum(lo[k] - seg, seg - hi[k]), 0.0)
        np.minimum(h[i0:i1], h_mode[k] + SHOULDER_SLOPE * d, out=h[i0:i1])
    return h


def _anchors(fk, h_mode, fmin, fmax):
    """FMIN, FMAX and the natural frequencies inside, thinned to one per half target spacing."""
    keep, h_last = [fmin], 0.0
    for f, h in zip(fk, h_mode):
        if fmin < f < fmax and f - keep[-1] >= 0.5 * h:
            keep.append(float(f))
            h_last = h
    if len(keep) > 1 and fmax - keep[-1] < 0.5 * h_last:
        keep.pop()  # a mode right at FMAX: FMAX itself is its point
    keep.append(fmax)
    return np.array(keep)


def _spread(aux, phi, anchors):
    """Points evenly spaced in ``phi`` (the integral of 1 / spacing) between consecutive anchors."""
    pa = np.interp(anchors, aux, phi)
    out = [anchors]
    for a, b in zip(pa[:-1], pa[1:]):
        n = math.ceil((b - a) * (1 - 1e-9))
        if n > 1:
            out.append(np.interp(a + (b - a) * np.arange(1, n) / n, phi, aux))
    return np.unique(np.concatenate(out))


# ---------------------------------------------------------------------------
# the modes
# ---------------------------------------------------------------------------
def modal_bands(system, fmin_hz, fmax_hz) -> Modes:
    """Natural frequencies and loss factors of the modes of ``system`` in [fmin_hz, fmax_hz].

    Small systems (up to 500 DOF) get every mode from a dense ``eigh``. Larger ones
    are sliced with shift-invert Lanczos from ``fmin_hz`` up, until the modes overlap
    (more than two per half-power band in a slice): above that, the peaks of single
    modes are no longer distinct and :attr:`Modes.overlap_from_hz` says so.

    Parameters
    ----------
    system : System
        ``K``, ``M`` (the undamped modes), ``C`` and ``g`` (the loss factors).
    fmin_hz, fmax_hz : float
        The band, ``0 <= fmin_hz < fmax_hz``.

    Returns
    -------
    Modes
        ``freqs_hz`` (rounded to 9 significant digits, so a rerun gives the same
        grid), ``loss_factors = g + phi^T C phi / omega`` (``phi`` mass-normalised)
        and where the modes start to overlap.

    Raises
    ------
    TypeError
        If ``system`` is not a :class:`~femfreq.system.System`.
    ValueError
        For a bad band.
    """
    if not isinstance(system, System):
        raise TypeError(f"system must be a femfreq System (got {type(system).__name__})")
    fmin = v.as_float("fmin_hz", fmin_hz, nonneg=True)
    fmax = v.positive_float("fmax_hz", fmax_hz)
    if not fmax > fmin:
        raise ValueError(f"fmax_hz {fmax:g} must be above fmin_hz {fmin:g}")
    lam_lo, lam_hi = (2 * np.pi * fmin) ** 2, (2 * np.pi * fmax) ** 2
    damped = system.C.nnz > 0 and bool(np.any(system.c_values != 0))
    overlap_from = math.inf
    if system.n <= _DENSE_MAX_N:
        lam, c_modal = _dense_modes(system, lam_lo, lam_hi, damped)
    else:
        lam, c_modal, overlap_from = _sliced_modes(system, lam_lo, lam_hi, damped)
    eta = _loss_factors(system.g, lam, c_modal)
    freqs = np.array([float(f"{f:.{_DIGITS}g}") for f in np.sqrt(np.maximum(lam, 0.0)) / (2 * np.pi)])
    keep = freqs > 0
    from .system import fitted_damping  # C ~ alpha M + beta K

    alpha, beta = fitted_damping(system) if damped else (0.0, 0.0)
    return Modes(freqs_hz=freqs[keep], loss_factors=eta[keep], overlap_from_hz=overlap_from,
                 overlap_damping=(system.g, max(alpha, 0.0), max(beta, 0.0)))


def _loss_factors(g, lam, c_modal):
    """``g + c_k / omega_k`` (>= 0; ``g`` alone at omega = 0)."""
    omega = np.sqrt(np.maximum(lam, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = g + np.where(omega > 0, c_modal / np.where(omega > 0, omega, 1.0), 0.0)
    return np.maximum(eta, 0.0)


def _dense_modes(system, lam_lo, lam_hi, damped):
    """Eigenvalues in [lam_lo, lam_hi] and modal damping ``phi^T C phi`` from dense ``eigh``."""
    import scipy.linalg as sla

    K, M = system.K.toarray(), system.M.toarray()
    try:  # all of them: faster than a subset by value (which bisects)
        out = sla.eigh(K, M, eigvals_only=not damped)
    except (np.linalg.LinAlgError, ValueError):  # M not positive definite: the sparse path copes
        lam, c, _ = _sliced_modes(system, lam_lo, lam_hi, damped, stop_at_overlap=False)
        return lam, c
    lam, phi = (out, None) if not damped else out
    keep = (lam >= lam_lo) & (lam <= lam_hi)
    return lam[keep], (np.zeros(int(keep.sum())) if phi is None else _modal_damping(system, phi[:, keep], damped))


def _modal_damping(system, phi, damped):
    """``phi_k^T C phi_k`` for M-normalised columns of ``phi`` (zeros without C)."""
    if not damped or phi.shape[1] == 0:
        return np.zeros(phi.shape[1])
    mnorm = np.einsum("ij,ij->j", phi, system.M @ phi)
    return np.einsum("ij,ij->j", phi, system.C @ phi) / mnorm


def _sliced_modes(system, lam_lo, lam_hi, damped, *, per_slice=24, stop_at_overlap=True):
    """``(lam, c_modal, overlap_from_hz)`` by shift-invert Lanczos, one slice of the spectrum at a time.

    ``eigsh`` at shift ``s`` finds the ``k`` eigenvalues nearest ``s``: every eigenvalue
    within their largest distance ``r`` of ``s`` is among them, so ``[s, s + r)`` is
    complete and the next slice starts there. (A repeated eigenvalue may be found once:
    the grid needs its frequency, not its multiplicity.)
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    from .solvers.fast.factors import shifted_factors

    n = system.n
    k = int(min(per_slice, n - 2))
    if k < 1:
        raise ValueError(f"a system of {n} DOF is too small for the sliced eigensolver")
    lams, cs = [], []
    edge, overlap_from = lam_lo, math.inf
    v0 = np.random.default_rng(0).standard_normal(n)  # deterministic: a rerun gets the same grid
    with shifted_factors(system) as factors:
        while edge < lam_hi:
            sigma = edge if edge > 0 else -max(lam_hi, 1.0) * 1e-6  # K may be singular (free body)
            op = LinearOperator((n, n), matvec=factors.factor(sigma).solve, dtype=np.float64)
            lam, phi = eigsh(system.K, k, system.M, sigma=sigma, which="LM", OPinv=op, v0=v0, tol=1e-10)
            top = sigma + float(np.max(np.abs(lam - sigma)))
            new = (lam >= edge) & (lam < top)
            # the next slice starts halfway to the first eigenvalue not taken: a shift
            # never sits on an eigenvalue (K - s M singular)
            nxt = 0.5 * (float(lam[new].max()) + top) if new.any() else top
            new &= lam <= lam_hi
            lams.append(lam[new])
            cs.append(_modal_damping(system, phi[:, new], damped))
            if stop_at_overlap and _overlapping(system.g, edge, min(nxt, lam_hi), lams[-1], cs[-1]):
                overlap_from = math.sqrt(nxt) / (2 * np.pi)
                break
            edge = max(nxt, np.nextafter(edge, np.inf))
    lam = np.concatenate(lams)
    order = np.argsort(lam)
    return lam[order], np.concatenate(cs)[order], overlap_from


def _overlapping(g, lam_lo, lam_hi, lam, c_modal):
    """True if a slice holds more than two modes per half-power band (modal overlap > 2)."""
    if lam.size < 4:
        return False
    f_lo, f_hi = (math.sqrt(max(x, 0.0)) / (2 * np.pi) for x in (lam_lo, lam_hi))
    f = np.sqrt(lam) / (2 * np.pi)
    spacing = (f_hi - f_lo) / lam.size
    return spacing < 0.5 * float(np.median(_loss_factors(g, lam, c_modal) * f))
