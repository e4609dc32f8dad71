""":class:`SweepResult`: the results of a sweep, in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..codes import Method

__all__ = ["SweepResult"]


@dataclass
class SweepResult:
    """The results of a sweep, as read from a result file (or built by the sweep).

    Attributes
    ----------
    freqs_hz : (F,) float64
    response : (F, n_out) complex128
        Response at the output DOF, ``x = H(omega) P(omega) b``; NaN where not done.
    done : (F,) bool
        Which rows are final: solved, or skipped as singular (their response is NaN).
    rel_residual, backward_error : (F,) float64
    method : (F,) int8
        A :class:`femfreq.codes.Method` code per frequency: 0 not done, 1 direct,
        2 fast, 3 skipped (singular ``A(omega)``).
    load_spectrum : (F,) complex128
        ``P(omega)``.
    outputs : dict
        ``node (n_out,) int64``, ``direction (n_out,) int8``, ``dof (n_out,) int64``,
        ``xy (n_out, 2) float64``.
    t : (n_fft,) float64 or None
    time_response : (n_fft, n_out) float64 or None
    attrs : dict
        Root attributes (status, method, solver, model_name, n_fft, dt, timings ...).
    chunks : dict of arrays
        ``start, count, t_start, t_end`` (R,) and ``worker`` (R,) str, one per chunk written.
    model, versions : dict
    path : str or None
    base : dict or None
        For an enforced base motion sweep (``analysis == "base_motion"``): ``direction``
        (2,), ``acceleration`` (F,) complex base acceleration ``a_b``, ``influence``
        (n_out,) the influence vector ``r`` at the outputs, ``interface_force`` (F, 2)
        complex. ``response`` is then the displacement *relative* to the base's
        quasi-static motion; :attr:`displacement`, :attr:`velocity`,
        :attr:`acceleration` are absolute. None for a point load.
    """

    freqs_hz: np.ndarray
    response: np.ndarray
    done: np.ndarray | None = None
    rel_residual: np.ndarray | None = None
    backward_error: np.ndarray | None = None
    method: np.ndarray | None = None
    load_spectrum: np.ndarray | None = None
    outputs: dict = field(default_factory=dict)
    t: np.ndarray | None = None
    time_response: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)
    chunks: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    path: str | None = None
    base: dict | None = None

    def __post_init__(self):
        self.freqs_hz = np.asarray(self.freqs_hz, dtype=np.float64)
        self.response = np.asarray(self.response, dtype=np.complex128)
        if self.response.ndim == 1:
            self.response = self.response[:, None]
        F = self.freqs_hz.shape[0]
        if self.done is None:
            self.done = np.ones(F, dtype=bool)
        if self.method is None:
            self.method = np.where(self.done, Method.DIRECT, Method.PENDING).astype(np.int8)
        for name in ("rel_residual", "backward_error"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(F, np.nan))
        if not self.outputs:
            dof = np.arange(self.response.shape[1], dtype=np.int64)
            self.outputs = _normalise_outputs({"dof": dof})

    @property
    def n_freqs(self) -> int:
        """Number of frequencies F."""
        return int(self.freqs_hz.shape[0])

    @property
    def n_out(self) -> int:
        """Number of output DOF."""
        return int(self.response.shape[1])

    @property
    def status(self) -> str:
        """``"running"`` (interrupted or in progress) or ``"complete"``."""
        return str(self.attrs.get("status", "complete" if bool(np.all(self.done)) else "running"))

    @property
    def complete(self) -> bool:
        """True when the sweep finished (``status == "complete"``) and every frequency is done."""
        return self.status == "complete" and bool(np.all(self.done))

    @property
    def frf(self) -> np.ndarray:
        """(F, n_out) complex: the transfer function ``x / P`` (NaN where ``P == 0``).

        For base motion: the absolute displacement per unit base acceleration,
        ``displacement / a_b`` (so ``(i w)^2 frf`` is the transmissibility).
        """
        if self.base is not None:
            return _per_unit(self.displacement, self.base["acceleration"])
        if self.load_spectrum is None:
            return self.response.copy()
        return _per_unit(self.response, self.load_spectrum)

    @property
    def analysis(self) -> str:
        """``"base_motion"`` or ``"point_load"``."""
        return "base_motion" if self.base is not None else "point_load"

    @property
    def omega(self) -> np.ndarray:
        """(F,) angular frequencies, rad/s."""
        return 2.0 * np.pi * self.freqs_hz

    def _base_motion(self, power):
        """(F, 1) base motion ``a_b (i w)^(power - 2)`` (0 for a point load; NaN-free at 0 Hz only if 0)."""
        if self.base is None:
            return np.zeros((self.n_freqs, 1), dtype=np.complex128)
        a = np.asarray(self.base["acceleration"], dtype=np.complex128)
        iw = 1j * self.omega
        with np.errstate(divide="ignore", invalid="ignore"):
            motion = a * iw ** (power - 2) if power >= 2 else np.where(a == 0, 0, a / iw ** (2 - power))
        return motion[:, None] * np.asarray(self.base["influence"])[None, :]

    @property
    def relative_displacement(self) -> np.ndarray:
        """(F, n_out) displacement relative to the base's quasi-static motion (``response``)."""
        return self.response

    @property
    def displacement(self) -> np.ndarray:
        """(F, n_out) absolute displacement (``response + r u_b``; infinite at 0 Hz under base motion)."""
        return self.response + self._base_motion(0)

    @property
    def velocity(self) -> np.ndarray:
        """(F, n_out) absolute velocity ``i w y + r v_b``."""
        return 1j * self.omega[:, None] * self.response + self._base_motion(1)

    @property
    def acceleration(self) -> np.ndarray:
        """(F, n_out) absolute acceleration ``-w^2 y + r a_b``."""
        return -(self.omega[:, None] ** 2) * self.response + self._base_motion(2)

    @property
    def transmissibility(self) -> np.ndarray:
        """(F, n_out) output acceleration / base acceleration (base motion only).

        Raises
        ------
        ValueError
            For a point-load result.
        """
        if self.base is None:
            raise ValueError("transmissibility needs a base-motion sweep (Model.with_base / [base] / --base)")
        return _per_unit(self.acceleration, self.base["acceleration"])

    @property
    def interface_force(self) -> np.ndarray | None:
        """(F, 2) complex force the base applies to the structure, x and y (None for a point load)."""
        return None if self.base is None else self.base["interface_force"]

    @property
    def labels(self) -> list[str]:
        """A label per output DOF, e.g. ``"node 12 y"``."""
        nodes = self.outputs.get("node", np.arange(self.n_out))
        dirs = self.outputs.get("direction", np.zeros(self.n_out, dtype=np.int8))
        return [f"node {int(n)} {'xy'[int(d)] if int(d) in (0, 1) else '?'}" for n, d in zip(nodes, dirs)]

    @property
    def missing(self) -> np.ndarray:
        """(m,) int64 indices of the frequencies not done."""
        return np.flatnonzero(~np.asarray(self.done, dtype=bool))



