"""The whole response field at one frequency (a sweep keeps only the output DOF)."""

from __future__ import annotations

import numpy as np

from . import _validate as v

__all__ = ["response_field"]


def response_field(model, freq_hz, *, load=1.0, solver="auto"):
    """The full response of a model at one frequency, on every DOF.

    A sweep keeps only the output DOF; this solves one frequency for the whole field
    (for a ParaView picture of where the structure moves).

    Parameters
    ----------
    model : femfreq.model.Model
    freq_hz : float
        Frequency in Hz (>= 0).
    load : complex, optional
        ``P(omega)`` (default 1: the response per unit load).
    solver : str, optional
        Direct solver name.

    Returns
    -------
    x : (n_nodes, 2) complex array
        Displacement of every node (zero on fixed DOF).
    rel_residual : float
        Its relative residual.
    """
    from .solvers import get_solver, solve_certified

    f = v.as_float("freq_hz", freq_hz, nonneg=True)
    system = model.system()
    direct = get_solver(system, solver)
    x, rel, _ = solve_certified(direct, system, 2 * np.pi * f, complex(load), tol=1e-10, refine=2)
    return model.expand(x).reshape(-1, 2), rel
