"""Mandelbrot calibration workload: escape-time counts, row blocks streamed to HDF5.

Definition of the count (shared by every kernel here, bit for bit): for the pixel ``c``,
``z_0 = 0`` and ``z_{n+1} = z_n**2 + c``; the count is the smallest ``n < max_iter`` with
``|z_n| > 2`` (tested as ``x*x + y*y > 4``), or ``max_iter`` if there is none. So ``c = 0``
gives ``max_iter``, ``c = 3`` gives 1 (``z_1 = 3``) and ``c = 1 + 1j`` gives 2
(``z_1 = 1 + 1j``, ``|z_1| < 2``; ``z_2 = 1 + 3j``). Counts are ``uint8``, hence
``max_iter <= 255``.

Pixel ``(i, j)`` of a ``height x width`` image over the window
``(re_min, re_max, im_min, im_max)`` is ``c = re[j] + 1j * im[i]`` with
``re = linspace(re_min, re_max, width)`` and ``im = linspace(im_max, im_min, height)``: row 0
is the top (largest imaginary part), as an image is shown.

The reference image is 35000 x 35000 pixels over Re [-0.7440, -0.7433], Im [0.1315, 0.1322]
with 255 iterations (:data:`REFERENCE_WINDOW`). :func:`mandelbrot_on_dask` computes it in row
blocks on a dask cluster and streams each block to a chunked HDF5 dataset as it completes,
with a bounded number of blocks in flight, so peak memory is about
``max_in_flight * rows_per_task * width`` bytes whatever the image size; a downsampled PNG
preview is accumulated block by block.

Both kernels use the same arithmetic in the same order and numba runs without fastmath (no
fused multiply-add), so the numba and numpy counts are identical.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

__all__ = [
    "REFERENCE_WINDOW",
    "REFERENCE_SIZE",
    "REFERENCE_MAX_ITER",
    "MandelbrotRun",
    "mandelbrot_block",
    "mandelbrot_numpy",
    "mandelbrot_image",
    "mandelbrot_task",
    "mandelbrot_on_dask",
    "read_mandelbrot",
]

log = logging.getLogger(__name__)

#: (re_min, re_max, im_min, im_max) of the reference image.
REFERENCE_WINDOW = (-0.7440, -0.7433, 0.1315, 0.1322)
#: (width, height) of the reference image.
REFERENCE_SIZE = (35000, 35000)
REFERENCE_MAX_ITER = 255


def _check_args(re_min, re_max, im_min, im_max, width, height, row0, row1, max_iter):
    """Validate the window, sizes, row range and iteration count; return them normalised."""
    window = tuple(float(v) for v in (re_min, re_max, im_min, im_max))
    if not all(math.isfinite(v) for v in window):
        raise ValueError(f"window must be finite (got {window})")
    if not (window[0] < window[1] and window[2] < window[3]):
        raise ValueError(f"window must have re_min < re_max and im_min < im_max (got {window})")
    ints = {}
    for name, v in (("width", width), ("height", height), ("row0", row0), ("row1", row1), ("max_iter", max_iter)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer (got {v!r})")
        ints[name] = int(v)
    if ints["width"] < 1 or ints["height"] < 1:
        raise ValueError(f"image size must be at least 1 x 1 (got {ints['width']} x {ints['height']})")
    if not 0 <= ints["row0"] <= ints["row1"] <= ints["height"]:
        raise ValueError(f"rows [{ints['row0']}, {ints['row1']}) outside the image height {ints['height']}")
    if not 1 <= ints["max_iter"] <= 255:
        raise ValueError(f"max_iter must be in [1, 255] for uint8 counts (got {ints['max_iter']})")
    return window, ints["width"], ints["height"], ints["row0"], ints["row1"], ints["max_iter"]


def _axes(window, width, height, row0, row1):
    """Real parts of the columns and imaginary parts of rows [row0, row1) (top row = im_max)."""
    re_min, re_max, im_min, im_max = window
    re = np.linspace(re_min, re_max, width)
    im = np.linspace(im_max, im_min, height)[row0:row1]
    return re, im


@numba.njit(cache=True, fastmath=False)
def _escape_counts(re, im, max_iter):  # pragma: no cover - compiled
    """Numba kernel: (len(im), len(re)) uint8 escape counts."""
    out = np.empty((im.shape[0], re.shape[0]), dtype=np.uint8)
    for i in range(im.shape[0]):
        cy = im[i]
        for j in range(re.shape[0]):
            cx = re[j]
            x = 0.0
            y = 0.0
            n = 0
            while n < max_iter:
                xx = x * x
                yy = y * y
                if xx + yy > 4.0:
                    break
                y = 2.0 * x * y + cy
                x = xx - yy + cx
                n += 1
            out[i, j] = n
    return out


def mandelbrot_block(re_min, re_max, im_min, im_max, width, height, row0, row1, max_iter=255):
    """Escape counts of rows ``[row0, row1)`` of the image, numba kernel.

    Parameters
    ----------
    re_min, re_max, im_min, im_max : float
        The window of the complex plane, ``re_min < re_max``, ``im_min < im_max``.
    width, height : int
        Size of the whole image in pixels.
    row0, row1 : int
        The block of rows to compute, ``0 <= row0 <= row1 <= height`` (row 0 = ``im_max``).
    max_iter : int, optional
        Iteration limit, 1..255.

    Returns
    -------
    (row1 - row0, width) uint8 ndarray
        Escape counts, defined in the module docstring.

    Raises
    ------
    ValueError, TypeError
        For an empty or non-finite window, non-integer or out-of-range sizes and rows, or
        ``max_iter`` outside [1, 255].

    Examples
    --------
    >>> mandelbrot_block(-2.0, 1.0, -1.0, 1.0, 3, 3, 0, 3, 50)[1]   # c = -2, -0.5, 1
    array([50, 50,  3], dtype=uint8)
    """
    window, width, height, row0, row1, max_iter = _check_args(
        re_min, re_max, im_min, im_max, width, height, row0, row1, max_iter
    )
    re, im = _axes(window, width, height, row0, row1)
    return _escape_counts(re, im, max_iter)


def mandelbrot_numpy(re_min, re_max, im_min, im_max, width, height, row0, row1, max_iter=255):
    """Escape counts of rows ``[row0, row1)``, vectorised numpy kernel (for comparison).

    Same parameters, result and errors as :func:`mandelbrot_block`, identical counts; it
    iterates on the still-bounded pixels only, compressing the arrays as pixels escape.
    """
    window, width, height, row0, row1, max_iter = _check_args(
        re_min, re_max, im_min, im_max, width, height, row0, row1, max_iter
    )
    re, im = _axes(window, width, height, row0, row1)
    cx = np.broadcast_to(re, (len(im), width)).ravel().copy()
    cy = np.broadcast_to(im[:, None], (len(im), width)).ravel().copy()
    counts = np.full(cx.size, max_iter, dtype=np.uint8)
    alive = np.arange(cx.size)
    x = np.zeros_like(cx)
    y = np.zeros_like(cy)
    for n in range(max_iter):
        xx = x * x
        yy = y * y
        escaped = xx + yy > 4.0
        if escaped.any():
            counts[alive[escaped]] = n
            keep = ~escaped
            alive, x, y, xx, yy, cx, cy = (v[keep] for v in (alive, x, y, xx, yy, cx, cy))
            if alive.size == 0:
                break
        y = 2.0 * x * y + cy
        x = xx - yy + cx
    return counts.reshape(len(im), width)


def mandelbrot_image(width, height, window=REFERENCE_WINDOW, max_iter=REFERENCE_MAX_ITER):
    """The whole ``(height, width)`` uint8 image in this process (numba kernel)."""
    return mandelbrot_block(*window, width, height, 0, height, max_iter)


def mandelbrot_task(window, width, height, row0, row1, max_iter):
    """One dask task: a row block plus its timing record (worker, start, end, seconds)."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = f"local-{os.getpid()}"
    t0 = time.time()
    c0 = time.perf_counter()
    block = mandelbrot_block(*window, width, height, row0, row1, max_iter)
    seconds = time.perf_counter() - c0
    return block, {
        "row0": row0,
        "row1": row1,
        "pixels": int(block.size),
        "worker": worker,
        "t_start": t0,
        "t_end": t0 + seconds,
        "seconds": seconds,
    }


