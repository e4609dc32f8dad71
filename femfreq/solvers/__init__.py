"""Linear solvers for ``A(omega) x = P(omega) b``: the registry and the process's caches.

Direct backends share one interface (:class:`DirectSolver`: analyse once, factor +
solve per frequency, free): ``"superlu"`` (scipy, always available) and
``"pardiso"`` (MKL PARDISO, complex symmetric, analysis reused). Get one with
:func:`get_solver`. A backend is a :class:`DirectSolver` subclass made reachable by
name with :func:`register_solver`; the backend modules import only :mod:`.base`.

This module is the one owner of what a process keeps between calls: the
:data:`CACHE_SIZE` most recently used direct solvers (a dask worker reuses one
analysis across all its chunks) and the fast sweep's factorization of ``K - s M``
(:func:`borrow_factors`). :func:`clear_caches` frees both; :func:`cache_info`
says what is held.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager

from ..errors import SingularMatrixError, SolverUnavailableError
from . import _mkl
from .base import DirectSolver, _check_system, solve_certified
from .pardiso import PardisoSolver, pardiso_available
from .superlu import SuperLUSolver

__all__ = [
    "CACHE_SIZE",
    "DirectSolver",
    "SingularMatrixError",
    "SolverUnavailableError",
    "available_solvers",
    "borrow_factors",
    "cache_info",
    "clear_caches",
    "get_solver",
    "mkl_available",
    "register_solver",
    "resolve_solver_name",
    "solve_certified",
]

logger = logging.getLogger(__name__)

#: How many direct solvers (one per system/backend/options) each process keeps alive.
CACHE_SIZE = 2


# -- registry ---------------------------------------------------------------------------
_BACKENDS: dict = {}


def _always() -> tuple[bool, str]:
    return True, ""


def register_solver(name: str, cls, available=_always) -> None:
    """Make a direct backend reachable by name from :func:`get_solver`.

    Parameters
    ----------
    name : str
        The name users pass (``solver="name"``).
    cls : type
        A :class:`DirectSolver` subclass, constructed as ``cls(system, **options)``.
    available : callable, optional
        ``available() -> (ok, reason)``: whether the backend can run in this process.
    """
    if not (isinstance(cls, type) and issubclass(cls, DirectSolver)):
        raise TypeError(f"cls must be a DirectSolver subclass (got {cls!r})")
    _BACKENDS[name] = (cls, available)


register_solver("superlu", SuperLUSolver)
register_solver("pardiso", PardisoSolver, pardiso_available)


def _names():
    return ["auto", *_BACKENDS]


def mkl_available() -> bool:
    """True if MKL loads in this process (False with ``FEMFREQ_NO_MKL=1``, which loads nothing)."""
    return _mkl.status()[0]


def available_solvers() -> list[str]:
    """Names of the direct backends that can run in this process.

    Returns
    -------
    list of str
        ``"superlu"`` always; ``"pardiso"`` when MKL PARDISO loads (not with
        ``FEMFREQ_NO_MKL=1``). ``"auto"`` is accepted by :func:`get_solver` too.
    """
    return [name for name, (_, available) in _BACKENDS.items() if available()[0]]


_logged_choices: set = set()


def resolve_solver_name(system, name: str = "auto") -> str:
    """The backend :func:`get_solver` would use for ``name`` (resolves ``"auto"``).

    ``"auto"`` picks ``"pardiso"`` when MKL PARDISO is available and the system is
    symmetric, else ``"superlu"``; the choice and the reason for a fallback are logged.

    Raises
    ------
    ValueError
        If ``name`` is not a known solver.
    SolverUnavailableError
        If ``name`` is not available in this process (e.g. ``"pardiso"`` without MKL).
    """
    _check_system(system)
    if not isinstance(name, str) or name not in _names():
        raise ValueError(f"unknown solver {name!r}; pick one of {_names()}")
    if name != "auto":
        ok, reason = _BACKENDS[name][1]()
        if not ok:
            raise SolverUnavailableError(f"solver {name!r} is not available: {reason}; use solver='superlu'")
        return name
    ok, reason = pardiso_available()
    if not ok:
        choice, why = "superlu", f"pardiso unavailable: {reason}"
    elif not system.is_symmetric:
        choice, why = "superlu", "the system is not symmetric"
    else:
        choice, why = "pardiso", "MKL, complex symmetric"
    key = (system.token, choice)
    if key not in _logged_choices:
        _logged_choices.add(key)
        logger.info("solver 'auto': using %s (%s)", choice, why)
    return choice


# -- the direct solvers kept per process ---------------------------------------------------
_solvers: OrderedDict = OrderedDict()
_solvers_lock = threading.Lock()


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
    with _solvers_lock:
        solver = _solvers.get(key)
        if solver is not None and not solver.closed:
            _solvers.move_to_end(key)
            return solver
    # construct outside the lock (the analysis can take seconds)
    solver = _BACKENDS[backend][0](system, **options)
    evicted = []
    with _solvers_lock:
        other = _solvers.get(key)
        if other is not None and not other.closed:
            evicted.append(solver)  # another thread won the race
            solver = other
        else:
            _solvers[key] = solver
        _solvers.move_to_end(key)
        while len(_solvers) > CACHE_SIZE:
            _, old = _solvers.popitem(last=False)
            evicted.append(old)
    for old in evicted:
        logger.debug("closing cached solver %r", old)
        old.close()
    return solver


# -- the fast sweep's factorization kept per process -----------------------------------------
# One slot: the system (weakly), a key and the factorization object. Its lock is held
# while a caller uses the object, so a concurrent caller never shares it.
_factor_lock = threading.Lock()
_factor_slot: dict = {"system": None, "key": None, "factors": None}


def _drop_factors() -> None:
    """Close and forget the slot's factorization (the caller holds ``_factor_lock``)."""
    factors = _factor_slot["factors"]
    _factor_slot.update(system=None, key=None, factors=None)
    if factors is not None:
        factors.close()


