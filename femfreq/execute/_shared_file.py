"""The System through a file on this machine, for the workers of an embedded cluster.

An upload goes client -> scheduler -> one worker -> the next, pickled and unpickled at
every hop, one after the other. Workers on the client's own machine can instead read
one file the client wrote, all at once: :class:`FileHandle` is what they receive (a
few hundred bytes), and what copies between workers travel as.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from .._delivery import Delivery


class FileHandle(Delivery):
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

    def build(self):
        """Read the System from the file; a ``ValueError`` if it is another System."""
        with open(self.path, "rb") as f:
            system = pickle.load(f)
        if getattr(system, "token", None) != self.token:
            raise ValueError(f"{self.path} holds another system (token {getattr(system, 'token', None)!r}, "
                             f"expected {self.token!r})")
        object.__setattr__(system, "_via", self)  # copies to other workers travel as this handle
        return system


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
