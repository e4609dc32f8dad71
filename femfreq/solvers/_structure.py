"""The sparse structure the factorizations are given: the upper triangle of a symmetric pattern."""

from __future__ import annotations

import numpy as np


def upper_triangle(indptr, indices, n, keep=None):
    """The upper triangle, every diagonal stored, of a symmetric matrix's canonical CSC pattern.

    A symmetric matrix's CSC is the CSR of its transpose, i.e. of itself: column ``j``'s
    rows ``i >= j`` are CSR row ``j``'s upper-triangle columns, already sorted. So the
    structure PARDISO's symmetric types need comes in one O(nnz) pass, with no sort,
    unless diagonal entries are missing (then they are inserted and the rows re-sorted).

    Parameters
    ----------
    indptr, indices : int arrays
        Canonical CSC pattern (sorted row indices, no duplicates) of an ``n x n``
        matrix whose pattern is symmetric.
    n : int
    keep : bool array, optional
        Per entry of ``indices``: False drops it (e.g. an entry that is 0 in every matrix
        the solver combines). Diagonal entries are stored whatever it says.

    Returns
    -------
    ia, ja : int64 arrays
        Zero-based CSR of the upper triangle, sorted, every diagonal entry stored.
    src : int64 array
        For each entry of ``ja``, its position in ``indices``; ``indices.size`` for an
        inserted diagonal entry (whose value is 0).
    """
    indices = np.asarray(indices)
    nnz = indices.size
    col = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    upper = indices >= col
    if keep is not None:
        upper &= np.asarray(keep, dtype=bool) | (indices == col)
    src = np.flatnonzero(upper)
    ja = indices[src].astype(np.int64)
    r = col[src]
    counts = np.bincount(r, minlength=n)
    # the first kept entry of each non-empty row is its diagonal when the diagonal is stored
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    has = np.zeros(n, dtype=bool)
    nonempty = counts > 0
    has[nonempty] = ja[first[:-1][nonempty]] == np.flatnonzero(nonempty)
    miss = np.flatnonzero(~has)
    if miss.size:
        r = np.concatenate([r, miss])
        ja = np.concatenate([ja, miss])
        src = np.concatenate([src, np.full(miss.size, nnz, dtype=np.int64)])
        order = np.lexsort((ja, r))
        r, ja, src = r[order], ja[order], src[order]
        counts = np.bincount(r, minlength=n)
    ia = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=ia[1:])
    return ia, ja, src


def values_on(src, *values):
    """Each array of per-entry ``values`` (all of one size) taken at ``src`` from
    :func:`upper_triangle`: 0 at an inserted diagonal entry (``src`` equal to that size),
    gathered straight from the array (no copy of it with a 0 appended)."""
    nnz = values[0].size if values else 0
    inserted = np.flatnonzero(src == nnz)
    if inserted.size:
        src = np.where(src == nnz, 0, src)
    out = []
    for v in values:
        taken = v[src] if nnz else np.zeros(src.size)
        taken[inserted] = 0.0
        out.append(taken)
    return out
