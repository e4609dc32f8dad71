"""Geometry and meshes: Triangle ``.poly``/``.node``/``.ele`` files, meshing, export.

The first stage of the pipeline. A planar straight-line graph (:class:`Poly`: an
outline, holes, regions) is read from a Triangle ``.poly`` file, meshed with the
`triangle <https://rufat.be/triangle/>`_ package using Triangle's command-line
switches, optionally refined progressively (:func:`mesh_levels`), and written
back as ``.node``/``.ele`` files or, with meshio, as VTU/XDMF for ParaView.
Every unique triangle edge (:attr:`Mesh.edges`) later becomes a rod.

Example
-------
>>> import numpy as np
>>> from femfreq.mesh import Poly, triangulate
>>> square = Poly(vertices=[[0, 0], [1, 0], [1, 1], [0, 1]],
...               segments=[[0, 1], [1, 2], [2, 3], [3, 0]])
>>> mesh = triangulate(square, "pq30a0.1")
>>> bool(mesh.triangle_areas.max() <= 0.1)
True
>>> n_edges = len(mesh.edges)   # Euler: E = V + T - 1 (no holes)
>>> n_edges == mesh.n_points + mesh.n_triangles - 1
True
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ReadError

__all__ = [
    "ReadError",
    "Poly",
    "Mesh",
    "read_poly",
    "write_poly",
    "read_node",
    "read_ele",
    "read_triangle_mesh",
    "write_triangle_mesh",
    "triangulate",
    "refine",
    "mesh_levels",
    "write_mesh",
    "check_switches",
]

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------- data


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


def _int_array(name, value, shape, owner):
    """Normalise to a C-contiguous int64 array; integral values only."""
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
    return a


def _check_indices(name, index, n, owner):
    """Raise ValueError if any entry of ``index`` is outside ``0..n-1``."""
    if index.size == 0:
        return
    bad = (index < 0) | (index >= n)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(len(index), -1).any(axis=1))[0])
        raise ValueError(
            f"{owner}.{name} row {row} = {index[row].tolist()} refers to a point outside 0..{n - 1}"
        )


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
        s("segments", _int_array("segments", seg, (None, 2), "Poly"))
        _check_indices("segments", self.segments, n, "Poly")
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
        s("triangles", _int_array("triangles", self.triangles, (None, 3), "Mesh"))
        _check_indices("triangles", self.triangles, n, "Mesh")
        t = self.triangles
        repeated = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 0] == t[:, 2])
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise ValueError(f"Mesh.triangles row {row} = {t[row].tolist()} repeats a node")
        s("point_markers", _markers("point_markers", self.point_markers, n, "Mesh"))
        seg = np.zeros((0, 2), np.int64) if self.segments is None else self.segments
        s("segments", _int_array("segments", seg, (None, 2), "Mesh"))
        _check_indices("segments", self.segments, n, "Mesh")
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


# --------------------------------------------------------------------------- reading


def _plural(word):
    """English plural of a record name."""
    return "vertices" if word == "vertex" else word + "s"


class _Lines:
    """The non-blank lines of a Triangle file, comments stripped, with their numbers."""

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        raw = text.splitlines()
        if "#" in text:
            raw = [line.split("#", 1)[0] for line in raw]
        keep = [i for i, line in enumerate(raw) if line and not line.isspace()]
        self.numbers = [i + 1 for i in keep]
        self.text = [raw[i] for i in keep]
        self.n_lines = len(raw)
        self.pos = 0

    def error(self, line, message):
        return ReadError(self.path, line, message)

    @property
    def at_end(self):
        return self.pos >= len(self.text)

    def header(self, what, n_min, n_max):
        """Read one header line of ``n_min..n_max`` non-negative integers."""
        if self.at_end:
            raise self.error(self.n_lines, f"unexpected end of file: expected the {what} line")
        line, tok = self.numbers[self.pos], self.text[self.pos].split()
        self.pos += 1
        if not n_min <= len(tok) <= n_max:
            want = f"{n_min}" if n_min == n_max else f"{n_min} to {n_max}"
            raise self.error(line, f"the {what} line must have {want} fields (has {len(tok)}: {' '.join(tok)!r})")
        values = []
        for t in tok:
            try:
                v = float(t)
            except ValueError:
                raise self.error(line, f"non-numeric field {t!r} in the {what} line") from None
            if not np.isfinite(v) or v != int(v) or v < 0:
                raise self.error(line, f"the {what} line must hold non-negative integers (found {t!r})")
            values.append(int(v))
        self.header_fields = len(values)
        return line, values + [0] * (n_max - len(values))

    def table(self, count, ncols, what, header_line, *, alt_ncols=None):
        """Read ``count`` rows of ``ncols`` numbers (or ``alt_ncols``); return (array, line numbers)."""
        stop = self.pos + count
        if stop > len(self.text):
            found = len(self.text) - self.pos
            raise self.error(
                self.n_lines,
                f"unexpected end of file: the header on line {header_line} says {count} {_plural(what)}, found {found}",
            )
        rows = self.text[self.pos : stop]
        lines = np.asarray(self.numbers[self.pos : stop], dtype=np.int64)
        self.pos = stop
        if count == 0:
            return np.zeros((0, ncols)), lines
        # fast path: numpy's C parser; any problem is diagnosed line by line below
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = np.loadtxt(io.StringIO("\n".join(rows)), dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            values = None
        if values is not None and values.shape[0] == count and values.shape[1] in (ncols, alt_ncols):
            return values, lines
        tokens = [row.split() for row in rows]
        lens = np.fromiter(map(len, tokens), dtype=np.int64, count=count)
        if alt_ncols is not None and np.all(lens == alt_ncols):
            ncols = alt_ncols
        bad = np.flatnonzero(lens != ncols)
        if bad.size:
            k = int(bad[0])
            raise self.error(
                lines[k],
                f"{what} {k + 1} of {count} (header on line {header_line}) must have {ncols} fields, "
                f"has {lens[k]}: {' '.join(tokens[k])!r}",
            )
        values = np.empty((count, ncols))
        for k, row in enumerate(tokens):
            for j, t in enumerate(row):
                try:
                    values[k, j] = float(t) if "_" not in t else float("x")
                except ValueError:
                    raise self.error(lines[k], f"non-numeric field {t!r} in {what} {k + 1}") from None
        return values, lines

    def check_finite(self, values, lines, what):
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise self.error(lines[k], f"{what} {k + 1} has a non-finite value: {values[k].tolist()}")

    def check_integral(self, values, lines, what, column_names):
        bad = ~np.all(values == np.round(values), axis=1) | ~np.isfinite(values).all(axis=1)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise self.error(lines[k], f"{what} {k + 1}: {column_names} must be integers (found {values[k].tolist()})")
        return values.astype(np.int64)

    def check_numbering(self, numbers, lines, what, base=None):
        """Numbers must run base, base+1, ...; base (0 or 1) is taken from the first row if not given."""
        if len(numbers) == 0:
            return 1 if base is None else base
        if base is None:
            base = int(numbers[0])
            if base not in (0, 1):
                raise self.error(lines[0], f"the first {what} is numbered {base}; numbering must start at 0 or 1")
        expected = base + np.arange(len(numbers))
        bad = np.flatnonzero(numbers != expected)
        if bad.size:
            k = int(bad[0])
            raise self.error(
                lines[k], f"{what} numbered {numbers[k]}; expected {expected[k]} (consecutive from {base})"
            )
        return base

    def check_trailing(self):
        if not self.at_end:
            line = self.numbers[self.pos]
            raise self.error(
                line, f"unexpected data after the last section: {' '.join(self.text[self.pos].split())!r} "
                "(do the header counts match the lines that follow?)"
            )


def _check_duplicates(reader, points, lines, what="vertex"):
    """ReadError if two points coincide (they would give zero-length rods)."""
    if len(points) < 2:
        return
    order = np.lexsort((np.arange(len(points)), points[:, 1], points[:, 0]))
    p = points[order]
    same = np.all(p[1:] == p[:-1], axis=1)
    # a point equal to its predecessor in sorted order duplicates the first of its run
    run_start = np.maximum.accumulate(np.where(np.concatenate([[True], ~same]), np.arange(len(p)), 0))
    dup_sorted = np.flatnonzero(np.concatenate([[False], same]))
    dup = np.sort(order[dup_sorted])
    first = np.empty(len(points), np.int64)
    first[order] = order[run_start]
    if dup.size:
        k = int(dup[0])
        j = int(first[k])
        raise reader.error(
            lines[k],
            f"{what} {k + 1} at {points[k].tolist()} duplicates {what} {j + 1} on line {lines[j]} "
            f"({dup.size} duplicate point(s) in all; they would give zero-length rods)",
        )


def _read_vertices(reader, what="vertex"):
    """Read a .node-style header and vertex table -> (xy, attributes, markers, base, header line, n)."""
    hline, (n, dim, n_attr, n_mark) = reader.header(f"{what} header (count, 2, #attributes, #markers)", 1, 4)
    given = reader.header_fields
    if n and given >= 2 and dim != 2:
        raise reader.error(hline, f"dimension must be 2 (found {dim})")
    if n_mark > 1:
        raise reader.error(hline, f"the number of boundary markers must be 0 or 1 (found {n_mark})")
    # a header without the marker count: Triangle assumes markers; accept rows with or without
    values, lines = reader.table(n, 3 + n_attr + n_mark, what, hline, alt_ncols=4 + n_attr if given < 4 else None)
    n_mark = values.shape[1] - 3 - n_attr
    base = reader.check_numbering(reader.check_integral(values[:, :1], lines, what, "the number")[:, 0], lines, what)
    xy = np.ascontiguousarray(values[:, 1:3])
    reader.check_finite(values[:, 1 : 3 + n_attr], lines, what)
    markers = np.zeros(n, np.int64)
    if n_mark:
        markers = reader.check_integral(values[:, -1:], lines, what, "the boundary marker")[:, 0]
    _check_duplicates(reader, xy, lines, what)
    return xy, values[:, 3 : 3 + n_attr].copy(), markers, base, hline, n


def read_node(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Read a Triangle ``.node`` file.

    Parameters
    ----------
    path : str or Path
        The file. Numbering may start at 0 or 1 (detected from the first vertex).

    Returns
    -------
    points : (n, 2) float64
    attributes : (n, k) float64
        ``k`` is the header's attribute count (often 0).
    markers : (n,) int64
        Boundary markers (zeros if the file has none).
    base : int
        0 or 1: the numbering the file uses (its ``.ele`` refers to vertices that way).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ReadError
        On a malformed header, wrong counts, non-numeric or non-finite values,
        non-consecutive numbering, duplicate points, or trailing data.
    """
    reader = _Lines(path)
    xy, attrs, markers, base, _, _ = _read_vertices(reader)
    reader.check_trailing()
    return xy, attrs, markers, base


