"""Frequency response figures: the FRF (log-y) and the log-log transfer function / transmissibility."""

from __future__ import annotations

import logging

import numpy as np

from ._style import _COLORS, _figure, _save, _as_result, _units, _title, _labels, _pick, _note_partial, _log_frequency_axis, _pretty

__all__ = ['plot_frf', 'plot_transfer']

logger = logging.getLogger(__name__)


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
    from ..vibration.random import QUANTITIES
    from ..vibration.response import excitation_of, response_quantity_of

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
