"""Vibration qualification analyses against independent references.

ASD: the published GEVS qualification figure (14.1 Grms) and adaptive quadrature of the
log-log curve. Random response: a single-DOF oscillator on a shaking base, closed-form
transmissibility, Grms against scipy.integrate.quad and Miles' equation; exactness of the
integration for power laws on a coarse grid. Shock response spectrum: an independent ODE
solution (solve_ivp) of the oscillator under a half-sine pulse, the impulse (low-frequency)
limit in closed form and the static (high-frequency) limit.
"""

from __future__ import annotations

import dataclasses
import doctest
import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

import femfreq.vibration.asd
import femfreq.vibration.random
import femfreq.vibration.srs
from femfreq.errors import ReadError
from femfreq.results import SweepResult
from femfreq.vibration import (
    ASD,
    RandomResponse,
    ShockSpectrum,
    miles_grms,
    octave_frequencies,
    random_response,
    shock_response_spectrum,
)

GEVS = "20:0.026,50:0.16,800:0.16,2000:0.026"


@pytest.mark.parametrize("module", [femfreq.vibration.asd, femfreq.vibration.random, femfreq.vibration.srs])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


# ----------------------------------------------------------------------------- ASD


def test_gevs_qualification_level_is_14_1_grms():
    asd = ASD.parse(GEVS)
    assert round(asd.rms, 1) == 14.1
    # the exact power-law integral equals adaptive quadrature of the interpolated curve
    ms, _ = quad(asd, 20.0, 2000.0, points=[50.0, 800.0], epsabs=0, epsrel=1e-12, limit=200)
    assert asd.mean_square == pytest.approx(ms, rel=1e-10)
    # +6 and -6 dB/octave nominal slopes (0.026 -> 0.16 over 20 -> 50 Hz is 5.97 dB/oct)
    np.testing.assert_allclose(asd.slopes_db_per_octave, [5.97, 0.0, -5.97], atol=0.01)


def test_asd_interpolates_log_log_and_is_zero_outside_its_band():
    asd = ASD.parse(GEVS)
    mid = math.sqrt(20.0 * 50.0)  # halfway on log axes: the geometric mean of the levels
    assert asd(mid) == pytest.approx(math.sqrt(0.026 * 0.16), rel=1e-12)
    np.testing.assert_array_equal(asd([19.99, 20.0, 100.0, 800.0, 2000.0, 2000.01]),
                                  [0.0, 0.026, 0.16, 0.16, 0.026, 0.0])
    assert asd(np.ones((2, 3)) * 100.0).shape == (2, 3)


def test_asd_is_a_frozen_value():
    a, b = ASD.parse(GEVS), ASD([(20, 0.026), (50, 0.16), (800, 0.16), (2000, 0.026)])
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.breakpoints = ()
    assert a.scaled(-3.0).rms == pytest.approx(a.rms * 10 ** (-3.0 / 20.0), rel=1e-12)


def test_asd_reads_csv_with_header_and_comments(tmp_path):
    path = tmp_path / "gevs.csv"
    path.write_text("# GEVS qualification\nfrequency_hz, g2_per_hz\n20, 0.026\n50;0.16\n\n800 0.16  # flat\n2000,0.026\n")
    assert ASD.from_csv(path) == ASD.parse(GEVS)
    assert random_response((np.array([20.0, 2000.0]), np.ones(2)), str(path),
                           frf_quantity="acceleration").asd == ASD.parse(GEVS)


@pytest.mark.parametrize(
    "text, match",
    [
        ("20:0.026,50", "not 'frequency:value'"),
        ("20:0.026,50:abc", "not two numbers"),
        ("20:0.026", "at least two breakpoints"),
        ("20:0.026,10:0.16", "strictly increasing"),
        ("20:0.026,50:0", "value must be finite and > 0"),
        ("0:0.026,50:0.1", "frequency must be finite and > 0"),
    ],
)
def test_asd_rejects_bad_breakpoints(text, match):
    with pytest.raises(ValueError, match=match):
        ASD.parse(text)


