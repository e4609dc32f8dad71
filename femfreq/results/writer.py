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

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ._format import _WORKER_LEN, FORMAT, FORMAT_VERSION, _chunk_dtype
from .reader import _attr_str, _result_from_h5
from .result import SweepResult, _normalise_outputs

__all__ = ["ResultWriter"]

logger = logging.getLogger(__name__)


def _versions() -> dict:
    from importlib import metadata

    import h5py

    out = {}
    for name in ("femfreq", "numpy", "scipy", "h5py", "dask", "distributed", "numba", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["hdf5"] = h5py.version.hdf5_version
    out["python"] = sys.version.split()[0]
    return out


def _attr_value(value):
    """A value h5py can store as an attribute (dicts and lists of mixed types become JSON)."""
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default)
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" or (arr.dtype.kind == "U" and arr.ndim == 1):
            return arr.astype(str).astype(object) if arr.dtype.kind == "U" else arr
        return json.dumps(value, default=_json_default)
    if isinstance(value, Path):
        return str(value)
    return value


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _write_attrs(attrs_obj, values: dict):
    for key, value in values.items():
        if value is None:
            continue
        try:
            attrs_obj[key] = _attr_value(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"attribute {key!r} = {value!r} cannot be stored in HDF5 ({exc})") from None


def _early_dcpl():
    from h5py import h5d, h5p

    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
    return dcpl


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
            spectrum and outputs must match. A missing file is created.
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
            Bad arguments; with ``resume``, a file that is not a femfreq result file or
            whose frequencies, load spectrum or outputs differ (named in the message).
        """
        import h5py

        path = os.fspath(path)
        if resume and overwrite:
            raise ValueError("pass either resume=True or overwrite=True, not both")
        freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
        if freqs_hz.ndim != 1 or freqs_hz.size == 0:
            raise ValueError(f"freqs_hz must be a non-empty 1-D array (has shape {freqs_hz.shape})")
        if not np.all(np.isfinite(freqs_hz)) or np.any(freqs_hz < 0):
            bad = np.flatnonzero(~np.isfinite(freqs_hz) | (freqs_hz < 0))[0]
            raise ValueError(f"freqs_hz must be finite and >= 0 (has {float(freqs_hz[bad])!r} at position {bad})")
        F = freqs_hz.size
        if load_spectrum is None:
            P = np.ones(F, dtype=np.complex128)
        else:
            P = np.asarray(load_spectrum, dtype=np.complex128)
            if P.ndim == 0:
                P = np.full(F, P)
        if P.shape != (F,):
            raise ValueError(f"load_spectrum must have shape ({F},) like freqs_hz (has {P.shape})")
        if not np.all(np.isfinite(P)):
            raise ValueError(f"load_spectrum has a non-finite value at position {np.flatnonzero(~np.isfinite(P))[0]}")
        outs = _normalise_outputs(outputs)
        attrs = dict(attrs or {})
        model = dict(model or {})
        if isinstance(attrs.get("model"), dict):
            model = {**attrs.pop("model"), **model}
        if n_fft is None and attrs.get("n_fft") is not None:
            n_fft = attrs["n_fft"]
        if n_fft is not None:
            n_fft = int(n_fft)
            if n_fft < 2:
                raise ValueError(f"n_fft must be >= 2 (got {n_fft})")
            attrs["n_fft"] = n_fft

        exists = os.path.exists(path)
        if exists and resume:
            h5 = cls._open_existing(path)
            try:
                cls._check_matches(h5, path, freqs_hz, P, outs)
                stored_nfft = h5["time/t"].shape[0] or None
            except BaseException:
                h5.close()
                raise
            writer = cls(h5, path, stored_nfft)
            logger.info("resuming %s: %d of %d frequencies already done", path, writer._done.sum(), F)
            return writer
        if exists and not overwrite:
            raise FileExistsError(
                f"result file {path!r} already exists; pass resume=True (--resume) to continue it "
                "or overwrite=True (--overwrite) to replace it"
            )
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            # the oldest superblock on purpose: it has no enforced "open for writing" flag, so
            # a file whose writer was killed opens for reading and resuming without h5clear
            # (libver="latest", which SWMR needs, leaves such a file unopenable)
            with h5py.File(tmp, "w", libver="earliest") as h5:
                cls._layout(h5, freqs_hz, P, outs, attrs, model, n_fft)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return cls(h5py.File(path, "r+"), path, n_fft)

    @staticmethod
    def _open_existing(path):
        import h5py

        if not h5py.is_hdf5(path):
            raise ValueError(f"cannot resume {path!r}: it is not an HDF5 file (use overwrite=True to replace it)")
        h5 = h5py.File(path, "r+")
        if _attr_str(h5.attrs.get("format")) != FORMAT:
            h5.close()
            raise ValueError(
                f"cannot resume {path!r}: not a femfreq result file (no format={FORMAT!r} attribute)"
            )
        return h5

    @staticmethod
    def _check_matches(h5, path, freqs_hz, P, outs):
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

    @staticmethod
    def _layout(h5, freqs_hz, P, outs, attrs, model, n_fft):
        """Create every dataset at full size, storage allocated."""
        import femfreq

        F, n_out = freqs_hz.size, outs["dof"].size
        nan_c = np.complex128(complex(np.nan, np.nan))

        def dset(name, shape, dtype, data=None, fill=None, **kw):
            return h5.create_dataset(name, shape=shape, dtype=dtype, data=data, fillvalue=fill,
                                     dcpl=_early_dcpl(), **kw)

        dset("freqs_hz", (F,), np.float64, data=freqs_hz)
        dset("load_spectrum", (F,), np.complex128, data=P)
        dset("response", (F, n_out), np.complex128, fill=nan_c)
        dset("done", (F,), np.bool_, fill=False)
        dset("rel_residual", (F,), np.float64, fill=np.nan)
        dset("backward_error", (F,), np.float64, fill=np.nan)
        dset("method", (F,), np.int8, fill=0)
        dset("outputs/node", (n_out,), np.int64, data=outs["node"])
        dset("outputs/direction", (n_out,), np.int8, data=outs["direction"])
        dset("outputs/dof", (n_out,), np.int64, data=outs["dof"])
        dset("outputs/xy", (n_out, 2), np.float64, data=outs["xy"])
        nt = n_fft or 0
        dset("time/t", (nt,), np.float64, fill=np.nan)
        dset("time/response", (nt, n_out), np.float64, fill=np.nan)
        rows = max(F, 1)
        h5.create_dataset(
            "chunks", shape=(rows,), maxshape=(None,), chunks=(min(rows, 1024),), dtype=_chunk_dtype(),
            dcpl=_early_dcpl(),
        )
        h5["outputs/direction"].attrs["meaning"] = "0 = x, 1 = y"
        h5["method"].attrs["meaning"] = "0 not done, 1 direct, 2 fast"
        h5["response"].attrs["meaning"] = "x at the output DOF; (K(1+ig) + i w C - w^2 M) x = P(w) b"
        h5.create_group("model")
        h5.create_group("versions")
        root = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "femfreq_version": femfreq.__version__,
            "created": _now(),
        }
        _write_attrs(h5.attrs, {**attrs, **root})
        # what finish() records, preallocated at a fixed size so that finishing overwrites
        # these attribute values in place instead of growing the root object header
        for key, value in _finish_placeholders().items():
            h5.attrs[key] = value
        _write_attrs(h5["model"].attrs, model)
        _write_attrs(h5["versions"].attrs, _versions())
        h5.flush()

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> np.ndarray:
        """(F,) bool: which frequencies are in the file (a copy)."""
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
            (rows with method 0 are recorded as skipped: not done), ``worker str``,
            ``t_start, t_end`` (epoch s).

        Raises
        ------
        TypeError
            If an attribute is missing.
        ValueError
            Indices out of range or repeated, or arrays of the wrong shape.
        """
        h5 = self._file()
        try:
            index, response = chunk.index, chunk.response
            rel, bwd, method = chunk.rel_residual, chunk.backward_error, chunk.method
            worker, t_start, t_end = chunk.worker, chunk.t_start, chunk.t_end
        except AttributeError as exc:
            raise TypeError(f"write_chunk needs a ChunkResult-like object: {exc}") from None
        idx = np.asarray(index).astype(np.int64, casting="same_kind").ravel()
        k = idx.size
        if k == 0:
            return
        if idx.min() < 0 or idx.max() >= self.n_freqs:
            bad = idx[(idx < 0) | (idx >= self.n_freqs)][0]
            raise ValueError(f"chunk index {bad} is out of range 0..{self.n_freqs - 1}")
        response = np.asarray(response, dtype=np.complex128)
        if response.ndim == 1 and self.n_out == 1:
            response = response[:, None]
        if response.shape != (k, self.n_out):
            raise ValueError(f"chunk response must have shape ({k}, {self.n_out}) (has {response.shape})")
        cols = {}
        for name, arr, dtype in (("rel_residual", rel, np.float64), ("backward_error", bwd, np.float64),
                                 ("method", method, np.int8)):
            a = np.asarray(arr, dtype=dtype)
            if a.ndim == 0:
                a = np.full(k, a)
            if a.shape != (k,):
                raise ValueError(f"chunk {name} must have shape ({k},) (has {a.shape})")
            cols[name] = a
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
        done = cols["method"] != 0
        h5["done"][sel] = done
        h5.flush()
        self._done[idx] = done

    def _append_chunk_row(self, start, count, worker, t_start, t_end):
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

        Frequencies not done (skipped, e.g. a singular 0 Hz point) stay marked so
        in ``done``; a warning says how many.
        """
        h5 = self._file()
        n_missing = int((~self._done).sum())
        if n_missing:
            warnings.warn(
                f"{self.path}: finishing with {n_missing} of {self.n_freqs} frequencies not done", stacklevel=2
            )
        final = _finish_placeholders(status="complete", finished=_now(), n_done=int(self._done.sum()))
        for key, value in final.items():  # same sizes as at creation: rewritten in place
            h5.attrs.modify(key, value)
        h5.flush()
        extra = dict(attrs)
        for key, value in (timings or {}).items():
            extra[f"time_{key}"] = value
        if extra:  # new attributes: after the status, each step flushed
            _write_attrs(h5.attrs, extra)
            h5.flush()
        self.finished = True


def _finish_placeholders(status="running", finished="", n_done=-1) -> dict:
    """The attributes finish() sets, as fixed-size values (status S8, finished S32, n_done int64)."""
    return {
        "status": np.bytes_(status.encode("ascii")[:8].ljust(8, b"\0")),
        "finished": np.bytes_(finished.encode("ascii")[:32].ljust(32, b"\0")),
        "n_done": np.int64(n_done),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
