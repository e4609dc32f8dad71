"""Load histories, FFT frequency grids, load spectra and the way back to time.

The sweep works in the frequency domain with numpy's real FFT convention

    P[k] = sum_j f[j] exp(-2 pi i j k / n_fft),   f_k = k / (n_fft dt),  k = 0 .. n_fft // 2

so a response ``X[k] = H(2 pi f_k) P[k]`` goes back to time with
:func:`to_time` (``irfft``). This is the *periodic* (circular) steady-state
response to the history repeated every ``n_fft dt`` seconds: pad a transient
load with enough zeros (``n_fft`` larger than the history) for the response to
die out within the window.

The frequencies are exactly ``numpy.fft.rfftfreq(n_fft, dt)``, Nyquist bin
included. (``linspace(0, Fs/2, n_fft/2)``, seen in the wild, puts every bin at a
slightly wrong frequency and drops the Nyquist bin.)
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _validate as v
from .errors import ReadError


__all__ = [
    "History",
    "pyroshock",
    "read_history",
    "rfft_freqs",
    "load_spectrum",
    "to_time",
    "frequency_grid",
    "PYROSHOCK_COMPONENTS",
]

logger = logging.getLogger(__name__)

#: Components of the shipped pyroshock: (frequency Hz, amplitude, decay time s, phase rad).
#: Low modes ring longer than high ones, as in a measured near-field pyroshock.
PYROSHOCK_COMPONENTS = (
    (62.0, 0.45, 0.060, 0.3),
    (145.0, 0.80, 0.035, 1.9),
    (238.0, 1.00, 0.022, 4.1),
    (365.0, 0.85, 0.015, 0.8),
    (512.0, 0.70, 0.010, 2.7),
    (695.0, 0.55, 0.007, 5.2),
    (880.0, 0.40, 0.004, 3.6),
)


def pyroshock(dt=5e-4, n=4096, *, amplitude=1.0, delay=0.005, components=None):
    """A synthetic pyroshock load history: a sum of decaying sinusoids.

    ``f(t) = sum_c a_c exp(-(t - t0) / tau_c) sin(2 pi f_c (t - t0) + phi_c)`` for
    ``t >= t0 = delay`` and 0 before, scaled so that ``max |f| = amplitude``.
    Deterministic: the same arguments always give the same history.

    Parameters
    ----------
    dt : float
        Sampling interval in s (default 5e-4, i.e. 2 kHz sampling, Nyquist 1 kHz).
    n : int
        Number of samples (default 4096, 2.048 s).
    amplitude : float
        Peak absolute value of the history (force units).
    delay : float
        Onset delay t0 in s.
    components : sequence of (freq_hz, amp, tau_s, phase_rad), optional
        Defaults to :data:`PYROSHOCK_COMPONENTS` (7 components over 62..880 Hz,
        decay times 4..60 ms).

    Returns
    -------
    f : (n,) float64

    Raises
    ------
    ValueError
        If ``dt``, ``n``, ``amplitude`` or ``delay`` is not valid.

    Examples
    --------
    >>> f = pyroshock()
    >>> f.shape, float(abs(f).max())
    ((4096,), 1.0)
    """
    dt = v.positive_float("dt", dt)
    n = v.as_int("n", n, minimum=2)
    amplitude = v.positive_float("amplitude", amplitude)
    delay = v.as_float("delay", delay, nonneg=True)
    comps = np.asarray(PYROSHOCK_COMPONENTS if components is None else components, dtype=float)
    if comps.ndim != 2 or comps.shape[1] != 4 or len(comps) == 0:
        raise ValueError(f"components must be rows of (freq_hz, amp, tau_s, phase) (got shape {comps.shape})")
    if not np.all(np.isfinite(comps)) or np.any(comps[:, 0] <= 0) or np.any(comps[:, 2] <= 0):
        raise ValueError("components need finite values, positive frequencies and positive decay times")
    nyquist = 0.5 / dt
    if np.any(comps[:, 0] >= nyquist):
        warnings.warn(
            f"pyroshock components above the Nyquist frequency {nyquist:g} Hz alias (dt = {dt:g} s)",
            stacklevel=2,
        )
    t = np.arange(n) * dt - delay
    on = t >= 0
    ts = t[on][:, None]
    freq, amp, tau, phase = comps.T
    burst = (amp * np.exp(-ts / tau) * np.sin(2 * np.pi * freq * ts + phase)).sum(axis=1)
    f = np.zeros(n)
    f[on] = burst
    peak = np.abs(f).max()
    if peak == 0:
        raise ValueError(f"the pyroshock is all zeros: delay {delay} s is beyond the window {n * dt} s")
    return f * (amplitude / peak)


def read_history(path, *, dt=None):
    """Read a load history from a text/CSV or HDF5 file.

    Text and CSV files have one column (the force; ``dt`` is required) or two
    (time in s, force; uniform spacing is checked to 5% of the step and ``dt``
    derived as the mean step; the times returned are ``t0 + k dt``). Fields are
    separated by commas, semicolons, spaces or tabs; ``#`` starts a comment; one
    header line (non-numeric) before the data is allowed.

    HDF5 files (recognised by content, not name) hold datasets ``/t`` and ``/f``,
    or ``/f`` alone (or a single dataset) with one column (force) or two (t, f).
    A one-column HDF5 history takes ``dt`` from the argument or a ``dt``
    attribute of the dataset or file.

    Parameters
    ----------
    path : str or path-like
    dt : float, optional
        Sampling interval in s; required for one-column histories, checked
        against the time column otherwise (to 0.1%).

    Returns
    -------
    t : (n,) float64
        Sample times in s, uniform: ``t[0] + k dt`` (``dt = t[1] - t[0]``).
    f : (n,) float64
        Force samples.

    Raises
    ------
    ReadError
        A malformed file: non-numeric or non-finite fields, ragged rows, more than
        two columns, non-uniform or decreasing time, fewer than 2 samples. The
        message starts with ``path:line:``.
    ValueError
        ``dt`` missing or not positive, or inconsistent with the time column.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"load history file {str(path)!r} does not exist")
    if dt is not None:
        dt = v.positive_float("dt", dt)
    import h5py

    if h5py.is_hdf5(path):
        t, f, where, file_dt = _read_history_hdf5(path)
        if file_dt is not None and dt is None:
            dt = file_dt
    else:
        t, f, where = _read_history_text(path)
    if len(f) < 2:
        raise ReadError(path, 0, f"a load history needs at least 2 samples (found {len(f)})")
    if t is None:
        if dt is None:
            raise ValueError(f"{path}: a one-column load history needs dt (the sampling interval in s)")
        return np.arange(len(f)) * dt, f
    step = np.diff(t)
    dt_file = (t[-1] - t[0]) / (len(t) - 1)
    if not dt_file > 0:
        line, ctx = where(1)
        raise ReadError(path, line, f"{ctx}time must increase (t goes from {float(t[0])!r} to {float(t[-1])!r})")
    # the median step: a glitch is reported where it is, not where the mean drifts; 5% slack
    # absorbs times printed with few digits (%g: t = 1.00067 for dt = 1/3000 s), not a missing sample
    typical = float(np.median(step))
    bad = np.flatnonzero(np.abs(step - typical) > 5e-2 * typical)
    if bad.size:
        k = int(bad[0])
        line, ctx = where(k + 1)
        raise ReadError(
            path,
            line,
            f"{ctx}time is not uniformly spaced: t = {float(t[k + 1])!r} follows {float(t[k])!r} "
            f"(step {step[k]:.6g} s, typical step {typical:.6g} s)"
        )
    if dt is not None and abs(dt - dt_file) > 1e-3 * dt_file:
        raise ValueError(f"{path}: dt = {dt!r} disagrees with the time column (step {dt_file:.6g} s)")
    # the uniform grid through the first and last times (t[1] - t[0] is the mean step, not a rounded one)
    return t[0] + np.arange(len(t)) * dt_file, f


