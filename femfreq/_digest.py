"""Hashes of arrays for a System's fingerprint (result files, recipe checks)."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["array_digest", "hasher", "hexdigest"]


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
