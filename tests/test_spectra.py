"""spectra: load histories, rfft grids, P(w) and back to time, against independent references."""

import h5py
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.spectra import (
    History,
    PYROSHOCK_COMPONENTS,
    ReadError,
    frequency_grid,
    load_spectrum,
    pyroshock,
    read_history,
    rfft_freqs,
    to_time,
)

# --------------------------------------------------------------------------- grids


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5000), st.floats(1e-6, 10.0))
def test_rfft_freqs_are_numpy_rfftfreq(n_fft, dt):
    f = rfft_freqs(n_fft, dt)
    np.testing.assert_array_equal(f, np.fft.rfftfreq(n_fft, dt))
    # k / (n_fft dt), k = 0 .. n_fft // 2: spacing 1/(n_fft dt), Nyquist bin for even n_fft
    assert f.shape == (n_fft // 2 + 1,)
    np.testing.assert_allclose(f, np.arange(n_fft // 2 + 1) / (n_fft * dt), rtol=1e-14, atol=0)


def test_reference_grid_includes_nyquist_and_differs_from_linspace():
    f = rfft_freqs(4096, 5e-4)
    assert f.size == 2049 and f[0] == 0.0 and f[-1] == 1000.0
    assert f[1] == pytest.approx(2000 / 4096, rel=1e-15)
    wrong = np.linspace(0, 1000, 2048)  # the reference's grid: a different spacing, no Nyquist bin
    assert not np.allclose(wrong, f[:2048])


@pytest.mark.parametrize("n_fft, dt, err, match", [
    (1, 1e-3, ValueError, "n_fft must be >= 2"),
    (2.5, 1e-3, TypeError, "n_fft must be an integer"),
    (16, 0.0, ValueError, r"dt must be finite and > 0 \(got 0.0\)"),
    (16, np.nan, ValueError, "dt must be finite and > 0"),
])
def test_rfft_freqs_rejects_bad_input(n_fft, dt, err, match):
    with pytest.raises(err, match=match):
        rfft_freqs(n_fft, dt)


# --------------------------------------------------------------------------- transforms


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**31 - 1))
def test_round_trip_time_frequency_time(n, seed):
    h = np.random.default_rng(seed).standard_normal(n)
    for n_fft in (n, n + 7, 2 * n):
        back = to_time(load_spectrum(h, n_fft), n_fft)
        np.testing.assert_allclose(back[:n], h, rtol=0, atol=1e-12 * max(1, np.abs(h).max()))
        np.testing.assert_allclose(back[n:], 0, atol=1e-12 * max(1, np.abs(h).max()))


def test_load_spectrum_is_the_dft_and_truncation_warns():
    h = np.arange(6.0)
    k = np.arange(4)[:, None]
    dft = (h * np.exp(-2j * np.pi * k * np.arange(6) / 6)).sum(axis=1)
    np.testing.assert_allclose(load_spectrum(h, 6), dft, atol=1e-12)
    with pytest.warns(UserWarning, match="n_fft = 4 is shorter than the load history"):
        P = load_spectrum(h, 4)
    np.testing.assert_allclose(to_time(P, 4), h[:4], atol=1e-12)


def test_to_time_along_an_axis_and_checks_bins():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 10))
    X = np.fft.rfft(x, axis=1)
    np.testing.assert_allclose(to_time(X, 10, axis=1), x, atol=1e-12)
    with pytest.raises(ValueError, match="has 6 frequency bins along axis 1; n_fft = 12 needs 7"):
        to_time(X, 12, axis=1)


@pytest.mark.parametrize("history, n_fft, match", [
    ([[1.0, 2.0]], None, r"must be 1-D \(has shape \(1, 2\)\)"),
    ([1.0], None, "at least 2 samples"),
    ([1.0, np.inf, 2.0], None, r"non-finite sample at index 1 \(inf\)"),
    ([1.0, 2.0], 1, "n_fft must be >= 2"),
])
def test_load_spectrum_rejects_bad_input(history, n_fft, match):
    with pytest.raises(ValueError, match=match):
        load_spectrum(history, n_fft)


# --------------------------------------------------------------------------- SDOF through the spectra path


def _sdof_fft(f, dt, n_fft, m, c, k):
    """x(t) of m x'' + c x' + k x = f(t) through rfft -> H(omega) P -> irfft."""
    omega = 2 * np.pi * rfft_freqs(n_fft, dt)
    H = 1.0 / (k + 1j * omega * c - omega**2 * m)
    return to_time(H * load_spectrum(f, n_fft), n_fft)