def read_ele(path, n_points=None, *, base=None) -> tuple[np.ndarray, np.ndarray]:
    """Read a Triangle ``.ele`` file of 3-node triangles.

    Parameters
    ----------
    path : str or Path
        The file.
    n_points : int, optional
        Number of points in the matching ``.node``; vertex indices are checked against it.
    base : {0, 1}, optional
        The numbering of the vertex references (the ``.node`` file's). Default: the
        numbering of the first triangle.

    Returns
    -------
    triangles : (t, 3) int64
        0-based vertex indices.
    attributes : (t, k) float64
        Regional attributes of the triangles (``k`` = 0 if none).

    Raises
    ------
    ReadError
        On a malformed header, 6-node triangles, wrong counts, non-numeric
        values, non-consecutive numbering, out-of-range or repeated vertices.
    """
    reader = _Lines(path)
    hline, (n, per, n_attr) = reader.header("triangle header (count, nodes per triangle, #attributes)", 2, 3)
    if per != 3:
        raise reader.error(hline, f"only 3-node triangles are supported (header says {per} nodes per triangle)")
    values, lines = reader.table(n, 4 + n_attr, "triangle", hline)
    ints = reader.check_integral(values[:, :4], lines, "triangle", "the number and vertex indices")
    own_base = reader.check_numbering(ints[:, 0], lines, "triangle")
    base = own_base if base is None else base
    tri = ints[:, 1:4] - base
    upper = np.iinfo(np.int64).max if n_points is None else n_points
    bad = np.flatnonzero(((tri < 0) | (tri >= upper)).any(axis=1))
    if bad.size:
        k = int(bad[0])
        limit = f"{base}..{base + n_points - 1}" if n_points is not None else f">= {base}"
        raise reader.error(lines[k], f"triangle {k + 1} refers to vertices {ints[k, 1:].tolist()} outside {limit}")
    rep = np.flatnonzero((tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2]) | (tri[:, 0] == tri[:, 2]))
    if rep.size:
        k = int(rep[0])
        raise reader.error(lines[k], f"triangle {k + 1} repeats a vertex: {ints[k, 1:].tolist()}")
    reader.check_trailing()
    return np.ascontiguousarray(tri), values[:, 4:].copy()


