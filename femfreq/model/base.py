"""Enforced base motion: the :class:`Base` of a model, its influence vector and modal effective mass.

The base is a set of constrained nodes that move together along a direction with a
prescribed acceleration ``a_b(w)``. The sweep solves for the motion relative to the
quasi-static motion of the base (``docs/vibration.md``, "Base excitation")::

    x_f = y + r u_b,   A(w) y = -(M r_full)_f (1 + alpha / (i w)) a_b(w)

so the solvers see an ordinary load vector ``b = -(M r_full)_f`` and a load spectrum
``P(w) = a_b(w) (1 + alpha / (i w))``. :func:`base_coupling` builds that vector and the
:class:`femfreq.system.BaseCoupling` the chunks use for the interface force;
:func:`effective_mass` gives Nastran's MEFFMASS table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import _validate as v
from ..system import BaseCoupling

__all__ = ["Base", "EffectiveMass", "base_coupling", "effective_mass", "parse_direction"]

_AXES = {"x": (1.0, 0.0), "y": (0.0, 1.0)}


def parse_direction(value) -> np.ndarray:
    """A unit (2,) direction from ``"x"``, ``"y"``, ``"vx,vy"`` or a pair of numbers.

    Raises
    ------
    ValueError
        Not one of those forms, non-finite, or zero.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _AXES:
            return np.array(_AXES[text])
        parts = text.split(",")
        try:
            value = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"base direction {value!r}: give x, y or 'vx,vy' (e.g. '0.6,0.8')") from None
    try:
        d = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"base direction must be x, y or two numbers (got {value!r})") from None
    if d.shape != (2,) or not np.all(np.isfinite(d)):
        raise ValueError(f"base direction must be two finite numbers [vx, vy] (got {value!r})")
    norm = float(np.hypot(*d))
    if norm == 0:
        raise ValueError("base direction [0, 0] has no direction")
    return d / norm


@dataclass(frozen=True, eq=False)
class Base:
    """The driven base of a model: which constrained nodes, along which direction, how hard.

    Parameters
    ----------
    direction : "x", "y", "vx,vy" or (2,) float
        Direction of the base motion (normalised to unit length).
    nodes : (k,) int array, optional
        The driven nodes, each with at least one fixed DOF (default: every node with a
        fixed DOF). Their fixed DOF move with the base; the other fixed DOF stay at 0.
    acceleration : float, optional
        The base acceleration spectrum ``a_b(w)`` (constant; default 1: transfer functions
        per unit base acceleration).
    """

    direction: np.ndarray
    nodes: np.ndarray | None = None
    acceleration: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "direction", parse_direction(self.direction))
        if self.nodes is not None:
            object.__setattr__(self, "nodes", np.unique(np.asarray(self.nodes, dtype=np.int64).ravel()))
        object.__setattr__(self, "acceleration", v.as_float("base acceleration", self.acceleration))

    def describe(self) -> dict:
        """Plain types for result files: ``direction`` and ``acceleration``."""
        return {"direction": [float(c) for c in self.direction], "acceleration": self.acceleration}


