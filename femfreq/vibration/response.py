"""A sweep result read for the vibration analyses: what its response means, its outputs, its history.

A sweep stores at every output DOF the response ``x(w) = H(w) P(w)`` and the input
spectrum ``P(w)``; ``result.frf = x / P`` is the response per *unit* input. What
that input is depends on the analysis the result file records
(:attr:`femfreq.results.SweepResult.analysis`):

- ``"point"`` (``analysis == "point_load"``):
  a force on the loaded DOF. ``H`` is displacement per unit force (length/force,
  the receptance). A random input is then a **force** spectral density
  (force^2/Hz) and the rms comes out in the model's units: length/s^2 for
  acceleration, length/s for velocity, length for displacement.
- ``"base"`` (``analysis == "base_motion"``): an acceleration of the base. ``H`` is the
  output's absolute displacement per unit base acceleration (s^2). An ASD in g^2/Hz then gives the
  acceleration rms in g (``H_q`` is the dimensionless transmissibility), the
  velocity rms in g s and the displacement rms in g s^2 (x 9.80665 m/s^2 for SI).
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import one_of
from .random import QUANTITIES

__all__ = ["EXCITATIONS", "excitation_of", "response_quantity_of", "response_unit", "select_outputs",
           "acceleration_history"]

#: The analysis kinds of a result (:attr:`SweepResult.analysis` "point_load", "base_motion").
EXCITATIONS = ("point", "base")


def excitation_of(result) -> str:
    """``"point"`` or ``"base"``: what drives the result's sweep (its ``analysis``).

    A result without an ``analysis`` (older files, plain objects) is a point load.
    """
    analysis = getattr(result, "analysis", "point_load")
    return "base" if analysis == "base_motion" else "point"


def response_quantity_of(result) -> str:
    """What ``result.frf`` is: the ``response_quantity`` attribute, ``"displacement"`` when absent."""
    value = (getattr(result, "attrs", None) or {}).get("response_quantity", "displacement")
    if isinstance(value, bytes):
        value = value.decode()
    return one_of("the result's response_quantity attribute", str(value).strip().lower(), QUANTITIES)


def response_unit(result, quantity: str) -> tuple[str, str]:
    """``(unit of the rms, unit of the input spectral density)`` of ``quantity`` for this result.

    Lengths and forces are named by the result attributes ``length_unit`` and
    ``force_unit`` when present ("length" and "force" otherwise).
    """
    one_of("quantity", quantity, QUANTITIES)
    power = QUANTITIES[quantity]
    if excitation_of(result) == "base":
        return ("g", "g s", "g s^2")[2 - power], "g^2/Hz"
    attrs = {**(getattr(result, "model", None) or {}), **(getattr(result, "attrs", None) or {})}
    length, force = str(attrs.get("length_unit", "length")), str(attrs.get("force_unit", "force"))
    return length + ("", "/s", "/s^2")[power], f"{force}^2/Hz"


def select_outputs(result, *, nodes=None, dofs=None) -> np.ndarray:
    """Column indices of the outputs at ``nodes`` (every direction) or with the full DOF ``dofs``.

    Parameters
    ----------
    result : SweepResult
    nodes : int or sequence of int, optional
        0-based node numbers, as in ``result.outputs["node"]``.
    dofs : int or sequence of int, optional
        Full DOF numbers ``2 node + direction``, as in ``result.outputs["dof"]``.

    Returns
    -------
    (k,) int64
        Columns of ``result.response``, in the order asked for; all columns when
        neither is given.

    Raises
    ------
    ValueError
        If a node or DOF is not among the outputs (the message lists some that are).
    """
    outputs = result.outputs
    if nodes is None and dofs is None:
        return np.arange(result.response.shape[1])
    picked = []
    for key, wanted in (("node", nodes), ("dof", dofs)):
        if wanted is None:
            continue
        have = np.asarray(outputs[key], dtype=np.int64)
        for value in np.atleast_1d(np.asarray(wanted, dtype=np.int64)):
            hit = np.flatnonzero(have == value)
            if hit.size == 0:
                known = ", ".join(str(int(v)) for v in np.unique(have)[:12])
                raise ValueError(f"{key} {int(value)} is not an output of this result; output {key}s are "
                                 f"{known}{', ...' if np.unique(have).size > 12 else ''}")
            picked.extend(int(j) for j in hit)
    return np.array(list(dict.fromkeys(picked)), dtype=np.int64)


def acceleration_history(result, *, upsample: int = 1):
    """Acceleration history at every output, ``a(t) = irfft(-w^2 X(w))``, from the stored spectrum.

    The sweep's time response is ``x(t) = irfft(X, n_fft)`` on the ``rfft`` grid of
    its load history; the acceleration is differentiated twice in the frequency
    domain (exact for that periodic, band-limited response, unlike finite
    differences of ``x(t)``). ``upsample > 1`` resamples it at ``dt / upsample``
    by zero-padding the spectrum (band-limited interpolation; the Nyquist bin is
    split evenly between its two sides), which the samples already imply.

    Parameters
    ----------
    result : SweepResult
        A complete sweep on the ``rfft`` grid of a load history (``result.t`` and
        ``result.time_response`` present).
    upsample : int
        Samples per original sample (>= 1).

    Returns
    -------
    t : (n_fft * upsample,) float64
        Times, s.
    accel : (n_fft * upsample, n_out) float64
        Acceleration, in the response's length unit per s^2 (for a point load), or
        per unit of the base acceleration history (for base excitation).

    Raises
    ------
    ValueError
        If the result has no time response, is incomplete, or its frequencies are
        not the ``rfft`` grid of its time axis.
    """
    from numpy.fft import irfft, rfftfreq

    t, x_t = getattr(result, "t", None), getattr(result, "time_response", None)
    if t is None or x_t is None:
        raise ValueError("the result has no time response: its sweep did not run on the rfft grid of a load "
                         "history (run the sweep without --freqs)")
    if not bool(np.all(result.done)):
        raise ValueError(f"the result is incomplete ({int(np.size(result.done) - np.count_nonzero(result.done))} "
                         "frequencies not done); resume the sweep first")
    upsample = int(upsample)
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1 (got {upsample})")
    t = np.asarray(t, dtype=np.float64)
    n_fft, dt = t.size, float(t[1] - t[0])
    freqs = np.asarray(result.freqs_hz, dtype=np.float64)
    if freqs.shape != (n_fft // 2 + 1,) or not np.allclose(freqs, rfftfreq(n_fft, dt), rtol=1e-9, atol=0):
        raise ValueError(f"the frequencies are not the rfft grid of the time axis (n_fft = {n_fft}, dt = {dt:g} s)")
    X = np.asarray(result.response, dtype=np.complex128)
    if not np.all(np.isfinite(X)):
        raise ValueError("the response is not finite at some frequency (a skipped singular frequency?)")
    # a(w) = (i w)^2 x(w) = -w^2 x(w)
    A = -((2.0 * math.pi * freqs) ** 2)[:, None] * X
    if upsample > 1:
        if n_fft % 2 == 0:
            # the short grid's Nyquist bin (its real part: irfft drops the rest) becomes a bin and its mirror
            A[-1] = 0.5 * A[-1].real
        A = np.concatenate([A, np.zeros((n_fft * upsample // 2 + 1 - A.shape[0], A.shape[1]), complex)])
    accel = irfft(A, n_fft * upsample, axis=0) * upsample
    return np.arange(n_fft * upsample) * (dt / upsample), accel
