"""Writing a result file as a sweep runs: :class:`ResultWriter` (create, resume, overwrite).

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

from __future__ import annotations

import logging
import os
import warnings

import numpy as np

from .. import _validate
from ..codes import MEANING, Method
from ._format import _WORKER_LEN, FORMAT, FORMAT_VERSION
from ._layout import create_file, finish_placeholders, now, write_attrs
from .reader import _format_version, _result_from_h5
from .result import SweepResult, _normalise_outputs

__all__ = ["ResultWriter"]

logger = logging.getLogger(__name__)

_CODES = np.array([int(m) for m in Method], dtype=np.int8)


class ResultWriter:
    """Writes a sweep's results to HDF5 as chunks arrive; resumable after a crash.

    Use :meth:`create` (a context manager)::

        with ResultWriter.create("out.h5", freqs_hz=f, load_spectrum=P, outputs=outs,
                                 attrs={"model_name": "beam", "n_fft": 4096, "dt": 5e-4},
                                 resume=True) as w:
            todo = np.flatnonzero(~w.done)
            for chunk in run(todo):
                w.write_chunk(chunk)
            w.write_time(t, x_t)
            w.finish(timings={"wall_s": 12.3})

    Leaving the block without :meth:`finish` (an exception) keeps the status
    ``"running"``: the file is readable and resumable.
    """

    def __init__(self, h5, path: str, n_fft: int | None):
        """Internal: use :meth:`create`."""
        self._h5 = h5
        self.path = path
        self.n_fft = n_fft
        self._done = h5["done"][()].astype(bool)
        self.n_freqs = int(h5["freqs_hz"].shape[0])
        self.n_out = int(h5["response"].shape[1])
        counts = h5["chunks"]["count"]
        used = np.flatnonzero(counts > 0)
        self._n_chunks = int(used[-1] + 1) if used.size else 0
        self.finished = False

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        path,
        *,
        freqs_hz,
        load_spectrum=None,
        outputs,
        attrs=None,
        model=None,
        n_fft=None,
        resume=False,
        overwrite=False,
    ) -> "ResultWriter":
        """Create (or, with ``resume``, reopen) a result file.

        Parameters
        ----------
        path : str or path-like
        freqs_hz : (F,) array_like
            Frequencies of the sweep in Hz.
        load_spectrum : (F,) complex array_like or scalar, optional
            ``P(omega)`` at each frequency; default 1 (unit load).
        outputs : dict
            ``node (n_out,)``, ``direction (n_out,)`` (0 x, 1 y), ``dof (n_out,)`` (full
            DOF index), ``xy (n_out, 2)``. Given only ``dof``, node = dof // 2 and
            direction = dof % 2; ``xy`` defaults to NaN.
        attrs : dict, optional
            Root attributes: ``method, solver, model_name, n_fft, dt`` and anything else
            (dicts are stored as JSON). A ``"model"`` entry (dict) goes to ``/model``.
        model : dict, optional
            Model summary and parameters, stored as attributes of ``/model``.
        n_fft : int, optional
            Length of the time response (defaults to ``attrs["n_fft"]``); without it
            :meth:`write_time` is not available.
        resume : bool
            Reopen an existing file and keep what it holds; the frequencies, load
            spectrum and outputs must match. A missing file is created. A file of
            format version 1 is upgraded to version 2 (its ``/method`` meaning
            attribute completed) before anything is written to it.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        ResultWriter

        Raises
        ------
        FileExistsError
            If the file exists and neither ``resume`` nor ``overwrite`` is given.
        ValueError
            Bad arguments; with ``resume``, a file that is not a femfreq result file,
            has a newer format version, or whose frequencies, load spectrum or outputs
            differ (named in the message).
        """
        import h5py

        path = os.fspath(path)
        if resume and overwrite:
            raise ValueError("pass either resume=True or overwrite=True, not both")
        freqs_hz, P, outs = _sweep_inputs(freqs_hz, load_spectrum, outputs)
        attrs, model, n_fft = _file_attrs(attrs, model, n_fft)
        exists = os.path.exists(path)
        if exists and resume:
            return cls._resume(path, freqs_hz, P, outs)
        if exists and not overwrite:
            raise FileExistsError(
                f"result file {path!r} already exists; pass resume=True (--resume) to continue it "
                "or overwrite=True (--overwrite) to replace it"
            )
        create_file(path, freqs_hz, P, outs, attrs, model, n_fft)
        return cls(h5py.File(path, "r+"), path, n_fft)

    @classmethod
    def _resume(cls, path, freqs_hz, P, outs) -> "ResultWriter":
        """Reopen an existing file whose sweep matches this one (upgrading a version 1 file)."""
        h5 = _open_existing(path)
        try:
            _check_matches(h5, path, freqs_hz, P, outs)
            _upgrade(h5, path)
            stored_nfft = h5["time/t"].shape[0] or None
        except BaseException:
            h5.close()
            raise
        writer = cls(h5, path, stored_nfft)
        logger.info("resuming %s: %d of %d frequencies already done", path, writer._done.sum(), freqs_hz.size)
        return writer

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> np.ndarray:
        """(F,) bool: which rows are final, solved or skipped (a copy)."""
        return self._done.copy()

    @property
    def missing(self) -> np.ndarray:
        """(m,) int64 indices of the frequencies still to compute."""
        return np.flatnonzero(~self._done)

    @property
    def freqs_hz(self) -> np.ndarray:
        """(F,) float64 frequencies of the sweep."""
        return self._h5["freqs_hz"][()]

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.finished:
            logger.warning("sweep interrupted; %s keeps %d of %d frequencies (resumable)",
                           self.path, int(self._done.sum()), self.n_freqs)
        self.close()
        return False

    def close(self):
        """Flush and close the file (idempotent)."""
        if self._h5 is not None and self._h5.id.valid:
            self._h5.flush()
            self._h5.close()
        self._h5 = None

    def _file(self):
        if self._h5 is None:
            raise ValueError(f"result file {self.path!r} is closed")
        return self._h5

    def result(self) -> SweepResult:
        """The file's current contents as a :class:`SweepResult` (rows not done are NaN)."""
        return _result_from_h5(self._file(), self.path)

    # ------------------------------------------------------------------ writing
    def write_chunk(self, chunk):
        """Write one chunk of results and mark its frequencies done.

        Parameters
        ----------
        chunk : ChunkResult-like
            Any object with ``index (k,) int``, ``response (k, n_out) complex``,
            ``rel_residual (k,)``, ``backward_error (k,)``, ``method (k,) int8``
            (:class:`femfreq.codes.Method` codes), ``worker str``, ``t_start, t_end``
            (epoch s). Rows with code 3 (skipped: singular, response NaN) are done like
            solved ones, so a resume does not retry them; rows with code 0 are written
            but stay not done.

        Raises
        ------
        TypeError
            If an attribute is missing.
        ValueError
            Indices out of range or repeated, arrays of the wrong shape, or a method
            code that is not a :class:`~femfreq.codes.Method`.
        """
        h5 = self._file()
        try:
            index, response = chunk.index, chunk.response
            rel, bwd, method = chunk.rel_residual, chunk.backward_error, chunk.method
            worker, t_start, t_end = chunk.worker, chunk.t_start, chunk.t_end
        except AttributeError as exc:
            raise TypeError(f"write_chunk needs a ChunkResult-like object: {exc}") from None
        idx = _validate.index_array("chunk index", np.ravel(index), self.n_freqs)
        k = idx.size
        if k == 0:
            return
        response = np.asarray(response, dtype=np.complex128)
        if response.ndim == 1 and self.n_out == 1:
            response = response[:, None]
        if response.shape != (k, self.n_out):
            raise ValueError(f"chunk response must have shape ({k}, {self.n_out}) (has {response.shape})")
        cols = _chunk_columns(k, rel_residual=rel, backward_error=bwd, method=method)
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
        if np.any(np.diff(idx) == 0):
            raise ValueError(f"chunk index repeats frequency {idx[np.flatnonzero(np.diff(idx) == 0)[0]]}")
        response = response[order]
        cols = {name: a[order] for name, a in cols.items()}
        sel = slice(int(idx[0]), int(idx[-1]) + 1) if idx[-1] - idx[0] == k - 1 else idx
        # rows first, flushed, then the done flags: done never claims a row not on disk
        h5["response"][sel, :] = response
        for name, a in cols.items():
            h5[name][sel] = a
        self._append_chunk_row(int(idx[0]), k, worker, t_start, t_end)
        h5.flush()
        done = cols["method"] != Method.PENDING
        h5["done"][sel] = done
        h5.flush()
        self._done[idx] = done

    def _append_chunk_row(self, start, count, worker, t_start, t_end):
        """Record one chunk in ``/chunks`` (growing the table when it is full)."""
        table = self._h5["chunks"]
        if self._n_chunks >= table.shape[0]:
            table.resize((2 * table.shape[0],))  # rare: the one metadata change while running
        w = str(worker).encode("utf-8")[:_WORKER_LEN].decode("utf-8", "ignore").encode("utf-8")
        row = np.array([(start, count, w, float(t_start), float(t_end))], dtype=table.dtype)
        table[self._n_chunks : self._n_chunks + 1] = row
        self._n_chunks += 1

    def write_time(self, t, response):
        """Write the time response at the output DOF.

        Parameters
        ----------
        t : (n_fft,) float
            Times in s.
        response : (n_fft, n_out) float
            ``to_time(result.response, n_fft)``.

        Raises
        ------
        ValueError
            If the file was created without ``n_fft`` or the shapes differ.
        """
        h5 = self._file()
        nt = h5["time/t"].shape[0]
        if nt == 0:
            raise ValueError("this result file has no time grid: create it with n_fft (attrs['n_fft'])")
        t = np.asarray(t, dtype=np.float64)
        response = np.asarray(response, dtype=np.float64)
        if response.ndim == 1 and self.n_out == 1:
            response = response[:, None]
        if t.shape != (nt,) or response.shape != (nt, self.n_out):
            raise ValueError(
                f"time response must be t ({nt},) and response ({nt}, {self.n_out}); "
                f"got {t.shape} and {response.shape}"
            )
        h5["time/response"][...] = response
        h5.flush()
        h5["time/t"][...] = t  # t last: a finite t[0] marks the time response as written
        h5.flush()

    def finish(self, timings=None, **attrs):
        """Mark the sweep complete and store final attributes.

        Parameters
        ----------
        timings : dict, optional
            Stored as root attributes ``time_<key>`` (e.g. ``{"wall_s": 12.3}`` ->
            ``time_wall_s``).
        **attrs
            More root attributes (solver, method, ...).

        Skipped frequencies (code 3, e.g. a singular 0 Hz point with ``skip_singular``)
        are done: their rows are final, with NaN response and residuals. Only rows
        never written, or written with code 0, stay not done in ``done``; a warning
        says how many.
        """
        h5 = self._file()
        n_missing = int((~self._done).sum())
        if n_missing:
            warnings.warn(
                f"{self.path}: finishing with {n_missing} of {self.n_freqs} frequencies not done", stacklevel=2
            )
        final = finish_placeholders(status="complete", finished=now(), n_done=int(self._done.sum()))
        for key, value in final.items():  # same sizes as at creation: rewritten in place
            h5.attrs.modify(key, value)
        h5.flush()
        extra = dict(attrs)
        for key, value in (timings or {}).items():
            extra[f"time_{key}"] = value
        if extra:  # new attributes: after the status, each step flushed
            write_attrs(h5.attrs, extra)
            h5.flush()
        self.finished = True


