"""One writer per result file: an OS lock (``flock``) on ``<path>.lock`` held while writing.

HDF5's own file lock does not cover a writer that builds a new file in a temporary and
renames it into place, so two sweeps on one output could each replace the other's file.
The lock file next to the output is locked before the output is checked or touched and
released (and removed) when the writer closes. The kernel drops the lock of a killed
process, so a stale ``.lock`` file left by SIGKILL never blocks a rerun.
"""

from __future__ import annotations

import fcntl
import os

from ..errors import OutputLockedError

__all__ = ["OutputLock"]


class OutputLock:
    """An exclusive, non-blocking lock on ``<path>.lock`` for this process.

    Raises
    ------
    femfreq.errors.OutputLockedError
        Another process holds the lock (the message names the output and that PID).
    """

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self.lock_path = self.path + ".lock"
        self._fd = None
        while self._fd is None:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (PID {holder})" if holder else ""
                raise OutputLockedError(
                    f"result file {self.path!r} is being written by another femfreq process{who}; "
                    f"wait for it to end or choose another output (lock: {self.lock_path})",
                    path=self.path, pid=holder,
                ) from None
            # the holder before us may have removed the lock file after we opened it: then
            # our lock is on an orphaned inode, so start again on the current file
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
            else:
                os.close(fd)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_path)  # while still locked: nobody can hold a lock on it now
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _read_pid(fd) -> int | None:
    """The PID a lock holder wrote into the lock file, if readable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "ignore").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