def read_triangle_mesh(node_path, ele_path=None) -> Mesh:
    """Read a ``.node``/``.ele`` pair into a :class:`Mesh`.

    Parameters
    ----------
    node_path : str or Path
        The ``.node`` file (or its basename without extension).
    ele_path : str or Path, optional
        The ``.ele`` file; default: ``node_path`` with the suffix ``.ele``.

    Returns
    -------
    Mesh

    Raises
    ------
    FileNotFoundError, ReadError
        See :func:`read_node` and :func:`read_ele`.
    """
    node_path = Path(node_path)
    if node_path.suffix != ".node":
        node_path = node_path.with_name(node_path.name + ".node")
    ele_path = node_path.with_suffix(".ele") if ele_path is None else Path(ele_path)
    points, _, markers, base = read_node(node_path)
    triangles, _ = read_ele(ele_path, len(points), base=base)
    unused = int(np.count_nonzero(np.bincount(triangles.ravel(), minlength=len(points)) == 0))
    if unused:
        logger.warning("%s: %d of %d points belong to no triangle", node_path, unused, len(points))
    return Mesh(points, triangles, markers)


def read_poly(path) -> Poly:
    """Read a Triangle ``.poly`` file.

    Parameters
    ----------
    path : str or Path
        The file: vertices (optional attributes and boundary markers), segments
        (optional markers), holes, and optionally regional attributes and area
        constraints; ``#`` comments and blank lines anywhere. Numbering may start
        at 0 or 1 (from the first vertex). A vertex count of 0 means the vertices
        are in the ``.node`` file of the same basename.

    Returns
    -------
    Poly
        With 0-based segment indices.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ReadError
        ``"path:line: ..."`` on wrong counts, truncated files, non-numeric or
        non-finite values, indices out of range, duplicate vertices, or a
        missing sibling ``.node`` file.
    """
    path = Path(path)
    reader = _Lines(path)
    xy, attrs, markers, base, hline, n = _read_vertices(reader)
    if n == 0:
        node_path = path.with_suffix(".node")
        if not node_path.exists():
            raise reader.error(hline, f"the .poly lists 0 vertices, so they must come from {node_path}, which does not exist")
        xy, attrs, markers, base = read_node(node_path)
        n = len(xy)
    sline, (m, s_mark) = reader.header("segment header (count, #markers)", 1, 2)
    if s_mark > 1:
        raise reader.error(sline, f"the number of segment markers must be 0 or 1 (found {s_mark})")
    alt = 4 if reader.header_fields < 2 else None
    values, lines = reader.table(m, 3 + s_mark, "segment", sline, alt_ncols=alt)
    s_mark = values.shape[1] - 3
    ints = reader.check_integral(values, lines, "segment", "the number, endpoints and marker")
    reader.check_numbering(ints[:, 0], lines, "segment")
    seg = ints[:, 1:3] - base
    bad = np.flatnonzero(((seg < 0) | (seg >= n)).any(axis=1))
    if bad.size:
        k = int(bad[0])
        raise reader.error(
            lines[k], f"segment {k + 1} refers to vertices {ints[k, 1:3].tolist()} outside {base}..{base + n - 1}"
        )
    loop = np.flatnonzero(seg[:, 0] == seg[:, 1])
    if loop.size:
        k = int(loop[0])
        raise reader.error(lines[k], f"segment {k + 1} joins vertex {ints[k, 1]} to itself")
    seg_markers = ints[:, 3] if s_mark else np.zeros(m, np.int64)
    hline_h, (h,) = reader.header("hole header (count)", 1, 1)
    hv, hl = reader.table(h, 3, "hole", hline_h)
    reader.check_finite(hv, hl, "hole")
    regions = np.zeros((0, 4))
    if not reader.at_end:
        rline, (r,) = reader.header("region header (count)", 1, 1)
        rv, rl = reader.table(r, 5, "region", rline, alt_ncols=4)
        reader.check_finite(rv, rl, "region")
        regions = rv[:, 1:] if rv.shape[1] == 5 else np.column_stack([rv[:, 1:], -np.ones(r)])
    reader.check_trailing()
    return Poly(
        vertices=xy, segments=seg, holes=hv[:, 1:], regions=regions, vertex_markers=markers,
        segment_markers=seg_markers, vertex_attributes=attrs,
    )


