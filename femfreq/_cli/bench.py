"""Run the benchmark suite (benchmarks/bench_*.py) and write JSON + Markdown results.

Same as ``python -m benchmarks``: each ``bench_<topic>.py`` module runs in its own process
(a failure is reported, not fatal); results go to ``benchmarks/results/results.json`` and
``results.md`` with the plots, or to ``-o DIR``. ``--quick`` (default) takes a few minutes.
Exit code 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from femfreq.calibrate import _report


def add_args(parser) -> None:
    """Register the options of ``femfreq bench`` (and ``python -m benchmarks``)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false", help="quick sizes, a few minutes (default)")
    mode.add_argument("--full", dest="full", action="store_true", help="full sizes (long)")
    parser.set_defaults(full=False)
    parser.add_argument("--only", metavar="A,B", help="comma-separated topics to run (default: all)")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder (default: benchmarks/results)")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop one benchmark after S seconds (default 900 with --quick, none with --full)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--package", metavar="DIR", help="benchmark package folder (default: the repository's benchmarks/)")


def run(args, *, package_dir=None) -> int:
    """Run the suite; print progress and the Markdown; return 0 if every benchmark passed, 1 otherwise."""
    package_dir = Path(args.package or package_dir or _report.default_package_dir())
    if args.list:
        print("\n".join(_report.discover(package_dir)))
        return 0
    timeout = args.timeout if args.timeout is not None else (None if args.full else 900.0)
    report = _report.run_suite(
        package_dir, quick=not args.full, only=args.only, out_dir=args.out, timeout=timeout,
        echo=lambda line: print(line, flush=True),
    )
    print(Path(report["markdown"]).read_text())
    print(f"wrote {report['json']} and {report['markdown']}")
    return 0 if all(b["status"] == "ok" for b in report["benchmarks"]) else 1


def main(argv=None, *, package_dir=None) -> int:
    """``python -m benchmarks``: the same options as ``femfreq bench``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    add_args(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, package_dir=package_dir)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
