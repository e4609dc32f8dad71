"""The System through a file on this machine, for the workers of an embedded cluster.

An upload goes client -> scheduler -> one worker -> the next, pickled and unpickled at
every hop, one after the other. Workers on the client's own machine can instead read
one file the client wrote, all at once: :class:`FileHandle` is what they receive (a
few hundred bytes), and what copies between workers travel as.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Systems loaded ahead of the broadcast (:meth:`FileHandle.preload`), by token
_LOADED: dict = {}
_LOCK = threading.Lock()


class FileHandle:
    """A System pickled to ``path`` by :func:`write_system`; unpickles as that System.

    Parameters
    ----------
    path : str
        The file, on this machine.
    token : str
        The System's :attr:`~femfreq.system.System.token`, checked on loading.
    """

    def __init__(self, path: str, token: str):
        self.path, self.token = str(path), token

    def __repr__(self):
        return f"FileHandle({self.path!r})"

    def load(self):
        """Read the System from the file; a ``ValueError`` if it is another System."""
        with open(self.path, "rb") as f:
            system = pickle.load(f)
        if getattr(system, "token", None) != self.token:
            raise ValueError(f"{self.path} holds another system (token {getattr(system, 'token', None)!r}, "
                             f"expected {self.token!r})")
        object.__setattr__(system, "_via", self)  # copies to other workers travel as this handle
        return system

    def preload(self) -> float:
        """Load the System in this process ahead of its broadcast; seconds taken."""
        t0 = time.perf_counter()
        system = self.load()
        with _LOCK:
            _LOADED[self.token] = system
        return time.perf_counter() - t0

    def rebuild(self):
        """The System this handle stands for: the one :meth:`preload` left, else loaded now."""
        with _LOCK:
            system = _LOADED.pop(self.token, None)
        return system if system is not None else self.load()

    def forget(self) -> None:
        """Drop what :meth:`preload` left in this process (the sweep took another route)."""
        with _LOCK:
            _LOADED.pop(self.token, None)

    def stand_in(self) -> "_StandIn":
        """An object that unpickles as the System (what the client scatters)."""
        return _StandIn(self)


class _StandIn:
    """Pickles as :meth:`FileHandle.rebuild`: scattered, it lands on the worker as the System."""

    def __init__(self, handle: FileHandle):
        self.handle = handle

    def __reduce__(self):
        return self.handle.rebuild, ()


def write_system(system, directory) -> FileHandle:
    """Pickle ``system`` into ``directory`` (written beside, then renamed); its handle."""
    path = Path(directory) / f"system-{system.token}.pickle"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                pickle.dump(system, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return FileHandle(str(path), system.token)
