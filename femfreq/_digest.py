"""Hashes of arrays for a System's fingerprint (result files, recipe checks)."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["array_digest", "hasher", "hexdigest", "matrix_digests"]


def array_digest(*arrays) -> str:
    """blake2b of arrays' dtypes, shapes and values (integers hashed as int64)."""
    return hexdigest(hasher(*arrays))


def hasher(*arrays, h=None):
    """``h`` (a new blake2b) updated with each array's dtype, shape and values, in order."""
    h = hashlib.blake2b(digest_size=16) if h is None else h
    for a in arrays:
        a = np.asarray(a)
        kind = np.int64 if a.dtype.kind in "iu" else a.dtype  # int32 and int64 indices alike
        h.update(f"{np.dtype(kind).str}{a.shape}".encode())
        step = 1 << 20
        for s in range(0, a.size, step):  # cast in slices: no full copy of a large index array
            h.update(np.ascontiguousarray(a[s:s + step], dtype=kind).data)
    return h


def hexdigest(h) -> str:
    """The ``"blake2b:..."`` string of a finished :func:`hasher`."""
    return "blake2b:" + h.hexdigest()


def matrix_digests(matrices) -> list[str]:
    """The :func:`array_digest` of each sparse matrix's ``(indptr, indices, data)``; a pattern the
    others share with the first is hashed once, and the matrices side by side (hashlib releases
    the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    first = matrices[0]
    pattern = hasher(first.indptr, first.indices)

    def one(A):
        shared = (A.nnz == first.nnz and np.array_equal(A.indptr, first.indptr)
                  and np.array_equal(A.indices, first.indices))
        return hexdigest(hasher(A.data, h=pattern.copy() if shared else hasher(A.indptr, A.indices)))

    with ThreadPoolExecutor(len(matrices)) as pool:
        return list(pool.map(one, matrices))
