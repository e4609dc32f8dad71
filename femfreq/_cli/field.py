"""Solve one frequency for the whole structure and export the response field for ParaView.

The sweep keeps only the output DOF; this writes every node's response at one frequency
as nodal fields: ``amplitude`` (|x|, |y| per node, a vector), ``magnitude`` (the length of
the amplitude vector), ``real`` and ``imag`` (the complex displacement's parts).

Examples:
  femfreq field satellite --freq 120 -o sat_120Hz.vtu
  femfreq field beam --level 2 --freq 35.5 -o beam.xdmf
"""

from __future__ import annotations

from pathlib import Path


def add_args(parser):
    parser.add_argument("model", help="model name (satellite, beam, rod) or a .toml model file")
    parser.add_argument("--level", type=int, help="mesh refinement level (default: the model's)")
    parser.add_argument("--freq", type=float, required=True, help="frequency in Hz (required)")
    parser.add_argument("--solver", default="auto", help="direct solver: auto, superlu, pardiso (default auto)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output mesh file (.vtu, .xdmf, ...; required)")


def run(args) -> int:
    import numpy as np

    import femfreq
    from femfreq.mesh import write_mesh
    from femfreq.field import response_field

    from ._common import mesh_output

    mesh_output(args.output)
    model = femfreq.load_model(args.model, level=args.level)
    if model.mesh is None:
        raise ValueError(f"model {model.name!r} has no triangle mesh to write the field on")
    x, rel = response_field(model, args.freq, solver=args.solver)
    amplitude = np.abs(x)
    fields = {
        "amplitude": amplitude,
        "magnitude": np.linalg.norm(amplitude, axis=1),
        "real": x.real,
        "imag": x.imag,
    }
    path = write_mesh(args.output, model.mesh, point_data=fields, field_data={"frequency_hz": [args.freq]})
    print(f"wrote {path}: response at {args.freq:g} Hz on {model.n_nodes} nodes "
          f"(max |x| {fields['magnitude'].max():.3e}, relative residual {rel:.1e})")
    return 0
