"""The fast sweep's first real factorization with PARDISO's own ordering and with the model's node ordering.

A worker's first factorization of ``K - s M`` includes the analysis (ordering and symbolic
factorization); femfreq computes the ordering from the model's node graph on the client
(``femfreq.solvers.ordering.node_ordering``) and the System carries it. Per satellite level
(quick: 3 and 5; full: 5 and 7): the node ordering's time, and side by side, alternating,
the first factorization and nnz(L) with each ordering; medians of the repeats, one thread.

    python -m benchmarks.bench_ordering [--full]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time

from benchmarks._common import markdown, one_thread_env


def _first_factor(system, perm, shift):
    """(seconds, nnz(L)) of the first factorization of ``K - shift M`` of a fresh copy of ``system``."""
    from femfreq.solvers.fast.factors import ShiftedFactors
    from femfreq.solvers.ordering import KEY, attach

    fresh = pickle.loads(pickle.dumps(system))  # a worker's copy: no analysis, no ordering kept
    fresh.__dict__.pop(KEY, None)
    if perm is not None:
        attach(fresh, perm)
    factors = ShiftedFactors(fresh, "pardiso")
    t0 = time.perf_counter()
    F = factors.factor(shift)
    seconds = time.perf_counter() - t0
    nnz = int(F._iparm[17])
    factors.close()
    return seconds, nnz


def run(quick: bool = True) -> dict:
    from femfreq.model import load_model
    from femfreq.solvers import pardiso_available
    from femfreq.solvers.ordering import node_ordering

    ok, why = pardiso_available()
    if not ok:
        return {"name": "node ordering", "rows": [], "notes": f"skipped: needs MKL PARDISO ({why})"}
    rows = []
    with one_thread_env():
        for level in ((3, 5) if quick else (5, 7)):
            model = load_model("satellite", level=level)
            system = model.system()
            repeats = 3
            t_order, perm = [], None
            for _ in range(repeats):
                t0 = time.perf_counter()
                perm = node_ordering(model.free_dofs // 2, model.edges)
                t_order.append(time.perf_counter() - t0)
            shift = -(2 * 3.141592653589793 * 5.0) ** 2
            own, nodes = [], []
            for _ in range(repeats):  # alternating: the machine's drift falls on both
                own.append(_first_factor(system, None, shift))
                nodes.append(_first_factor(system, perm, shift))
            t_own = statistics.median(s for s, _ in own)
            t_nodes = statistics.median(s for s, _ in nodes)
            rows.append({
                "model": f"satellite level {level}, {system.n:,} DOF",
                "node_ordering_s": round(statistics.median(t_order), 3),
                "first_factor_own_s": round(t_own, 3),
                "first_factor_nodes_s": round(t_nodes, 3),
                "own/nodes": round(t_own / t_nodes, 2),
                "nnzL_own": own[0][1],
                "nnzL_nodes": nodes[0][1],
                "fill nodes/own": round(nodes[0][1] / own[0][1], 3),
            })
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "name": "node ordering",
        "rows": rows,
        "notes": (f"first factorization of K - s M (analysis included) of a fresh copy of the System, one thread, "
                  f"medians of {repeats} alternating runs; 'own': PARDISO's METIS on the DOF pattern, 'nodes': the "
                  f"ordering the client computes from the model's rods (node_ordering_s, not in the worker's time). "
                  f"Load average {load:.2f} at the end."),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="levels 5 and 7 (level 7: ~4 GB, ~1 min)")
    args = p.parse_args(argv)
    print(markdown(run(quick=not args.full)))


if __name__ == "__main__":
    main()
