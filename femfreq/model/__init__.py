"""Rod models: nodes, rods, material, constraints, load and outputs -> K, C, M, b.

A :class:`Model` holds a planar rod structure on the *full* DOF (node ``i`` has
DOF ``2 i`` for x and ``2 i + 1`` for y) together with the fixed DOF, the load
vector and the output DOF. :meth:`Model.matrices` assembles ``K`` and ``M`` with
:mod:`femfreq.model.rods`, eliminates the fixed DOF and forms ``C = alpha M + beta K``;
:meth:`Model.system` wraps them in a :class:`femfreq.system.System`.

:func:`load_model` reads the TOML model format of ``docs/architecture.md`` (or a
model shipped with femfreq, by name: see :func:`models_dir`).
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import rods
from ..errors import ReadError
from ..system import System

__all__ = [
    "Damping",
    "LoadHistory",
    "Model",
    "select_nodes",
    "fixed_dofs_from",
    "load_vector",
    "output_dofs_from",
    "load_model",
    "models_dir",
    "shipped_models",
]

logger = logging.getLogger(__name__)

_DIRECTIONS = {"x": (0,), "y": (1,), "xy": (0, 1)}


# --------------------------------------------------------------------------- damping
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
            value = getattr(self, name)
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"damping {name} must be a number (got {value!r})") from None
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"damping {name} must be finite and >= 0 (got {value})")
            object.__setattr__(self, name, v)


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
    dt : float
        Sampling interval in s.
    n_fft : int
        FFT length; the sweep frequencies are ``numpy.fft.rfftfreq(n_fft, dt)``.
    magnitude : float
        The force magnitude already applied to ``b`` (kept for the record).
    """

    history: str = "pyroshock"
    dt: float = 5e-4
    n_fft: int = 4096
    magnitude: float = 1.0

    def __post_init__(self):
        if not isinstance(self.history, str) or not self.history:
            raise TypeError(f"history must be 'pyroshock' or a file path (got {self.history!r})")
        dt = float(self.dt)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be positive and finite (got {self.dt})")
        if isinstance(self.n_fft, bool) or int(self.n_fft) != self.n_fft or int(self.n_fft) < 2:
            raise ValueError(f"n_fft must be an integer >= 2 (got {self.n_fft})")
        mag = float(self.magnitude)
        if not math.isfinite(mag):
            raise ValueError(f"magnitude must be finite (got {self.magnitude})")
        object.__setattr__(self, "dt", dt)
        object.__setattr__(self, "n_fft", int(self.n_fft))
        object.__setattr__(self, "magnitude", mag)

    @property
    def is_builtin(self) -> bool:
        """True for the shipped synthetic pyroshock."""
        return self.history == "pyroshock"


# --------------------------------------------------------------------------- selections
def _spec_numbers(spec, key, shape):
    """``spec[key]`` as a finite float array of the given shape, or a ValueError quoting the spec."""
    try:
        arr = np.asarray(spec[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"selection {spec!r}: {key!r} must be numbers of shape {shape}") from None
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"selection {spec!r}: {key!r} must be finite numbers of shape {shape}")
    return arr


_SELECTORS = {"box": set(), "line": {"tol"}, "near": set(), "circle": {"radius"}}


