"""SuperLU (scipy's ``splu``): a fresh sparse LU of ``A(omega)`` at every frequency.

The reference method, always available. scipy gives no way to reuse SuperLU's
column permutation across factorizations, so the "analysis" is only a check of
the pattern; each :meth:`SuperLUSolver.solve` orders and factors from scratch.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..errors import SingularMatrixError
from .base import DirectSolver, _describe

__all__ = ["RealSymmetricSuperLU", "SuperLUSolver"]

logger = logging.getLogger(__name__)

_ORDERINGS = ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL")


class SuperLUSolver(DirectSolver):
    """Sparse LU with partial pivoting (SuperLU through :func:`scipy.sparse.linalg.splu`).

    Parameters
    ----------
    system : femfreq.system.System
    permc_spec : {"COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL"}, optional
        Column ordering (default ``"COLAMD"``, scipy's default and the reference
        method). ``"MMD_AT_PLUS_A"`` with ``diag_pivot_thresh=0`` suits symmetric
        patterns better.
    diag_pivot_thresh : float, optional
        Threshold partial pivoting in [0, 1] (default 1: classic partial pivoting).
    singular_tol : float, optional
        See :class:`~femfreq.solvers.base.DirectSolver`.

    Notes
    -----
    The LU factors of the last frequency are kept (for
    :meth:`~femfreq.solvers.base.DirectSolver.solve_with_factor`) and dropped
    before the next factorization, so peak memory is one factorization.
    """

    name = "superlu"

    def __init__(self, system, *, permc_spec: str = "COLAMD", diag_pivot_thresh: float = 1.0, **options):
        if permc_spec not in _ORDERINGS:
            raise ValueError(f"unknown permc_spec {permc_spec!r}; pick one of {list(_ORDERINGS)}")
        diag_pivot_thresh = float(diag_pivot_thresh)
        if not 0.0 <= diag_pivot_thresh <= 1.0:
            raise ValueError(f"diag_pivot_thresh must be in [0, 1] (got {diag_pivot_thresh})")
        self.permc_spec = permc_spec
        self.diag_pivot_thresh = diag_pivot_thresh
        self._lu = None
        super().__init__(system, permc_spec=permc_spec, diag_pivot_thresh=diag_pivot_thresh, **options)

    def _analyse(self):
        indptr, indices = self.system.pattern
        # splu wants int32 index arrays; keep one canonical copy
        self._indptr = np.ascontiguousarray(indptr, dtype=np.int32)
        self._indices = np.ascontiguousarray(indices, dtype=np.int32)

    def _factor_solve(self, omega, B):
        self._lu = None  # free the previous factors before making new ones
        n = self.system.n
        A = sp.csc_matrix((self.system.values(omega), self._indices, self._indptr), shape=(n, n))
        try:
            self._lu = splu(A, permc_spec=self.permc_spec, diag_pivot_thresh=self.diag_pivot_thresh)
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise SingularMatrixError(
                f"A(omega) is singular at {_describe(omega)}: SuperLU says {str(exc).lower()!r} "
                "(a free-free model at 0 Hz, or a DOF without stiffness or mass?)",
                omega,
            ) from None
        return self._lu.solve(B)

    def _solve_factored(self, B):
        return self._lu.solve(B)

    def _release(self):
        self._lu = None


class RealSymmetricSuperLU:
    """SuperLU of a real symmetric matrix (symmetric mode, minimum degree on ``A + A^T``).

    The fallback for the fast sweep's factorizations of ``K - s M`` when MKL is not
    available. SuperLU does not report the inertia (:attr:`n_negative` is None).
    """

    name = "superlu-real"

    def __init__(self, A):
        self._lu = splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                        options={"SymmetricMode": True})
        self.perturbed_pivots = 0
        self.n_negative = None

    def solve(self, rhs):
        """``x`` with ``A x = rhs`` (rhs (n,) or (n, k), real)."""
        return self._lu.solve(np.asarray(rhs, dtype=np.float64))

    def close(self):
        """Drop the factors."""
        self._lu = None
