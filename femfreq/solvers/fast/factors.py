"""Real symmetric factorizations of ``K - s M`` for the shifts of the fast sweep.

PARDISO (matrix type -2, through :class:`~femfreq.solvers.pardiso_real.RealSymmetricPardiso`)
when MKL loads: the ordering and symbolic analysis of the pattern of ``K + M`` is
done once and every further shift costs a numerical factorization, with the
inertia (Sturm count) for free. Without MKL (or ``FEMFREQ_NO_MKL=1``), SuperLU
factors each shift afresh. :func:`shifted_factors` lends the process's kept
factorization (owned by :mod:`femfreq.solvers`, freed by
:func:`~femfreq.solvers.clear_caches`).
"""

from __future__ import annotations

from contextlib import contextmanager

from .. import _mkl, borrow_factors
from .._structure import upper_triangle, values_on
from ..ordering import ordering_of
from ..pardiso_real import RealSymmetricPardiso
from ..superlu import RealSymmetricSuperLU

__all__ = ["FACTOR_BACKENDS", "ShiftedFactors", "factor_backend", "shifted_factors"]

FACTOR_BACKENDS = ("auto", "pardiso", "superlu")


def factor_backend(name: str = "auto") -> str:
    """``"pardiso"`` or ``"superlu"``: the backend ``name`` means in this process.

    Raises
    ------
    ValueError
        For an unknown name, or ``"pardiso"`` when MKL is not available.
    """
    if name not in FACTOR_BACKENDS:
        raise ValueError(f"unknown factor backend {name!r}; pick one of {list(FACTOR_BACKENDS)}")
    if name == "superlu":
        return name
    ok, reason = _mkl.status()
    if ok:
        return "pardiso"
    if name == "pardiso":
        raise ValueError(f"factor='pardiso' needs the MKL runtime (libmkl_rt): {reason}")
    return "superlu"


class ShiftedFactors:
    """Factorizations of ``K - s M`` for successive real shifts ``s``.

    With PARDISO the analysis is done at the first shift and reused; the one
    factorization is overwritten in place. Use :meth:`factor` (the previous
    factorization becomes invalid) and :meth:`close`.

    Parameters
    ----------
    system : femfreq.system.System
    backend : {"auto", "pardiso", "superlu"}
    """

    def __init__(self, system, backend="auto"):
        self.system = system
        self.backend = factor_backend(backend)
        self.name = RealSymmetricPardiso.name if self.backend == "pardiso" else RealSymmetricSuperLU.name
        self.analyses = 0
        self.ordering = None  # what ordered the last analysis: "model nodes" (given) or PARDISO's own
        self._F = None

    def _pattern(self):
        """Upper triangle (full diagonal) of the System's pattern where K or M has a non-zero,
        and K, M values on it. An entry zero in both (an explicit zero of K, a C-only entry) is
        zero at every shift: left out, it neither fills the factor nor changes its ordering."""
        s = self.system
        ia, ja, src = upper_triangle(*s.pattern, s.n, keep=(s.k_values != 0) | (s.m_values != 0))
        return (ia, ja, *values_on(src, s.k_values, s.m_values))

    def factor(self, s):
        """The factorization of ``K - s M`` (object with ``solve``, ``n_negative``, ``name``)."""
        if self.backend == "superlu":
            self.close()
            self._F = RealSymmetricSuperLU(self.system.K - s * self.system.M)
            self.analyses += 1
        elif self._F is None:
            indptr, indices, self._kv, self._mv = self._pattern()
            perm = ordering_of(self.system)
            self._F = RealSymmetricPardiso(indptr, indices, self._kv - s * self._mv, perm=perm)
            self.ordering = "metis" if perm is None else "model nodes"
            self.analyses += 1
        else:
            self._F.refactor(self._kv - s * self._mv)
        return self._F

    def close(self):
        """Free the factorization (safe to call twice)."""
        if self._F is not None:
            self._F.close()
            self._F = None


@contextmanager
def shifted_factors(system, backend="auto"):
    """A :class:`ShiftedFactors` for ``system``, the process's kept one when it is free.

    Only PARDISO's analysis is worth keeping (for the next call on the same system,
    e.g. the next sub-band a dask worker runs); SuperLU factors are private and
    closed at the end of the ``with`` block.
    """
    backend = factor_backend(backend)
    with borrow_factors(system, ("shifted", backend), lambda: ShiftedFactors(system, backend),
                        keep=backend == "pardiso") as factors:
        yield factors
