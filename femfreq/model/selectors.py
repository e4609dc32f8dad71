"""Geometric selections of nodes and what is built from them: fixed DOF, the load vector, output DOF.

Node ``i`` has the full DOF ``2 i`` (x) and ``2 i + 1`` (y).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v

__all__ = ["select_nodes", "fixed_dofs_from", "load_vector", "output_dofs_from"]

_DIRECTIONS = {"x": (0,), "y": (1,), "xy": (0, 1)}


def _spec_numbers(spec, key, shape):
    """``spec[key]`` as a finite float array of the given shape, or a ValueError quoting the spec."""
    try:
        arr = np.asarray(spec[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"selection {spec!r}: {key!r} must be numbers of shape {shape}") from None
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"selection {spec!r}: {key!r} must be finite numbers of shape {shape}")
    return arr


_SELECTORS = {"box": set(), "line": {"tol"}, "near": {"tol"}, "circle": {"radius"}}


def select_nodes(points, spec, *, edges=None) -> np.ndarray:
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
        - ``{"near": [x, y], "tol": t}``: the single node nearest to the point, which
          must lie within ``t`` of it (default ``t``: the longest rod of the model when
          ``edges`` are given, else the size of the model, the diagonal of its bounding box);
        - ``{"circle": [x, y], "radius": r}``: nodes within ``r`` of the point.
    edges : (m, 2) int array, optional
        The rods; they set the default ``tol`` of a ``near`` selection. Any point on a
        triangulated structure is within its longest rod of a node (the farthest a point
        of a triangle can be from the nearest corner is its longest side), so a point
        farther than that from every node is off the structure.

    Returns
    -------
    (k,) int64 array
        Sorted 0-based node ids, ``k >= 1``.

    Raises
    ------
    ValueError
        If the spec is malformed or selects no node, or a ``near`` point is farther
        than its ``tol`` from every node (quoting the spec and the distance).

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
    mask = _mask(kind, spec, points, edges)
    nodes = np.flatnonzero(mask).astype(np.int64)
    if nodes.size == 0:
        lo, hi = points.min(axis=0), points.max(axis=0)
        raise ValueError(
            f"selection {spec!r} selects no node (the nodes span x {lo[0]:g}..{hi[0]:g}, y {lo[1]:g}..{hi[1]:g})"
        )
    return nodes


def _mask(kind, spec, points, edges):
    """(n,) bool: the nodes a selection of ``kind`` takes (see :func:`select_nodes`)."""
    x, y = points[:, 0], points[:, 1]
    if kind == "box":
        xmin, ymin, xmax, ymax = _spec_numbers(spec, "box", (4,))
        if xmin > xmax or ymin > ymax:
            raise ValueError(f"selection {spec!r}: box must be [xmin, ymin, xmax, ymax] with min <= max")
        mask = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    elif kind == "line":
        (x0, y0), (x1, y1) = _spec_numbers(spec, "line", (2, 2))
        scale = max(float(np.abs(points).max()), 1.0)
        tol = _spec_scalar(spec, "tol", 1e-9 * scale)
        dx, dy = x1 - x0, y1 - y0
        ll = dx * dx + dy * dy
        t = np.zeros_like(x) if ll == 0 else np.clip(((x - x0) * dx + (y - y0) * dy) / ll, 0.0, 1.0)
        mask = np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= tol
    elif kind == "near":
        px, py = _spec_numbers(spec, "near", (2,))
        nearest = int(np.argmin((x - px) ** 2 + (y - py) ** 2))
        _check_near(spec, points, edges, nearest)
        mask = np.zeros(points.shape[0], dtype=bool)
        mask[nearest] = True
    else:
        cx, cy = _spec_numbers(spec, "circle", (2,))
        if "radius" not in spec:
            raise ValueError(f"selection {spec!r}: a circle needs a 'radius'")
        r = _spec_scalar(spec, "radius", None)
        mask = np.hypot(x - cx, y - cy) <= r
    return mask


def _check_near(spec, points, edges, nearest):
    """ValueError if the ``near`` point of ``spec`` is farther than its tolerance from ``nearest``."""
    distance = float(np.hypot(*(points[nearest] - np.asarray(spec["near"], dtype=np.float64))))
    if "tol" in spec:
        tol, rule = _spec_scalar(spec, "tol", None), "its 'tol'"
    elif edges is not None and np.size(edges):
        edges = np.asarray(edges).reshape(-1, 2)
        if not np.issubdtype(edges.dtype, np.integer) or edges.min() < 0 or edges.max() >= points.shape[0]:
            raise ValueError(f"edges must be node ids in 0..{points.shape[0] - 1}")
        ends = points[edges]
        tol, rule = float(np.hypot(*(ends[:, 1] - ends[:, 0]).T).max()), "the longest rod, the default 'tol'"
    else:
        lo, hi = points.min(axis=0), points.max(axis=0)
        tol, rule = float(np.hypot(*(hi - lo))), "the size of the model, the default 'tol'"
    if distance > tol:
        x, y = points[nearest]
        raise ValueError(
            f"selection {spec!r}: the nearest node, {nearest} at ({x:g}, {y:g}), is {distance:.4g} away, "
            f"farther than {tol:.4g} ({rule}); the point is off the structure (give 'tol' to accept it)"
        )


def _spec_scalar(spec, key, default):
    """A finite scalar >= 0 from a selection spec (``default`` if the key is absent)."""
    if key not in spec:
        return default
    return v.as_float(f"selection {spec!r}: {key!r}", spec[key], nonneg=True)


def _directions(value, what):
    """Component offsets (0 = x, 1 = y) for "x", "y" or "xy"."""
    if value not in _DIRECTIONS:
        raise ValueError(f"{what} must be 'x', 'y' or 'xy' (got {value!r})")
    return np.array(_DIRECTIONS[value], dtype=np.int64)


def fixed_dofs_from(points, constraints, *, edges=None) -> np.ndarray:
    """Full DOF fixed by a list of constraints.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    constraints : list of dict
        Each ``{"select": <selection>, "fix": "x" | "y" | "xy"}`` (see :func:`select_nodes`).
    edges : (m, 2) int array, optional
        The rods (the default ``tol`` of ``near``; see :func:`select_nodes`).

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
        nodes = select_nodes(points, c["select"], edges=edges)
        dofs.append((2 * nodes[:, None] + comps[None, :]).ravel())
    return np.unique(np.concatenate(dofs))


