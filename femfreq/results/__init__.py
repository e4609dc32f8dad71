"""The HDF5 result file of a sweep: :class:`ResultWriter` writes it, :func:`read_results` reads it.

Layout, format version 2 (one file per sweep; complex numbers as h5py's compound ``(r, i)``)::

    /                  attrs: format="femfreq-results", format_version=2, femfreq_version,
                              created, status ("running" | "complete"), method, solver,
                              model_name, n_fft, dt, ... (timings after finish())
    /freqs_hz          (F,) float64
    /load_spectrum     (F,) complex128          P(omega)
    /response          (F, n_out) complex128    x at the output DOF (NaN where not done or skipped)
    /done              (F,) bool                which rows are final (solved or skipped)
    /rel_residual      (F,) float64             ||A x - P b|| / ||P b||
    /backward_error    (F,) float64
    /method            (F,) int8                a femfreq.codes.Method code; its "meaning"
                                                attribute lists them all: 0 not done, 1 direct,
                                                2 fast, 3 skipped (singular A(omega))
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

Version 1 files have the same datasets and read unchanged; only their ``/method``
``meaning`` attribute lists 0, 1, 2 (resuming one upgrades it). How a file survives
a killed writer is described in :mod:`femfreq.results.writer`.

Modules: :mod:`~femfreq.results.result` (:class:`SweepResult`),
:mod:`~femfreq.results.writer` (:class:`ResultWriter`), :mod:`~femfreq.results.reader`
(:func:`read_results`).
"""

from ._format import FORMAT, FORMAT_VERSION
from .reader import read_results
from .result import SweepResult
from .writer import ResultWriter

__all__ = ["ResultWriter", "SweepResult", "read_results", "FORMAT", "FORMAT_VERSION"]
