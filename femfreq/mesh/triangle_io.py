"""Triangle's file formats: read and write ``.poly``, ``.node`` and ``.ele`` files.

Readers go through one line reader that strips ``#`` comments and blank lines and
raises :class:`femfreq.errors.ReadError` naming the file and the line at fault.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import ReadError
from .geometry import Mesh, Poly

__all__ = ["read_poly", "write_poly", "read_node", "read_ele", "read_triangle_mesh", "write_triangle_mesh"]

logger = logging.getLogger(__name__)


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
