"""Natural frequencies (Hz) of a model; with -o, mode shapes exported for ParaView.

Prints the k lowest natural frequencies. With ``-o modes.vtu`` (or .xdmf, any meshio
format) it writes each mass-normalised mode shape as a nodal vector field
``mode_<i>`` on the mesh (on the rods themselves for models without a triangle mesh).

Examples:
    femfreq modes rod -k 5
    femfreq modes satellite --level 2 -k 20 -o sat_modes.vtu
    femfreq modes satellite -k 50 --effective-mass   # MEFFMASS-like table
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file (.toml) or the name of a shipped model (satellite, beam, rod)")
    parser.add_argument("--level", type=int, default=None, help="mesh refinement level (default: the file's)")
    parser.add_argument("-k", type=int, default=10, help="number of modes (default 10)")
    parser.add_argument("--effective-mass", action="store_true",
                        help="print the modal effective mass along x and y, its fraction of the moving mass "
                             "and the cumulative fraction (as Nastran's MEFFMASS; default: frequencies only)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the mode shapes (e.g. modes.vtu; default: none, only print the frequencies)")


def write_modes(path, model, freqs_hz, shapes_full) -> Path:
    """Write mode shapes as nodal (n, 2) vector fields named with their frequency, ``mode_1_2.9755Hz``.

    A ``.vtu`` file also carries ``natural_frequency_hz`` (k,) as VTK field data.
    """
    fields = {f"mode_{i + 1}_{f:.5g}Hz": shapes_full[:, i].reshape(-1, 2) for i, f in enumerate(freqs_hz)}
    if model.mesh is not None:
        from femfreq.mesh import write_mesh

        return write_mesh(path, model.mesh, point_data=fields,
                          field_data={"natural_frequency_hz": np.asarray(freqs_hz, dtype=float)})
    import meshio

    points = np.column_stack([model.points, np.zeros(model.n_nodes)])
    data = {k: np.column_stack([v, np.zeros(model.n_nodes)]) for k, v in fields.items()}
    meshio.write(path, meshio.Mesh(points, [("line", model.edges)], point_data=data))
    return Path(path)


def run(args: argparse.Namespace) -> int:
    from femfreq.model import load_model

    from ._common import mesh_output

    if args.output is not None:
        mesh_output(args.output)
    model = load_model(args.model, level=args.level)
    freqs, shapes = model.modes(args.k)
    print(f"# {model.name}: {model.n_free} free DOF; {len(freqs)} lowest natural frequencies")
    if args.effective_mass:
        print(model.effective_mass(args.k).table())
    else:
        print(f"{'mode':>4}  {'f (Hz)':>14}")
        for i, f in enumerate(freqs, 1):
            print(f"{i:>4}  {f:>14.6f}")
    if args.output is not None:
        path = write_modes(args.output, model, freqs, shapes)
        print(f"mode shapes written to {path}")
    return 0
