"""The certificate of a sweep: each frequency's relative residual and method."""

from __future__ import annotations

import logging

import numpy as np

from ..codes import Method
from ._style import _figure, _save, _as_result, _title, _note_partial

__all__ = ['plot_residuals']

logger = logging.getLogger(__name__)


def plot_residuals(result, path=None):
    """Relative residual and backward error of every frequency, by solution method.

    Parameters
    ----------
    result : SweepResult or path
    path : str or path-like, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axis, log scale; a dotted line at the ``tol`` attribute when present.

    Raises
    ------
    ValueError
        If no frequency is done.
    """
    result = _as_result(result)
    freqs = np.asarray(result.freqs_hz, float)
    done = np.asarray(getattr(result, "done", np.ones(freqs.size, bool)), dtype=bool)
    if not done.any():
        raise ValueError("no frequency is done in this result: nothing to plot")
    rel = np.asarray(result.rel_residual, float)
    bwd = np.asarray(result.backward_error, float)
    method = np.asarray(getattr(result, "method", np.full(freqs.size, Method.DIRECT)), dtype=int)
    fig, (ax,) = _figure(1, height=4.4)
    floor = np.finfo(float).tiny
    # skipped rows (Method.SKIPPED) have no residual to show
    for m, c in ((Method.DIRECT, "#1f77b4"), (Method.FAST, "#ff7f0e")):
        sel = done & (method == m)
        if not sel.any():
            continue
        name = m.label
        ax.scatter(freqs[sel], np.maximum(rel[sel], floor), s=9, color=c, marker="o",
                   label=f"relative residual ‖Ax − Pb‖/‖Pb‖ ({name})", zorder=3)
        ax.scatter(freqs[sel], np.maximum(bwd[sel], floor), s=9, color=c, marker="x", alpha=0.6,
                   label=f"backward error ({name})", zorder=2)
    tol = (getattr(result, "attrs", {}) or {}).get("tol")
    if tol is not None and np.isfinite(tol):
        ax.axhline(float(tol), color="#b22222", ls=":", lw=1.2, label=f"tol = {float(tol):g}")
    ax.axhline(np.finfo(float).eps, color="gray", ls="--", lw=0.8, label="machine epsilon")
    ax.set_yscale("log")
    ax.set_xlabel("frequency  [Hz]")
    ax.set_ylabel("residual  [-]")
    ax.set_title(_title(result, "accuracy of every frequency"))
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    _note_partial(ax, result)
    return _save(fig, path)
