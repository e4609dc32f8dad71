"""The geometry types: a planar straight-line graph (:class:`Poly`) and a triangle mesh (:class:`Mesh`).

Both are frozen dataclasses whose ``__post_init__`` normalises the arrays
(float64 coordinates, int64 connectivity, C-contiguous) and checks every index;
derive new ones with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Poly", "Mesh"]


def _float_array(name, value, ncols, owner):
    """Normalise to a C-contiguous float64 array of shape (n, ncols)."""
    a = np.ascontiguousarray(value, dtype=np.float64)
    if a.size == 0 and a.ndim != 2:
        a = a.reshape(0, ncols)
    if a.ndim != 2 or a.shape[1] != ncols:
        raise ValueError(f"{owner}.{name} must have shape (n, {ncols}) (has shape {a.shape})")
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"{owner}.{name} row {row} is not finite: {a[row].tolist()}")
    return a


def _int_array(name, value, shape, owner, *, n_points=None):
    """Normalise to a C-contiguous int64 array; integral values only, point indices in ``0..n_points-1``."""
    a = np.asarray(value)
    if a.size == 0 and a.ndim != len(shape):
        a = a.reshape((0,) + tuple(shape[1:]))
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{owner}.{name} must hold integers (has {a.dtype} values that are not)")
    elif a.dtype.kind not in "iub":
        raise TypeError(f"{owner}.{name} must be an integer array (has dtype {a.dtype})")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{owner}.{name} must have shape {want} (has shape {a.shape})")
    if n_points is not None and a.size:
        bad = ((a < 0) | (a >= n_points)).reshape(len(a), -1).any(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{owner}.{name} row {row} = {a[row].tolist()} refers to a point outside 0..{n_points - 1}"
            )
    return a


def _markers(name, value, n, owner):
    """Markers default to zeros; flatten an (n, 1) column."""
    if value is None:
        return np.zeros(n, dtype=np.int64)
    a = np.asarray(value)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    a = _int_array(name, a, (None,), owner)
    if len(a) != n:
        raise ValueError(f"{owner}.{name} has {len(a)} entries; expected {n}")
    return a


def _unique_counts(keys):
    """Sorted unique values of a 1-D array and their counts (sort-based: np.unique is slow on NumPy 2.4)."""
    keys = np.sort(keys)
    start = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[start], np.diff(np.append(start, len(keys)))


@dataclass(frozen=True, eq=False)
class Poly:
    """A planar straight-line graph: the input of Triangle's ``p`` switch.

    Parameters
    ----------
    vertices : (n, 2) array_like of float
        Vertex coordinates.
    segments : (m, 2) array_like of int, optional
        0-based vertex indices of the segments (edges that the mesh must keep).
    holes : (h, 2) array_like of float, optional
        One point inside each hole (Triangle removes the triangles around it up to
        the enclosing segments).
    regions : (r, 4) array_like of float, optional
        ``x, y, attribute, max_area`` of each region (max area < 0: none).
    vertex_markers : (n,) array_like of int, optional
        Boundary markers of the vertices (default 0).
    segment_markers : (m,) array_like of int, optional
        Boundary markers of the segments (default 0).
    vertex_attributes : (n, k) array_like of float, optional
        Extra per-vertex attributes (default none, ``k = 0``).

    Notes
    -----
    After construction every array is C-contiguous, coordinates float64,
    indices and markers int64, and every segment index is in range.
    """

    vertices: np.ndarray
    segments: np.ndarray = None
    holes: np.ndarray = None
    regions: np.ndarray = None
    vertex_markers: np.ndarray = None
    segment_markers: np.ndarray = None
    vertex_attributes: np.ndarray = None

    def __post_init__(self):
        s = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        s("vertices", _float_array("vertices", self.vertices, 2, "Poly"))
        n = len(self.vertices)
        seg = np.zeros((0, 2), np.int64) if self.segments is None else self.segments
        s("segments", _int_array("segments", seg, (None, 2), "Poly", n_points=n))
        degenerate = self.segments[:, 0] == self.segments[:, 1]
        if degenerate.any():
            row = int(np.flatnonzero(degenerate)[0])
            raise ValueError(f"Poly.segments row {row} joins vertex {self.segments[row, 0]} to itself")
        s("holes", _float_array("holes", np.zeros((0, 2)) if self.holes is None else self.holes, 2, "Poly"))
        s("regions", _float_array("regions", np.zeros((0, 4)) if self.regions is None else self.regions, 4, "Poly"))
        s("vertex_markers", _markers("vertex_markers", self.vertex_markers, n, "Poly"))
        s("segment_markers", _markers("segment_markers", self.segment_markers, len(self.segments), "Poly"))
        attrs = np.zeros((n, 0)) if self.vertex_attributes is None else np.asarray(self.vertex_attributes, float)
        if attrs.ndim == 1:
            attrs = attrs[:, None]
        if attrs.ndim != 2 or attrs.shape[0] != n:
            raise ValueError(f"Poly.vertex_attributes must have shape ({n}, k) (has shape {attrs.shape})")
        s("vertex_attributes", _float_array("vertex_attributes", attrs, attrs.shape[1], "Poly"))

    @property
    def n_vertices(self) -> int:
        """Number of vertices."""
        return len(self.vertices)


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh; every unique edge becomes a rod.

    Parameters
    ----------
    points : (n, 2) array_like of float
        Node coordinates.
    triangles : (t, 3) array_like of int
        0-based node indices of each triangle.
    point_markers : (n,) array_like of int, optional
        Boundary markers of the nodes (Triangle's; default 0).
    segments : (s, 2) array_like of int, optional
        Constrained edges (boundary and interior segments) that Triangle
        reported; :func:`refine` passes them back with the ``p`` switch.
    segment_markers : (s,) array_like of int, optional
        Their markers.

    Notes
    -----
    Points are float64 and finite, connectivity int64, all C-contiguous, and
    every index is in range; a triangle may not repeat a node. Derive new
    meshes with :func:`dataclasses.replace`, not by editing arrays in place.
    """

    points: np.ndarray
    triangles: np.ndarray
    point_markers: np.ndarray = None
    segments: np.ndarray = None
    segment_markers: np.ndarray = None

    def __post_init__(self):
        s = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        s("points", _float_array("points", self.points, 2, "Mesh"))
        n = len(self.points)
        s("triangles", _int_array("triangles", self.triangles, (None, 3), "Mesh", n_points=n))
        t = self.triangles
        repeated = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 0] == t[:, 2])
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise ValueError(f"Mesh.triangles row {row} = {t[row].tolist()} repeats a node")
        s("point_markers", _markers("point_markers", self.point_markers, n, "Mesh"))
        seg = np.zeros((0, 2), np.int64) if self.segments is None else self.segments
        s("segments", _int_array("segments", seg, (None, 2), "Mesh", n_points=n))
        s("segment_markers", _markers("segment_markers", self.segment_markers, len(self.segments), "Mesh"))

    @property
    def n_points(self) -> int:
        """Number of nodes."""
        return len(self.points)

    @property
    def n_triangles(self) -> int:
        """Number of triangles."""
        return len(self.triangles)

    def _edge_keys(self, n):
        """min * n + max for the three edges of every triangle (a unique int64 key per edge)."""
        t = self.triangles
        a = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
        b = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
        return np.minimum(a, b) * n + np.maximum(a, b)

    @cached_property
    def edges(self) -> np.ndarray:
        """(e, 2) int64: the unique undirected edges, each row sorted, rows sorted (read-only)."""
        n = np.int64(max(self.n_points, 1))
        key, _ = _unique_counts(self._edge_keys(n))
        edges = np.column_stack(np.divmod(key, n))
        edges.flags.writeable = False
        return edges

    @property
    def boundary_edges(self) -> np.ndarray:
        """(b, 2) int64: edges that belong to exactly one triangle, each row sorted."""
        n = np.int64(max(self.n_points, 1))
        key, count = _unique_counts(self._edge_keys(n))
        return np.column_stack(np.divmod(key[count == 1], n))

    @property
    def triangle_areas(self) -> np.ndarray:
        """(t,) float64: signed triangle areas (positive for counter-clockwise triangles)."""
        p = self.points
        a = p[self.triangles[:, 1]] - p[self.triangles[:, 0]]
        b = p[self.triangles[:, 2]] - p[self.triangles[:, 0]]
        return 0.5 * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