def select_nodes(points, spec) -> np.ndarray:
    """Nodes selected by a geometric specification.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    spec : dict
        One of

        - ``{"box": [xmin, ymin, xmax, ymax]}``: nodes inside the box (inclusive);
        - ``{"line": [[x0, y0], [x1, y1]], "tol": t}``: nodes within ``t`` of the
          segment (default ``t``: 1e-9 times the size of the model);
        - ``{"near": [x, y]}``: the single node nearest to the point;
        - ``{"circle": [x, y], "radius": r}``: nodes within ``r`` of the point.

    Returns
    -------
    (k,) int64 array
        Sorted 0-based node ids, ``k >= 1``.

    Raises
    ------
    ValueError
        If the spec is malformed or selects no node (quoting the spec).

    Examples
    --------
    >>> from femfreq.model import select_nodes
    >>> select_nodes([[0, 0], [1, 0], [2, 0]], {"circle": [1.9, 0], "radius": 1.0})
    array([1, 2])
    """
    points = np.asarray(points, dtype=np.float64)
    if not isinstance(spec, dict):
        raise TypeError(f"a selection must be a dict like {{'near': [x, y]}} (got {spec!r})")
    kinds = [k for k in spec if k in _SELECTORS]
    if len(kinds) != 1:
        raise ValueError(
            f"selection {spec!r} must have exactly one of the keys {sorted(_SELECTORS)}"
        )
    kind = kinds[0]
    extra = set(spec) - {kind} - _SELECTORS[kind]
    if extra:
        raise ValueError(f"selection {spec!r}: unknown key {sorted(extra)[0]!r} for a {kind!r} selection")
    if points.shape[0] == 0:
        raise ValueError(f"selection {spec!r} selects no node (the model has no nodes)")
    x, y = points[:, 0], points[:, 1]
    if kind == "box":
        xmin, ymin, xmax, ymax = _spec_numbers(spec, "box", (4,))
        if xmin > xmax or ymin > ymax:
            raise ValueError(f"selection {spec!r}: box must be [xmin, ymin, xmax, ymax] with min <= max")
        mask = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    elif kind == "line":
        (x0, y0), (x1, y1) = _spec_numbers(spec, "line", (2, 2))
        scale = max(float(np.abs(points).max()), 1.0)
        tol = _spec_scalar(spec, "tol", 1e-9 * scale, allow_zero=True)
        dx, dy = x1 - x0, y1 - y0
        ll = dx * dx + dy * dy
        t = np.zeros_like(x) if ll == 0 else np.clip(((x - x0) * dx + (y - y0) * dy) / ll, 0.0, 1.0)
        mask = np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= tol
    elif kind == "near":
        px, py = _spec_numbers(spec, "near", (2,))
        mask = np.zeros(points.shape[0], dtype=bool)
        mask[int(np.argmin((x - px) ** 2 + (y - py) ** 2))] = True
    else:
        cx, cy = _spec_numbers(spec, "circle", (2,))
        if "radius" not in spec:
            raise ValueError(f"selection {spec!r}: a circle needs a 'radius'")
        r = _spec_scalar(spec, "radius", None, allow_zero=True)
        mask = np.hypot(x - cx, y - cy) <= r
    nodes = np.flatnonzero(mask).astype(np.int64)
    if nodes.size == 0:
        lo, hi = points.min(axis=0), points.max(axis=0)
        raise ValueError(
            f"selection {spec!r} selects no node (the nodes span x {lo[0]:g}..{hi[0]:g}, y {lo[1]:g}..{hi[1]:g})"
        )
    return nodes


def _spec_scalar(spec, key, default, *, allow_zero=False):
    """A non-negative (or positive) finite scalar from a selection spec."""
    if key not in spec:
        return default
    try:
        v = float(spec[key])
    except (TypeError, ValueError):
        raise ValueError(f"selection {spec!r}: {key!r} must be a number (got {spec[key]!r})") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"selection {spec!r}: {key!r} must be finite and >= 0 (got {spec[key]!r})")
    return v


def _directions(value, what):
    """Component offsets (0 = x, 1 = y) for "x", "y" or "xy"."""
    if value not in _DIRECTIONS:
        raise ValueError(f"{what} must be 'x', 'y' or 'xy' (got {value!r})")
    return np.array(_DIRECTIONS[value], dtype=np.int64)


def fixed_dofs_from(points, constraints) -> np.ndarray:
    """Full DOF fixed by a list of constraints.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    constraints : list of dict
        Each ``{"select": <selection>, "fix": "x" | "y" | "xy"}`` (see :func:`select_nodes`).

    Returns
    -------
    (k,) int64 array
        Sorted unique full DOF indices.
    """
    dofs = [np.empty(0, dtype=np.int64)]
    for c in constraints:
        if not isinstance(c, dict) or "select" not in c:
            raise ValueError(f"a constraint must be {{'select': ..., 'fix': 'x'|'y'|'xy'}} (got {c!r})")
        comps = _directions(c.get("fix", "xy"), "constraint 'fix'")
        nodes = select_nodes(points, c["select"])
        dofs.append((2 * nodes[:, None] + comps[None, :]).ravel())
    return np.unique(np.concatenate(dofs))


