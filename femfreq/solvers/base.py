"""The direct-solver interface: analyse once, factor + solve per frequency, free.

Every ``A(omega) = (1 + i g) K + i omega C - omega^2 M`` of a :class:`~femfreq.system.System`
has the same sparsity pattern, so a sparse direct solver can do its symbolic
analysis (fill-reducing ordering, elimination tree) once and only refactor the
numbers at each frequency. :class:`DirectSolver` is that contract;
:func:`get_solver` hands out per-process cached instances, so a dask worker
reuses one analysis across all the chunks it runs.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from ..errors import SingularMatrixError, SolverUnavailableError

__all__ = [
    "DirectSolver",
    "SingularMatrixError",
    "SolverUnavailableError",
    "available_solvers",
    "clear_cache",
    "get_solver",
    "resolve_solver_name",
    "solve_certified",
]

logger = logging.getLogger(__name__)

#: How many solvers (one per system/backend/options) each process keeps alive.
CACHE_SIZE = 2




def _check_system(system):
    from femfreq.system import System

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
            self._check_solution(omega, X, B)
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

    def _frobenius_norm(self, omega: float) -> float:
        """``||A(omega)||_F`` from inner products of the K, C, M values (no complex matrix)."""
        if getattr(self, "_gram", None) is None:
            k, c, m = self.system.k_values, self.system.c_values, self.system.m_values
            self._gram = (k @ k, k @ m, m @ m, k @ c, c @ c)
        kk, km, mm, kc, cc = self._gram
        g, w2 = self.system.g, omega * omega
        # ||A||_F^2 = sum (k - w^2 m)^2 + (g k + w c)^2
        sq = (1 + g * g) * kk - 2 * w2 * km + w2 * w2 * mm + 2 * g * omega * kc + w2 * cc
        return math.sqrt(max(sq, 0.0))

    def _apply(self, omega: float, X: np.ndarray) -> np.ndarray:
        """``A(omega) @ X`` with real sparse products (no complex copy of the matrices)."""
        s = self.system
        out = np.empty(X.shape, dtype=np.complex128, order="F")
        Xr, Xi = np.ascontiguousarray(X.real), np.ascontiguousarray(X.imag)
        Kr, Ki = s.K @ Xr, s.K @ Xi
        Mr, Mi = s.M @ Xr, s.M @ Xi
        # A X = (1 + i g) K X + i w C X - w^2 M X
        out.real = Kr - s.g * Ki - omega * omega * Mr
        out.imag = Ki + s.g * Kr - omega * omega * Mi
        if s.C.nnz:
            out.real -= omega * (s.C @ Xi)
            out.imag += omega * (s.C @ Xr)
        return out

    def _check_solution(self, omega, X, B):
        """Raise SingularMatrixError if X is not finite or its residual is huge."""
        info = {"omega": omega}
        if not np.all(np.isfinite(X)):
            raise SingularMatrixError(
                f"A(omega) is singular at {_describe(omega)}: the solution is not finite"
                f"{self._singular_hint()}",
                omega,
            )
        R = self._apply(omega, X) - B
        rnorm = np.linalg.norm(R, axis=0)
        bnorm = np.linalg.norm(B, axis=0)
        safe = np.where(bnorm > 0, bnorm, 1.0)
        rel = np.where(bnorm > 0, rnorm / safe, np.where(rnorm > 0, np.inf, 0.0))
        # the same quantities as System.residuals, so solve_certified need not redo them
        den = self._frobenius_norm(omega) * np.linalg.norm(X, axis=0) + bnorm
        bwd = np.where(den > 0, rnorm / np.where(den > 0, den, 1.0), 0.0)
        info["rel_residual"] = rel
        info["backward_error"] = bwd
        self.last_info = {**self.last_info, **info}
        worst = float(rel.max())
        if worst > self.singular_tol:
            raise SingularMatrixError(
                f"A(omega) is singular to working precision at {_describe(omega)}: relative "
                f"residual {worst:.3g} > {self.singular_tol:g} after the {self.name} solve"
                f"{self._singular_hint()} (a free-free model at 0 Hz, or a DOF without "
                "stiffness or mass?)",
                omega,
            )


# -- registry and per-process cache ---------------------------------------------
_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()

def _backends():
    from .pardiso import PardisoSolver
    from .superlu import SuperLUSolver

    return {"superlu": SuperLUSolver, "pardiso": PardisoSolver}


def _names():
    return ["auto", *_backends()]


def available_solvers() -> list[str]:
    """Names of the direct backends that can run in this process.

    Returns
    -------
    list of str
        ``"superlu"`` always; ``"pardiso"`` when MKL PARDISO loads (not with
        ``FEMFREQ_NO_MKL=1``). ``"auto"`` is accepted by :func:`get_solver` too.
    """
    from .pardiso import pardiso_available

    names = ["superlu"]
    if pardiso_available()[0]:
        names.append("pardiso")
    return names


def resolve_solver_name(system, name: str = "auto") -> str:
    """The backend :func:`get_solver` would use for ``name`` (resolves ``"auto"``).

    ``"auto"`` picks ``"pardiso"`` when MKL PARDISO is available and the system is
    symmetric, else ``"superlu"``; the choice and the reason for a fallback are logged.

    Raises
    ------
    ValueError
        If ``name`` is not a known solver.
    SolverUnavailableError
        If ``name`` is ``"pardiso"`` and MKL PARDISO cannot be loaded.
    """
    _check_system(system)
    if not isinstance(name, str) or name not in _names():
        raise ValueError(f"unknown solver {name!r}; pick one of {_names()}")
    from .pardiso import pardiso_available

    ok, reason = pardiso_available()
    if name == "pardiso" and not ok:
        raise SolverUnavailableError(f"solver 'pardiso' is not available: {reason}; use solver='superlu'")
    if name != "auto":
        return name
    if not ok:
        choice, why = "superlu", f"pardiso unavailable: {reason}"
    elif not is_symmetric(system):
        choice, why = "superlu", "the system is not symmetric"
    else:
        choice, why = "pardiso", "MKL, complex symmetric"
    key = (system.token, choice)
    if key not in _logged_choices:
        _logged_choices.add(key)
        logger.info("solver 'auto': using %s (%s)", choice, why)
    return choice


_logged_choices: set = set()
_symmetric: OrderedDict = OrderedDict()


def is_symmetric(system) -> bool:
    """``system.is_symmetric``, remembered per system token (it costs O(nnz))."""
    with _cache_lock:
        if system.token in _symmetric:
            return _symmetric[system.token]
    value = bool(system.is_symmetric)
    with _cache_lock:
        _symmetric[system.token] = value
        while len(_symmetric) > 8:
            _symmetric.popitem(last=False)
    return value




def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def get_solver(system, name: str = "auto", **options) -> DirectSolver:
    """A direct solver for ``system``, cached per process.

    The cache is keyed by ``(system.token, backend, options)`` and keeps the
    :data:`CACHE_SIZE` most recently used solvers; older ones are closed (their
    memory freed). A dask worker thus analyses each system once, whatever the
    number of chunks it runs.

    Parameters
    ----------
    system : femfreq.system.System
    name : {"auto", "superlu", "pardiso"}
        ``"auto"``: PARDISO if MKL loads and the system is symmetric, else SuperLU.
    **options
        Passed to the backend constructor (e.g. ``threads=1`` for PARDISO,
        ``permc_spec="COLAMD"`` for SuperLU, ``singular_tol``).

    Returns
    -------
    DirectSolver

    Raises
    ------
    ValueError
        ``unknown solver 'x'; pick one of [...]``.
    SolverUnavailableError
        If ``"pardiso"`` is requested and MKL is not available.

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.system import System
    >>> from femfreq.solvers import get_solver
    >>> s = System(K=[[2.0, -1.0], [-1.0, 2.0]], C=None, M=np.eye(2), b=[1.0, 0.0])
    >>> x = get_solver(s, "superlu").solve(0.5, s.b)  # (K - 0.25 M) x = b
    >>> np.round(x.real, 6)
    array([0.848485, 0.484848])
    """
    _check_system(system)
    backend = resolve_solver_name(system, name)
    key = (system.token, backend, _freeze(options))
    evicted = []
    with _cache_lock:
        solver = _cache.get(key)
        if solver is not None and not solver.closed:
            _cache.move_to_end(key)
            return solver
    # construct outside the cache lock (the analysis can take seconds)
    solver = _backends()[backend](system, **options)
    with _cache_lock:
        other = _cache.get(key)
        if other is not None and not other.closed:
            evicted.append(solver)  # another thread won the race
            solver = other
        else:
            _cache[key] = solver
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _, old = _cache.popitem(last=False)
            evicted.append(old)
    for old in evicted:
        logger.debug("closing cached solver %r", old)
        old.close()
    return solver


def clear_cache() -> None:
    """Close and forget every cached solver of this process."""
    with _cache_lock:
        solvers = list(_cache.values())
        _cache.clear()
    for s in solvers:
        s.close()


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
