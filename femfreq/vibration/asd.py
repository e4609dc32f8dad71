"""Acceleration spectral density (ASD) specifications: breakpoints, log-log rule, rms.

A random vibration test specification (NASA-STD-7001, GSFC-STD-7000 "GEVS", ECSS)
lists breakpoints ``(f_i, W_i)`` in Hz and g^2/Hz. Between two breakpoints the
level is a straight line on log-log axes, that is a power law

    W(f) = W_i (f / f_i)^b_i,    b_i = ln(W_{i+1} / W_i) / ln(f_{i+1} / f_i),

which is a slope of ``10 log10(2) b_i`` (about ``3.01 b_i``) dB/octave. Outside
the first and last breakpoints the level is zero. The mean square is the exact
integral of those power laws; its square root is the overall rms (Grms when the
values are in g^2/Hz).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import as_float
from ..errors import ReadError

__all__ = ["ASD", "as_asd", "power_law_integral"]

_DB_PER_OCTAVE = 10.0 * math.log10(2.0)


@dataclass(frozen=True)
class ASD:
    """An acceleration spectral density specification, interpolated log-log.

    Parameters
    ----------
    breakpoints : sequence of (frequency Hz, value) pairs, or (n, 2) array
        At least two pairs; frequencies strictly increasing and > 0, values > 0
        (g^2/Hz for a specification in g). Stored as a tuple of float pairs, so
        an ``ASD`` is hashable, comparable and picklable.

    Raises
    ------
    TypeError
        If ``breakpoints`` is not a sequence of number pairs.
    ValueError
        If there are fewer than two pairs, a frequency or value is not finite
        and > 0, or the frequencies are not strictly increasing.

    Examples
    --------
    >>> from femfreq.vibration import ASD
    >>> gevs = ASD.parse("20:0.026,50:0.16,800:0.16,2000:0.026")
    >>> round(gevs.rms, 1)
    14.1
    >>> float(gevs(100.0))
    0.16
    """

    breakpoints: tuple

    def __post_init__(self):
        object.__setattr__(self, "breakpoints", _normalise_breakpoints(self.breakpoints))

    @classmethod
    def parse(cls, text: str) -> "ASD":
        """An ASD from ``"f1:W1,f2:W2,..."`` (Hz:g^2/Hz pairs; spaces are ignored).

        Raises
        ------
        TypeError
            If ``text`` is not a string.
        ValueError
            If a pair is not ``frequency:value`` with two numbers (the message
            quotes the pair), or the breakpoints are invalid (see :class:`ASD`).
        """
        if not isinstance(text, str):
            raise TypeError(f"an ASD string must be a str (got {type(text).__name__})")
        pairs = []
        for item in text.replace(" ", "").split(","):
            if not item:
                continue
            fields = item.split(":")
            if len(fields) != 2:
                raise ValueError(f"ASD breakpoint {item!r} is not 'frequency:value' (in {text!r})")
            try:
                pairs.append((float(fields[0]), float(fields[1])))
            except ValueError:
                raise ValueError(f"ASD breakpoint {item!r} is not two numbers 'frequency:value' (in {text!r})") from None
        return cls(tuple(pairs))

    @classmethod
    def from_csv(cls, path) -> "ASD":
        """An ASD from a CSV file of ``frequency, value`` lines.

        Blank lines and lines starting with ``#`` are skipped; the first other
        line may be a header (two non-numeric fields). Fields may be separated
        by a comma, a semicolon or white space.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        femfreq.errors.ReadError
            (a ``ValueError``) naming the file and line of a malformed line, or
            of the first breakpoint that is not finite and > 0 or out of order.
        """
        path = Path(os.fspath(path))
        pairs, linenos = [], []
        header_allowed = True
        with open(path, encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                fields = line.replace(";", " ").replace(",", " ").split()
                if header_allowed and len(fields) == 2 and not any(_is_number(x) for x in fields):
                    header_allowed = False
                    continue
                header_allowed = False
                if len(fields) != 2 or not all(_is_number(x) for x in fields):
                    raise ReadError(path, lineno, f"expected two numbers 'frequency, value' (got {line!r})")
                pairs.append((float(fields[0]), float(fields[1])))
                linenos.append(lineno)
        if len(pairs) < 2:
            raise ReadError(path, 0, f"an ASD needs at least two breakpoints (found {len(pairs)})")
        try:
            return cls(tuple(pairs))
        except _BreakpointError as exc:
            raise ReadError(path, linenos[exc.index], str(exc)) from None

    @property
    def freqs_hz(self) -> np.ndarray:
        """(n,) float64: the breakpoint frequencies in Hz."""
        return np.array([f for f, _ in self.breakpoints])

    @property
    def values(self) -> np.ndarray:
        """(n,) float64: the breakpoint values (g^2/Hz for a specification in g)."""
        return np.array([w for _, w in self.breakpoints])

    @property
    def band_hz(self) -> tuple[float, float]:
        """``(f_first, f_last)``: the band outside which the level is zero."""
        return self.breakpoints[0][0], self.breakpoints[-1][0]

    @property
    def exponents(self) -> np.ndarray:
        """(n - 1,) float64: the power ``b_i`` of each segment, ``W ~ f^b_i``."""
        return np.diff(np.log(self.values)) / np.diff(np.log(self.freqs_hz))

    @property
    def slopes_db_per_octave(self) -> np.ndarray:
        """(n - 1,) float64: each segment's slope in dB/octave (``10 log10(2) b_i``)."""
        return _DB_PER_OCTAVE * self.exponents

    @property
    def mean_square(self) -> float:
        """The exact integral of the level over its band (g^2 for g^2/Hz)."""
        return float(np.sum(power_law_integral(self.freqs_hz, self.values)))

    @property
    def rms(self) -> float:
        """The overall rms, ``sqrt(mean_square)`` (Grms for g^2/Hz)."""
        return math.sqrt(self.mean_square)

    def __call__(self, freqs_hz) -> np.ndarray:
        """The level at ``freqs_hz`` (any shape, Hz): log-log interpolation, zero outside the band."""
        f = np.asarray(freqs_hz, dtype=np.float64)
        out = np.zeros(f.shape)
        lo, hi = self.band_hz
        inside = (f >= lo) & (f <= hi)
        # W_i (f/f_i)^b_i on the segment holding f: exact at breakpoints and on flat segments
        fb, wb = self.freqs_hz, self.values
        i = np.clip(np.searchsorted(fb, f[inside], side="right") - 1, 0, fb.size - 2)
        out[inside] = wb[i] * (f[inside] / fb[i]) ** self.exponents[i]
        j = np.minimum(np.searchsorted(fb, f), fb.size - 1)
        hit = fb[j] == f
        out[hit] = wb[j[hit]]
        return out

    def scaled(self, db: float) -> "ASD":
        """The same shape ``db`` decibels up (``W * 10^(db/10)``; e.g. -3 dB for acceptance from qualification)."""
        factor = 10.0 ** (as_float("db", db) / 10.0)
        return ASD(tuple((f, w * factor) for f, w in self.breakpoints))


