"""Time to mesh each satellite level with Triangle, and its node, edge and DOF counts.

Quick: levels 1..4; full: 1..7 (level 7 ~ 612k free DOF). For each level: the time of
``mesh_levels(poly, levels, k)`` from the .poly (what loading the model pays: all the
refinement steps up to k), the time of the last refinement step alone, the time of
``Mesh.edges`` (the rods), and the .node/.ele write + read time. Medians of repeats, one process.

    python -m benchmarks.bench_mesh [--full]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

from femfreq.mesh import Mesh, mesh_levels, read_poly, read_triangle_mesh, refine, triangulate, write_triangle_mesh
from benchmarks._common import markdown

MODELS = Path(__file__).resolve().parents[1] / "models"


def _median_time(func, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(quick: bool = True) -> dict:
    """Mesh the satellite's levels; return {"name", "rows", "notes"}."""
    with open(MODELS / "satellite.toml", "rb") as fh:
        levels = tomllib.load(fh)["mesh"]["levels"]
    poly = read_poly(MODELS / "satellite.poly")
    top = 4 if quick else len(levels)
    rows = []
    previous = None
    for k in range(1, top + 1):
        repeats = 5 if k <= 5 else 3
        t_total, mesh = _median_time(lambda: mesh_levels(poly, levels, k), repeats)
        if previous is None:
            t_step, _ = _median_time(lambda: triangulate(poly, levels[0]), repeats)
        else:
            t_step, _ = _median_time(lambda: refine(previous, levels[k - 1]), repeats)

        def edges():
            fresh = Mesh(mesh.points, mesh.triangles)  # edges are cached per Mesh
            return fresh.edges

        t_edges, edge_array = _median_time(edges, repeats)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_triangle_mesh(Path(tmp) / "m", mesh)
            t_write = time.perf_counter() - t0
            t0 = time.perf_counter()
            read_triangle_mesh(Path(tmp) / "m.node")
            t_read = time.perf_counter() - t0
        ring = int(np.count_nonzero(np.isclose(mesh.points[:, 1], 2.0, rtol=0, atol=1e-9)))
        rows.append(
            {
                "level": k,
                "switches": levels[k - 1],
                "nodes": mesh.n_points,
                "triangles": mesh.n_triangles,
                "edges (rods)": len(edge_array),
                "ring nodes": ring,
                "free DOF": 2 * (mesh.n_points - ring),
                "mesh 1..k (s)": round(t_total, 3),
                "step k (s)": round(t_step, 3),
                "edges (s)": round(t_edges, 3),
                ".node/.ele write (s)": round(t_write, 2),
                ".node/.ele read (s)": round(t_read, 2),
            }
        )
        previous = mesh
    notes = (
        "mesh 1..k: femfreq.mesh.mesh_levels from satellite.poly (triangulate + k-1 Triangle "
        "refinements), what load_model pays; step k: the last refinement alone. edges: unique "
        "undirected edges of a fresh Mesh (sort of a 64-bit key per edge). free DOF = 2 (nodes - "
        "nodes on the adapter ring y = 2). Medians of 3-5 repeats (I/O: one run), one process. Times scale with the machine's load."
    )
    return {"name": "mesh", "rows": rows, "notes": notes}




if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all seven levels (~612k free DOF at level 7)")
    args = parser.parse_args()
    print(markdown(run(quick=not args.full)))
