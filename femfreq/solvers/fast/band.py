"""The certified fast sweep over one band of frequencies: :func:`solve_band`.

The band is split into (sub-)bands of one reduced model each (:mod:`.reduced`:
build, certify); a sub-band whose basis fills up is bisected; what no reduced
model certifies falls back to a direct solve here.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ... import _validate as v
from ...codes import Method
from ...errors import SingularMatrixError
from ...system import System, proportional_damping
from .. import get_solver
from .factors import FACTOR_BACKENDS, shifted_factors
from .reduced import ReducedPass, Settings
from .response import FactoredResponse

__all__ = ["BandResult", "solve_band"]

log = logging.getLogger(__name__)


@dataclass
class BandResult:
    """What :func:`solve_band` returns for ``k`` frequencies.

    Attributes
    ----------
    response : (k, n_out) complex array or FactoredResponse
        Solution at ``system.output_dofs`` (a :class:`FactoredResponse`, the same
        after ``toarray()``, from ``solve_band(..., factored=True)``).
    rel_residual : (k,) float array
        Certified relative residual ``||A x - P b|| / ||P b||`` of the full system.
    backward_error : (k,) float array
        ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.
    method : (k,) int8 array
        2 = fast (reduced model), 1 = direct fallback, 3 = skipped: ``A(omega)``
        singular (only with ``skip_singular=True``); the :class:`femfreq.codes.Method` codes.
    info : dict
        ``basis_size`` (largest basis), ``basis_sizes`` (one per (sub-)band basis),
        ``shifts_hz`` (the real shifts as frequencies; negative for a shift below
        0), ``n_fallback``, ``n_factorizations``, ``n_bands``, ``seconds`` and
        ``timings`` per phase, ``factor`` (backend of the real factorizations),
        ``fast_residual (k,)`` (certified residual of the reduced solution, also
        where it was rejected), ``explicit_checks`` (frequency, certified,
        explicit residual) triples, ``proportional_damping``, ``ordering`` (what ordered
        the real factorizations: ``"model nodes"``, the System's node ordering, or
        ``"metis"``, PARDISO's own; None with SuperLU).
    """

    response: np.ndarray
    rel_residual: np.ndarray
    backward_error: np.ndarray
    method: np.ndarray
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# the sweep over one band
# ---------------------------------------------------------------------------
def _check_inputs(system, freqs_hz, load, tol, max_basis, shifts, factor):
    """Checked ``(f, P, tol, max_basis, shifts as rad^2/s^2 or None)``."""
    if not isinstance(system, System):
        raise TypeError(f"system must be a femfreq.System (got {type(system).__name__})")
    f = v.frequencies(freqs_hz)
    if f.size == 0:
        raise ValueError("freqs_hz must not be empty")
    P = v.load_spectrum(load, f.size)
    tol = v.as_float("tol", tol)
    if not (0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1) (got {tol})")
    max_basis = 400 if max_basis is None else v.as_int("max_basis", max_basis, minimum=1)
    if shifts is not None:
        sh = np.atleast_1d(np.asarray(shifts, dtype=float))
        if sh.ndim != 1 or not np.all(np.isfinite(sh)):
            raise ValueError(f"shifts must be a 1-D list of finite frequencies in Hz (got {shifts})")
        shifts = [float(np.sign(x) * (2 * np.pi * x) ** 2) for x in sh]
    v.one_of("factor backend", factor, FACTOR_BACKENDS)
    return f, P, tol, max_basis, shifts


def solve_band(system, freqs_hz, load, *, tol=1e-6, max_basis=None, shifts=None,
               direct_solver="auto", enlarge=True, max_shifts=8, step=None, factor="auto",
               n_checks=2, skip_singular=False, split_depth=3, factored=False):
    """Solve a band of frequencies on a certified reduced model.

    Builds a basis from real shift-invert Krylov sequences of ``(K, M)`` started
    from ``b``, solves the Galerkin-projected system at every frequency and
    certifies each solution with its true full-system relative residual (computed
    exactly from a QR factor of ``[b, K V, M V, C V]``). The basis is enlarged
    (more vectors, then new shifts at the worst frequency) until every frequency
    meets ``tol``; frequencies that still fail are solved directly.

    Parameters
    ----------
    system : System
        The discrete system (K, C, M, b, g, output DOF). ``K``, ``C`` and ``M`` are
        used as symmetric (``C`` need not be proportional).
    freqs_hz : (k,) array of float
        Frequencies in Hz, >= 0, any order.
    load : (k,) complex array or scalar
        Load spectrum ``P(omega)`` at each frequency (ones for an FRF).
    tol : float, optional
        Relative residual ``||A x - P b|| / ||P b||`` every frequency must meet
        (default 1e-6; down to ~1e-11 is practical).
    max_basis : int, optional
        Largest basis per (sub-)band (default 400; capped at ``(n - 1) / 2``, or
        ``(n - 1) / 3`` for non-proportional ``C``). Memory is about ``24 m n``
        bytes for a basis of ``m`` vectors and its QR factor (``32 m n`` for
        non-proportional ``C``).
    shifts : sequence of float, optional
        Initial real shifts as frequencies in Hz (shift ``(2 pi f)^2``). Default:
        one shift placed for the middle of the band, more added where needed.
    direct_solver : str, optional
        Name passed to :func:`femfreq.solvers.get_solver` for the fallback.
    enlarge : bool, optional
        If False the basis is built once (initial shifts, ``step`` vectors) and not
        enlarged: what fails goes to the direct solver.
    max_shifts : int, optional
        Most factorizations (shifts) for this band (default 8).
    step : int, optional
        Vectors added between certifications (default adaptive: a sixth of the
        basis, 8 to 32).
    factor : {"auto", "pardiso", "superlu"}, optional
        Backend for the real symmetric factorizations of ``K - s M``.
    n_checks : int, optional
        Fast frequencies cross-checked with an explicit O(nnz) residual (default 2).
    split_depth : int, optional
        A band whose basis fills up (``max_basis`` or ``max_shifts``) with
        frequencies still failing is bisected, each half getting its own basis,
        at most this many times (default 3); what still fails is solved directly.
    skip_singular : bool, optional
        If True a singular ``A(omega)`` (e.g. 0 Hz with a free structure) is
        reported as skipped (method 3, NaN response and residuals) with a
        warning instead of raising.
    factored : bool, optional
        If True, ``response`` is a :class:`FactoredResponse`: the bases at the output
        DOF and the reduced solutions, whose ``toarray()`` is the dense response. It
        is a few MB where the dense array is ``16 k n_out`` bytes (what a dask task
        sends back; default False).

    Returns
    -------
    BandResult
        ``response (k, n_out)``, ``rel_residual (k,)``, ``backward_error (k,)``,
        ``method (k,) int8`` (2 fast, 1 direct, 3 skipped) and ``info``.

    Raises
    ------
    TypeError
        If ``system`` is not a :class:`~femfreq.system.System`.
    ValueError
        For bad frequencies, loads, ``tol`` or ``max_basis``; if ``A(omega)`` is
        singular at a frequency the fallback must solve (unless ``skip_singular``).

    Warns
    -----
    RuntimeWarning
        If a returned frequency's residual is above ``tol`` (the recorded residual
        says so too).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from femfreq.system import System
    >>> n = 200
    >>> K = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) * 1e4
    >>> s = System(K=K, C=1e-3 * K, M=sp.eye(n), b=np.eye(n)[0])
    >>> r = solve_band(s, np.linspace(0, 20, 41), np.ones(41))
    >>> bool(r.rel_residual.max() <= 1e-6)
    True
    """
    t0 = time.perf_counter()
    f, P, tol, max_basis, shifts = _check_inputs(system, freqs_hz, load, tol, max_basis, shifts, factor)
    n, k = system.n, f.size
    prop = proportional_damping(system)
    # Z = [b, K V, M V, (C V)] must keep fewer columns than n for its thin QR
    max_basis = int(max(1, min(max_basis, (n - 1) // (2 if prop is not None else 3))))
    cfg = Settings(tol=tol, max_basis=max_basis, prop=prop, enlarge=enlarge, max_shifts=max_shifts,
                   step=step, n_checks=n_checks)
    timings = {"factor": 0.0, "krylov": 0.0, "certify": 0.0, "direct": 0.0}
    info = {"basis_size": 0, "basis_sizes": [], "shifts_hz": [], "n_fallback": 0, "n_factorizations": 0,
            "factor": None, "explicit_checks": [], "proportional_damping": prop is not None,
            "n_explicit": 0}
    out = _Outputs(k, system.output_dofs.size)
    Pb_norm = np.abs(P) * np.linalg.norm(system.b)
    zero_rhs = Pb_norm == 0
    # zero load: x = 0 exactly
    out.method[zero_rhs] = Method.FAST
    out.rel[zero_rhs] = 0.0
    out.fast_res[zero_rhs] = 0.0
    # one symbolic analysis for every shift of every sub-band, kept for the next call on this system
    with shifted_factors(system, factor) as factors:
        direct = _solve_bands(system, f, P, np.flatnonzero(~zero_rhs), shifts, cfg, factors, split_depth,
                              timings, out, info)
        info["ordering"] = factors.ordering
    td = time.perf_counter()
    _fall_back(system, f, P, sorted(direct), out, direct_solver, skip_singular)
    timings["direct"] = time.perf_counter() - td
    bwd = _backward_errors(system, 2 * np.pi * f, Pb_norm, out)
    _warn_above_tol(f, tol, out)
    info.update(
        fast_residual=out.fast_res,
        basis_size=max(info["basis_sizes"], default=0),
        n_fallback=int((out.method == Method.DIRECT).sum()),
        n_bands=len(info["basis_sizes"]),
        seconds=time.perf_counter() - t0,
        timings=timings,
    )
    log.info("fast band %.4g..%.4g Hz: bases %s, %d shifts, %d fallbacks, %.2f s",
             f.min(), f.max(), info["basis_sizes"], info["n_factorizations"], info["n_fallback"],
             info["seconds"])
    return BandResult(response=out.response if factored else out.response.toarray(), rel_residual=out.rel,
                      backward_error=bwd, method=out.method, info=info)


class _Outputs:
    """The per-frequency arrays :func:`solve_band` fills."""

    def __init__(self, k, n_out):
        self.response = FactoredResponse((k, n_out))  # made dense at the end unless asked for as it is
        self.rel = np.full(k, np.inf)
        self.xnorm = np.zeros(k)
        self.fast_res = np.full(k, np.inf)
        self.method = np.zeros(k, dtype=np.int8)


def _solve_bands(system, f, P, idx, shifts, cfg, factors, split_depth, timings, out, info):
    """Certify the (sub-)bands one basis each; fill ``out``; return the frequencies left for direct solves.

    A band whose basis fills up is bisected, at most ``split_depth`` times.
    """
    bands = [(idx, 0, shifts)]
    direct = []
    while bands:
        idx, depth, band_shifts = bands.pop()
        if not idx.size:
            continue
        one = ReducedPass(system, f[idx], P[idx], cfg, band_shifts, timings)
        one.build(factors)
        res = one.certify()
        ok = res.ok
        if res.basis_rows is not None:
            out.response.add(idx[ok], res.basis_rows, res.y[:, ok])
        out.rel[idx[ok]] = res.rel[ok]
        out.xnorm[idx[ok]] = res.xnorm[ok]
        out.method[idx[ok]] = Method.FAST
        out.fast_res[idx] = np.minimum(out.fast_res[idx], res.fast_residual)
        info["basis_sizes"].append(res.basis_size)
        info["shifts_hz"] += [float(np.sign(s) * np.sqrt(abs(s)) / (2 * np.pi)) for s in res.shifts]
        info["n_factorizations"] += res.n_factorizations
        info["factor"] = res.factor or info["factor"]
        info["explicit_checks"] += res.explicit_checks
        info["n_explicit"] += res.n_explicit
        fail = idx[~ok]
        if cfg.enlarge and res.exhausted and depth < split_depth and fail.size >= 2:
            fail = fail[np.argsort(f[fail], kind="stable")]
            half = fail.size // 2
            bands += [(fail[:half], depth + 1, None), (fail[half:], depth + 1, None)]
        else:
            direct += list(fail)
    return direct


def _fall_back(system, f, P, direct, out, direct_solver, skip_singular):
    """Direct solves where no reduced model was certified (singular ones skipped on request)."""
    omegas = 2 * np.pi * f
    for i in direct:
        try:
            x = np.asarray(get_solver(system, direct_solver).solve(omegas[i], P[i] * system.b))
        except SingularMatrixError as exc:
            if not skip_singular:
                raise
            warnings.warn(f"skipping {f[i]:.6g} Hz: {exc}", RuntimeWarning, stacklevel=3)
            out.response.set_row(i, np.full(system.output_dofs.size, np.nan))
            out.rel[i] = np.nan
            out.method[i] = Method.SKIPPED
            continue
        out.response.set_row(i, x[system.output_dofs])
        out.rel[i], _ = system.residuals(omegas[i], x, P[i])
        out.xnorm[i] = np.linalg.norm(x)
        out.method[i] = Method.DIRECT


def _backward_errors(system, omegas, Pb_norm, out):
    """``||A x - P b|| / (||A||_F ||x|| + ||P b||)`` per frequency (NaN where skipped)."""
    nA = system.frobenius_norm(omegas)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = nA * out.xnorm + Pb_norm
        bwd = np.where(den > 0, out.rel * Pb_norm / np.where(den > 0, den, 1), 0.0)
    bwd[out.method == Method.SKIPPED] = np.nan
    return bwd


def _warn_above_tol(f, tol, out):
    above = (out.rel > tol) & (out.method != Method.SKIPPED)
    if above.any():
        i = int(np.flatnonzero(above)[np.argmax(out.rel[above])])
        warnings.warn(
            f"{int(above.sum())} of {f.size} frequencies are above tol={tol:g} "
            f"(worst {out.rel[i]:.3g} at {f[i]:.6g} Hz, direct solve)",
            RuntimeWarning, stacklevel=3,
        )
