"""Meshing with the `triangle <https://rufat.be/triangle/>`_ package: switches, meshes, refinement levels."""

from __future__ import annotations

import logging
import re

import numpy as np

from .geometry import Mesh, Poly

__all__ = ["check_switches", "triangulate", "refine", "mesh_levels"]

logger = logging.getLogger(__name__)

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
