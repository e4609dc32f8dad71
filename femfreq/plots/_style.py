"""What every figure shares: colours, the figure factory, saving, result coercion, labels and axes."""

from __future__ import annotations

import logging
import os

import numpy as np

logger = logging.getLogger(__name__)

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


_DPI = 150


def _figure(nrows=1, *, height=3.0, width=8.0, sharex=True, height_ratios=None):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False, height_ratios=height_ratios)[:, 0]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    return fig, axes


def _save(fig, path):
    if path is not None:
        path = os.fspath(path)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=_DPI)
        logger.debug("wrote %s", path)
    return fig


def _as_result(result):
    from ..results import SweepResult, read_results

    if isinstance(result, (str, os.PathLike)):
        return read_results(result)
    if isinstance(result, SweepResult):
        return result
    if isinstance(result, tuple) and len(result) == 2:
        return SweepResult(freqs_hz=result[0], response=result[1])
    if hasattr(result, "freqs_hz") and hasattr(result, "response"):
        return result
    raise TypeError(
        f"expected a SweepResult, a result file path or a (freqs_hz, response) pair (got {type(result).__name__})"
    )


def _units(result):
    attrs = {**getattr(result, "model", {}), **getattr(result, "attrs", {})}
    return str(attrs.get("length_unit", "length")), str(attrs.get("force_unit", "force"))


def _title(result, what):
    attrs = getattr(result, "attrs", {}) or {}
    name = attrs.get("model_name")
    level = (getattr(result, "model", {}) or {}).get("source_level", attrs.get("level"))
    head = f"{name} (level {level})" if name and level is not None else (str(name) if name else "")
    return f"{head}: {what}" if head else what[:1].upper() + what[1:]


def _labels(result, n_out):
    labels = getattr(result, "labels", None)
    if labels is not None and len(labels) == n_out:
        return list(labels)
    return [f"output {j}" for j in range(n_out)]


def _pick(values, max_lines):
    """Indices of the (at most max_lines) columns with the largest peak |value|, largest first."""
    peak = np.nanmax(np.abs(values), axis=0) if values.size else np.zeros(values.shape[1])
    peak = np.where(np.isfinite(peak), peak, -np.inf)
    return np.argsort(-peak, kind="stable")[:max_lines]


def _auto_t_max(t, *series, rel=1e-2):
    """The end of the interesting part: the last time any series exceeds rel * its peak, plus 20%."""
    last = t[0]
    for y in series:
        y = np.abs(np.asarray(y, float).reshape(t.size, -1)).max(axis=1)
        peak = y.max() if y.size else 0.0
        if peak > 0:
            last = max(last, t[np.flatnonzero(y > rel * peak)[-1]])
    span = t[-1] - t[0]
    return float(min(t[-1], max(last + 0.2 * (last - t[0]), t[0] + 0.1 * span)))


def _nodes(count):
    return f"{count:,} node" + ("" if count == 1 else "s")


def _note_partial(ax, result):
    done = np.asarray(getattr(result, "done", np.ones(len(result.freqs_hz), bool)), dtype=bool)
    if not done.all():
        ax.text(0.99, 0.97, f"partial: {done.sum()} of {done.size} frequencies done", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="#b22222",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#b22222", alpha=0.85))


def _log_frequency_axis(ax):
    """Plain numbers (20, 50, 100, 200 ...) on a log frequency axis instead of 2 x 10^1."""
    from matplotlib.ticker import FuncFormatter

    def label(value, _pos, minor=False):
        if value <= 0:
            return ""
        lead = value / 10.0 ** np.floor(np.log10(value) + 1e-9)
        return f"{value:g}" if not minor or round(lead) in (2, 5) else ""

    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: label(v, p, minor=True)))


def _pretty(unit):
    """``"length/s^2"`` -> ``"length/s²"`` for labels."""
    return unit.replace("^2", "²").replace("^3", "³")


def _density(unit):
    """The unit of a spectral density of a quantity in ``unit``: ``g²/Hz``, ``(length/s²)²/Hz``."""
    simple = unit.replace("_", "").isalnum()
    return _pretty(f"{unit}^2/Hz" if simple else f"({unit})^2/Hz")
