"""Every exception femfreq raises on purpose, under one base class :class:`FemfreqError`.

Each class also derives from the built-in error a caller would expect (``ValueError``
for bad input, ``RuntimeError`` for a failure at run time), so ``except ValueError``
keeps working. Errors carry their data as attributes (the file and line, the
frequency, the result path) and survive pickling: an error raised in a task on a
dask worker reaches the caller as the class it was.

>>> from femfreq.errors import FemfreqError, ReadError
>>> err = ReadError("part.poly", 12, "expected 3 fields")
>>> str(err), err.line, isinstance(err, (FemfreqError, ValueError))
('part.poly:12: expected 3 fields', 12, True)
"""

from __future__ import annotations

import math

__all__ = [
    "FemfreqError",
    "ReadError",
    "SingularMatrixError",
    "SolverUnavailableError",
    "PardisoError",
    "ClusterError",
    "SweepInterrupted",
    "OutputLockedError",
    "RecipeMismatchError",
]


class FemfreqError(Exception):
    """Base class of every error femfreq raises on purpose."""


class ReadError(FemfreqError, ValueError):
    """A malformed input file; the message reads ``"path:line: what"``.

    Attributes
    ----------
    path : str
        The file.
    line : int
        1-based line number (0 when the problem is not tied to one line).
    """

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = int(line)
        self.message = str(message)
        super().__init__(f"{path}:{line}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.line, self.message))


class SingularMatrixError(FemfreqError, ValueError):
    """``A(omega)`` is singular (to working precision) at a frequency.

    Attributes
    ----------
    omega : float
        Angular frequency (rad/s) of the failed solve.
    freq_hz : float
        The same in Hz.
    """

    def __init__(self, message: str, omega: float):
        super().__init__(message)
        self.omega = float(omega)
        self.freq_hz = self.omega / (2 * math.pi)

    def __reduce__(self):
        return (type(self), (str(self), self.omega))


class SolverUnavailableError(FemfreqError, ValueError):
    """A solver backend was asked for explicitly but cannot run here."""


class PardisoError(FemfreqError, RuntimeError):
    """PARDISO returned an error code (other than a singular matrix).

    Attributes
    ----------
    code : int
        PARDISO's ``error`` output (see the MKL reference).
    """

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = int(code)

    def __reduce__(self):
        return (type(self), (str(self), self.code))


class RecipeMismatchError(FemfreqError, ValueError):
    """The System a worker built from the model's recipe differs from the client's
    (another triangle or femfreq version on that host): the System is uploaded instead."""


class OutputLockedError(FemfreqError, BlockingIOError):
    """Another process is writing the same result file (one output, one writer).

    Attributes
    ----------
    path : str
        The result file.
    pid : int or None
        The process holding it, when known.
    """

    def __init__(self, message: str, *, path, pid=None):
        super().__init__(message)
        self.path = str(path)
        self.pid = None if pid is None else int(pid)

    def __reduce__(self):
        return (_rebuild_locked, (str(self), self.path, self.pid))


def _rebuild_locked(message, path, pid):
    return OutputLockedError(message, path=path, pid=pid)


class ClusterError(FemfreqError, RuntimeError):
    """The dask cluster cannot be used: it cannot be reached, started, or it went away."""


class SweepInterrupted(ClusterError):
    """The cluster was lost mid-sweep; what was done is kept in the result file.

    Attributes
    ----------
    path : str or None
        The result file holding the frequencies done so far (None for a sweep
        without ``out``: nothing is kept).
    done : int
        Frequencies written to it.
    total : int
        Frequencies of the whole sweep.
    """

    def __init__(self, message: str, *, path=None, done: int = 0, total: int = 0):
        self.path = None if path is None else str(path)
        self.done = int(done)
        self.total = int(total)
        self.message = str(message)
        where = (f"; {self.done} of {self.total} frequencies are in {self.path}: "
                 "rerun with resume=True (--resume)") if self.path else ""
        super().__init__(f"{message}{where}")

    def __reduce__(self):
        return (_rebuild_interrupted, (self.message, self.path, self.done, self.total))


def _rebuild_interrupted(message, path, done, total):
    return SweepInterrupted(message, path=path, done=done, total=total)