def test_sdof_periodic_response_equals_ode_steady_state():
    """A band-limited periodic force: the FFT path is the exact periodic steady state.

    Reference: the ODE integrated with solve_ivp from the periodic initial state
    x0 = (I - e^{A T})^{-1} z(T) (z: response from rest over one period).
    """
    m, c, k = 2.0, 3.0, 4.0e4  # f_n ~ 22.5 Hz, zeta ~ 0.005
    dt, n = 1e-3, 1000
    T = n * dt
    harmonics = [(3, 1.0, 0.2), (22, 0.5, 1.0), (57, 0.3, 2.5)]  # (k, amplitude, phase)

    def force(t):
        return sum(a * np.cos(2 * np.pi * h / T * t + p) for h, a, p in harmonics)

    t = np.arange(n) * dt
    x_fft = _sdof_fft(force(t), dt, n, m, c, k)

    A = np.array([[0.0, 1.0], [-k / m, -c / m]])
    rhs = lambda s, y: A @ y + np.array([0.0, force(s) / m])  # noqa: E731
    zT = scipy.integrate.solve_ivp(rhs, (0, T), [0.0, 0.0], rtol=1e-11, atol=1e-14, method="DOP853").y[:, -1]
    y0 = np.linalg.solve(np.eye(2) - scipy.linalg.expm(A * T), zT)
    sol = scipy.integrate.solve_ivp(rhs, (0, T), y0, t_eval=t, rtol=1e-11, atol=1e-14, method="DOP853")
    x_ode = sol.y[0]
    np.testing.assert_allclose(x_fft, x_ode, rtol=0, atol=1e-7 * np.abs(x_ode).max())


def test_sdof_transient_response_matches_lsim_when_padded():
    """A transient burst padded with zeros: periodic response ~ causal response (lsim)."""
    m, c, k = 1.0, 40.0, (2 * np.pi * 50.0) ** 2  # 50 Hz, zeta ~ 0.064: dies out in ~0.3 s
    dt, n = 1e-4, 4000
    t = np.arange(n) * dt
    f = np.exp(-(((t - 0.02) / 0.004) ** 2)) * np.sin(2 * np.pi * 120 * t)  # smooth, well sampled
    x_fft = _sdof_fft(f, dt, 4 * n, m, c, k)[:n]
    _, x_lsim, _ = scipy.signal.lsim(([1.0], [m, c, k]), f, t)
    np.testing.assert_allclose(x_fft, x_lsim, rtol=0, atol=2e-3 * np.abs(x_lsim).max())


@pytest.mark.parametrize("n_fft", [16, 17, 1024])
def test_constant_load_gives_exactly_the_static_deflection(n_fft):
    k, F0 = 250.0, 3.5
    x = _sdof_fft(np.full(n_fft, F0), 1e-3, n_fft, m=1.0, c=0.3, k=k)
    np.testing.assert_allclose(x, F0 / k, rtol=1e-13)


# --------------------------------------------------------------------------- pyroshock


def test_pyroshock_is_deterministic_bounded_and_band_limited():
    f = pyroshock()
    assert f.shape == (4096,) and f.dtype == np.float64
    np.testing.assert_array_equal(f, pyroshock())
    assert np.abs(f).max() == pytest.approx(1.0)
    assert np.all(f[: int(0.005 / 5e-4)] == 0)  # onset delay
    P = np.abs(load_spectrum(f, 4096))
    freqs = rfft_freqs(4096, 5e-4)
    comp_freqs = np.array([c[0] for c in PYROSHOCK_COMPONENTS])
    assert comp_freqs.min() >= 50 and comp_freqs.max() <= 900
    # energy sits around the components: each has a local spectral peak within 5 Hz
    for fc in comp_freqs:
        near = np.abs(freqs - fc) < 5
        ring = (np.abs(freqs - fc) > 20) & (np.abs(freqs - fc) < 25)
        assert P[near].max() > P[ring].max()
    # the burst has died out by the end of the window (the FFT response is periodic)
    assert np.abs(f[-200:]).max() < 1e-6


def test_pyroshock_options_and_errors():
    f = pyroshock(dt=1e-4, n=1000, amplitude=5.0, delay=0.0)
    assert f.shape == (1000,) and np.abs(f).max() == pytest.approx(5.0)
    with pytest.warns(UserWarning, match="above the Nyquist frequency"):
        pyroshock(dt=1e-3)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        pyroshock(dt=-1)
    with pytest.raises(ValueError, match="delay 1.0 s is beyond the window"):
        pyroshock(n=100, delay=1.0)


# --------------------------------------------------------------------------- reading histories


