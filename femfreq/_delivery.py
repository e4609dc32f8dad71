"""Handles that stand for a System on a dask worker: it arrives as a few hundred bytes.

A handle (:class:`femfreq.model.recipe.RecipeHandle`: build it from the model's recipe;
:class:`femfreq.execute._shared_file.FileHandle`: load it from a file on this machine)
is made ready on every worker first (:meth:`Delivery.prebuild`, whose errors reach the
client as a task's would), then its :meth:`~Delivery.stand_in` is broadcast: it unpickles
as the System the worker made ready. A System made this way pickles as its handle, so
copies between workers stay small too.
"""

from __future__ import annotations

import threading
import time

#: Systems made ready ahead of their broadcast (:meth:`Delivery.prebuild`), by token
_READY: dict = {}
_LOCK = threading.Lock()


class Delivery:
    """Base of a handle: subclasses have a ``token`` (the System's) and :meth:`build`."""

    token: str

    def build(self):
        """The System, made here (and marked to travel as this handle)."""
        raise NotImplementedError

    def prebuild(self) -> float:
        """Make the System in this process ahead of its broadcast; seconds taken."""
        t0 = time.perf_counter()
        system = self.build()
        with _LOCK:
            _READY[self.token] = system
        return time.perf_counter() - t0

    def rebuild(self):
        """The System this handle stands for: the one :meth:`prebuild` left, else made now."""
        with _LOCK:
            system = _READY.pop(self.token, None)
        return system if system is not None else self.build()

    def forget(self) -> None:
        """Drop what :meth:`prebuild` left in this process (the sweep took another route)."""
        with _LOCK:
            _READY.pop(self.token, None)

    def stand_in(self) -> "_StandIn":
        """An object that unpickles as the System (what the client scatters)."""
        return _StandIn(self)


class _StandIn:
    """Pickles as :meth:`Delivery.rebuild`: scattered, it lands on the worker as the System."""

    def __init__(self, handle: Delivery):
        self.handle = handle

    def __reduce__(self):
        return self.handle.rebuild, ()
