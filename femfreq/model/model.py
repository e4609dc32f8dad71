"""The rod model: :class:`Model` (nodes, rods, material, constraints, load, outputs -> K, C, M, b).

:meth:`Model.matrices` assembles ``K`` and ``M`` with :mod:`femfreq.model.rods`,
eliminates the fixed DOF and forms ``C = alpha M + beta K``; :meth:`Model.system`
wraps them in a :class:`femfreq.system.System`. :class:`Damping` and
:class:`LoadHistory` are the model's damping and load-history specifications.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import rods
from .selectors import _lost_load
from .. import _validate as v
from ..system import System, _adopting, _read_only

__all__ = ["Damping", "LoadHistory", "Model"]


@dataclass(frozen=True)
class Damping:
    """Rayleigh and structural damping.

    Parameters
    ----------
    alpha, beta : float, optional
        Viscous damping ``C = alpha M + beta K`` (alpha in 1/s, beta in s).
    g : float, optional
        Structural (hysteretic) damping: the stiffness becomes ``K (1 + i g)``.
    """

    alpha: float = 0.0
    beta: float = 0.0
    g: float = 0.0

    def __post_init__(self):
        for name in ("alpha", "beta", "g"):
            object.__setattr__(self, name, v.as_float(f"damping {name}", getattr(self, name), nonneg=True))


# --------------------------------------------------------------------------- load history
@dataclass(frozen=True)
class LoadHistory:
    """The time history ``P(t)`` that multiplies the load vector ``b``.

    Only the specification; the spectrum is computed by :mod:`femfreq.spectra`.

    Parameters
    ----------
    history : str
        ``"pyroshock"`` (the synthetic burst shipped with femfreq) or the path
        of a text/CSV/HDF5 history file (absolute, or resolved by :func:`load_model`
        relative to the model file).
    dt : float or None
        Sampling interval in s; None for a history file whose time column gives it (a
        one-column file then stops with an error asking for ``dt``).
    n_fft : int
        FFT length; the sweep frequencies are ``numpy.fft.rfftfreq(n_fft, dt)``.
    magnitude : float
        The force magnitude already applied to ``b`` (kept for the record).
    """

    history: str = "pyroshock"
    dt: float | None = 5e-4
    n_fft: int = 4096
    magnitude: float = 1.0

    def __post_init__(self):
        if not isinstance(self.history, str) or not self.history:
            raise TypeError(f"history must be 'pyroshock' or a file path (got {self.history!r})")
        if self.dt is not None or self.is_builtin:
            object.__setattr__(self, "dt", v.positive_float("dt", self.dt))
        object.__setattr__(self, "n_fft", v.as_int("n_fft", self.n_fft, minimum=2, maximum=v.MAX_N_FFT))
        object.__setattr__(self, "magnitude", v.as_float("magnitude", self.magnitude))

    @property
    def is_builtin(self) -> bool:
        """True for the shipped synthetic pyroshock."""
        return self.history == "pyroshock"


# --------------------------------------------------------------------------- model
def _eliminate(A, full_to_free, n_free):
    """Rows and columns of symmetric CSR ``A`` at the free DOF (``full_to_free >= 0``), as CSC.

    The kept entries stay in CSR order (``full_to_free`` is increasing on the free
    DOF); as ``A`` is symmetric its CSR arrays are also its CSC arrays, so the
    result is handed out as CSC (what System and the solvers use) without a conversion.
    """
    A = sp.csr_matrix(A)
    row_free = full_to_free >= 0
    counts = np.diff(A.indptr)
    rows = np.repeat(np.arange(A.shape[0]), counts)
    keep = row_free[rows] & row_free[A.indices]
    # full_to_free is increasing on the free DOF, so kept entries stay sorted by (row, col)
    new_counts = np.bincount(full_to_free[rows[keep]], minlength=n_free)
    indptr = np.zeros(n_free + 1, dtype=A.indptr.dtype)
    np.cumsum(new_counts, out=indptr[1:])
    indices = full_to_free[A.indices[keep]].astype(A.indices.dtype)
    return sp.csc_matrix((A.data[keep], indices, indptr), shape=(n_free, n_free))


@dataclass(frozen=True, eq=False)
class Model:
    """A planar rod structure with its constraints, load and outputs.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    edges : (m, 2) int array
        0-based node ids of each rod.
    E, rho, area : float or (m,) array
        Young's modulus, density and cross-section area (one value or one per rod).
    lumped : bool, optional
        Lumped (default) or consistent mass.
    damping : Damping, optional
        ``C = alpha M + beta K`` and structural damping ``g``.
    fixed_dofs : (k,) int array, optional
        Full DOF fixed to zero; they are eliminated from the reduced matrices.
    b_full : (2 n,) array, optional
        Load vector on the full DOF (required by :meth:`system`). Part of it may act on
        fixed DOF (that part is lost, with a warning), but not all of it.
    output_dofs_full : (k,) int array, optional
        Full DOF whose response a sweep keeps (default: every free DOF).
    name, description : str, optional
    history : LoadHistory, optional
        The load time history spec (``None``: none given); see :meth:`load_history`.
    source : dict, optional
        Where the model came from (file, level, mesh switches...).
    mesh : femfreq.mesh.Mesh, optional
        The triangle mesh the rods came from (for exports and plots).
    base : femfreq.model.base.Base, optional
        Enforced base motion (:meth:`with_base`): the sweep then drives these constrained
        nodes instead of applying ``b_full`` (which may be None).

    Raises
    ------
    ValueError
        Bad arrays; every DOF fixed; a load that acts only on fixed DOF (or is zero),
        whose response would be zero; an output DOF that is fixed.

    Notes
    -----
    The reduced (free) DOF are the full DOF minus the fixed ones, in increasing
    order; :attr:`free_dofs` maps reduced to full and :attr:`full_to_free` full to
    reduced (``-1`` for a fixed DOF). Nodes that no rod touches are fixed
    automatically (with a warning), as they would make ``K`` and ``M`` singular.
    Matrices are assembled once, on first use, and cached; derive variants with
    :func:`dataclasses.replace`.

    Examples
    --------
    >>> from femfreq.model import Model
    >>> m = Model(points=[[0, 0], [1, 0]], edges=[[0, 1]], E=1.0, rho=2.0, area=1.0,
    ...           fixed_dofs=[0, 1, 3], b_full=[0, 0, 1, 0])
    >>> m.n_free, float(m.total_mass)
    (1, 2.0)
    >>> K, C, M, b = m.matrices()
    >>> K.toarray(), M.toarray()
    (array([[1.]]), array([[1.]]))
    """

    points: np.ndarray
    edges: np.ndarray
    E: float | np.ndarray
    rho: float | np.ndarray
    area: float | np.ndarray
    lumped: bool = True
    damping: Damping = field(default_factory=Damping)
    fixed_dofs: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    b_full: np.ndarray | None = None
    output_dofs_full: np.ndarray | None = None
    name: str = "model"
    description: str = ""
    history: LoadHistory | None = None
    source: dict = field(default_factory=dict)
    mesh: object = None
    base: object = None

    def __post_init__(self):
        set_ = object.__setattr__
        lengths, _, _ = rods.rod_geometry(self.points, self.edges)
        points = np.ascontiguousarray(self.points, dtype=np.float64)
        edges = np.ascontiguousarray(np.asarray(self.edges).reshape(-1, 2), dtype=np.int64)
        m = edges.shape[0]
        if m == 0:
            raise ValueError("the model has no rods")
        n_dof = 2 * points.shape[0]
        set_(self, "points", points)
        set_(self, "edges", edges)
        set_(self, "E", rods._check_property("E", self.E, m))
        set_(self, "rho", rods._check_property("rho", self.rho, m))
        set_(self, "area", rods._check_property("area", self.area, m))
        set_(self, "lumped", bool(self.lumped))
        if not isinstance(self.damping, Damping):
            raise TypeError(f"damping must be a Damping (got {self.damping!r})")

        fixed = v.index_array("fixed_dofs", self.fixed_dofs, n_dof)
        connected = np.zeros(points.shape[0], dtype=bool)
        connected[edges.ravel()] = True
        if not connected.all():
            lonely = np.flatnonzero(~connected)
            warnings.warn(
                f"{lonely.size} node(s) belong to no rod and are fixed (first: node {lonely[0]} at "
                f"{tuple(points[lonely[0]].tolist())})",
                stacklevel=3,
            )
            fixed = np.concatenate([fixed, 2 * lonely, 2 * lonely + 1])
        fixed = np.unique(fixed)
        set_(self, "fixed_dofs", fixed)
        free_mask = np.ones(n_dof, dtype=bool)
        free_mask[fixed] = False
        free = np.flatnonzero(free_mask).astype(np.int64)
        if free.size == 0:
            raise ValueError("every DOF of the model is fixed: nothing to solve for")
        full_to_free = np.full(n_dof, -1, dtype=np.int64)
        full_to_free[free] = np.arange(free.size)
        set_(self, "_free", free)
        set_(self, "_full_to_free", full_to_free)

        if self.b_full is not None:
            b = np.asarray(self.b_full, dtype=np.float64).ravel()
            if b.shape != (n_dof,):
                raise ValueError(f"b_full must have shape ({n_dof},) (has shape {np.shape(self.b_full)})")
            if not np.all(np.isfinite(b)):
                raise ValueError(f"b_full has a non-finite entry at DOF {int(np.flatnonzero(~np.isfinite(b))[0])}")
            lost = _lost_load(points, edges, fixed, b)
            if lost:
                raise ValueError(lost)
            on_fixed = fixed[b[fixed] != 0]
            if on_fixed.size:
                warnings.warn(
                    f"the load acts on fixed DOF {on_fixed.tolist()[:5]} "
                    f"(node {on_fixed[0] // 2}); that part of the load is lost",
                    stacklevel=3,
                )
            set_(self, "b_full", b)
        if self.output_dofs_full is not None:
            out = v.index_array("output_dofs_full", self.output_dofs_full, n_dof, allow_empty=False)
            on_fixed = out[full_to_free[out] < 0]
            if on_fixed.size:
                d = int(on_fixed[0])
                raise ValueError(
                    f"output DOF {d} (node {d // 2}, {'xy'[d % 2]}) is fixed; "
                    "outputs must be free DOF (choose another selection or directions)"
                )
            set_(self, "output_dofs_full", out)
        if self.base is not None:
            from .base import Base, driven_dofs

            if not isinstance(self.base, Base):
                raise TypeError(f"base must be a femfreq.model.base.Base (got {type(self.base).__name__})")
            driven_dofs(self, self.base)  # the base nodes must be constrained
        set_(self, "name", str(self.name))
        set_(self, "_lengths", lengths)
        set_(self, "_cache", {})

    def __repr__(self):
        return (
            f"Model({self.name!r}, {self.n_nodes} nodes, {self.n_rods} rods, "
            f"{self.n_free} free DOF of {self.n_dof})"
        )

    # -- DOF maps --------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self.points.shape[0]

    @property
    def n_rods(self) -> int:
        """Number of rods."""
        return self.edges.shape[0]

    @property
    def n_dof(self) -> int:
        """Number of full DOF, ``2 * n_nodes``."""
        return 2 * self.n_nodes

    @property
    def free_dofs(self) -> np.ndarray:
        """(n_free,) int64: the full DOF index of each reduced DOF."""
        return self._free

    @property
    def full_to_free(self) -> np.ndarray:
        """(n_dof,) int64: the reduced index of each full DOF, -1 where fixed."""
        return self._full_to_free

    @property
    def n_free(self) -> int:
        """Number of free (reduced) DOF."""
        return self._free.size

    def pattern_nnz(self) -> int:
        """Upper bound of :meth:`system`'s stored entries, without building it: a 2 x 2 block per
        node and two per rod (the exact count plus the fixed DOF's entries)."""
        return 4 * self.n_nodes + 8 * self.n_rods

    @property
    def lengths(self) -> np.ndarray:
        """(m,) rod lengths."""
        return self._lengths

    @property
    def total_mass(self) -> float:
        """``sum(rho A L)`` over all rods (fixed nodes included)."""
        return float(np.sum(self.rho * self.area * self._lengths))

    @property
    def load_dofs(self) -> np.ndarray:
        """Full DOF where ``b_full`` is non-zero."""
        if self.b_full is None:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self.b_full).astype(np.int64)

    @property
    def output_nodes(self) -> np.ndarray | None:
        """Node of each output DOF (``None`` if outputs are all free DOF)."""
        return None if self.output_dofs_full is None else self.output_dofs_full // 2

    @property
    def output_directions(self) -> np.ndarray | None:
        """Component of each output DOF, 0 = x, 1 = y (``None`` if outputs are all free DOF)."""
        return None if self.output_dofs_full is None else (self.output_dofs_full % 2).astype(np.int8)

    @property
    def output_dofs(self) -> np.ndarray | None:
        """Output DOF in reduced numbering (``None``: all free DOF)."""
        if self.output_dofs_full is None:
            return None
        return self._full_to_free[self.output_dofs_full]

    def load_history(self):
        """The load time history for a sweep: ``(history, dt, n_fft)``.

        Returns
        -------
        history : (n_fft,) float64 array, str or None
            The synthetic pyroshock samples (:func:`femfreq.spectra.pyroshock`), the path
            of a history file (read by :func:`femfreq.spectra.read_history`), or ``None``
            if the model has no history.
        dt : float or None
            Sampling interval in s.
        n_fft : int or None
            FFT length.
        """
        h = self.history
        if h is None:
            return None, None, None
        if h.is_builtin:
            from ..spectra import pyroshock

            return pyroshock(dt=h.dt, n=h.n_fft), h.dt, h.n_fft
        return h.history, h.dt, h.n_fft

    # -- matrices --------------------------------------------------------------
    def full_matrices(self):
        """``(K, M)`` on the full DOF, CSR (2 n, 2 n), cached."""
        if "full" not in self._cache:
            K = rods.stiffness(self.points, self.edges, self.E, self.area)
            M = rods.mass(self.points, self.edges, self.rho, self.area, lumped=self.lumped)
            self._cache["full"] = (K, M)
        return self._cache["full"]

    def matrices(self):
        """Reduced ``(K, C, M, b)`` on the free DOF, cached.

        Returns
        -------
        K, C, M : (n_free, n_free) scipy.sparse.csc_matrix
            Symmetric. ``C = alpha M + beta K`` (an empty matrix without viscous damping).
            When :meth:`system` made them (it was called first), the System shares their
            arrays and they are read-only: change a copy (``K.copy()``), not them.
        b : (n_free,) float64
            The load vector (zeros if the model has no load).
        """
        if "reduced" not in self._cache:
            K_full, M_full = self.full_matrices()
            n = self.n_free
            K = _eliminate(K_full, self._full_to_free, n)
            M = _eliminate(M_full, self._full_to_free, n)
            alpha, beta = self.damping.alpha, self.damping.beta
            if alpha == 0 and beta == 0:
                C = sp.csc_matrix((n, n))
            elif alpha == 0:
                C = beta * K
            elif beta == 0:
                C = alpha * M
            else:
                C = (alpha * M + beta * K).tocsc()
            b = np.zeros(n) if self.b_full is None else self.b_full[self._free]
            self._cache["reduced"] = (K, C, M, b)
        return self._cache["reduced"]

    def system(self) -> System:
        """The :class:`~femfreq.system.System` of this model (cached, so its token is stable).

        With a :attr:`base`, the load vector is ``-M r`` (``r`` the base's influence
        vector) and the System carries the :class:`~femfreq.system.BaseCoupling`.

        Raises
        ------
        ValueError
            If the model has neither a load (``b_full`` is None) nor a base.
        """
        if "system" not in self._cache:
            # matrices made here for the System are its own: it shares their arrays, which become
            # read-only (matrices() returns them too); matrices a caller may already hold are copied
            fresh = "reduced" not in self._cache
            K, C, M, b = self.matrices()
            out = self.output_dofs if self.output_dofs is not None else np.arange(self.n_free)
            coupling = None
            if self.base is not None:
                b, coupling = self._base_load(K, C, M, out)
                out = np.concatenate([out, coupling.coupled])
            elif self.b_full is None:
                raise ValueError(f"model {self.name!r} has no load: give a [load] or [base] section, or b_full")
            with _adopting(fresh):
                self._cache["system"] = System(
                    K=K, C=C, M=M, b=b, g=self.damping.g, output_dofs=out, name=self.name, base=coupling
                )
            if fresh:
                _read_only(K, C, M)
        return self._cache["system"]

    def _base_load(self, K, C, M, out):
        """``(b, BaseCoupling)`` of the base."""
        from .base import base_coupling

        return base_coupling(self, self.base, out, K, C, M)

    def with_base(self, direction, *, nodes=None, acceleration=1.0) -> "Model":
        """This model with its constrained nodes driven along ``direction`` (a new Model).

        Parameters
        ----------
        direction : "x", "y", "vx,vy" or (2,) float
            Direction of the base motion.
        nodes : (k,) int array, optional
            The driven nodes, among the constrained ones (default: all constrained nodes).
        acceleration : float, optional
            The base acceleration spectrum (default 1: results per unit base acceleration).

        Returns
        -------
        Model
            With :attr:`base` set; ``femfreq.solve`` then sweeps the base motion.

        Examples
        --------
        >>> from femfreq.model import Model
        >>> m = Model(points=[[0, 0], [1, 0]], edges=[[0, 1]], E=1.0, rho=2.0, area=1.0,
        ...           fixed_dofs=[0, 1, 3]).with_base("x")
        >>> m.system().b.tolist()   # -M r: the free node's mass, pulled back
        [-1.0]
        """
        from .base import Base

        return dataclasses.replace(self, base=Base(direction, nodes=nodes, acceleration=acceleration))

    def effective_mass(self, k: int = 10):
        """Modal effective mass along x and y of the ``k`` lowest modes (Nastran MEFFMASS).

        Returns
        -------
        femfreq.model.base.EffectiveMass
            ``freqs_hz``, ``mass (k, 2)``, ``moving_mass (2,)``, ``fraction``, ``cumulative``, ``table()``.
        """
        from .base import effective_mass

        return effective_mass(self, k)

    def expand(self, x_reduced) -> np.ndarray:
        """Put a reduced vector (or columns of vectors) back on the full DOF, zero at fixed DOF.

        Parameters
        ----------
        x_reduced : (n_free,) or (n_free, k) array

        Returns
        -------
        (n_dof,) or (n_dof, k) array of the same dtype
        """
        x = np.asarray(x_reduced)
        if x.ndim not in (1, 2) or x.shape[0] != self.n_free:
            raise ValueError(f"x_reduced must have {self.n_free} rows (has shape {x.shape})")
        out = np.zeros((self.n_dof,) + x.shape[1:], dtype=x.dtype)
        out[self._free] = x
        return out

    def modes(self, k: int = 10):
        """Lowest natural frequencies and mass-normalised mode shapes.

        Solves ``K phi = lambda M phi`` by shift-invert Lanczos (``eigsh``) about a
        small negative shift, so free-free models (rigid-body modes, ``lambda = 0``)
        work too; small models use a dense solver.

        Parameters
        ----------
        k : int
            Number of modes.

        Returns
        -------
        freqs_hz : (k,) float64
            ``sqrt(lambda) / (2 pi)``, ascending (rigid-body modes give ~0).
        shapes_full : (n_dof, k) float64
            Mode shapes on the full DOF, ``phi^T M phi = 1``.
        """
        import scipy.linalg
        import scipy.sparse.linalg as sla

        k = int(k)
        n = self.n_free
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        if k > n:
            raise ValueError(f"k = {k} modes asked for but the model has only {n} free DOF")
        K, _, M, _ = self.matrices()
        if n <= 500 or k >= n - 1:
            lam, phi = scipy.linalg.eigh(K.toarray(), M.toarray(), subset_by_index=[0, k - 1])
        else:
            # shift below zero: K - sigma M is positive definite even with rigid-body modes
            scale = float(np.max(K.diagonal() / M.diagonal()))
            sigma = -1e-8 * scale
            lam, phi = sla.eigsh(K.tocsc(), k=k, M=M.tocsc(), sigma=sigma, which="LM")
            order = np.argsort(lam)
            lam, phi = lam[order], phi[:, order]
            # eigsh returns M-orthonormal vectors already; normalise again for safety
            phi = phi / np.sqrt(np.einsum("ij,ij->j", phi, M @ phi))
        freqs = np.sqrt(np.clip(lam, 0.0, None)) / (2 * np.pi)
        return freqs, self.expand(phi)

    # -- description -------------------------------------------------------------
    def summary(self) -> dict:
        """Plain-type description of the model (for ``femfreq info`` and result files)."""
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)

        def _prop(v):
            a = np.asarray(v)
            return float(a) if a.ndim == 0 else [float(a.min()), float(a.max())]

        out = {
            "name": self.name,
            "description": self.description,
            "n_nodes": self.n_nodes,
            "n_rods": self.n_rods,
            "n_dof": self.n_dof,
            "n_free": self.n_free,
            "n_fixed": int(self.fixed_dofs.size),
            "total_mass": self.total_mass,
            "bounding_box": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])],
            "rod_length": [float(self._lengths.min()), float(self._lengths.max())],
            "E": _prop(self.E),
            "rho": _prop(self.rho),
            "area": _prop(self.area),
            "mass": "lumped" if self.lumped else "consistent",
            "alpha": self.damping.alpha,
            "beta": self.damping.beta,
            "g": self.damping.g,
            "load_dofs": self.load_dofs.tolist(),
            "n_outputs": self.n_free if self.output_dofs_full is None else int(self.output_dofs_full.size),
        }
        if self.base is not None:
            out.update({f"base_{k}": v for k, v in self.base.describe().items()})
        if self.history is not None:
            h = self.history
            out.update(history=h.history, dt=h.dt, n_fft=h.n_fft, magnitude=h.magnitude)
        for key, value in self.source.items():
            out[f"source_{key}"] = value
        return out
