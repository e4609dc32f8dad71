"""The model's mesh: rods, fixed, loaded and output nodes."""

from __future__ import annotations

import logging

import numpy as np

from ._style import _figure, _save, _nodes

__all__ = ['plot_mesh', 'plot_model']

logger = logging.getLogger(__name__)


def plot_mesh(points, edges, path=None, *, fixed_nodes=None, load_nodes=None, output_nodes=None,
              load_direction=None, title=None, length_unit="length"):
    """The rods of a model with the fixed, loaded and output nodes marked.

    Parameters
    ----------
    points : (n, 2) array_like
        Node coordinates.
    edges : (e, 2) int array_like
        Rods as pairs of 0-based node indices.
    path : str or path-like, optional
    fixed_nodes, load_nodes, output_nodes : int array_like, optional
        Node indices to mark (triangles, a star/arrow, circles).
    load_direction : (2,) array_like, optional
        Draw the load as an arrow in this direction.
    title : str, optional
    length_unit : str

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Bad shapes or node indices out of range.
    """
    from matplotlib.collections import LineCollection

    points, edges, sets = _mesh_inputs(points, edges, fixed_nodes=fixed_nodes, load_nodes=load_nodes,
                                       output_nodes=output_nodes)
    n = points.shape[0]
    lo, hi = points.min(axis=0), points.max(axis=0)
    arrows = _load_arrows(points, sets.get("load_nodes"), load_direction, np.maximum(hi - lo, 1e-12).max())
    if arrows.size:
        lo = np.minimum(lo, arrows[:, 1].min(axis=0))
        hi = np.maximum(hi, arrows[:, 1].max(axis=0))
    pad = 0.04 * (hi - lo).max()
    lo, hi = lo - pad, hi + pad
    width = 9.0
    # the axes keep the data's aspect; the rest is room for title, labels and the legend
    height = float(np.clip((width - 1.0) * (hi[1] - lo[1]) / (hi[0] - lo[0]) + 1.6, 2.6, 10.0))
    fig, (ax,) = _figure(1, width=width, height=height)
    big = edges.shape[0] > 20000
    lw = 0.6 if edges.shape[0] < 3000 else (0.3 if not big else 0.12)
    lines = LineCollection(points[edges], colors="#5a6b7b", linewidths=lw, rasterized=big, zorder=1)
    ax.add_collection(lines)
    _mark_nodes(ax, points, sets, arrows)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel(f"x  [{length_unit}]")
    ax.set_ylabel(f"y  [{length_unit}]")
    ax.set_title(title or f"Mesh: {n:,} nodes, {edges.shape[0]:,} rods")
    if sets:
        fig.legend(loc="outside lower center", ncols=len(sets), fontsize=8, frameon=False)
    return _save(fig, path)


def _mesh_inputs(points, edges, **node_sets):
    """Checked ``points (n, 2)``, ``edges (e, 2)`` and the given node sets (unique, in range)."""
    points = np.asarray(points, dtype=float)
    edges = np.asarray(edges, dtype=np.int64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"points must have shape (n, 2) (has {points.shape})")
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"edges must have shape (e, 2) (has {edges.shape})")
    n = points.shape[0]
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        bad = int(edges.max() if edges.max() >= n else edges.min())
        raise ValueError(f"edges refer to node {bad}; nodes are 0..{n - 1}")
    sets = {}
    for name, nodes in node_sets.items():
        if nodes is None:
            continue
        nodes = np.unique(np.asarray(nodes, dtype=np.int64).ravel())
        if nodes.size and (nodes.min() < 0 or nodes.max() >= n):
            bad = nodes[(nodes < 0) | (nodes >= n)][0]
            raise ValueError(f"{name} has node {int(bad)}; nodes are 0..{n - 1}")
        sets[name] = nodes
    return points, edges, sets


def _load_arrows(points, load_nodes, load_direction, span):
    """(k, 2, 2) tail/tip of a load arrow at each loaded node (none without a direction)."""
    if load_nodes is None or load_direction is None:
        return np.zeros((0, 2, 2))
    d = np.asarray(load_direction, dtype=float).ravel()
    if d.shape != (2,) or not np.linalg.norm(d) > 0:
        return np.zeros((0, 2, 2))
    d = d / np.linalg.norm(d) * 0.12 * span
    tails = points[load_nodes]
    return np.stack([tails, tails + d], axis=1)


def _mark_nodes(ax, points, sets, arrows):
    """The fixed (triangles), output (circles) and loaded (stars, arrows) nodes."""

    def size(count):  # markers shrink when there are many, so they do not merge into a blob
        return float(np.clip(1500.0 / max(count, 1), 5.0, 30.0))

    if "fixed_nodes" in sets:
        p = points[sets["fixed_nodes"]]
        ax.scatter(p[:, 0], p[:, 1], marker="^", s=size(len(p)), c="black", zorder=3, label=f"fixed ({_nodes(len(p))})")
    if "output_nodes" in sets:
        p = points[sets["output_nodes"]]
        # drawn above the load star, so an output at the load point stays visible
        ax.scatter(p[:, 0], p[:, 1], marker="o", s=size(len(p)), facecolors="none", edgecolors="#1f77b4",
                   linewidths=1.0 if len(p) < 200 else 0.5, zorder=6, label=f"output ({_nodes(len(p))})")
    if "load_nodes" in sets:
        p = points[sets["load_nodes"]]
        ax.scatter(p[:, 0], p[:, 1], marker="*", s=max(4 * size(len(p)), 30.0), c="#d62728", zorder=4,
                   label=f"load ({_nodes(len(p))})")
        for tail, tip in arrows:
            ax.annotate("", xy=tip, xytext=tail, zorder=5, arrowprops=dict(arrowstyle="-|>", color="#d62728", lw=1.8))


def plot_model(model, path=None, *, title=None):
    """:func:`plot_mesh` of a :class:`femfreq.model.Model`: rods, fixed, loaded and output nodes.

    Parameters
    ----------
    model : femfreq.model.Model
    path : str or path-like, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    points = np.asarray(model.points)
    fixed = np.unique(np.asarray(model.fixed_dofs, dtype=np.int64) // 2)
    load_dofs = np.asarray(model.load_dofs, dtype=np.int64)
    load_nodes = np.unique(load_dofs // 2)
    direction = None
    b_full = getattr(model, "b_full", None)
    if b_full is not None and load_nodes.size:
        direction = np.asarray(b_full, dtype=float).reshape(-1, 2)[load_nodes[0]]
    outputs = getattr(model, "output_nodes", None)
    if title is None:
        title = (f"{model.name}: {points.shape[0]:,} nodes, {len(model.edges):,} rods, "
                 f"{model.n_free:,} free DOF")
    return plot_mesh(points, model.edges, path, fixed_nodes=fixed, load_nodes=load_nodes, output_nodes=outputs,
                     load_direction=direction, title=title)


#: The figures :func:`plot_all` knows, in order.