@pytest.mark.parametrize(
    "content, line, match",
    [
        ("f,w\n20,0.026\n50,x\n", 3, "expected two numbers"),
        ("20,0.026\n50,0.16,7\n", 2, "expected two numbers"),
        ("20,0.026\n\n50,-0.16\n", 3, "value must be finite and > 0"),
        ("20,0.026\n50,0.16\n40,0.1\n", 3, "strictly increasing"),
    ],
)
def test_asd_csv_errors_name_file_and_line(tmp_path, content, line, match):
    path = tmp_path / "spec.csv"
    path.write_text(content)
    with pytest.raises(ReadError, match=match) as info:
        ASD.from_csv(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}:")


def test_asd_rejects_wrong_types_and_shapes():
    with pytest.raises(TypeError, match="ASD.parse"):
        ASD("20:0.1,50:0.1")
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        ASD([20.0, 50.0])
    with pytest.raises(TypeError, match="must be a str"):
        ASD.parse(20)


# ------------------------------------------------------------------ random response


def _sdof_transmissibility(f, fn, g):
    """Absolute acceleration of a mass on a spring (structural damping g) per unit base acceleration."""
    m = 1.0
    k = m * (2 * np.pi * fn) ** 2 * (1 + 1j * g)
    return k / (k - (2 * np.pi * f) ** 2 * m)


def _peak_grid(fn, g, n_background=40, n_peak=15):
    """Log-spaced 20-2000 Hz plus points across +-4 half-power half-widths of the mode."""
    peak = np.linspace(fn * (1 - 4 * g), fn * (1 + 4 * g), n_peak)
    return np.unique(np.concatenate([np.geomspace(20.0, 2000.0, n_background), peak]))


@pytest.mark.parametrize("fn, g", [(100.0, 0.02), (150.0, 0.05), (700.0, 0.02)])
def test_sdof_base_grms_matches_adaptive_quadrature_and_miles(fn, g):
    W = 0.04
    f = _peak_grid(fn, g)
    T = _sdof_transmissibility(f, fn, g)
    r = random_response((f, T), f"20:{W},2000:{W}", frf_quantity="acceleration")
    ref = math.sqrt(quad(lambda x: abs(_sdof_transmissibility(x, fn, g)) ** 2 * W, 20.0, 2000.0,
                         points=[fn], epsabs=0, epsrel=1e-11, limit=500)[0])
    assert r.rms[0] == pytest.approx(ref, rel=5e-3)
    # the grid is coarse (55 points): the trapezoid rule on it is off by more than 0.5 %
    assert abs(math.sqrt(np.trapezoid(np.abs(T) ** 2 * W, f)) / ref - 1) > 5e-3
    assert r.rms[0] == pytest.approx(miles_grms(fn, 1 / g, W), rel=0.03)
    # the same answer from the displacement per unit base acceleration (femfreq's default FRF)
    disp = random_response((f, -T / (2 * np.pi * f) ** 2), f"20:{W},2000:{W}")
    assert disp.rms[0] == pytest.approx(r.rms[0], rel=1e-12)
    np.testing.assert_allclose(r.psd[:, 0], np.abs(T) ** 2 * W, rtol=1e-12)


def test_sdof_grms_under_the_gevs_level_matches_adaptive_quadrature():
    # the mode sits between grid points and ASD breakpoints fall inside grid segments
    fn, g = 60.0, 0.02
    gevs = ASD.parse(GEVS)
    f = _peak_grid(fn, g)
    r = random_response((f, _sdof_transmissibility(f, fn, g)), gevs, frf_quantity="acceleration")
    ref = quad(lambda x: abs(_sdof_transmissibility(x, fn, g)) ** 2 * gevs(x), 20.0, 2000.0,
               points=[fn, 50.0, 800.0], epsabs=0, epsrel=1e-11, limit=500)[0]
    assert r.rms[0] == pytest.approx(math.sqrt(ref), rel=5e-3)


def test_a_zero_of_the_transfer_function_falls_back_to_the_trapezoid_rule():
    f = np.array([20.0, 100.0, 2000.0])
    r = random_response((f, np.array([1.0, 0.0, 1.0])), "20:0.04,2000:0.04", frf_quantity="acceleration")
    assert r.rms[0] == pytest.approx(math.sqrt(0.5 * 0.04 * 80.0 + 0.5 * 0.04 * 1900.0), rel=1e-12)