def test_read_two_column_csv_with_header_and_comments(tmp_path):
    p = tmp_path / "h.csv"
    t = np.arange(6) * 2.5e-4
    lines = ["# a load history", "time_s, force_N"] + [f"{a:.7g}, {b:.6g}  # c" for a, b in zip(t, np.sin(t * 1e3))]
    p.write_text("\n".join(lines) + "\n\n")
    tt, f = read_history(p)
    np.testing.assert_allclose(tt, t)
    np.testing.assert_allclose(f, np.sin(t * 1e3), rtol=1e-5)
    assert read_history(p, dt=2.5e-4)[0].size == 6


@pytest.mark.parametrize("sep", [" ", "\t", ",", ";"])
def test_read_one_column_needs_dt(tmp_path, sep):
    p = tmp_path / "h.txt"
    p.write_text(sep.join(["1.5", "2", "-3e-1"]).replace(sep, "\n") + "\n")
    t, f = read_history(p, dt=0.01)
    np.testing.assert_allclose(t, [0, 0.01, 0.02])
    np.testing.assert_allclose(f, [1.5, 2, -0.3])
    with pytest.raises(ValueError, match="one-column load history needs dt"):
        read_history(p)


def test_read_hdf5_histories(tmp_path):
    t = np.arange(8) * 1e-3
    f = np.cos(t * 300)
    p1 = tmp_path / "tf.h5"
    with h5py.File(p1, "w") as h5:
        h5["t"], h5["f"] = t, f
    p2 = tmp_path / "one.hdf"
    with h5py.File(p2, "w") as h5:
        h5.create_dataset("load", data=f).attrs["dt"] = 1e-3
    p3 = tmp_path / "two.h5"
    with h5py.File(p3, "w") as h5:
        h5["data"] = np.column_stack([t, f])
    for p in (p1, p2, p3):
        tt, ff = read_history(p)
        np.testing.assert_allclose(tt, t, atol=1e-15)
        np.testing.assert_array_equal(ff, f)


@pytest.mark.parametrize("text, match", [
    ("0 1\n0.001 abc\n", r"h\.txt:2: non-numeric field 'abc'"),
    ("t f\nx y\n", r"h\.txt:2: non-numeric field 'x'"),
    ("0 1\n0.001 2\n0.002\n", r"h\.txt:3: expected 2 column\(s\)"),
    ("0 1 2\n", r"h\.txt:1: expected 1 column \(force\) or 2"),
    ("0 1\n0.001 2\n0.0025 3\n0.003 4\n", r"h\.txt:3: time is not uniformly spaced"),
    ("# c\n0 1\n0.001 nan\n", r"h\.txt:3: non-finite value"),
    ("0 1\n0.001 inf\n", r"h\.txt:2: non-finite value"),
    ("0.002 1\n0.001 1\n0.0 1\n", r"h\.txt:\d+: time must increase"),
    ("# only a comment\n0 1\n", r"at least 2 samples \(found 1\)"),
    ("# nothing\n", r"at least 2 samples \(found no data\)"),
])
def test_read_history_errors_name_file_and_line(tmp_path, text, match):
    p = tmp_path / "h.txt"
    p.write_text(text)
    with pytest.raises(ReadError, match=match):
        read_history(p)


def test_read_history_other_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_history(tmp_path / "nope.csv")
    p = tmp_path / "h.txt"
    p.write_text("0 1\n0.001 2\n")
    with pytest.raises(ValueError, match=r"dt = 0.002 disagrees with the time column"):
        read_history(p, dt=0.002)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        read_history(p, dt=-1.0)
    h = tmp_path / "bad.h5"
    with h5py.File(h, "w") as h5:
        h5["a"], h5["b"] = [1.0, 2.0], [3.0, 4.0]
    with pytest.raises(ReadError, match=r"bad\.h5:0: expected datasets /t and /f"):
        read_history(h)
    with h5py.File(h, "w") as h5:
        h5["f"] = [1.0, np.nan, 2.0]
    with pytest.raises(ReadError, match=r"bad\.h5:0: /f: non-finite value nan at row 1"):
        read_history(h, dt=1.0)
    with h5py.File(h, "w") as h5:
        h5["f"] = np.ones((3, 3))
    with pytest.raises(ReadError, match=r"expected shape \(n,\), \(n, 1\) or \(n, 2\), found \(3, 3\)"):
        read_history(h, dt=1.0)
    with h5py.File(h, "w") as h5:
        h5["t"], h5["f"] = [0.0, 1.0, 2.0, 3.5, 4.5], np.ones(5)
    with pytest.raises(ReadError, match=r"bad\.h5:0: /t row 3: time is not uniformly spaced"):
        read_history(h)
    assert issubclass(ReadError, ValueError)