_SPLIT = re.compile(r"[,;\s]+")


def _read_history_text(path):
    """Parse a one- or two-column text history; returns (t or None, f, where(line))."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ReadError(path, 0, f"not a text file ({exc.reason})") from None
    rows, lines = [], []
    ncol = None
    header_seen = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [s for s in _SPLIT.split(line) if s]
        try:
            values = [float(s) for s in fields]
        except ValueError:
            if not rows and not header_seen:
                header_seen = True  # one header line before the data
                continue
            bad = next(s for s in fields if not _is_float(s))
            raise ReadError(path, lineno, f"non-numeric field {bad!r} in {raw.strip()!r}") from None
        if ncol is None:
            ncol = len(values)
            if ncol > 2:
                raise ReadError(
                    path, lineno, f"expected 1 column (force) or 2 (time, force), found {ncol} in {raw.strip()!r}"
                )
        elif len(values) != ncol:
            raise ReadError(path, lineno, f"expected {ncol} column(s) like the first data line, found {len(values)}")
        if not all(math.isfinite(x) for x in values):
            raise ReadError(path, lineno, f"non-finite value in {raw.strip()!r}")
        rows.append(values)
        lines.append(lineno)
    if not rows:
        raise ReadError(path, 0, "a load history needs at least 2 samples (found no data)")
    data = np.array(rows, dtype=np.float64)
    lines = np.array(lines)

    def where(k):
        return int(lines[min(k, len(lines) - 1)]), ""

    if ncol == 1:
        return None, data[:, 0], where
    return data[:, 0].copy(), data[:, 1].copy(), where


def _is_float(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_history_hdf5(path):
    """Read /t and /f (or a single dataset) from an HDF5 file."""
    import h5py

    with h5py.File(path, "r") as h5:
        datasets = []
        h5.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        if "f" in h5 and isinstance(h5["f"], h5py.Dataset):
            name = "f"
        elif len(datasets) == 1:
            name = datasets[0]
        else:
            raise ReadError(
                path, 0, f"expected datasets /t and /f (or a single dataset) in the HDF5 file, found {datasets}"
            )
        ds = h5[name]
        data = np.asarray(ds[()])
        file_dt = ds.attrs.get("dt", h5.attrs.get("dt"))
        t = None
        if name == "f" and "t" in h5:
            t = np.asarray(h5["t"][()])
            if t.shape != data.shape or t.ndim != 1:
                raise ReadError(path, 0, f"/t: shape {t.shape} does not match /f {data.shape}; both must be (n,)")
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise ReadError(path, 0, f"/{name}: expected real numbers, found dtype {data.dtype}")
    if data.ndim == 2 and data.shape[1] in (1, 2):
        if data.shape[1] == 2:
            t, data = data[:, 0], data[:, 1]
        else:
            data = data[:, 0]
    elif data.ndim != 1:
        raise ReadError(path, 0, f"/{name}: expected shape (n,), (n, 1) or (n, 2), found {data.shape}")
    f = data.astype(np.float64)
    for label, arr in (("t", t), (name, f)):
        if arr is not None:
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise ReadError(path, 0, f"/{label}: non-finite value {float(arr[bad[0]])!r} at row {bad[0]}")
    if t is not None:
        t = t.astype(np.float64)
    if file_dt is not None:
        file_dt = v.positive_float(f"{path}: attribute dt", float(np.asarray(file_dt).ravel()[0]))

    def where(k):
        return 0, f"/t row {k}: "

    return t, f, where, file_dt


def rfft_freqs(n_fft, dt):
    """The frequencies in Hz of the ``rfft`` bins: exactly ``numpy.fft.rfftfreq(n_fft, dt)``.

    Parameters
    ----------
    n_fft : int
        FFT length (>= 2).
    dt : float
        Sampling interval in s.

    Returns
    -------
    freqs_hz : (n_fft // 2 + 1,) float64
        ``k / (n_fft dt)`` for ``k = 0 .. n_fft // 2``, Nyquist bin included for even ``n_fft``.

    Raises
    ------
    ValueError
        If ``n_fft < 2`` or ``dt`` is not finite and positive.
    """
    n_fft = v.as_int("n_fft", n_fft, minimum=2)
    dt = v.positive_float("dt", dt)
    return np.fft.rfftfreq(n_fft, dt)


def load_spectrum(history, n_fft=None):
    """The load spectrum ``P = rfft(history, n_fft)``.

    Parameters
    ----------
    history : (n,) array_like
        Load samples at uniform spacing.
    n_fft : int, optional
        FFT length; defaults to ``n``. A longer ``n_fft`` zero-pads; a shorter
        one truncates the history (with a warning).

    Returns
    -------
    P : (n_fft // 2 + 1,) complex128

    Raises
    ------
    TypeError
        If the history is not real numbers.
    ValueError
        If the history is not 1-D, has fewer than 2 samples or non-finite values.
    """
    h = _samples(history)
    n_fft = h.size if n_fft is None else v.as_int("n_fft", n_fft, minimum=2)
    if n_fft < h.size:
        dropped = h[n_fft:]
        warnings.warn(
            f"n_fft = {n_fft} is shorter than the load history ({h.size} samples): the last "
            f"{h.size - n_fft} samples (max |f| {np.abs(dropped).max():.3g}) are dropped",
            stacklevel=2,
        )
    return np.fft.rfft(h, n_fft)


def to_time(X, n_fft, axis=0):
    """Back to time: ``irfft(X, n_fft, axis)``, the inverse of :func:`load_spectrum`.

    Parameters
    ----------
    X : (..., n_fft // 2 + 1, ...) array_like
        Spectrum on the ``rfft`` bins along ``axis`` (e.g. ``H(omega) P`` per output).
    n_fft : int
        FFT length used for the forward transform.
    axis : int
        Frequency axis of ``X``.

    Returns
    -------
    x : float64 array, ``X.shape`` with ``n_fft`` along ``axis``
        The periodic response sampled at ``t = k dt``.

    Raises
    ------
    ValueError
        If ``X`` does not have ``n_fft // 2 + 1`` bins along ``axis``.
    """
    X = np.asarray(X)
    n_fft = v.as_int("n_fft", n_fft, minimum=2)
    if X.ndim == 0:
        raise ValueError("X must have at least one dimension (the frequency axis)")
    n_bins = n_fft // 2 + 1
    if X.shape[axis] != n_bins:
        raise ValueError(
            f"X has {X.shape[axis]} frequency bins along axis {axis}; n_fft = {n_fft} needs {n_bins}"
        )
    return np.fft.irfft(X, n_fft, axis=axis)


def frequency_grid(spec, *, system=None):
    """Frequencies in Hz from a user's specification.

    Parameters
    ----------
    spec : array_like or str
        A list/array of frequencies; or a string: ``"start:stop:n"`` (``n`` points,
        linear, both ends included), ``"log:start:stop:n"`` (logarithmic,
        ``start > 0``), ``"auto:fmin:fmax"`` or ``"auto:fmin:fmax:n"`` (at least ``n``
        points in the half-power band of every mode of ``system`` plus a log-spaced
        background, :mod:`femfreq.grid`), or numbers separated by commas or spaces
        (``"10,20,50"``).
    system : System, optional
        The model an ``"auto:..."`` spec is resolved on (its eigenvalues and damping).

    Returns
    -------
    freqs_hz : (F,) float64

    Raises
    ------
    TypeError
        If the frequencies are not numbers.
    ValueError
        Empty, negative, NaN or infinite frequencies, a malformed range, or
        ``stop < start``; the message quotes the value. An ``"auto:..."`` spec
        without ``system``.

    Examples
    --------
    >>> frequency_grid("0:100:5")
    array([  0.,  25.,  50.,  75., 100.])
    >>> frequency_grid("log:1:1000:4")
    array([   1.,   10.,  100., 1000.])
    """
    from . import grid  # here: femfreq.grid loads the model side, not needed to read a spectrum

    if grid.is_auto(spec):
        auto = grid.parse_auto(spec)
        if system is None:
            raise ValueError(f"frequency spec {spec!r} is resolved on a model: pass system=, or give it to "
                             "femfreq.solve")
        freqs = grid.auto_grid(system, auto)
    elif isinstance(spec, str):
        freqs = v.frequencies(_parse_grid(spec), f"frequencies {spec!r}")
    else:
        freqs = v.frequencies(spec, "frequencies")
    if freqs.size == 0:
        raise ValueError(f"no frequencies given (got {spec!r})")
    return freqs


def _parse_grid(spec):
    """Parse "start:stop:n", "log:start:stop:n" or "f1,f2,..."."""
    s = spec.strip()
    if ":" not in s:
        fields = [x for x in re.split(r"[,;\s]+", s) if x]
        try:
            return np.array([float(x) for x in fields], dtype=np.float64)
        except ValueError:
            raise ValueError(
                f"cannot read frequencies {spec!r}: expected numbers, 'start:stop:n' or 'log:start:stop:n'"
            ) from None
    parts = [p.strip() for p in s.split(":")]
    log = parts[0].lower() == "log"
    if log:
        parts = parts[1:]
    if len(parts) != 3:
        raise ValueError(f"frequency range {spec!r} must be 'start:stop:n' or 'log:start:stop:n'")
    try:
        start, stop = float(parts[0]), float(parts[1])
        n = int(parts[2])
    except ValueError:
        raise ValueError(f"frequency range {spec!r}: start and stop must be numbers and n an integer") from None
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise ValueError(f"frequency range {spec!r}: start and stop must be finite")
    if start < 0 or stop < 0:
        raise ValueError(f"frequency range {spec!r}: frequencies must be >= 0 Hz")
    if n < 1:
        raise ValueError(f"frequency range {spec!r}: n must be >= 1 (got {n})")
    if stop < start:
        raise ValueError(f"frequency range {spec!r}: stop {stop:g} is below start {start:g}")
    if log:
        if start <= 0:
            raise ValueError(f"log frequency range {spec!r}: start must be > 0 Hz")
        return np.geomspace(start, stop, n)
    return np.linspace(start, stop, n)


def _samples(history, *, flatten=False):
    """The load history as finite float64 samples, 1-D (``flatten``: any shape, raveled), at least 2."""
    h = np.asarray(history)
    if h.dtype == bool or not np.issubdtype(h.dtype, np.number) or np.iscomplexobj(h):
        raise TypeError(f"the load history must be real numbers (got dtype {h.dtype})")
    h = np.ascontiguousarray(h, dtype=np.float64)
    if flatten:
        h = h.ravel()
    if h.ndim != 1:
        raise ValueError(f"the load history must be 1-D (has shape {h.shape})")
    if h.size < 2:
        raise ValueError(f"the load history needs at least 2 samples (has {h.size})")
    bad = np.flatnonzero(~np.isfinite(h))
    if bad.size:
        raise ValueError(f"the load history has a non-finite sample at index {int(bad[0])} ({float(h[bad[0]])!r})")
    return h


@dataclass(frozen=True)
class History:
    """A load time history that drives a sweep on its exact ``rfft`` grid.

    The sweep's frequencies are the ``rfft`` bins ``k / (n_fft dt)``, Nyquist included
    (:func:`rfft_freqs`), its load spectrum is ``rfft(samples, n_fft)`` and the time
    response is ``irfft(x, n_fft)`` at the output DOF.

    Parameters
    ----------
    samples : (n_t,) array or path
        The samples, or a history file (one or two columns of text/CSV, or HDF5
        ``/t``, ``/f``: :func:`read_history`).
    dt : float, optional
        Sample interval in s (required for samples; a file's time column gives it).
    n_fft : int, optional
        FFT length (default: the number of samples); longer pads with zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from femfreq.spectra import History
    >>> h = History(np.ones(8), dt=0.01)
    >>> h.freqs_hz().tolist()
    [0.0, 12.5, 25.0, 37.5, 50.0]
    """

    samples: object
    dt: float | None = None
    n_fft: int | None = None

    def __post_init__(self):
        samples, dt = self.samples, self.dt
        if isinstance(samples, (str, os.PathLike)):
            t, samples = read_history(samples, dt=dt)
            dt = float(t[1] - t[0])
        samples = _samples(samples, flatten=True)
        if dt is None:
            raise ValueError("the load history needs its sample interval dt (s)")
        dt = v.positive_float("dt", dt)
        n_fft = samples.size if self.n_fft is None else v.as_int("n_fft", self.n_fft, minimum=2,
                                                                 maximum=v.MAX_N_FFT)
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "dt", dt)
        object.__setattr__(self, "n_fft", int(n_fft))

    def freqs_hz(self) -> np.ndarray:
        """The ``rfft`` bins in Hz, ``(n_fft // 2 + 1,)``."""
        return rfft_freqs(self.n_fft, self.dt)

    def spectrum(self) -> np.ndarray:
        """``P = rfft(samples, n_fft)`` at :meth:`freqs_hz`."""
        return load_spectrum(self.samples, self.n_fft)

    def t(self) -> np.ndarray:
        """Times of the time response, ``(n_fft,)`` s."""
        return np.arange(self.n_fft) * self.dt