def load_vector(points, select, direction=(0.0, -1.0), magnitude=1.0, *, edges=None) -> np.ndarray:
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
    edges : (m, 2) int array, optional
        The rods (the default ``tol`` of ``near``; see :func:`select_nodes`).

    Returns
    -------
    b_full : (2 n,) float64
    """
    points = np.asarray(points, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != (2,) or not np.all(np.isfinite(d)) or not np.any(d != 0):
        raise ValueError(f"load direction must be two finite numbers, not both zero (got {direction!r})")
    magnitude = v.as_float("load magnitude", magnitude)
    nodes = select_nodes(points, select, edges=edges)
    b = np.zeros(2 * points.shape[0])
    b[2 * nodes] = magnitude * d[0] / np.hypot(*d)
    b[2 * nodes + 1] = magnitude * d[1] / np.hypot(*d)
    return b


def output_dofs_from(points, select, directions="xy", *, edges=None) -> np.ndarray:
    """Full output DOF: the given components of the selected nodes, node by node.

    Parameters
    ----------
    points : (n, 2) array
        Node coordinates.
    select : dict
        Selection (see :func:`select_nodes`).
    directions : {"x", "y", "xy"}
        Components kept.
    edges : (m, 2) int array, optional
        The rods (the default ``tol`` of ``near``; see :func:`select_nodes`).

    Returns
    -------
    (k,) int64 array
        Full DOF indices ordered by node, then x before y.
    """
    comps = _directions(directions, "output 'directions'")
    nodes = select_nodes(points, select, edges=edges)
    return (2 * nodes[:, None] + comps[None, :]).ravel()


def _lost_load(points, edges, fixed, b):
    """Why no part of the full load ``b`` reaches a free DOF (a message), or None if some does.

    ``fixed`` are the fixed full DOF; a node in no rod counts as fixed (the Model fixes it).
    """
    loaded = np.flatnonzero(b)
    if loaded.size == 0:
        return "the load vector is zero; the response would be zero"
    free = np.ones(b.size, dtype=bool)
    free[fixed] = False
    connected = np.zeros(points.shape[0], dtype=bool)
    connected[np.asarray(edges).ravel()] = True
    free[2 * np.flatnonzero(~connected)] = False
    free[2 * np.flatnonzero(~connected) + 1] = False
    if free[loaded].any():
        return None
    nodes = np.unique(loaded // 2)
    node = int(nodes[0])
    x, y = points[node]
    where = f"node {node} ({x:g}, {y:g})" if nodes.size == 1 else f"{nodes.size} nodes (first: node {node} at ({x:g}, {y:g}))"
    if not connected[node]:
        why = f"node {node} belongs to no rod"
    else:
        comps = " and ".join("xy"[d % 2] for d in loaded[loaded // 2 == node])
        why = f"its {comps} DOF {'are' if ' ' in comps else 'is'} fixed"
    return f"the load at {where} acts only on fixed DOF ({why}); the response would be zero"
