"""A model's recipe: what builds its System anywhere femfreq is installed, in a few hundred bytes.

:func:`femfreq.model.load_model` records on the :class:`~femfreq.model.Model` it returns
how it was called (the model file, the level, the overrides): :func:`recipe_of` gives it. A
dask sweep then sends the recipe to the workers instead of the System's arrays, and each
worker builds the System itself. Whether the worker's System is the client's is checked,
not assumed: the worker compares :meth:`femfreq.system.System.digest` (the hashes a
result file's fingerprint holds) with the client's and refuses a System that differs (a
different Triangle, femfreq or model file on that host).

A System a worker built this way keeps its :class:`RecipeHandle` and pickles as it: when
dask copies it to another worker, a few hundred bytes travel and the receiver builds (or
takes the copy it already built).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .._delivery import Delivery
from ..errors import RecipeMismatchError
from ..system import System
from .toml import load_model

__all__ = ["Recipe", "RecipeHandle", "RecipeMismatchError", "recipe_of"]

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Recipe:
    """How :func:`~femfreq.model.load_model` was called: ``load_model(model, level=level, **overrides)``.

    Parameters
    ----------
    model : str
        The name of a shipped model, or the absolute path of the model file.
    level : int or None
        The mesh level asked for (None: the file's default).
    overrides : tuple of (name, value)
        The keyword overrides, sorted by name (None values left out).

    Examples
    --------
    >>> from femfreq.model import load_model
    >>> from femfreq.model.recipe import recipe_of
    >>> recipe = recipe_of(load_model("rod", level=2, g=0.01))
    >>> recipe
    Recipe(model='rod', level=2, overrides=(('g', 0.01),))
    >>> recipe.build().n_free == load_model("rod", level=2).n_free
    True
    """

    model: str
    level: int | None = None
    overrides: tuple = ()

    def with_overrides(self, **overrides) -> "Recipe":
        """This recipe with more overrides (e.g. ``g``)."""
        merged = dict(self.overrides)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return Recipe(self.model, self.level, tuple(sorted(merged.items())))

    def build(self):
        """The :class:`~femfreq.model.Model` (read from the file again)."""
        return load_model(self.model, level=self.level, **dict(self.overrides))

    def handle(self, token: str, digest: dict):
        """What a worker needs to build the System of ``token`` and check it against ``digest``
        (:class:`femfreq.model.recipe.RecipeHandle`)."""
        return RecipeHandle(self, token, dict(digest))


def recipe_of(model) -> Recipe | None:
    """The recipe of a Model read by :func:`~femfreq.model.load_model` (None for any other Model).

    A Model derived with :func:`dataclasses.replace` (e.g. :meth:`~femfreq.model.Model.with_base`)
    has none: the file alone would not build it.
    """
    loaded_as = model.__dict__.get("_loaded_as")
    if loaded_as is None:
        return None
    name, level, overrides = loaded_as
    return Recipe(name, level, tuple(sorted((k, v) for k, v in overrides.items() if v is not None)))


@dataclass(frozen=True, eq=False)
class RecipeHandle(Delivery):
    """A recipe with the client's System token and digest: what workers receive instead of the arrays.

    Parameters
    ----------
    recipe : Recipe
    token : str
        The client System's :attr:`~femfreq.system.System.token` (keys the solver caches).
    digest : dict
        The client System's :meth:`~femfreq.system.System.digest`.
    """

    recipe: Recipe
    token: str
    digest: dict

    def build(self) -> System:
        """Build the System here and check it; :class:`RecipeMismatchError` if it differs."""
        t0 = time.perf_counter()
        try:
            system = self.recipe.build().system()
        except Exception as exc:  # noqa: BLE001 - any failure to build means: not this way
            raise RecipeMismatchError(f"could not build the system from {self.recipe} here: {exc}") from exc
        ours = system.digest()
        differ = [key for key, value in self.digest.items() if ours.get(key) != value]
        if differ:
            raise RecipeMismatchError(
                f"the system built from {self.recipe} here differs from the client's in {', '.join(differ)} "
                "(a different femfreq, Triangle or model file on this host?)"
            )
        object.__setattr__(system, "token", self.token)
        object.__setattr__(system, "_via", self)  # copies to other workers travel as this handle
        logger.info("built the system %s from %s in %.2f s", system.name, self.recipe, time.perf_counter() - t0)
        return system
