"""Describe a model: DOF, rods, mass, bounding box and, with --modes K, its lowest modes.

Examples:
    femfreq info satellite --level 3
    femfreq info models/rod.toml --modes 5
"""

from __future__ import annotations

import argparse


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file (.toml) or the name of a shipped model (satellite, beam, rod)")
    parser.add_argument("--level", type=int, default=None, help="mesh refinement level (default: the file's)")
    parser.add_argument("--modes", type=int, default=0, metavar="K", help="also compute the K lowest natural frequencies (default 0: none)")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(_fmt(v) for v in value[:8])}, ...] ({len(value)} in all)"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def run(args: argparse.Namespace) -> int:
    from femfreq.model import load_model

    if args.modes < 0:
        raise ValueError(f"--modes must be >= 0 (got {args.modes})")
    model = load_model(args.model, level=args.level)
    summary = model.summary()
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if value == "" or value is None:
            continue
        print(f"{key:<{width}}  {_fmt(value)}")
    if args.modes > 0:
        freqs, _ = model.modes(args.modes)
        print(f"{'modes (Hz)':<{width}}  " + ", ".join(f"{f:.6g}" for f in freqs))
    return 0
