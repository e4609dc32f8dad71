"""MKL PARDISO through ctypes: complex symmetric LDL^T with the analysis reused.

A thin binding to ``pardiso`` in the single dynamic library ``mkl_rt`` of the
``mkl`` runtime wheel (PyPI). ``A(omega) = (1 + i g) K + i omega C - omega^2 M``
of a symmetric model is complex *symmetric* (not Hermitian), PARDISO matrix type
6; its upper triangle is passed in zero-based CSR. The fill-reducing ordering
and symbolic factorization (phase 11) depend only on the pattern, which is the
same at every frequency, so they are done once; each frequency costs a
numerical factorization + solve (phase 23). Phase -1 frees everything.

Non-symmetric systems use matrix type 13 (complex unsymmetric, full CSR)
instead of being refused; ``"auto"`` does not pick PARDISO for them, but
``get_solver(system, "pardiso")`` works.

Set ``FEMFREQ_NO_MKL=1`` to hide PARDISO (tests of the fallback), or
``FEMFREQ_MKL_RT=/path/libmkl_rt.so.2`` to point at a specific library.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from ..errors import PardisoError, SingularMatrixError, SolverUnavailableError
from . import _mkl
from ._structure import upper_triangle, values_on
from .base import DirectSolver, _describe

__all__ = ["PardisoError", "PardisoSolver", "mkl_memory_bytes", "mkl_threads",
           "pardiso_available"]

logger = logging.getLogger(__name__)

# PARDISO error codes (MKL reference, "pardiso" -> "error")
_ERRORS = {
    -1: "input inconsistent",
    -2: "not enough memory",
    -3: "reordering problem",
    -4: "zero pivot, numerical factorization or iterative refinement problem",
    -5: "unclassified (internal) error",
    -6: "reordering failed (matrix types 11 and 13 only)",
    -7: "diagonal matrix is singular",
    -8: "32-bit integer overflow problem",
    -9: "not enough memory for out-of-core solver",
    -10: "error opening out-of-core files",
    -11: "read/write error with out-of-core files",
    -12: "pardiso_64 called from a 32-bit library",
    -13: "interrupted by the mkl_progress function",
    -15: "internal error (parallel factorization with matching); try matching=False",
}




#: after this many frequencies refactored with Bunch-Kaufman pivots, a solver keeps them
_BK_SWITCH = 3

_ORDERINGS = {"amd": 0, "metis": 2, "parallel-metis": 3, "pymetis": 2}


def _have_pymetis() -> bool:
    try:
        import pymetis  # noqa: F401
    except ImportError:
        return False
    return True


def nested_dissection(indptr, indices, n):
    """METIS nested-dissection ordering (pymetis) of the symmetrised graph of a sparse pattern.

    Parameters
    ----------
    indptr, indices : arrays
        CSC (or CSR) pattern of an (n, n) matrix.
    n : int

    Returns
    -------
    perm : (n,) int64 array
        ``perm[k]`` is the row eliminated k-th (PARDISO's ``perm`` with ``iparm[4] = 1``).
    """
    import pymetis
    import scipy.sparse as sp

    P = sp.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(n, n))
    G = (P + P.T).tocoo()
    off = G.row != G.col
    G = sp.csr_matrix((np.ones(int(off.sum()), dtype=np.int8), (G.row[off], G.col[off])), shape=(n, n))
    if G.nnz == 0:
        return np.arange(n, dtype=np.int64)
    perm, _ = pymetis.nested_dissection(adjacency=pymetis.CSRAdjacency(G.indptr, G.indices))
    return np.asarray(perm, dtype=np.int64)


def pardiso_available() -> tuple[bool, str]:
    """Whether MKL PARDISO can be used in this process, and why not.

    Returns
    -------
    ok : bool
    reason : str
        Empty when ``ok``; else why (``FEMFREQ_NO_MKL`` set, library not found, ...).
    """
    return _mkl.status()


def mkl_memory_bytes() -> int:
    """Bytes currently allocated by MKL's memory manager (includes PARDISO's factors)."""
    return _mkl.memory_bytes()


@contextlib.contextmanager
def mkl_threads(n: int):
    """MKL's thread count for the MKL calls of this thread inside the block.

    A dask nanny starts its workers with ``MKL_NUM_THREADS=1``; a worker with more
    threads sets its count here around a chunk. MKL's thread-local setting: other
    threads keep theirs. A no-op for ``n = 0`` or without MKL.

    Parameters
    ----------
    n : int
        Threads (>= 0; 0 leaves MKL's setting as it is).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"threads must be an integer >= 0 (got {n!r})")
    mkl = _mkl.load() if n and _mkl.status()[0] else None
    prev = mkl.set_threads_local(int(n)) if mkl is not None else None
    try:
        yield
    finally:
        if mkl is not None:
            mkl.set_threads_local(prev)


# -- the one call path ---------------------------------------------------------------
_STAGES = {11: "analysis", 12: "analysis + factorization", 22: "factorization",
           23: "factorization + solve", 33: "solve", -1: "release"}


def _pardiso(mkl, pt, mtype, phase, n, a, ia, ja, perm, iparm, B, X, nrhs, threads=0) -> int:
    """One PARDISO call (maxfct = mnum = 1, no messages); returns PARDISO's error code.

    ``ia``, ``ja``, ``perm`` and ``iparm`` are arrays of ``mkl.int_type``; ``threads``
    > 0 sets MKL's thread count for this call only (0: MKL's global setting).
    """
    scalars = np.array([1, 1, mtype, phase, n, nrhs, 0, 0], dtype=mkl.int_type)
    p = lambda arr: arr.ctypes.data  # noqa: E731
    s = lambda i: scalars.ctypes.data + i * scalars.itemsize  # noqa: E731
    prev = mkl.set_threads_local(threads) if threads else None
    try:
        mkl.pardiso(
            p(pt), s(0), s(1), s(2), s(3), s(4),
            p(a), p(ia), p(ja), p(perm), s(5),
            p(iparm), s(6), p(B), p(X), s(7),
        )
    finally:
        if prev is not None:
            mkl.set_threads_local(prev)
    return int(scalars[7])


def _error(phase, err, omega=None) -> PardisoError:
    """The :class:`PardisoError` for a failed phase (``omega`` named when known)."""
    what = _ERRORS.get(err, "unknown error")
    return PardisoError(
        f"PARDISO {_STAGES.get(phase, f'phase {phase}')} failed with error {err}: {what}"
        + (f" at {_describe(omega)}" if omega is not None else ""),
        err,
    )


# -- the solver --------------------------------------------------------------------
class PardisoSolver(DirectSolver):
    """MKL PARDISO, complex symmetric (matrix type 6) with the analysis reused.

    Parameters
    ----------
    system : femfreq.system.System
    threads : int, optional
        MKL threads for this solver's PARDISO calls (default 1: one per dask
        worker process; two 1-thread processes beat one 2-thread process).
        0 uses MKL's global setting. Set thread-locally around each call; a sweep's
        chunk on a dask worker with more threads passes the worker's count
        (:func:`femfreq.execute.solve_chunk`).
    ordering : {"auto", "pymetis", "metis", "parallel-metis", "amd"}, optional
        Fill-reducing ordering of the analysis. "pymetis": METIS 5 nested
        dissection computed by :func:`nested_dissection` (the ``pymetis``
        package) and handed to PARDISO as a user permutation (``iparm[4] = 1``);
        on large 2-D trusses its factor has fewer flops than PARDISO's own
        METIS (figures in docs/fast_sweep.md and ``benchmarks/bench_solvers.py``),
        but it excludes the sparse right-hand side
        solve (both use PARDISO's ``perm`` array). "metis", "parallel-metis",
        "amd": PARDISO's own (``iparm[1]`` = 2, 3, 0). "auto" (default): "metis"
        with the sparse right-hand side solve for a point load (``sparse_rhs``),
        else "pymetis" if pymetis is installed, else "metis".
    matching : bool, optional
        Symmetric weighted matching and scaling (iparm[10] = iparm[12] = 1).
        Off by default: PARDISO computes them from the *values* given at the
        analysis, which would tie every later frequency to ``analysis_omega``;
        pivot perturbation + refinement + the residual check cover the rare
        tiny pivot instead.
    analysis_omega : float, optional
        Frequency (rad/s) whose values are passed to the analysis (only matters
        with ``matching=True``); default 0.
    refinement : int, optional
        Maximum iterative refinement steps (iparm[7]); default 0, which means
        MKL does two steps only when pivots were perturbed.
    pivot_perturbation : int, optional
        Small pivots are replaced by ``10**-p * ||A||`` (iparm[9]); default 8
        for symmetric indefinite, 13 for unsymmetric.
    symmetric : bool, optional
        Force matrix type 6 (True) or 13 (False); default ``system.is_symmetric``.
    iparm : dict of int to int, optional
        Expert overrides of PARDISO's ``iparm`` (0-based index -> value), applied
        after the settings below, e.g. ``{23: 1}`` for the two-level factorization.
        Indices 5, 27, 34, 35, 36 and 59 are fixed by the binding.
    sparse_rhs : "auto", None or array of int, optional
        Rows where the right-hand sides may be non-zero. PARDISO then skips the
        forward substitution's work outside their elimination paths
        (``iparm[30] = 2``, sparse right-hand side, full solution): a point load
        makes the solve phase several times cheaper (``benchmarks/bench_solvers.py``).
        ``"auto"`` (default): the non-zeros of ``system.b`` when
        they are at most 1 % of the rows; None: off. A right-hand side with a
        non-zero elsewhere (iterative refinement, another load) is solved with
        the ordinary full substitution, so every right-hand side stays exact.
    singular_tol : float, optional
        See :class:`~femfreq.solvers.base.DirectSolver`.

    Attributes
    ----------
    calls : list of int
        The PARDISO phases called so far (11 once, 23 per frequency, 33 per
        re-solve, -1 at close); a record for tests and logs.
    mtype : int
        PARDISO matrix type (6 or 13).

    Notes
    -----
    iparm (0-based) as set here: [0]=1 no defaults; [1] ordering; [3]=0 direct
    (no CGS); [4]=0 no user permutation; [5]=0 solution in x; [7] refinement;
    [9] pivot perturbation; [10], [12] scaling/matching; [17]=-1 report nnz of
    the factors; [18]=-1 report the factorization's MFlop; [20]=0 1x1 pivots (symmetric;
    a frequency whose relative residual exceeds ``retry_above`` is refactored with [20]=1,
    Bunch-Kaufman 1x1 and 2x2 pivots, which the solver keeps after 3 such frequencies; an
    ``iparm`` override of [20] turns the retry off);
    [23]=0 classic factorization; [24]=0 sequential forward/backward solve;
    [26] matrix checker (on for the analysis only); [27]=0 double precision;
    [30]=2 or 0 sparse right-hand side per call (see ``sparse_rhs``); [34]=1 zero-based indices; [36]=0 CSR; [59]=0 in-core. Outputs read back:
    [6] refinement steps done, [13] perturbed pivots, [14]-[16] memory (KB),
    [17] nnz of the factors.
    """

    name = "pardiso"

    def __init__(
        self,
        system,
        *,
        threads: int = 1,
        ordering: str = "auto",
        matching: bool = False,
        analysis_omega: float = 0.0,
        refinement: int = 0,
        pivot_perturbation: int | None = None,
        symmetric: bool | None = None,
        iparm: dict | None = None,
        sparse_rhs="auto",
        **options,
    ):
        if _mkl.hidden():
            raise SolverUnavailableError(
                "solver 'pardiso' is not available: hidden by FEMFREQ_NO_MKL; use solver='superlu'"
            )
        self._mkl = _mkl.load()
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"threads must be an integer >= 0 (got {threads!r})")
        if ordering != "auto" and ordering not in _ORDERINGS:
            raise ValueError(f"unknown ordering {ordering!r}; pick one of {['auto', *_ORDERINGS]}")
        if ordering == "pymetis" and not _have_pymetis():
            raise SolverUnavailableError("ordering 'pymetis' needs the pymetis package (pip install pymetis)")
        refinement = int(refinement)
        if refinement < 0:
            raise ValueError(f"refinement must be >= 0 (got {refinement})")
        self.threads = int(threads)
        self.symmetric_input = system.is_symmetric if symmetric is None else bool(symmetric)
        self.mtype = 6 if self.symmetric_input else 13
        if pivot_perturbation is None:
            pivot_perturbation = 8 if self.mtype == 6 else 13
        pivot_perturbation = int(pivot_perturbation)
        if not 1 <= pivot_perturbation <= 20:
            raise ValueError(f"pivot_perturbation must be in 1..20 (got {pivot_perturbation})")
        overrides = {}
        for key, value in dict(iparm or {}).items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < 64:
                raise ValueError(f"iparm keys must be 0-based indices 0..63 (got {key!r})")
            if key in (34, 35, 36, 27, 59, 5):
                raise ValueError(f"iparm[{key}] is fixed by the binding (indexing, storage, precision, in-core)")
            if key == 4 and ordering == "pymetis":
                raise ValueError("iparm[4] conflicts with ordering='pymetis' (a user permutation); "
                                 "pick another ordering")
            overrides[int(key)] = int(value)
        self.iparm_overrides = overrides
        self._bk_retry = self.mtype == 6 and 20 not in overrides
        # the partial solve marks its rows in PARDISO's perm array, which a user
        # permutation (pymetis) occupies: the two exclude each other
        rows = self._sparse_rhs_rows(system, sparse_rhs, overrides)
        if ordering == "auto":
            # a point load: PARDISO's METIS and the sparse-rhs solve (measured to tie
            # with pymetis there); else the better pymetis ordering; a user iparm[4]
            # keeps PARDISO's
            ordering = "pymetis" if _have_pymetis() and rows is None and 4 not in overrides else "metis"
        self._sparse_rows = None if ordering == "pymetis" else rows
        self.ordering = ordering
        self.matching = bool(matching)
        self.analysis_omega = self._check_omega(analysis_omega)
        self.refinement = refinement
        self.pivot_perturbation = pivot_perturbation
        self.calls: list[int] = []
        self._pt = np.zeros(64, dtype=np.int64)  # PARDISO's opaque handle (64 pointers)
        self._handle_live = False
        super().__init__(
            system,
            threads=threads,
            ordering=ordering,
            matching=matching,
            refinement=refinement,
            pivot_perturbation=pivot_perturbation,
            iparm=tuple(sorted(overrides.items())),
            sparse_rhs=None if self._sparse_rows is None else tuple(self._sparse_rows.tolist()),
            **options,
        )

    @staticmethod
    def _sparse_rhs_rows(system, sparse_rhs, overrides):
        """Sorted rows of the sparse right-hand sides, or None (partial solve off)."""
        n = system.n
        # a user permutation (iparm[4]) shares the perm array; the two-level
        # factorization (iparm[23]) does not support the partial solve
        if sparse_rhs is None or overrides.get(4, 0) or overrides.get(23, 0) or 30 in overrides:
            return None
        if isinstance(sparse_rhs, str):
            if sparse_rhs != "auto":
                raise ValueError(f"sparse_rhs must be 'auto', None or an array of row indices (got {sparse_rhs!r})")
            rows = np.flatnonzero(np.asarray(system.b))
            return rows if 0 < rows.size <= max(1, n // 100) else None
        rows = np.asarray(sparse_rhs)
        if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"sparse_rhs must be a non-empty 1-D array of row indices (got {sparse_rhs!r})")
        if rows.min() < 0 or rows.max() >= n:
            bad = rows[(rows < 0) | (rows >= n)][0]
            raise ValueError(f"sparse_rhs row {bad} is out of range for n = {n}")
        return np.unique(rows)

    # -- structure --------------------------------------------------------------
    def _csr_structure(self):
        """CSR (zero-based) of the matrix PARDISO sees, and where its values come from."""
        s = self.system
        indptr, indices = s.pattern
        if self.mtype == 6:
            # an entry zero in K, C and M (an explicit zero) is zero at every frequency: left
            # out, it does not fill the factor (level 7: 22,276 of 8.6 M entries, 2.8 % fewer flops)
            return upper_triangle(indptr, indices, s.n, keep=(s.k_values != 0) | (s.c_values != 0)
                                  | (s.m_values != 0))
        n, nnz = s.n, indices.size
        col = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        # CSR of A from its CSC: a stable sort on the rows keeps each row's columns sorted
        order = np.argsort(indices, kind="stable")
        ia = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(indices, minlength=n), out=ia[1:])
        return ia, col[order], np.arange(nnz, dtype=np.int64)[order]

    def _analyse(self):
        n, nnz = self.system.n, self.system.nnz
        itype = self._mkl.int_type
        if itype == np.int32 and max(n, nnz) >= 2**31 - 1:
            raise ValueError(
                f"system too large for 32-bit PARDISO (n = {n}, nnz = {nnz}); use solver='superlu'"
            )
        ia, ja, src = self._csr_structure()
        self._ia = ia.astype(itype)
        self._ja = ja.astype(itype)
        # K, C, M values on PARDISO's pattern (inserted diagonals: 0), so that each
        # frequency fills A's values in place with no temporary of the full pattern
        s = self.system
        self._k, self._c, self._m = values_on(src, s.k_values, s.c_values, s.m_values)
        self._has_c = bool(np.any(self._c))
        self._tmp = np.empty(src.size)
        self._a = np.empty(src.size, dtype=np.complex128)
        iparm = np.zeros(64, dtype=itype)
        iparm[0] = 1  # no solver defaults: everything below is deliberate
        iparm[1] = _ORDERINGS[self.ordering]
        iparm[3] = 0  # direct solve, no preconditioned CGS
        iparm[4] = 0  # no user permutation
        iparm[5] = 0  # solution written to x, b untouched
        iparm[7] = self.refinement  # 0: two refinement steps only if pivots were perturbed
        iparm[9] = self.pivot_perturbation  # perturb pivots below 10^-p ||A||
        iparm[10] = 1 if self.matching else 0  # scaling (needs values at the analysis)
        iparm[12] = 1 if self.matching else 0  # weighted matching (ditto)
        iparm[17] = -1  # report nnz of the factors
        iparm[18] = -1  # report the factorization's MFlop count
        # symmetric: 1x1 diagonal pivots (faster than Bunch-Kaufman 1x1/2x2 pivots on the
        # satellite's A(omega), equally accurate; benchmarks/bench_solvers.py); a frequency
        # whose residual shows a pivot was too small is refactored with Bunch-Kaufman pivots
        iparm[20] = 0 if self._bk_retry else 1
        iparm[23] = 0  # classic factorization (two-level only pays with many threads)
        iparm[24] = 0  # sequential forward/backward substitution
        iparm[26] = 1  # check the CSR structure once, at the analysis
        iparm[27] = 0  # double precision
        iparm[34] = 1  # zero-based ia, ja
        iparm[36] = 0  # CSR storage
        iparm[59] = 0  # in-core
        for key, value in self.iparm_overrides.items():
            iparm[key] = value
        # perm: the pymetis ordering (a user permutation), or else the partial solve's
        # marks (1 = a right-hand side may be non-zero there), which PARDISO overwrites
        # with its own permutation at the analysis and reads later
        self._perm = np.zeros(n, dtype=itype)
        if self.ordering == "pymetis":
            self._perm[:] = nested_dissection(*self.system.pattern, n)
            iparm[4] = 1  # user permutation in perm
        elif self._sparse_rows is not None:
            self._perm[self._sparse_rows] = 1
            self._rhs_mask = np.ones(n, dtype=bool)
            self._rhs_mask[self._sparse_rows] = False  # True where a sparse rhs must be 0
            iparm[30] = 2  # sparse right-hand side, full solution
        self._iparm = iparm
        self._fill(self.analysis_omega)
        dummy = np.zeros((n, 1), dtype=np.complex128, order="F")
        try:
            self._call(11, dummy, dummy.copy(), 1)
        except Exception:
            self._release()
            raise
        iparm[26] = 0
        self.stats.update(
            partial_solves=0,
            factor_nnz=int(iparm[17]),
            factor_mflop=int(iparm[18]),
            analysis_memory_kb=int(iparm[14]),
            mtype=self.mtype,
            perturbed_pivot_frequencies=0,
            bunch_kaufman_refactorizations=0,
        )
        logger.debug(
            "PARDISO analysis: n=%d, nnz(upper)=%d, nnz(factor)=%d, mtype=%d, ordering=%s",
            n, self._ja.size, iparm[17], self.mtype, self.ordering,
        )

    def _fill(self, omega):
        """``A(omega)``'s values on PARDISO's pattern, into ``self._a`` (no allocation)."""
        re, im, tmp = self._a.real, self._a.imag, self._tmp
        # A = (1 + i g) K + i w C - w^2 M; a term that is 0 everywhere (no C, g = 0) is skipped
        np.multiply(self._m, -omega * omega, out=tmp)
        np.add(tmp, self._k, out=re)
        g = self.system.g
        if g:
            np.multiply(self._k, g, out=im)
            if self._has_c:
                np.multiply(self._c, omega, out=tmp)
                im += tmp
        elif self._has_c:
            np.multiply(self._c, omega, out=im)
        else:
            im[...] = 0.0

    # -- calls ----------------------------------------------------------------------
    def _call(self, phase, B, X, nrhs, omega=None):
        err = _pardiso(self._mkl, self._pt, self.mtype, phase, self.system.n, self._a, self._ia, self._ja,
                       self._perm, self._iparm, B, X, nrhs, self.threads)
        self.calls.append(phase)
        if phase == 11:
            self._handle_live = True
        if err:
            if phase != 11 and err in (-4, -7):
                raise SingularMatrixError(
                    f"A(omega) is singular at {_describe(omega)}: PARDISO error {err} ({_ERRORS[err]})",
                    omega,
                )
            raise _error(phase, err, omega)

    def _use_partial(self, B):
        """Sparse-rhs substitution (iparm[30] = 2) for B if B is zero off the marked rows."""
        if self._sparse_rows is None:
            return False
        partial = not B[self._rhs_mask].any()
        self._iparm[30] = 2 if partial else 0
        self.stats["partial_solves"] += int(partial)
        return partial

    def _factor_solve(self, omega, B):
        self._fill(omega)
        X = np.empty_like(B, order="F")
        self._use_partial(B)
        self._call(23, B, X, B.shape[1], omega)
        perturbed = int(self._iparm[13])
        self.last_info = {"perturbed_pivots": perturbed, "refinement_steps": int(self._iparm[6])}
        if perturbed:
            self.stats["perturbed_pivot_frequencies"] += 1
            logger.debug(
                "PARDISO at %s: %d perturbed pivots, %d refinement steps",
                _describe(omega), perturbed, int(self._iparm[6]),
            )
        self.stats["factor_memory_kb"] = int(self._iparm[15] + self._iparm[16])
        return X

    def _factor_solve_safer(self, omega, B):
        """Refactor with Bunch-Kaufman 1x1 and 2x2 pivots (a 1x1 pivot was too small)."""
        if not self._bk_retry:
            return None
        logger.debug("PARDISO at %s: residual %.3g with 1x1 pivots, refactoring with Bunch-Kaufman pivots",
                     _describe(omega), float(self.last_info["rel_residual"].max())
                     if "rel_residual" in self.last_info else float("inf"))
        self.stats["bunch_kaufman_refactorizations"] += 1
        self._iparm[20] = 1
        try:
            return self._factor_solve(omega, B)
        finally:
            if self.stats["bunch_kaufman_refactorizations"] >= _BK_SWITCH:
                # this model needs 2x2 pivots: keep them rather than factor twice per frequency
                self._bk_retry = False
                logger.info("PARDISO: %d frequencies needed Bunch-Kaufman pivots; using them from now on",
                            _BK_SWITCH)
            else:
                self._iparm[20] = 0

    def _solve_factored(self, B):
        X = np.empty_like(B, order="F")
        self._use_partial(B)
        self._call(33, B, X, B.shape[1], self._factored_omega)
        return X

    def _singular_hint(self):
        p = self.last_info.get("perturbed_pivots", 0) if self.last_info else 0
        return f" ({p} perturbed pivots)" if p else ""

    def _release(self):
        if getattr(self, "_handle_live", False):
            self._handle_live = False  # guard against a double free even if phase -1 fails
            n = self.system.n
            dummy = np.zeros((n, 1), dtype=np.complex128, order="F")
            try:
                self._call(-1, dummy, dummy.copy(), 1)
            finally:
                self._pt[:] = 0
