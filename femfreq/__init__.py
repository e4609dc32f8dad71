"""femfreq: frequency response of finite-element rod structures on a dask cluster.

A four-step tutorial:

1. Mesh: ``mesh = femfreq.mesh.triangulate(femfreq.mesh.read_poly("part.poly"), "pq30a0.5")``.
2. Model: ``model = femfreq.load_model("satellite", level=3)`` builds the rods, the
   constraints, the load and the output points, and ``model.system()`` gives K, C, M, b.
3. Sweep: ``result = femfreq.solve(model, out="sat.h5")`` solves
   ``(K + i w C - w^2 M) x = P(w) b`` at every frequency of the load's FFT on an
   embedded dask cluster (``cluster=None`` for in-process).
4. Results: ``femfreq.read_results("sat.h5")`` gives frequencies, complex response,
   residuals and the time response at the output DOF; ``femfreq.random_response(result,
   "20:0.026,50:0.16,800:0.16,2000:0.026")`` and ``femfreq.shock_response_spectrum(t, accel,
   freqs_hz)`` turn them into random-vibration rms and shock spectra (:mod:`femfreq.vibration`).
"""

from ._version import __version__

__all__ = [
    "__version__",
    "ASD",
    "Direct",
    "Fast",
    "FemfreqError",
    "History",
    "JobQueue",
    "Local",
    "Model",
    "SSH",
    "Scheduler",
    "Serial",
    "SweepResult",
    "System",
    "as_system",
    "load_model",
    "random_response",
    "read_results",
    "shock_response_spectrum",
    "solve",
]

from .errors import FemfreqError
from .model import Model, load_model
from .options import SSH, Direct, Fast, JobQueue, Local, Scheduler, Serial
from .results import SweepResult, read_results
from .spectra import History
from .sweep import solve
from .system import System, as_system
from .vibration import ASD, random_response, shock_response_spectrum
