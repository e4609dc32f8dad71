"""The reduced basis of the fast sweep and its residual certificate."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

_EPS = np.finfo(float).eps

# ---------------------------------------------------------------------------
# the reduced basis and its residual certificate
# ---------------------------------------------------------------------------
def _times(X, h):
    """``X @ h`` for a tall Fortran-ordered ``X`` and a small ``h``, itself Fortran-ordered (numpy
    writes a product in C order, which the column loops and BLAS then read across)."""
    return (h.T @ X.T).T


def _sparse_times(A, X):
    """``A @ X`` for a sparse ``A`` and a Fortran-ordered (n, k) ``X``, Fortran-ordered: one
    product per contiguous column (scipy's block product copies ``X`` to C order first)."""
    out = np.empty((A.shape[0], X.shape[1]), dtype=np.result_type(A.dtype, X.dtype), order="F")
    for j in range(X.shape[1]):
        out[:, j] = A @ X[:, j]
    return out


def _cholesky_qr(Y, MY=None, max_cond=1e6):
    """One Cholesky QR pass of the (n, k) block ``Y`` in the inner product ``Y^H M Y`` (plain
    ``Y^H Y`` when ``MY`` is None): ``(Q, MQ, R)`` with ``Y = Q R``, or None when the Gram matrix
    is not safely positive definite or ``cond(R) > max_cond``.

    Two BLAS-3 products instead of a Householder QR or a loop over columns; Q is then
    orthonormal to ~``eps cond(R)^2``, so the caller either accepts only a well-conditioned
    block or runs a second pass (Cholesky QR twice).
    """
    G = (Y.conj().T @ Y) if MY is None else (Y.T @ MY)
    G = 0.5 * (G + G.conj().T)
    try:
        R = np.linalg.cholesky(G).conj().T  # upper: G = R^H R
    except np.linalg.LinAlgError:
        return None
    d = np.abs(np.diag(R))
    if not (np.all(np.isfinite(R)) and d.min() > 0) or np.linalg.cond(R) > max_cond:
        return None
    Rinv = sla.solve_triangular(R, np.eye(R.shape[0], dtype=R.dtype), check_finite=False)
    return _times(Y, Rinv), (None if MY is None else _times(MY, Rinv)), R


class _MColumns:
    """Up to ``cap`` columns, each M-orthogonalised against those before it as it comes
    (classical Gram-Schmidt with matrix-vector products, not a loop of dot products)."""

    def __init__(self, n, cap):
        self.B = np.empty((n, cap), order="F")
        self.MB = np.empty((n, cap), order="F")
        self.k = 0

    def project(self, w, passes=1):
        """``w`` with its M-projection on the columns so far taken out (``passes`` times)."""
        k = self.k
        if k:
            B, MB = self.B[:, :k], self.MB[:, :k]
            for _pass in range(passes):
                w = w - B @ (MB.T @ w)
        return w

    def append(self, w, mw):
        self.B[:, self.k] = w
        self.MB[:, self.k] = mw
        self.k += 1

    def arrays(self):
        """(B, M B), (n, k) each, Fortran order."""
        return self.B[:, : self.k], self.MB[:, : self.k]


#: most Gram-Schmidt passes of a block (two are enough unless columns are dependent)
_MAX_PASSES = 6


class _Basis:
    """M-orthonormal basis V, reduced matrices, and the QR factor of Z = [b, K V, M V, (C V)]."""

    def __init__(self, system, capacity, proportional):
        n = system.n
        self.system = system
        self.prop = proportional
        self.general_c = proportional is None
        per = 3 if self.general_c else 2
        self.cap = capacity
        self.V = np.zeros((n, capacity), order="F")
        self.m = 0
        self.Kr = np.zeros((capacity, capacity))
        self.Mr = np.zeros((capacity, capacity))
        self.Cr = np.zeros((capacity, capacity)) if self.general_c else None
        self.Gv = np.zeros((capacity, capacity))  # V^T V, for ||x|| = ||V y||
        self.b = system.b
        dtype = complex if np.iscomplexobj(self.b) else float
        self.Vb = np.zeros(capacity, dtype=dtype)  # V^T b
        pz = 1 + per * capacity
        self.U = np.zeros((n, pz), dtype=dtype, order="F")
        self.R = np.zeros((pz, pz), dtype=dtype)
        self.p = 0
        # column of Z holding K v_j, M v_j, C v_j
        self.zk = np.zeros(capacity, dtype=np.int64)
        self.zm = np.zeros(capacity, dtype=np.int64)
        self.zc = np.zeros(capacity, dtype=np.int64)
        self._append_z([self.b])

    def _append_z(self, cols):
        """Extend Z = U R by the columns ``cols`` (arrays side by side): block Gram-Schmidt against U,
        twice (BCGS2), with a Householder QR after the first pass (the projected block is
        numerically rank-deficient: K V lies almost in span(U)) and a Cholesky QR after the second
        (the block is then orthonormal up to rounding; Householder again if it is not)."""
        p = self.p
        cols = [c.reshape(c.shape[0], -1) for c in cols]
        k = sum(c.shape[1] for c in cols)
        Y = self.U[:, p : p + k]  # the new columns of Z, written where their Q will go (no temporary)
        j = 0
        for c in cols:
            Y[:, j : j + c.shape[1]] = c
            j += c.shape[1]
        U = self.U[:, :p]
        UH = U.T if self.U.dtype == float else U.conj().T  # no copy for real U
        R12 = np.zeros((p, k), dtype=self.U.dtype)
        if p:
            h = UH @ Y
            Y -= _times(U, h)
            R12 += h
        Q, R22 = sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)
        if p:  # Q is orthogonal to U only to ~eps ||Z new|| / ||Y|| (K V is nearly in span(U)): a second pass
            h = UH @ Q
            Q -= _times(U, h)
            # Q is orthonormal before this pass, so Q - U h is well conditioned (cond ~1): a Cholesky QR
            # (two BLAS-3 products) is as accurate as a Householder QR there, at a quarter of its time
            chol = _cholesky_qr(Q, max_cond=10.0)
            if chol is not None:
                Q2, _, R3 = chol
            else:
                Q2, R3 = sla.qr(Q, mode="economic", overwrite_a=True, check_finite=False)
            R12 += h @ R22
            R22 = R3 @ R22
            Q = Q2
        self.U[:, p : p + k] = Q
        self.R[:p, p : p + k] = R12
        self.R[p : p + k, p : p + k] = R22
        self.p = p + k

    def orthonormalize(self, B, MB=None):
        """M-orthonormalise the columns of B (``MB``: M B if known) against V, then in order;
        returns (B, M B).

        Classical Gram-Schmidt against V (BLAS-3) and inside the block: one Cholesky QR in
        the M inner product when the block is well conditioned, else column by column against
        the columns before it (which can drop columns); repeated until no column loses more than half its M-norm in a
        pass (DGKS criterion; at most 4 passes). A column reduced below 1e-9 of its
        M-norm is already in the basis and is dropped. The order is kept, so the
        last column carries the newest Krylov direction.
        """
        M = self.system.M
        B = np.asfortranarray(B)
        MB = _sparse_times(M, B) if MB is None else np.asfortranarray(MB)
        norms = np.sqrt(np.abs(np.einsum("ij,ij->j", B, MB)))
        ok = norms > 0
        B, MB, norms = B[:, ok], MB[:, ok], norms[ok]
        for _pass in range(_MAX_PASSES):
            if not B.shape[1]:
                break
            # from the third pass on, a column that still loses half its norm was not
            # orthogonal after two passes: numerically in the span already ("twice is
            # enough" fails only for dependent vectors), so it is dropped
            keep = 0.5 if _pass >= 2 else 1e-9
            if self.m:
                V = self.V[:, : self.m]
                B = B - _times(V, V.T @ MB)
                MB = _sparse_times(M, B)
            chol = _cholesky_qr(B, MB)  # the block in one BLAS-3 step when it is well conditioned
            if chol is not None:
                d = np.abs(np.diag(chol[2]))
                if np.all(d > 1e-9 * norms):  # nothing to drop: Gram-Schmidt in one Cholesky QR
                    lost = d < 0.5 * norms
                    B, MB, _ = chol
                    if _pass >= 2 and lost.any():
                        B, MB = B[:, ~lost], MB[:, ~lost]
                    norms = np.ones(B.shape[1])
                    if not lost.any() and _pass >= 1:
                        break
                    continue
            cols, lost = _MColumns(B.shape[0], B.shape[1]), False
            for j in range(B.shape[1]):
                w = cols.project(B[:, j])
                mw = M @ w
                nrm = np.sqrt(abs(w @ mw))
                if not np.isfinite(nrm) or nrm <= keep * norms[j]:
                    continue
                lost |= nrm < 0.5 * norms[j]
                cols.append(w / nrm, mw / nrm)
            if not cols.k:
                B = B[:, :0]
                MB = B
                break
            B, MB = cols.arrays()
            norms = np.ones(B.shape[1])
            if not lost and _pass >= 1:
                break
        return B, MB

    def add_block(self, B, MB):
        """Append M-orthonormal columns B (M B = MB, both (n, q))."""
        s = self.system
        m, q = self.m, B.shape[1]
        self.V[:, m : m + q] = B
        self.Vb[m : m + q] = B.T @ self.b.real + (1j * (B.T @ self.b.imag) if self.Vb.dtype == complex else 0)
        V = self.V[:, : m + q]
        KB = _sparse_times(s.K, B)
        self.Kr[: m + q, m : m + q] = V.T @ KB
        self.Mr[: m + q, m : m + q] = V.T @ MB
        self.Gv[: m + q, m : m + q] = V.T @ B
        for A in (self.Kr, self.Mr, self.Gv):
            A[m : m + q, : m] = A[: m, m : m + q].T
            blk = A[m : m + q, m : m + q]
            A[m : m + q, m : m + q] = 0.5 * (blk + blk.T)
        cols = [KB, MB]
        if self.general_c:
            CB = _sparse_times(s.C, B)
            self.Cr[: m + q, m : m + q] = V.T @ CB
            self.Cr[m : m + q, : m] = self.Cr[: m, m : m + q].T
            blk = self.Cr[m : m + q, m : m + q]
            self.Cr[m : m + q, m : m + q] = 0.5 * (blk + blk.T)
            cols.append(CB)
        p = self.p
        self.zk[m : m + q] = p + np.arange(q)
        self.zm[m : m + q] = p + q + np.arange(q)
        if self.general_c:
            self.zc[m : m + q] = p + 2 * q + np.arange(q)
        self.m = m + q
        self._append_z(cols)

    def reduced_solutions(self, omegas, load):
        """Galerkin coefficients y (m, k): (V^T A(omega) V) y = P V^T b."""
        m = self.m
        Kr, Mr = self.Kr[:m, :m], self.Mr[:m, :m]
        Vb = self.Vb[:m]
        lam, Q = sla.eigh(Kr, Mr)  # Q^T Mr Q = I, Q^T Kr Q = diag(lam)
        g = self.system.g
        rhs = (Q.T @ Vb)[:, None] * load[None, :]  # (m, k)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if not self.general_c:
                alpha, beta = self.prop
                a = (1 + 1j * g) + 1j * omegas * beta  # coefficient of K
                c = -(omegas**2) + 1j * omegas * alpha  # coefficient of M
                z = rhs / (lam[:, None] * a[None, :] + c[None, :])
            else:
                Cq = Q.T @ self.Cr[:m, :m] @ Q
                z = np.empty((m, omegas.size), dtype=complex)
                eye = np.eye(m)
                for lo in range(0, omegas.size, 64):
                    w = omegas[lo : lo + 64]
                    D = ((1 + 1j * g) * np.diag(lam))[None] + (1j * w)[:, None, None] * Cq[None] \
                        - (w**2)[:, None, None] * eye[None]
                    try:
                        z[:, lo : lo + 64] = np.linalg.solve(D, rhs[:, lo : lo + 64].T[:, :, None])[:, :, 0].T
                    except np.linalg.LinAlgError:
                        for i in range(w.size):
                            try:
                                z[:, lo + i] = np.linalg.solve(D[i], rhs[:, lo + i])
                            except np.linalg.LinAlgError:
                                z[:, lo + i] = np.nan
        return Q @ z

    def coefficients(self, omegas, load, y):
        """c(omega) (p, k) such that the full residual is r = U R c."""
        m = self.m
        c = np.zeros((self.p, omegas.size), dtype=complex)
        c[0] = -load
        g = self.system.g
        if self.general_c:
            ak = np.full(omegas.size, 1 + 1j * g)
            am = -(omegas**2) + 0j
            c[self.zc[:m]] = (1j * omegas)[None, :] * y
        else:
            alpha, beta = self.prop
            ak = (1 + 1j * g) + 1j * omegas * beta
            am = -(omegas**2) + 1j * omegas * alpha
        c[self.zk[:m]] = ak[None, :] * y
        c[self.zm[:m]] = am[None, :] * y
        return c

    def certify(self, omegas, load, y):
        """(||r||, resolution of ||r||) per frequency from the QR factor, O(p^2) each."""
        c = self.coefficients(omegas, load, y)
        R = self.R[: self.p, : self.p]
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.linalg.norm(R @ c, axis=0)
            # rounding in Z = U R and in R c: a few eps times the size of the terms
            scale = np.linalg.norm(np.abs(R) @ np.abs(c), axis=0)
        res = 8 * _EPS * np.sqrt(self.p) * scale
        r[~np.isfinite(r)] = np.inf
        return r, res

    def x_norms(self, y):
        """||V y|| per column of y (m, k)."""
        m = self.m
        q = np.einsum("ik,ik->k", y.conj(), self.Gv[:m, :m] @ y).real
        return np.sqrt(np.maximum(q, 0.0))

    def output_rows(self):
        """The basis at the output DOF, (n_out, m), a copy: x[output_dofs] = output_rows() @ y."""
        return self.V[self.system.output_dofs, : self.m]

    def full(self, y):
        """x = V y (n,) for one frequency (real V times the real and imaginary parts: no complex copy of V)."""
        V = self.V[:, : self.m]
        return V @ y.real + 1j * (V @ y.imag)
