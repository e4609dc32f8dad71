"""Vibration qualification analyses on a computed frequency response.

1. Specification: ``asd = ASD.parse("20:0.026,50:0.16,800:0.16,2000:0.026")``
   (or ``ASD.from_csv(path)``); ``asd.rms`` is the overall Grms (14.1 for this GEVS level).
2. Random vibration: ``r = random_response(result, asd)`` gives the response PSD
   ``r.psd (F, n_out)`` and ``r.rms (n_out,)`` from the transfer function per unit input;
   ``miles_grms(fn, q, asd)`` and ``dominant_mode(r)`` are the single-mode cross-checks.
3. Shock: ``s = shock_response_spectrum(t, accel, octave_frequencies(100, 10_000, 6), q=10)``
   gives the positive, negative and maximax absolute-acceleration spectra.

The formulas, the integration rules and what the tests verify are in ``docs/vibration.md``.
"""

from .asd import ASD
from .random import DominantMode, RandomResponse, dominant_mode, miles_grms, random_response
from .response import acceleration_history, excitation_of, select_outputs
from .srs import ShockSpectrum, octave_frequencies, shock_response_spectrum

__all__ = [
    "ASD",
    "DominantMode",
    "RandomResponse",
    "ShockSpectrum",
    "acceleration_history",
    "dominant_mode",
    "excitation_of",
    "miles_grms",
    "octave_frequencies",
    "random_response",
    "select_outputs",
    "shock_response_spectrum",
]
