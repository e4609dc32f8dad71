"""The result file's format name and version, and the ``/chunks`` table's row type."""

from __future__ import annotations

import numpy as np

FORMAT = "femfreq-results"
FORMAT_VERSION = 1
_WORKER_LEN = 64
_METHOD_NAMES = {0: "not done", 1: "direct", 2: "fast"}


def _chunk_dtype():
    import h5py

    return np.dtype(
        [
            ("start", "<i8"),
            ("count", "<i8"),
            ("worker", h5py.string_dtype("utf-8", _WORKER_LEN)),
            ("t_start", "<f8"),
            ("t_end", "<f8"),
        ]
    )
