"""Random-vibration and shock figures: response PSDs and shock response spectra (log-log)."""

from __future__ import annotations

import logging

import numpy as np

from ._style import _COLORS, _figure, _save, _pick, _log_frequency_axis, _pretty, _density

__all__ = ['plot_psd', 'plot_srs']

logger = logging.getLogger(__name__)


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
