"""Measure a dask cluster: task overhead, per-worker speed, result bandwidth (JSON for the planner).

Examples:
  femfreq calibrate                          # embedded local cluster, one worker per core
  femfreq calibrate --workers 2 -o calib.json --primes 2:200000 --mandelbrot 2000x2000
  femfreq calibrate --scheduler tcp://127.0.0.1:8786 -o calib.json   # the one `femfreq cluster` started
  femfreq calibrate --hostfile hosts.txt

The JSON keys are described in docs/calibration.md; ``task_overhead_s`` sets the smallest
useful chunk of a sweep. ``--primes A:B`` also sums the unique prime factors over [A, B)
(chunked vs strided split, checked against a sieve); ``--mandelbrot WxH`` computes that image of
the reference window on the cluster, streamed to HDF5.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

from ._common import add_cluster_args, security_from_args


def _int(text: str) -> int:
    """An integer from '200000', '2e5' or '10**7'."""
    t = text.strip().replace("_", "")
    try:
        if "**" in t:
            base, exp = t.split("**")
            return int(base) ** int(exp)
        v = float(t) if any(c in t for c in ".eE") else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if isinstance(v, float) and not v.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    return int(v)


def parse_range(text: str) -> tuple[int, int]:
    """``"A:B"`` -> (A, B) with 0 <= A < B."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected A:B (e.g. 2:200000), got {text!r}")
    a, b = (_int(p) for p in parts)
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"expected 0 <= A < B, got {text!r}")
    return a, b


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H), both >= 1."""
    parts = text.lower().split("x")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected WxH (e.g. 2000x2000), got {text!r}")
    w, h = (_int(p) for p in parts)
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size WxH, got {text!r}")
    return w, h


def add_args(parser) -> None:
    """Register the options of ``femfreq calibrate``."""
    add_cluster_args(parser)
    parser.add_argument("-o", "--output", metavar="FILE.json", help="write the calibration JSON here (default: only print the report)")
    parser.add_argument("--full", action="store_true", help="more repeats and larger transfers (slower, steadier)")
    parser.add_argument("--primes", metavar="A:B", type=parse_range, help="also run the primes workload over [A, B) (default: not run)")
    parser.add_argument("--mandelbrot", metavar="WxH", type=parse_size, help="also compute a WxH Mandelbrot image (default: not run)")
    parser.add_argument("--mandelbrot-out", metavar="FILE.h5", help="keep the Mandelbrot HDF5 (and .png preview) here (default: a temporary file, removed)")


def _primes_report(client, a, b) -> dict:
    """Chunked vs strided primes runs, checked against the sieve."""
    from femfreq.calibrate.primes import primes_metrics, primes_on_dask, primes_sieve

    expected = primes_sieve(a, b)
    out = {"range": [a, b], "sum": expected}
    for split in ("strided", "chunks"):
        run = primes_on_dask(client, a, b, split=split)
        m = primes_metrics(run)
        if run.total != expected:
            raise RuntimeError(f"primes over [{a}, {b}) with the {split} split gave {run.total}, the sieve {expected}")
        out[split] = {k: m[k] for k in ("n_tasks", "wall_s", "imbalance", "task_spread", "task_sum_s", "idle_fraction")}
    return out


def _mandelbrot_report(client, width, height, keep) -> dict:
    """The reference window at width x height on the cluster, streamed to HDF5."""
    from femfreq.calibrate.mandelbrot import REFERENCE_MAX_ITER, REFERENCE_WINDOW, mandelbrot_on_dask

    with tempfile.TemporaryDirectory(prefix="femfreq-calibrate-") as tmp:
        path = Path(keep) if keep else Path(tmp) / "mandelbrot.h5"
        run = mandelbrot_on_dask(client, path, width, height, REFERENCE_WINDOW, REFERENCE_MAX_ITER,
                                 preview=True, overwrite=bool(keep))
        m = run.metrics()
    out = {"size": [width, height], **{k: m[k] for k in ("n_tasks", "wall_s", "pixels_per_s", "pixels_per_s_per_worker",
                                                         "bytes_per_s", "busy_fraction")}}
    if keep:
        out["path"], out["preview"] = str(run.path), str(run.preview)
    return out


def _print_report(calib: dict) -> None:
    """A short human-readable summary."""
    print(f"cluster {calib['scheduler']}: {calib['n_workers']} workers, {calib['n_threads']} threads")
    print(f"  task latency      {calib['task_latency_s'] * 1e3:8.2f} ms (one submit -> result round trip)")
    print(f"  task overhead     {calib['task_overhead_s'] * 1e3:8.2f} ms of worker time per task "
          f"({calib['tasks_per_s']:.0f} empty tasks/s)")
    print(f"  result bandwidth  {calib['result_bandwidth_Bps'] / 1e6:8.1f} MB/s")
    rates = [s["mandelbrot_mpix_s"] for s in calib["worker_speed"].values()]
    flops = [s["matmul_gflops"] for s in calib["worker_speed"].values()]
    print(f"  worker speed      {min(rates):.2f} .. {max(rates):.2f} Mpixel/s (Mandelbrot), "
          f"{min(flops):.1f} .. {max(flops):.1f} GFLOP/s (matmul, 1 thread); spread {calib['speed_spread']:.2f}")
    from femfreq.calibrate import min_task_seconds

    print(f"  => tasks shorter than {min_task_seconds(calib):.2f} s spend more than 5% in dask overhead")
    if "primes" in calib:
        p = calib["primes"]
        print(f"  primes [{p['range'][0]}, {p['range'][1]}): sum {p['sum']} (checked against a sieve)")
        for split in ("strided", "chunks"):
            s = p[split]
            print(f"    {split:8s} {s['n_tasks']:4d} tasks  wall {s['wall_s']:7.2f} s  imbalance {s['imbalance']:.3f}")
    if "mandelbrot" in calib:
        m = calib["mandelbrot"]
        print(f"  mandelbrot {m['size'][0]}x{m['size'][1]}: {m['wall_s']:.2f} s, {m['pixels_per_s_per_worker'] / 1e6:.2f} "
              f"Mpixel/s per worker, {m['bytes_per_s'] / 1e6:.1f} MB/s of results"
              + (f", {m['path']}" if "path" in m else ""))


def _require_sympy() -> None:
    """ImportError naming the extra if sympy (the primes workload) is missing here."""
    try:
        import sympy  # noqa: F401
    except ImportError as exc:
        raise ImportError("--primes needs sympy, which is not installed: pip install 'femfreq[calibrate]'") from exc


def run(args) -> int:
    """Calibrate the cluster, optionally run the workloads, print a report and write the JSON."""
    from femfreq.calibrate import calibrate, save_calibration
    from femfreq.execute import open_client
    from femfreq.options import Scheduler, cluster_from

    if not getattr(args, "verbose", 0):
        # distributed logs every worker start/stop at INFO: keep the report readable
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1 (got {args.workers})")
    # local: one worker per core unless --workers; a scheduler: wait for --workers (default 1)
    if args.primes:  # before the cluster starts
        _require_sympy()
    where = cluster_from(scheduler=args.scheduler, hostfile=args.hostfile,
                         n_workers=args.workers if args.hostfile is None else None, security=security_from_args(args),
                         connect_timeout=args.connect_timeout)
    if not isinstance(where, Scheduler):
        where = dataclasses.replace(where, dashboard=False)
    with open_client(where) as client:
        calib = calibrate(client, quick=not args.full)
        if args.primes:
            calib["primes"] = _primes_report(client, *args.primes)
        if args.mandelbrot:
            calib["mandelbrot"] = _mandelbrot_report(client, *args.mandelbrot, args.mandelbrot_out)
    _print_report(calib)
    if args.output:
        print(f"wrote {save_calibration(args.output, calib)}")
    return 0
