"""Run the benchmark suite (benchmarks/bench_*.py) and write JSON + Markdown results.

The same as ``python -m benchmarks`` in a source checkout: each ``bench_<topic>.py`` module runs in
its own process (a failure is reported, not fatal); results go to
``benchmarks/results/results.json`` and ``results.md`` with the plots, or to ``-o DIR``.
``--quick`` (default) takes a few minutes. Exit code 1 if any benchmark failed. The suite
ships with the source repository, not with the installed package: without a checkout
(``benchmarks/`` next to the femfreq package or in the current folder) the command says so
and exits with code 2.

Examples:
  femfreq bench --quick                       # a few minutes; results in benchmarks/results
  femfreq bench --only solvers,fast -o /tmp/bench
  femfreq bench --list
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

_NO_SUITE = (
    "femfreq: error: the benchmark suite ships with the femfreq source repository, not with the "
    "installed package; in a checkout run `python -m benchmarks --quick` (or `femfreq bench`)"
)


def add_args(parser) -> None:
    """Register the options of ``femfreq bench`` (and ``python -m benchmarks``)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false", help="quick sizes, a few minutes (default)")
    mode.add_argument("--full", dest="full", action="store_true", help="full sizes (long)")
    parser.set_defaults(full=False)
    parser.add_argument("--only", metavar="A,B", help="comma-separated topics to run (default: all)")
    parser.add_argument("-o", "--output", dest="out", metavar="DIR", help="output folder (default: benchmarks/results)")
    parser.add_argument("--out", dest="out", help=argparse.SUPPRESS)  # the former spelling
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop one benchmark after S seconds (default 900 with --quick, none with --full)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--package", metavar="DIR", help="benchmark package folder (default: the repository's benchmarks/)")


def run(args) -> int:
    """Run ``python -m benchmarks`` of the checkout with the same options; its exit code (2 without a checkout)."""
    suite = _suite_dir()
    if suite is None:
        print(_NO_SUITE, file=sys.stderr)
        return 2
    sys.stdout.flush()
    # run in the checkout, so that `-m benchmarks` (and its femfreq) is the checkout's, as by hand
    return subprocess.run([sys.executable, "-m", "benchmarks", *_argv(args)], cwd=suite.parent).returncode


def _suite_dir() -> Path | None:
    """The checkout's ``benchmarks/`` (next to the femfreq package, else in the current folder), or None."""
    for parent in (Path(__file__).resolve().parents[2], Path.cwd()):
        suite = parent / "benchmarks"
        if (suite / "__main__.py").is_file() and (suite / "_report.py").is_file():
            return suite
    return None


def _argv(args) -> list[str]:
    """The parsed options as ``python -m benchmarks`` arguments (paths made absolute)."""
    argv = ["--full" if args.full else "--quick"]
    if args.only:
        argv += ["--only", args.only]
    if args.out:
        argv += ["-o", os.path.abspath(args.out)]
    if args.timeout is not None:
        argv += ["--timeout", repr(args.timeout)]
    if args.list:
        argv.append("--list")
    if args.package:
        argv += ["--package", os.path.abspath(args.package)]
    return argv
