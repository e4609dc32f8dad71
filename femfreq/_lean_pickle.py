"""The System's lean pickle: what travels to dask workers and into the shared file.

A scattered or file-shared :class:`~femfreq.system.System` carries its union pattern
once, each of K, C and M as its own values plus which pattern entries it has (all of
them, none, the diagonal of a lumped M, or a packed mask), and a proportional C as its
coefficients with the few positions where they do not give C bit for bit. Unpickling
rebuilds every array exactly (``tests/test_broadcast.py``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def lean_state(system) -> dict:
    """The pickled state of a System: the union pattern once, each matrix's own values and
    which pattern entries it has, a proportional C as its coefficients (what
    :func:`restore_state` rebuilds every array from, bit for bit)."""
    indptr, indices = system.pattern
    state = {name: getattr(system, name) for name in ("b", "g", "name", "token", "base")}
    state["output_dofs"] = _narrow(system.output_dofs)
    state["pattern"] = (_narrow(indptr), _narrow(indices), indptr.dtype.str, indices.dtype.str)
    keys = None
    for name, A in (("K", system.K), ("M", system.M), ("C", system.C)):
        if A.nnz == system.nnz:
            mask = None
        elif A.nnz == 0:
            mask = (np.zeros(0, dtype=np.uint8), 0)
        elif _is_diagonal(A) and _diagonal_positions(indptr, indices).size == system.n:
            mask = "diagonal"  # a lumped mass: its entries are the pattern's diagonal
        else:
            keys = _union_keys(indptr, indices, system.n) if keys is None else keys
            mask = np.zeros(system.nnz, dtype=bool)
            mask[np.searchsorted(keys, _union_keys(A.indptr, A.indices, system.n))] = True
            mask = (np.packbits(mask), A.nnz)
        data = A.data
        if name == "C" and A.nnz:
            data = _proportional(A.data, _positions(mask, indptr, indices), system.k_values, system.m_values)
        state[name] = (data, mask, A.indices.dtype.str, A.indptr.dtype.str)
    state["cached"] = {k: system.__dict__[k] for k in ("is_symmetric", "_frobenius_terms", "_fill_ordering")
                       if k in system.__dict__}
    return state


def restore_state(system, state: dict) -> None:
    """Set a System's arrays from :func:`lean_state` (its ``__setstate__``)."""
    set_ = object.__setattr__
    indptr, indices, indptr_type, index_type = state["pattern"]
    indptr, indices = indptr.astype(indptr_type, copy=False), indices.astype(index_type, copy=False)
    n, nnz = indptr.size - 1, indices.size
    set_(system, "pattern", (indptr, indices))
    for name, values_name in (("K", "k_values"), ("M", "m_values"), ("C", "c_values")):
        data, mask, a_index_type, a_indptr_type = state[name]
        where = _positions(mask, indptr, indices)  # of A's entries in the pattern (None: all)
        if where is None:
            a_indices, a_indptr = indices, indptr
        else:
            a_indices, a_indptr = indices[where], np.searchsorted(where, indptr)
        if isinstance(data, tuple):  # proportional C
            data = _from_proportional(data, where, system.k_values, system.m_values)
        A = sp.csc_matrix((data, a_indices.astype(a_index_type, copy=False),
                           a_indptr.astype(a_indptr_type, copy=False)),
                          shape=(n, n))
        values = data if where is None else np.zeros(nnz)
        if where is not None:
            values[where] = data
        set_(system, name, A)
        set_(system, values_name, values)
    for name in ("b", "g", "name", "token", "base"):
        set_(system, name, state[name])
    set_(system, "output_dofs", state["output_dofs"].astype(np.int64))
    system.__dict__.update(state["cached"])


def _narrow(a: np.ndarray) -> np.ndarray:
    """``a`` as int32 when its values fit (pickled index arrays; restored to their dtype)."""
    if a.dtype.kind in "iu" and a.dtype.itemsize > 4 and (a.size == 0 or (a.min() >= 0 and a.max() < 2**31)):
        return a.astype(np.int32)
    return a