@dataclass
class MandelbrotRun:
    """The outcome of :func:`mandelbrot_on_dask`.

    Attributes
    ----------
    path : Path
        The HDF5 file (dataset ``/counts``, ``(height, width) uint8``).
    preview : Path or None
        The PNG preview.
    width, height, max_iter : int
    window : tuple of 4 floats
    wall_s : float
        First submit to last block written, seconds.
    tasks : list of dict
        Per task: ``row0, row1, pixels, worker, t_start, t_end, seconds`` (compute time on
        the worker), ``received`` (epoch s when the client had the block).
    bytes_moved : int
        Result bytes sent from the workers to the client.
    n_workers : int
        Worker threads in the cluster.
    """

    path: Path
    preview: Path | None
    width: int
    height: int
    window: tuple
    max_iter: int
    wall_s: float = 0.0
    tasks: list = field(default_factory=list)
    bytes_moved: int = 0
    n_workers: int = 1

    def metrics(self) -> dict:
        """Throughput figures: pixels/s overall and per worker, result bytes/s, compute share."""
        pixels = self.width * self.height
        per_worker: dict[str, list] = {}
        for t in self.tasks:
            w = per_worker.setdefault(t["worker"], [0, 0.0])
            w[0] += t["pixels"]
            w[1] += t["seconds"]
        busy = sum(v[1] for v in per_worker.values())
        return {
            "pixels": pixels,
            "n_tasks": len(self.tasks),
            "n_workers": self.n_workers,
            "wall_s": self.wall_s,
            "pixels_per_s": pixels / self.wall_s if self.wall_s > 0 else float("nan"),
            "pixels_per_s_per_worker": pixels / self.wall_s / self.n_workers if self.wall_s > 0 else float("nan"),
            "compute_pixels_per_s_per_worker": {w: v[0] / v[1] if v[1] > 0 else float("nan") for w, v in per_worker.items()},
            "bytes_moved": self.bytes_moved,
            "bytes_per_s": self.bytes_moved / self.wall_s if self.wall_s > 0 else float("nan"),
            "busy_fraction": busy / (self.n_workers * self.wall_s) if self.wall_s > 0 else float("nan"),
        }