def load_vector(points, select, direction=(0.0, -1.0), magnitude=1.0) -> np.ndarray:
    """Full load vector ``b``: a point force on each selected node.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    select : dict
        Selection (usually ``{"near": [x, y]}``, one node).
    direction : (2,) array
        Force direction; normalised to unit length.
    magnitude : float
        Force magnitude on each selected node.

    Returns
    -------
    b_full : (2 n,) float64
    """
    points = np.asarray(points, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != (2,) or not np.all(np.isfinite(d)) or not np.any(d != 0):
        raise ValueError(f"load direction must be two finite numbers, not both zero (got {direction!r})")
    magnitude = float(magnitude)
    if not math.isfinite(magnitude):
        raise ValueError(f"load magnitude must be finite (got {magnitude})")
    nodes = select_nodes(points, select)
    b = np.zeros(2 * points.shape[0])
    b[2 * nodes] = magnitude * d[0] / np.hypot(*d)
    b[2 * nodes + 1] = magnitude * d[1] / np.hypot(*d)
    return b


def output_dofs_from(points, select, directions="xy") -> np.ndarray:
    """Full output DOF: the given components of the selected nodes, node by node.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    select : dict
        Selection (see :func:`select_nodes`).
    directions : {"x", "y", "xy"}
        Components kept.

    Returns
    -------
    (k,) int64 array
        Full DOF indices ordered by node, then x before y.
    """
    comps = _directions(directions, "output 'directions'")
    nodes = select_nodes(points, select)
    return (2 * nodes[:, None] + comps[None, :]).ravel()


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
        Load vector on the full DOF (required by :meth:`system`).
    output_dofs_full : (k,) int array, optional
        Full DOF whose response a sweep keeps (default: every free DOF).
    name, description : str, optional
    history : LoadHistory, optional
        The load time history spec (``None``: none given); see :meth:`load_history`.
    source : dict, optional
        Where the model came from (file, level, mesh switches...).
    mesh : femfreq.mesh.Mesh, optional
        The triangle mesh the rods came from (for exports and plots).

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

        fixed = _dof_array("fixed_dofs", self.fixed_dofs, n_dof, allow_empty=True)
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
            on_fixed = fixed[b[fixed] != 0]
            if on_fixed.size:
                warnings.warn(
                    f"the load acts on fixed DOF {on_fixed.tolist()[:5]} "
                    f"(node {on_fixed[0] // 2}); that part of the load is lost",
                    stacklevel=3,
                )
            set_(self, "b_full", b)
        if self.output_dofs_full is not None:
            out = _dof_array("output_dofs_full", self.output_dofs_full, n_dof, allow_empty=False, unique=False)
            on_fixed = out[full_to_free[out] < 0]
            if on_fixed.size:
                d = int(on_fixed[0])
                raise ValueError(
                    f"output DOF {d} (node {d // 2}, {'xy'[d % 2]}) is fixed; "
                    "outputs must be free DOF (choose another selection or directions)"
                )
            set_(self, "output_dofs_full", out)
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

        Raises
        ------
        ValueError
            If the model has no load (``b_full`` is None).
        """
        if "system" not in self._cache:
            if self.b_full is None:
                raise ValueError(f"model {self.name!r} has no load: give a [load] section or b_full")
            K, C, M, b = self.matrices()
            self._cache["system"] = System(
                K=K, C=C, M=M, b=b, g=self.damping.g, output_dofs=self.output_dofs, name=self.name
            )
        return self._cache["system"]

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
        if self.history is not None:
            h = self.history
            out.update(history=h.history, dt=h.dt, n_fft=h.n_fft, magnitude=h.magnitude)
        for key, value in self.source.items():
            out[f"source_{key}"] = value
        return out


def _dof_array(name, value, n_dof, *, allow_empty, unique=True):
    """Validate an array of full DOF indices."""
    arr = np.asarray(value)
    if arr.size == 0:
        if not allow_empty:
            raise ValueError(f"{name} must not be empty")
        return np.empty(0, dtype=np.int64)
    arr = arr.ravel()
    if not np.issubdtype(arr.dtype, np.integer):
        f = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(f)) or np.any(np.mod(f, 1) != 0):
            raise TypeError(f"{name} must be integer DOF indices (got {arr[:5]!r})")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n_dof)
    if bad.any():
        raise ValueError(f"{name}: DOF {int(arr[bad][0])} is out of range 0..{n_dof - 1}")
    return np.unique(arr) if unique else arr


# --------------------------------------------------------------------------- model files
def models_dir() -> Path:
    """The folder holding the shipped models (``*.toml`` and their ``*.poly`` meshes).

    An installed wheel carries them as the package data folder ``femfreq/models``
    (found with :mod:`importlib.resources`); a source checkout or an editable install
    (``pip install -e .``) uses the repository's top-level ``models/`` folder.

    Returns
    -------
    pathlib.Path
        The folder; it may not exist if femfreq was installed without its data.
    """
    packaged = importlib.resources.files("femfreq") / "models"
    if isinstance(packaged, Path) and packaged.is_dir():  # not a zipped install
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def shipped_models() -> list[str]:
    """Names of the shipped models (the ``*.toml`` files in :func:`models_dir`)."""
    d = models_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


_SCHEMA = {
    "": {"name", "description", "mesh", "material", "section", "damping", "constraints", "load", "output"},
    "mesh": {"poly", "levels", "default_level", "node", "ele", "line"},
    "mesh.line": {"start", "end", "n"},
    "material": {"E", "rho"},
    "section": {"area", "mass"},
    "damping": {"alpha", "beta", "g"},
    "constraints": {"select", "fix"},
    "load": {"select", "direction", "magnitude", "history", "dt", "n_fft"},
    "output": {"select", "directions"},
}

# load_model(**overrides): flat name -> (section, key)
_OVERRIDES = {
    "name": ("", "name"),
    "E": ("material", "E"),
    "rho": ("material", "rho"),
    "area": ("section", "area"),
    "mass": ("section", "mass"),
    "alpha": ("damping", "alpha"),
    "beta": ("damping", "beta"),
    "g": ("damping", "g"),
    "history": ("load", "history"),
    "dt": ("load", "dt"),
    "n_fft": ("load", "n_fft"),
    "magnitude": ("load", "magnitude"),
    "direction": ("load", "direction"),
    "output_directions": ("output", "directions"),
}


class _File:
    """Error helper bound to one model file and its text."""

    def __init__(self, path, text):
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key):
        """1-based line of the first ``key =`` (or ``[key]``) in the file, or None."""
        pat = re.compile(rf"(^|[\s{{,.\[])\"?{re.escape(key)}\"?\s*(=|\]|\.)")
        for i, line in enumerate(self.lines, 1):
            code = line.split("#", 1)[0]
            if pat.search(code):
                return i
        return None

    def error(self, msg, key=None):
        """A ReadError (a ValueError) ``path:line: msg`` (line 0 if the key is not found)."""
        line = self.line_of(key) if key else None
        return ReadError(self.path, line or 0, msg)

    def check_keys(self, table, section):
        if not isinstance(table, dict):
            raise self.error(f"[{section}] must be a table (got {table!r})", section.split(".")[-1] or None)
        unknown = set(table) - _SCHEMA[section]
        if unknown:
            key = sorted(unknown)[0]
            where = f"[{section}]" if section else "the top level"
            raise self.error(
                f"unknown key {key!r} in {where}; allowed: {', '.join(sorted(_SCHEMA[section]))}", key
            )

    def number(self, table, section, key, default=None, *, positive=False, nonneg=False, integer=False):
        if key not in table:
            if default is None:
                raise self.error(f"[{section}] needs {key!r}", section)
            return default
        v = table[key]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if ok and integer:
            ok = float(v) == int(v)
        if ok and positive:
            ok = v > 0
        if ok and nonneg:
            ok = v >= 0
        if not ok:
            kind = "a positive" if positive else "a non-negative" if nonneg else "a finite"
            raise self.error(f"[{section}] {key} must be {kind} {'integer' if integer else 'number'} (got {v!r})", key)
        return int(v) if integer else float(v)


def _resolve_model_path(path_or_name) -> Path:
    p = Path(path_or_name)
    if p.suffix == ".toml" or p.exists() or p.parent != Path("."):
        if not p.is_file():
            raise FileNotFoundError(f"model file {str(p)!r} not found")
        return p.resolve()
    shipped = models_dir() / f"{p.name}.toml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"no model file {str(p)!r} and no shipped model of that name (shipped: {', '.join(shipped_models()) or 'none'})"
    )


def load_model(path_or_name, *, level: int | None = None, **overrides) -> Model:
    """Read a model file (TOML) and build the :class:`Model`.

    Parameters
    ----------
    path_or_name : str or Path
        A ``.toml`` file, or the name of a shipped model (``"satellite"``,
        ``"beam"``, ``"rod"``: see :func:`shipped_models`).
    level : int, optional
        Mesh refinement level, 1-based (default: the file's ``default_level``, else 1).
        For a ``[mesh] line`` model, level ``l`` uses ``n * 2**(l - 1)`` rods.
    **overrides
        Replace file values: ``name, E, rho, area, mass ("lumped"|"consistent"),
        alpha, beta, g, history, dt, n_fft, magnitude, direction, output_directions``.
        ``None`` values are ignored.

    Returns
    -------
    Model

    Raises
    ------
    FileNotFoundError
        No such file or shipped model.
    ValueError
        (``femfreq.mesh.ReadError`` for file content) unknown keys, bad values,
        selections that select no node, outputs on fixed DOF, a bad level.
    TypeError
        An unknown override.

    Notes
    -----
    The format is described in ``docs/architecture.md``. Paths in the file are
    relative to it. ``area = "reference"`` means ``A = sqrt(2 / n_dof)`` with
    ``n_dof = 2 n_nodes``. A ``[mesh] line = {start, end, n}`` model is a chain
    of ``n`` collinear rods along x or y; as a straight chain has no transverse
    stiffness, the transverse DOF of all its nodes are fixed, leaving the axial
    DOF only.
    """
    path = _resolve_model_path(path_or_name)
    text = path.read_text(encoding="utf-8")
    f = _File(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReadError(path, getattr(exc, "lineno", 0) or 0, f"not valid TOML: {exc}") from None
    for key, value in overrides.items():
        if key not in _OVERRIDES:
            raise TypeError(f"unknown override {key!r}; known: {', '.join(sorted(_OVERRIDES))}")
        if value is None:
            continue
        section, k = _OVERRIDES[key]
        (data if not section else data.setdefault(section, {}))[k] = value

    f.check_keys(data, "")
    for section in ("mesh", "material", "section", "damping", "load", "output"):
        if section in data:
            f.check_keys(data[section], section)
    constraints = data.get("constraints", [])
    if not isinstance(constraints, list):
        raise f.error("constraints must be an array of tables [[constraints]]", "constraints")
    for c in constraints:
        f.check_keys(c, "constraints")

    # -- mesh
    if "mesh" not in data:
        raise f.error("the model needs a [mesh] section")
    points, edges, extra_fixed, source, mesh_obj = _build_mesh(f, path.parent, data["mesh"], level)
    source = {"file": str(path), **source}
    n_dof = 2 * points.shape[0]

    # -- material and section
    material = data.get("material", {})
    E = f.number(material, "material", "E", positive=True)
    rho = f.number(material, "material", "rho", positive=True)
    section = data.get("section", {})
    area = section.get("area", "reference")
    if area == "reference":
        area = math.sqrt(2.0 / n_dof)
    else:
        area = f.number(section, "section", "area", positive=True)
    mass_kind = section.get("mass", "lumped")
    if mass_kind not in ("lumped", "consistent"):
        raise f.error(f"[section] mass must be 'lumped' or 'consistent' (got {mass_kind!r})", "mass")
    dmp = data.get("damping", {})
    damping = Damping(
        alpha=f.number(dmp, "damping", "alpha", 0.0, nonneg=True),
        beta=f.number(dmp, "damping", "beta", 0.0, nonneg=True),
        g=f.number(dmp, "damping", "g", 0.0, nonneg=True),
    )

    # -- constraints, load, outputs (selection errors get the file name)
    def _with_file(func, key, *args):
        try:
            return func(*args)
        except (ValueError, TypeError) as exc:
            raise f.error(str(exc), key) from None

    for c in constraints:
        if "select" not in c:
            raise f.error("each [[constraints]] needs 'select'", "constraints")
    fixed = _with_file(fixed_dofs_from, "constraints", points, constraints)
    fixed = np.union1d(fixed, extra_fixed).astype(np.int64)

    b_full, history = None, None
    if "load" in data:
        load = data["load"]
        if "select" not in load:
            raise f.error("[load] needs 'select' (e.g. select = { near = [x, y] })", "load")
        magnitude = f.number(load, "load", "magnitude", 1.0)
        b_full = _with_file(
            load_vector, "load", points, load["select"], load.get("direction", [0.0, -1.0]), magnitude
        )
        hist = load.get("history", "pyroshock")
        if not isinstance(hist, str):
            raise f.error(f"[load] history must be 'pyroshock' or a file name (got {hist!r})", "history")
        if hist != "pyroshock":
            hp = Path(hist)
            hist = str(hp if hp.is_absolute() else (path.parent / hp).resolve())
        history = LoadHistory(
            history=hist,
            dt=f.number(load, "load", "dt", 5e-4, positive=True),
            n_fft=f.number(load, "load", "n_fft", 4096, positive=True, integer=True),
            magnitude=magnitude,
        )
    output_dofs = None
    if "output" in data:
        out = data["output"]
        if "select" not in out:
            raise f.error("[output] needs 'select'", "output")
        output_dofs = _with_file(output_dofs_from, "output", points, out["select"], out.get("directions", "xy"))
        bad = np.isin(output_dofs, fixed)
        if bad.any():
            d = int(output_dofs[bad][0])
            raise f.error(
                f"output DOF {d} (node {d // 2}, {'xy'[d % 2]}) is fixed; outputs must be free DOF", "output"
            )

    name = data.get("name", path.stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise f.error("name and description must be strings", "name")
    model = Model(
        points=points,
        edges=edges,
        E=E,
        rho=rho,
        area=area,
        lumped=mass_kind == "lumped",
        damping=damping,
        fixed_dofs=fixed,
        b_full=b_full,
        output_dofs_full=output_dofs,
        name=name,
        description=description,
        history=history,
        source=source,
        mesh=mesh_obj,
    )
    logger.info("model %s: %d nodes, %d rods, %d free DOF", model.name, model.n_nodes, model.n_rods, model.n_free)
    return model


def _build_mesh(f: _File, base: Path, mesh: dict, level):
    """(points, edges, extra fixed DOF, source info, Mesh or None) from a [mesh] table."""
    kinds = [k for k in ("poly", "node", "line") if k in mesh]
    if len(kinds) != 1:
        raise f.error("[mesh] needs exactly one of 'poly' (+ levels), 'node' (+ ele) or 'line'", "mesh")
    kind = kinds[0]
    if level is not None and (isinstance(level, bool) or int(level) != level or level < 1):
        raise ValueError(f"level must be an integer >= 1 (got {level!r})")
    default_level = f.number(mesh, "mesh", "default_level", 1, positive=True, integer=True)
    level = default_level if level is None else int(level)

    if kind == "line":
        line = mesh["line"]
        f.check_keys(line, "mesh.line")
        try:
            (x0, y0), (x1, y1) = np.asarray([line["start"], line["end"]], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise f.error("[mesh] line needs start = [x, y] and end = [x, y]", "line") from None
        n = f.number(line, "mesh.line", "n", positive=True, integer=True) * 2 ** (level - 1)
        if x0 == x1 and y0 == y1:
            raise f.error(f"[mesh] line has zero length (start = end = {[x0, y0]})", "line")
        if y0 == y1:
            transverse = 1
        elif x0 == x1:
            transverse = 0
        else:
            raise f.error(
                "[mesh] line must be parallel to the x or the y axis (its transverse DOF are fixed)", "line"
            )
        t = np.linspace(0.0, 1.0, n + 1)
        points = np.column_stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)])
        edges = np.column_stack([np.arange(n), np.arange(1, n + 1)]).astype(np.int64)
        extra = 2 * np.arange(n + 1, dtype=np.int64) + transverse
        return points, edges, extra, {"mesh": "line", "level": level, "n_rods": n}, None

    from .. import mesh as meshmod

    if kind == "node":
        node = base / mesh["node"]
        ele = base / mesh["ele"] if "ele" in mesh else None
        if "levels" in mesh:
            raise f.error("[mesh] levels only apply to a poly mesh", "levels")
        if level != 1:
            raise ValueError(f"{f.path}: level {level} does not exist (a node/ele mesh has one level)")
        m = meshmod.read_triangle_mesh(node, ele)
        return m.points, m.edges, np.empty(0, dtype=np.int64), {"mesh": str(node), "level": 1}, m

    levels = mesh.get("levels")
    if not isinstance(levels, list) or not levels or not all(isinstance(s, str) for s in levels):
        raise f.error("[mesh] poly needs levels = [\"<Triangle switches>\", ...]", "levels")
    if level > len(levels):
        raise ValueError(f"{f.path}: level {level} does not exist (the model has levels 1..{len(levels)})")
    poly_path = base / mesh["poly"]
    poly = meshmod.read_poly(poly_path)
    m = meshmod.mesh_levels(poly, levels, level)
    return (
        m.points,
        m.edges,
        np.empty(0, dtype=np.int64),
        {"mesh": str(poly_path), "level": level, "switches": " ".join(levels[:level])},
        m,
    )
