"""Run the femfreq benchmark suite: ``python -m benchmarks [--quick|--full] [--only a,b] [-o DIR]``.

Discovers ``benchmarks/bench_*.py``, runs each in its own process (a failure is reported, not
fatal), and writes ``results.json``, ``results.md`` and the plots to ``benchmarks/results``
(or ``-o DIR``). ``femfreq bench`` is the same command.
"""

import sys
from pathlib import Path

from femfreq._cli.bench import main

if __name__ == "__main__":
    sys.exit(main(package_dir=Path(__file__).resolve().parent))
