"""MKL PARDISO for the fast sweep's real symmetric factorizations of ``K - s M``."""

from __future__ import annotations

import numpy as np

from ..errors import PardisoError
from . import _mkl
from .pardiso import _error, _pardiso

__all__ = ["RealSymmetricPardiso"]


class RealSymmetricPardiso:
    """MKL PARDISO for a real symmetric indefinite matrix (type -2): analyse once, refactor, solve many.

    The fast sweep's factorizations of ``K - s M`` at real shifts ``s``: every
    shift has the same pattern, so :meth:`refactor` redoes only the numerical
    factorization. The inertia comes with each factorization (:attr:`n_negative`,
    the Sturm count of eigenvalues of ``(K, M)`` below ``s``).

    Parameters
    ----------
    indptr, indices, data : arrays
        Upper triangle in zero-based CSR, sorted, every diagonal entry stored.
    perm : (n,) int array, optional
        The fill-reducing ordering to use (``perm[k]``: the row eliminated k-th, e.g.
        :func:`~femfreq.solvers.ordering.node_ordering`); default: PARDISO's METIS.
    threads : int, optional
        MKL threads for every call on this factorization; 0 (default): the calling
        thread's MKL setting at the analysis, kept for every later call, whichever
        thread makes it (PARDISO's factors are only valid with the thread count they
        were analysed with: a kept analysis refactored with another count gave wrong
        solves).

    Attributes
    ----------
    n_negative : int
        Negative eigenvalues of the last factorized matrix (its inertia).
    perturbed_pivots : int
        Pivots PARDISO perturbed in the last factorization.
    """

    name = "pardiso-real-symmetric"
    _MTYPE = -2

    def __init__(self, indptr, indices, data, *, perm=None, threads: int = 0):
        self._mkl = mkl = _mkl.load()
        it = mkl.int_type
        self.n = indptr.size - 1
        self.threads = int(threads) or max(1, int(mkl.get_max_threads()))
        self._a = np.array(data, dtype=np.float64)
        self._ia = np.ascontiguousarray(indptr, dtype=it)
        self._ja = np.ascontiguousarray(indices, dtype=it)
        self._perm = np.zeros(self.n, dtype=it) if perm is None else np.array(perm, dtype=it)
        self._pt = np.zeros(64, dtype=np.int64)
        self._iparm = np.zeros(64, dtype=it)
        mtype = np.array([self._MTYPE], dtype=it)
        mkl.pardisoinit(self._pt.ctypes.data, mtype.ctypes.data, self._iparm.ctypes.data)
        self._iparm[0] = 1
        self._iparm[1] = 2  # nested dissection (METIS)
        self._iparm[4] = 0 if perm is None else 1  # 1: the ordering given in perm
        self._iparm[7] = 0  # no iterative refinement: any basis vector will do, the certificate checks
        self._iparm[23] = 1  # two-level parallel factorization (faster also on one thread here)
        self._iparm[34] = 1  # zero-based indices
        self._alive = True
        self._phase(12)

    def _phase(self, phase, B=None, X=None, nrhs=1):
        dummy = np.zeros(1)
        err = _pardiso(self._mkl, self._pt, self._MTYPE, phase, self.n, self._a, self._ia, self._ja, self._perm,
                       self._iparm, dummy if B is None else B, dummy if X is None else X, nrhs, self.threads)
        if err:
            raise _error(phase, err)
        if phase in (12, 22):
            self.perturbed_pivots = int(self._iparm[13])
            self.n_negative = int(self._iparm[22])  # inertia: number of negative eigenvalues

    def refactor(self, data):
        """New values on the same pattern: numerical factorization only (analysis reused)."""
        self._a[:] = data
        self._phase(22)

    def solve(self, rhs):
        """``x`` with ``A x = rhs`` (rhs (n,) or (n, k), real)."""
        b = np.asfortranarray(np.asarray(rhs, dtype=np.float64))
        x = np.zeros_like(b, order="F")
        self._phase(33, b, x, nrhs=1 if b.ndim == 1 else b.shape[1])
        return x

    def close(self):
        """Free the analysis and the factors (safe to call twice)."""
        if getattr(self, "_alive", False):
            self._alive = False
            try:
                self._phase(-1)
            except PardisoError:  # pragma: no cover - release does not fail in practice
                pass
            self._pt[:] = 0

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