def as_asd(value, name: str = "asd") -> ASD:
    """An :class:`ASD` from an ASD, a ``"f:W,..."`` string, a CSV path, or (n, 2) pairs.

    A string naming an existing file, or ending in ``.csv``, is read as a CSV file.
    """
    if isinstance(value, ASD):
        return value
    if isinstance(value, os.PathLike):
        return ASD.from_csv(value)
    if isinstance(value, str):
        if value.lower().endswith(".csv") or os.path.isfile(value):
            return ASD.from_csv(value)
        return ASD.parse(value)
    try:
        if np.ndim(value) == 0:
            raise TypeError
        return ASD(value)
    except TypeError:
        raise TypeError(f"{name} must be an ASD, a 'f:W,...' string, a CSV path or (frequency, value) "
                        f"pairs (got {type(value).__name__})") from None


def power_law_integral(freqs_hz, values) -> np.ndarray:
    """The integral of each segment of ``values`` taken as a power law between grid points.

    Parameters
    ----------
    freqs_hz : (n,) float64
        Increasing frequencies in Hz.
    values : (n,) or (n, m) float64
        Non-negative values (a PSD) at ``freqs_hz``.

    Returns
    -------
    (n - 1,) or (n - 1, m) float64
        ``int_{f_i}^{f_{i+1}} W df`` with ``W = W_i (f/f_i)^b``, exact for power laws.
        Where a segment has a zero value or starts at 0 Hz the log-log line does
        not exist, and the trapezoid rule is used instead.

    Notes
    -----
    With ``r = f_{i+1}/f_i`` and ``x = (b + 1) ln r = ln(W_{i+1} f_{i+1} / (W_i f_i))``
    the integral is ``W_i f_i ln(r) (e^x - 1)/x``, written with ``expm1`` so that
    the ``b = -1`` segment (``W_i f_i ln r``) needs no special case.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    w = np.asarray(values, dtype=np.float64)
    if w.ndim == 2:
        f = f[:, None]
    f1, f2, w1, w2 = f[:-1], f[1:], w[:-1], w[1:]
    trapezoid = 0.5 * (w1 + w2) * (f2 - f1)
    ok = (w1 > 0) & (w2 > 0) & (f1 > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_r = np.log(f2 / f1)
        x = np.log((w2 * f2) / (w1 * f1))
        small = np.abs(x) < 1e-12
        phi = np.where(small, 1.0 + 0.5 * x, np.expm1(x) / np.where(small, 1.0, x))
        exact = w1 * f1 * log_r * phi
    return np.where(ok, exact, trapezoid)


class _BreakpointError(ValueError):
    """A ValueError that also says which breakpoint (0-based) is at fault."""

    def __init__(self, message, index):
        super().__init__(message)
        self.index = index


def _normalise_breakpoints(breakpoints) -> tuple:
    """Validated ``((f, W), ...)`` floats: >= 2 pairs, f increasing and > 0, W > 0."""
    if isinstance(breakpoints, (str, bytes)):
        raise TypeError("breakpoints must be (frequency, value) pairs; use ASD.parse for a string")
    try:
        a = np.asarray(breakpoints, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"breakpoints must be (frequency, value) number pairs (got {breakpoints!r})") from None
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"breakpoints must be (frequency, value) pairs, shape (n, 2) (got shape {a.shape})")
    if a.shape[0] < 2:
        raise ValueError(f"an ASD needs at least two breakpoints (got {a.shape[0]})")
    for i, (f, w) in enumerate(a):
        if not (math.isfinite(f) and f > 0):
            raise _BreakpointError(f"ASD breakpoint {i}: frequency must be finite and > 0 Hz (got {f!r})", i)
        if not (math.isfinite(w) and w > 0):
            raise _BreakpointError(f"ASD breakpoint {i} at {f:g} Hz: value must be finite and > 0 "
                                   f"(got {w!r}); log-log interpolation needs positive levels", i)
        if i and not f > a[i - 1, 0]:
            raise _BreakpointError(f"ASD breakpoint frequencies must be strictly increasing "
                                   f"({a[i - 1, 0]:g} Hz then {f:g} Hz at breakpoint {i})", i)
    return tuple((float(f), float(w)) for f, w in a)


def _is_number(text: str) -> bool:
    """True if ``text`` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True
