"""femfreq: frequency response of finite-element rod structures on a dask cluster.

A four-step tutorial:

1. Mesh: ``mesh = femfreq.mesh.triangulate(femfreq.mesh.read_poly("part.poly"), "pq30a0.5")``.
2. Model: ``model = femfreq.load_model("satellite", level=3)`` builds the rods, the
   constraints, the load and the output points, and ``model.system()`` gives K, C, M, b.
3. Sweep: ``result = femfreq.solve(model, out="sat.h5")`` solves
   ``(K + i w C - w^2 M) x = P(w) b`` at every frequency of the load's FFT on an
   embedded dask cluster (``cluster=None`` for in-process).
4. Results: ``femfreq.read_results("sat.h5")`` gives frequencies, complex response,
   residuals and the time response at the output DOF.
"""

from ._version import __version__

__all__ = [
    "__version__",
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
    "read_results",
    "solve",
]

from .errors import FemfreqError
from .model import Model, load_model
from .options import SSH, Direct, Fast, JobQueue, Local, Scheduler, Serial
from .results import SweepResult, read_results
from .spectra import History
from .sweep import solve
from .system import System, as_system
