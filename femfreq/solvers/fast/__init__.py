"""Certified fast frequency sweep: shift-invert Krylov projection with exact residuals.

For a band of frequencies the solutions of

    A(omega) x = P(omega) b,    A(omega) = (1 + i g) K + i omega C - omega^2 M

are sought in a subspace ``V`` (n x m, m << n) built from real shift-invert Krylov
sequences of the undamped pencil, ``(K - s_j M)^-1 M`` started from
``(K - s_j M)^-1 b``, at one or more real shifts ``s_j`` (rad^2/s^2). Each shift costs
one *real* symmetric factorization; each basis vector one solve with it. The reduced
(Galerkin) system ``V^T A(omega) V y = P V^T b`` is diagonalised once per basis
(generalised eigenproblem of ``(V^T K V, V^T M V)``) so every frequency costs O(m)
(proportional damping) or one small dense solve (general ``C``).

Certification. The residual ``r = A V y - P b`` lies in the span of the columns of
``Z = [b, K V, M V, (C V)]``. A thin QR factorization ``Z = U R`` is maintained as
the basis grows, so ``||r|| = ||R c(omega)||`` with a short coefficient vector
``c``: the *true* full-system residual at O(m^2) per frequency, accurate to
``eps * sum |terms|`` (no squaring, unlike the Gram formula ``y^H G y - ...``,
which loses half the digits). A few frequencies are cross-checked with an explicit
O(nnz) residual. The basis grows (more Krylov vectors, then a new shift at the worst
frequency) until every frequency meets ``tol``; what still fails is solved directly.

All shifts share one ordering and symbolic analysis of the pattern of ``K + M``
(kept per process for the next call on the same system, :func:`free_factor_cache`).
For light damping, sweeps are cut into sub-bands of equal mode count
(:func:`band_chunks`, :func:`mode_weights`), estimated with Sturm counts
(:func:`count_modes`: the inertia of ``K - s M``).

See ``docs/fast_sweep.md`` for the design and its measurements.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ...system import System
from ...errors import SingularMatrixError
from ..base import get_solver

__all__ = ["BandResult", "band_chunks", "count_modes", "free_factor_cache", "mode_weights", "solve_band"]

log = logging.getLogger(__name__)

_EPS = np.finfo(float).eps
METHOD_DIRECT = 1
METHOD_FAST = 2
METHOD_SKIPPED = 3


@dataclass
class BandResult:
    """What :func:`solve_band` returns for ``k`` frequencies.

    Attributes
    ----------
    response : (k, n_out) complex array
        Solution at ``system.output_dofs``.
    rel_residual : (k,) float array
        Certified relative residual ``||A x - P b|| / ||P b||`` of the full system.
    backward_error : (k,) float array
        ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.
    method : (k,) int8 array
        2 = fast (reduced model), 1 = direct fallback, 3 = skipped: ``A(omega)``
        singular (only with ``skip_singular=True``; as ``femfreq.sweep.METHOD_CODES``).
    info : dict
        ``basis_size`` (largest basis), ``basis_sizes`` (one per (sub-)band basis),
        ``shifts_hz`` (the real shifts as frequencies; negative for a shift below
        0), ``n_fallback``, ``n_factorizations``, ``n_bands``, ``seconds`` and
        ``timings`` per phase, ``factor`` (backend of the real factorizations),
        ``fast_residual (k,)`` (certified residual of the reduced solution, also
        where it was rejected), ``explicit_checks`` (frequency, certified,
        explicit residual) triples, ``proportional_damping``.
    """

    response: np.ndarray
    rel_residual: np.ndarray
    backward_error: np.ndarray
    method: np.ndarray
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# real symmetric factorization of K - s M
# ---------------------------------------------------------------------------
def _mkl_rt():
    """The MKL runtime library, or None."""
    for name in (os.path.join(sys.prefix, "lib", "libmkl_rt.so.3"), "libmkl_rt.so.3",
                 "libmkl_rt.so.2", "libmkl_rt.so", "mkl_rt.2.dll", "mkl_rt.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class _PardisoRealSym:
    """MKL PARDISO for a real symmetric indefinite matrix (mtype -2), factor once, solve many."""

    name = "pardiso-real-symmetric"

    def __init__(self, lib, A, triu=None):
        self._lib = lib
        if triu is None:
            A = sp.csr_matrix(sp.triu(A, format="csr") + sp.diags(np.zeros(A.shape[0]), format="csr"))
            A.sum_duplicates()
            A.sort_indices()
            triu = (A.indptr, A.indices, A.data)
        indptr, indices, data = triu  # upper triangle, sorted, full diagonal
        self.n = indptr.size - 1
        self._a = np.array(data, dtype=np.float64)
        self._ia = np.ascontiguousarray(indptr, dtype=np.int32)
        self._ja = np.ascontiguousarray(indices, dtype=np.int32)
        self._pt = np.zeros(64, dtype=np.int64)
        self._iparm = np.zeros(64, dtype=np.int32)
        self._mtype = ctypes.c_int32(-2)
        lib.pardisoinit(self._pt.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self._mtype),
                        self._iparm.ctypes.data_as(ctypes.c_void_p))
        self._iparm[0] = 1
        self._iparm[1] = 2  # nested dissection (METIS)
        self._iparm[7] = 0  # no iterative refinement: any basis vector will do, the certificate checks
        self._iparm[23] = 1  # two-level parallel factorization (faster also on one thread here)
        self._iparm[34] = 1  # zero-based indices
        self._alive = True
        self._call(12, np.zeros(1), np.zeros(1), nrhs=1)
        self.perturbed_pivots = int(self._iparm[13])
        self.n_negative = int(self._iparm[22])  # inertia: number of negative eigenvalues

    def _call(self, phase, b, x, nrhs):
        i32 = ctypes.c_int32
        err = i32(0)
        self._lib.pardiso(
            self._pt.ctypes.data_as(ctypes.c_void_p), ctypes.byref(i32(1)), ctypes.byref(i32(1)),
            ctypes.byref(self._mtype), ctypes.byref(i32(phase)), ctypes.byref(i32(self.n)),
            self._a.ctypes.data_as(ctypes.c_void_p), self._ia.ctypes.data_as(ctypes.c_void_p),
            self._ja.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(None), ctypes.byref(i32(nrhs)),
            self._iparm.ctypes.data_as(ctypes.c_void_p), ctypes.byref(i32(0)),
            b.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(err),
        )
        if err.value != 0:
            raise RuntimeError(f"PARDISO (mtype -2) phase {phase} failed with error {err.value}")

    def refactor(self, data):
        """New values on the same pattern: numerical factorization only (analysis reused)."""
        self._a[:] = data
        self._call(22, np.zeros(1), np.zeros(1), nrhs=1)
        self.perturbed_pivots = int(self._iparm[13])
        self.n_negative = int(self._iparm[22])

    def solve(self, rhs):
        rhs = np.asarray(rhs, dtype=np.float64)
        b = np.asfortranarray(rhs)
        x = np.zeros_like(b, order="F")
        self._call(33, b, x, nrhs=1 if b.ndim == 1 else b.shape[1])
        return x

    def close(self):
        if self._alive:
            self._alive = False
            try:
                self._call(-1, np.zeros(1), np.zeros(1), nrhs=1)
            except RuntimeError:  # pragma: no cover - release never fails in practice
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class _SuperLUReal:
    """scipy SuperLU on the real matrix (symmetric mode, minimum degree on A + A^T)."""

    name = "superlu-real"

    def __init__(self, A):
        self._lu = spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                             options={"SymmetricMode": True})
        self.perturbed_pivots = 0
        self.n_negative = None  # SuperLU does not report the inertia

    def solve(self, rhs):
        return self._lu.solve(np.asarray(rhs, dtype=np.float64))

    def close(self):
        self._lu = None


class _ShiftedFactors:
    """Factorizations of ``K - s M`` for successive real shifts ``s``.

    With PARDISO the ordering and symbolic analysis (pattern of ``K + M``) is done
    once and every further shift costs a numerical factorization only (phase 22);
    the one factorization is overwritten in place. SuperLU factors afresh.
    Use :meth:`factor` (the previous factorization becomes invalid) and :meth:`close`.
    """

    def __init__(self, system, backend="auto"):
        if backend not in ("auto", "pardiso", "superlu"):
            raise ValueError(f"unknown factor backend {backend!r}; pick one of ['auto', 'pardiso', 'superlu']")
        self.system = system
        self._lib = _mkl_rt() if backend in ("auto", "pardiso") else None
        if backend == "pardiso" and self._lib is None:
            raise ValueError("factor='pardiso' needs the MKL runtime (libmkl_rt), which is not loadable")
        self._pd = None
        self._F = None
        self.name = _PardisoRealSym.name if self._lib is not None else _SuperLUReal.name

    def _pattern(self):
        """Upper-triangle pattern of K + M (full diagonal) and K, M values on it."""
        K, M = self.system.K, self.system.M
        n = K.shape[0]
        P = sp.triu(abs(K) + abs(M) + sp.eye(n, format="csr"), format="csr")
        P.sum_duplicates()
        P.sort_indices()
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(P.indptr))
        keys = rows * n + P.indices
        vals = []
        for A in (K, M):
            T = sp.triu(A, format="coo")
            v = np.zeros(keys.size)
            np.add.at(v, np.searchsorted(keys, T.row.astype(np.int64) * n + T.col), T.data)
            vals.append(v)
        return P.indptr, P.indices, vals[0], vals[1]

    def factor(self, s):
        """The factorization of ``K - s M`` (object with ``solve``, ``n_negative``)."""
        if self._lib is None:
            if self._F is not None:
                self._F.close()
            self._F = _SuperLUReal(self.system.K - s * self.system.M)
            return self._F
        if self._pd is None:
            indptr, indices, self._kv, self._mv = self._pattern()
            self._pd = _PardisoRealSym(self._lib, None, triu=(indptr, indices, self._kv - s * self._mv))
        else:
            self._pd.refactor(self._kv - s * self._mv)
        return self._pd

    def close(self):
        if self._pd is not None:
            self._pd.close()
            self._pd = None
        if self._F is not None:
            self._F.close()
            self._F = None


_CACHE_LOCK = threading.Lock()
_CACHE = {"system": None, "backend": None, "factors": None}


def _cached_factors(system, backend):
    """``(factors, release)`` for ``system``: the process's cached analysis when free, else a private one.

    A worker process solving many sub-bands of one model pays the PARDISO ordering
    and symbolic analysis once (~3.6 s of 4.7 s per fresh factorization at level 7).
    The cache holds one system (a weak reference) and its last factorization; a
    concurrent call (threaded worker) gets private factors, closed after use.
    :func:`free_factor_cache` releases the memory.
    """
    if backend == "superlu" or not _CACHE_LOCK.acquire(blocking=False):
        private = _ShiftedFactors(system, backend)  # SuperLU has no analysis to keep
        return private, private.close
    try:
        ref = _CACHE["system"]
        if ref is None or ref() is not system or _CACHE["backend"] != backend:
            if _CACHE["factors"] is not None:
                _CACHE["factors"].close()
            _CACHE.update(system=None, backend=None, factors=None)
            factors = _ShiftedFactors(system, backend)
            if factors._lib is None:  # no MKL: nothing worth keeping
                _CACHE_LOCK.release()
                return factors, factors.close
            _CACHE.update(system=weakref.ref(system), backend=backend, factors=factors)
    except BaseException:
        _CACHE_LOCK.release()
        raise
    return _CACHE["factors"], _CACHE_LOCK.release


def free_factor_cache():
    """Release the factorization kept by :func:`solve_band` for the next call on the same system."""
    with _CACHE_LOCK:
        if _CACHE["factors"] is not None:
            _CACHE["factors"].close()
        _CACHE.update(system=None, backend=None, factors=None)


atexit.register(free_factor_cache)


def _factor_real(A, backend="auto"):
    """Factor the real symmetric ``A`` with PARDISO (mtype -2) if MKL loads, else SuperLU."""
    if backend in ("auto", "pardiso"):
        lib = _mkl_rt()
        if lib is not None:
            return _PardisoRealSym(lib, A)
        if backend == "pardiso":
            raise ValueError("factor='pardiso' needs the MKL runtime (libmkl_rt), which is not loadable")
    if backend not in ("auto", "pardiso", "superlu"):
        raise ValueError(f"unknown factor backend {backend!r}; pick one of ['auto', 'pardiso', 'superlu']")
    return _SuperLUReal(A)


# ---------------------------------------------------------------------------
# mode counts (Sturm) and sub-bands of equal mode count
# ---------------------------------------------------------------------------
_DEFAULT_MODE_EXPONENT = 1.8  # N(f) ~ f^1.8 measured on the satellite (293 / 1031 below 1 / 2 kHz)


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
    lib = _mkl_rt()
    if lib is None:
        raise ValueError("count_modes needs the MKL runtime (libmkl_rt) for the inertia of K - s M")
    out = np.empty(f.size, dtype=np.int64)
    # the process's cached analysis (what solve_band uses, "auto" = PARDISO here): the
    # sub-bands solved next in this process (a dask worker) skip their analysis
    factors, release = _cached_factors(system, "auto")
    try:
        for i, fi in enumerate(f):
            out[i] = factors.factor((2 * np.pi * fi) ** 2).n_negative
    finally:
        release()
    return out


def _mode_exponent(system, top, counts, factor):
    """Exponent p of N(f) ~ f^p from Sturm counts at top and top / 2 (default 1.8)."""
    p = _DEFAULT_MODE_EXPONENT
    if counts and top > 0 and _mkl_rt() is not None:
        n_top, n_half = count_modes(system, [top, top / 2], factor=factor)
        if n_top > n_half > 0:
            p = float(np.clip(np.log2(n_top / n_half), 0.5, 4.0))
    return p


def mode_weights(system, freqs_hz, *, counts=True, factor="auto"):
    """Relative fast-sweep cost of each frequency: the modes per grid step, ``dN/df * df``.

    ``N(f) ~ f^p`` with ``p`` from two Sturm counts (see :func:`band_chunks`). Pass the
    result as ``weights`` to :func:`femfreq.execute.plan_chunks`.

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

    Returns
    -------
    (k,) float array
        Non-negative weights summing to 1 (uniform for a single frequency).

    Raises
    ------
    ValueError
        For non-finite frequencies.
    """
    f = np.abs(np.atleast_1d(np.asarray(freqs_hz, dtype=float)))
    if f.ndim != 1 or not np.all(np.isfinite(f)):
        raise ValueError(f"freqs_hz must be finite frequencies in Hz (got {freqs_hz!r})")
    if f.size < 2 or f.max() == 0:
        return np.full(f.size, 1.0 / max(f.size, 1))
    top = float(f.max())
    p = _mode_exponent(system, top, counts, factor)
    order = np.argsort(f, kind="stable")
    fs = f[order]
    # modes between the midpoints around each frequency, N(f) ~ f^p: finite at 0 Hz
    # for any p (the derivative p f^(p-1) is not when p < 1)
    edges = np.concatenate([fs[:1], (fs[1:] + fs[:-1]) / 2, fs[-1:]]) / top
    w = np.empty(f.size)
    w[order] = edges[1:] ** p - edges[:-1] ** p
    return w / w.sum() if w.sum() > 0 else np.full(f.size, 1.0 / f.size)


def band_chunks(system, freqs_hz, n_chunks, *, counts=True, factor="auto"):
    """Split a sweep into contiguous sub-bands holding about the same number of modes.

    A light-damping fast sweep costs roughly in proportion to the modes in a band (its
    basis must contain them), and the mode density grows with frequency, so bands of
    equal *width* are unbalanced. The mode count ``N(f)`` is fitted by a power law
    ``N = c f^p`` through Sturm counts (:func:`count_modes`) at the top frequency and
    half of it (two real factorizations), or ``p = 1.8`` without them (``counts=False``,
    or when MKL is absent). A small per-frequency term keeps mode-free bands finite.

    Parameters
    ----------
    system : System
        The model (``K``, ``M`` for the counts).
    freqs_hz : (k,) array_like
        Sweep frequencies in Hz, in any order.
    n_chunks : int
        Number of sub-bands (>= 1; fewer if there are fewer frequencies).
    counts : bool
        Use Sturm counts for the exponent (else the default exponent).
    factor : str
        Backend for the counts (see :func:`count_modes`).

    Returns
    -------
    list of int64 arrays
        Positions into ``freqs_hz``; each sub-band is a contiguous frequency range,
        listed from the highest band down (high bands have the largest tails; start them first).

    Raises
    ------
    ValueError
        For ``n_chunks < 1`` or non-finite frequencies.
    """
    f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    if f.ndim != 1 or not np.all(np.isfinite(f)):
        raise ValueError(f"freqs_hz must be finite frequencies in Hz (got {freqs_hz!r})")
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, (int, np.integer)) or n_chunks < 1:
        raise ValueError(f"n_chunks must be an integer >= 1 (got {n_chunks!r})")
    order = np.argsort(f, kind="stable")
    fs = np.abs(f[order])
    n_chunks = int(min(n_chunks, max(f.size, 1)))
    if f.size == 0:
        return []
    top = float(fs.max())
    p = _mode_exponent(system, top, counts, factor)
    # cumulative cost ~ N(f) / N(top) + a small per-frequency share
    cum = (fs / top) ** p if top > 0 else np.zeros_like(fs)
    cum = cum + 0.05 * np.arange(fs.size) / max(fs.size - 1, 1)
    edges = np.searchsorted(cum, np.linspace(0, cum[-1], n_chunks + 1)[1:-1], side="right")
    parts = [c for c in np.split(order, edges) if c.size]
    return parts[::-1]


# ---------------------------------------------------------------------------
# the reduced basis and its residual certificate
# ---------------------------------------------------------------------------
def _proportional(system):
    """(alpha, beta) if C = alpha M + beta K on the pattern to round-off, else None."""
    c, k, m = system.c_values, system.k_values, system.m_values
    cn = np.linalg.norm(c)
    if cn == 0:
        return 0.0, 0.0
    X = np.column_stack([m, k])
    coef, *_ = np.linalg.lstsq(X, c, rcond=None)
    if np.linalg.norm(X @ coef - c) <= 1e-12 * cn:
        return float(coef[0]), float(coef[1])
    return None


def _fit_damping(system):
    """Least-squares (alpha, beta) for C ~ alpha M + beta K: used only to place shifts."""
    prop = _proportional(system)
    if prop is not None:
        return prop
    X = np.column_stack([system.m_values, system.k_values])
    coef, *_ = np.linalg.lstsq(X, system.c_values, rcond=None)
    return float(coef[0]), float(coef[1])


class _Basis:
    """M-orthonormal basis V, reduced matrices, and the QR factor of Z = [b, K V, M V, (C V)]."""

    def __init__(self, system, capacity, proportional):
        n = system.n
        self.system = system
        self.prop = proportional
        self.general_c = proportional is None
        per = 3 if self.general_c else 2
        self.cap = capacity
        self.V = np.zeros((n, capacity), order="F")
        self.m = 0
        self.Kr = np.zeros((capacity, capacity))
        self.Mr = np.zeros((capacity, capacity))
        self.Cr = np.zeros((capacity, capacity)) if self.general_c else None
        self.Gv = np.zeros((capacity, capacity))  # V^T V, for ||x|| = ||V y||
        self.b = system.b
        dtype = complex if np.iscomplexobj(self.b) else float
        self.Vb = np.zeros(capacity, dtype=dtype)  # V^T b
        pz = 1 + per * capacity
        self.U = np.zeros((n, pz), dtype=dtype, order="F")
        self.R = np.zeros((pz, pz), dtype=dtype)
        self.p = 0
        # column of Z holding K v_j, M v_j, C v_j
        self.zk = np.zeros(capacity, dtype=np.int64)
        self.zm = np.zeros(capacity, dtype=np.int64)
        self.zc = np.zeros(capacity, dtype=np.int64)
        self._append_z(self.b.reshape(-1, 1))

    def _append_z(self, Znew):
        """Extend Z = U R by the columns Znew: CGS2 against U, Householder QR of the rest."""
        p, k = self.p, Znew.shape[1]
        U = self.U[:, :p]
        UH = U.T if self.U.dtype == float else U.conj().T  # no copy for real U
        Y = np.array(Znew, dtype=self.U.dtype, order="F")
        R12 = np.zeros((p, k), dtype=self.U.dtype)
        if p:
            for _pass in range(2):
                h = UH @ Y
                Y -= U @ h
                R12 += h
        Q, R22 = sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)
        if p:  # Q is orthogonal to U only to ~eps ||Znew|| / ||Y||: one more pass
            h = UH @ Q
            Q -= U @ h
            Q2, R3 = sla.qr(Q, mode="economic", overwrite_a=True, check_finite=False)
            R12 += h @ R22
            R22 = R3 @ R22
            Q = Q2
        self.U[:, p : p + k] = Q
        self.R[:p, p : p + k] = R12
        self.R[p : p + k, p : p + k] = R22
        self.p = p + k

    def orthonormalize(self, B):
        """M-orthonormalise the columns of B against V, then in order; returns (B, M B).

        Classical Gram-Schmidt against V (BLAS-3) and modified Gram-Schmidt inside
        the block, repeated until no column loses more than half its M-norm in a
        pass (DGKS criterion; at most 4 passes). A column reduced below 1e-9 of its
        M-norm is already in the basis and is dropped. The order is kept, so the
        last column carries the newest Krylov direction.
        """
        M = self.system.M
        MB = M @ B
        norms = np.sqrt(np.abs(np.einsum("ij,ij->j", B, MB)))
        ok = norms > 0
        B, MB, norms = B[:, ok], MB[:, ok], norms[ok]
        for _pass in range(4):
            if not B.shape[1]:
                break
            if self.m:
                V = self.V[:, : self.m]
                B = B - V @ (V.T @ MB)
            cols, mcols, new_norms, lost = [], [], [], False
            for j in range(B.shape[1]):
                w = B[:, j]
                for v, mv in zip(cols, mcols):
                    w = w - (mv @ w) * v
                mw = M @ w
                nrm = np.sqrt(abs(w @ mw))
                if not np.isfinite(nrm) or nrm <= 1e-9 * norms[j]:
                    continue
                lost |= nrm < 0.5 * norms[j]
                cols.append(w / nrm)
                mcols.append(mw / nrm)
            if not cols:
                B = B[:, :0]
                MB = B
                break
            B, MB = np.column_stack(cols), np.column_stack(mcols)
            norms = np.ones(B.shape[1])
            if not lost and _pass >= 1:
                break
        return B, MB

    def add_block(self, B, MB):
        """Append M-orthonormal columns B (M B = MB, both (n, q))."""
        s = self.system
        m, q = self.m, B.shape[1]
        self.V[:, m : m + q] = B
        self.Vb[m : m + q] = B.T @ self.b.real + (1j * (B.T @ self.b.imag) if self.Vb.dtype == complex else 0)
        V = self.V[:, : m + q]
        KB = s.K @ B
        self.Kr[: m + q, m : m + q] = V.T @ KB
        self.Mr[: m + q, m : m + q] = V.T @ MB
        self.Gv[: m + q, m : m + q] = V.T @ B
        for A in (self.Kr, self.Mr, self.Gv):
            A[m : m + q, : m] = A[: m, m : m + q].T
            blk = A[m : m + q, m : m + q]
            A[m : m + q, m : m + q] = 0.5 * (blk + blk.T)
        cols = [KB, MB]
        if self.general_c:
            CB = s.C @ B
            self.Cr[: m + q, m : m + q] = V.T @ CB
            self.Cr[m : m + q, : m] = self.Cr[: m, m : m + q].T
            blk = self.Cr[m : m + q, m : m + q]
            self.Cr[m : m + q, m : m + q] = 0.5 * (blk + blk.T)
            cols.append(CB)
        p = self.p
        self.zk[m : m + q] = p + np.arange(q)
        self.zm[m : m + q] = p + q + np.arange(q)
        if self.general_c:
            self.zc[m : m + q] = p + 2 * q + np.arange(q)
        self.m = m + q
        self._append_z(np.hstack(cols))

    def reduced_solutions(self, omegas, load):
        """Galerkin coefficients y (m, k): (V^T A(omega) V) y = P V^T b."""
        m = self.m
        Kr, Mr = self.Kr[:m, :m], self.Mr[:m, :m]
        Vb = self.Vb[:m]
        lam, Q = sla.eigh(Kr, Mr)  # Q^T Mr Q = I, Q^T Kr Q = diag(lam)
        g = self.system.g
        rhs = (Q.T @ Vb)[:, None] * load[None, :]  # (m, k)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if not self.general_c:
                alpha, beta = self.prop
                a = (1 + 1j * g) + 1j * omegas * beta  # coefficient of K
                c = -(omegas**2) + 1j * omegas * alpha  # coefficient of M
                z = rhs / (lam[:, None] * a[None, :] + c[None, :])
            else:
                Cq = Q.T @ self.Cr[:m, :m] @ Q
                z = np.empty((m, omegas.size), dtype=complex)
                eye = np.eye(m)
                for lo in range(0, omegas.size, 64):
                    w = omegas[lo : lo + 64]
                    D = ((1 + 1j * g) * np.diag(lam))[None] + (1j * w)[:, None, None] * Cq[None] \
                        - (w**2)[:, None, None] * eye[None]
                    try:
                        z[:, lo : lo + 64] = np.linalg.solve(D, rhs[:, lo : lo + 64].T[:, :, None])[:, :, 0].T
                    except np.linalg.LinAlgError:
                        for i in range(w.size):
                            try:
                                z[:, lo + i] = np.linalg.solve(D[i], rhs[:, lo + i])
                            except np.linalg.LinAlgError:
                                z[:, lo + i] = np.nan
        return Q @ z

    def coefficients(self, omegas, load, y):
        """c(omega) (p, k) such that the full residual is r = U R c."""
        m = self.m
        c = np.zeros((self.p, omegas.size), dtype=complex)
        c[0] = -load
        g = self.system.g
        if self.general_c:
            ak = np.full(omegas.size, 1 + 1j * g)
            am = -(omegas**2) + 0j
            c[self.zc[:m]] = (1j * omegas)[None, :] * y
        else:
            alpha, beta = self.prop
            ak = (1 + 1j * g) + 1j * omegas * beta
            am = -(omegas**2) + 1j * omegas * alpha
        c[self.zk[:m]] = ak[None, :] * y
        c[self.zm[:m]] = am[None, :] * y
        return c

    def certify(self, omegas, load, y):
        """(||r||, resolution of ||r||) per frequency from the QR factor, O(p^2) each."""
        c = self.coefficients(omegas, load, y)
        R = self.R[: self.p, : self.p]
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.linalg.norm(R @ c, axis=0)
            # rounding in Z = U R and in R c: a few eps times the size of the terms
            scale = np.linalg.norm(np.abs(R) @ np.abs(c), axis=0)
        res = 8 * _EPS * np.sqrt(self.p) * scale
        r[~np.isfinite(r)] = np.inf
        return r, res

    def x_norms(self, y):
        """||V y|| per column of y (m, k)."""
        m = self.m
        q = np.einsum("ik,ik->k", y.conj(), self.Gv[:m, :m] @ y).real
        return np.sqrt(np.maximum(q, 0.0))

    def outputs(self, y):
        """x[output_dofs] (k, n_out)."""
        Vo = self.V[self.system.output_dofs, : self.m]
        return (Vo @ y.real + 1j * (Vo @ y.imag)).T

    def full(self, y):
        """x = V y (n,) for one frequency (real V times the real and imaginary parts: no complex copy of V)."""
        V = self.V[:, : self.m]
        return V @ y.real + 1j * (V @ y.imag)


def _frobenius_norms(system, omegas):
    """||A(omega)||_F for every omega, O(1) each from sums over the pattern values."""
    k, c, m, g = system.k_values, system.c_values, system.m_values, system.g
    kk, mm, cc = k @ k, m @ m, c @ c
    km, kc, mc = k @ m, k @ c, m @ c
    w = omegas
    # |v|^2 = (k - w^2 m)^2 + (g k + w c)^2 summed over the pattern
    real = kk - 2 * w**2 * km + w**4 * mm
    imag = g * g * kk + 2 * g * w * kc + w**2 * cc
    return np.sqrt(np.maximum(real + imag, 0.0))


# ---------------------------------------------------------------------------
# the sweep over one band
# ---------------------------------------------------------------------------
def _check_inputs(system, freqs_hz, load, tol, max_basis):
    if not isinstance(system, System):
        raise TypeError(f"system must be a femfreq.System (got {type(system).__name__})")
    f = np.asarray(freqs_hz, dtype=float)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"freqs_hz must be a non-empty 1-D array (has shape {f.shape})")
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        bad = f[~(np.isfinite(f) & (f >= 0))][0]
        raise ValueError(f"freqs_hz must be finite and >= 0 (got {bad})")
    P = np.asarray(load, dtype=complex)
    if P.ndim == 0:
        P = np.full(f.size, complex(P))
    if P.shape != f.shape:
        raise ValueError(f"load must have shape {f.shape} like freqs_hz (has shape {P.shape})")
    if not np.all(np.isfinite(P)):
        raise ValueError(f"load has a non-finite value {P[~np.isfinite(P)][0]}")
    tol = float(tol)
    if not (0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1) (got {tol})")
    if max_basis is not None and (int(max_basis) != max_basis or max_basis < 1):
        raise ValueError(f"max_basis must be a positive integer (got {max_basis})")
    return f, P, tol


def solve_band(system, freqs_hz, load, *, tol=1e-6, max_basis=None, shifts=None,
               direct_solver="auto", enlarge=True, max_shifts=8, step=None, factor="auto",
               n_checks=2, skip_singular=False, split_depth=3):
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
        Name passed to :func:`femfreq.solvers.base.get_solver` for the fallback.
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
    f, P, tol = _check_inputs(system, freqs_hz, load, tol, max_basis)
    n, k = system.n, f.size
    omegas = 2 * np.pi * f
    if max_basis is None:
        max_basis = 400
    prop = _proportional(system)
    # Z = [b, K V, M V, (C V)] must keep fewer columns than n for its thin QR
    max_basis = int(max(1, min(max_basis, (n - 1) // (2 if prop is not None else 3))))
    if shifts is not None:
        sh = np.atleast_1d(np.asarray(shifts, dtype=float))
        if sh.ndim != 1 or not np.all(np.isfinite(sh)):
            raise ValueError(f"shifts must be a 1-D list of finite frequencies in Hz (got {shifts})")
        shifts = [float(np.sign(x) * (2 * np.pi * x) ** 2) for x in sh]
    if factor not in ("auto", "pardiso", "superlu"):
        raise ValueError(f"unknown factor backend {factor!r}; pick one of ['auto', 'pardiso', 'superlu']")
    split_depth = int(split_depth)

    timings = {"factor": 0.0, "krylov": 0.0, "certify": 0.0, "direct": 0.0}
    info = {"basis_size": 0, "basis_sizes": [], "shifts_hz": [], "n_fallback": 0, "n_factorizations": 0,
            "factor": None, "explicit_checks": [], "proportional_damping": prop is not None,
            "n_explicit": 0}
    Pb_norm = np.abs(P) * np.linalg.norm(system.b)
    zero_rhs = Pb_norm == 0
    response = np.zeros((k, system.output_dofs.size), dtype=complex)
    rel = np.full(k, np.inf)
    xnorm = np.zeros(k)
    fast_res = np.full(k, np.inf)
    method = np.zeros(k, dtype=np.int8)
    # zero load: x = 0 exactly
    method[zero_rhs] = METHOD_FAST
    rel[zero_rhs] = 0.0
    fast_res[zero_rhs] = 0.0

    # one basis per (sub-)band; a band whose basis fills up is bisected (split_depth times)
    bands = [(np.flatnonzero(~zero_rhs), 0, shifts)]
    direct = []
    # one symbolic analysis for every shift of every sub-band, kept for the next call on this system
    factors, release = _cached_factors(system, factor)
    try:
        _solve_bands(bands, direct, system, f, P, tol=tol, max_basis=max_basis, prop=prop, enlarge=enlarge,
                     max_shifts=max_shifts, step=step, factors=factors, n_checks=n_checks, timings=timings,
                     split_depth=split_depth, response=response, rel=rel, xnorm=xnorm, method=method,
                     fast_res=fast_res, info=info)
    finally:
        release()

    td = time.perf_counter()
    for i in sorted(direct):
        try:
            x = np.asarray(get_solver(system, direct_solver).solve(omegas[i], P[i] * system.b))
        except SingularMatrixError as exc:
            if not skip_singular:
                raise
            warnings.warn(f"skipping {f[i]:.6g} Hz: {exc}", RuntimeWarning, stacklevel=2)
            response[i] = np.nan
            rel[i] = np.nan
            method[i] = METHOD_SKIPPED
            continue
        response[i] = x[system.output_dofs]
        rel[i], _ = system.residuals(omegas[i], x, P[i])
        xnorm[i] = np.linalg.norm(x)
        method[i] = METHOD_DIRECT
    timings["direct"] = time.perf_counter() - td
    nA = _frobenius_norms(system, omegas)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = nA * xnorm + Pb_norm
        bwd = np.where(den > 0, rel * Pb_norm / np.where(den > 0, den, 1), 0.0)
    bwd[method == METHOD_SKIPPED] = np.nan
    above = (rel > tol) & (method != METHOD_SKIPPED)
    if above.any():
        i = int(np.flatnonzero(above)[np.argmax(rel[above])])
        warnings.warn(
            f"{int(above.sum())} of {k} frequencies are above tol={tol:g} "
            f"(worst {rel[i]:.3g} at {f[i]:.6g} Hz, direct solve)",
            RuntimeWarning, stacklevel=2,
        )
    info.update(
        fast_residual=fast_res,
        basis_size=max(info["basis_sizes"], default=0),
        n_fallback=int((method == METHOD_DIRECT).sum()),
        n_bands=len(info["basis_sizes"]),
        seconds=time.perf_counter() - t0,
        timings=timings,
    )
    log.info("fast band %.4g..%.4g Hz: bases %s, %d shifts, %d fallbacks, %.2f s",
             f.min(), f.max(), info["basis_sizes"], info["n_factorizations"], info["n_fallback"],
             info["seconds"])
    return BandResult(response=response, rel_residual=rel, backward_error=bwd, method=method, info=info)


def _solve_bands(bands, direct, system, f, P, *, tol, max_basis, prop, enlarge, max_shifts, step, factors,
                 n_checks, timings, split_depth, response, rel, xnorm, method, fast_res, info):
    """Certify the (sub-)bands in ``bands`` one basis each; fill the outputs; collect failures in ``direct``."""
    while bands:
        idx, depth, band_shifts = bands.pop()
        if not idx.size:
            continue
        out = _fast_pass(system, f[idx], P[idx], tol=tol, max_basis=max_basis, shifts=band_shifts,
                         prop=prop, enlarge=enlarge, max_shifts=max_shifts, step=step,
                         factors=factors, n_checks=n_checks, timings=timings)
        ok = out["ok"]
        response[idx[ok]] = out["response"][ok]
        rel[idx[ok]] = out["rel"][ok]
        xnorm[idx[ok]] = out["xnorm"][ok]
        method[idx[ok]] = METHOD_FAST
        fast_res[idx] = np.minimum(fast_res[idx], out["fast_residual"])
        info["basis_sizes"].append(out["basis_size"])
        info["shifts_hz"] += [float(np.sign(s) * np.sqrt(abs(s)) / (2 * np.pi)) for s in out["shifts"]]
        info["n_factorizations"] += out["n_factorizations"]
        info["factor"] = out["factor"] or info["factor"]
        info["explicit_checks"] += out["explicit_checks"]
        info["n_explicit"] += out["n_explicit"]
        fail = idx[~ok]
        if enlarge and out["exhausted"] and depth < split_depth and fail.size >= 2:
            fail = fail[np.argsort(f[fail], kind="stable")]
            half = fail.size // 2
            bands += [(fail[:half], depth + 1, None), (fail[half:], depth + 1, None)]
        else:
            direct += list(fail)


def _fast_pass(system, f, P, *, tol, max_basis, shifts, prop, enlarge, max_shifts, step, factors,
               n_checks, timings):
    """Build and certify one basis for the frequencies f (all with a non-zero load)."""
    k = f.size
    omegas = 2 * np.pi * f
    alpha_fit, beta_fit = _fit_damping(system) if prop is None else prop
    g = system.g
    # effective shifted-pencil point: A ~ a(w) (K - mu(w) M) for proportional damping
    mu = (omegas**2 - 1j * omegas * alpha_fit) / ((1 + 1j * g) + 1j * omegas * beta_fit)
    Pb_norm = np.abs(P) * np.linalg.norm(system.b)
    zero_rhs = Pb_norm == 0
    target = tol * Pb_norm

    def shift_for(i):
        s = float(mu[i].real)
        w_ref = omegas[omegas > 0].min() if np.any(omegas > 0) else 1.0
        if s <= 0.25 * w_ref**2:  # at/near 0: K + |s| M is SPD even for a PSD K
            s = -0.25 * w_ref**2
        return s

    if shifts is not None:
        queue = list(shifts)
    else:
        order = np.argsort(f)
        queue = [shift_for(order[k // 2])]

    basis = _Basis(system, max_basis, prop) if not np.all(zero_rhs) else None
    y = np.zeros((max_basis, k), dtype=complex)
    rnorm = np.full(k, np.inf)
    res = np.zeros(k)
    used_shifts = []
    n_fact = 0
    factor_name = None

    def evaluate(idx):
        """Reduced solutions and certificates at frequencies idx with the current basis.

        A frequency certified earlier keeps its solution: zero-padded, y is the same
        x = V y in the grown basis, and its certificate stays valid.
        """
        tc = time.perf_counter()
        if idx.size:
            m = basis.m
            y[:m, idx] = basis.reduced_solutions(omegas[idx], P[idx])
            y[m:, idx] = 0
            rnorm[idx], res[idx] = basis.certify(omegas[idx], P[idx], y[:m, idx])
        timings["certify"] += time.perf_counter() - tc

    def failing():
        """Frequencies not certified yet (small but unresolvable ones are checked explicitly later)."""
        return ~(rnorm <= target) & ~zero_rhs

    def worst_shift():
        ratio = np.where(failing(), rnorm / np.where(zero_rhs, 1, Pb_norm), -1)
        return shift_for(int(np.argmax(ratio)))

    def is_new(s_new):
        return all(abs(s_new - t) > 1e-3 * max(abs(t), 1.0) for t in used_shifts + queue)

    if basis is not None:
        M, C = system.M, system.C
        b_parts = [system.b.real] + ([system.b.imag] if np.iscomplexobj(system.b) else [])
        done = False
        while queue and not done and basis.m < max_basis and n_fact < max_shifts:
            s = queue.pop(0)
            tf = time.perf_counter()
            F = factors.factor(s)
            timings["factor"] += time.perf_counter() - tf
            n_fact += 1
            factor_name = F.name
            used_shifts.append(s)
            tk = time.perf_counter()
            # raw Krylov directions: (K - s M)^-1 b, then (K - s M)^-1 M v (and C v for general C)
            pending = [F.solve(part) for part in b_parts if np.any(part)]
            if basis.m:  # rational Krylov: continue from the newest vector at the new shift too
                pending.insert(0, F.solve(M @ basis.V[:, basis.m - 1]))
            last_worst = None
            try:
                while basis.m < max_basis and pending:
                    size = step if step is not None else max(8, min(32, basis.m // 6))
                    size = min(size, max_basis - basis.m)
                    # s-step: a block of chain vectors orthogonalised locally (cheap), then
                    # against the basis with BLAS-3 (the expensive part, once per block)
                    block, mblock = [], []
                    while len(block) < size and pending:
                        w = pending.pop(0)
                        for _pass in range(2):
                            for v, mv in zip(block, mblock):
                                w = w - (mv @ w) * v
                        mw = M @ w
                        nrm = np.sqrt(abs(w @ mw))
                        if not np.isfinite(nrm) or nrm == 0:
                            continue
                        w, mw = w / nrm, mw / nrm
                        block.append(w)
                        mblock.append(mw)
                        if len(block) < size:
                            pending.append(F.solve(mw))
                            if prop is None:
                                pending.append(F.solve(C @ w))
                    if not block:
                        break
                    B, MB = basis.orthonormalize(np.column_stack(block))
                    B, MB = B[:, : max_basis - basis.m], MB[:, : max_basis - basis.m]
                    if B.shape[1]:
                        basis.add_block(B, MB)
                        # continue the chain from the last fully orthogonalised vector
                        pending = [F.solve(MB[:, -1])]
                        if prop is None:
                            pending.append(F.solve(C @ B[:, -1]))
                    else:
                        pending = []
                    timings["krylov"] += time.perf_counter() - tk
                    evaluate(np.flatnonzero(failing()))
                    tk = time.perf_counter()
                    if not failing().any():
                        done = True
                        break
                    if not enlarge:
                        break
                    worst = float(np.max(np.where(failing(), rnorm / np.where(zero_rhs, 1, Pb_norm), 0)))
                    log.debug("basis %d, shift %.1f Hz: %d failing, worst %.3g", basis.m,
                              np.sign(s) * np.sqrt(abs(s)) / (2 * np.pi), int(failing().sum()), worst)
                    stagnating = last_worst is not None and worst > 0.5 * last_worst
                    last_worst = worst
                    if stagnating and n_fact + len(queue) < max_shifts:
                        s_new = worst_shift()
                        if is_new(s_new):
                            queue.append(s_new)
                            break
            finally:
                pass  # the factorization is reused (overwritten) by the next shift; factors.close() frees it
            timings["krylov"] += time.perf_counter() - tk
            if done or not enlarge:
                break
            if not queue and basis.m < max_basis and n_fact < max_shifts:
                s_new = worst_shift()
                if not is_new(s_new):  # the worst frequency sits at a used shift: nudge it
                    s_new = s_new * 1.05 if s_new != 0 else -1.0
                queue.append(s_new)
        if basis.m:
            evaluate(np.flatnonzero(failing()))
        y = y[: basis.m]

    # ---- certified fast solutions; the rest is the caller's
    response = np.zeros((k, system.output_dofs.size), dtype=complex)
    rel = np.full(k, np.inf)
    xnorm = np.zeros(k)
    ok = np.zeros(k, dtype=bool)
    checks = []
    n_explicit = 0
    if basis is not None and basis.m:
        ok = (rnorm <= target) & (res <= 0.5 * target)
        response[ok] = basis.outputs(y[:, ok])
        rel[ok] = rnorm[ok] / Pb_norm[ok]
        xnorm[ok] = basis.x_norms(y[:, ok])
        # certificate too coarse to resolve tol (extreme tol): explicit O(nnz) residual
        for i in np.flatnonzero((rnorm <= target) & (res > 0.5 * target)):
            n_explicit += 1
            x = basis.full(y[:, i])
            r_exp, _ = system.residuals(omegas[i], x, P[i])
            if r_exp <= tol:
                response[i] = x[system.output_dofs]
                rel[i] = r_exp
                xnorm[i] = np.linalg.norm(x)
                ok[i] = True
        # cross-check the certificate with explicit O(nnz) residuals
        idx = np.flatnonzero(ok)
        if idx.size and n_checks:
            pick = [idx[np.argmax(rel[idx])]]
            if n_checks > 1:
                rng = np.random.default_rng(0)
                pick += list(rng.choice(idx, size=min(n_checks - 1, idx.size), replace=False))
            for i in dict.fromkeys(int(j) for j in pick):
                x = basis.full(y[:, i])
                r_exp, _ = system.residuals(omegas[i], x, P[i])
                checks.append((float(f[i]), float(rel[i]), float(r_exp)))
                if r_exp > 2 * rel[i] + 4 * res[i] / Pb_norm[i] + 1e-15:
                    warnings.warn(
                        f"fast-sweep certificate {rel[i]:.3g} under-reports the explicit residual "
                        f"{r_exp:.3g} at {f[i]:.6g} Hz; using the explicit value",
                        RuntimeWarning, stacklevel=3,
                    )
                    rel[i] = r_exp
                    ok[i] = r_exp <= tol
    m = 0 if basis is None else basis.m
    return {
        "ok": ok, "response": response, "rel": rel, "xnorm": xnorm,
        "fast_residual": rnorm / Pb_norm, "basis_size": m, "shifts": used_shifts,
        "n_factorizations": n_fact, "factor": factor_name, "explicit_checks": checks,
        "n_explicit": n_explicit, "exhausted": m >= max_basis or n_fact >= max_shifts,
    }
