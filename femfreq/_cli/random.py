"""Random vibration: response PSD and rms of every output under an input spectral density.

For each output G(f) = |H_q(f)|^2 W(f) and rms = sqrt(integral of G over the band),
with H the result's response per unit input (result.frf = x / P), turned into the
--quantity by (i w)^k, and the integral exact for power laws between grid points
(femfreq.vibration.random_response). What H, the ASD and the rms are depends on
the sweep (the result attribute "excitation"):

  point load (every sweep of a [load] model; the default when the attribute is absent):
    H is displacement per unit force, so --asd is a FORCE spectral density in the
    model's force^2/Hz and the rms is in the model's units (length/s^2 for acceleration);
  base excitation (excitation = "base"):
    H is the output's motion per unit base acceleration, --asd is in g^2/Hz and the
    acceleration rms is in g (Grms), velocity in g s, displacement in g s^2.

The table lists the outputs with the largest rms. Beside each, Miles' estimate of its
dominant mode (femfreq.vibration.dominant_mode): among the peaks of its response PSD the
one of largest share, Q = fn / half-power bandwidth of |H_q|^2, and the mode's rms
|H_q(fn)| sqrt(pi fn W(fn) / (2 Q)), which is Miles' sqrt(pi/2 fn Q W(fn)) for a
transmissibility (|H_q(fn)| = Q); '-' where no lightly damped resonance (Q >= 2) is found.
It writes the PSD figure (log-log) and a CSV of the response PSDs into -o DIR.

Examples:
  femfreq random sat.h5 --asd "20:0.026,50:0.16,800:0.16,2000:0.026"
  femfreq random sat.h5 --asd spec.csv --quantity velocity --top 20 -o plots
  femfreq random sat.h5 --asd "20:1e-4,2000:1e-4" --node 296,300 -o plots
"""

from __future__ import annotations

import sys
import warnings

from ._select import add_report_args, outputs_from_args, ranked_outputs, report_paths


def add_args(parser):
    parser.add_argument("results", metavar="RESULT.h5", help="a result file written by femfreq sweep")
    parser.add_argument("--asd", required=True, metavar="SPEC",
                        help="input spectral density: 'f1:W1,f2:W2,...' (Hz:unit^2/Hz, log-log between "
                             "breakpoints, zero outside) or a CSV file of 'frequency, value' lines (required)")
    parser.add_argument("--quantity", choices=["acceleration", "velocity", "displacement"], default="acceleration",
                        help="response quantity (default acceleration)")
    add_report_args(parser, ranked_by="rms", figure="PSD")


def run(args) -> int:
    import numpy as np

    from femfreq import plots
    from femfreq.results import read_results
    from femfreq.vibration import dominant_mode, random_response
    from femfreq.vibration.asd import as_asd
    from femfreq.vibration.response import excitation_of, response_quantity_of, response_unit

    if args.top < 0:
        raise ValueError(f"--top must be >= 0 (got {args.top})")
    asd = as_asd(args.asd, "--asd")
    result = read_results(args.results)
    columns = outputs_from_args(result, args)
    excitation = excitation_of(result)
    unit, input_unit = response_unit(result, args.quantity)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = random_response(result, asd, args.quantity, frf_quantity=response_quantity_of(result))
    for w in caught:
        print(f"femfreq: warning: {w.message}", file=sys.stderr)
    if columns is not None:
        response = _columns(response, columns)
    mode = dominant_mode(response)
    _print_table(result, response, mode, columns, args, unit, input_unit, excitation)
    if response.interface_force_rms is not None:
        fx, fy = response.interface_force_rms
        print(f"# interface force (the base on the structure), rms: x {fx:.6g}, y {fy:.6g} "
              f"(mass x {input_unit.split('^')[0]}: multiply by g in the model's acceleration unit)")
    figure, table = report_paths(args, "psd")
    plots.plot_psd(response, figure, unit=unit, input_unit=input_unit,
                   title=plots.title(result, f"random {args.quantity} response, input {asd.rms:.3g} rms"))
    np.savetxt(table, np.column_stack([response.freqs_hz, response.psd]), delimiter=",", fmt="%.9g",
               header="frequency_hz," + ",".join(response.labels) + f"  # response PSD, ({unit})^2/Hz")
    print(figure)
    print(table)
    return 0


def _columns(response, columns):
    """The response restricted to some outputs."""
    from dataclasses import replace

    return replace(response, psd=response.psd[:, columns], rms=response.rms[columns],
                   labels=tuple(response.labels[j] for j in columns))


def _print_table(result, response, mode, columns, args, unit, input_unit, excitation):
    """The header lines and the rows of the largest rms."""
    import numpy as np

    meaning = ("point load: H = displacement per unit force, the ASD a force spectral density"
               if excitation == "point" else "base excitation: H = motion per unit base acceleration, the ASD in g^2/Hz")
    lo, hi = response.band_hz
    n_band = np.count_nonzero((response.freqs_hz >= lo) & (response.freqs_hz <= hi))
    print(f"# {args.results}: random {args.quantity} response ({meaning})")
    print(f"# input ASD in {input_unit}: {response.asd.rms:.4g} {input_unit.split('^')[0]} rms over "
          f"{response.asd.band_hz[0]:g}-{response.asd.band_hz[1]:g} Hz; integrated over {lo:g}-{hi:g} Hz "
          f"({n_band} frequencies)")
    print(f"# rms in {unit}; miles: Miles' single-mode estimate of the dominant mode (fn_hz: the PSD peak with the "
          f"largest share, Q: its half-power bandwidth; '-' where no lightly damped resonance)")
    print(f"{'rank':>4} {'node':>7} {'dir':>3} {'x':>10} {'y':>10} {'rms':>12} {'fn_hz':>9} {'Q':>7} {'miles':>12}")
    cols = np.arange(response.rms.size) if columns is None else np.asarray(columns)
    for rank, j, node, direction, x, y in ranked_outputs(result, cols, response.rms, args.top):
        known = np.isfinite(mode.rms[j])
        print(f"{rank:>4} {node:>7} {direction:>3} {x:>10.4g} {y:>10.4g} {response.rms[j]:>12.6g} "
              f"{mode.freqs_hz[j]:>9.4g} {mode.q[j] if known else float('nan'):>7.3g} "
              f"{mode.rms[j] if known else float('nan'):>12.4g}".replace(" nan", "   -"))
    if args.top and response.rms.size > args.top:
        print(f"# ... {response.rms.size - args.top} more outputs (--top 0 for all)")
