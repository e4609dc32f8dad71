"""Solve the frequency sweep of a model and write the HDF5 result file.

Examples:
  femfreq sweep satellite                       # default level, embedded dask cluster
  femfreq sweep satellite --level 5 --method fast -o sat5.h5 --plot plots/
  femfreq sweep models/beam.toml --freqs 0:500:201 --serial
  femfreq sweep satellite --base y --freqs log:5:2000:400 --serial   # shaker along y
  femfreq sweep satellite --scheduler tcp://127.0.0.1:8786 --resume -o sat.h5
  femfreq sweep satellite --hostfile hosts --ssh-user me --ssh-key ~/.ssh/id_cluster
  femfreq sweep --matrices input.mat -o result.mat   # matrices built in MATLAB
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ._common import add_cluster_args, add_ssh_args, security_from_args, ssh_options_from_args


def add_args(parser):
    parser.add_argument("model", nargs="?", help="model name (satellite, beam, rod) or a .toml model file")
    parser.add_argument("--level", type=int, help="mesh refinement level (default: the model's)")
    parser.add_argument("--matrices", metavar="FILE.mat", help="solve K, C, M, b, freqs, P from a .mat file (MATLAB route; default: build MODEL)")
    parser.add_argument("--freqs", metavar="SPEC",
                        help="frequencies in Hz: 'start:stop:n', 'log:start:stop:n', a comma list, or "
                             "'auto:FMIN:FMAX[:N]' (N points in every mode's half-power band, docs/vibration.md) "
                             "(default: the rfft bins of the load history)")
    parser.add_argument("--base", metavar="DIR",
                        help="enforced base motion: drive the constrained nodes along x, y or 'vx,vy' with unit "
                             "acceleration (overrides the model's [base]; needs --freqs; default: the model's load)")
    parser.add_argument("--n-fft", type=int, help="FFT length of the load history (default: the model's)")
    parser.add_argument("--method", choices=["direct", "fast"], default="direct",
                        help="direct solve per frequency, or the certified reduced-order sweep (default direct)")
    parser.add_argument("--solver", default="auto", help="direct solver: auto, superlu, pardiso (default auto)")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative residual that certifies a frequency (default 1e-6)")
    parser.add_argument("-g", "--structural-damping", type=float, dest="g", help="structural damping g, K(1 + i g) (default: the model's [damping] g, or the .mat file's, else 0)")
    add_cluster_args(parser, serial=True)
    add_ssh_args(parser)
    parser.add_argument("--calibration", metavar="FILE.json",
                        help="cluster calibration from 'femfreq calibrate -o' (sets chunk sizes; default: built-in figures)")
    parser.add_argument("-o", "--output", help="result file (.h5; .mat with --matrices); default <model>.h5")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep in the result file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    parser.add_argument("--skip-singular", action="store_true", help="skip singular frequencies (0 Hz of a free model)")
    parser.add_argument("--plot", metavar="DIR", nargs="?", const=".", help="also write FRF/time/mesh PNGs into DIR (default: no plots; DIR defaults to .)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import femfreq
    from femfreq.options import cluster_from, method_from

    if (args.model is None) == (args.matrices is None):
        raise ValueError("give a model (name or .toml file) or --matrices FILE.mat, not both and not neither")
    connect_options, remote_python = ssh_options_from_args(args)  # checked before any work
    method = method_from(args.method, solver=args.solver, tol=args.tol, skip_singular=args.skip_singular)
    cluster = cluster_from(serial=args.serial, scheduler=args.scheduler, hostfile=args.hostfile,
                           n_workers=args.workers if args.hostfile is None else None,
                           security=security_from_args(args), calibration=args.calibration,
                           ssh=_ssh_settings(connect_options, remote_python),
                           connect_timeout=args.connect_timeout)
    common = dict(method=method, cluster=cluster, resume=args.resume, overwrite=args.overwrite,
                  progress=not args.no_progress, g=args.g)
    t0 = time.perf_counter()
    if args.matrices:
        from femfreq import matlab

        out = Path(args.output or Path(args.matrices).with_suffix("").name + "_result.mat")
        if out.suffix.lower() != ".mat":
            out = out.with_name(out.name + ".mat")
        h5 = out.with_suffix(".h5")
        _check_outputs([out, h5], inputs=[args.matrices], replace=args.overwrite or args.resume)
        inp = matlab.read_mat_input(args.matrices)
        result = femfreq.solve(inp["system"], freqs_hz=inp["freqs_hz"], load=inp["load"], out=h5, **common)
        matlab.write_mat_result(out, result)
        print(f"wrote {out} (and {h5})")
        return 0
    model_file = [args.model] if Path(args.model).is_file() else []
    if args.output:  # before the model is built
        _check_outputs([args.output], inputs=model_file, replace=True)
    model = femfreq.load_model(args.model, level=args.level)
    if args.base is not None:
        model = model.with_base(args.base, nodes=None if model.base is None else model.base.nodes)
    if model.base is not None and args.freqs is None:
        raise ValueError("base motion needs --freqs (e.g. --freqs log:5:2000:400)")
    out = Path(args.output or f"{model.name}.h5")
    _check_outputs([out], inputs=model_file, replace=True)
    load = None
    if args.n_fft is not None:
        from femfreq.spectra import History

        samples, dt, _ = model.load_history()
        if samples is None:
            raise ValueError(f"--n-fft: the model {model.name} has no load history")
        load = History(samples, dt=dt, n_fft=args.n_fft)
    print(f"{model.name}: {model.n_free} free DOF, {len(model.edges)} rods", file=sys.stderr)
    result = femfreq.solve(model, freqs_hz=args.freqs, load=load, out=out, **common)
    elapsed = time.perf_counter() - t0
    print(f"wrote {out}: {len(result.freqs_hz)} frequencies x {result.response.shape[1]} output DOF "
          f"in {elapsed:.1f} s ({_residual_summary(result)})")
    if result.base is not None:
        import numpy as np

        d = result.base["direction"]
        peak = np.nanmax(np.abs(result.transmissibility), axis=0)
        print(f"base motion along ({d[0]:.3g}, {d[1]:.3g}): max transmissibility {np.nanmax(peak):.4g} "
              f"({result.labels[int(np.nanargmax(peak))]})")
    if args.plot is not None:
        from femfreq import plots

        for path in plots.plot_all(result, args.plot, model=model):
            print(f"wrote {path}")
    return 0


def _residual_summary(result) -> str:
    """"max relative residual 3.1e-12", with the skipped (singular) frequencies counted apart."""
    import numpy as np

    from femfreq.codes import Method

    rel = np.asarray(result.rel_residual, dtype=float)
    skipped = int(np.count_nonzero(np.asarray(result.method) == Method.SKIPPED))
    solved = np.isfinite(rel)
    text = f"max relative residual {np.max(rel[solved]):.1e}" if solved.any() else "no frequency solved"
    if skipped:
        text += f"; {skipped} skipped as singular (NaN in the file)"
    return text


def _check_outputs(outputs, *, inputs, replace) -> None:
    """Refuse, before any work, an output that is a directory or an input file, or one that
    exists when ``replace`` (``--overwrite``/``--resume``) is not given (the .h5 result
    checks that itself; the .mat result of ``--matrices`` is checked here)."""
    for out in outputs:
        out = Path(out)
        if out.is_dir():
            raise ValueError(f"-o {out}: is a directory; give a file name")
        for given in inputs:
            if out.exists() and Path(given).exists() and os.path.samefile(out, given) \
                    or out.resolve() == Path(given).resolve():
                raise ValueError(f"-o {out} would write over the input file {given}; give another output name")
        if out.exists() and not replace:
            raise ValueError(f"{out} already exists; pass --overwrite to replace it")


def _ssh_settings(connect_options, remote_python) -> dict | None:
    """``--ssh-*`` as the fields of :class:`femfreq.options.SSH`."""
    if connect_options is None:
        return None
    names = {"port": "port", "username": "user", "client_keys": "keys", "known_hosts": "known_hosts"}
    settings = {names[k]: v for k, v in connect_options.items()}
    if "known_hosts" in settings and settings["known_hosts"] is None:
        settings["known_hosts"] = "none"
    if remote_python is not None:
        settings["remote_python"] = remote_python
    return settings
