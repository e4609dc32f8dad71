"""Mesh a .poly file or a model's geometry with Triangle and write it out.

Examples:
  femfreq mesh models/satellite.poly --switches pq30a0.5 -o sat.vtu
  femfreq mesh satellite --level 5 -o sat5.xdmf
  femfreq mesh part.node -o part.vtu             (convert a .node/.ele pair)

INPUT is a Triangle .poly file (meshed with --switches, default "pq30"), a
.node file (with its .ele; --switches refines it), or a model (.toml file or
the name of a shipped model: its [mesh] levels, --level N, default the model's
default_level). OUT is .vtu/.xdmf/any meshio format, or a .node basename
(writes .node and .ele, 1-based). Prints node, triangle and edge (rod) counts.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from .. import mesh as meshmod


def add_args(parser):
    parser.add_argument("input", metavar="INPUT", help="a .poly file, a .node file, or a model (.toml or shipped name)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--switches", "-s", metavar="S",
                       help='Triangle switches, e.g. "pq30a0.1" (default "pq30" for a .poly; none for a .node)')
    group.add_argument("--level", "-l", type=int, metavar="N",
                       help="refinement level of a model's mesh, 1-based (default: the model's default_level)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="output file: .vtu, .xdmf, ... or a .node basename (default: none, only print the counts)")


def _model_path(spec: str) -> Path:
    """A model file from a path or a shipped model's name."""
    p = Path(spec)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"model file {spec!r} not found")
        return p
    from ..model import models_dir

    shipped = models_dir() / f"{p.name}.toml"
    if not shipped.is_file():
        raise FileNotFoundError(f"{spec!r} is neither a .poly/.node/.toml file nor a shipped model")
    return shipped


def _mesh_model(path: Path, level):
    """Mesh a model file's [mesh] table at ``level``; return (mesh, description)."""
    with open(path, "rb") as fh:
        try:
            cfg = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise meshmod.ReadError(path, getattr(exc, "lineno", 0) or 0, f"not valid TOML: {exc}") from None
    table = cfg.get("mesh", {})
    if "poly" in table:
        levels = table.get("levels")
        if not isinstance(levels, list):
            raise ValueError(f"{path}: [mesh] poly needs levels = [\"<Triangle switches>\", ...]")
        level = int(table.get("default_level", 1)) if level is None else level
        poly = meshmod.read_poly(path.parent / table["poly"])
        mesh = meshmod.mesh_levels(poly, levels, level)
        return mesh, f"{path.stem} level {level} ({' '.join(levels[:level])})"
    if "node" in table:
        if level not in (None, 1):
            raise ValueError(f"{path}: a .node/.ele mesh has one level (asked for {level})")
        ele = path.parent / table["ele"] if "ele" in table else None
        return meshmod.read_triangle_mesh(path.parent / table["node"], ele), f"{path.stem} ({table['node']})"
    raise ValueError(f"{path}: [mesh] has no 'poly' or 'node' mesh to write")


def run(args) -> int:
    from ._common import mesh_output

    if args.output:
        mesh_output(args.output, triangle=True)
    src = Path(args.input)
    t0 = time.perf_counter()
    if src.suffix == ".poly":
        if args.level is not None:
            raise ValueError("--level applies to a model; give a .poly file --switches instead")
        switches = args.switches or "pq30"
        mesh = meshmod.triangulate(meshmod.read_poly(src), switches)
        what = f"{src.name} ({switches})"
    elif src.suffix in (".node", ".ele"):
        if args.level is not None:
            raise ValueError("--level applies to a model; refine a .node/.ele mesh with --switches")
        mesh = meshmod.read_triangle_mesh(src.with_suffix(".node"))
        what = src.with_suffix("").name
        if args.switches:
            mesh = meshmod.refine(mesh, args.switches)
            what += f" refined ({args.switches})"
    else:
        if args.switches:
            raise ValueError("--switches applies to a .poly or .node file; pick a model's mesh with --level")
        mesh, what = _mesh_model(_model_path(args.input), args.level)
    seconds = time.perf_counter() - t0
    print(
        f"{what}: {mesh.n_points:,} nodes, {mesh.n_triangles:,} triangles, "
        f"{len(mesh.edges):,} edges (rods), {2 * mesh.n_points:,} DOF; meshed in {seconds:.2f} s"
    )
    if args.output:
        out = Path(args.output)
        if out.suffix in ("", ".node", ".ele"):
            node, ele = meshmod.write_triangle_mesh(out, mesh)
            print(f"wrote {node} and {ele}")
        else:
            meshmod.write_mesh(out, mesh)
            print(f"wrote {out}")
    return 0
