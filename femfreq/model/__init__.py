"""Rod models: nodes, rods, material, constraints, load and outputs -> K, C, M, b.

A :class:`Model` holds a planar rod structure on the *full* DOF (node ``i`` has
DOF ``2 i`` for x and ``2 i + 1`` for y) together with the fixed DOF, the load
vector and the output DOF. :meth:`Model.matrices` assembles ``K`` and ``M`` with
:mod:`femfreq.model.rods`, eliminates the fixed DOF and forms ``C = alpha M + beta K``;
:meth:`Model.system` wraps them in a :class:`femfreq.system.System`.

:func:`load_model` reads the TOML model format of ``docs/architecture.md`` (or a
model shipped with femfreq, by name: see :func:`models_dir`).
"""

from .base import Base, EffectiveMass
from .model import Damping, LoadHistory, Model
from .selectors import fixed_dofs_from, load_vector, output_dofs_from, select_nodes
from .toml import load_model, models_dir, shipped_models

__all__ = [
    "Base",
    "EffectiveMass",
    "Damping",
    "LoadHistory",
    "Model",
    "select_nodes",
    "fixed_dofs_from",
    "load_vector",
    "output_dofs_from",
    "load_model",
    "models_dir",
    "shipped_models",
]
