"""Real symmetric factorizations of ``K - s M`` for the shifts of the fast sweep."""

from __future__ import annotations

import atexit
import ctypes
import os
import sys
import threading
import weakref

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

# ---------------------------------------------------------------------------
# real symmetric factorization of K - s M
# ---------------------------------------------------------------------------
def _mkl_rt():
    """The MKL runtime library, or None."""
    for name in (os.path.join(sys.prefix, "lib", "libmkl_rt.so.3"), "libmkl_rt.so.3",
                 "libmkl_rt.so.2", "libmkl_rt.so", "mkl_rt.2.dll", "mkl_rt.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class _PardisoRealSym:
    """MKL PARDISO for a real symmetric indefinite matrix (mtype -2), factor once, solve many."""

    name = "pardiso-real-symmetric"

    def __init__(self, lib, A, triu=None):
        self._lib = lib
        if triu is None:
            A = sp.csr_matrix(sp.triu(A, format="csr") + sp.diags(np.zeros(A.shape[0]), format="csr"))
            A.sum_duplicates()
            A.sort_indices()
            triu = (A.indptr, A.indices, A.data)
        indptr, indices, data = triu  # upper triangle, sorted, full diagonal
        self.n = indptr.size - 1
        self._a = np.array(data, dtype=np.float64)
        self._ia = np.ascontiguousarray(indptr, dtype=np.int32)
        self._ja = np.ascontiguousarray(indices, dtype=np.int32)
        self._pt = np.zeros(64, dtype=np.int64)
        self._iparm = np.zeros(64, dtype=np.int32)
        self._mtype = ctypes.c_int32(-2)
        lib.pardisoinit(self._pt.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self._mtype),
                        self._iparm.ctypes.data_as(ctypes.c_void_p))
        self._iparm[0] = 1
        self._iparm[1] = 2  # nested dissection (METIS)
        self._iparm[7] = 0  # no iterative refinement: any basis vector will do, the certificate checks
        self._iparm[23] = 1  # two-level parallel factorization (faster also on one thread here)
        self._iparm[34] = 1  # zero-based indices
        self._alive = True
        self._call(12, np.zeros(1), np.zeros(1), nrhs=1)
        self.perturbed_pivots = int(self._iparm[13])
        self.n_negative = int(self._iparm[22])  # inertia: number of negative eigenvalues

    def _call(self, phase, b, x, nrhs):
        i32 = ctypes.c_int32
        err = i32(0)
        self._lib.pardiso(
            self._pt.ctypes.data_as(ctypes.c_void_p), ctypes.byref(i32(1)), ctypes.byref(i32(1)),
            ctypes.byref(self._mtype), ctypes.byref(i32(phase)), ctypes.byref(i32(self.n)),
            self._a.ctypes.data_as(ctypes.c_void_p), self._ia.ctypes.data_as(ctypes.c_void_p),
            self._ja.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(None), ctypes.byref(i32(nrhs)),
            self._iparm.ctypes.data_as(ctypes.c_void_p), ctypes.byref(i32(0)),
            b.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(err),
        )
        if err.value != 0:
            raise RuntimeError(f"PARDISO (mtype -2) phase {phase} failed with error {err.value}")

    def refactor(self, data):
        """New values on the same pattern: numerical factorization only (analysis reused)."""
        self._a[:] = data
        self._call(22, np.zeros(1), np.zeros(1), nrhs=1)
        self.perturbed_pivots = int(self._iparm[13])
        self.n_negative = int(self._iparm[22])

    def solve(self, rhs):
        rhs = np.asarray(rhs, dtype=np.float64)
        b = np.asfortranarray(rhs)
        x = np.zeros_like(b, order="F")
        self._call(33, b, x, nrhs=1 if b.ndim == 1 else b.shape[1])
        return x

    def close(self):
        if self._alive:
            self._alive = False
            try:
                self._call(-1, np.zeros(1), np.zeros(1), nrhs=1)
            except RuntimeError:  # pragma: no cover - release never fails in practice
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class _SuperLUReal:
    """scipy SuperLU on the real matrix (symmetric mode, minimum degree on A + A^T)."""

    name = "superlu-real"

    def __init__(self, A):
        self._lu = spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                             options={"SymmetricMode": True})
        self.perturbed_pivots = 0
        self.n_negative = None  # SuperLU does not report the inertia

    def solve(self, rhs):
        return self._lu.solve(np.asarray(rhs, dtype=np.float64))

    def close(self):
        self._lu = None


