"""Mandelbrot on dask: numba vs numpy kernels, throughput vs task size, streamed to HDF5.

1. Kernels side by side on the same window (the reference window, and the whole set):
   numba (``mandelbrot_block``) vs vectorised numpy (``mandelbrot_numpy``), medians of repeats,
   counts compared exactly.
2. The image computed on a local dask cluster (2 one-thread workers), row blocks streamed to
   HDF5 with a PNG preview, for several rows-per-task: pixels/s overall and per worker,
   result bytes/s, client memory growth (sampled RSS), against the same image computed in
   this process.

Quick: 2000 x 2000 pixels of the reference window. Full: the 35000 x 35000 reference image
(1.2 gigapixels, ~1.2 GB of HDF5; minutes on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

N_WORKERS = 2


class _PeakRSS:
    """Sample this process's resident memory in a thread; ``peak - base`` is the growth."""

    def __init__(self, interval=0.05):
        import psutil

        self._proc = psutil.Process()
        self.base = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)

    def _loop(self, interval):
        while not self._stop.wait(interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _median_time(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(quick: bool = True) -> dict:
    """Kernel comparison rows and dask rows (one per rows-per-task)."""
    from femfreq.calibrate.mandelbrot import (
        REFERENCE_MAX_ITER,
        REFERENCE_SIZE,
        REFERENCE_WINDOW,
        mandelbrot_block,
        mandelbrot_image,
        mandelbrot_numpy,
        mandelbrot_on_dask,
        read_mandelbrot,
    )
    from femfreq.execute import open_client
    from femfreq.options import Local

    it = REFERENCE_MAX_ITER
    load = [round(x, 1) for x in os.getloadavg()]
    rows = []
    mandelbrot_block(*REFERENCE_WINDOW, 8, 8, 0, 8, it)  # compile outside the timings
    side = 500 if quick else 2000
    for label, window in (("reference window", REFERENCE_WINDOW), ("whole set", (-2.0, 0.6, -1.2, 1.2))):
        t_nb, a = _median_time(lambda: mandelbrot_block(*window, side, side, 0, side, it), 3)
        t_np, b = _median_time(lambda: mandelbrot_numpy(*window, side, side, 0, side, it), 3 if quick else 1)
        rows.append(
            {
                "case": f"kernels, {label} {side}x{side}",
                "numba_s": t_nb,
                "numpy_s": t_np,
                "numba_vs_numpy": t_np / t_nb,
                "numba_Mpix_s": side * side / t_nb / 1e6,
                "mean_iterations": float(a.mean()),
                "identical": bool(np.array_equal(a, b)),
            }
        )

    width, height = (2000, 2000) if quick else REFERENCE_SIZE
    tmp = tempfile.mkdtemp(prefix="femfreq-mandelbrot-")
    curve = []
    try:
        serial_s = None
        if quick:
            serial_s, image = _median_time(lambda: mandelbrot_image(width, height), 1)
            rows.append({"case": f"in-process numba {width}x{height}", "wall_s": serial_s,
                         "Mpix_s": width * height / serial_s / 1e6})
        row_choices = (2, 16, 125, 500) if quick else (None,)
        with open_client(Local(n_workers=N_WORKERS, threads_per_worker=1, dashboard=False)) as client:
            client.run(mandelbrot_block, *REFERENCE_WINDOW, 8, 8, 0, 8, it)  # compile in the workers
            for rpt in row_choices:
                path = os.path.join(tmp, f"mandelbrot-{rpt}.h5")
                with _PeakRSS() as mem:
                    run_ = mandelbrot_on_dask(client, path, width, height, REFERENCE_WINDOW, it, rpt,
                                              compression=None if quick else "lzf")
                m = run_.metrics()
                row = {
                    "case": f"dask {width}x{height}, {m['n_tasks']} tasks of {run_.tasks[0]['row1'] - run_.tasks[0]['row0']} rows",
                    "wall_s": m["wall_s"],
                    "Mpix_s": m["pixels_per_s"] / 1e6,
                    "Mpix_s_per_worker": m["pixels_per_s_per_worker"] / 1e6,
                    "compute_Mpix_s_per_worker": sorted(round(v / 1e6, 2) for v in m["compute_pixels_per_s_per_worker"].values()),
                    "result_MB_s": m["bytes_per_s"] / 1e6,
                    "busy_fraction": m["busy_fraction"],
                    "client_rss_growth_MB": (mem.peak - mem.base) / 2**20,
                    "file_MB": os.path.getsize(path) / 2**20,
                }
                if serial_s:
                    row["speedup_vs_in_process"] = serial_s / m["wall_s"]
                    row["identical"] = bool(np.array_equal(read_mandelbrot(path), image))
                rows.append(row)
                curve.append({"rows_per_task": run_.tasks[0]["row1"] - run_.tasks[0]["row0"], "n_tasks": m["n_tasks"],
                              "Mpix_s": m["pixels_per_s"] / 1e6, "busy_fraction": m["busy_fraction"]})
                preview = str(run_.preview)
                if rpt != row_choices[-1]:
                    os.remove(path)
        keep_preview = os.path.join(tmp, "preview.png")
        shutil.copy(preview, keep_preview)
    finally:
        for name in os.listdir(tmp):
            if name.endswith(".h5"):
                os.remove(os.path.join(tmp, name))
    return {
        "name": "Mandelbrot: numba vs numpy, throughput on dask streamed to HDF5",
        "rows": rows,
        "notes": (
            f"Reference window Re {REFERENCE_WINDOW[:2]}, Im {REFERENCE_WINDOW[2:]}, {it} iterations; "
            f"{N_WORKERS} local dask workers x 1 thread; load average at start {load}. numba_vs_numpy = numpy time / "
            "numba time on the same pixels (medians of repeats). Mpix_s = image pixels / wall time (submit to last block "
            "written); compute_Mpix_s_per_worker = pixels / kernel time in each worker; result_MB_s = uint8 result bytes "
            "moved to the client / wall; client_rss_growth_MB = peak resident memory of the client during the run minus "
            "before (bounded by the blocks in flight, not the image)."
        ),
        "curve": curve,
        "preview": keep_preview,
        "tmpdir": tmp,
    }


def plot(result: dict, out_dir: str) -> list[str]:
    """Throughput vs rows per task, and the preview image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    curve = result.get("curve", [])
    if len(curve) > 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = [c["rows_per_task"] for c in curve]
        ax.semilogx(x, [c["Mpix_s"] for c in curve], "o-", label="Mpixel/s (all workers)")
        for c in curve:
            ax.annotate(f"{c['n_tasks']} tasks", (c["rows_per_task"], c["Mpix_s"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 4))
        ax.set_xlabel("rows per task")
        ax.set_ylabel("Mpixel/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title("Mandelbrot on dask: throughput vs task size", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, "mandelbrot_throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    if result.get("preview") and os.path.exists(result["preview"]):
        path = os.path.join(out_dir, "mandelbrot_preview.png")
        shutil.copy(result["preview"], path)
        out.append(path)
    if result.get("tmpdir"):
        shutil.rmtree(result["tmpdir"], ignore_errors=True)
    return out


if __name__ == "__main__":
    from benchmarks._common import markdown

    res = run(quick="--full" not in sys.argv[1:])
    print(markdown(res))
    shutil.rmtree(res["tmpdir"], ignore_errors=True)