# --------------------------------------------------------------------------- writing


def _fmt_rows(first, *columns, int_cols=()):
    """Lines 'index c1 c2 ...' with floats in repr precision."""
    cols = [np.asarray(c) for c in columns]
    out = []
    for i in range(len(first)):
        parts = [str(int(first[i]))]
        for j, c in enumerate(cols):
            row = c[i] if c.ndim > 1 else [c[i]]
            parts.extend(str(int(v)) if j in int_cols else repr(float(v)) for v in row)
        out.append(" ".join(parts))
    return out


def write_poly(path, poly: Poly) -> None:
    """Write a :class:`Poly` as a Triangle ``.poly`` file (1-based, with markers).

    Parameters
    ----------
    path : str or Path
    poly : Poly
    """
    n, m = poly.n_vertices, len(poly.segments)
    k = poly.vertex_attributes.shape[1]
    lines = ["# vertices: count, dimension, #attributes, #markers", f"{n} 2 {k} 1"]
    lines += _fmt_rows(np.arange(1, n + 1), poly.vertices, poly.vertex_attributes, poly.vertex_markers, int_cols=(2,))
    lines += ["# segments: count, #markers", f"{m} 1"]
    lines += _fmt_rows(np.arange(1, m + 1), poly.segments + 1, poly.segment_markers, int_cols=(0, 1))
    lines += ["# holes", f"{len(poly.holes)}"]
    lines += _fmt_rows(np.arange(1, len(poly.holes) + 1), poly.holes)
    if len(poly.regions):
        lines += ["# regions: x, y, attribute, max area", f"{len(poly.regions)}"]
        lines += _fmt_rows(np.arange(1, len(poly.regions) + 1), poly.regions)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_rows(fh, fmt, rows):
    """Write one formatted line per row (``rows`` a list of tuples or lists)."""
    fh.write("\n".join(map(fmt.__mod__, map(tuple, rows))))
    if rows:
        fh.write("\n")