# --------------------------------------------------------------------------- user frequency grids


def test_frequency_grid_forms():
    np.testing.assert_array_equal(frequency_grid([0, 10.5, 20]), [0, 10.5, 20])
    np.testing.assert_array_equal(frequency_grid(np.array(7.0)), [7.0])
    np.testing.assert_allclose(frequency_grid("10:20:3"), [10, 15, 20])
    np.testing.assert_allclose(frequency_grid("log:1:100:3"), [1, 10, 100])
    np.testing.assert_allclose(frequency_grid(" LOG:10:1e3:3 "), [10, 100, 1000])
    np.testing.assert_allclose(frequency_grid("5, 7.5 9"), [5, 7.5, 9])
    np.testing.assert_allclose(frequency_grid("0:100:1"), [0])


@pytest.mark.parametrize("spec, match", [
    ([], r"no frequencies given \(got \[\]\)"),
    # the value may print as -2.0 or np.float64(-2.0)
    ([1.0, -2.0], r"finite and >= 0 Hz \(got .*-2\.0\)? at index 1\)"),
    ([np.nan], r"finite and >= 0 Hz \(got .*nan\)? at index 0\)"),
    ([1.0, np.inf], r"finite and >= 0 Hz \(got .*inf\)? at index 1\)"),
    ([[1.0, 2.0]], r"one-dimensional \(got shape \(1, 2\)\)"),
    ("", r"no frequencies given \(got ''\)"),
    ("1:2", r"'1:2' must be 'start:stop:n'"),
    ("1:2:x", r"'1:2:x': start and stop must be numbers and n an integer"),
    ("-1:2:3", r"'-1:2:3': frequencies must be >= 0"),
    ("1:inf:3", r"'1:inf:3': start and stop must be finite"),
    ("1:2:0", r"n must be >= 1 \(got 0\)"),
    ("5:2:3", r"stop 2 is below start 5"),
    ("log:0:10:3", r"log frequency range 'log:0:10:3': start must be > 0"),
    ("ten, 20", r"cannot read frequencies 'ten, 20'"),
    ("10,-5", r"frequencies '10,-5' must be finite and >= 0 Hz \(got .*-5\.0\)? at index 1\)"),
])
def test_frequency_grid_rejects_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        frequency_grid(spec)


def test_frequency_grid_rejects_non_numbers_as_a_type_error():
    with pytest.raises(TypeError, match=r"frequencies must be numbers in Hz \(got dtype <U1\)"):
        frequency_grid(["a"])
    with pytest.raises(TypeError, match="frequencies must be numbers"):
        frequency_grid([True, False])


def test_load_spectrum_and_history_share_one_samples_check():
    # a complex history used to lose its imaginary part silently in load_spectrum
    with pytest.raises(TypeError, match="the load history must be real numbers"):
        load_spectrum([1 + 1j, 2.0])
    with pytest.raises(TypeError, match="the load history must be real numbers"):
        History([1 + 1j, 2.0], dt=0.1)
    for bad in ([1.0], [1.0, np.nan]):
        with pytest.raises(ValueError) as from_spectrum:
            load_spectrum(bad)
        with pytest.raises(ValueError) as from_history:
            History(bad, dt=0.1)
        assert str(from_spectrum.value) == str(from_history.value)


def test_integer_arguments_refuse_floats_and_booleans():
    for call in (lambda: rfft_freqs(16.0, 1e-3), lambda: to_time(np.ones(9), 16.0),
                 lambda: pyroshock(n=True), lambda: History(np.ones(4), dt=0.1, n_fft=8.0)):
        with pytest.raises(TypeError, match="must be an integer"):
            call()
    with pytest.raises(ValueError, match=r"delay must be finite and >= 0 \(got -0.1\)"):
        pyroshock(delay=-0.1)


def test_a_spec_is_auto_exactly_when_grid_is_auto_says_so():
    from femfreq.grid import is_auto
    from femfreq.spectra import frequency_grid

    # "automatic:..." is not the auto family (femfreq.solve's resume test agrees): a range error
    assert not is_auto("automatic:1:2")
    with pytest.raises(ValueError, match="frequency range 'automatic:1:2'"):
        frequency_grid("automatic:1:2")
    assert is_auto(" Auto :1:100")
    with pytest.raises(ValueError, match="resolved on a model"):
        frequency_grid(" Auto :1:100")