def driven_dofs(model, base: Base) -> np.ndarray:
    """Full fixed DOF that move with the base (the fixed DOF of its nodes)."""
    fixed = model.fixed_dofs
    constrained = np.unique(fixed // 2)
    nodes = constrained if base.nodes is None else base.nodes
    bad = nodes[~np.isin(nodes, constrained)]
    if bad.size:
        raise ValueError(f"base node {int(bad[0])} has no fixed DOF; the base must be among the constrained nodes")
    dofs = fixed[np.isin(fixed // 2, nodes)]
    if dofs.size == 0:
        raise ValueError("the base selects no constrained node")
    return dofs


def influence(model, base: Base) -> np.ndarray:
    """(n_dof,) ``r_full``: the motion of every DOF per unit base displacement.

    On the driven DOF it is the base direction; on the other fixed DOF 0; on the free
    DOF the quasi-static motion ``r = -K_ff^-1 K_fB r_B``. When the base is a rigid
    translation compatible with every constraint (no other fixed DOF has a component
    along the direction), that is the rigid-body vector (the direction at every free
    DOF), taken exactly, without a solve.
    """
    d = base.direction
    driven = driven_dofs(model, base)
    r_full = np.zeros(model.n_dof)
    r_full[driven] = d[driven % 2]
    others = np.setdiff1d(model.fixed_dofs, driven)
    free = model.free_dofs
    if np.all(d[others % 2] == 0):
        r_full[free] = d[free % 2]
        return r_full
    import scipy.sparse.linalg as sla

    K_full, _ = model.full_matrices()
    K = sp.csr_matrix(K_full)
    K_ff = K[free][:, free].tocsc()
    r_full[free] = sla.spsolve(K_ff, -(K[free] @ r_full))
    return r_full


def base_coupling(model, base: Base, output_dofs, K, C, M):
    """The load vector and the :class:`~femfreq.system.BaseCoupling` of a base-driven model.

    Parameters
    ----------
    model : Model
    base : Base
    output_dofs : (n_out,) int64
        Reduced output DOF.
    K, C, M : reduced matrices of the model.

    Returns
    -------
    b : (n_free,) float64
        ``-(M r_full)`` on the free DOF.
    coupling : BaseCoupling
    """
    r_full = influence(model, base)
    driven = driven_dofs(model, base)
    K_full, M_full = (sp.csr_matrix(A) for A in model.full_matrices())
    alpha, beta = model.damping.alpha, model.damping.beta
    free = model.free_dofs
    b = -(M_full @ r_full)[free]
    # E: sum the driven rows per component (x, y)
    E = sp.csr_matrix((np.ones(driven.size), (driven % 2, np.arange(driven.size))), shape=(2, driven.size))
    K_B, M_B = E @ K_full[driven], E @ M_full[driven]  # (2, n_dof)
    rigid = np.all(base.direction[np.setdiff1d(model.fixed_dofs, driven) % 2] == 0)
    k_r = np.zeros(2) if rigid else np.asarray(K_B @ r_full).ravel()  # K annihilates a rigid translation
    m_r = np.asarray(M_B @ r_full).ravel()
    K_Bf, M_Bf = K_B[:, free].toarray(), M_B[:, free].toarray()
    C_Bf = alpha * M_Bf + beta * K_Bf
    coupled = np.flatnonzero(np.any(K_Bf != 0, axis=0) | np.any(M_Bf != 0, axis=0)).astype(np.int64)
    coupling = BaseCoupling(
        direction=base.direction, n_outputs=int(np.size(output_dofs)), coupled=coupled,
        force_k=K_Bf[:, coupled], force_c=C_Bf[:, coupled], force_m=M_Bf[:, coupled],
        k_r=k_r, c_r=alpha * m_r + beta * k_r, m_r=m_r, alpha=alpha, influence=r_full[free][output_dofs],
    )
    return b, coupling


@dataclass(frozen=True)
class EffectiveMass:
    """Modal effective mass per direction (Nastran MEFFMASS), for the lowest modes.

    Attributes
    ----------
    freqs_hz : (k,) float64
    mass : (k, 2) float64
        ``m_eff = (phi^T M r_d)^2`` for mass-normalised ``phi`` and the rigid translation
        ``r_d`` along x (column 0) and y (column 1) with the base (all constrained nodes) held.
    moving_mass : (2,) float64
        The mass that moves with a rigid base translation (free DOF only): what the
        effective masses of all modes sum to.
    """

    freqs_hz: np.ndarray
    mass: np.ndarray
    moving_mass: np.ndarray

    @property
    def fraction(self) -> np.ndarray:
        """(k, 2) effective mass / moving mass."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.moving_mass > 0, self.mass / self.moving_mass, 0.0)

    @property
    def cumulative(self) -> np.ndarray:
        """(k, 2) cumulative fraction up to each mode."""
        return np.cumsum(self.fraction, axis=0)

    def table(self) -> str:
        """The MEFFMASS-like text table."""
        lines = [f"{'mode':>4}  {'f (Hz)':>12}  {'m_eff x':>12}  {'m_eff y':>12}  {'frac x':>8}  {'frac y':>8}"
                 f"  {'cum x':>8}  {'cum y':>8}"]
        fr, cu = self.fraction, self.cumulative
        for i, f in enumerate(self.freqs_hz):
            lines.append(f"{i + 1:>4}  {f:>12.6f}  {self.mass[i, 0]:>12.6g}  {self.mass[i, 1]:>12.6g}  "
                         f"{fr[i, 0]:>8.4f}  {fr[i, 1]:>8.4f}  {cu[i, 0]:>8.4f}  {cu[i, 1]:>8.4f}")
        lines.append(f"moving mass: x {self.moving_mass[0]:.6g}, y {self.moving_mass[1]:.6g}")
        return "\n".join(lines)


def effective_mass(model, k: int = 10) -> EffectiveMass:
    """Modal effective masses of the ``k`` lowest modes along x and y.

    Parameters
    ----------
    model : Model
    k : int
        Number of modes (:meth:`Model.modes`).

    Returns
    -------
    EffectiveMass

    Notes
    -----
    ``m_eff,j = (phi_j^T M_ff r_d)^2`` with ``r_d`` the unit translation along ``d`` on
    the free DOF (the driven nodes held: Nastran's MEFFMASS with the SUPORT at the base).
    Summed over all modes it equals ``r_d^T M_ff r_d``, the moving mass (for lumped mass:
    the total mass minus the mass on the constrained DOF along ``d``).
    """
    freqs, shapes = model.modes(k)
    _, _, M, _ = model.matrices()
    free = model.free_dofs
    R = np.zeros((free.size, 2))
    R[free % 2 == 0, 0] = 1.0
    R[free % 2 == 1, 1] = 1.0
    MR = M @ R
    gamma = shapes[free].T @ MR  # participation factors, (k, 2)
    return EffectiveMass(freqs_hz=freqs, mass=gamma**2, moving_mass=np.einsum("ij,ij->j", R, MR))