class _Preview:
    """Block-mean downsampled image accumulated from row blocks (memory: the preview only)."""

    def __init__(self, width, height, max_size):
        self.factor = max(1, math.ceil(max(width, height) / max(1, int(max_size))))
        self.width, self.height = width, height
        shape = (math.ceil(height / self.factor), math.ceil(width / self.factor))
        self.sums = np.zeros(shape)
        self.counts = np.zeros(shape)

    def add(self, row0, block):
        """Add the rows ``[row0, row0 + len(block))``."""
        f = self.factor
        # columns: sums over groups of f (the last group may be shorter)
        col_starts = np.arange(0, self.width, f)
        colsum = np.add.reduceat(block, col_starts, axis=1, dtype=np.float64)
        colcnt = np.diff(np.append(col_starts, self.width)).astype(np.float64)
        rows = np.arange(row0, row0 + block.shape[0])
        starts = np.flatnonzero(np.r_[True, np.diff(rows // f) != 0])
        rowsum = np.add.reduceat(colsum, starts, axis=0)
        rowcnt = np.diff(np.append(starts, block.shape[0])).astype(np.float64)
        prow = rows[starts] // f
        self.sums[prow] += rowsum
        self.counts[prow] += rowcnt[:, None] * colcnt[None, :]

    def image(self):
        """The mean count of each preview pixel (nan where nothing arrived)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts

    def save(self, path, max_iter):
        """Write the PNG (matplotlib colormap, log-scaled counts)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        img = np.nan_to_num(self.image(), nan=0.0)
        plt.imsave(path, np.log1p(img), cmap="magma", vmin=0.0, vmax=np.log1p(max_iter))


def _n_threads(client) -> int:
    """Total worker threads of the cluster behind ``client``."""
    info = client.scheduler_info()
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))


def mandelbrot_on_dask(
    client,
    path,
    width: int = REFERENCE_SIZE[0],
    height: int = REFERENCE_SIZE[1],
    window=REFERENCE_WINDOW,
    max_iter: int = REFERENCE_MAX_ITER,
    rows_per_task: int | None = None,
    *,
    preview: str | os.PathLike | None | bool = True,
    preview_size: int = 1024,
    max_in_flight: int | None = None,
    compression: str | None = None,
    overwrite: bool = False,
) -> MandelbrotRun:
    """Compute a Mandelbrot image in row blocks on a dask cluster, streaming to HDF5.

    Blocks are written to ``path`` (dataset ``/counts``, ``(height, width) uint8``, chunked
    by row block) as they complete, in any order; at most ``max_in_flight`` blocks are
    submitted and not yet written, so the client holds about
    ``max_in_flight * rows_per_task * width`` bytes of results at any time.

    Parameters
    ----------
    client : distributed.Client
    path : str or PathLike
        The HDF5 file to create.
    width, height : int
        Image size in pixels (default: the 35000 x 35000 reference).
    window : (re_min, re_max, im_min, im_max)
        Default :data:`REFERENCE_WINDOW`.
    max_iter : int
        1..255 (default 255).
    rows_per_task : int, optional
        Rows per task; default about 4 MB of pixels per block (at least 1 row), and at least
        4 blocks per worker thread.
    preview : path, True, False or None
        PNG preview: ``True`` writes ``path`` with suffix ``.png``; a path writes there;
        ``False``/``None`` skips it.
    preview_size : int
        Longest side of the preview in pixels (block means of the full image).
    max_in_flight : int, optional
        Blocks submitted and not yet written; default 2 per worker thread, up to 16 per
        worker thread for small blocks while their total stays under 64 MB.
    compression : {None, "gzip", "lzf"}
        HDF5 compression of the dataset.
    overwrite : bool
        Replace an existing file (otherwise FileExistsError).

    Returns
    -------
    MandelbrotRun
        Paths, per-task records and totals; ``.metrics()`` gives the throughput.

    Raises
    ------
    ValueError, TypeError
        For a bad window, size, iteration count, rows_per_task or compression.
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    femfreq.errors.OutputLockedError
        If another process is writing ``path`` (one output, one writer: the lock is taken
        before the file is checked or opened, so a second run never truncates the first
        one's image).

    Notes
    -----
    A run that fails before its first block is written leaves no file behind; one that
    fails later keeps the rows written so far, with ``status`` ``"failed: <error>"``.
    """
    import h5py
    from distributed import as_completed

    from ..results import OutputLock

    window, width, height, _, _, max_iter = _check_args(*window, width, height, 0, 0, max_iter)
    n_threads = _n_threads(client)
    if rows_per_task is None:
        rows_per_task = max(1, min((4 << 20) // width, math.ceil(height / (4 * n_threads))))
    if isinstance(rows_per_task, bool) or not isinstance(rows_per_task, (int, np.integer)) or rows_per_task < 1:
        raise ValueError(f"rows_per_task must be a positive integer (got {rows_per_task!r})")
    rows_per_task = int(min(rows_per_task, height))
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"unknown compression {compression!r}; pick one of [None, 'gzip', 'lzf']")
    if max_in_flight is None:
        # enough blocks queued to hide the round trip of small tasks, within ~64 MB of results
        max_in_flight = max(2 * n_threads, min(16 * n_threads, (64 << 20) // (rows_per_task * width)))
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, (int, np.integer)) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be a positive integer (got {max_in_flight!r})")
    max_in_flight = int(max_in_flight)
    path = Path(path)
    lock = OutputLock(path)  # before the file is checked or opened: one output, one writer
    try:
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        preview_path = None
        if preview is True:
            preview_path = path.with_suffix(".png")
        elif preview:
            preview_path = Path(preview)
        acc = _Preview(width, height, preview_size) if preview_path else None

        blocks = [(r, min(r + rows_per_task, height)) for r in range(0, height, rows_per_task)]
        chunk_cols = int(min(width, max(1, (1 << 20) // rows_per_task)))
        records = []
        bytes_moved = 0
        t0 = time.perf_counter()
        try:
            with h5py.File(path, "w") as f:
                dset = f.create_dataset("counts", shape=(height, width), dtype=np.uint8,
                                        chunks=(rows_per_task, chunk_cols), compression=compression)
                dset.attrs.update(
                    {
                        "window": np.array(window),
                        "max_iter": max_iter,
                        "definition": "smallest n < max_iter with |z_n| > 2, z_0 = 0, z_{n+1} = z_n^2 + c; "
                                      "else max_iter",
                        "rows": "row 0 = im_max; im = linspace(im_max, im_min, height), "
                                "re = linspace(re_min, re_max, width)",
                    }
                )
                f.attrs["status"] = "running"
                pending = iter(blocks)
                seq = as_completed(with_results=True)
                submitted = 0

                def _submit(n):
                    # one batch of submissions (fewer client/scheduler round trips than one by one)
                    nonlocal submitted
                    nxt = [b for _, b in zip(range(max(n, 0)), pending)]
                    if nxt:
                        seq.update(
                            client.map(mandelbrot_task, [window] * len(nxt), [width] * len(nxt), [height] * len(nxt),
                                       [r0 for r0, _ in nxt], [r1 for _, r1 in nxt], [max_iter] * len(nxt), pure=False)
                        )
                        submitted += len(nxt)

                _submit(max_in_flight)
                for batch in seq.batches():
                    for fut, (block, rec) in batch:
                        fut.release()
                        rec["received"] = time.time()
                        dset[rec["row0"] : rec["row1"]] = block
                        if acc is not None:
                            acc.add(rec["row0"], block)
                        bytes_moved += block.nbytes
                        records.append(rec)
                    del batch, block
                    _submit(max_in_flight - (submitted - len(records)))
                f.attrs["status"] = "complete"
        except BaseException as exc:
            _record_failure(path, exc, written=bool(records))
            raise
    finally:
        lock.release()
    wall = time.perf_counter() - t0
    if acc is not None:
        acc.save(preview_path, max_iter)
    records.sort(key=lambda r: r["row0"])
    return MandelbrotRun(
        path=path,
        preview=preview_path,
        width=width,
        height=height,
        window=window,
        max_iter=max_iter,
        wall_s=wall,
        tasks=records,
        bytes_moved=bytes_moved,
        n_workers=n_threads,
    )


def _record_failure(path, exc, *, written):
    """A failed run: no file when nothing was written, else the rows so far with the error in ``status``."""
    import h5py

    if not written:
        path.unlink(missing_ok=True)
        return
    try:
        with h5py.File(path, "r+") as f:
            f.attrs["status"] = f"failed: {type(exc).__name__}: {exc}"[:1000]
    except OSError:  # the file itself is what failed: leave it as it is
        pass


def read_mandelbrot(path, rows: slice | None = None) -> np.ndarray:
    """Read the counts (or a slice of rows) from a file written by :func:`mandelbrot_on_dask`."""
    import h5py

    with h5py.File(path, "r") as f:
        if "counts" not in f:
            raise ValueError(f"{path}: no /counts dataset (not a Mandelbrot file)")
        return f["counts"][rows if rows is not None else slice(None)]
