"""Linear solvers for ``A(omega) x = P(omega) b``.

Direct backends share one interface (:class:`DirectSolver`: analyse once, factor +
solve per frequency, free): ``"superlu"`` (scipy, always available) and
``"pardiso"`` (MKL PARDISO, complex symmetric, analysis reused). Get one with
:func:`get_solver`, which caches solvers per process so dask workers reuse the
analysis across chunks.
"""

from .base import (
    DirectSolver,
    SingularMatrixError,
    SolverUnavailableError,
    available_solvers,
    clear_cache,
    get_solver,
    resolve_solver_name,
    solve_certified,
)

__all__ = [
    "DirectSolver",
    "SingularMatrixError",
    "SolverUnavailableError",
    "available_solvers",
    "clear_cache",
    "get_solver",
    "resolve_solver_name",
    "solve_certified",
    "clear_caches",
]


def clear_caches() -> None:
    """Free every factorization this process keeps (direct solvers and the fast sweep's)."""
    clear_cache()
    import sys

    fast = sys.modules.get(__name__ + ".fast")  # loaded only if a fast sweep ran here
    if fast is not None:
        fast.free_factor_cache()
