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
(kept per process for the next call on the same system; freed by
:func:`femfreq.solvers.clear_caches`). For light damping, the planner cuts sweeps
into sub-bands of equal mode count with :func:`mode_weights`, estimated with Sturm
counts (:func:`count_modes`: the inertia of ``K - s M``).

Modules: :mod:`.factors` (the real factorizations of ``K - s M``), :mod:`.modes`
(mode counts and weights), :mod:`.basis` (the reduced basis and its certificate),
:mod:`.reduced` (one pass: build, certify), :mod:`.band` (:func:`solve_band`,
with the direct fallback), :mod:`.response` (:class:`FactoredResponse`: a band's
response as its bases at the outputs times the reduced solutions, what a dask task
sends back).

See ``docs/fast_sweep.md`` for the design and its measurements.
"""

from .band import BandResult, solve_band
from .modes import count_modes, mode_weights, sturm_frequencies
from .response import FactoredResponse

__all__ = ["BandResult", "FactoredResponse", "count_modes", "mode_weights", "solve_band", "sturm_frequencies"]
