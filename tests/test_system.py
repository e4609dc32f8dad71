"""System: validation and the dynamic stiffness against dense algebra."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.system import System, as_system


def _random_spd(n, rng):
    A = rng.standard_normal((n, n))
    return sp.csr_matrix(A @ A.T + n * np.eye(n))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.floats(0, 1e3), st.floats(0, 0.1), st.integers(0, 2**31))
def test_dynamic_matrix_matches_dense(n, omega, g, seed):
    rng = np.random.default_rng(seed)
    K, C, M = _random_spd(n, rng), _random_spd(n, rng) * 0.01, _random_spd(n, rng)
    s = System(K=K, C=C, M=M, b=np.ones(n), g=g)
    expected = (1 + 1j * g) * K.toarray() + 1j * omega * C.toarray() - omega**2 * M.toarray()
    np.testing.assert_allclose(s.dynamic_matrix(omega).toarray(), expected, rtol=1e-13, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.sampled_from(["diagonal", "as K", "other", "empty"]),
       st.sampled_from(["empty", "as K", "other"]), st.booleans(), st.integers(0, 2**31))
def test_every_pattern_combination_gives_the_dense_dynamic_matrix(n, m_kind, c_kind, k_full_diagonal, seed):
    # the usual patterns (M diagonal or on K's, C empty or on K's) take a shortcut; every
    # other combination the general union: both must give A(omega) exactly
    rng = np.random.default_rng(seed)
    K = sp.random(n, n, density=0.4, random_state=rng) + sp.diags(rng.uniform(1, 2, n))
    K = (K + K.T).tocsc()
    if not k_full_diagonal:
        K = K.tolil()
        K[0, 0] = 0.0
        K = K.tocsc()
        K.eliminate_zeros()
    other = sp.random(n, n, density=0.3, random_state=rng)
    M = {"diagonal": sp.diags(rng.uniform(1, 2, n)), "as K": 0.5 * K + 0 * K, "other": other + other.T,
         "empty": sp.csc_matrix((n, n))}[m_kind]
    C = {"empty": None, "as K": 0.01 * K, "other": 0.1 * (other + other.T)}[c_kind]
    s = System(K=K, C=C, M=M, b=np.ones(n), g=0.02)
    Cd = 0 if C is None else C.toarray()
    for omega in (0.0, 3.0):
        expected = (1 + 0.02j) * K.toarray() + 1j * omega * Cd - omega**2 * M.toarray()
        np.testing.assert_array_equal(s.dynamic_matrix(omega).toarray(), expected)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(0, 3), st.floats(0, 1e3), st.booleans(), st.integers(0, 2**31))
def test_apply_matches_the_dense_product(n, k, omega, with_c, seed):
    rng = np.random.default_rng(seed)
    K, M = _random_spd(n, rng), _random_spd(n, rng)
    C = _random_spd(n, rng) * 0.01 if with_c else None
    s = System(K=K, C=C, M=M, b=np.ones(n), g=0.03)
    x = rng.standard_normal((n, k) if k else n) + 1j * rng.standard_normal((n, k) if k else n)
    expected = s.dynamic_matrix(omega).toarray() @ x
    np.testing.assert_allclose(s.apply(omega, x), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max(initial=1))
    rel, _ = s.residuals(omega, x if not k else x[:, 0] if k else x, 1.0) if k <= 1 else (0.0, 0.0)
    assert np.isfinite(rel)


def test_pattern_is_shared_and_covers_all_matrices():
    K = sp.diags([2.0, 2.0, 2.0]) + sp.diags([-1.0, -1.0], 1) + sp.diags([-1.0, -1.0], -1)
    M = sp.eye(3)
    C = sp.csr_matrix(([0.5], ([0], [2])), shape=(3, 3))
    s = System(K=K, C=C + C.T, M=M, b=[1, 0, 0])
    assert s.nnz == 9
    A1, A2 = s.dynamic_matrix(1.0), s.dynamic_matrix(7.0)
    np.testing.assert_array_equal(A1.indptr, A2.indptr)
    np.testing.assert_array_equal(A1.indices, A2.indices)


def test_residuals_of_exact_solution_are_tiny():
    rng = np.random.default_rng(0)
    K, M = _random_spd(6, rng), _random_spd(6, rng)
    s = System(K=K, C=0.01 * K, M=M, b=rng.standard_normal(6))
    omega, load = 3.0, 2 - 1j
    x = np.linalg.solve(s.dynamic_matrix(omega).toarray(), load * s.b)
    rel, bwd = s.residuals(omega, x, load)
    assert rel < 1e-12 and bwd < 1e-14
    rel_bad, _ = s.residuals(omega, 1.01 * x, load)
    assert rel_bad > 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(K=np.ones((2, 3)), M=np.eye(2), b=[1, 1]), r"square \(has shape \(2, 3\)\)"),
        (dict(K=np.eye(2), M=np.eye(3), b=[1, 1]), r"M has shape \(3, 3\)"),
        (dict(K=np.eye(2), M=np.eye(2), b=[1, 1, 1]), r"b must have shape \(2,\)"),
        (dict(K=[[1.0, np.nan], [0, 1]], M=np.eye(2), b=[1, 1]), r"non-finite entry nan at row 0, column 1"),
        (dict(K=np.eye(2) * (1 + 1j), M=np.eye(2), b=[1, 1]), "must be real"),
        (dict(K=np.eye(2), M=np.eye(2), b=[1, np.inf]), "b has a non-finite entry at index 1"),
        (dict(K=np.eye(2), M=np.eye(2), b=[1, 1], output_dofs=[0, 2]), "output DOF 2 is out of range 0..1"),
        (dict(K=np.eye(2), M=np.eye(2), b=[1, 1], g=-0.1), "g must be finite and >= 0"),
    ],
)
def test_bad_input_is_rejected(kwargs, match):
    kwargs.setdefault("C", None)
    with pytest.raises(ValueError, match=match):
        System(**kwargs)


def test_as_system_requires_mass():
    with pytest.raises(ValueError, match="mass matrix"):
        as_system(np.eye(2), None, None, [1, 1])


def test_sizeof_counts_the_arrays_for_dask_once_each():
    from dask.sizeof import sizeof

    K = sp.random(600, 600, density=0.05, random_state=0, format="csr")
    K = K + K.T + sp.eye(600) * 10
    s = System(K=K, C=None, M=sp.eye(600), b=np.ones(600))
    arrays = [s.b, s.output_dofs, s.k_values, s.c_values, s.m_values, *s.pattern]
    for A in (s.K, s.C, s.M):
        arrays += [A.data, A.indices, A.indptr]
    held = sum({id(a): a.nbytes for a in arrays}.values())
    assert held <= sizeof(s) < held + s.K.data.nbytes // 4  # an array shared by two names counts once


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo"])
def test_a_system_keeps_its_own_copy_of_the_matrices(fmt):
    # changing the caller's matrices afterwards must not change a System built from them
    rng = np.random.default_rng(1)
    K, C, M = (_random_spd(6, rng).asformat(fmt) for _ in range(3))
    s = System(K=K, C=C, M=M, b=np.ones(6), g=0.01)
    before = s.dynamic_matrix(3.0).toarray()
    for A in (K, C, M):
        A.data[:] = -1.0
        if fmt == "coo":
            A.row[:], A.col[:] = 0, 0
        else:
            A.indices[:] = 0
    np.testing.assert_array_equal(s.dynamic_matrix(3.0).toarray(), before)


def test_proportional_damping_is_recognised_and_a_general_c_is_fitted():
    from femfreq.system import fitted_damping, proportional_damping

    n = 6
    K = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(n, n), format="csr")
    M = sp.diags(np.linspace(1.0, 2.0, n), format="csr")
    b = np.ones(n)
    prop = System(K=K, C=0.3 * M + 0.002 * K, M=M, b=b)
    alpha, beta = proportional_damping(prop)
    assert alpha == pytest.approx(0.3, rel=1e-12) and beta == pytest.approx(0.002, rel=1e-12)
    assert fitted_damping(prop) == (alpha, beta)
    assert proportional_damping(System(K=K, C=None, M=M, b=b)) == (0.0, 0.0)
    # stiffness-proportional at the satellite's scales (K ~ 1e8, M ~ 1e-3): alpha is 0, not
    # a rounding-sized number of either sign
    big = System(K=1e8 * K, C=0.004 * (1e8 * K), M=1e-3 * M, b=b)
    assert proportional_damping(big)[0] == 0.0 and proportional_damping(big)[1] == pytest.approx(0.004, rel=1e-12)
    general = System(K=K, C=0.3 * M + 0.002 * K + sp.diags([1e-3] + [0.0] * (n - 1), format="csr"), M=M, b=b)
    assert proportional_damping(general) is None
    a, bt = fitted_damping(general)  # least squares: close to, not equal to, the proportional part
    assert a == pytest.approx(0.3, rel=1e-2) and bt == pytest.approx(0.002, rel=0.5)


def test_the_digest_of_each_matrix_is_the_hash_of_its_own_arrays():
    # K, C and M sharing a pattern hash it once: the digests must be those of each matrix alone
    from femfreq._digest import array_digest

    rng = np.random.default_rng(3)
    K = _random_spd(7, rng).tocsc()
    for C, M in ((0.01 * K, sp.diags(rng.uniform(1, 2, 7))), (None, K.copy()), (_random_spd(7, rng), K * 2.0)):
        s = System(K=K, C=C, M=M, b=np.ones(7))
        d = s.digest()
        for name in "KCM":
            A = getattr(s, name)
            assert d[name] == array_digest(A.indptr, A.indices, A.data), name
        assert d["b"] == array_digest(s.b) and d["n_dof"] == 7
