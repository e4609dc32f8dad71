"""Options that pick outputs of a result by node or DOF (plot, random, srs)."""

from __future__ import annotations

import argparse


def int_list(text):
    """``"3,5 7"`` -> [3, 5, 7] (an argparse type)."""
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas (got {text!r})") from None


def add_output_args(parser, default: str) -> None:
    """``--node N[,N...]`` and ``--dof D[,D...]`` (repeatable); ``default`` says what is used without them."""
    parser.add_argument("--node", type=int_list, action="extend", metavar="N[,N...]",
                        help=f"only the outputs at these nodes, every direction (repeatable; default: {default})")
    parser.add_argument("--dof", type=int_list, action="extend", metavar="D[,D...]",
                        help=f"only the outputs with these full DOF numbers, 2 node + direction (repeatable; "
                             f"default: {default})")


def add_report_args(parser, *, ranked_by: str, figure: str) -> None:
    """``--top``, ``--node/--dof``, ``-o DIR`` and ``--format``: the report options of random and srs."""
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help=f"rows of the table, largest {ranked_by} first; 0 for all outputs (default 10)")
    add_output_args(parser, "every output")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help=f"folder for the {figure} figure and CSV (default: next to RESULT.h5)")
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="image format (default png)")


def outputs_from_args(result, args):
    """The columns of ``result`` picked by ``--node``/``--dof`` (None without them)."""
    if not (args.node or args.dof):
        return None
    from femfreq.vibration import select_outputs

    return select_outputs(result, nodes=args.node, dofs=args.dof)


def report_paths(args, kind: str) -> tuple[str, str]:
    """``(figure, csv)`` paths ``DIR/<result stem>_<kind>.<format|csv>``, the folder created."""
    import os

    directory = output_dir(args, args.results)
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, os.path.splitext(os.path.basename(args.results))[0] + "_" + kind)
    return f"{stem}.{args.format}", f"{stem}.csv"


def output_dir(args, results_path):
    """``-o DIR``, or the folder of the result file."""
    import os

    return args.output or os.path.dirname(os.path.abspath(results_path))


def ranked_outputs(result, columns, values, top):
    """The outputs in decreasing ``values``, the first ``top`` (0 or None: all):
    ``(rank, j, node, direction, x, y)``, ``j`` indexing ``values`` and ``columns``
    (the result's output columns they belong to)."""
    import numpy as np

    order = np.argsort(-np.asarray(values), kind="stable")
    if top:
        order = order[:top]
    for rank, j in enumerate(order, 1):
        c = columns[j]
        x, y = result.outputs["xy"][c]
        yield rank, j, int(result.outputs["node"][c]), "xy"[int(result.outputs["direction"][c])], x, y
