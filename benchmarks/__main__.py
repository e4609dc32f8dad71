"""Run the femfreq benchmark suite: ``python -m benchmarks [--quick|--full] [--only a,b] [-o DIR]``.

Discovers ``benchmarks/bench_*.py``, runs each in its own process (a failure is reported, not
fatal), and writes ``results.json``, ``results.md`` and the plots to ``benchmarks/results``
(or ``-o DIR``). ``femfreq bench`` in a source checkout runs this command; exit code 1 if any
benchmark failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from femfreq._cli.bench import add_args

from . import _report

_HERE = Path(__file__).resolve().parent


def run(args) -> int:
    """Run the suite; print progress and the Markdown; return 0 if every benchmark passed, 1 otherwise."""
    package_dir = Path(args.package) if args.package else _HERE
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


def main(argv=None) -> int:
    """``python -m benchmarks``: the options of ``femfreq bench``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    add_args(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
