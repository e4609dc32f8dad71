"""Writing a result file as a sweep runs: :class:`ResultWriter` (create, resume, overwrite).

One writer per file. :meth:`ResultWriter.create` takes an OS lock on ``<path>.lock``
(see :mod:`femfreq.results._lock`) before it looks at the path, and holds it until
:meth:`ResultWriter.close`: a second writer of the same path fails at once, naming the
process that holds it.

Nothing is touched before it has to be. Every check (arguments, an existing file, a
resume's match) runs before the path is written. With ``defer=True`` (what
:func:`femfreq.sweep.solve` uses) a new file is written only when the first chunk of
results arrives: a sweep that fails before (bad options, cluster down, singular first
frequency) leaves no file, and an overwritten file stays as it was. A new file is
built in a temporary ``<path>.tmp-<pid>`` next to the output and renamed over it once
it holds its first chunk (or at once without ``defer``), so the path always holds a
complete or resumable file.

Crash safety. Every dataset is created at its full size with its storage
allocated up front (``H5D_ALLOC_TIME_EARLY``; contiguous layout except the
``/chunks`` table, whose chunks are allocated too). After that, writing a chunk of
results only overwrites raw data in place: no byte of HDF5 metadata changes while the
sweep runs (a test checks this byte by byte), so a client killed at any instant
(SIGKILL) leaves the structure written at creation. Rows are written and flushed
*before* their ``done`` flags are set and flushed, so ``done`` never claims a row that
is not in the file; at most the chunk in flight is lost. Only the rare growth of
``/chunks`` (more chunks than planned), :meth:`ResultWriter.finish` and
:meth:`ResultWriter.close` (which trims ``/chunks`` to the chunks that ran) touch
metadata.

Write errors. A write that fails (a full disk, a file size limit) raises an
``OSError`` of one line naming the file and the cause; the temporary is removed, a
previous file is left as it was, and the rows written before stay resumable.

The file uses the oldest superblock (version 0), which does not enforce the
"file is open for writing" flag, so a killed writer's file opens for reading and
for resuming as it is. With ``libver="latest"`` (which SWMR requires) every such
file refused to open ("file is already open for write ... use h5clear"), so SWMR
is not used. Flushes hand the data to the operating system (enough when the
process dies); they do not ``fsync`` (no protection against power loss).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings

import numpy as np

from .. import _validate
from ..codes import MEANING, Method
from ._format import _WORKER_LEN
from ._layout import create_image, finish_placeholders, now, write_attrs, write_image
from ._lock import OutputLock
from ._resume import check_fingerprint, check_matches, open_existing, upgrade
from .reader import _result_from_h5
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

    def __init__(self, path: str, n_fft: int | None, *, lock, done, n_out: int, n_chunks: int, opener,
                 resumed=False):
        """Internal: use :meth:`create`."""
        self.path = path
        self.n_fft = n_fft
        self._lock = lock
        self._done = done
        self.n_freqs = int(done.size)
        self.n_out = int(n_out)
        self._n_chunks = n_chunks
        self._opener = opener  # () -> (h5py.File, temporary path or None)
        self._h5 = None
        self._tmp = None
        self._broken = False
        self._on_disk = resumed
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
        fingerprint=None,
        defer=False,
        base=None,
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
            spectrum, outputs and ``fingerprint`` must match. A missing file is created.
            A file of format version 1 or 2 is upgraded to version 3 before anything is
            written to it (it has no fingerprint to check: a warning says so).
        overwrite : bool
            Replace an existing file (only once the new one holds its first chunk
            when ``defer``).
        fingerprint : dict, optional
            What determines the answer beyond frequencies, load and outputs, as
            ``{name: str or number}`` (:func:`femfreq.sweep.solve` stores hashes of the
            matrices and load vector, g, method, tol, solver); stored in
            ``/fingerprint`` and compared on resume.
        defer : bool
            Check everything now but write nothing until the first :meth:`write_chunk`
            (or :meth:`finish`): a writer closed before leaves the path as it was.
        base : dict, optional
            For an enforced base motion sweep: ``direction (2,)``, ``acceleration (F,)``
            complex (the base acceleration ``a_b``) and ``influence (n_out,)`` (``r`` at the
            outputs); the file then records ``analysis = "base_motion"`` and holds
            ``/base`` (with the ``interface_force`` of each chunk). Default: a point load.

        Returns
        -------
        ResultWriter

        Raises
        ------
        FileExistsError
            If the file exists and neither ``resume`` nor ``overwrite`` is given.
        IsADirectoryError
            If ``path`` is a directory.
        femfreq.errors.OutputLockedError
            If another process writes this path (the message names its PID).
        ValueError
            Bad arguments; with ``resume``, a file that is not a femfreq result file,
            has a newer format version, or whose frequencies, load spectrum, outputs or
            fingerprint differ (every difference named in the message).
        OSError
            A write failed (one line naming the file and the cause).
        """
        path = os.fspath(path)
        if resume and overwrite:
            raise ValueError("pass either resume=True or overwrite=True, not both")
        freqs_hz, P, outs = _sweep_inputs(freqs_hz, load_spectrum, outputs)
        attrs, model, n_fft = _file_attrs(attrs, model, n_fft)
        fingerprint = dict(fingerprint or {})
        base = _base_inputs(base, freqs_hz.size, outs["dof"].size)
        if os.path.isdir(path):
            raise IsADirectoryError(f"result file {path!r} is a directory; give a file name")
        lock = OutputLock(path)
        try:
            exists = os.path.exists(path)
            if exists and resume:
                writer = cls._resume(path, lock, freqs_hz, P, outs, fingerprint)
            elif exists and not overwrite:
                raise FileExistsError(
                    f"result file {path!r} already exists; pass resume=True (--resume) to continue it "
                    "or overwrite=True (--overwrite) to replace it"
                )
            else:
                image = create_image(freqs_hz, P, outs, attrs, model, n_fft, fingerprint, base)
                writer = cls(path, n_fft, lock=lock, done=np.zeros(freqs_hz.size, bool), n_out=outs["dof"].size,
                             n_chunks=0, opener=lambda: _open_new(path, image))
        except BaseException:
            lock.release()
            raise
        if not defer:
            try:
                writer._file(publish=True)
            except BaseException:
                writer.close()
                raise
        return writer

    @classmethod
    def _resume(cls, path, lock, freqs_hz, P, outs, fingerprint) -> "ResultWriter":
        """A writer continuing an existing file whose sweep matches this one (checked read-only)."""
        with open_existing(path, "r") as h5:
            check_matches(h5, path, freqs_hz, P, outs)
            check_fingerprint(h5, path, fingerprint)
            done = h5["done"][()].astype(bool)
            stored_nfft = h5["time/t"].shape[0] or None
            used = np.flatnonzero(h5["chunks"]["count"] > 0)
        n_chunks = int(used[-1] + 1) if used.size else 0
        logger.info("resuming %s: %d of %d frequencies already done", path, done.sum(), freqs_hz.size)
        return cls(path, stored_nfft, lock=lock, done=done, n_out=outs["dof"].size, n_chunks=n_chunks,
                   opener=lambda: (_open_resumed(path, fingerprint, n_chunks + int((~done).sum())), None),
                   resumed=True)

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
    def on_disk(self) -> bool:
        """True when ``path`` holds this sweep's file (resumed, or created and holding a chunk)."""
        return self._on_disk

    @property
    def freqs_hz(self) -> np.ndarray:
        """(F,) float64 frequencies of the sweep."""
        return self._file()["freqs_hz"][()]

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not (self.finished or self._broken) and self._h5 is not None and self._tmp is None:
            logger.warning("sweep interrupted; %s keeps %d of %d frequencies (resumable)",
                           self.path, int(self._done.sum()), self.n_freqs)
        self.close()
        return False

    def close(self):
        """Trim ``/chunks`` to the chunks written, flush and close the file, release the lock (idempotent).

        A new file that never received a chunk (``defer``) is not written at all.
        """
        try:
            if self._h5 is not None and self._h5.id.valid:
                h5, self._h5 = self._h5, None
                with self._writing():
                    if not self._broken and self._tmp is None and h5.mode == "r+":
                        h5["chunks"].resize((self._n_chunks,))
                        h5.flush()
                h5.close()
        finally:
            self._h5 = None
            if self._tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._tmp)
                self._tmp = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _file(self, publish=False):
        """The open file (written on first use); ``publish`` renames a new file into place."""
        if self._h5 is None:
            if self._lock is None:
                raise ValueError(f"result file {self.path!r} is closed")
            with self._writing():
                self._h5, self._tmp = self._opener()
        if publish and self._tmp is not None:
            os.replace(self._tmp, self.path)
            self._tmp = None
            self._on_disk = True
        return self._h5

    @contextlib.contextmanager
    def _writing(self):
        """Turn an HDF5 or OS write failure into one ``OSError`` line naming the file and the cause."""
        try:
            yield
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)) and self._h5 is None:
                raise
            self._broken = True
            raise OSError(self._failure(exc)) from exc

    def _failure(self, exc) -> str:
        """The one-line message of a failed write."""
        cause = _cause(exc)
        if self._h5 is None or self._tmp is not None:
            kept = ("nothing was written; the existing file is unchanged" if os.path.exists(self.path)
                    else "nothing was written")
        else:
            kept = (f"it keeps the {int(self._done.sum())} of {self.n_freqs} frequencies written before "
                    "(resume=True / --resume continues it once there is room)")
        return f"cannot write result file {self.path!r}: {cause}; {kept}"

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
            (epoch s), and for base motion ``interface_force (k, 2)``. Rows with code 3 (skipped: singular, response NaN) are done like
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
        force = getattr(chunk, "interface_force", None)
        if force is not None:
            force = np.asarray(force, dtype=np.complex128)
            if force.shape != (k, 2):
                raise ValueError(f"chunk interface_force must have shape ({k}, 2) (has {force.shape})")
            force = force[order]
        sel = slice(int(idx[0]), int(idx[-1]) + 1) if idx[-1] - idx[0] == k - 1 else idx
        done = cols["method"] != Method.PENDING
        h5 = self._file()
        with self._writing():
            # rows first, flushed, then the done flags: done never claims a row not on disk
            h5["response"][sel, :] = response
            if force is not None and "base" in h5:
                h5["base/interface_force"][sel, :] = force
            for name, a in cols.items():
                h5[name][sel] = a
            self._append_chunk_row(int(idx[0]), k, worker, t_start, t_end)
            h5.flush()
            h5["done"][sel] = done
            h5.flush()
        self._done[idx] = done
        self._file(publish=True)  # a new file takes the path once it holds a chunk

    def _append_chunk_row(self, start, count, worker, t_start, t_end):
        """Record one chunk in ``/chunks`` (growing the table when it is full)."""
        table = self._h5["chunks"]
        if self._n_chunks >= table.shape[0]:
            table.resize((max(2 * table.shape[0], 8),))  # rare: the one metadata change while running
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
        with self._writing():
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
        h5 = self._file(publish=True)
        n_missing = int((~self._done).sum())
        if n_missing:
            warnings.warn(
                f"{self.path}: finishing with {n_missing} of {self.n_freqs} frequencies not done", stacklevel=2
            )
        final = finish_placeholders(status="complete", finished=now(), n_done=int(self._done.sum()))
        extra = dict(attrs)
        for key, value in (timings or {}).items():
            extra[f"time_{key}"] = value
        with self._writing():
            h5["chunks"].resize((self._n_chunks,))  # only the chunks that ran
            h5.flush()
            for key, value in final.items():  # created with the file: rewritten in place
                h5.attrs.modify(key, value)
            h5.flush()
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


