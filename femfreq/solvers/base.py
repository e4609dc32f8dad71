"""The direct-solver interface: analyse once, factor + solve per frequency, free.

Every ``A(omega) = (1 + i g) K + i omega C - omega^2 M`` of a :class:`~femfreq.system.System`
has the same sparsity pattern, so a sparse direct solver can do its symbolic
analysis (fill-reducing ordering, elimination tree) once and only refactor the
numbers at each frequency. :class:`DirectSolver` is that contract (backends
subclass it and register in :mod:`femfreq.solvers`); :func:`solve_certified`
solves and reports the residuals.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod

import numpy as np

from ..errors import SingularMatrixError, SolverUnavailableError
from ..system import System

__all__ = ["DirectSolver", "SingularMatrixError", "SolverUnavailableError", "solve_certified"]

logger = logging.getLogger(__name__)


def _check_system(system):
    if not isinstance(system, System):
        raise TypeError(f"system must be a femfreq.system.System (got {type(system).__name__})")


def _describe(omega: float) -> str:
    return f"{omega / (2 * math.pi):.6g} Hz (omega = {omega:.6g} rad/s)"


class DirectSolver(ABC):
    """A sparse direct solver for ``A(omega) x = rhs`` on one :class:`System`.

    The constructor does the symbolic analysis once; :meth:`solve` factors
    ``A(omega)`` and solves; :meth:`close` frees the backend's memory (also done
    by the context manager and, as a last resort, by garbage collection).

    Parameters
    ----------
    system : femfreq.system.System
        The matrices; their union pattern (``system.pattern``) is analysed.
    singular_tol : float, optional
        A solve whose relative residual ``||A x - rhs|| / ||rhs||`` exceeds this
        (or that is not finite, or whose factorization broke down) raises
        :class:`SingularMatrixError`. Default 1e-3: a healthy solve is many
        orders of magnitude below it, even at 0 Hz where cond(K) ~ 1e8.
    **options
        Backend options (see the subclass).

    Attributes
    ----------
    name : str
        Backend name (``"superlu"``, ``"pardiso"``).
    stats : dict
        Counters: ``analyses``, ``factorizations``, ``solves`` and backend details.
    last_info : dict
        Details of the last :meth:`solve` (``omega``, ``rel_residual`` per column, ...).
    """

    name: str = "direct"

    def __init__(self, system, *, singular_tol: float = 1e-3, **options):
        _check_system(system)
        singular_tol = float(singular_tol)
        if not singular_tol > 0:
            raise ValueError(f"singular_tol must be > 0 (got {singular_tol})")
        self.system = system
        self.singular_tol = singular_tol
        self.options = dict(options)
        self.stats = {"analyses": 0, "factorizations": 0, "solves": 0}
        self.last_info: dict = {}
        self._lock = threading.RLock()
        self._closed = False
        self._factored_omega: float | None = None
        self._analyse()
        self.stats["analyses"] += 1

    # -- backend hooks -----------------------------------------------------------
    @abstractmethod
    def _analyse(self) -> None:
        """Symbolic analysis of ``system.pattern`` (once)."""

    @abstractmethod
    def _factor_solve(self, omega: float, B: np.ndarray) -> np.ndarray:
        """Factor ``A(omega)``, solve ``A X = B`` (B (n, k) complex, Fortran order)."""

    @abstractmethod
    def _solve_factored(self, B: np.ndarray) -> np.ndarray:
        """Solve with the factorization kept from the last :meth:`_factor_solve`."""

    def _factor_solve_safer(self, omega: float, B: np.ndarray) -> np.ndarray | None:
        """A slower, more careful :meth:`_factor_solve`, tried when the first one's
        relative residual exceeds :attr:`retry_above` (None: the backend has none)."""
        return None

    #: a first solve above this relative residual is redone by :meth:`_factor_solve_safer`
    retry_above: float = 1e-10

    def _release(self) -> None:
        """Free backend memory (idempotent)."""

    def _singular_hint(self) -> str:
        """Backend detail appended to a singular-matrix message."""
        return ""

    # -- public API ---------------------------------------------------------------
    def solve(self, omega: float, rhs: np.ndarray) -> np.ndarray:
        """Factor ``A(omega)`` and solve ``A(omega) x = rhs``.

        Parameters
        ----------
        omega : float
            Angular frequency in rad/s.
        rhs : (n,) or (n, k) array
            Right-hand side(s); cast to complex128.

        Returns
        -------
        x : (n,) or (n, k) complex128 array
            Same shape as ``rhs``.

        Raises
        ------
        SingularMatrixError
            If ``A(omega)`` is singular to working precision (the message names
            the frequency).
        ValueError
            If ``rhs`` has the wrong shape, ``omega`` is not finite, or the solver is closed.
        """
        return self._solve_with_info(omega, rhs)[0]

    def _solve_with_info(self, omega, rhs):
        """:meth:`solve`, also returning its ``last_info`` (read under the lock)."""
        omega = self._check_omega(omega)
        B, squeeze = self._check_rhs(rhs)
        with self._lock:
            self._check_open()
            self._factored_omega = None
            self.last_info = {}
            X = self._factor_solve(omega, B)
            self._factored_omega = omega
            self.stats["factorizations"] += 1
            self.stats["solves"] += 1
            if self._measure(omega, X, B) > self.retry_above:
                Y = self._factor_solve_safer(omega, B)
                if Y is not None:
                    X = Y
                    self.stats["factorizations"] += 1
                    self._measure(omega, X, B)
            self._raise_if_singular(omega)
            info = self.last_info
        return (X[:, 0] if squeeze else X), info

    def solve_with_factor(self, omega: float, rhs: np.ndarray) -> np.ndarray:
        """Solve again with the factorization of the last :meth:`solve` (no refactoring).

        Used for iterative refinement and for extra right-hand sides at the same
        frequency. ``omega`` must be the frequency of the last :meth:`solve`.

        Parameters
        ----------
        omega : float
            Angular frequency (rad/s) of the factorization to reuse.
        rhs : (n,) or (n, k) array

        Returns
        -------
        x : (n,) or (n, k) complex128 array

        Raises
        ------
        ValueError
            If the kept factorization is not that of ``omega``.
        """
        omega = self._check_omega(omega)
        B, squeeze = self._check_rhs(rhs)
        with self._lock:
            self._check_open()
            if self._factored_omega is None or self._factored_omega != omega:
                have = "none" if self._factored_omega is None else _describe(self._factored_omega)
                raise ValueError(
                    f"no factorization of A at {_describe(omega)} is kept (the last one is {have}); "
                    "call solve(omega, rhs) first"
                )
            X = self._solve_factored(B)
            self.stats["solves"] += 1
        return X[:, 0] if squeeze else X

    def close(self) -> None:
        """Free the analysis and any factorization (safe to call twice)."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if not self._closed:
                self._closed = True
                self._factored_omega = None
                self._release()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} n={self.system.n} nnz={self.system.nnz} {state}>"

    # -- helpers ------------------------------------------------------------------
    def _check_open(self):
        if self._closed:
            raise ValueError(f"the {self.name} solver is closed")

    @staticmethod
    def _check_omega(omega) -> float:
        try:
            w = float(omega)
        except (TypeError, ValueError):
            raise TypeError(f"omega must be a real number in rad/s (got {omega!r})") from None
        if not math.isfinite(w):
            raise ValueError(f"omega must be finite (got {omega!r})")
        return w

    def _check_rhs(self, rhs):
        B = np.asarray(rhs)
        n = self.system.n
        if B.ndim == 1 and B.shape[0] == n:
            squeeze = True
            B = B[:, None]
        elif B.ndim == 2 and B.shape[0] == n and B.shape[1] >= 1:
            squeeze = False
        else:
            raise ValueError(f"rhs must have shape ({n},) or ({n}, k) (has shape {B.shape})")
        B = np.asfortranarray(B, dtype=np.complex128)
        if not np.all(np.isfinite(B)):
            raise ValueError("rhs has a non-finite entry")
        return B, squeeze

    def _raise_if_singular(self, omega):
        """Raise SingularMatrixError if the last measured solution is not finite or its residual is huge."""
        if not self.last_info.get("finite", True):
            raise SingularMatrixError(
                f"A(omega) is singular at {_describe(omega)}: the solution is not finite"
                f"{self._singular_hint()}",
                omega,
            )
        worst = float(self.last_info["rel_residual"].max())
        if worst > self.singular_tol:
            raise SingularMatrixError(
                f"A(omega) is singular to working precision at {_describe(omega)}: relative "
                f"residual {worst:.3g} > {self.singular_tol:g} after the {self.name} solve"
                f"{self._singular_hint()} (a free-free model at 0 Hz, or a DOF without "
                "stiffness or mass?)",
                omega,
            )

    def _measure(self, omega, X, B) -> float:
        """Record X's residuals in ``last_info``; the largest relative residual (inf if X is not finite)."""
        info = {"omega": omega}
        if not np.all(np.isfinite(X)):
            self.last_info = {**self.last_info, **info, "finite": False}
            return np.inf
        info["finite"] = True
        R = self.system.apply(omega, X) - B
        rnorm = np.linalg.norm(R, axis=0)
        bnorm = np.linalg.norm(B, axis=0)
        safe = np.where(bnorm > 0, bnorm, 1.0)
        rel = np.where(bnorm > 0, rnorm / safe, np.where(rnorm > 0, np.inf, 0.0))
        # the same quantities as System.residuals, so solve_certified need not redo them
        den = self.system.frobenius_norm(omega) * np.linalg.norm(X, axis=0) + bnorm
        bwd = np.where(den > 0, rnorm / np.where(den > 0, den, 1.0), 0.0)
        info["rel_residual"] = rel
        info["backward_error"] = bwd
        self.last_info = {**self.last_info, **info}
        return float(rel.max())


