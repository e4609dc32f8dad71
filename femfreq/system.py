"""The discrete system every solver works on.

A :class:`System` holds the reduced (free-DOF) matrices ``K, C, M``, the load
vector ``b``, the structural damping factor ``g`` and the output DOF. It knows
how to form the dynamic stiffness

    A(omega) = (1 + i g) K + i omega C - omega^2 M

quickly at any frequency: the union sparsity pattern of K, C and M is computed
once, with the three value arrays aligned to it, so forming ``A`` is one
``O(nnz)`` vector operation and every ``A(omega)`` shares one pattern (which
lets sparse direct solvers reuse their symbolic analysis).
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from . import _validate as v
from ._digest import array_digest, matrix_digests
from ._lean_pickle import lean_state, restore_state

__all__ = ["BaseCoupling", "System", "as_system", "fitted_damping", "proportional_damping"]


#: True while a System adopts the arrays of matrices nobody else holds (:func:`_adopting`)
_ADOPT = contextvars.ContextVar("femfreq_system_adopt", default=False)


@contextlib.contextmanager
def _adopting(adopt=True):
    """Systems made inside share the float64 arrays of the K, C and M they are given instead of
    copying them (their views of them are read-only): for a caller whose matrices are its own
    (:meth:`femfreq.model.Model.system`: 0.45 s of copies at satellite level 7), which then
    makes its own matrices read-only with :func:`_read_only`, so that an in-place change
    afterwards is an error instead of a silent change of the System."""
    token = _ADOPT.set(bool(adopt))
    try:
        yield
    finally:
        _ADOPT.reset(token)


def _read_only(*matrices):
    for A in matrices:
        for a in (A.data, A.indices, A.indptr):
            a.flags.writeable = False


@dataclass(frozen=True, eq=False)
class BaseCoupling:
    """What a chunk needs to turn the relative solution into base-motion results.

    Built by :func:`femfreq.model.base.base_coupling`; see ``docs/vibration.md``
    ("Base excitation") for the formulation. With ``r_full`` the base motion per unit
    base displacement on the full DOF (the influence vector on the free DOF, the base
    direction on the driven DOF, 0 on the other fixed DOF), the force the base applies
    to the structure, summed over the driven DOF per component, is

        F(w) = E [(1 + i g) K_Bf + i w C_Bf - w^2 M_Bf] y
               + [(1 + i g) k_r u_b + c_r v_b + m_r a_b]

    with ``y`` the relative solution at the coupled free DOF, ``E`` the sum of the
    driven rows per component, ``k_r, c_r, m_r = E (K, C, M) r_full`` on the driven
    rows and ``u_b = -a_b / w^2``, ``v_b = a_b / (i w)``.

    Attributes
    ----------
    direction : (2,) float64
        Unit base direction.
    n_outputs : int
        Number of outputs (the first ``n_outputs`` of the System's ``output_dofs``).
    coupled : (n_c,) int64
        Reduced free DOF with a K, C or M entry in a driven row.
    force_k, force_c, force_m : (2, n_c) float64
        ``E K_Bf``, ``E C_Bf``, ``E M_Bf`` on the coupled DOF.
    k_r, c_r, m_r : (2,) float64
        ``E K r_full``, ``E C r_full``, ``E M r_full`` on the driven rows.
    alpha : float
        Mass-proportional damping (1/s): ``P(w) = a_b(w) (1 + alpha / (i w))``.
    influence : (n_outputs,) float64
        ``r`` at the outputs: absolute displacement = relative + ``r u_b``.
    """

    direction: np.ndarray
    n_outputs: int
    coupled: np.ndarray
    force_k: np.ndarray
    force_c: np.ndarray
    force_m: np.ndarray
    k_r: np.ndarray
    c_r: np.ndarray
    m_r: np.ndarray
    alpha: float = 0.0
    influence: np.ndarray | None = None

    def load_factor(self, omega):
        """``P / a_b = 1 + alpha / (i w)`` at angular frequencies ``omega`` (ValueError at 0 with alpha > 0)."""
        w = np.asarray(omega, dtype=np.float64)
        if self.alpha == 0:
            return np.ones(w.shape, dtype=np.complex128)
        if np.any(w == 0):
            raise ValueError(
                "with mass-proportional damping (alpha > 0) the base velocity a_b / (i w) is infinite "
                "at 0 Hz: start the frequencies above 0"
            )
        return 1.0 + self.alpha / (1j * w)

    def interface_force(self, omega, accel, y_coupled, g):
        """(k, 2) complex interface force at ``omega`` (k,), base acceleration ``accel`` (k,)
        and relative solution ``y_coupled`` (k, n_c)."""
        w = np.asarray(omega, dtype=np.float64)[:, None]
        a = np.asarray(accel, dtype=np.complex128)[:, None]
        y = np.asarray(y_coupled, dtype=np.complex128)
        F = (1 + 1j * g) * (y @ self.force_k.T) + 1j * w * (y @ self.force_c.T) - w**2 * (y @ self.force_m.T)
        F = F + self.m_r * a
        with np.errstate(divide="ignore", invalid="ignore"):
            # exact zeros (rigid base: K r = 0; alpha = beta = 0) contribute nothing, even at 0 Hz
            if np.any(self.k_r != 0):
                F = F + (1 + 1j * g) * self.k_r * (-a / w**2)
            if np.any(self.c_r != 0):
                F = F + self.c_r * (a / (1j * w))
        return F


@dataclass(frozen=True, eq=False)
class System:
    """Reduced matrices of one structure and the load and outputs of a sweep.

    Parameters
    ----------
    K, C, M : (n, n) sparse or dense real matrices
        Stiffness, viscous damping and mass on the free DOF. ``C`` may be
        ``None`` (no viscous damping).
    b : (n,) array
        Load distribution vector; the load at frequency ``omega`` is ``P(omega) b``.
    g : float, optional
        Structural (hysteretic) damping factor: the stiffness becomes ``K (1 + i g)``.
    output_dofs : (k,) int array, optional
        0-based indices of the DOF whose response is kept (default: all).
    name : str, optional
        A label for logs and result files.
    base : BaseCoupling, optional
        Enforced base motion (:meth:`femfreq.model.Model.with_base`): then ``b = -M r``,
        ``P(omega)`` is derived from the base acceleration, and ``output_dofs`` ends with
        the free DOF coupled to the base (``base.coupled``), which the chunk task turns
        into the interface force.

    Notes
    -----
    After construction ``K, C, M`` are float64 CSC matrices; ``pattern`` is
    the CSC union pattern ``(indptr, indices)`` and ``k_values``,
    ``c_values``, ``m_values`` the matrices' values on it.

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.system import System
    >>> s = System(K=[[2.0]], C=[[0.1]], M=[[1.0]], b=[1.0])
    >>> A = s.dynamic_matrix(1.0)
    >>> complex(A[0, 0])
    (1+0.1j)
    """

    K: sp.csc_matrix
    C: sp.csc_matrix | None
    M: sp.csc_matrix
    b: np.ndarray
    g: float = 0.0
    output_dofs: np.ndarray | None = None
    name: str = "system"
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    base: BaseCoupling | None = None

    def __post_init__(self):
        adopt = _ADOPT.get()  # share the given matrices' arrays (read-only) instead of copying them
        K = v.float_csc("K", self.K, copy=not adopt)
        n = K.shape[0]
        if n == 0:
            raise ValueError("K is empty (0 x 0): the model has no free DOF")
        C = sp.csc_matrix((n, n)) if self.C is None else v.float_csc("C", self.C, n, copy=not adopt)
        M = v.float_csc("M", self.M, n, copy=not adopt)
        b = np.asarray(self.b)
        if b.ndim == 2 and 1 in b.shape:
            b = b.ravel()
        if b.shape != (n,):
            raise ValueError(f"b must have shape ({n},) like K (has shape {b.shape})")
        b = b.astype(np.complex128 if np.iscomplexobj(b) else np.float64)
        if not np.all(np.isfinite(b)):
            raise ValueError(f"b has a non-finite entry at index {int(np.flatnonzero(~np.isfinite(b))[0])}")
        g = float(self.g)
        if not np.isfinite(g) or g < 0:
            raise ValueError(f"structural damping g must be finite and >= 0 (got {self.g})")
        if self.output_dofs is None:
            out = np.arange(n, dtype=np.int64)
        else:
            out = np.asarray(self.output_dofs)
            if out.dtype == bool:  # a mask is not a list of indices: [True, False] would become [1, 0]
                raise TypeError("output_dofs must be integer indices, not a boolean mask "
                                "(use numpy.flatnonzero(mask) for the indices of a mask)")
            if out.ndim != 1 or out.size == 0:
                raise ValueError(f"output_dofs must be a non-empty 1-D index array (has shape {out.shape})")
            if not np.issubdtype(out.dtype, np.integer):
                if not np.all(np.mod(out, 1) == 0):
                    raise ValueError(f"output_dofs must be integers (got {out[:5]}...)")
            out = out.astype(np.int64)
            bad = (out < 0) | (out >= n)
            if bad.any():
                raise ValueError(
                    f"output DOF {int(out[bad][0])} is out of range 0..{n - 1}"
                )
        set_ = object.__setattr__
        set_(self, "K", K)
        set_(self, "C", C)
        set_(self, "M", M)
        set_(self, "b", b)
        set_(self, "g", g)
        set_(self, "output_dofs", out)
        if self.base is not None:
            if not isinstance(self.base, BaseCoupling):
                raise TypeError(f"base must be a BaseCoupling (got {type(self.base).__name__})")
            n_out = self.base.n_outputs
            if out.size != n_out + self.base.coupled.size or np.any(out[n_out:] != self.base.coupled):
                raise ValueError("with a base, output_dofs must be the outputs followed by base.coupled")
        self._align()
        if adopt:
            _read_only(self.K, self.C, self.M)

    # -- pattern -------------------------------------------------------------
    def _align(self):
        for A in (self.K, self.C, self.M):
            A.sum_duplicates()  # canonical CSC: sorted indices, no duplicates
        if not self._align_on_k():
            self._align_union()

    def _align_on_k(self) -> bool:
        """The usual case in O(nnz) without sorting: C empty or on K's pattern, M on K's
        pattern or diagonal, and K storing its whole diagonal. False if not."""
        K, C, M, n = self.K, self.C, self.M, self.n

        def same(A):
            return np.array_equal(A.indptr, K.indptr) and np.array_equal(A.indices, K.indices)

        if not (C.nnz == 0 or same(C)):
            return False
        cols = np.repeat(np.arange(n, dtype=K.indices.dtype), np.diff(K.indptr))
        diag = np.flatnonzero(K.indices == cols)
        if diag.size != n:
            return False
        # K, C and M are this System's own float64 copies (_validate.float_csc): the values on the pattern
        # share their arrays, as after unpickling (restore_state), instead of copying them again
        if same(M):
            m_values = M.data
        elif np.array_equal(M.indptr, np.arange(n + 1)) and np.array_equal(M.indices, np.arange(n)):
            m_values = np.zeros(K.nnz)
            m_values[diag] = M.data
        elif M.nnz:
            return False
        else:
            m_values = np.zeros(K.nnz)
        c_values = C.data if C.nnz else np.zeros(K.nnz)
        index_type = np.int32 if max(n, K.nnz) < 2**31 else np.int64
        set_ = object.__setattr__
        set_(self, "pattern", (K.indptr.astype(index_type, copy=False), K.indices.astype(index_type, copy=False)))
        set_(self, "k_values", K.data)
        set_(self, "c_values", c_values)
        set_(self, "m_values", m_values)
        return True

    def _align_union(self):
        """Any patterns: their union, by sorting column-major keys."""
        n = self.n
        keys = []
        for A in (self.K, self.C, self.M):
            cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(A.indptr))
            # column-major key: sorted keys are the CSC order
            keys.append(cols * n + A.indices)
        allk = np.concatenate(keys)
        allk.sort(kind="stable")  # timsort merges the three sorted runs (np.unique is slower)
        uniq = allk[np.r_[True, allk[1:] != allk[:-1]]] if allk.size else allk
        values = []
        for A, k in zip((self.K, self.C, self.M), keys):
            v = np.zeros(uniq.size)
            v[np.searchsorted(uniq, k)] = A.data
            values.append(v)
        index_type = np.int32 if max(n, uniq.size) < 2**31 else np.int64
        indices = (uniq % n).astype(index_type)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // n, minlength=n), out=indptr[1:])
        set_ = object.__setattr__
        set_(self, "pattern", (indptr.astype(index_type), indices))
        set_(self, "k_values", values[0])
        set_(self, "c_values", values[1])
        set_(self, "m_values", values[2])

    # -- pickling --------------------------------------------------------------
    def __reduce_ex__(self, protocol):
        # a System a worker built from a recipe travels as that recipe (see femfreq.model.recipe)
        via = self.__dict__.get("_via")
        if via is not None:
            return via.rebuild, ()
        return super().__reduce_ex__(protocol)

    def __getstate__(self) -> dict:
        return lean_state(self)

    def __setstate__(self, state: dict) -> None:
        restore_state(self, state)

    def __sizeof__(self) -> int:
        # what dask's memory accounting sees for a scattered System: its arrays
        arrays = [self.b, self.output_dofs, self.k_values, self.c_values, self.m_values, *self.pattern]
        for A in (self.K, self.C, self.M):
            arrays += [A.data, A.indices, A.indptr]
        unique = {id(a): a.nbytes for a in arrays}  # the values on the pattern share the matrices' arrays
        return object.__sizeof__(self) + sum(unique.values())

    def digest(self) -> dict:
        """Hashes of what this System solves: ``n_dof``, ``K``, ``C``, ``M`` (values and pattern),
        ``b``, ``output_dofs`` and ``g``.

        Result files store them (``/fingerprint``) to check a resumed sweep; a worker that
        builds the System from a model recipe compares them with the client's.

        Returns
        -------
        dict
            ``{"n_dof": int, "K": "blake2b:...", ..., "g": float}``; int32 and int64 index
            arrays of the same values hash alike.
        """
        if "_digest" not in self.__dict__:  # computed once: the arrays never change
            matrices = dict(zip("KCM", matrix_digests([self.K, self.C, self.M])))
            self.__dict__["_digest"] = {"n_dof": self.n, **matrices, "b": array_digest(self.b),
                                        "output_dofs": array_digest(self.output_dofs), "g": float(self.g)}
        return dict(self.__dict__["_digest"])

    @property
    def n(self) -> int:
        """Number of (free) DOF."""
        return self.K.shape[0]

    @property
    def nnz(self) -> int:
        """Number of stored entries of the union pattern of K, C and M."""
        return self.k_values.size

    @cached_property
    def is_symmetric(self) -> bool:
        """True if K, C and M are all symmetric (to round-off); computed once, O(nnz)."""
        for A in (self.K, self.C, self.M):
            d = abs(A - A.T)
            scale = abs(A).max() if A.nnz else 0.0
            if d.nnz and d.max() > 1e-12 * scale:
                return False
        return True

    def values(self, omega: float) -> np.ndarray:
        """Values of ``A(omega)`` on :attr:`pattern` (complex, length nnz)."""
        omega = float(omega)
        return (
            (1.0 + 1j * self.g) * self.k_values
            + (1j * omega) * self.c_values
            - omega**2 * self.m_values
        )

    @cached_property
    def _frobenius_terms(self) -> tuple:
        """Inner products of the K, C, M values that ``||A(omega)||_F`` is made of."""
        k, c, m = self.k_values, self.c_values, self.m_values
        return k @ k, k @ m, m @ m, k @ c, c @ c

    def frobenius_norm(self, omega):
        """``||A(omega)||_F`` at one or many angular frequencies, O(1) each (no matrix formed).

        Parameters
        ----------
        omega : float or (k,) array
            Angular frequency in rad/s.

        Returns
        -------
        float or (k,) float array
            Same shape as ``omega``.

        Examples
        --------
        >>> import numpy as np
        >>> s = System(K=[[2.0, -1.0], [-1.0, 2.0]], C=None, M=np.eye(2), b=[1.0, 0.0], g=0.1)
        >>> bool(np.isclose(s.frobenius_norm(1.5), np.linalg.norm(s.dynamic_matrix(1.5).toarray())))
        True
        """
        kk, km, mm, kc, cc = self._frobenius_terms
        w = np.asarray(omega, dtype=np.float64)
        g, w2 = self.g, w * w
        # ||A||_F^2 = sum over the pattern of (k - w^2 m)^2 + (g k + w c)^2
        sq = (1 + g * g) * kk - 2 * w2 * km + w2 * w2 * mm + 2 * g * w * kc + w2 * cc
        norm = np.sqrt(np.maximum(sq, 0.0))
        return float(norm) if norm.ndim == 0 else norm

    def dynamic_matrix(self, omega: float) -> sp.csc_matrix:
        """``A(omega) = (1 + i g) K + i omega C - omega^2 M`` as a CSC matrix.

        Parameters
        ----------
        omega : float
            Angular frequency in rad/s.
        """
        indptr, indices = self.pattern
        return sp.csc_matrix((self.values(omega), indices, indptr), shape=(self.n, self.n))

    def apply(self, omega: float, x: np.ndarray) -> np.ndarray:
        """``A(omega) @ x``, with real sparse products.

        Cheaper than ``dynamic_matrix(omega) @ x`` on a large model: no complex copy of
        the values is made.

        Parameters
        ----------
        omega : float
            Angular frequency in rad/s.
        x : (n,) or (n, k) array
            Vector(s), real or complex.

        Returns
        -------
        (n,) or (n, k) complex128 array
        """
        omega = float(omega)
        x = np.asarray(x, dtype=np.complex128)
        xr, xi = np.ascontiguousarray(x.real), np.ascontiguousarray(x.imag)
        Kr, Ki = self.K @ xr, self.K @ xi
        w2 = omega * omega
        out = np.empty(x.shape, dtype=np.complex128, order="F" if x.ndim == 2 else "C")
        out.real = Kr - self.g * Ki - w2 * (self.M @ xr)
        out.imag = Ki + self.g * Kr - w2 * (self.M @ xi)
        if self.C.nnz:
            out.real -= omega * (self.C @ xi)
            out.imag += omega * (self.C @ xr)
        return out

    def residuals(self, omega: float, x: np.ndarray, load: complex) -> tuple[float, float]:
        """Relative residual and normwise backward error of a solution.

        Parameters
        ----------
        omega : float
            Angular frequency (rad/s).
        x : (n,) complex array
            Full solution vector.
        load : complex
            Load spectrum value ``P(omega)``.

        Returns
        -------
        rel_residual : float
            ``||A x - P b|| / ||P b||`` (2-norms).
        backward_error : float
            ``||A x - P b|| / (||A||_F ||x|| + ||P b||)``.
        """
        omega = float(omega)
        rhs = load * self.b
        r = np.linalg.norm(self.apply(omega, x) - rhs)
        nb = np.linalg.norm(rhs)
        na = self.frobenius_norm(omega)
        rel = r / nb if nb > 0 else (0.0 if r == 0 else np.inf)
        den = na * np.linalg.norm(x) + nb
        bwd = r / den if den > 0 else 0.0
        return float(rel), float(bwd)


def as_system(K, C=None, M=None, b=None, *, g=0.0, output_dofs=None, name="system") -> System:
    """Build a :class:`System` from matrices, checking shapes and values.

    Parameters
    ----------
    K, C, M : (n, n) sparse or dense real matrices
        ``C`` may be ``None``. ``M`` is required.
    b : (n,) array
        Load distribution vector.
    g : float, optional
        Structural damping factor.
    output_dofs : (k,) int array, optional
        0-based output DOF (default all).

    Returns
    -------
    System
    """
    if M is None:
        raise ValueError("M (the mass matrix) is required")
    if b is None:
        raise ValueError("b (the load vector) is required")
    return System(K=K, C=C, M=M, b=b, g=g, output_dofs=output_dofs, name=name)


# -- damping: how close C is to alpha M + beta K ------------------------------------------
def proportional_damping(system):
    """``(alpha, beta)`` if ``C = alpha M + beta K`` on the pattern to round-off, else None.

    ``(0.0, 0.0)`` without C. Kept on the System (immutable) after the first call: a
    least-squares fit over every stored entry, which each sub-band of a fast sweep would
    otherwise redo.

    Parameters
    ----------
    system : System

    Returns
    -------
    (float, float) or None
    """
    cached = system.__dict__.get("_proportional_damping", _UNSET)
    if cached is _UNSET:
        cached = _fit_proportional(system)
        object.__setattr__(system, "_proportional_damping", cached)
    return cached


_UNSET = object()


def _fit_proportional(system):
    """(alpha, beta) of the exact fit, or None (see :func:`proportional_damping`)."""
    c, k, m = system.c_values, system.k_values, system.m_values
    cn = np.linalg.norm(c)
    if cn == 0:
        return 0.0, 0.0

    def exact(alpha, beta):  # ||alpha m + beta k - c|| in slices: no temporaries the size of the pattern
        step, total = 1 << 20, 0.0
        for s in range(0, c.size, step):
            r = beta * k[s:s + step] - c[s:s + step]
            if alpha:
                r += alpha * m[s:s + step]
            total += float(r @ r)
        return np.sqrt(total) <= 1e-12 * cn

    # the 2 x 2 normal equations of the columns scaled to unit norm (five dot products, not
    # a least-squares solve over every entry); the exact-fit test decides, and the
    # least-squares solve is the fallback when they were not accurate enough to pass it
    mn, kn = np.linalg.norm(m), np.linalg.norm(k)
    if mn > 0 and kn > 0:
        mk = (m @ k) / (mn * kn)
        G = np.array([[1.0, mk], [mk, 1.0]])
        with np.errstate(all="ignore"):
            try:
                a, b_ = np.linalg.solve(G, [(m @ c) / mn, (k @ c) / kn])
            except np.linalg.LinAlgError:
                a = b_ = np.nan
        if np.isfinite(a) and np.isfinite(b_):
            # a term whose whole size is below the fit's tolerance is not determined by C:
            # 0 (C = 0.004 K gives alpha = 0, not a rounding-sized alpha of either sign)
            alpha = 0.0 if abs(a) <= 1e-12 * cn else a / mn
            beta = 0.0 if abs(b_) <= 1e-12 * cn else b_ / kn
            if exact(alpha, beta):
                return float(alpha), float(beta)
    coef, *_ = np.linalg.lstsq(np.column_stack([m, k]), c, rcond=None)
    if exact(coef[0], coef[1]):
        return float(coef[0]), float(coef[1])
    return None


def fitted_damping(system):
    """Least-squares ``(alpha, beta)`` for ``C ~ alpha M + beta K`` (exact when C is proportional).

    Only an estimate for a general C: the fast sweep places its shifts with it, and the
    auto grid its damping widths.

    Parameters
    ----------
    system : System

    Returns
    -------
    (float, float)
    """
    prop = proportional_damping(system)
    if prop is not None:
        return prop
    X = np.column_stack([system.m_values, system.k_values])
    coef, *_ = np.linalg.lstsq(X, system.c_values, rcond=None)
    return float(coef[0]), float(coef[1])
