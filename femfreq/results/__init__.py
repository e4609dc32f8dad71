"""The HDF5 result file of a sweep: writer (checkpointing, resume) and reader.

Layout (one file per sweep; complex numbers as h5py's compound ``(r, i)``)::

    /                  attrs: format="femfreq-results", format_version=1, femfreq_version,
                              created, status ("running" | "complete"), method, solver,
                              model_name, n_fft, dt, ... (timings after finish())
    /freqs_hz          (F,) float64
    /load_spectrum     (F,) complex128          P(omega)
    /response          (F, n_out) complex128    x at the output DOF (NaN where not done)
    /done              (F,) bool                which frequencies are written
    /rel_residual      (F,) float64             ||A x - P b|| / ||P b||
    /backward_error    (F,) float64
    /method            (F,) int8                0 not done, 1 direct, 2 fast
    /outputs/node      (n_out,) int64           0-based node id
    /outputs/direction (n_out,) int8            0 = x, 1 = y
    /outputs/dof       (n_out,) int64           full DOF index (2 node + direction)
    /outputs/xy        (n_out, 2) float64       node coordinates
    /time/t            (n_fft,) float64         (NaN until written, at the end)
    /time/response     (n_fft, n_out) float64
    /chunks            (R,) compound, resizable: start, count, worker, t_start, t_end
                       (a row is used when count > 0)
    /model             attrs: model summary and parameters
    /versions          attrs: femfreq, numpy, scipy, h5py, hdf5, dask, distributed, python

Crash safety. Every dataset is created at its full size with its storage
allocated up front (``H5D_ALLOC_TIME_EARLY``; contiguous layout except the
``/chunks`` table, whose chunks are allocated too), in a temporary file that is
renamed into place. After that, writing a chunk of results only overwrites raw
data in place: no byte of HDF5 metadata changes while the sweep runs (a test
checks this byte by byte), so a client killed at any instant (SIGKILL) leaves
the structure written at creation. Rows are written and flushed *before* their
``done`` flags are set and flushed, so ``done`` never claims a row that is not in
the file; at most the chunk in flight is lost. Only the rare growth of
``/chunks`` (more chunks than frequencies, after resumes) and
:meth:`ResultWriter.finish` touch metadata.

The file uses the oldest superblock (version 0), which does not enforce the
"file is open for writing" flag, so a killed writer's file opens for reading and
for resuming as it is. With ``libver="latest"`` (which SWMR requires) every such
file refused to open ("file is already open for write ... use h5clear"), so SWMR
is not used. Flushes hand the data to the operating system (enough when the
process dies); they do not ``fsync`` (no protection against power loss).
"""

from ._format import FORMAT, FORMAT_VERSION
from .reader import read_results
from .result import SweepResult
from .writer import ResultWriter

__all__ = ["ResultWriter", "SweepResult", "read_results", "FORMAT", "FORMAT_VERSION"]