# -- certification ----------------------------------------------------------------
def solve_certified(solver: DirectSolver, system, omega: float, load: complex, *, tol=None, refine: int = 0):
    """Solve ``A(omega) x = load * b`` and certify it by its residuals.

    Parameters
    ----------
    solver : DirectSolver
        A solver built on ``system`` (e.g. from :func:`get_solver`).
    system : femfreq.system.System
    omega : float
        Angular frequency (rad/s).
    load : complex
        Load spectrum value ``P(omega)``.
    tol : float, optional
        Target relative residual; if the first solve is above it, up to
        ``refine`` steps of iterative refinement ``x += A^{-1} (P b - A x)`` are
        made with the factorization already computed (no refactoring).
    refine : int, optional
        Maximum refinement steps (default 0: only report).

    Returns
    -------
    x : (n,) complex array
        The solution (the best one seen during refinement).
    rel_residual : float
        ``||A x - P b|| / ||P b||``.
    backward_error : float
        ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.

    Raises
    ------
    SingularMatrixError
        From the solver, if ``A(omega)`` is singular.
    """
    if solver.system is not system and solver.system.token != system.token:
        raise ValueError("solver was built for another system")
    refine = int(refine)
    if refine < 0:
        raise ValueError(f"refine must be >= 0 (got {refine})")
    rhs = complex(load) * system.b
    x, info = solver._solve_with_info(omega, rhs)
    if "backward_error" in info:
        rel, bwd = float(info["rel_residual"][0]), float(info["backward_error"][0])  # computed by solve
    else:
        rel, bwd = system.residuals(omega, x, load)
    if tol is None or rel <= tol or refine == 0:
        return x, rel, bwd
    A = system.dynamic_matrix(omega)
    for step in range(refine):
        dx = solver.solve_with_factor(omega, rhs - A @ x)
        x_new = x + dx
        rel_new, bwd_new = system.residuals(omega, x_new, load)
        logger.debug("refinement step %d at %s: residual %.3g -> %.3g", step + 1, _describe(omega), rel, rel_new)
        if not rel_new < rel:
            break
        x, rel, bwd = x_new, rel_new, bwd_new
        if rel <= tol:
            break
    return x, rel, bwd
