"""Plot a result file: FRF, time response, residuals, load and mesh PNGs.

Examples:
  femfreq plot satellite.h5                         # frf, time, residual next to the file
  femfreq plot satellite.h5 -o plots --what frf,time,residual,load,mesh
  femfreq plot sat.h5 --what mesh --model models/satellite.toml --level 3
"""

from __future__ import annotations

import argparse
import os
import sys


def add_args(parser):
    from femfreq.plots import PLOTS

    parser.add_argument("results", metavar="RESULTS.h5", help="a result file written by femfreq sweep")
    parser.add_argument("-o", "--output", dest="output_dir", metavar="DIR",
                        help="where to write the figures (default: next to RESULTS.h5)")
    parser.add_argument("--output-dir", dest="output_dir", help=argparse.SUPPRESS)  # the former spelling
    parser.add_argument("--what", default=None, metavar="LIST",
                        help=f"comma-separated figures among {','.join(PLOTS)} (default frf,time,residual)")
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="image format (default png)")
    parser.add_argument("--model", help="model name or .toml for the mesh figure (default: the one in the file)")
    parser.add_argument("--level", type=int, help="mesh level for the mesh figure (default: the one in the file)")


def _model_of(result, name, level):
    """The model a result was computed from (for the mesh figure)."""
    from femfreq.model import load_model

    info = result.model or {}
    if name is None:
        source = info.get("source_file")
        name = source if source and os.path.exists(source) else (result.attrs.get("model_name") or info.get("name"))
    if name is None:
        raise ValueError(f"{result.path}: no model recorded in the file; pass --model")
    if level is None:
        level = info.get("source_level")
    return load_model(name, level=None if level is None else int(level))


def run(args) -> int:
    from femfreq import plots
    from femfreq.results import read_results

    result = read_results(args.results)
    what = args.what
    if what is None:
        what = "frf,time,residual" if result.t is not None else "frf,residual"
    wanted = [w.strip() for w in what.split(",") if w.strip()]
    model = _model_of(result, args.model, args.level) if "mesh" in wanted else None
    directory = args.output_dir or os.path.dirname(os.path.abspath(args.results))
    if not result.complete:
        print(f"femfreq: note: {args.results} is partial ({int(result.done.sum())} of {result.n_freqs} "
              "frequencies done)", file=sys.stderr)
    for path in plots.plot_all(result, directory, what=wanted, model=model, fmt=args.format):
        print(path)
    return 0
