"""Plot a result file: FRF, time response, residuals, load and mesh PNGs.

The FRF figure is log-log: the response per unit input as displacement (receptance
x/P, the default for a point load), velocity or acceleration (--quantity); for a base-
excitation result the default is the acceleration transmissibility a/a_b. --db draws
20 log10|H|; --node/--dof pick the outputs; --model marks the natural frequencies.

Examples:
  femfreq plot satellite.h5                         # frf, time, residual next to the file
  femfreq plot satellite.h5 -o plots --what frf,time,residual,load,mesh
  femfreq plot sat.h5 --what frf --node 296 --quantity acceleration --db -o plots
  femfreq plot sat.h5 --what frf --dof 593,601 --model satellite --modes 20 -o plots
  femfreq plot sat.h5 --what mesh --model models/satellite.toml --level 3
"""

from __future__ import annotations

import argparse
import os
import sys

from ._select import add_output_args, outputs_from_args


def add_args(parser):
    from femfreq.plots import PLOTS

    parser.add_argument("results", metavar="RESULTS.h5", help="a result file written by femfreq sweep")
    parser.add_argument("-o", "--output", dest="output_dir", metavar="DIR",
                        help="where to write the figures (default: next to RESULTS.h5)")
    parser.add_argument("--output-dir", dest="output_dir", help=argparse.SUPPRESS)  # the former spelling
    parser.add_argument("--what", default=None, metavar="LIST",
                        help=f"comma-separated figures among {','.join(PLOTS)} (default frf,time,residual)")
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="image format (default png)")
    parser.add_argument("--model", help="model name or .toml for the mesh figure, whose natural frequencies the frf "
                                        "figure marks when given (default: the one in the file, no marks)")
    parser.add_argument("--level", type=int, help="mesh level for the mesh figure (default: the one in the file)")
    frf = parser.add_argument_group("FRF figure")
    frf.add_argument("--quantity", choices=["displacement", "velocity", "acceleration"], default=None,
                     help="output quantity of the transfer function (default: displacement for a point load, "
                          "acceleration (transmissibility) for base excitation)")
    frf.add_argument("--db", action="store_true", help="magnitude in dB, 20 log10|H| (default: log scale)")
    add_output_args(frf, "the 4 largest peaks and the RMS of all outputs")
    frf.add_argument("--modes", type=int, default=10, metavar="K",
                     help="with --model: mark its K lowest natural frequencies (default 10)")


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
    model = _model_of(result, args.model, args.level) if ("mesh" in wanted or args.model) else None
    natural = None
    if args.model and "frf" in wanted:
        natural = model.modes(max(1, min(args.modes, model.n_free)))[0]
    outputs = outputs_from_args(result, args)
    directory = args.output_dir or os.path.dirname(os.path.abspath(args.results))
    if not result.complete:
        print(f"femfreq: note: {args.results} is partial ({int(result.done.sum())} of {result.n_freqs} "
              "frequencies done)", file=sys.stderr)
    for path in plots.plot_all(result, directory, what=wanted, model=model, fmt=args.format, quantity=args.quantity,
                               db=args.db, outputs=outputs, natural_freqs_hz=natural):
        print(path)
    return 0