def _sweep_inputs(freqs_hz, load_spectrum, outputs):
    """Checked ``freqs_hz (F,)``, ``P (F,)`` (default 1) and the normalised outputs."""
    freqs_hz = _validate.frequencies(freqs_hz)
    if freqs_hz.size == 0:
        raise ValueError("freqs_hz must not be empty")
    P = _validate.load_spectrum(1.0 if load_spectrum is None else load_spectrum, freqs_hz.size, "load_spectrum")
    return freqs_hz, P, _normalise_outputs(outputs)


def _file_attrs(attrs, model, n_fft):
    """Root attributes, ``/model`` attributes and ``n_fft`` (from ``attrs["n_fft"]`` when not given)."""
    attrs = dict(attrs or {})
    model = dict(model or {})
    if isinstance(attrs.get("model"), dict):
        model = {**attrs.pop("model"), **model}
    if n_fft is None and attrs.get("n_fft") is not None:
        n_fft = attrs["n_fft"]
    if n_fft is not None:
        n_fft = _validate.as_int("n_fft", n_fft, minimum=2)
        attrs["n_fft"] = n_fft
    return attrs, model, n_fft


def _chunk_columns(k: int, **columns) -> dict:
    """The per-row columns of a chunk as (k,) arrays (scalars broadcast); method codes checked."""
    dtypes = {"rel_residual": np.float64, "backward_error": np.float64, "method": np.int8}
    cols = {}
    for name, arr in columns.items():
        a = np.asarray(arr, dtype=dtypes[name])
        if a.ndim == 0:
            a = np.full(k, a)
        if a.shape != (k,):
            raise ValueError(f"chunk {name} must have shape ({k},) (has {a.shape})")
        cols[name] = a
    bad = cols["method"][~np.isin(cols["method"], _CODES)]
    if bad.size:
        raise ValueError(f"chunk method has code {int(bad[0])}, not one of {MEANING}")
    return cols


