"""A band's response at the output DOF, dense or factored: :class:`FactoredResponse`."""

from __future__ import annotations

import numpy as np

__all__ = ["FactoredResponse"]


class FactoredResponse:
    """The ``(k, n_out)`` response of a band at the output DOF, kept as its factors.

    The rows a reduced model certified are ``(Vo @ y).T``: the basis rows at the output
    DOF ``Vo`` (``(n_out, m)``, real) times the reduced solutions ``y`` (``(m, r)``). The
    rows solved otherwise (a direct fallback, a skipped frequency) are kept whole. Every
    other row is 0 (a zero load). :meth:`toarray` gives the dense array.

    It is what a fast chunk sends back from a dask worker: at level 7, 1025 frequencies
    at 8170 output DOF are 134 MB dense and 2 MB factored (a basis of 24 vectors), so
    the transfer of the last chunk no longer holds up the end of a sweep.

    Parameters
    ----------
    shape : (int, int)
        ``(k, n_out)``: frequencies of the band, output DOF.

    Examples
    --------
    >>> import numpy as np
    >>> r = FactoredResponse((3, 2))
    >>> r.add([0, 2], np.array([[1.0], [2.0]]), np.array([[1j, 3.0]]))
    >>> r.set_row(1, [5.0, 6.0])
    >>> r.toarray()
    array([[0.+1.j, 0.+2.j],
           [5.+0.j, 6.+0.j],
           [3.+0.j, 6.+0.j]])
    """

    def __init__(self, shape):
        k, n_out = (int(x) for x in shape)
        self.shape = (k, n_out)
        self.pieces = []  # (rows, Vo, y)
        self.rows = {}  # row -> (n_out,) complex

    def add(self, rows, basis_rows, y):
        """Rows ``rows`` of the response are ``(basis_rows @ y).T``.

        Parameters
        ----------
        rows : (r,) int array
        basis_rows : (n_out, m) float array
            The basis at the output DOF (kept as given: pass a copy).
        y : (m, r) complex array
            The reduced solutions of those rows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        basis_rows = np.asarray(basis_rows)
        y = np.asarray(y, dtype=np.complex128)
        if basis_rows.shape[:1] != (self.shape[1],) or y.shape != (basis_rows.shape[1], rows.size):
            raise ValueError(f"basis rows {basis_rows.shape} and reduced solutions {y.shape} do not make "
                             f"{rows.size} rows of {self.shape[1]} outputs")
        if rows.size:
            self.pieces.append((rows, basis_rows, y))

    def set_row(self, i, row):
        """Row ``i`` is ``row`` (``(n_out,)``), whatever :meth:`add` said of it."""
        row = np.asarray(row, dtype=np.complex128)
        if row.shape != (self.shape[1],):
            raise ValueError(f"a row has {self.shape[1]} outputs (got shape {row.shape})")
        self.rows[int(i)] = row.copy()

    @property
    def nbytes(self) -> int:
        """Bytes held (what it pickles to, give or take the indices)."""
        return (sum(r.nbytes + v.nbytes + y.nbytes for r, v, y in self.pieces)
                + sum(row.nbytes for row in self.rows.values()))

    def toarray(self) -> np.ndarray:
        """The dense ``(k, n_out)`` complex128 response."""
        out = np.zeros(self.shape, dtype=np.complex128)
        for rows, Vo, y in self.pieces:
            out[rows] = y.T @ Vo.T  # (r, n_out) in out's own order: no transposing copy
        for i, row in self.rows.items():
            out[i] = row
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.toarray()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self):
        return (f"FactoredResponse(shape={self.shape}, {len(self.pieces)} bases, {len(self.rows)} whole rows, "
                f"{self.nbytes / 1e6:.1f} MB)")
