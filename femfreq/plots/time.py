"""Time-domain figures: the time response at the outputs and the load history with its spectrum."""

from __future__ import annotations

import logging

import numpy as np

from ._style import _COLORS, _figure, _save, _as_result, _units, _title, _labels, _pick, _auto_t_max, _note_partial

__all__ = ['plot_time', 'plot_load']

logger = logging.getLogger(__name__)


def plot_time(result, path=None, *, max_lines=4, show_load=True, t_max=None):
    """Time response at the output DOF (and the load history above it).

    Parameters
    ----------
    result : SweepResult or path
        Must hold a time response (``result.t``), i.e. a sweep on an FFT grid.
    path : str or path-like, optional
    max_lines : int
        Outputs drawn individually (largest peak displacement); with more outputs,
        the band between the minimum and maximum over all of them is shaded.
    show_load : bool
        Add a panel with the load history ``irfft(P)``.
    t_max : float, optional
        End of the time axis in s; by default where the load and the response have
        decayed below 1% of their peaks (plus 20%); ``numpy.inf`` for the whole window.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the result has no time response.
    """
    result = _as_result(result)
    t = getattr(result, "t", None)
    x = getattr(result, "time_response", None)
    if t is None or x is None:
        raise ValueError("this result has no time response (the frequencies were not an FFT grid of a load history)")
    t, x = np.asarray(t, float), np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    n_out = x.shape[1]
    L, F = _units(result)
    labels = _labels(result, n_out)
    P = getattr(result, "load_spectrum", None)
    load = None
    if show_load and P is not None and len(P) == t.size // 2 + 1:
        from ..spectra import to_time

        load = to_time(np.asarray(P), t.size)
    fig, axes = _figure(2 if load is not None else 1, height=2.6 if load is not None else 3.6,
                        height_ratios=[1, 1.8] if load is not None else None)
    if load is not None:
        ax_load = axes[0]
        ax_load.plot(t, load, color="#444444", lw=0.8)
        ax_load.set_ylabel(f"load f(t)  [{F}]")
        ax_load.set_title(_title(result, "load history and time response"))
    ax = axes[-1]
    if n_out > max_lines:
        ax.fill_between(t, x.min(axis=1), x.max(axis=1), color="#9fb7d4", alpha=0.45, lw=0,
                        label=f"range of all {n_out} outputs")
    for c, j in enumerate(_pick(x, max(1, int(max_lines)))):
        ax.plot(t, x[:, j], color=_COLORS[c % len(_COLORS)], lw=0.9, label=labels[j])
    ax.set_ylabel(f"displacement  [{L}]")
    ax.set_xlabel("time  [s]")
    t_end = _auto_t_max(t, x, *([] if load is None else [load])) if t_max is None else min(float(t_max), t[-1])
    ax.set_xlim(t[0], t_end)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    if load is None:
        ax.set_title(_title(result, "time response at the output DOF"))
    _note_partial(ax, result)
    return _save(fig, path)


def plot_load(t, f, freqs_hz, P, path=None, *, title="Load history and spectrum", force_unit="force", t_max=None):
    """The load history and the magnitude of its spectrum.

    Parameters
    ----------
    t : (n,) array_like
        Times in s.
    f : (n,) array_like
        Force samples.
    freqs_hz : (F,) array_like
    P : (F,) complex array_like
        ``rfft`` of the history (:func:`femfreq.spectra.load_spectrum`).
    path : str or path-like, optional
    title : str
    force_unit : str
    t_max : float, optional
        End of the time axis in s; by default where the history has decayed below
        1% of its peak (plus 20%); ``numpy.inf`` for the whole history.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: history vs time, ``|P|`` (log scale) vs frequency.

    Raises
    ------
    ValueError
        Mismatched lengths.
    """
    t, f = np.asarray(t, float), np.asarray(f, float)
    freqs_hz, P = np.asarray(freqs_hz, float), np.asarray(P)
    if t.shape != f.shape or t.ndim != 1:
        raise ValueError(f"t and f must be 1-D of the same length (have {t.shape} and {f.shape})")
    if freqs_hz.shape != P.shape or freqs_hz.ndim != 1:
        raise ValueError(f"freqs_hz and P must be 1-D of the same length (have {freqs_hz.shape} and {P.shape})")
    fig, (ax_t, ax_f) = _figure(2, sharex=False)
    ax_t.plot(t, f, color="#444444", lw=0.8)
    ax_t.set_xlabel("time  [s]")
    ax_t.set_ylabel(f"force  [{force_unit}]")
    ax_t.set_xlim(t[0], _auto_t_max(t, f) if t_max is None else min(float(t_max), t[-1]))
    ax_t.set_title(title)
    mag = np.abs(P)
    ax_f.plot(freqs_hz, np.where(mag > 0, mag, np.nan), color="#1f77b4", lw=0.9)
    ax_f.set_yscale("log")
    ax_f.set_xlabel("frequency  [Hz]")
    ax_f.set_ylabel(f"|P(f)|  [{force_unit}]")
    ax_f.set_xlim(freqs_hz.min(), freqs_hz.max())
    return _save(fig, path)
