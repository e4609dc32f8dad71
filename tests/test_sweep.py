"""The serial sweep: femfreq.solve against dense solves and closed forms."""

import numpy as np
import pytest
import scipy.sparse as sp

import femfreq
from femfreq.codes import Method
from femfreq.execute.task import solve_chunk
from femfreq.options import Direct, Fast, Local
from femfreq.spectra import History
from femfreq.system import System


def _chain(n, k=1000.0, m=1.0):
    """A fixed-free spring-mass chain: n masses, n springs."""
    main = np.full(n, 2 * k)
    main[-1] = k
    K = sp.diags([main, -k * np.ones(n - 1), -k * np.ones(n - 1)], [0, 1, -1], format="csr")
    M = sp.eye(n, format="csr") * m
    return K, M


def _dense(K, C, M, b, freqs, P, g=0.0):
    out = []
    for f, p in zip(freqs, P):
        w = 2 * np.pi * f
        A = (1 + 1j * g) * K.toarray() + 1j * w * C.toarray() - w**2 * M.toarray()
        out.append(np.linalg.solve(A, p * b))
    return np.array(out)


def test_single_dof_frf_equals_closed_form():
    k, m, c = 400.0, 2.0, 0.8
    freqs = np.linspace(0, 10, 41)
    r = femfreq.solve(np.array([[k]]), np.array([[c]]), np.array([[m]]), [1.0],
                      freqs_hz=freqs, cluster=None, progress=False)
    w = 2 * np.pi * freqs
    np.testing.assert_allclose(r.response[:, 0], 1.0 / (k + 1j * w * c - w**2 * m), rtol=1e-12)
    assert np.all(r.method == Method.DIRECT)
    assert np.all(r.rel_residual < 1e-12)
    assert r.complete


def test_two_dof_frf_equals_closed_form():
    k1, k2, m1, m2 = 1000.0, 500.0, 1.0, 0.5
    K = sp.csr_matrix([[k1 + k2, -k2], [-k2, k2]])
    M = sp.csr_matrix(np.diag([m1, m2]))
    freqs = np.linspace(0.5, 12, 30)
    r = femfreq.solve(K, None, M, [0.0, 1.0], freqs_hz=freqs, cluster=None, progress=False)
    w2 = (2 * np.pi * freqs) ** 2
    det = (k1 + k2 - m1 * w2) * (k2 - m2 * w2) - k2**2
    x1 = k2 / det
    x2 = (k1 + k2 - m1 * w2) / det
    np.testing.assert_allclose(r.response[:, 0], x1, rtol=1e-10)
    np.testing.assert_allclose(r.response[:, 1], x2, rtol=1e-10)


@pytest.mark.parametrize("g", [0.0, 0.02])
def test_chain_matches_dense_solve_with_load_spectrum(g):
    K, M = _chain(12)
    C = 0.004 * K
    rng = np.random.default_rng(1)
    b = rng.standard_normal(12)
    freqs = np.linspace(0, 20, 57)
    P = rng.standard_normal(57) + 1j * rng.standard_normal(57)
    out = [3, 11]
    r = femfreq.solve(K, C, M, b, freqs_hz=freqs, load=P, g=g, output_dofs=out, cluster=None, progress=False)
    ref = _dense(K, C, M, b, freqs, P, g)[:, out]
    np.testing.assert_allclose(r.response, ref, rtol=1e-10, atol=1e-14 * abs(ref).max())


def test_history_path_uses_rfft_bins_and_returns_time_response():
    K, M = _chain(4)
    C = 0.05 * K
    dt, n_fft = 1e-3, 256
    history = np.zeros(200)
    history[5:15] = 1.0
    r = femfreq.solve(K, C, M, [0, 0, 0, 1.0], load=History(history, dt=dt, n_fft=n_fft), cluster=None, progress=False)
    np.testing.assert_array_equal(r.freqs_hz, np.fft.rfftfreq(n_fft, dt))
    assert r.freqs_hz[-1] == pytest.approx(0.5 / dt)  # the Nyquist bin is in
    P = np.fft.rfft(history, n_fft)
    ref = _dense(K, C, M, np.array([0, 0, 0, 1.0]), r.freqs_hz, P)
    np.testing.assert_allclose(r.response, ref, rtol=1e-9, atol=1e-12 * abs(ref).max())
    np.testing.assert_allclose(r.time_response, np.fft.irfft(ref, n_fft, axis=0), atol=1e-12 * abs(ref).max())


def test_constant_history_gives_static_deflection():
    K, M = _chain(5)
    b = np.array([0, 1.0, 0, 0, 2.0])
    r = femfreq.solve(K, 0.01 * K, M, b, load=History(np.full(64, 3.0), dt=1e-3), cluster=None, progress=False)
    static = np.linalg.solve(K.toarray(), 3.0 * b)
    np.testing.assert_allclose(r.time_response, np.tile(static, (64, 1)), rtol=1e-10)