def _open_existing(path):
    """Open a file to resume: an HDF5 femfreq result file of a version this femfreq writes or older."""
    import h5py

    if not h5py.is_hdf5(path):
        raise ValueError(f"cannot resume {path!r}: it is not an HDF5 file (use overwrite=True to replace it)")
    h5 = h5py.File(path, "r+")
    version = _format_version(h5)
    if version is None:
        h5.close()
        raise ValueError(f"cannot resume {path!r}: not a femfreq result file (no format={FORMAT!r} attribute)")
    if version > FORMAT_VERSION:
        h5.close()
        raise ValueError(
            f"cannot resume {path!r}: it has result format version {version}; this femfreq writes {FORMAT_VERSION}"
        )
    return h5


def _upgrade(h5, path) -> None:
    """Bring an older file to :data:`FORMAT_VERSION` before new rows are written to it."""
    version = _format_version(h5)
    if version >= FORMAT_VERSION:
        return
    # version 1 rows already mean what version 2 says (a skipped frequency is done, code 3);
    # only its meaning attribute lacked code 3, which this sweep may now write
    h5["method"].attrs["meaning"] = MEANING
    h5.flush()
    h5.attrs["format_version"] = FORMAT_VERSION
    h5.flush()
    logger.info("%s: result format version %d upgraded to %d", path, version, FORMAT_VERSION)


