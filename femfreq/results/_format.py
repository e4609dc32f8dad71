"""The result file's format name and version, and the ``/chunks`` table's row type.

Version 2 stores :data:`femfreq.codes.MEANING` (every code, including 3 skipped) as the
``meaning`` attribute of ``/method`` and counts a skipped frequency as done. Version 1
files have the same datasets (their ``meaning`` lists only 0, 1, 2) and read unchanged.
"""

from __future__ import annotations

import numpy as np

FORMAT = "femfreq-results"
FORMAT_VERSION = 2
_WORKER_LEN = 64


def _chunk_dtype():
    """Row type of ``/chunks``: start, count, worker (UTF-8, fixed length), t_start, t_end."""
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