def test_integration_is_exact_for_power_laws_on_a_coarse_grid():
    # six points that miss every breakpoint: |H| = 1 times the GEVS power laws
    f = np.array([10.0, 33.0, 100.0, 700.0, 1500.0, 3000.0])
    gevs = ASD.parse(GEVS)
    r = random_response((f, np.ones(6)), gevs, frf_quantity="acceleration")
    assert r.rms[0] == pytest.approx(gevs.rms, rel=1e-12)
    v = random_response((f, np.ones(6)), gevs, quantity="velocity", frf_quantity="acceleration")
    ref = quad(lambda x: gevs(x) / (2 * np.pi * x) ** 2, 20.0, 2000.0, points=[50.0, 800.0],
               epsabs=0, epsrel=1e-12, limit=200)[0]
    assert v.rms[0] == pytest.approx(math.sqrt(ref), rel=1e-10)
    np.testing.assert_array_equal(r.psd[[0, -1], 0], [0.0, 0.0])


def test_random_response_from_a_sweep_result_uses_its_frf_and_labels():
    f = _peak_grid(150.0, 0.05)
    H = -_sdof_transmissibility(f, 150.0, 0.05) / (2 * np.pi * f) ** 2
    result = SweepResult(freqs_hz=f, response=np.c_[2 * H, 6 * H], load_spectrum=np.full(f.size, 2.0 + 0j),
                         outputs={"node": np.array([3, 4]), "direction": np.array([1, 0])})
    r = random_response(result, GEVS)
    single = random_response((f, H), GEVS)
    assert isinstance(r, RandomResponse) and r.psd.shape == (f.size, 2) and r.rms.shape == (2,)
    np.testing.assert_allclose(r.rms, [single.rms[0], 3 * single.rms[0]], rtol=1e-12)
    assert r.labels == ("node 3 y", "node 4 x") and r.band_hz == (20.0, 2000.0)
    np.testing.assert_allclose(r.mean_square, r.rms**2)
    with pytest.raises(ValueError, match="read-only"):
        r.psd[0, 0] = 1.0


def test_random_response_refuses_an_incomplete_result():
    f = np.geomspace(20.0, 2000.0, 10)
    done = np.ones(10, dtype=bool)
    done[4] = False
    result = SweepResult(freqs_hz=f, response=np.ones(10), done=done)
    with pytest.raises(ValueError, match="incomplete"):
        random_response(result, GEVS)