def _base_inputs(base, F, n_out):
    """The checked ``base`` dict of :meth:`ResultWriter.create` (None: a point load)."""
    if base is None:
        return None
    direction = np.asarray(base["direction"], dtype=np.float64).ravel()
    accel = np.broadcast_to(np.asarray(base.get("acceleration", 1.0), dtype=np.complex128), (F,)).copy()
    influence = np.asarray(base["influence"], dtype=np.float64).ravel()
    if direction.shape != (2,) or influence.shape != (n_out,):
        raise ValueError(f"base needs direction (2,) and influence ({n_out},) "
                         f"(got {direction.shape} and {influence.shape})")
    return {"direction": direction, "acceleration": accel, "influence": influence}


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


def _cause(exc) -> str:
    """The operating system's words for a failed write (HDF5 puts them inside a long message)."""
    text = str(exc)
    found = re.search(r"error message = '([^']*)'", text)
    if found:
        return found.group(1)
    errno = getattr(exc, "errno", None)
    if not errno and (m := re.search(r"errno = (\d+)", text)):
        errno = int(m.group(1))
    if errno:
        return os.strerror(errno)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _open_new(path, image):
    """Write a new file's image to a temporary next to ``path`` and open it: ``(h5, tmp)``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    write_image(tmp, image)
    try:
        return _open_unbuffered(tmp), tmp
    except BaseException:
        os.remove(tmp)
        raise


def _open_resumed(path, fingerprint, rows):
    """Open an existing file for writing, upgraded, with room for ``rows`` chunk rows."""
    h5 = open_existing(path, "r+", opener=_open_unbuffered)
    try:
        upgrade(h5, path, fingerprint)
        table = h5["chunks"]
        if table.shape[0] < rows:  # back to room for every chunk still to come
            table.resize((rows,))
            h5.flush()
    except BaseException:
        h5.close()
        raise
    return h5


def _open_unbuffered(path):
    """Open for writing with HDF5's raw-data caches off (chunk cache, sieve buffer).

    Every write then reaches the file when it is made: a write that fails (a full disk)
    fails there, with nothing left dirty in a cache for HDF5 to retry (and crash on) when
    the file is closed. The writes are whole rows, so the caches gained nothing.
    """
    import h5py
    from h5py import h5f, h5p

    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    mdc, _, _, w0 = fapl.get_cache()
    fapl.set_cache(mdc, 0, 0, w0)
    return h5py.File(h5f.open(os.fsencode(path), h5f.ACC_RDWR, fapl=fapl))