def test_free_free_zero_hz_is_refused_or_skipped():
    k = 100.0
    K = sp.csr_matrix([[k, -k], [-k, k]])  # two masses, one spring, nothing fixed
    M = sp.eye(2, format="csr")
    with pytest.raises(ValueError, match=r"singular.*0 Hz|0 Hz.*singular"):
        femfreq.solve(K, None, M, [1.0, 0.0], freqs_hz=[0.0, 1.0], cluster=None, progress=False)
    r = femfreq.solve(K, None, M, [1.0, 0.0], freqs_hz=[0.0, 1.0], cluster=None, progress=False,
                      method=Direct(skip_singular=True))
    assert r.method[0] == Method.SKIPPED and np.all(np.isnan(r.response[0]))
    w = 2 * np.pi
    ref = np.linalg.solve(K.toarray() - w**2 * np.eye(2), [1.0, 0.0])
    np.testing.assert_allclose(r.response[1], ref, rtol=1e-12)


def test_solve_chunk_keeps_only_output_dofs():
    K, M = _chain(6)
    s = System(K=K, C=None, M=M, b=np.ones(6), output_dofs=[0, 5])
    c = solve_chunk(s, [4, 7], [1.0, 2.0], [1.0, 1j])
    assert c.response.shape == (2, 2)
    np.testing.assert_array_equal(c.index, [4, 7])
    assert c.t_end >= c.t_start


def test_result_file_is_written_and_refuses_overwrite(tmp_path):
    K, M = _chain(3)
    out = tmp_path / "r.h5"
    r1 = femfreq.solve(K, None, M, [0, 0, 1.0], freqs_hz="1:5:5", out=out, cluster=None, progress=False)
    assert femfreq.read_results(out).complete
    with pytest.raises((ValueError, FileExistsError), match="resume|overwrite"):
        femfreq.solve(K, None, M, [0, 0, 1.0], freqs_hz="1:5:5", out=out, cluster=None, progress=False)
    r2 = femfreq.solve(K, None, M, [0, 0, 1.0], freqs_hz="1:5:5", out=out, cluster=None, progress=False,
                       resume=True)
    np.testing.assert_array_equal(r1.response, r2.response)


def test_bad_history_is_refused_when_made():
    with pytest.raises(ValueError, match="at least 2 samples"):
        History([1.0], dt=1e-3)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        History([0.0, 1.0, 2.0], dt=-1e-3)
    with pytest.raises(ValueError, match="non-finite sample at index 1"):
        History([0.0, np.nan], dt=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(freqs_hz=[-1.0, 2.0]), "negative|-1"),
        (dict(freqs_hz=[np.nan]), "nan|finite"),
        (dict(freqs_hz=[1.0], method="magic"), "unknown method 'magic'"),
        (dict(freqs_hz=[1.0, 2.0], load=[1.0, 2.0, 3.0]), "3 values but there are 2 frequencies"),
        (dict(), "no frequencies"),
        (dict(freqs_hz=[1.0, 2.0], load=[1.0, np.inf]), "non-finite value at index 1"),
    ],
)
def test_bad_sweep_input(kwargs, match):
    K, M = _chain(3)
    with pytest.raises(ValueError, match=match):
        femfreq.solve(K, None, M, [0, 0, 1.0], cluster=None, progress=False, **kwargs)


@pytest.mark.parametrize("g, beta", [(0.0, 0.004), (0.02, 0.0)])
def test_fast_method_is_certified_and_matches_direct(g, beta):
    model = femfreq.load_model("beam", level=2)
    freqs = np.linspace(0, 400, 161)
    kw = dict(freqs_hz=freqs, g=g, cluster=None, progress=False)
    import dataclasses
    from femfreq.model import Damping

    model = dataclasses.replace(model, damping=Damping(beta=beta, g=g))
    direct = femfreq.solve(model, method="direct", **kw)
    fast = femfreq.solve(model, method=Fast(tol=1e-8), **kw)
    assert np.all(fast.rel_residual <= 1e-8)
    assert set(np.unique(fast.method)) <= {Method.FAST, Method.DIRECT}
    assert np.any(fast.method == Method.FAST)
    scale = np.abs(direct.response).max()
    np.testing.assert_allclose(fast.response, direct.response, atol=1e-5 * scale)


def test_fast_skips_singular_zero_hz_when_asked():
    k = 100.0
    K = sp.csr_matrix([[k, -k, 0], [-k, 2 * k, -k], [0, -k, k]])  # free-free chain
    M = sp.eye(3, format="csr")
    with pytest.warns(RuntimeWarning, match="skipping 0 Hz"):
        r = femfreq.solve(K, None, M, [1.0, 0, 0], freqs_hz=[0.0, 1.0, 2.0], method=Fast(skip_singular=True),
                          cluster=None, progress=False)
    assert r.method[0] == Method.SKIPPED
    ref = np.linalg.solve(K.toarray() - (2 * np.pi) ** 2 * np.eye(3), [1.0, 0, 0])
    np.testing.assert_allclose(r.response[1], ref, rtol=1e-8)


