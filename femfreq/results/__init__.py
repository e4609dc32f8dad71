"""The HDF5 result file of a sweep: :class:`ResultWriter` writes it, :func:`read_results` reads it.

Layout, format version 4 (one file per sweep; complex numbers as h5py's compound ``(r, i)``;
text attributes are variable-length UTF-8 strings, ``str`` in h5py and ``char`` in MATLAB)::

    /                  attrs: format="femfreq-results", format_version=4, femfreq_version,
                              created, status ("running" | "complete"), finished (ISO time,
                              "" until then), n_done, method, solver, model_name, n_fft, dt,
                              analysis ("point_load" | "base_motion"), base_direction
                              (base motion), ... (timings after finish())
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
    /chunks            (R,) compound, resizable: start, count, worker, t_start, t_end; one row
                       per chunk that ran (a file whose writer was killed may end in rows
                       with count 0, room reserved for the chunks to come)
    /base/acceleration (F,) complex128          base motion only: a_b(omega)
    /base/influence    (n_out,) float64         r at the outputs (absolute = response + r u_b)
    /base/interface_force (F, 2) complex128     force the base applies to the structure, x and y
    /fingerprint       attrs: what determines the answer, compared on resume: n_dof, K, C, M,
                       b, output_dofs (hashes), g, method, tol, solver, skip_singular
    /model             attrs: model summary and parameters
    /versions          attrs: femfreq, numpy, scipy, h5py, hdf5, dask, distributed, python

Files before version 4 have no ``analysis`` attribute: they are point-load sweeps
(resuming one upgrades it to version 4). Versions 1 and 2 read unchanged: they have no ``/fingerprint``, their ``status`` and
``finished`` are fixed-size bytes and version 1's ``/method`` ``meaning`` lists only
0, 1, 2 (resuming one upgrades it to version 3). How a file survives a killed writer,
a second writer and a full disk is described in :mod:`femfreq.results.writer`.

Modules: :mod:`~femfreq.results.result` (:class:`SweepResult`),
:mod:`~femfreq.results.writer` (:class:`ResultWriter`), :mod:`~femfreq.results.reader`
(:func:`read_results`).
"""

from ._format import FORMAT, FORMAT_VERSION
from ._lock import OutputLock
from .reader import frequencies_to_resume, read_results
from .result import SweepResult
from .writer import ResultWriter

__all__ = ["OutputLock", "ResultWriter", "SweepResult", "frequencies_to_resume", "read_results", "FORMAT",
           "FORMAT_VERSION"]
