"""Where the sweep runs: in this process, or on a dask cluster.

The chunk task (:mod:`~femfreq.execute.task`: :func:`solve_chunk`, :class:`ChunkResult`)
runs either one chunk after another here (:mod:`~femfreq.execute.serial`) or on dask:

- :mod:`~femfreq.execute.connect` opens the client (:func:`open_client`) on a
  :class:`~femfreq.options.Local`, :class:`~femfreq.options.Scheduler`,
  :class:`~femfreq.options.SSH` or :class:`~femfreq.options.JobQueue` cluster;
- :mod:`~femfreq.execute.ssh` starts clusters over SSH from a host file;
- :mod:`~femfreq.execute.security` makes the TLS credentials;
- :mod:`~femfreq.execute.on_dask` scatters the System once and runs the chunks
  (:func:`run_on_dask`).

See ``docs/cluster.md`` for the pitfalls this avoids (replicas dropped by the Active
Memory Manager, scattered data lost with a worker, open ``dask-ssh`` clusters).
The names below are imported on first use, so that importing this package loads
neither dask nor the SSH module (the SSH processes run ``python -m femfreq.execute.ssh``).
"""

from __future__ import annotations

import importlib

__all__ = [
    "KEEP_REPLICAS_CONFIG",
    "MALLOC_ENV",
    "WORKER_CONFIG",
    "WORKER_ENV_SETTING",
    "ChunkResult",
    "dashboard_link",
    "make_security",
    "open_client",
    "read_hostfile",
    "run_on_dask",
    "run_serial",
    "solve_chunk",
]

_HOMES = {
    "KEEP_REPLICAS_CONFIG": "_common",
    "MALLOC_ENV": "_common",
    "WORKER_CONFIG": "_common",
    "WORKER_ENV_SETTING": "_common",
    "dashboard_link": "_common",
    "make_security": "security",
    "open_client": "connect",
    "read_hostfile": "ssh",
    "run_on_dask": "on_dask",
    "run_serial": "serial",
    "ChunkResult": "task",
    "solve_chunk": "task",
}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
