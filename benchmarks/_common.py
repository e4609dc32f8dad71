"""What every benchmark module shares: its Markdown report when run alone."""

from __future__ import annotations

import contextlib
import os

#: One BLAS/OpenMP/numba thread per process: the layout of a dask worker on this machine.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


@contextlib.contextmanager
def one_thread_env():
    """Set :data:`ONE_THREAD` in ``os.environ`` (inherited by worker processes started inside), then restore."""
    old = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def markdown(result: dict) -> str:
    """``## name``, the rows as a Markdown table, then the notes."""
    from ._report import table

    return f"## {result['name']}\n\n{table(result['rows'])}\n{result['notes']}\n"


def model_key(name: str = "satellite") -> str:
    """A short hash of a shipped model's files, so cached matrices follow model changes."""
    import hashlib

    from femfreq.model import models_dir

    h = hashlib.sha1()
    for f in sorted(models_dir().glob(f"{name}.*")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]