def test_calibration_sets_the_shortest_chunk(tmp_path):
    from femfreq.plan import DEFAULT_CALIBRATION, min_task_seconds, plan_sweep

    K, M = _chain(50)
    s = System(K=K, C=None, M=M, b=np.ones(50))
    freqs = np.linspace(0.0, 100.0, 2049)
    slow = dict(DEFAULT_CALIBRATION, task_overhead_s=0.5, seconds_per_dof=1e-3)  # 0.05 s per frequency
    assert min_task_seconds(slow) == pytest.approx(10.0)  # overhead / 5 %
    chunks = plan_sweep(s, freqs, 2, "direct", calibration=slow)
    assert min(c.size for c in chunks) >= 200  # 10 s / 0.05 s per frequency
    light = dict(DEFAULT_CALIBRATION, task_overhead_s=0.001, seconds_per_dof=1e-3)
    assert len(plan_sweep(s, freqs, 2, "direct", calibration=light)) > len(chunks)
    # with the built-in defaults a tiny model's frequencies (~0.2 ms each) go in few, long chunks
    tiny = plan_sweep(s, freqs, 2, "direct")
    assert all(c.size * 3.5e-6 * 50 >= 0.2 for c in tiny)
    path = tmp_path / "calib.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="calib.json:1"):
        femfreq.solve(K, None, M, np.ones(50), freqs_hz=[1.0], progress=False, cluster=Local(calibration=path))


def test_fast_plan_uses_mode_weights_only_with_light_damping():
    from femfreq.plan import needs_mode_weights, plan_sweep
    from femfreq.solvers.fast import mode_weights

    model = femfreq.load_model("satellite", level=1)  # a 2-D body: N(f) grows ~ f^2
    K, C, M, b = model.matrices()
    freqs = np.linspace(0, 1000, 2049)
    heavy = System(K=K, C=0.004 * K, M=M, b=b)
    light = System(K=K, C=None, M=M, b=b, g=0.02)
    assert not needs_mode_weights(heavy, "fast", freqs)
    assert needs_mode_weights(light, "fast", freqs)
    w = mode_weights(light, freqs)
    assert w.shape == freqs.shape and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w[-100:].sum() > w[:100].sum()  # more modes per Hz at the top of the band
    chunks = plan_sweep(light, freqs, 2, "fast", weights=w)
    sizes = {int(c[0]): c.size for c in chunks}
    assert sizes[min(sizes)] > sizes[max(sizes)]  # low bands are wider than high ones
    assert sorted(np.concatenate(chunks).tolist()) == list(range(freqs.size))


def test_mode_weights_are_finite_at_zero_hz_when_modes_thin_out():
    from femfreq.solvers.fast import mode_weights
    from femfreq.solvers.fast.modes import _mode_exponent

    s = femfreq.load_model("beam", level=2).system()  # slender beam: N(f) ~ f^p with p < 1
    assert _mode_exponent(s, 1000.0, True, "auto") < 1
    w = mode_weights(s, np.linspace(0, 1000, 101))
    assert np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w[1] > w[-1]  # denser at the bottom for p < 1


def test_the_embedded_cluster_closes_while_the_file_is_finished_and_is_closed_on_return(tmp_path, monkeypatch):
    # solve() closes the cluster it started in a thread once every chunk is written, overlapping
    # the reading back of the file; it returns only when the cluster is closed, also when that
    # reading fails
    import threading

    import psutil

    import femfreq
    from femfreq.model import load_model
    from femfreq.options import Local
    from femfreq.results import ResultWriter

    seen = {}
    real = ResultWriter.result

    def result(self):
        seen["closing"] = any(t.name == "femfreq-cluster-close" for t in threading.enumerate())
        return real(self)

    def children():  # multiprocessing's resource tracker, started by the first spawn, stays
        return {p.pid for p in psutil.Process().children(recursive=True)
                if "resource_tracker" not in " ".join(p.cmdline())}

    monkeypatch.setattr(ResultWriter, "result", result)
    before = children()
    r = femfreq.solve(load_model("satellite", level=1), method="fast", freqs_hz=np.linspace(0, 200, 33),
                      out=tmp_path / "r.h5", cluster=Local(n_workers=1, dashboard=False), progress=False)
    assert r.complete and seen["closing"]
    assert not any(t.name == "femfreq-cluster-close" for t in threading.enumerate())
    assert children() <= before

    def broken(self):
        raise OSError("disk gone")

    monkeypatch.setattr(ResultWriter, "result", broken)
    with pytest.raises(OSError, match="disk gone"):
        femfreq.solve(load_model("satellite", level=1), method="fast", freqs_hz=np.linspace(0, 200, 33),
                      cluster=Local(n_workers=1, dashboard=False), progress=False)
    assert not any(t.name == "femfreq-cluster-close" for t in threading.enumerate())
    assert children() <= before