class _ShiftedFactors:
    """Factorizations of ``K - s M`` for successive real shifts ``s``.

    With PARDISO the ordering and symbolic analysis (pattern of ``K + M``) is done
    once and every further shift costs a numerical factorization only (phase 22);
    the one factorization is overwritten in place. SuperLU factors afresh.
    Use :meth:`factor` (the previous factorization becomes invalid) and :meth:`close`.
    """

    def __init__(self, system, backend="auto"):
        if backend not in ("auto", "pardiso", "superlu"):
            raise ValueError(f"unknown factor backend {backend!r}; pick one of ['auto', 'pardiso', 'superlu']")
        self.system = system
        self._lib = _mkl_rt() if backend in ("auto", "pardiso") else None
        if backend == "pardiso" and self._lib is None:
            raise ValueError("factor='pardiso' needs the MKL runtime (libmkl_rt), which is not loadable")
        self._pd = None
        self._F = None
        self.name = _PardisoRealSym.name if self._lib is not None else _SuperLUReal.name

    def _pattern(self):
        """Upper-triangle pattern of K + M (full diagonal) and K, M values on it."""
        K, M = self.system.K, self.system.M
        n = K.shape[0]
        P = sp.triu(abs(K) + abs(M) + sp.eye(n, format="csr"), format="csr")
        P.sum_duplicates()
        P.sort_indices()
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(P.indptr))
        keys = rows * n + P.indices
        vals = []
        for A in (K, M):
            T = sp.triu(A, format="coo")
            v = np.zeros(keys.size)
            np.add.at(v, np.searchsorted(keys, T.row.astype(np.int64) * n + T.col), T.data)
            vals.append(v)
        return P.indptr, P.indices, vals[0], vals[1]

    def factor(self, s):
        """The factorization of ``K - s M`` (object with ``solve``, ``n_negative``)."""
        if self._lib is None:
            if self._F is not None:
                self._F.close()
            self._F = _SuperLUReal(self.system.K - s * self.system.M)
            return self._F
        if self._pd is None:
            indptr, indices, self._kv, self._mv = self._pattern()
            self._pd = _PardisoRealSym(self._lib, None, triu=(indptr, indices, self._kv - s * self._mv))
        else:
            self._pd.refactor(self._kv - s * self._mv)
        return self._pd

    def close(self):
        if self._pd is not None:
            self._pd.close()
            self._pd = None
        if self._F is not None:
            self._F.close()
            self._F = None


_CACHE_LOCK = threading.Lock()
_CACHE = {"system": None, "backend": None, "factors": None}


def _cached_factors(system, backend):
    """``(factors, release)`` for ``system``: the process's cached analysis when free, else a private one.

    A worker process solving many sub-bands of one model pays the PARDISO ordering
    and symbolic analysis once (~3.6 s of 4.7 s per fresh factorization at level 7).
    The cache holds one system (a weak reference) and its last factorization; a
    concurrent call (threaded worker) gets private factors, closed after use.
    :func:`free_factor_cache` releases the memory.
    """
    if backend == "superlu" or not _CACHE_LOCK.acquire(blocking=False):
        private = _ShiftedFactors(system, backend)  # SuperLU has no analysis to keep
        return private, private.close
    try:
        ref = _CACHE["system"]
        if ref is None or ref() is not system or _CACHE["backend"] != backend:
            if _CACHE["factors"] is not None:
                _CACHE["factors"].close()
            _CACHE.update(system=None, backend=None, factors=None)
            factors = _ShiftedFactors(system, backend)
            if factors._lib is None:  # no MKL: nothing worth keeping
                _CACHE_LOCK.release()
                return factors, factors.close
            _CACHE.update(system=weakref.ref(system), backend=backend, factors=factors)
    except BaseException:
        _CACHE_LOCK.release()
        raise
    return _CACHE["factors"], _CACHE_LOCK.release


def free_factor_cache():
    """Release the factorization kept by :func:`solve_band` for the next call on the same system."""
    with _CACHE_LOCK:
        if _CACHE["factors"] is not None:
            _CACHE["factors"].close()
        _CACHE.update(system=None, backend=None, factors=None)


atexit.register(free_factor_cache)


def _factor_real(A, backend="auto"):
    """Factor the real symmetric ``A`` with PARDISO (mtype -2) if MKL loads, else SuperLU."""
    if backend in ("auto", "pardiso"):
        lib = _mkl_rt()
        if lib is not None:
            return _PardisoRealSym(lib, A)
        if backend == "pardiso":
            raise ValueError("factor='pardiso' needs the MKL runtime (libmkl_rt), which is not loadable")
    if backend not in ("auto", "pardiso", "superlu"):
        raise ValueError(f"unknown factor backend {backend!r}; pick one of ['auto', 'pardiso', 'superlu']")
    return _SuperLUReal(A)
