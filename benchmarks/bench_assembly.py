"""Assembly time of K and M, and of Model.matrices (constraint elimination included), vs DOF.

Runs on the satellite's refinement levels (quick: 1..5, full: 1..7, level 7 ~ 612k DOF);
meshing time is excluded. Without models/satellite.toml it falls back to synthetic
triangulated grids of similar sizes. Medians of repeats, one process.

    python -m benchmarks.bench_assembly [--full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from femfreq.model import rods
from femfreq.model import Damping, Model, load_model, models_dir
from benchmarks._common import markdown


def _median_time(func, repeats):
    """Median wall-clock and median CPU (process) time of ``repeats`` calls, in s."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _grid_model(n_side):
    """A triangulated n_side x n_side grid (3 rods per node), bottom row fixed."""
    x, y = np.meshgrid(np.linspace(0, 40, n_side), np.linspace(0, 25, n_side))
    points = np.column_stack([x.ravel(), y.ravel()])
    idx = np.arange(n_side * n_side).reshape(n_side, n_side)
    edges = np.concatenate(
        [
            np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
            np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]),
            np.column_stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()]),
        ]
    )
    fixed = np.concatenate([2 * idx[0], 2 * idx[0] + 1])
    return Model(
        points=points, edges=edges, E=1e7, rho=0.1, area=1e-3, fixed_dofs=fixed,
        damping=Damping(beta=0.004), b_full=np.ones(2 * n_side * n_side), name=f"grid-{n_side}",
    )


def _models(quick):
    levels = range(1, 6) if quick else range(1, 8)
    if (models_dir() / "satellite.toml").is_file():
        for level in levels:
            t0 = time.perf_counter()
            m = load_model("satellite", level=level)
            yield f"satellite L{level}", m, time.perf_counter() - t0
    else:
        for n_side in [26, 57, 98, 147, 274, 443, 553][: len(levels)]:
            t0 = time.perf_counter()
            m = _grid_model(n_side)
            yield f"grid {n_side}x{n_side}", m, time.perf_counter() - t0


def run(quick: bool = True) -> dict:
    """Time rods.stiffness, rods.mass, Model.matrices and Model.system per model size."""
    rows = []
    for label, model, t_load in _models(quick):
        repeats = 5 if model.n_dof < 200_000 else 3
        p, e = model.points, model.edges
        t_k, c_k = _median_time(lambda: rods.stiffness(p, e, model.E, model.area), repeats)
        t_m, _ = _median_time(lambda: rods.mass(p, e, model.rho, model.area, lumped=True), repeats)
        t_mc, _ = _median_time(lambda: rods.mass(p, e, model.rho, model.area, lumped=False), repeats)

        def matrices():
            model._cache.clear()
            model.matrices()

        t_mat, c_mat = _median_time(matrices, repeats)

        def system():
            model._cache.clear()
            model.system()

        t_sys, c_sys = _median_time(system, max(1, repeats - 2))
        K = model.matrices()[0]
        rows.append(
            {
                "model": label,
                "nodes": model.n_nodes,
                "rods": model.n_rods,
                "free DOF": model.n_free,
                "nnz(K)": K.nnz,
                "K (s)": round(t_k, 4),
                "K cpu (s)": round(c_k, 4),
                "M lumped (s)": round(t_m, 4),
                "M consistent (s)": round(t_mc, 4),
                "matrices() (s)": round(t_mat, 4),
                "matrices() cpu (s)": round(c_mat, 4),
                "system() (s)": round(t_sys, 4),
                "system() cpu (s)": round(c_sys, 4),
                "mesh+load (s, excluded)": round(t_load, 2),
            }
        )
    notes = (
        "Wall-clock and CPU (process) medians. K and M: femfreq.model.rods.stiffness/mass (2 x 2 node blocks, "
        "numpy, BSR -> CSR). matrices(): K and lumped M "
        "assembled, fixed DOF eliminated, C = beta K. system(): matrices() plus System construction "
        "(union pattern of K, C, M). Median of 3-5 repeats; one process, numpy threads as configured. "
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    return {"name": "assembly", "rows": rows, "notes": notes}




if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all levels up to 7 (~612k DOF)")
    args = parser.parse_args()
    print(markdown(run(quick=not args.full)))