def _is_diagonal(A) -> bool:
    """True if the canonical CSC matrix ``A`` stores exactly its whole diagonal."""
    n = A.shape[0]
    return A.nnz == n and np.array_equal(A.indptr, np.arange(n + 1)) and np.array_equal(A.indices, np.arange(n))


def _diagonal_positions(indptr, indices) -> np.ndarray:
    """Positions of the diagonal entries in a canonical CSC pattern (fewer than n if some are absent)."""
    n = indptr.size - 1
    cols = np.repeat(np.arange(n, dtype=indices.dtype), np.diff(indptr))
    return np.flatnonzero(indices == cols)


def _union_keys(indptr, indices, n) -> np.ndarray:
    """Column-major int64 keys ``col * n + row`` of a canonical CSC pattern (sorted)."""
    cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    return cols * n + indices


def _positions(mask, indptr, indices):
    """A pickled entry mask as the sorted positions of the matrix's entries in the pattern
    (None: every position)."""
    if mask is None:
        return None
    if isinstance(mask, str):  # "diagonal"
        return _diagonal_positions(indptr, indices)
    packed, count = mask
    if not count:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.unpackbits(packed, count=indices.size))


def _proportional(data, where, k_values, m_values):
    """``C``'s values, or ``("alpha M + beta K", alpha, beta, fix positions, fix values)`` when
    ``alpha m + beta k`` gives them bit for bit except at a few positions. ``where``: the
    positions of C's entries in the pattern (None: all)."""
    sel = slice(None) if where is None else where
    k, m = k_values[sel], m_values[sel]
    candidates = _candidate_coefficients(data, k, m)
    if not candidates:
        return data
    # the candidate that misses fewest of a sample, then every position checked for it alone
    step = max(1, data.size // 20000)

    def misses(alpha, beta, part=slice(None, None, step)):
        return np.flatnonzero(_combine(alpha, beta, m[part], k[part]).view(np.int64) != data[part].view(np.int64))

    alpha, beta = min(candidates, key=lambda ab: misses(*ab).size)
    bad = misses(alpha, beta, slice(None))
    if bad.size > data.size // 8:
        return data
    return ("alpha M + beta K", alpha, beta, bad.astype(np.int32 if data.size < 2**31 else np.int64), data[bad])


def _from_proportional(spec, where, k_values, m_values):
    """Inverse of :func:`_proportional`."""
    _, alpha, beta, bad, fixes = spec
    sel = slice(None) if where is None else where
    data = _combine(alpha, beta, m_values[sel], k_values[sel])
    data[bad] = fixes
    return data


def _combine(alpha, beta, m, k):
    """``alpha m + beta k`` (``beta k`` alone when alpha is 0: one array, not three; the
    positions where that differs from C bit for bit, e.g. a signed zero, are fixed up)."""
    out = np.multiply(k, beta)
    if alpha:
        out += alpha * m
    return out


def _candidate_coefficients(c, k, m, sample=20000):
    """``(alpha, beta)`` pairs that may give ``c = alpha m + beta k``: the most frequent exact ratios."""
    step = max(1, c.size // sample)
    c, k, m = c[::step], k[::step], m[::step]

    def mode(x):
        x = x[np.isfinite(x)]
        if not x.size:
            return None
        values, counts = np.unique(x, return_counts=True)
        return float(values[np.argmax(counts)])

    with np.errstate(divide="ignore", invalid="ignore"):
        only_k, only_m, both = (m == 0) & (k != 0), (k == 0) & (m != 0), (k != 0) & (m != 0)
        beta = mode(c[only_k] / k[only_k])
        alpha = mode(c[only_m] / m[only_m])
        pairs = [(alpha, beta),
                 (alpha, mode((c[both] - alpha * m[both]) / k[both]) if alpha is not None else None),
                 (mode((c[both] - beta * k[both]) / m[both]) if beta is not None else None, beta),
                 (0.0, mode(c[k != 0] / k[k != 0])),  # C = beta K
                 (mode(c[m != 0] / m[m != 0]), 0.0)]  # C = alpha M
    return [(a, b) for a, b in pairs if a is not None and b is not None]
