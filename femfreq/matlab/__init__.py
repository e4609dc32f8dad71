"""The one bridge MATLAB calls: triplets in, plain arrays out, and the .mat file route.

MATLAB's ``py.`` interface cannot pass sparse matrices, hands numeric arrays over
as ``memoryview`` objects (or ``array.array`` in old releases), scalars as
``float``/``int`` and cannot always pass complex arrays. MATLAB code therefore
sends each sparse matrix as the ``find()`` triplets ``(i, j, v)`` with 1-based
indices, complex vectors as real and imaginary parts, and calls exactly one
function, :func:`solve_triplets`. Every dask object stays on this side: the
client, the cluster and the futures are created, used and closed inside that
call (MATLAB clients holding dask objects were seen to disconnect).

Users without the ``py.`` interface, or with matrices above the 2 GB limit of
out-of-process Python, use the file route: ``matlab/femfreq_write_input.m``
saves ``K, C, M, b, freqs, P, output_dofs`` to a ``.mat`` file (v7, MATLAB
v7.3/HDF5 or Octave's ``-hdf5``), ``femfreq sweep --matrices in.mat -o out.mat``
reads it with :func:`read_mat_input`, solves and writes
:func:`write_mat_result` (both in :func:`solve_mat`), and
``matlab/femfreq_read_result.m`` loads the answer.

Index conventions: everything MATLAB sends is 1-based and converted to 0-based
here, never in MATLAB; everything sent back (``output_dofs``) is 1-based again.
"""

from .adapter import solve_mat, solve_triplets
from .matfile import read_mat_input, write_mat_result
from .triplets import system_from_triplets

__all__ = [
    "solve_triplets",
    "system_from_triplets",
    "read_mat_input",
    "write_mat_result",
    "solve_mat",
]
