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

from ._style import _as_result, _title, _units
from .frf import plot_frf, plot_transfer
from .mesh import plot_mesh, plot_model
from .residuals import plot_residuals
from .vibration import plot_psd, plot_srs
from .time import plot_load, plot_time

__all__ = ["plot_frf", "plot_transfer", "plot_psd", "plot_srs", "plot_time", "plot_load", "plot_mesh", "plot_model",
           "plot_residuals", "plot_all", "title", "PLOTS"]

logger = logging.getLogger(__name__)

#: a figure title naming the result's model and analysis (for figures made outside this package)
title = _title


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
            from ..spectra import to_time

            L, F = _units(result)
            plot_load(t, to_time(P, len(t)), result.freqs_hz, P, out,
                      title=_title(result, "load history and spectrum"), force_unit=F)
        elif name == "mesh":
            plot_model(model, out)
        written.append(out)
    return written