def _per_unit(x, a) -> np.ndarray:
    """``x / a`` row by row (NaN where ``a == 0``)."""
    a = np.asarray(a)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a != 0, x / np.where(a != 0, a, 1), np.nan + 0j)


def _normalise_outputs(outputs) -> dict:
    """Outputs dict -> node, direction, dof (n_out,), xy (n_out, 2); fill what follows from dof."""
    if outputs is None:
        raise ValueError("outputs is required: a dict with at least 'dof' (or 'node' and 'direction')")
    if not isinstance(outputs, dict):
        raise TypeError(f"outputs must be a dict with keys node, direction, dof, xy (got {type(outputs).__name__})")
    unknown = set(outputs) - {"node", "direction", "dof", "xy"}
    if unknown:
        raise ValueError(f"unknown outputs keys {sorted(unknown)}; expected node, direction, dof, xy")
    arrays = {k: np.asarray(v) for k, v in outputs.items() if v is not None}
    if "dof" in arrays:
        dof = arrays["dof"].astype(np.int64).ravel()
        node = arrays["node"].astype(np.int64).ravel() if "node" in arrays else dof // 2
        direction = arrays["direction"].astype(np.int8).ravel() if "direction" in arrays else (dof % 2).astype(np.int8)
    elif "node" in arrays and "direction" in arrays:
        node = arrays["node"].astype(np.int64).ravel()
        direction = arrays["direction"].astype(np.int8).ravel()
        dof = 2 * node + direction
    else:
        raise ValueError("outputs needs 'dof' or both 'node' and 'direction'")
    n_out = dof.shape[0]
    if n_out == 0:
        raise ValueError("outputs selects no DOF (n_out = 0)")
    for name, arr in (("node", node), ("direction", direction)):
        if arr.shape != (n_out,):
            raise ValueError(f"outputs[{name!r}] has {arr.shape[0]} entries; outputs['dof'] has {n_out}")
    if np.any(dof < 0) or np.any(node < 0) or np.any((direction != 0) & (direction != 1)):
        raise ValueError("outputs: node and dof must be >= 0 and direction 0 (x) or 1 (y)")
    if "xy" in arrays:
        xy = arrays["xy"].astype(np.float64)
        if xy.shape != (n_out, 2):
            raise ValueError(f"outputs['xy'] must have shape ({n_out}, 2) (has {xy.shape})")
    else:
        xy = np.full((n_out, 2), np.nan)
    return {"node": node, "direction": direction, "dof": dof, "xy": xy}