def test_random_response_warns_when_the_grid_covers_part_of_the_band():
    f = np.geomspace(100.0, 1000.0, 20)
    with pytest.warns(UserWarning, match="overlap only"):
        r = random_response((f, np.ones(20)), GEVS, frf_quantity="acceleration")
    assert r.band_hz == (100.0, 1000.0)
    assert r.rms[0] == pytest.approx(math.sqrt(0.16 * 700 + quad(ASD.parse(GEVS), 800, 1000)[0]), rel=1e-10)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (((np.array([20.0, 10.0, 30.0]), np.ones(3)), GEVS), {}, ValueError, "strictly increasing"),
        (((np.array([20.0, 30.0]), np.ones(3)), GEVS), {}, ValueError, r"shape \(F,\) or \(F, n_out\)"),
        (((np.array([20.0, 30.0]), np.array([1.0, np.nan])), GEVS), {}, ValueError, "not finite at 30 Hz"),
        (((np.array([1.0, 10.0]), np.ones(2)), GEVS), {}, ValueError, "do not overlap"),
        (((np.array([20.0, 30.0]), np.ones(2)), GEVS), {"quantity": "jerk"}, ValueError, "unknown quantity"),
        (((np.array([20.0, 30.0]), np.ones(2)), GEVS), {"frf_quantity": "force"}, ValueError, "unknown frf_quantity"),
        ((np.ones(3), GEVS), {}, TypeError, "SweepResult or a"),
        (((np.array([20.0, 30.0]), np.ones(2)), 0.04), {}, TypeError, "must be an ASD"),
    ],
)
def test_random_response_rejects_bad_inputs(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        random_response(*args, **kwargs)


def test_miles_equation():
    assert miles_grms(100.0, 10.0, 0.04) == pytest.approx(math.sqrt(math.pi / 2 * 100 * 10 * 0.04))
    gevs = ASD.parse(GEVS)
    np.testing.assert_allclose(miles_grms([30.0, 100.0], 10.0, gevs),
                               np.sqrt(np.pi / 2 * np.array([30.0, 100.0]) * 10 * gevs([30.0, 100.0])))
    with pytest.raises(ValueError, match="fn must be finite and > 0"):
        miles_grms(0.0, 10.0, 0.04)
    with pytest.raises(ValueError, match="q must be"):
        miles_grms(100.0, -1.0, 0.04)


# ------------------------------------------------------------ shock response spectrum

PEAK, WIDTH = 100.0, 1e-3  # a 100 g, 1 ms half-sine


def _half_sine(fs, duration):
    t = np.arange(0.0, duration, 1.0 / fs)
    return t, np.where(t <= WIDTH, PEAK * np.sin(np.pi * t / WIDTH), 0.0)


def _ode_srs(fn, q):
    """Positive and negative peak absolute acceleration by solve_ivp: pulse, then one and a half free periods."""
    zeta, wn = 0.5 / q, 2 * np.pi * fn
    base = lambda t: PEAK * np.sin(np.pi * t / WIDTH) if t <= WIDTH else 0.0  # noqa: E731
    rhs = lambda t, x: [x[1], -base(t) - 2 * zeta * wn * x[1] - wn**2 * x[0]]  # noqa: E731
    pos = neg = 0.0
    state = [0.0, 0.0]
    for t0, t1 in ((0.0, WIDTH), (WIDTH, WIDTH + 1.5 / fn)):  # split at the kink of the input
        ts = np.linspace(t0, t1, 20001)
        sol = solve_ivp(rhs, (t0, t1), state, method="DOP853", t_eval=ts, rtol=1e-11, atol=1e-14,
                        max_step=min(WIDTH, 1 / fn) / 200)
        y = -(2 * zeta * wn * sol.y[1] + wn**2 * sol.y[0])
        pos, neg, state = max(pos, y.max()), max(neg, -y.min()), sol.y[:, -1]
    return pos, neg


def test_half_sine_srs_matches_an_independent_ode_solution():
    t, a = _half_sine(100e3, 0.02)
    fns = np.array([100.0, 300.0, 1000.0, 3000.0, 8000.0])
    s = shock_response_spectrum(t, a, fns, q=10)
    assert isinstance(s, ShockSpectrum) and s.maximax.shape == (5,)
    ref = np.array([_ode_srs(fn, 10) for fn in fns])
    np.testing.assert_allclose(s.positive, ref[:, 0], rtol=5e-3)
    np.testing.assert_allclose(s.negative, ref[:, 1], rtol=5e-3)
    np.testing.assert_array_equal(s.maximax, np.maximum(s.positive, s.negative))


def test_low_frequency_limit_is_the_impulse_response_to_the_velocity_change():
    # fn * WIDTH << 1: the pulse acts as a velocity step dv; the closed-form impulse response peak
    t, a = _half_sine(100e3, 0.01)
    dv, zeta = 2 * PEAK * WIDTH / np.pi, 0.05
    fns = np.array([1.0, 2.0, 5.0])
    s = shock_response_spectrum(t, a, fns, q=10)
    for fn, srs in zip(fns, s.maximax):
        wn = 2 * np.pi * fn
        wd = wn * math.sqrt(1 - zeta**2)
        tt = np.linspace(0.0, 2.0 / fn, 200001)
        decay = np.exp(-zeta * wn * tt)
        z = -dv / wd * decay * np.sin(wd * tt)
        dz = -dv * decay * (np.cos(wd * tt) - zeta * wn / wd * np.sin(wd * tt))
        assert srs == pytest.approx(np.abs(2 * zeta * wn * dz + wn**2 * z).max(), rel=1e-3)
    # proportional to dv * wn (the constant is 0.931 for Q = 10)
    np.testing.assert_allclose(s.maximax / (dv * 2 * np.pi * fns), 0.9313, rtol=1e-3)


def test_high_frequency_limit_is_the_peak_input_acceleration():
    t, a = _half_sine(1e6, 0.003)
    s = shock_response_spectrum(t, a, [2e4, 5e4], q=10)
    np.testing.assert_allclose(s.maximax, PEAK, rtol=5e-3)
    assert s.maximax[1] <= s.maximax[0]


def test_channels_are_independent_and_signs_swap_the_spectra():
    t, a = _half_sine(100e3, 0.01)
    fns = octave_frequencies(100.0, 5000.0, fraction=3)
    one = shock_response_spectrum(t, a, fns)
    both = shock_response_spectrum(t, np.c_[a, -2 * a], fns, kind="negative")
    assert both.positive.shape == (fns.size, 2) and one.positive.shape == (fns.size,)
    np.testing.assert_allclose(both.positive[:, 0], one.positive, rtol=1e-12)
    np.testing.assert_allclose(both.positive[:, 1], 2 * one.negative, rtol=1e-12)
    np.testing.assert_allclose(both.negative[:, 1], 2 * one.positive, rtol=1e-12)
    np.testing.assert_array_equal(both.srs, both.negative)
    np.testing.assert_array_equal(one.srs, one.maximax)


def test_refinement_finds_peaks_between_samples():
    # 10.9 samples per period at 1100 Hz: the plain filter misses the peak between samples by ~1.6 %;
    # the rest (~0.6 %) is the 12-sample piecewise-linear description of the pulse itself
    t, a = _half_sine(12e3, 0.02)
    plain = shock_response_spectrum(t, a, [1100.0], points_per_cycle=1).maximax[0]
    refined = shock_response_spectrum(t, a, [1100.0]).maximax[0]
    ref = max(_ode_srs(1100.0, 10))
    assert refined >= plain * (1 - 1e-12)
    assert abs(refined / ref - 1) < 1e-2 < abs(plain / ref - 1)


def test_srs_warns_when_sampled_below_ten_times_the_highest_frequency():
    t, a = _half_sine(20e3, 0.005)
    with pytest.warns(UserWarning, match="below 10 x the highest natural frequency"):
        shock_response_spectrum(t, a, [1000.0, 2500.0])


@pytest.mark.parametrize(
    "t, accel, freqs, kwargs, match",
    [
        (np.r_[0.0, 1e-4, 3e-4, 4e-4], np.zeros(4), [100.0], {}, "uniformly sampled"),
        (np.arange(4) * 1e-4, np.zeros(5), [100.0], {}, r"accel must have shape \(n_t,\)"),
        (np.arange(4) * 1e-4, np.zeros((4, 2, 2)), [100.0], {}, r"accel must have shape"),
        (np.arange(4) * 1e-4, np.zeros(4), [0.0, 100.0], {}, "natural frequencies > 0"),
        (np.arange(4) * 1e-4, np.zeros(4), [100.0], {"q": 0.5}, "q must be > 0.5"),
        (np.arange(4) * 1e-4, np.zeros(4), [100.0], {"kind": "rms"}, "unknown kind"),
        (np.arange(4) * 1e-4, np.r_[0, np.nan, 0, 0], [100.0], {}, "must be finite"),
    ],
)
def test_srs_rejects_bad_inputs(t, accel, freqs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        shock_response_spectrum(t, accel, freqs, **kwargs)


def test_octave_frequencies():
    sixth = octave_frequencies(100.0, 10_000.0)
    assert sixth[0] == 100.0 and sixth.size == 40 and sixth[-1] <= 10_000.0
    np.testing.assert_allclose(sixth[1:] / sixth[:-1], 2 ** (1 / 6))
    twelfth = octave_frequencies(100.0, 1600.0, fraction=12)
    assert twelfth.size == 49 and twelfth[-1] == pytest.approx(1600.0)
    with pytest.raises(ValueError, match="f_min must be <= f_max"):
        octave_frequencies(200.0, 100.0)
    with pytest.raises(ValueError, match="fraction must be >= 1"):
        octave_frequencies(100.0, 200.0, fraction=0)
