"""The per-frequency method codes stored in a result file's ``/method`` dataset.

One enum, one meaning text: the writer stores :data:`MEANING` as the dataset's
``meaning`` attribute, so a reader of the raw file (h5py, MATLAB) sees every code
the file can hold.

A skipped frequency (singular ``A(omega)``, e.g. 0 Hz on a free-free model, with
``skip_singular``) is *done*: its row is final (response and residuals NaN), so a
resumed sweep does not try it again.

>>> from femfreq.codes import Method
>>> Method.FAST, int(Method.SKIPPED), Method(1).label
(<Method.FAST: 2>, 3, 'direct')
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Method", "MEANING"]


class Method(IntEnum):
    """How one frequency of a sweep was solved."""

    PENDING = 0  #: not solved yet
    DIRECT = 1  #: a sparse direct solve of the full system
    FAST = 2  #: the certified reduced-order model (true residual checked)
    SKIPPED = 3  #: singular ``A(omega)``, skipped on request: response and residuals NaN

    @property
    def label(self) -> str:
        """Short lower-case name (``"direct"``, ``"fast"``, ...)."""
        return _LABELS[self]


_LABELS = {
    Method.PENDING: "not done",
    Method.DIRECT: "direct",
    Method.FAST: "fast",
    Method.SKIPPED: "skipped",
}

#: the ``meaning`` attribute of ``/method`` in a result file: every code it can hold
MEANING = "; ".join(
    f"{int(m)} {text}"
    for m, text in (
        (Method.PENDING, "not done"),
        (Method.DIRECT, "direct solve"),
        (Method.FAST, "fast (certified reduced-order model)"),
        (Method.SKIPPED, "skipped: singular at this frequency, response NaN"),
    )
)
