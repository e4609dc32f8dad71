"""Run the benchmark suite (benchmarks/bench_*.py) and write JSON + Markdown results.

Same as ``python -m benchmarks``: each ``bench_<topic>.py`` module runs in its own process
(a failure is reported, not fatal); results go to ``benchmarks/results/results.json`` and
``results.md`` with the plots, or to ``-o DIR``. ``--quick`` (default) takes a few minutes.
Exit code 1 if any benchmark failed.
"""

from __future__ import annotations

from femfreq.calibrate import _report


def add_args(parser) -> None:
    """Register the options of ``femfreq bench``."""
    _report.add_args(parser)


def run(args) -> int:
    """Run the suite; return 0 if every benchmark passed, 1 otherwise."""
    return _report.run_from_args(args)
