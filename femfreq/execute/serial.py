"""The serial runner: the chunks of a sweep, one after another, in this process."""

from __future__ import annotations

from .task import solve_chunk

__all__ = ["run_serial"]


def run_serial(system, tasks, method):
    """Yield the :class:`~femfreq.execute.task.ChunkResult` of each chunk, in order.

    ``tasks`` are ``(index, freqs_hz, load)`` triples. What the solvers keep for the
    next chunk (the factorization, GBs on big models) is freed when the sweep ends,
    however it ends.
    """
    from ..solvers import clear_caches

    try:
        for index, freqs, load in tasks:
            yield solve_chunk(system, index, freqs, load, method)
    finally:
        clear_caches()
