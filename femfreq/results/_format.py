"""The result file's format name and version, and the ``/chunks`` table's row type.

Version 4 stores the analysis kind as the root attribute ``analysis`` (``"point_load"``
or ``"base_motion"``); a base-motion file also has ``base_direction`` and the ``/base``
group (``acceleration``, ``influence``, ``interface_force``). Files without ``analysis``
are point-load sweeps. Version 3 adds the ``/fingerprint`` group (what determines the answer: hashes of the
matrices and load vector, g, method, tol, solver; a resume must match it), stores the
``status`` and ``finished`` attributes as variable-length UTF-8 strings (version 1 and 2:
fixed-size bytes) and trims ``/chunks`` to the chunks that ran when the writer closes.
Version 2 stores :data:`femfreq.codes.MEANING` (every code, including 3 skipped) as the
``meaning`` attribute of ``/method`` and counts a skipped frequency as done. Version 1
files have the same datasets (their ``meaning`` lists only 0, 1, 2). All four read
unchanged.
"""

from __future__ import annotations

import numpy as np

FORMAT = "femfreq-results"
FORMAT_VERSION = 4
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
