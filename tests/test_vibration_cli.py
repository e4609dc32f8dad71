"""`femfreq random`, `femfreq srs`, the vibration figures and the log-log FRF options of `femfreq plot`.

The sweeps are real (the shipped fixed-free rod, in process) and the printed tables are
checked against figures the test computes itself: the library's random response on the
transfer function rebuilt from the file, a trapezoid rule on a hand-made PSD, the rod's
structural damping (Q = 1/g) and natural frequencies, and an SRS of an acceleration
history resampled with scipy's own Fourier resampling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

import femfreq
from femfreq._cli.main import main
from femfreq.results import SweepResult
from femfreq.spectra import History, pyroshock
from femfreq.vibration import (
    acceleration_history,
    dominant_mode,
    miles_grms,
    octave_frequencies,
    random_response,
    select_outputs,
)

GEVS = "20:0.026,50:0.16,800:0.16,2000:0.026"
DT, N_FFT = 2.5e-4, 4096  # Nyquist 2 kHz: the rfft grid covers the whole GEVS band


@pytest.fixture(scope="module")
def rod(tmp_path_factory):
    """The shipped rod (modes 250, 750, 1250, 1750 Hz; g = 0.02) swept on a short pyroshock's rfft grid."""
    path = tmp_path_factory.mktemp("rod") / "rod.h5"
    model = femfreq.load_model("rod")
    history = History(pyroshock(dt=DT, n=1024), dt=DT, n_fft=N_FFT)
    result = femfreq.solve(model, load=history, out=path, cluster=None, progress=False)
    return path, result, model


def _rows(text, n_fields):
    """The table rows (lines that are not comments) split into fields."""
    rows = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    return [r for r in rows if len(r) == n_fields and r[0].isdigit()]


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# --------------------------------------------------------------------------- random