def write_triangle_mesh(basename, mesh: Mesh) -> tuple[Path, Path]:
    """Write ``basename.node`` and ``basename.ele`` (1-based, with node markers).

    Parameters
    ----------
    basename : str or Path
        Output path without extension (a ``.node`` or ``.ele`` suffix is stripped).
    mesh : Mesh

    Returns
    -------
    node_path, ele_path : Path
    """
    base = Path(basename)
    if base.suffix in (".node", ".ele"):
        base = base.with_suffix("")
    node_path, ele_path = base.with_name(base.name + ".node"), base.with_name(base.name + ".ele")
    n, t = mesh.n_points, mesh.n_triangles
    idx = np.arange(1, n + 1).tolist()
    x, y = mesh.points[:, 0].tolist(), mesh.points[:, 1].tolist()
    with open(node_path, "w", encoding="utf-8") as fh:
        fh.write(f"{n} 2 0 1\n")
        _write_rows(fh, "%d %r %r %d", list(zip(idx, x, y, mesh.point_markers.tolist())))
    tri = np.column_stack([np.arange(1, t + 1), mesh.triangles + 1]).tolist()
    with open(ele_path, "w", encoding="utf-8") as fh:
        fh.write(f"{t} 3 0\n")
        _write_rows(fh, "%d %d %d %d", tri)
    return node_path, ele_path


# --------------------------------------------------------------------------- meshing

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ALLOWED = set("prqaAcDjYSiFlsCXzQenIOBP")
_REJECTED = {
    "o": "second-order (6-node) triangles are not supported: rods need 3-node triangles",
    "N": "it suppresses the nodes that femfreq needs",
    "E": "it suppresses the triangles that femfreq needs",
    "v": "Voronoi output is not supported",
    "g": "it writes .off files",
    "V": "verbose output goes to stdout; use logging instead",
    "h": "it prints Triangle's help",
    "u": "it needs a compiled triunsuitable() function",
}
_MAX_ANGLE = 35.0