def _check_matches(h5, path, freqs_hz, P, outs):
    """ValueError naming the first difference between the file's sweep and this one."""
    old = h5["freqs_hz"][()]
    if old.shape != freqs_hz.shape:
        raise ValueError(
            f"cannot resume {path!r}: freqs_hz differ: the file has {old.size} frequencies, "
            f"this sweep {freqs_hz.size}"
        )
    diff = np.flatnonzero(old != freqs_hz)
    if diff.size:
        k = diff[0]
        raise ValueError(
            f"cannot resume {path!r}: freqs_hz differ at {diff.size} positions, first at {k}: "
            f"file {float(old[k])!r} Hz, this sweep {float(freqs_hz[k])!r} Hz"
        )
    old_n_out = h5["response"].shape[1]
    if old_n_out != outs["dof"].size:
        raise ValueError(
            f"cannot resume {path!r}: n_out differs: the file has {old_n_out} output DOF, "
            f"this sweep {outs['dof'].size}"
        )
    for name in ("node", "direction", "dof"):
        stored = h5[f"outputs/{name}"][()]
        if not np.array_equal(stored, outs[name]):
            k = int(np.flatnonzero(stored != outs[name])[0])
            raise ValueError(
                f"cannot resume {path!r}: outputs {name} differ at position {k}: "
                f"file {stored[k]}, this sweep {outs[name][k]}"
            )
    xy = h5["outputs/xy"][()]
    if not np.allclose(xy, outs["xy"], rtol=1e-12, atol=0, equal_nan=True):
        raise ValueError(f"cannot resume {path!r}: outputs xy (node coordinates) differ")
    oldP = h5["load_spectrum"][()]
    if not np.allclose(oldP, P, rtol=1e-12, atol=1e-14 * max(np.abs(P).max(), 1e-300)):
        k = int(np.argmax(np.abs(oldP - P)))
        raise ValueError(
            f"cannot resume {path!r}: load_spectrum differs (first at frequency {freqs_hz[k]:g} Hz: "
            f"file {oldP[k]:.6g}, this sweep {P[k]:.6g}); was the load history changed?"
        )
