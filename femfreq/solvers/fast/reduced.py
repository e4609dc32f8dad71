"""One reduced model per (sub-)band: build its basis shift by shift, then certify it.

:class:`ReducedPass` holds what the steps of one pass share (the frequencies, the
basis, the reduced solutions and their certificates). :meth:`ReducedPass.build`
grows the basis from shift-invert Krylov sequences until every frequency is
certified (or the basis is full); :meth:`ReducedPass.certify` accepts what meets
``tol`` and cross-checks it with explicit residuals. What is left fails over to
a direct solve in :mod:`.band`.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ...system import fitted_damping
from .basis import _Basis, _MColumns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """The knobs of :func:`~femfreq.solvers.fast.solve_band` one pass uses."""

    tol: float
    max_basis: int
    prop: tuple | None  # (alpha, beta) of C = alpha M + beta K, or None for a general C
    enlarge: bool
    max_shifts: int
    step: int | None
    n_checks: int


@dataclass
class PassResult:
    """What one pass found for its ``k`` frequencies (``ok``: certified fast)."""

    ok: np.ndarray
    basis_rows: np.ndarray | None  # (n_out, m): the basis at the output DOF; rows ok are (basis_rows @ y).T
    y: np.ndarray  # (m, k) reduced solutions
    rel: np.ndarray
    xnorm: np.ndarray
    fast_residual: np.ndarray
    basis_size: int
    shifts: list
    n_factorizations: int
    factor: str | None
    explicit_checks: list
    n_explicit: int
    exhausted: bool


def _predicted_step(history, tol):
    """Vectors the worst failing frequency still needs, from the last two blocks' residuals.

    ``history``: (basis size, worst failing residual, ...) after each block.

    The residual falls about geometrically with the basis size at one shift; the next
    block is cut to the predicted count plus one (at least 2), so that a nearly
    certified band does not overshoot by most of a block. No prediction (a large
    number) before two blocks or when the residual did not fall.
    """
    if len(history) < 2:
        return 1 << 30
    (m1, w1, *_), (m2, w2, *_) = history[-2:]
    if not (0 < w2 < w1 and m2 > m1 and w2 > tol):
        return 1 << 30
    rate = (w2 / w1) ** (1.0 / (m2 - m1))  # per vector
    return max(2, int(np.ceil(np.log(tol / w2) / np.log(rate) - 1e-9)) + 1)


class ReducedPass:
    """Build and certify one basis for the frequencies ``f`` (all with a non-zero load)."""

    def __init__(self, system, f, P, settings: Settings, shifts, timings):
        self.system, self.f, self.P, self.cfg, self.timings = system, f, P, settings, timings
        k = f.size
        self.omegas = omegas = 2 * np.pi * f
        alpha_fit, beta_fit = fitted_damping(system) if settings.prop is None else settings.prop
        # effective shifted-pencil point: A ~ a(w) (K - mu(w) M) for proportional damping
        self.mu = (omegas**2 - 1j * omegas * alpha_fit) / ((1 + 1j * system.g) + 1j * omegas * beta_fit)
        self.Pb_norm = np.abs(P) * np.linalg.norm(system.b)
        self.zero_rhs = self.Pb_norm == 0
        self.target = settings.tol * self.Pb_norm
        self.queue = list(shifts) if shifts is not None else [self._shift_for(np.argsort(f)[k // 2])]
        self.basis = _Basis(system, settings.max_basis, settings.prop) if not np.all(self.zero_rhs) else None
        self.y = np.zeros((settings.max_basis, k), dtype=complex)
        self.rnorm = np.full(k, np.inf)
        self.res = np.zeros(k)
        self.used_shifts = []
        self.n_fact = 0
        self.factor_name = None

    # -- shared state -------------------------------------------------------------------
    def _shift_for(self, i):
        s = float(self.mu[i].real)
        omegas = self.omegas
        w_ref = omegas[omegas > 0].min() if np.any(omegas > 0) else 1.0
        if s <= 0.25 * w_ref**2:  # at/near 0: K + |s| M is SPD even for a PSD K
            s = -0.25 * w_ref**2
        return s

    def _failing(self):
        """Frequencies not certified yet (small but unresolvable ones are checked explicitly later)."""
        return ~(self.rnorm <= self.target) & ~self.zero_rhs

    def _worst_ratio(self, fill):
        return np.where(self._failing(), self.rnorm / np.where(self.zero_rhs, 1, self.Pb_norm), fill)

    def _worst_shift(self):
        return self._shift_for(int(np.argmax(self._worst_ratio(-1))))

    def _is_new(self, s_new):
        return all(abs(s_new - t) > 1e-3 * max(abs(t), 1.0) for t in self.used_shifts + self.queue)

    def _evaluate(self, idx):
        """Reduced solutions and certificates at frequencies idx with the current basis.

        A frequency certified earlier keeps its solution: zero-padded, y is the same
        x = V y in the grown basis, and its certificate stays valid.
        """
        tc = time.perf_counter()
        if idx.size:
            basis, y = self.basis, self.y
            m = basis.m
            y[:m, idx] = basis.reduced_solutions(self.omegas[idx], self.P[idx])
            y[m:, idx] = 0
            self.rnorm[idx], self.res[idx] = basis.certify(self.omegas[idx], self.P[idx], y[:m, idx])
        self.timings["certify"] += time.perf_counter() - tc

    # -- build ------------------------------------------------------------------------------
    def build(self, factors):
        """Grow the basis shift by shift until every frequency is certified or a limit is hit."""
        basis, cfg = self.basis, self.cfg
        if basis is None:
            return
        done = False
        while self.queue and not done and basis.m < cfg.max_basis and self.n_fact < cfg.max_shifts:
            s = self.queue.pop(0)
            tf = time.perf_counter()
            F = factors.factor(s)
            self.timings["factor"] += time.perf_counter() - tf
            self.n_fact += 1
            self.factor_name = F.name
            self.used_shifts.append(s)
            done = self._grow(F, s)
            if done or not cfg.enlarge:
                break
            if not self.queue and basis.m < cfg.max_basis and self.n_fact < cfg.max_shifts:
                s_new = self._worst_shift()
                if not self._is_new(s_new):  # the worst frequency sits at a used shift: nudge it
                    s_new = s_new * 1.05 if s_new != 0 else -1.0
                self.queue.append(s_new)
        if basis.m:
            self._evaluate(np.flatnonzero(self._failing()))

    def _grow(self, F, s):
        """Add Krylov blocks at shift ``s`` (factorization ``F``); True once all are certified.

        Returns early (False) when the certificates stagnate and a new shift is queued.
        """
        basis, cfg, M = self.basis, self.cfg, self.system.M
        tk = time.perf_counter()
        b = self.system.b
        b_parts = [b.real] + ([b.imag] if np.iscomplexobj(b) else [])
        # raw Krylov directions: (K - s M)^-1 b, then (K - s M)^-1 M v (and C v for general C)
        pending = [F.solve(part) for part in b_parts if np.any(part)]
        if basis.m:  # rational Krylov: continue from the newest vector at the new shift too
            pending.insert(0, F.solve(M @ basis.V[:, basis.m - 1]))
        history = []  # (basis size, worst failing residual) after each block at this shift
        done = False
        while basis.m < cfg.max_basis and pending:
            size = cfg.step if cfg.step is not None else max(8, min(32, basis.m // 6))
            if cfg.step is None:
                size = min(size, _predicted_step(history, cfg.tol))
            m0 = basis.m
            block = self._block(F, pending, min(size, cfg.max_basis - basis.m))
            if block is None:
                break
            pending = self._add(F, block)
            self.timings["krylov"] += time.perf_counter() - tk
            self._evaluate(np.flatnonzero(self._failing()))
            tk = time.perf_counter()
            if not self._failing().any():
                done = True
                break
            if not cfg.enlarge:
                break
            failing = self._worst_ratio(np.nan)  # relative residuals of the failing frequencies
            worst, median = float(np.nanmax(failing)), float(np.nanmedian(failing))
            log.debug("basis %d, shift %.1f Hz: %d failing, worst %.3g, median %.3g", basis.m,
                      np.sign(s) * np.sqrt(abs(s)) / (2 * np.pi), int(self._failing().sum()), worst, median)
            # stagnating: the failing frequencies' median residual did not halve over a block of
            # 8 vectors (a shorter block: its share). The median, not the worst: the worst
            # frequency can improve fast while the bulk far from the shift (a band edge) creeps
            stagnating = bool(history) and median > 0.5 ** ((basis.m - m0) / 8) * history[-1][2]
            history.append((basis.m, worst, median))
            if stagnating and self.n_fact + len(self.queue) < cfg.max_shifts:
                s_new = self._worst_shift()
                if self._is_new(s_new):
                    self.queue.append(s_new)
                    break
        self.timings["krylov"] += time.perf_counter() - tk
        return done

    def _block(self, F, pending, size):
        """Up to ``size`` chain vectors, M-orthonormal among themselves (cheap), and their M
        products, or None.

        s-step: the block is orthogonalised against the basis afterwards with BLAS-3
        (the expensive part, once per block).
        """
        M, C, general_c = self.system.M, self.system.C, self.cfg.prop is None
        block = _MColumns(self.system.n, size)
        while block.k < size and pending:
            item = pending.pop(0)
            w = block.project(item() if callable(item) else item, passes=2)
            mw = M @ w
            nrm = np.sqrt(abs(w @ mw))
            if not np.isfinite(nrm) or nrm == 0:
                continue
            w, mw = w / nrm, mw / nrm
            block.append(w, mw)
            if block.k < size:
                pending.append(F.solve(mw))
                if general_c:
                    pending.append(F.solve(C @ w))
        return block.arrays() if block.k else None

    def _add(self, F, block):
        """Orthonormalise ``block`` (B, M B) against the basis, append it; the chain's next directions."""
        basis, room = self.basis, self.cfg.max_basis - self.basis.m
        B, MB = basis.orthonormalize(*block)
        B, MB = B[:, :room], MB[:, :room]
        if not B.shape[1]:
            return []
        basis.add_block(B, MB)
        # continue the chain from the last fully orthogonalised vector; solved only when the
        # next block is built (the band may be certified with this one). Copies, so that the
        # waiting directions do not keep the whole block alive
        mb = MB[:, -1].copy()
        pending = [lambda: F.solve(mb)]
        if self.cfg.prop is None:
            b_last = B[:, -1].copy()
            pending.append(lambda: F.solve(self.system.C @ b_last))
        return pending

    # -- certify ----------------------------------------------------------------------------
    def certify(self) -> PassResult:
        """Accept the reduced solutions that meet ``tol``; the rest is the caller's."""
        k, basis = self.f.size, self.basis
        self.rel = np.full(k, np.inf)
        self.xnorm = np.zeros(k)
        ok = np.zeros(k, dtype=bool)
        checks, n_explicit = [], 0
        basis_rows, y = None, self.y[:0]
        if basis is not None and basis.m:
            y = self.y[: basis.m]
            basis_rows = basis.output_rows()
            ok = (self.rnorm <= self.target) & (self.res <= 0.5 * self.target)
            self.rel[ok] = self.rnorm[ok] / self.Pb_norm[ok]
            self.xnorm[ok] = basis.x_norms(y[:, ok])
            n_explicit = self._resolve_explicitly(y, ok)
            checks = self._cross_check(y, ok)
        m = 0 if basis is None else basis.m
        return PassResult(
            ok=ok, basis_rows=basis_rows, y=y, rel=self.rel, xnorm=self.xnorm,
            fast_residual=self.rnorm / self.Pb_norm, basis_size=m, shifts=self.used_shifts,
            n_factorizations=self.n_fact, factor=self.factor_name, explicit_checks=checks,
            n_explicit=n_explicit, exhausted=m >= self.cfg.max_basis or self.n_fact >= self.cfg.max_shifts,
        )

    def _resolve_explicitly(self, y, ok):
        """Certificate too coarse to resolve tol (extreme tol): explicit O(nnz) residual; updates ok."""
        n_explicit = 0
        for i in np.flatnonzero((self.rnorm <= self.target) & (self.res > 0.5 * self.target)):
            n_explicit += 1
            x = self.basis.full(y[:, i])
            r_exp, _ = self.system.residuals(self.omegas[i], x, self.P[i])
            if r_exp <= self.cfg.tol:
                self.rel[i] = r_exp
                self.xnorm[i] = np.linalg.norm(x)
                ok[i] = True
        return n_explicit

    def _cross_check(self, y, ok):
        """Cross-check the certificate with explicit O(nnz) residuals; updates ok and rel."""
        checks, rel, n_checks = [], self.rel, self.cfg.n_checks
        idx = np.flatnonzero(ok)
        if not (idx.size and n_checks):
            return checks
        pick = [idx[np.argmax(rel[idx])]]
        if n_checks > 1:
            rng = np.random.default_rng(0)
            pick += list(rng.choice(idx, size=min(n_checks - 1, idx.size), replace=False))
        for i in dict.fromkeys(int(j) for j in pick):
            x = self.basis.full(y[:, i])
            r_exp, _ = self.system.residuals(self.omegas[i], x, self.P[i])
            checks.append((float(self.f[i]), float(rel[i]), float(r_exp)))
            if r_exp > 2 * rel[i] + 4 * self.res[i] / self.Pb_norm[i] + 1e-15:
                warnings.warn(
                    f"fast-sweep certificate {rel[i]:.3g} under-reports the explicit residual "
                    f"{r_exp:.3g} at {self.f[i]:.6g} Hz; using the explicit value",
                    RuntimeWarning, stacklevel=5,
                )
                rel[i] = r_exp
                ok[i] = r_exp <= self.cfg.tol
        return checks