def check_switches(switches: str, *, refining: bool = False) -> str:
    """Validate Triangle switches and return them without spaces or dashes.

    Parameters
    ----------
    switches : str
        Triangle command-line switches such as ``"pq30a0.1"`` (a leading ``-`` is allowed).
    refining : bool, optional
        True for :func:`refine` (``r`` allowed), False for :func:`triangulate`.

    Returns
    -------
    str

    Raises
    ------
    TypeError
        If ``switches`` is not a string.
    ValueError
        On unknown or unsupported switches, ``r`` outside refinement, a minimum
        angle above 35 degrees (Triangle may never terminate), or a
        non-positive area.
    """
    if not isinstance(switches, str):
        raise TypeError(f"Triangle switches must be a string (got {type(switches).__name__})")
    s = switches.strip().lstrip("-").replace(" ", "")
    i = 0
    while i < len(s):
        c = s[i]
        i += 1
        if c in _REJECTED:
            raise ValueError(f"Triangle switch {c!r} in {switches!r} is not supported: {_REJECTED[c]}")
        if c not in _ALLOWED:
            raise ValueError(
                f"unknown Triangle switch {c!r} in {switches!r}; "
                f"supported: {''.join(sorted(_ALLOWED))} (q, a, S take numbers)"
            )
        if c == "r" and not refining:
            raise ValueError(f"switch 'r' in {switches!r}: use refine(mesh, switches) to refine a mesh")
        if c in "qaS":
            match = _NUMBER.match(s, i)
            if match is None and i < len(s) and s[i] in "-+":
                raise ValueError(f"switch {c!r} in {switches!r} needs a positive number (found {s[i:]!r})")
            if match:
                value = float(match.group())
                i = match.end()
                if c == "q" and value > _MAX_ANGLE:
                    raise ValueError(
                        f"minimum angle q{match.group()} in {switches!r} is too large: Triangle may never "
                        f"terminate above about 34 degrees (use q34 or less)"
                    )
                if c == "a" and value <= 0:
                    raise ValueError(f"maximum area a{match.group()} in {switches!r} must be positive")
                if c == "S" and value != int(value):
                    raise ValueError(f"Steiner point count S{match.group()} in {switches!r} must be an integer")
    return s


def _run_triangle(data, switches, what):
    """Call triangle.triangulate and turn its output into a Mesh."""
    import triangle

    try:
        out = triangle.triangulate(data, switches)
    except (RuntimeError, IndexError, ValueError) as exc:
        raise ValueError(f"Triangle failed to {what} with switches {switches!r}: {exc}") from exc
    tri = out.get("triangles")
    if tri is None or len(tri) == 0:
        raise ValueError(
            f"Triangle produced no triangles when asked to {what} with switches {switches!r} "
            "(are the segments closed around each hole point, and is every hole point inside a hole?)"
        )
    return Mesh(
        points=out["vertices"],
        triangles=tri,
        point_markers=out.get("vertex_markers"),
        segments=out.get("segments"),
        segment_markers=out.get("segment_markers"),
    )


def triangulate(poly: Poly, switches: str = "pq30") -> Mesh:
    """Mesh a planar straight-line graph with Triangle.

    Parameters
    ----------
    poly : Poly
        Vertices, segments, holes and regions.
    switches : str, optional
        Triangle switches, e.g. ``"pq30a0.1"``: ``p`` meshes the PSLG (without it
        Triangle triangulates the convex hull of the vertices and ignores
        segments), ``q<angle>`` a minimum angle, ``a<area>`` a maximum triangle
        area (``a`` alone: the regions' area constraints), ``A`` regional attributes.
        ``j`` is always added: vertices that end in no triangle (for example inside
        a hole) are dropped, since they would be nodes without rods.

    Returns
    -------
    Mesh
        With Triangle's point markers and the output segments.

    Raises
    ------
    ValueError
        On invalid switches (see :func:`check_switches`), when Triangle fails, or
        when the result has no triangles.
    """
    s = check_switches(switches)
    if "j" not in s:
        s += "j"
    data = {"vertices": poly.vertices, "vertex_markers": poly.vertex_markers[:, None].astype(np.int32)}
    if poly.vertex_attributes.shape[1]:
        data["vertex_attributes"] = poly.vertex_attributes
    if len(poly.segments):
        data["segments"] = poly.segments.astype(np.int32)
        data["segment_markers"] = poly.segment_markers[:, None].astype(np.int32)
    if len(poly.holes):
        data["holes"] = poly.holes
    if len(poly.regions):
        data["regions"] = poly.regions
    mesh = _run_triangle(data, s, "mesh the geometry")
    logger.info("triangulate %r: %d nodes, %d triangles", s, mesh.n_points, mesh.n_triangles)
    return mesh


