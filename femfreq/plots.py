"""Figures of a sweep: FRF, time response, load, mesh, residuals, PSD and SRS (matplotlib).

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot
state, no global backend switch, safe in worker threads and in notebooks),
saves it when a ``path`` is given (PNG, PDF, SVG ... by the extension) and
returns it. Results are a :class:`~femfreq.results.SweepResult`, a result file
path, or a ``(freqs_hz, response)`` pair.

Units: frequencies in Hz and times in s. Lengths and forces are in the model's
own consistent units; name them with the result attributes ``length_unit`` and
``force_unit`` (e.g. ``"m"``, ``"N"``), otherwise the labels say "length" and "force".
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .codes import Method

__all__ = ["plot_frf", "plot_transfer", "plot_psd", "plot_srs", "plot_time", "plot_load", "plot_mesh", "plot_model", "plot_residuals", "plot_all", "PLOTS"]

logger = logging.getLogger(__name__)

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
_DPI = 150


# --------------------------------------------------------------------------- helpers


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
    from .results import SweepResult, read_results

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


# --------------------------------------------------------------------------- FRF


def plot_frf(result, path=None, *, quantity="frf", max_lines=4):
    """Magnitude (log scale) and phase versus frequency at the output DOF.

    With more than ``max_lines`` outputs, the ``max_lines`` with the largest peak
    are drawn and the RMS over all outputs, ``sqrt(mean_j |H_j|^2)``, is added as a
    dashed line.

    Parameters
    ----------
    result : SweepResult, path or (freqs_hz (F,), response (F, n_out)) pair
    path : str or path-like, optional
        Where to save the figure.
    quantity : {"frf", "response"}
        ``"frf"``: the transfer function ``x / P`` (receptance; equal to ``x`` for a
        unit load); ``"response"``: the response spectrum ``x = H P``.
    max_lines : int
        Number of individual outputs drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: magnitude and phase (degrees).

    Raises
    ------
    ValueError
        An unknown ``quantity``, or no frequency done.
    """
    result = _as_result(result)
    if quantity not in ("frf", "response"):
        raise ValueError(f"quantity must be 'frf' or 'response' (got {quantity!r})")
    freqs = np.asarray(result.freqs_hz, dtype=float)
    H = np.asarray(result.frf if quantity == "frf" and hasattr(result, "frf") else result.response, dtype=complex)
    done = np.asarray(getattr(result, "done", np.ones(freqs.size, bool)), dtype=bool)
    if not done.any():
        raise ValueError("no frequency is done in this result: nothing to plot")
    H = np.where(done[:, None], H, np.nan)
    n_out = H.shape[1]
    L, F = _units(result)
    labels = _labels(result, n_out)
    sel = _pick(H, max(1, int(max_lines)))
    order = np.argsort(freqs, kind="stable")
    f = freqs[order]
    fig, (ax_mag, ax_ph) = _figure(2, height_ratios=[1.6, 1])
    marker = "." if done.sum() <= 60 else None
    for c, j in enumerate(sel):
        mag = np.abs(H[order, j])
        ax_mag.plot(f, mag, color=_COLORS[c % len(_COLORS)], lw=1.1, marker=marker, label=labels[j])
        ax_ph.plot(f, np.degrees(np.angle(H[order, j])), color=_COLORS[c % len(_COLORS)], lw=0.9, marker=marker)
    if n_out > len(sel):
        rms = np.sqrt(np.mean(np.abs(H[order]) ** 2, axis=1))  # NaN on rows not done
        ax_mag.plot(f, rms, color="black", lw=2.0, ls="--", alpha=0.8, label=f"RMS of all {n_out} outputs")
    ax_mag.set_yscale("log")
    if quantity == "frf":
        ax_mag.set_ylabel(f"|x / P|  [{L}/{F}]")
        what = "receptance x/P at the output DOF"
    else:
        ax_mag.set_ylabel(f"|x|  [{L}]")
        what = "response spectrum at the output DOF"
    ax_mag.set_title(_title(result, what))
    shown = f"{len(sel)} of {n_out} outputs (largest peaks)" if len(sel) < n_out else None
    ax_mag.legend(loc="best", fontsize=8, title=shown, title_fontsize=8, framealpha=0.9)
    ax_ph.set_ylabel("phase  [deg]")
    ax_ph.set_ylim(-185, 185)
    ax_ph.set_yticks([-180, -90, 0, 90, 180])
    ax_ph.set_xlabel("frequency  [Hz]")
    ax_ph.set_xlim(f[0], f[-1] if f[-1] > f[0] else f[0] + 1)
    _note_partial(ax_mag, result)
    return _save(fig, path)


# --------------------------------------------------------------------------- FRF, log-log


def _transfer_names(excitation, quantity, L, F):
    """``(name, symbol, unit)`` of the transfer function of ``quantity`` for this excitation."""
    if excitation == "base":
        return {"displacement": ("displacement per unit base acceleration", "x/a_b", "s^2"),
                "velocity": ("velocity per unit base acceleration", "v/a_b", "s"),
                "acceleration": ("transmissibility", "a/a_b", "-")}[quantity]
    return {"displacement": ("receptance", "x/P", f"{L}/{F}"),
            "velocity": ("mobility", "v/P", f"{L}/s/{F}"),
            "acceleration": ("accelerance", "a/P", f"{L}/s^2/{F}")}[quantity]


def plot_transfer(result, path=None, *, quantity=None, db=False, outputs=None, natural_freqs_hz=None,
                  max_lines=4):
    """Log-log magnitude and phase of the transfer function (FRF or transmissibility) at the outputs.

    Parameters
    ----------
    result : SweepResult, path or (freqs_hz, response) pair
    path : str or path-like, optional
    quantity : {"displacement", "velocity", "acceleration"}, optional
        The output quantity: ``result.frf`` times ``(i w)^k``. Default: displacement
        (receptance ``x/P``) for a point load, acceleration (transmissibility
        ``a/a_b``) for base excitation (the result's ``excitation`` attribute).
    db : bool
        Magnitude in dB, ``20 log10 |H|`` (re 1 in the unit shown), on a linear axis.
    outputs : (k,) int array_like, optional
        Columns to draw (see :func:`femfreq.vibration.select_outputs`); default the
        ``max_lines`` with the largest peak, plus the RMS over all outputs when
        there are more.
    natural_freqs_hz : array_like, optional
        Natural frequencies to mark with vertical lines (e.g. ``model.modes(k)[0]``).
    max_lines : int

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: magnitude (log-log, or dB on a log frequency axis) and phase (deg).

    Raises
    ------
    ValueError
        An unknown quantity, an output column out of range, or no frequency > 0 done.
    """
    result = _as_result(result)
    f, H, excitation, quantity = _transfer_data(result, quantity)
    n_out = H.shape[1]
    if outputs is None:
        sel, envelope = _pick(H, max(1, int(max_lines))), n_out > max(1, int(max_lines))
    else:
        sel, envelope = np.asarray(outputs, dtype=np.int64).ravel(), False
        if sel.size == 0 or sel.min() < 0 or sel.max() >= n_out:
            raise ValueError(f"outputs must be column numbers 0..{n_out - 1} (got {sel.tolist()})")
    L, F = _units(result)
    name, symbol, unit = _transfer_names(excitation, quantity, L, F)
    labels = _labels(result, n_out)

    def magnitude(h):
        with np.errstate(divide="ignore"):
            return 20.0 * np.log10(np.abs(h)) if db else np.abs(h)

    fig, (ax_mag, ax_ph) = _figure(2, height_ratios=[1.8, 1])
    for c, j in enumerate(sel):
        color = _COLORS[c % len(_COLORS)]
        ax_mag.plot(f, magnitude(H[:, j]), color=color, lw=1.1, label=labels[j])
        ax_ph.plot(f, np.degrees(np.angle(H[:, j])), color=color, lw=0.9)
    if envelope:
        rms = np.sqrt(np.mean(np.abs(H) ** 2, axis=1))
        ax_mag.plot(f, magnitude(rms), color="black", lw=2.0, ls="--", alpha=0.8, label=f"RMS of all {n_out} outputs")
    for ax in (ax_mag, ax_ph):
        ax.set_xscale("log")
        _log_frequency_axis(ax)
    if not db:
        ax_mag.set_yscale("log")
    _mark_natural_frequencies(ax_mag, ax_ph, natural_freqs_hz, f[0], f[-1])
    ax_mag.set_ylabel(_pretty(f"|{symbol}|  [dB re 1 {unit}]" if db else f"|{symbol}|  [{unit}]"))
    ax_mag.set_title(_title(result, f"{name} {symbol}"))
    shown = f"{len(sel)} of {n_out} outputs" + (" (largest peaks)" if outputs is None else "") \
        if len(sel) < n_out else None
    ax_mag.legend(loc="best", fontsize=8, title=shown, title_fontsize=8, framealpha=0.9)
    ax_ph.set_ylabel("phase  [deg]")
    ax_ph.set_ylim(-185, 185)
    ax_ph.set_yticks([-180, -90, 0, 90, 180])
    ax_ph.set_xlabel("frequency  [Hz]")
    ax_ph.set_xlim(f[0], f[-1] if f[-1] > f[0] else f[0] * 1.1)
    _note_partial(ax_mag, result)
    return _save(fig, path)


def _transfer_data(result, quantity):
    """``(f (F',), H_q (F', n_out), excitation, quantity)`` on the done frequencies > 0, ascending."""
    from .vibration.random import QUANTITIES
    from .vibration.response import excitation_of, response_quantity_of

    excitation = excitation_of(result)
    frf_quantity = response_quantity_of(result)
    if quantity is None:
        quantity = "acceleration" if excitation == "base" else frf_quantity
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)} (got {quantity!r})")
    freqs = np.asarray(result.freqs_hz, dtype=float)
    done = np.asarray(getattr(result, "done", np.ones(freqs.size, bool)), dtype=bool)
    keep = done & (freqs > 0)
    if not keep.any():
        raise ValueError("no frequency above 0 Hz is done in this result: nothing to plot on a log axis")
    order = np.flatnonzero(keep)[np.argsort(freqs[keep], kind="stable")]
    f = freqs[order]
    H = np.asarray(result.frf if hasattr(result, "frf") else result.response, dtype=complex)[order]
    H = H * ((2j * np.pi * f) ** (QUANTITIES[quantity] - QUANTITIES[frf_quantity]))[:, None]
    return f, H, excitation, quantity


def _mark_natural_frequencies(ax_top, ax_bottom, freqs_hz, lo, hi):
    """Dotted vertical lines at the natural frequencies in [lo, hi], numbered along the top."""
    if freqs_hz is None:
        return
    fn = np.asarray(freqs_hz, dtype=float).ravel()
    shown = [x for x in fn if lo <= x <= hi]
    gap = 10.0 ** (0.015 * np.log10(hi / lo)) if hi > lo > 0 else 1.0  # labels closer than this would overlap
    last = 0.0
    for k, x in enumerate(shown):
        for ax in (ax_top, ax_bottom):
            ax.axvline(x, color="#7f7f7f", ls=":", lw=0.9, zorder=0,
                       label="natural frequencies" if (k == 0 and ax is ax_top) else None)
        if x < last * gap:
            continue
        last = x
        ax_top.annotate(f"{x:.4g}", xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -3),
                        textcoords="offset points", rotation=90, fontsize=7, color="#555555", va="top")


# --------------------------------------------------------------------------- random vibration and shock


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



def plot_psd(response, path=None, *, outputs=None, max_lines=4, unit="", input_unit="", title=None):
    """The input ASD and the response PSD of the outputs with the largest rms (log-log).

    Parameters
    ----------
    response : femfreq.vibration.RandomResponse
    path : str or path-like, optional
    outputs : (k,) int array_like, optional
        Columns to draw; default the ``max_lines`` with the largest rms.
    max_lines : int
    unit : str
        Unit of the rms (``"g"``); the PSD is in ``unit^2/Hz``.
    input_unit : str
        Unit of the input spectral density (``"g^2/Hz"``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the input ASD and the response PSDs, the rms in the legend.
    """
    f, psd, rms = response.freqs_hz, response.psd, response.rms
    lo, hi = response.band_hz
    inside = (f >= lo) & (f <= hi)
    sel = np.argsort(-rms, kind="stable")[:max(1, int(max_lines))] if outputs is None else \
        np.asarray(outputs, dtype=np.int64).ravel()
    fig, (ax_in, ax_out) = _figure(2, height_ratios=[1, 2.2])
    ax_in.plot(f[inside], response.asd(f[inside]), color="#444444", lw=1.2)
    ax_in.plot(response.asd.freqs_hz, response.asd.values, "o", color="#444444", ms=3.5,
               label=f"input: {response.asd.rms:.3g} rms")
    ax_in.set_ylabel(f"input  [{_pretty(input_unit)}]" if input_unit else "input ASD")
    ax_in.legend(loc="lower center", fontsize=8, framealpha=0.9)
    ax_in.set_title(title or f"Random {response.quantity} response")
    peak, low = 0.0, np.inf
    for c, j in enumerate(sel):
        y = np.where(psd[inside, j] > 0, psd[inside, j], np.nan)
        peak = max(peak, float(np.nanmax(y, initial=0.0)))
        low = min(low, float(np.nanmin(y, initial=np.inf)))
        ax_out.plot(f[inside], y, color=_COLORS[c % len(_COLORS)], lw=1.1,
                    label=f"{response.labels[j]}: {rms[j]:.4g}{' ' + _pretty(unit) if unit else ''} rms")
    for ax in (ax_in, ax_out):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_frequency_axis(ax)
    if peak > 0:
        ax_out.set_ylim(bottom=0.5 * max(low, peak * 1e-7))
    ax_out.set_xlim(lo, hi)
    ax_out.set_xlabel("frequency  [Hz]")
    ax_out.set_ylabel(f"response PSD  [{_density(unit)}]" if unit else "response PSD")
    n = psd.shape[1]
    shown = f"{len(sel)} of {n} outputs" + (" (largest rms)" if outputs is None else "") if len(sel) < n else None
    ax_out.legend(loc="best", fontsize=8, title=shown, title_fontsize=8, framealpha=0.9)
    return _save(fig, path)


def plot_srs(spectrum, path=None, *, labels=None, outputs=None, max_lines=4, unit="", title=None):
    """Shock response spectra (log-log): maximax of the outputs with the largest peaks.

    The output with the largest peak also shows its positive and negative spectra.

    Parameters
    ----------
    spectrum : femfreq.vibration.ShockSpectrum
        Of one channel ``(n_f,)`` or several ``(n_f, k)``.
    path : str or path-like, optional
    labels : sequence of str, optional
        One per channel.
    outputs : (m,) int array_like, optional
        Channels to draw; default the ``max_lines`` with the largest peak.
    max_lines : int
    unit : str
        Unit of the acceleration.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fn = spectrum.freqs_hz
    maximax, pos, neg = (np.asarray(a).reshape(fn.size, -1) for a in
                         (spectrum.maximax, spectrum.positive, spectrum.negative))
    k = maximax.shape[1]
    labels = list(labels) if labels is not None and len(labels) == k else [f"output {j}" for j in range(k)]
    sel = _pick(maximax, max(1, int(max_lines))) if outputs is None else np.asarray(outputs, dtype=np.int64).ravel()
    fig, (ax,) = _figure(1, height=4.6)
    for c, j in enumerate(sel):
        color = _COLORS[c % len(_COLORS)]
        ax.plot(fn, maximax[:, j], color=color, lw=1.4, marker="." if fn.size <= 80 else None,
                label=f"{labels[j]}: peak {maximax[:, j].max():.4g}{' ' + _pretty(unit) if unit else ''}")
        if c == 0:
            ax.plot(fn, pos[:, j], color=color, lw=0.8, ls="--", alpha=0.7, label="  positive")
            ax.plot(fn, neg[:, j], color=color, lw=0.8, ls=":", alpha=0.9, label="  negative")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_frequency_axis(ax)
    ax.set_xlim(fn[0], fn[-1] if fn[-1] > fn[0] else fn[0] * 1.1)
    ax.set_xlabel("natural frequency  [Hz]")
    ax.set_ylabel(f"peak absolute acceleration  [{_pretty(unit)}]" if unit else "peak absolute acceleration")
    ax.set_title(title or f"Shock response spectrum (maximax, Q = {spectrum.q:g})")
    shown = f"{len(sel)} of {k} outputs" + (" (largest peaks)" if outputs is None else "") if len(sel) < k else None
    ax.legend(loc="best", fontsize=8, title=shown, title_fontsize=8, framealpha=0.9)
    return _save(fig, path)


# --------------------------------------------------------------------------- time


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
        from .spectra import to_time

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


# --------------------------------------------------------------------------- load


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


# --------------------------------------------------------------------------- mesh


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


# --------------------------------------------------------------------------- residuals


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
PLOTS = ("frf", "time", "residual", "load", "mesh")


def plot_all(result, directory=".", *, what=None, model=None, stem=None, fmt="png", quantity=None, db=False,
             outputs=None, natural_freqs_hz=None):
    """Write the standard figures of a sweep into a directory.

    The ``frf`` figure is :func:`plot_transfer` (log-log); ``quantity``, ``db``,
    ``outputs`` and ``natural_freqs_hz`` are passed to it.

    Parameters
    ----------
    result : SweepResult or path
    directory : str or path-like
        Created if missing.
    what : iterable of str or comma-separated str, optional
        Any of :data:`PLOTS`. Default: ``frf``, ``time`` (when the result has a time
        response), ``residual``, and ``mesh`` when a model is given.
    model : femfreq.model.Model, optional
        Needed for ``mesh``.
    stem : str, optional
        File name prefix (default: the result file's stem, else the model name).
    fmt : str
        File format / extension (``png``, ``pdf``, ``svg``).

    Returns
    -------
    list of str
        The files written, in the order of ``what``.

    Raises
    ------
    ValueError
        An unknown figure name; ``mesh`` without a model; ``time`` or ``load``
        asked for explicitly on a result without a time response / FFT grid.
    """
    result = _as_result(result)
    explicit = what is not None
    if what is None:
        what = ["frf"] + (["time"] if getattr(result, "t", None) is not None else []) + ["residual"]
        what += ["mesh"] if model is not None else []
    elif isinstance(what, str):
        what = [w.strip() for w in what.split(",") if w.strip()]
    what = list(dict.fromkeys(what))
    unknown = [w for w in what if w not in PLOTS]
    if unknown:
        raise ValueError(f"unknown plot {unknown[0]!r}; pick from {', '.join(PLOTS)}")
    if "mesh" in what and model is None:
        raise ValueError("the mesh plot needs the model (model=...)")
    if stem is None:
        path = getattr(result, "path", None)
        name = (getattr(result, "attrs", {}) or {}).get("model_name") or "femfreq"
        stem = os.path.splitext(os.path.basename(path))[0] if path else str(name)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    from matplotlib.figure import Figure  # noqa: F401  (fail early if matplotlib is missing)

    written = []
    for name in what:
        out = os.path.join(directory, f"{stem}_{name}.{fmt}")
        if name == "frf":
            plot_transfer(result, out, quantity=quantity, db=db, outputs=outputs, natural_freqs_hz=natural_freqs_hz)
        elif name == "time":
            if getattr(result, "t", None) is None:
                if explicit:
                    raise ValueError("no time response in this result (not an FFT grid): cannot plot 'time'")
                continue
            plot_time(result, out)
        elif name == "residual":
            plot_residuals(result, out)
        elif name == "load":
            t, P = getattr(result, "t", None), getattr(result, "load_spectrum", None)
            if t is None or P is None or len(P) != len(t) // 2 + 1:
                raise ValueError("no load history in this result (not an FFT grid): cannot plot 'load'")
            from .spectra import to_time

            L, F = _units(result)
            plot_load(t, to_time(P, len(t)), result.freqs_hz, P, out,
                      title=_title(result, "load history and spectrum"), force_unit=F)
        elif name == "mesh":
            plot_model(model, out)
        written.append(out)
    return written