@contextmanager
def borrow_factors(system, key, build, *, keep: bool = True):
    """The factorization object this process keeps for ``(system, key)``, for one use.

    A worker process solving many sub-bands of one model then pays the ordering and
    symbolic analysis once. The slot holds one system; another system or key
    replaces (closes) what it held. A concurrent caller (a threaded worker) or
    ``keep=False`` gets a private object, closed when the ``with`` block ends.

    Parameters
    ----------
    system : femfreq.system.System
    key : hashable
        What else identifies the object (e.g. the backend).
    build : callable
        ``build()`` makes a new object with a ``close()`` method.
    keep : bool, optional
        False: nothing worth keeping (no analysis to reuse): always private.

    Yields
    ------
    object
        The kept (or private) object; valid inside the ``with`` block only.
    """
    if not keep or not _factor_lock.acquire(blocking=False):
        private = build()
        try:
            yield private
        finally:
            private.close()
        return
    try:
        ref = _factor_slot["system"]
        if ref is None or ref() is not system or _factor_slot["key"] != key:
            _drop_factors()
            factors = build()
            _factor_slot.update(system=weakref.ref(system), key=key, factors=factors)
        yield _factor_slot["factors"]
    finally:
        _factor_lock.release()


# -- the one clean-up ---------------------------------------------------------------------
def clear_caches() -> None:
    """Free everything this process keeps: the cached direct solvers and the fast sweep's factorization."""
    with _solvers_lock:
        solvers = list(_solvers.values())
        _solvers.clear()
    for solver in solvers:
        solver.close()
    with _factor_lock:
        _drop_factors()


def cache_info() -> dict:
    """What this process keeps between calls.

    Returns
    -------
    dict
        ``direct_solvers``: number of cached (open) direct solvers;
        ``factorizations``: number of kept fast-sweep factorizations (0 or 1).

    Examples
    --------
    >>> from femfreq.solvers import cache_info, clear_caches
    >>> clear_caches()
    >>> cache_info()
    {'direct_solvers': 0, 'factorizations': 0}
    """
    with _solvers_lock:
        direct = sum(not s.closed for s in _solvers.values())
    kept = int(_factor_slot["factors"] is not None)  # no lock: a borrower may hold it
    return {"direct_solvers": direct, "factorizations": kept}


# PARDISO's memory is freed before the interpreter (and MKL) goes away
atexit.register(clear_caches)
