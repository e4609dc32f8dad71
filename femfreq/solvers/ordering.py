"""A fill-reducing ordering of the fast sweep's real factorizations, from a model's node graph.

PARDISO orders the pattern of ``K + M`` itself (METIS nested dissection) at every
worker's first factorization: 2.2 s of a 2.9 s analysis at satellite level 7. The
same ordering comes from the graph of the model's *nodes* (rods as edges: half the
vertices and a quarter of the edges of the DOF graph), each node's DOFs then taken
together, with as little fill (level 7: 43.8 M entries of L against 43.7 M), and the
analysis given it takes 0.7 s. The client computes it once while the cluster starts
(:func:`node_ordering`), the System carries it to every worker (:func:`attach`), and
:class:`~femfreq.solvers.fast.factors.ShiftedFactors` hands it to PARDISO
(:func:`ordering_of`). Any permutation gives the same solutions: an ordering changes
only the fill, the time and the rounding.
"""

from __future__ import annotations

import numpy as np

from . import _mkl

__all__ = ["attach", "node_ordering", "ordering_of"]

#: where a System keeps its ordering (travels with its pickle, see femfreq._lean_pickle)
KEY = "_fill_ordering"


def node_ordering(node_of_dof, edges, *, threads: int = 1) -> np.ndarray:
    """METIS nested dissection of a node graph, expanded to the DOFs.

    Parameters
    ----------
    node_of_dof : (n,) int array
        The node of each DOF of the system (e.g. ``free_dofs // 2`` for 2 DOF per node).
    edges : (m, 2) int array
        Node pairs that couple (a model's rods); pairs with a node that owns no DOF are
        left out, repeated pairs count once.
    threads : int
        MKL threads for the ordering (1: it runs beside other work).

    Returns
    -------
    perm : (n,) int64 array
        ``perm[k]`` is the DOF eliminated k-th (PARDISO's ``perm`` with ``iparm[4] = 1``):
        the nodes in METIS's order, each node's DOFs in increasing order.

    Raises
    ------
    femfreq.errors.SolverUnavailableError
        Without the MKL runtime (PARDISO computes the ordering).
    femfreq.errors.PardisoError
        If PARDISO's analysis of the node graph fails.
    """
    from .pardiso import _error, _pardiso

    node_of_dof = np.asarray(node_of_dof, dtype=np.int64).reshape(-1)
    n = node_of_dof.size
    nodes, dof_node = np.unique(node_of_dof, return_inverse=True)
    nn = nodes.size
    if nn <= 1:
        return np.arange(n, dtype=np.int64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    # compact node numbers; -1 for a node that owns no DOF
    where = np.full(max(int(nodes[-1]), int(edges.max(initial=0))) + 1, -1, dtype=np.int64)
    where[nodes] = np.arange(nn)
    e = where[edges]
    e = e[(e >= 0).all(axis=1) & (e[:, 0] != e[:, 1])]
    # upper triangle in CSR, every diagonal stored, sorted, no duplicates
    keys = np.concatenate([np.minimum(e[:, 0], e[:, 1]) * nn + np.maximum(e[:, 0], e[:, 1]),
                           np.arange(nn, dtype=np.int64) * (nn + 1)])
    keys.sort()
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    mkl = _mkl.load()
    it = mkl.int_type
    ia = np.zeros(nn + 1, dtype=it)
    np.cumsum(np.bincount(keys // nn, minlength=nn), out=ia[1:])
    ja = (keys % nn).astype(it)
    a = np.ones(ja.size)  # the analysis reads only the pattern (no scaling, no matching)
    pt = np.zeros(64, dtype=np.int64)
    iparm = np.zeros(64, dtype=it)
    mtype = np.array([-2], dtype=it)
    mkl.pardisoinit(pt.ctypes.data, mtype.ctypes.data, iparm.ctypes.data)
    iparm[0] = 1
    iparm[1] = 2  # METIS nested dissection
    iparm[4] = 2  # return the ordering in perm
    iparm[10] = iparm[12] = 0
    iparm[34] = 1  # zero-based
    perm = np.zeros(nn, dtype=it)
    dummy = np.zeros(1)
    err = _pardiso(mkl, pt, -2, 11, nn, a, ia, ja, perm, iparm, dummy, dummy, 1, threads)
    _pardiso(mkl, pt, -2, -1, nn, a, ia, ja, perm, iparm, dummy, dummy, 1, threads)
    if err:
        raise _error(11, err)
    rank = np.empty(nn, dtype=np.int64)
    rank[perm.astype(np.int64)] = np.arange(nn)
    return np.lexsort((np.arange(n), rank[dof_node])).astype(np.int64)


def attach(system, perm) -> None:
    """Give ``system`` the ordering ``perm`` for its real factorizations (see :func:`node_ordering`).

    Raises
    ------
    ValueError
        If ``perm`` is not a permutation of the System's DOFs.
    """
    perm = np.asarray(perm)
    n = system.n
    if perm.shape != (n,) or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f"an ordering of {n} DOFs needs shape ({n},) integers (got {perm.shape} {perm.dtype})")
    if perm.size and (perm.min() < 0 or perm.max() >= n or np.bincount(perm, minlength=n).max() != 1):
        raise ValueError(f"the ordering is not a permutation of 0..{n - 1}")
    system.__dict__[KEY] = perm.astype(np.int32 if n < 2**31 else np.int64)


def ordering_of(system):
    """The ordering :func:`attach` gave ``system``, or None (PARDISO then orders the pattern)."""
    return system.__dict__.get(KEY)
