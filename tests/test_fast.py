"""Certified fast sweep (femfreq.solvers.fast) against dense and sparse direct solves."""

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.plan import plan_chunks, plan_sweep
from femfreq.solvers import cache_info, clear_caches, mkl_available
from femfreq.solvers.fast import count_modes, mode_weights, solve_band
from femfreq.solvers.fast.factors import ShiftedFactors, shifted_factors
from femfreq.system import System


def _truss(nx, ny, *, seed=0, fixed=True, E=1e7, rho=0.1, area=1e-2):
    """Triangulated nx x ny rectangular truss assembled here with numpy; bottom row fixed.

    Returns the reduced (free-DOF) K, M (lumped) and b (a vertical point load at the
    middle of the top row). Rods get random stiffness and mass variations so that the
    modes are not degenerate.
    """
    rng = np.random.default_rng(seed)
    X, Y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float), indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel()])
    idx = np.arange(nx * ny).reshape(nx, ny)
    edges = np.vstack([
        np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]),
        np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
        np.column_stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()]),
    ])
    d = pts[edges[:, 1]] - pts[edges[:, 0]]
    L = np.linalg.norm(d, axis=1)
    c, s = d[:, 0] / L, d[:, 1] / L
    k = E * area * (1 + 0.3 * rng.random(len(edges))) / L
    B = np.stack([np.stack([c * c, c * s], 1), np.stack([c * s, s * s], 1)], 1) * k[:, None, None]
    Ke = np.block([[B, -B], [-B, B]])
    dofs = np.column_stack([2 * edges[:, 0], 2 * edges[:, 0] + 1, 2 * edges[:, 1], 2 * edges[:, 1] + 1])
    N = 2 * nx * ny
    K = sp.csr_matrix((Ke.ravel(), (np.repeat(dofs, 4, axis=1).ravel(), np.tile(dofs, (1, 4)).ravel())),
                      shape=(N, N))
    mass = rho * area * L * (1 + 0.5 * rng.random(len(edges)))
    mnode = np.zeros(nx * ny)
    np.add.at(mnode, edges.ravel(), np.repeat(mass / 2, 2))
    M = sp.diags(np.repeat(mnode, 2)).tocsr()
    b = np.zeros(N)
    b[2 * idx[nx // 2, ny - 1] + 1] = -1.0
    free = np.setdiff1d(np.arange(N), np.concatenate([2 * idx[:, 0], 2 * idx[:, 0] + 1])) if fixed \
        else np.arange(N)
    return K[free][:, free], M[free][:, free], b[free]


def _damped(K, M, b, case, output_dofs=None):
    """A System with one of the damping models of the tests."""
    n = K.shape[0]
    C = {
        "beta": 0.004 * K,
        "rayleigh": 2.0 * M + 1e-4 * K,
        "structural": None,
        "light-beta": 1e-6 * K,
        "general": 1e-5 * K + sp.diags(np.random.default_rng(3).random(n) * 1e-3),
    }[case]
    g = {"structural": 0.02, "general": 0.01}.get(case, 0.0)
    return System(K=K, C=C, M=M, b=b, g=g, output_dofs=output_dofs)


def _natural_hz(K, M):
    lam = sla.eigh(K.toarray(), M.toarray(), eigvals_only=True)
    return np.sqrt(np.maximum(lam, 0)) / (2 * np.pi)


def _dense_check(system, freqs, load, result, tol):
    """Fast result vs a dense solve: residual, certificate and forward error bound."""
    A_all = [system.dynamic_matrix(2 * np.pi * f).toarray() for f in freqs]
    for i, A in enumerate(A_all):
        rhs = load[i] * system.b
        x_ref = np.linalg.solve(A, rhs)
        x = result.response[i]  # output_dofs = all DOF
        r_true = np.linalg.norm(A @ x - rhs) / np.linalg.norm(rhs)
        # certified and meets tol; the certificate never under-reports
        assert result.rel_residual[i] <= tol
        # the dense residual has its own rounding error, eps ||A|| ||x|| / ||P b||
        noise = 50 * np.finfo(float).eps * np.linalg.norm(A, 2) * np.linalg.norm(x) / np.linalg.norm(rhs)
        assert r_true <= 1.01 * result.rel_residual[i] + noise
        # the forward error obeys ||x - x_ref|| <= ||A^-1|| ||r||
        smin = np.linalg.svd(A, compute_uv=False)[-1]
        bound = r_true * np.linalg.norm(rhs) / smin
        assert np.linalg.norm(x - x_ref) <= 1.01 * bound + 1e-12 * np.linalg.norm(x_ref)


@pytest.mark.parametrize("case", ["beta", "rayleigh", "structural", "light-beta", "general"])
def test_matches_dense_solve_with_each_damping_model(case):
    K, M, b = _truss(16, 5)
    system = _damped(K, M, b, case)
    fn = _natural_hz(K, M)
    fmax = fn[12]
    # a grid plus the undamped resonance peaks exactly
    freqs = np.sort(np.concatenate([np.linspace(0, fmax, 41), fn[fn < fmax]]))
    load = np.exp(1j * freqs / fmax)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = solve_band(system, freqs, load, tol=1e-6)
    assert result.response.shape == (freqs.size, K.shape[0])
    assert set(np.unique(result.method)) <= {1, 2}
    _dense_check(system, freqs, load, result, 1e-6)
    if case != "general":
        assert (result.method == 2).mean() > 0.9  # the fast path does the work


def test_certificate_agrees_with_explicit_residual_everywhere():
    K, M, b = _truss(20, 5, seed=1)
    system = _damped(K, M, b, "structural")
    fn = _natural_hz(K, M)
    freqs = np.linspace(0, fn[15], 97)
    res = solve_band(system, freqs, np.ones(freqs.size), tol=1e-6)
    fast = res.method == 2
    assert fast.mean() > 0.9
    explicit = np.array([
        system.residuals(2 * np.pi * f, x, 1.0)[0] for f, x in zip(freqs[fast], res.response[fast])
    ])
    # within a factor, and never below the explicit value
    cert = res.rel_residual[fast]
    assert np.all(explicit <= 1.01 * cert + 1e-12)
    assert np.all(cert <= 2 * explicit + 1e-12)
    checks = np.array(res.info["explicit_checks"])
    assert checks.shape[1] == 3 and np.allclose(checks[:, 1], checks[:, 2], rtol=1e-3, atol=1e-13)


def test_backward_error_matches_definition():
    K, M, b = _truss(6, 3)
    system = _damped(K, M, b, "beta")
    freqs = np.linspace(0, 300, 13)
    res = solve_band(system, freqs, 2.0 * np.ones(13))
    for f, x, be in zip(freqs, res.response, res.backward_error):
        assert be == pytest.approx(system.residuals(2 * np.pi * f, x, 2.0)[1], rel=1e-3, abs=1e-16)


def test_mid_model_against_splu_at_resonance_peaks():
    K, M, b = _truss(60, 20, seed=2)  # 2,280 DOF
    out = np.arange(0, K.shape[0], 97)
    system = _damped(K, M, b, "structural", output_dofs=out)
    fn = np.sqrt(spla.eigsh(K.tocsc(), 20, M.tocsc(), sigma=0, which="LM", return_eigenvectors=False))
    fn = np.sort(fn) / (2 * np.pi)
    fmax = fn[-1]
    freqs = np.sort(np.concatenate([np.linspace(0, fmax, 201), fn]))
    res = solve_band(system, freqs, np.ones(freqs.size), tol=1e-6)
    assert res.rel_residual.max() <= 1e-6
    assert res.info["n_fallback"] <= 0.05 * freqs.size
    peaks = np.searchsorted(freqs, fn)
    for i in np.concatenate([peaks[::3], [0, 57, 133]]):
        A = system.dynamic_matrix(2 * np.pi * freqs[i]).tocsc()
        x = spla.splu(A).solve(b.astype(complex))
        ref = x[out]
        # at a peak the solution is large; residual 1e-6 gives about that relative accuracy
        assert np.linalg.norm(res.response[i] - ref) <= 1e-3 * np.linalg.norm(ref)


def test_too_small_basis_is_caught_and_falls_back_to_direct():
    K, M, b = _truss(10, 4)
    system = _damped(K, M, b, "structural")
    fn = _natural_hz(K, M)
    freqs = np.linspace(fn[0] / 2, fn[20], 60)
    res = solve_band(system, freqs, np.ones(60), max_basis=3, enlarge=False)
    assert res.info["basis_size"] <= 3
    fell = res.method == 1
    assert fell.sum() > 30
    # the reduced solution was above tol there, and was replaced by a direct solve
    assert np.all(res.info["fast_residual"][fell] > 1e-6)
    assert res.info["n_fallback"] == fell.sum()
    assert res.rel_residual.max() <= 1e-6
    _dense_check(system, freqs[fell][:5], np.ones(5),
                 type(res)(res.response[fell][:5], res.rel_residual[fell][:5], None, None), 1e-6)


@pytest.mark.parametrize("case", ["beta", "structural"])
def test_tolerance_down_to_1e_10(case):
    K, M, b = _truss(8, 4, seed=4)
    system = _damped(K, M, b, case)
    fn = _natural_hz(K, M)
    freqs = np.concatenate([np.linspace(0, fn[10], 31), fn[:10]])
    res = solve_band(system, freqs, np.ones(freqs.size), tol=1e-10)
    assert res.rel_residual.max() <= 1e-10
    _dense_check(system, freqs[::4], np.ones(freqs[::4].size),
                 type(res)(res.response[::4], res.rel_residual[::4], None, None), 1e-10)


def test_unreachable_tolerance_warns_and_reports_the_residual():
    K, M, b = _truss(5, 3)
    system = _damped(K, M, b, "beta")
    freqs = np.array([10.0, 200.0])
    with pytest.warns(RuntimeWarning, match="above tol"):
        res = solve_band(system, freqs, np.ones(2), tol=1e-17)
    assert np.all(res.rel_residual > 1e-17)
    assert np.all(res.method == 1)


def test_zero_hz_with_singular_stiffness_is_a_clear_error():
    from femfreq.solvers import SingularMatrixError

    K, M, b = _truss(4, 3, fixed=False)  # free-free: K has rigid-body modes
    system = _damped(K, M, b, "beta")
    freqs = np.array([0.0, 50.0, 100.0])
    with pytest.raises(SingularMatrixError, match="0 Hz"):
        solve_band(system, freqs, np.ones(3))
    with pytest.warns(RuntimeWarning, match="skipping 0 Hz"):
        res = solve_band(system, freqs, np.ones(3), skip_singular=True)
    assert res.method[0] == 3 and np.isnan(res.rel_residual[0]) and np.isnan(res.response[0]).all()
    assert np.isnan(res.backward_error[0])
    assert np.all(np.isin(res.method[1:], [1, 2])) and res.rel_residual[1:].max() <= 1e-6


def test_zero_hz_with_fixed_structure_is_solved_fast():
    K, M, b = _truss(6, 3)
    system = _damped(K, M, b, "structural")
    res = solve_band(system, np.array([0.0, 1.0]), np.ones(2))
    x0 = spla.spsolve((1 + 0.02j) * K.tocsc(), b.astype(complex))
    assert res.method[0] == 2
    np.testing.assert_allclose(res.response[0], x0, rtol=1e-5 * np.linalg.cond(K.toarray()) ** 0.5)


def test_zero_load_gives_zero_response_and_complex_b_works():
    K, M, b = _truss(6, 3)
    bc = b + 1j * np.roll(b, 3)
    system = System(K=K, C=1e-4 * K, M=M, b=bc)
    freqs = np.linspace(0, 200, 9)
    load = np.ones(9, dtype=complex)
    load[4] = 0
    res = solve_band(system, freqs, load)
    assert np.all(res.response[4] == 0) and res.rel_residual[4] == 0
    for i in (0, 3, 8):
        A = system.dynamic_matrix(2 * np.pi * freqs[i]).toarray()
        np.testing.assert_allclose(res.response[i], np.linalg.solve(A, bc), rtol=1e-4, atol=1e-12)


def test_superlu_factor_backend_and_user_shifts_agree():
    K, M, b = _truss(8, 3)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(10, 400, 40)
    a = solve_band(system, freqs, np.ones(40), factor="superlu", shifts=[100.0, 300.0])
    b2 = solve_band(system, freqs, np.ones(40))
    assert a.info["factor"] == "superlu-real"
    assert a.info["shifts_hz"][0] == pytest.approx(100.0)
    assert b2.info["factor"].startswith(("pardiso", "superlu"))
    scale = np.abs(b2.response).max()
    assert np.abs(a.response - b2.response).max() <= 1e-4 * scale


@settings(max_examples=15, deadline=None)
@given(st.integers(3, 25), st.floats(1e-3, 0.05), st.floats(0.0, 1e-3), st.integers(0, 2**31 - 1))
def test_spring_mass_chain_certified_against_dense(n, g, beta, seed):
    rng = np.random.default_rng(seed)
    k = rng.uniform(1e3, 1e4, n)
    m = rng.uniform(0.5, 2.0, n)
    # chain: node i joined to i-1 by spring k[i], node 0 to the wall
    main = k + np.append(k[1:], 0.0)
    K = sp.diags([main, -k[1:], -k[1:]], [0, 1, -1]).tocsr()
    M = sp.diags(m).tocsr()
    b = np.zeros(n)
    b[-1] = 1.0
    system = System(K=K, C=beta * K, M=M, b=b, g=g)
    fn = _natural_hz(K, M)
    freqs = np.concatenate([np.linspace(0, 1.2 * fn[-1], 17), fn])
    res = solve_band(system, freqs, np.ones(freqs.size))
    ok = np.isin(res.method, [1, 2])
    assert ok.all()
    _dense_check(system, freqs[ok][:8], np.ones(ok.sum())[:8],
                 type(res)(res.response[ok][:8], res.rel_residual[ok][:8], None, None), 1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(freqs_hz=[-1.0, 2.0]), "freqs_hz must be finite and >= 0 Hz \\(got .*-1.0.* at index 0\\)"),
        (dict(freqs_hz=[[1.0]]), "freqs_hz must be one-dimensional"),
        (dict(freqs_hz=[]), "freqs_hz must not be empty"),
        (dict(freqs_hz=[np.nan]), "freqs_hz must be finite"),
        (dict(load=np.ones(3)), "load has 3 values but there are 2 frequencies"),
        (dict(load=[1.0, np.inf]), "load has a non-finite value"),
        (dict(tol=0.0), "tol must be in \\(0, 1\\) \\(got 0.0\\)"),
        (dict(tol=2.0), "tol must be in \\(0, 1\\)"),
        (dict(max_basis=0), "max_basis must be >= 1 \\(got 0\\)"),
        (dict(shifts=[np.inf]), "shifts must be a 1-D list of finite frequencies"),
        (dict(factor="cholmod"), "unknown factor backend 'cholmod'"),
    ],
)
def test_bad_inputs_are_rejected(kwargs, match):
    K, M, b = _truss(4, 3)
    system = _damped(K, M, b, "beta")
    args = dict(freqs_hz=[1.0, 2.0], load=np.ones(2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        solve_band(system, args.pop("freqs_hz"), args.pop("load"), **args)


def test_max_basis_must_be_an_integer():
    K, M, b = _truss(4, 3)
    with pytest.raises(TypeError, match="max_basis must be an integer \\(got 2.5\\)"):
        solve_band(_damped(K, M, b, "beta"), [1.0, 2.0], np.ones(2), max_basis=2.5)


def test_system_must_be_a_system():
    with pytest.raises(TypeError, match="system must be a femfreq.System \\(got dict\\)"):
        solve_band({}, [1.0], [1.0])


# -- mode counts, equal-mode sub-bands, shared analysis ---------------------------------
needs_mkl = pytest.mark.skipif(not mkl_available(), reason="Sturm counts need MKL PARDISO")


@needs_mkl
def test_sturm_count_matches_dense_eigenvalues():
    K, M, b = _truss(12, 5, seed=5)
    fn = _natural_hz(K, M)
    system = _damped(K, M, b, "structural")
    # probe between modes (a probe on a mode may count it either way)
    probes = 0.5 * (fn[[3, 20, 57, 90]] + fn[[4, 21, 58, 91]])
    np.testing.assert_array_equal(count_modes(system, probes), [4, 21, 58, 91])


@pytest.mark.parametrize("freqs, match", [([0.0, 1.0], "positive finite"), ([np.nan], "positive finite")])
def test_sturm_count_rejects_bad_frequencies(freqs, match):
    K, M, b = _truss(4, 3)
    with pytest.raises(ValueError, match=match):
        count_modes(_damped(K, M, b, "beta"), freqs)


def test_shared_analysis_refactorization_solves_each_shift_exactly():
    K, M, b = _truss(10, 4, seed=6)
    system = _damped(K, M, b, "structural")
    factors = ShiftedFactors(system, "auto")
    try:
        for f in (-50.0, 120.0, 333.0, 40.0):  # the analysis is reused from the 2nd shift on
            s = np.sign(f) * (2 * np.pi * f) ** 2
            x = factors.factor(s).solve(b)
            ref = np.linalg.solve((K - s * M).toarray(), b)
            np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
        assert factors.analyses == (1 if factors.backend == "pardiso" else 4)
    finally:
        factors.close()


@needs_mkl
def test_mode_weights_plan_sub_bands_of_about_equal_mode_count():
    K, M, b = _truss(30, 8, seed=7)
    fn = _natural_hz(K, M)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(0, fn[120], 801)
    chunks = plan_sweep(system, freqs, 3, "fast", weights=mode_weights(system, freqs))
    assert np.array_equal(np.sort(np.concatenate(chunks)), np.arange(freqs.size))
    assert all(np.all(np.diff(c) == 1) for c in chunks)  # contiguous
    counts = np.array([np.sum((fn >= freqs[c].min()) & (fn <= freqs[c].max())) for c in chunks])
    widths = np.array([np.ptp(freqs[c]) for c in chunks])
    top, bottom = np.argmax([freqs[c].max() for c in chunks]), np.argmin([freqs[c].min() for c in chunks])
    # the density grows with frequency: equal counts mean much narrower top bands
    assert counts.max() <= 2 * counts.mean() + 3, counts
    assert widths[top] < 0.6 * widths[bottom]


def test_mode_weights_and_weighted_plan():
    K, M, b = _truss(10, 4)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(0, 500, 1001)
    w = mode_weights(system, freqs)
    assert w.shape == (1001,) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w[-1] > w[100]  # the density grows with frequency
    chunks = plan_chunks(1001, 2, method="fast", weights=w)
    assert np.array_equal(np.sort(np.concatenate(chunks)), np.arange(1001))
    assert all(np.all(np.diff(c) == 1) for c in chunks)
    assert chunks[0][-1] == 1000 and chunks[1][0] == 0  # both ends first: top band, then bottom band
    assert chunks[2][-1] + 1 == chunks[0][0] and chunks[3][0] == chunks[1][-1] + 1  # then inwards
    cost = np.array([w[c].sum() for c in chunks])
    assert cost.max() <= 1.5 * cost.min()  # equal weight, not equal width
    assert chunks[0].size < chunks[1].size
    with pytest.raises(ValueError, match="weights must be 1001 non-negative finite numbers"):
        plan_chunks(1001, 2, method="fast", weights=-w)
    with pytest.raises(ValueError, match="freqs_hz must be finite"):
        mode_weights(system, [np.inf, 1.0])


@needs_mkl
def test_analysis_is_kept_for_the_next_call_on_the_same_system_and_freed():
    clear_caches()
    K, M, b = _truss(8, 4, seed=8)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(5, 300, 30)
    first = solve_band(system, freqs, np.ones(30))
    assert cache_info()["factorizations"] == 1
    with shifted_factors(system) as kept:
        pass
    again = solve_band(system, freqs, np.ones(30))  # refactorizations on the kept analysis
    with shifted_factors(system) as still:
        assert still is kept and kept.analyses == 1
    np.testing.assert_allclose(again.response, first.response, rtol=1e-9, atol=1e-14)
    assert again.rel_residual.max() <= 1e-6
    other = _damped(*_truss(5, 3), "structural")
    solve_band(other, [10.0, 20.0], [1.0, 1.0])  # another system replaces the kept one
    with shifted_factors(system) as fresh:
        assert fresh is not kept
    clear_caches()
    assert cache_info() == {"direct_solvers": 0, "factorizations": 0}
    # Sturm counts (planning on a worker) leave their analysis for the sub-bands that follow
    counts = count_modes(system, [50.0, 300.0])
    with shifted_factors(system) as kept:
        pass
    r = solve_band(system, freqs, np.ones(30))
    with shifted_factors(system) as still:
        assert still is kept and kept.analyses == 1  # no new analysis
    np.testing.assert_allclose(r.response, first.response, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(count_modes(system, [50.0, 300.0]), counts)
    clear_caches()
    assert cache_info()["factorizations"] == 0


@pytest.mark.parametrize("backend", ["superlu", pytest.param("pardiso", marks=needs_mkl)])
def test_multi_rhs_solve_equals_column_by_column(backend):
    # a block of right-hand sides in one call must give what one call per column gives
    K, M, b = _truss(12, 5, seed=8)
    system = _damped(K, M, b, "structural")
    B = np.asfortranarray(np.random.default_rng(1).standard_normal((system.n, 7)))
    with shifted_factors(system, backend) as factors:
        F = factors.factor((2 * np.pi * 150.0) ** 2)
        X = F.solve(B)
        cols = np.column_stack([F.solve(B[:, j]) for j in range(B.shape[1])])
    assert X.shape == B.shape
    np.testing.assert_allclose(X, cols, rtol=0, atol=1e-12 * np.abs(cols).max())



def test_the_last_block_is_cut_to_the_predicted_need():
    # a residual falling 10x per vector from 1e-2 at 8 vectors to 1e-4 at 10 needs 2 more
    # for 1e-6: the next block is 3 vectors (2 + one spare), not a whole block of 8
    from femfreq.solvers.fast.reduced import _predicted_step

    assert _predicted_step([(8, 1e-2), (10, 1e-4)], 1e-6) == 3
    # geometric at 0.5 per vector from 1e-3 (16 vectors) to 2**-8 * 1e-3 (24): 1e-6 is
    # log2(1e-6 / 3.9e-6) ~ 2 vectors away
    assert _predicted_step([(16, 1e-3), (24, 1e-3 / 256)], 1e-6) == 3
    # no prediction from one block, from a residual that did not fall, or when certified
    for history in ([(8, 1e-2)], [(8, 1e-2), (16, 2e-2)], [(8, 1e-2), (16, 1e-7)]):
        assert _predicted_step(history, 1e-6) > 1000


def test_bases_stop_short_of_a_whole_last_block():
    # the predicted last block: fewer vectors than whole blocks of 8 (the fixed step=8
    # build), every frequency still certified
    K, M, b = _truss(40, 8, seed=3)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(100.0, 200.0, 60)
    auto = solve_band(system, freqs, np.ones(freqs.size), tol=1e-6)
    whole = solve_band(system, freqs, np.ones(freqs.size), tol=1e-6, step=8)
    for r in (auto, whole):
        assert r.rel_residual.max() <= 1e-6 and (r.method == 2).all()
    assert all(m % 8 == 0 for m in whole.info["basis_sizes"])
    assert sum(auto.info["basis_sizes"]) < sum(whole.info["basis_sizes"])


def test_a_wide_band_on_a_small_model_stays_m_orthonormal():
    # 0..800 Hz holds a large share of this 800-DOF truss's modes: the Krylov blocks grow
    # nearly dependent and Gram-Schmidt loses half of a column's norm pass after pass.
    # Such columns used to be kept after four passes: V^T M V drifted from I (3e-8,
    # then 0.3) until eigh(Kr, Mr) failed with "leading minor ... not positive definite"
    K, M, b = _truss(50, 8, seed=4)
    system = _damped(K, M, b, "structural")
    freqs = np.linspace(0.0, 800.0, 100)
    r = solve_band(system, freqs, np.ones(freqs.size), tol=1e-6)
    assert r.rel_residual.max() <= 1e-6
    Kd, Md = K.toarray(), M.toarray()
    out = system.output_dofs
    for i in (0, 37, 99):
        w = 2 * np.pi * freqs[i]
        x = np.linalg.solve((1 + 1j * system.g) * Kd - w * w * Md, b)
        np.testing.assert_allclose(r.response[i], x[out], rtol=1e-4, atol=1e-4 * np.abs(x[out]).max())


def test_a_factored_response_is_the_dense_one_with_fallback_skipped_and_zero_rows():
    import pickle

    # free-free: 0 Hz is singular (skipped); a basis of 3 leaves most frequencies to direct solves;
    # a zero load gives a zero row; one output DOF in three
    K, M, b = _truss(10, 4, fixed=False)
    out = np.arange(0, K.shape[0], 3)
    system = _damped(K, M, b, "structural", output_dofs=out)
    fn = _natural_hz(K, M)
    freqs = np.concatenate([[0.0], np.linspace(fn[3] / 2, fn[20], 40)])
    load = np.ones(freqs.size, dtype=complex)
    load[7] = 0
    kw = dict(max_basis=3, enlarge=False, skip_singular=True)
    with pytest.warns(RuntimeWarning, match="skipping 0 Hz"):
        dense = solve_band(system, freqs, load, **kw)
    with pytest.warns(RuntimeWarning, match="skipping 0 Hz"):
        fact = solve_band(system, freqs, load, factored=True, **kw)
    assert isinstance(dense.response, np.ndarray) and not isinstance(fact.response, np.ndarray)
    assert set(np.unique(fact.method)) == {1, 2, 3}  # every kind of row is there
    got = fact.response.toarray()
    assert got.shape == dense.response.shape == (freqs.size, out.size)
    np.testing.assert_array_equal(got, dense.response)  # NaN where skipped, in both
    np.testing.assert_array_equal(np.asarray(fact.response), got)
    np.testing.assert_array_equal(fact.rel_residual, dense.rel_residual)
    # every row against a dense solve of the full system: the skipped one NaN, the zero load 0
    assert fact.method[0] == 3 and np.isnan(got[0]).all()
    assert np.all(got[7] == 0)
    for i in range(1, freqs.size):
        x = np.linalg.solve(system.dynamic_matrix(2 * np.pi * freqs[i]).toarray(), load[i] * system.b)
        np.testing.assert_allclose(got[i], x[out], rtol=0, atol=1e-4 * np.abs(x).max() + 1e-300)


def test_a_factored_response_travels_in_a_fraction_of_the_dense_bytes():
    import pickle

    from femfreq.execute.task import solve_chunk
    from femfreq.options import Fast

    K, M, b = _truss(30, 8)
    system = _damped(K, M, b, "beta")  # output_dofs: every DOF
    freqs = np.linspace(0.0, 300.0, 400)
    index = np.arange(freqs.size)
    dense = solve_chunk(system, index, freqs, np.ones(freqs.size), Fast())
    fact = solve_chunk(system, index, freqs, np.ones(freqs.size), Fast(), factored=True)
    assert isinstance(dense.response, np.ndarray) and dense.expanded() is dense
    size = len(pickle.dumps(fact, protocol=5))
    assert size < 0.1 * dense.response.nbytes, (size, dense.response.nbytes)
    back = pickle.loads(pickle.dumps(fact, protocol=5)).expanded()
    np.testing.assert_allclose(back.response, dense.response, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(back.rel_residual, dense.rel_residual)