def test_random_table_is_the_random_response_of_the_file(rod, tmp_path, capsys):
    path, result, model = rod
    assert main(["random", str(path), "--asd", GEVS, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (row,) = _rows(out, 9)
    rank, node, direction, x, y, rms, fn, q, miles = row
    assert (node, direction, float(x), float(y)) == ("20", "x", 10.0, 0.0)

    # the transfer function rebuilt from the file: displacement per unit force
    H = result.response / result.load_spectrum[:, None]
    keep = result.freqs_hz > 0
    reference = random_response((result.freqs_hz[keep], H[keep]), GEVS, "acceleration")
    assert float(rms) == pytest.approx(float(reference.rms[0]), rel=1e-5)
    # an independent rule on the PSD built by hand: (2 pi f)^4 |H|^2 W, trapezoid on the 0.98 Hz grid
    f = result.freqs_hz
    band = (f >= 20) & (f <= 2000)
    level = np.exp(np.interp(np.log(f[band]), np.log([20, 50, 800, 2000]), np.log([0.026, 0.16, 0.16, 0.026])))
    psd = (2 * np.pi * f[band]) ** 4 * np.abs(H[band, 0]) ** 2 * level
    assert float(rms) == pytest.approx(math.sqrt(np.trapezoid(psd, f[band])), rel=0.02)
    # the dominant mode is one of the rod's modes, with the structural damping's Q = 1/g = 50
    modes = model.modes(4)[0]
    assert np.min(np.abs(modes - float(fn))) < 2 * (f[1] - f[0])
    assert float(q) == pytest.approx(50.0, rel=0.05)
    # Miles' single-mode estimate is that mode's own share: the PSD integrated over fn +- 20 %
    # (+- 10 half-power bandwidths, 97 % of a Lorentzian), less than the rms of all four modes
    near = (f > 0.8 * float(fn)) & (f < 1.2 * float(fn))
    assert float(miles) == pytest.approx(math.sqrt(np.trapezoid(reference.psd[near[keep], 0], f[near])), rel=0.05)
    assert float(miles) < 0.8 * float(rms)
    # the figure and the CSV of the PSDs
    assert _is_png(tmp_path / "rod_psd.png")
    table = np.loadtxt(tmp_path / "rod_psd.csv", delimiter=",")
    np.testing.assert_allclose(table[1:, 0], reference.freqs_hz)  # row 0 is 0 Hz, outside the band
    np.testing.assert_allclose(table[1:, 1], reference.psd[:, 0], rtol=1e-8)
    assert table[0, 1] == 0


def test_random_from_a_csv_spec_with_velocity_and_an_output_pick(rod, tmp_path, capsys):
    path, result, _ = rod
    spec = tmp_path / "spec.csv"
    spec.write_text("frequency, level\n20, 0.026\n50, 0.16\n800, 0.16\n2000, 0.026\n")
    assert main(["random", str(path), "--asd", str(spec), "--quantity", "velocity", "--node", "20",
                 "-o", str(tmp_path / "v")]) == 0
    (row,) = _rows(capsys.readouterr().out, 9)
    keep = result.freqs_hz > 0
    reference = random_response((result.freqs_hz[keep], result.frf[keep]), GEVS, "velocity")
    assert float(row[5]) == pytest.approx(float(reference.rms[0]), rel=1e-5)
    assert _is_png(tmp_path / "v" / "rod_psd.png")


def test_dominant_mode_of_an_oscillator_is_miles_equation():
    # base-driven oscillator, structural damping g = 0.04 (Q = 25) at 150 Hz, on a coarse log grid
    f = np.geomspace(20.0, 2000.0, 400)
    T = (1 + 0.04j) / (1 + 0.04j - (f / 150.0) ** 2)
    r = random_response((f, T), "20:0.1,2000:0.1", frf_quantity="acceleration")
    m = dominant_mode(r)
    assert m.q[0] == pytest.approx(25.0, rel=0.03)
    assert m.freqs_hz[0] == pytest.approx(150.0, rel=0.01)
    assert m.rms[0] == pytest.approx(miles_grms(150.0, 25.0, 0.1), rel=0.03)
    assert m.rms[0] == pytest.approx(r.rms[0], rel=0.05)  # one mode dominates
    # no resonance inside the band (a flat transfer): no estimate
    flat = dominant_mode(random_response((f, np.ones_like(f)), "20:0.1,2000:0.1", frf_quantity="acceleration"))
    assert np.isnan(flat.q[0]) and np.isnan(flat.rms[0])


# --------------------------------------------------------------------------- srs


def test_acceleration_history_is_the_second_derivative():
    # a periodic sampled displacement sin(2 pi 5 t) + 0.3 cos(2 pi 40 t): its acceleration in closed form
    n, dt = 256, 1e-3
    t = np.arange(n) * dt
    f1, f2 = 5 / (n * dt), 40 / (n * dt)  # on the rfft grid, so the record is periodic
    x = np.sin(2 * np.pi * f1 * t) + 0.3 * np.cos(2 * np.pi * f2 * t)
    result = SweepResult(freqs_hz=np.fft.rfftfreq(n, dt), response=np.fft.rfft(x)[:, None], t=t,
                         time_response=x[:, None])
    t3, a3 = acceleration_history(result, upsample=3)
    exact = -(2 * np.pi * f1) ** 2 * np.sin(2 * np.pi * f1 * t3) - 0.3 * (2 * np.pi * f2) ** 2 * np.cos(2 * np.pi * f2 * t3)
    np.testing.assert_allclose(a3[:, 0], exact, atol=1e-9 * np.abs(exact).max())
    np.testing.assert_allclose(t3, np.arange(3 * n) * dt / 3)


def test_srs_table_and_csv_match_an_independent_computation(rod, tmp_path, capsys):
    path, result, _ = rod
    assert main(["srs", str(path), "--octave", "1/3", "--fmin", "50", "--fmax", "1600", "-o", str(tmp_path)]) == 0
    (row,) = _rows(capsys.readouterr().out, 8)
    fn = octave_frequencies(50, 1600, 3)
    # the acceleration by numpy's FFT and scipy's Fourier resampling to the 10x rate the command uses
    n = result.t.size
    a = np.fft.irfft(-((2 * np.pi * result.freqs_hz) ** 2)[:, None] * result.response, n, axis=0)[:, 0]
    m = math.ceil(10 * fn[-1] * DT)
    a_fine = scipy.signal.resample(a, n * m)
    t_fine = np.arange(n * m) * DT / m
    reference = femfreq.shock_response_spectrum(t_fine, a_fine, fn, q=10)
    table = np.loadtxt(tmp_path / "rod_srs.csv", delimiter=",")
    np.testing.assert_allclose(table[:, 0], fn)
    np.testing.assert_allclose(table[:, 1], reference.maximax, rtol=1e-6)
    assert float(row[5]) == pytest.approx(reference.maximax.max(), rel=1e-5)
    assert float(row[6]) == pytest.approx(fn[np.argmax(reference.maximax)], rel=1e-3)
    assert float(row[7]) == pytest.approx(np.abs(a).max(), rel=0.02)  # the peak of |a(t)|, finer sampled
    # the rod rings at its modes: the SRS peaks near one of them, amplified above the input's peak
    assert reference.maximax.max() > np.abs(a).max()
    assert _is_png(tmp_path / "rod_srs.png")


# --------------------------------------------------------------------------- plot


def test_plot_frf_loglog_db_by_node_with_the_natural_frequencies(rod, tmp_path, capsys):
    path, result, model = rod
    assert main(["plot", str(path), "--what", "frf", "--node", "20", "--quantity", "acceleration", "--db",
                 "--model", "rod", "--modes", "3", "-o", str(tmp_path)]) == 0
    assert _is_png(tmp_path / "rod_frf.png")
    fig = femfreq.plots.plot_transfer(result, quantity="acceleration", db=True, outputs=select_outputs(result, nodes=[20]),
                                      natural_freqs_hz=model.modes(3)[0])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    line = ax.lines[0]
    f = np.asarray(line.get_xdata())
    keep = result.freqs_hz > 0
    expected = 20 * np.log10((2 * np.pi * result.freqs_hz[keep]) ** 2 * np.abs(result.frf[keep, 0]))
    np.testing.assert_allclose(f, result.freqs_hz[keep])
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-10)
    marked = [ln.get_xdata()[0] for ln in ax.lines[1:]]
    np.testing.assert_allclose(marked, model.modes(3)[0])
    default = femfreq.plots.plot_transfer(result)  # receptance x/P on log-log axes
    assert default.axes[0].get_yscale() == "log"
    np.testing.assert_allclose(default.axes[0].lines[0].get_ydata(), np.abs(result.frf[keep, 0]))


# --------------------------------------------------------------------------- errors


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("femfreq: error:"), err
    assert match in err, err


def test_errors_are_one_line_with_exit_code_2(rod, tmp_path, capsys):
    path, result, _ = rod
    missing = str(tmp_path / "nope.h5")
    _one_line_error(capsys, ["random", missing, "--asd", GEVS], "nope.h5")
    _one_line_error(capsys, ["srs", missing], "nope.h5")
    _one_line_error(capsys, ["random", str(path), "--asd", "20:0.026,50"], "'50'")
    _one_line_error(capsys, ["random", str(path), "--asd", "50:0.1,20:0.2"], "strictly increasing")
    _one_line_error(capsys, ["random", str(path), "--asd", GEVS, "--node", "7"], "node 7 is not an output")
    _one_line_error(capsys, ["srs", str(path), "--fmax", "5000"], "Nyquist")
    no_time = tmp_path / "frf.h5"
    femfreq.solve(femfreq.load_model("rod"), freqs_hz="10:1000:50", out=no_time, cluster=None, progress=False)
    _one_line_error(capsys, ["srs", str(no_time)], "no time response")
    # and with a time response but --octave malformed: argparse's own usage error, exit 2
    with pytest.raises(SystemExit) as exc:
        main(["srs", str(path), "--octave", "2/6"])
    assert exc.value.code == 2


def test_the_face_exports_the_vibration_functions():
    assert {"random_response", "shock_response_spectrum", "ASD"} <= set(femfreq.__all__)
    assert femfreq.random_response is random_response
    assert femfreq.ASD.parse(GEVS).rms == pytest.approx(14.14, abs=0.01)
