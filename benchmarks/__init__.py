"""femfreq benchmarks: ``python -m benchmarks [--quick|--full]`` runs the suite.

Each ``bench_<topic>.py`` module defines ``run(quick: bool = True) -> dict`` returning
``{"name": str, "rows": [dict, ...], "notes": str}`` and can be run alone as
``python -m benchmarks.bench_<topic> [--full]``.
"""
