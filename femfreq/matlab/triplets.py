"""A :class:`~femfreq.system.System` from MATLAB ``find()`` triplets (1-based)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..system import System
from ._convert import _as_array, _complex_parts, _is_missing, _one_based, _size, _vector

__all__ = ["system_from_triplets"]


def _triplets(name, i, j, v, n, *, required=True):
    """A CSC matrix from 1-based triplets; None when the triplets are absent and not required."""
    if all(_is_missing(x) for x in (i, j, v)):
        if required:
            raise ValueError(f"{name} is empty: give its find() triplets (i, j, v)")
        return None
    values = _as_array(f"{name} values", v).reshape(-1)
    if np.iscomplexobj(values) and np.any(values.imag != 0):
        raise ValueError(
            f"{name} must be real (it has complex values, e.g. {values[np.flatnonzero(values.imag)[0]]}); "
            "give structural damping as g (K(1 + i g)), not as a complex stiffness"
        )
    rows = _one_based(f"{name} row indices", i, n)
    cols = _one_based(f"{name} column indices", j, n)
    if not (rows.size == cols.size == values.size):
        raise ValueError(
            f"{name} triplets have different lengths: i {rows.size}, j {cols.size}, v {values.size}"
        )
    values = values.real.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has a non-finite entry {values[k]} at row {rows[k] + 1}, column {cols[k] + 1} (1-based)"
        )
    # coo -> csc sums duplicates, as MATLAB's sparse(i, j, v) does
    return sp.csc_matrix((values, (rows, cols)), shape=(n, n))



def system_from_triplets(
    Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, n, b, output_dofs, *, b_im=None, g=0.0, C_size=None, M_size=None,
    name="matlab",
) -> System:
    """A :class:`~femfreq.system.System` from MATLAB ``find()`` triplets.

    Parameters
    ----------
    Ki, Kj, Kv : (nnz,) array-likes
        1-based row and column indices and real values of ``K`` (as ``[i, j, v] = find(K)``).
        Memoryviews, ``array.array``, lists, tuples or numpy arrays; indices may be doubles.
    Ci, Cj, Cv : array-likes or None
        The same for ``C``; empty or None for no viscous damping.
    Mi, Mj, Mv : array-likes
        The same for ``M``.
    n : int or (2,) array-like
        Size of ``K``: a scalar or MATLAB's ``size(K)``.
    b : (n,) array-like
        Load vector (real part if ``b_im`` is given).
    output_dofs : (k,) array-like
        1-based output DOF.
    b_im : (n,) array-like, optional
        Imaginary part of ``b``.
    g : float, optional
        Structural damping factor, ``K (1 + i g)``.
    C_size, M_size : int or (2,) array-like, optional
        ``size(C)`` and ``size(M)``, checked against ``size(K)``.
    name : str, optional
        Label of the system.

    Returns
    -------
    System
        With 0-based ``output_dofs``.

    Raises
    ------
    ValueError
        Non-square or mismatched sizes, indices of 0 ("looks 0-based") or above n, triplets of
        different lengths, complex K, C or M, NaN/inf, empty output list.
    TypeError
        Non-numeric arguments.
    """
    n_rows, _ = _size("K", n)
    for other, size in (("C", C_size), ("M", M_size)):
        if not _is_missing(size):
            s = _size(other, size)
            if s != (n_rows, n_rows):
                raise ValueError(f"{other} has size {s[0]} x {s[1]} but K has size {n_rows} x {n_rows}")
    K = _triplets("K", Ki, Kj, Kv, n_rows)
    C = _triplets("C", Ci, Cj, Cv, n_rows, required=False)
    M = _triplets("M", Mi, Mj, Mv, n_rows)
    b_vec = _complex_parts("b", b, b_im)
    if b_vec.size != n_rows:
        raise ValueError(f"b has {b_vec.size} values but K is {n_rows} x {n_rows}")
    if not np.any(b_vec.imag != 0):
        b_vec = b_vec.real
    if _is_missing(output_dofs):
        raise ValueError("output_dofs is empty: give at least one 1-based output DOF")
    out = _one_based("output_dofs", output_dofs, n_rows)
    g = float(_vector("g", g, length=1)[0])
    return System(K=K, C=C, M=M, b=b_vec, g=g, output_dofs=out, name=name)