def refine(mesh: Mesh, switches: str) -> Mesh:
    """Refine a mesh with Triangle (the ``r`` switch is added if missing).

    Parameters
    ----------
    mesh : Mesh
        The mesh to refine.
    switches : str
        Triangle switches such as ``"rpq34a0.2"`` or ``"a0.05"``. With ``p`` the
        mesh's segments (or, if it has none, its boundary edges) are kept as
        constrained edges; without ``p`` Triangle keeps the mesh boundary.

    Returns
    -------
    Mesh

    Raises
    ------
    ValueError
        On invalid switches or when Triangle fails.
    """
    s = check_switches(switches, refining=True)
    if "r" not in s:
        s = "r" + s
    data = {
        "vertices": mesh.points,
        "triangles": mesh.triangles.astype(np.int32),
        "vertex_markers": mesh.point_markers[:, None].astype(np.int32),
    }
    if "p" in s:
        if len(mesh.segments):
            seg, markers = mesh.segments, mesh.segment_markers
        else:
            seg = mesh.boundary_edges
            markers = np.ones(len(seg), np.int64)
        data["segments"] = seg.astype(np.int32)
        data["segment_markers"] = markers[:, None].astype(np.int32)
    out = _run_triangle(data, s, f"refine a mesh of {mesh.n_points} nodes")
    logger.info("refine %r: %d -> %d nodes", s, mesh.n_points, out.n_points)
    return out


def mesh_levels(poly: Poly, levels: list[str], level: int) -> Mesh:
    """The mesh at one refinement level: progressive refinement through the switch list.

    Level ``k`` is ``triangulate(poly, levels[0])`` refined in turn with
    ``levels[1], ..., levels[k-1]``.

    Parameters
    ----------
    poly : Poly
    levels : list of str
        Triangle switches per level, e.g. ``["pa0.8", "rpq34a0.2", "a0.1"]``.
    level : int
        1-based level, ``1 <= level <= len(levels)``.

    Returns
    -------
    Mesh

    Raises
    ------
    TypeError
        If ``level`` is not an integer or ``levels`` not a list of strings.
    ValueError
        If ``level`` is out of range or a switch string is invalid.
    """
    if isinstance(levels, str) or not all(isinstance(x, str) for x in levels):
        raise TypeError(f"levels must be a list of Triangle switch strings (got {levels!r})")
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"level must be an integer (got {level!r})")
    if not 1 <= level <= len(levels):
        raise ValueError(f"level {level} is out of range: pick 1..{len(levels)}")
    for k, sw in enumerate(levels):  # validate all before meshing anything
        check_switches(sw, refining=k > 0)
    mesh = triangulate(poly, levels[0])
    for sw in levels[1:level]:
        mesh = refine(mesh, sw)
    return mesh


# --------------------------------------------------------------------------- export


def write_mesh(path, mesh: Mesh, point_data: dict | None = None, *, file_format: str | None = None) -> Path:
    """Write a mesh and nodal fields with meshio (VTU, XDMF, ... by the file suffix).

    Parameters
    ----------
    path : str or Path
        Output file; ``.vtu`` and ``.xdmf`` open in ParaView.
    mesh : Mesh
    point_data : dict of str to array, optional
        Nodal fields, each ``(n,)`` (scalar) or ``(n, 2)`` (in-plane vector; padded
        with a zero z component so ParaView shows it as a vector). Complex fields
        are rejected: pass ``np.abs(x)`` or the real part. The point markers are
        always written as ``"point_markers"``.
    file_format : str, optional
        meshio format name, if the suffix does not say it.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If a field has the wrong shape.
    TypeError
        If a field is complex or not numeric.
    """
    import meshio

    n = mesh.n_points
    points = np.column_stack([mesh.points, np.zeros(n)])
    data = {"point_markers": mesh.point_markers.astype(np.int32)}
    for name, value in (point_data or {}).items():
        a = np.asarray(value)
        if np.iscomplexobj(a):
            raise TypeError(f"point_data[{name!r}] is complex; write np.abs(...) or .real instead")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"point_data[{name!r}] must be numeric (has dtype {a.dtype})")
        if a.shape == (n,):
            data[name] = a.astype(np.float64) if a.dtype.kind == "f" else a
        elif a.shape == (n, 2):
            data[name] = np.column_stack([a, np.zeros(n)]).astype(np.float64)
        else:
            raise ValueError(f"point_data[{name!r}] must have shape ({n},) or ({n}, 2) (has shape {a.shape})")
    path = Path(path)
    m = meshio.Mesh(points, [("triangle", mesh.triangles)], point_data=data)
    m.write(path, file_format=file_format)
    return path
