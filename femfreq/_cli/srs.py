"""Shock response spectrum (SRS) of the sweep's time response at the outputs.

The acceleration history at each output is a(t) = irfft(-w^2 X(w)): the stored
response spectrum X differentiated twice in the frequency domain (exact for the
periodic, band-limited response of a sweep on the rfft grid of a load history),
resampled band-limited to at least 10 samples per period of the highest natural
frequency. Its maximax absolute-acceleration SRS (single-DOF oscillators of
amplification Q on 1/N-octave natural frequencies; Smallwood's ramp-invariant filter,
femfreq.vibration.shock_response_spectrum) is computed for every output; the table
lists the largest peaks and the figure (log-log) and a CSV of the spectra go to -o DIR.

Units: for a point-load sweep the acceleration is in the model's length/s^2 per
unit of the load history's force; for base excitation (result attribute
excitation = "base"), in the unit of the base acceleration history.
The result must hold a time response: a sweep without --freqs, on the load history's grid.

Examples:
  femfreq sweep satellite -o sat.h5 && femfreq srs sat.h5
  femfreq srs sat.h5 --q 10 --octave 1/12 --fmin 20 --fmax 1000 -o plots
  femfreq srs sat.h5 --kind positive --node 296 -o plots
"""

from __future__ import annotations

import math

from ._select import add_report_args, outputs_from_args, ranked_outputs, report_paths

#: channels filtered at once (bounds the memory of the refined histories)
_BLOCK = 16


def add_args(parser):
    parser.add_argument("results", metavar="RESULT.h5", help="a result file of a sweep on a load history's rfft grid")
    parser.add_argument("--q", type=float, default=10.0, help="amplification Q = 1/(2 zeta) of the oscillators (default 10)")
    parser.add_argument("--octave", type=_fraction, default=6, metavar="1/N",
                        help="natural frequency spacing, 1/N octave: 1/3, 1/6, 1/12 (default 1/6)")
    parser.add_argument("--fmin", type=float, default=10.0, help="lowest natural frequency, Hz (default 10)")
    parser.add_argument("--fmax", type=float, default=None,
                        help="highest natural frequency, Hz (default: the Nyquist frequency of the time response)")
    parser.add_argument("--kind", choices=["maximax", "positive", "negative"], default="maximax",
                        help="which spectrum the table and the peak use (default maximax)")
    add_report_args(parser, ranked_by="peak", figure="SRS")


def _fraction(text):
    """``"1/6"`` or ``"6"`` -> 6 (bands per octave)."""
    import argparse

    head, _, tail = text.strip().partition("/")
    try:
        n = int(tail) if tail else int(head)
        if tail and int(head) != 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1/N, e.g. 1/6 or 1/12 (got {text!r})") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 1/N with N >= 1 (got {text!r})")
    return n


def run(args) -> int:
    import numpy as np

    from femfreq import plots
    from femfreq.results import read_results
    from femfreq.vibration import acceleration_history, octave_frequencies, shock_response_spectrum
    from femfreq.vibration.response import response_unit

    if args.top < 0:
        raise ValueError(f"--top must be >= 0 (got {args.top})")
    result = read_results(args.results)
    if getattr(result, "t", None) is None or getattr(result, "time_response", None) is None:
        raise ValueError(f"{args.results} has no time response: srs needs a sweep on the rfft grid of a load "
                         "history (femfreq sweep MODEL without --freqs)")
    dt = float(result.t[1] - result.t[0])
    nyquist = 0.5 / dt
    fmax = nyquist if args.fmax is None else args.fmax
    if not 0 < args.fmin <= fmax:
        raise ValueError(f"--fmin and --fmax must satisfy 0 < fmin <= fmax (got {args.fmin:g} and {fmax:g} Hz)")
    if fmax > nyquist * (1 + 1e-12):
        raise ValueError(f"--fmax {fmax:g} Hz is above the Nyquist frequency {nyquist:g} Hz of the time response")
    fn = octave_frequencies(args.fmin, fmax, args.octave)
    columns = outputs_from_args(result, args)
    cols = np.arange(result.n_out) if columns is None else columns
    # band-limited resampling to >= 10 samples per period of the highest oscillator
    t, accel = acceleration_history(result, upsample=max(1, math.ceil(10.0 * fn[-1] * dt - 1e-9)))
    accel = accel[:, cols]
    parts = [shock_response_spectrum(t, accel[:, c:c + _BLOCK], fn, q=args.q, kind=args.kind)
             for c in range(0, cols.size, _BLOCK)]
    spectrum = type(parts[0])(freqs_hz=fn, q=args.q, kind=args.kind,
                              **{k: np.hstack([getattr(p, k) for p in parts])
                                 for k in ("positive", "negative", "maximax")})
    unit = response_unit(result, "acceleration")[0]
    labels = [result.labels[c] for c in cols]
    _print_table(result, spectrum, accel, cols, args, unit)
    figure, table = report_paths(args, "srs")
    plots.plot_srs(spectrum, figure, labels=labels, unit=unit,
                   title=plots.title(result, f"shock response spectrum ({args.kind}, Q = {args.q:g})"))
    np.savetxt(table, np.column_stack([fn, spectrum.srs]), delimiter=",", fmt="%.9g",
               header="natural_frequency_hz," + ",".join(labels) + f"  # {args.kind} SRS, Q = {args.q:g}, {unit}")
    print(figure)
    print(table)
    return 0


def _print_table(result, spectrum, accel, cols, args, unit):
    """The header lines and the rows of the largest SRS peaks."""
    import numpy as np

    srs = spectrum.srs
    peak = srs.max(axis=0)
    print(f"# {args.results}: {args.kind} shock response spectrum of the output accelerations, Q = {args.q:g}, "
          f"{spectrum.freqs_hz.size} natural frequencies {spectrum.freqs_hz[0]:.4g}-{spectrum.freqs_hz[-1]:.4g} Hz "
          f"(1/{args.octave} octave)")
    print(f"# a(t) = irfft(-w^2 X(w)) in {unit}; srs_peak at fn_hz; accel_peak = max |a(t)|")
    print(f"{'rank':>4} {'node':>7} {'dir':>3} {'x':>10} {'y':>10} {'srs_peak':>12} {'fn_hz':>9} {'accel_peak':>12}")
    for rank, j, node, direction, x, y in ranked_outputs(result, cols, peak, args.top):
        print(f"{rank:>4} {node:>7} {direction:>3} {x:>10.4g} {y:>10.4g} {peak[j]:>12.6g} "
              f"{spectrum.freqs_hz[np.argmax(srs[:, j])]:>9.4g} {np.abs(accel[:, j]).max():>12.6g}")
    if args.top and peak.size > args.top:
        print(f"# ... {peak.size - args.top} more outputs (--top 0 for all)")
