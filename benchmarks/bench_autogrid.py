"""Peak-resolving grids: ``"auto:20:2000[:N]"`` against the uniform 0.488 Hz rfft grid.

Satellite with structural damping only (g = 0.02, C = 0), 20..2000 Hz, displacement per unit
bolt force at every output. The reference is the exact modal solution with *all* modes
(dense ``eigh``; with C = 0 and structural damping the modal sum is the exact FRF):

- peak capture: for every mode in the band and every output whose response has an interior
  local maximum within the mode's window ``f_k (1 -+ g)``, the largest ``|x|`` on the grid in
  that window over the converged peak (the maximum on 2001 points across the window); the
  worst over all peaks, and over the peaks above 1 % of their output's largest;
- Grms: ``femfreq.vibration.random_response`` (acceleration, flat ASD 20..2000 Hz) on each grid
  against a log grid of relative step g / 200 (the error of that reference is checked
  against one twice as fine);
- time: building the auto grid (its eigen-analysis), and ``femfreq.solve`` on it with the
  direct and the fast method (serial, one thread), with the fast sweep's cost per extra
  frequency from a second, denser auto grid.

    python -m benchmarks.bench_autogrid            # quick: level 1
    python -m benchmarks.bench_autogrid --full     # level 2 (level 3 is too big for the dense reference)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from benchmarks._common import markdown, one_thread_env

F_LO, F_HI, G = 20.0, 2000.0, 0.02
ASD = "20:1,2000:1"  # flat, (force unit)^2 / Hz


def _system(level):
    from femfreq.model import Damping, load_model

    model = load_model("satellite", level=level)
    return dataclasses.replace(model, damping=Damping(g=G)).system()


class _Modal:
    """The exact FRF at the outputs from all modes: x = Phi_o diag(1 / (lam (1 + i g) - w^2)) Phi^T b."""

    def __init__(self, system):
        import scipy.linalg as sla

        lam, phi = sla.eigh(system.K.toarray(), system.M.toarray())
        self.lam = lam
        self.out = phi[system.output_dofs] * (phi.T @ system.b.real)[None, :]
        self.g = system.g

    def __call__(self, f, block=2048):
        f = np.atleast_1d(f)
        out = np.empty((f.size, self.out.shape[0]), dtype=complex)
        for s in range(0, f.size, block):
            w2 = (2 * np.pi * f[s:s + block]) ** 2
            z = 1.0 / (self.lam[None, :] * (1 + 1j * self.g) - w2[:, None])
            out[s:s + block] = z @ self.out.T
        return out

    def freqs_hz(self):
        return np.sqrt(np.maximum(self.lam, 0)) / (2 * np.pi)


def _peaks(modal):
    """Windows and converged peaks: (lo, hi, output, peak) for every interior local maximum."""
    fk = modal.freqs_hz()
    fk = fk[(fk >= F_LO) & (fk <= F_HI)]
    rows = []
    for f in fk:
        lo, hi = max(F_LO, f * (1 - G)), min(F_HI, f * (1 + G))
        fine = np.linspace(lo, hi, 2001)
        a = np.abs(modal(fine))
        i = a.argmax(axis=0)
        for j in np.flatnonzero((i > 0) & (i < fine.size - 1)):
            rows.append((lo, hi, j, a[i[j], j]))
    return rows


def _capture(grid, H, peaks, global_max):
    worst, worst_big = 1.0, 1.0
    for lo, hi, j, peak in peaks:
        inside = (grid >= lo) & (grid <= hi)
        c = np.abs(H[inside, j]).max(initial=0.0) / peak
        worst = min(worst, c)
        if peak >= 0.01 * global_max[j]:
            worst_big = min(worst_big, c)
    return worst, worst_big


def _grms(grid, H):
    from femfreq.vibration import random_response

    return random_response((grid, H), ASD, "acceleration").rms


def _timed_solve(system, spec, method):
    import femfreq
    from femfreq.solvers import clear_caches

    clear_caches()
    t0 = time.perf_counter()
    r = femfreq.solve(system, freqs_hz=spec, method=method, cluster=None, progress=False)
    return time.perf_counter() - t0, r


def run(quick: bool = True, *, level: int | None = None) -> dict:
    from femfreq.grid import auto_grid, modal_bands

    level = level or (1 if quick else 2)
    with one_thread_env():
        system = _system(level)
        modal = _Modal(system)
        ref_grid = np.exp(np.arange(np.log(F_LO), np.log(F_HI), G / 200))
        ref_grid = np.append(ref_grid, F_HI)
        ref_rms = _grms(ref_grid, modal(ref_grid))
        finer = np.append(np.exp(np.arange(np.log(F_LO), np.log(F_HI), G / 400)), F_HI)
        ref_err = float(np.max(np.abs(_grms(finer, modal(finer)) / ref_rms - 1)))
        peaks = _peaks(modal)
        global_max = np.abs(modal(ref_grid)).max(axis=0)
        t0 = time.perf_counter()
        modes = modal_bands(system, F_LO * 0.9, F_HI * 1.1)
        t_modes = time.perf_counter() - t0
        uniform = np.arange(0.0, F_HI + 1, 1 / 2.048)
        grids = {"uniform 0.488 Hz (rfft)": uniform[(uniform >= F_LO) & (uniform <= F_HI)]}
        for n in (3, 5, 7, 9, 15, 21, 31):
            grids[f"auto:20:2000:{n}"] = auto_grid(system, f"auto:20:2000:{n}", modes=modes)
        rows = []
        for name, grid in grids.items():
            H = modal(grid)
            worst, worst_big = _capture(grid, H, peaks, global_max)
            err = np.abs(_grms(grid, H) / ref_rms - 1)
            rows.append({"grid": name, "n_freqs": int(grid.size), "worst_peak_capture": round(worst, 4),
                         "worst_peak_capture_above_1pct": round(worst_big, 4),
                         "grms_err_max": float(f"{err.max():.2e}"), "grms_err_median": float(f"{np.median(err):.2e}")})
        timing = _timings(system, modal)
    notes = (f"satellite level {level}, {system.n:,} DOF, {len(modal.out)} outputs, g = {G}, C = 0, "
             f"{F_LO:g}..{F_HI:g} Hz; {len(peaks)} peaks (mode x output with an interior maximum in the "
             f"mode's window). Reference: exact modal FRF (all {modal.lam.size} modes); Grms reference on "
             f"{ref_grid.size} log-spaced points (its own error against a grid twice as fine: {ref_err:.1e}). "
             f"Auto grid eigen-analysis: {t_modes:.2f} s ({modes.freqs_hz.size} modes sought one by one, up to "
             f"{min(modes.overlap_from_hz, F_HI * 1.1):.0f} Hz where they overlap). {timing}")
    return {"name": "auto frequency grids: peaks and Grms", "rows": rows, "notes": notes}


def _timings(system, modal):
    """Direct and fast solves on the default auto grid; the fast sweep's cost per extra frequency."""
    t_direct, rd = _timed_solve(system, "auto:20:2000", "direct")
    t_fast, rf = _timed_solve(system, "auto:20:2000", "fast")
    t_dense, rdense = _timed_solve(system, "auto:20:2000:31", "fast")
    extra = (t_dense - t_fast) / max(rdense.freqs_hz.size - rf.freqs_hz.size, 1)
    err = float(np.max(np.abs(rf.response - modal(rf.freqs_hz))) / np.abs(modal(rf.freqs_hz)).max())
    return (f"Solves on auto:20:2000 ({rd.freqs_hz.size} frequencies, serial, one thread): direct "
            f"{t_direct:.1f} s, fast {t_fast:.1f} s (max |fast - modal| / max|x| = {err:.1e}, "
            f"{int(np.sum(rf.method == 1))} direct fallbacks); auto:20:2000:31 ({rdense.freqs_hz.size} "
            f"frequencies) fast {t_dense:.1f} s: {1e3 * extra:.2f} ms per extra frequency "
            f"(direct: {1e3 * t_direct / rd.freqs_hz.size:.2f} ms per frequency).")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="level 2")
    p.add_argument("--level", type=int, help="satellite level (default 1, or 2 with --full)")
    args = p.parse_args(argv)
    print(markdown(run(quick=not args.full, level=args.level)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
