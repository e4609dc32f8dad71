"""Rod elements: element invariants, assembly against a dense hand assembly, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.model import rods

coord = st.floats(-100, 100, allow_nan=False)
point = st.tuples(coord, coord)
positive = st.floats(1e-3, 1e3, allow_nan=False)


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _rigid_modes(p1, p2, centre):
    """x and y translations and a rotation about ``centre``, as (4, 3) columns on (x1, y1, x2, y2)."""
    modes = np.zeros((4, 3))
    modes[[0, 2], 0] = 1.0
    modes[[1, 3], 1] = 1.0
    for k, p in enumerate((p1, p2)):
        r = np.asarray(p) - centre
        modes[2 * k : 2 * k + 2, 2] = [-r[1], r[0]]
    return modes


def _far_apart(p1, p2):
    return np.hypot(p1[0] - p2[0], p1[1] - p2[1]) > 1e-2


@settings(max_examples=60, deadline=None)
@given(point, point, point, positive, positive)
def test_element_stiffness_symmetric_psd_rank_one_with_rigid_null_space(p1, p2, centre, E, A):
    if not _far_apart(p1, p2):
        return
    k = rods.element_stiffness(p1, p2, E, A)
    np.testing.assert_array_equal(k, k.T)
    w = np.linalg.eigvalsh(k)
    scale = E * A / np.hypot(p2[0] - p1[0], p2[1] - p1[1])
    assert w.min() > -1e-12 * scale
    # rank 1: one positive eigenvalue 2 E A / L, three zeros
    assert np.sum(w > 1e-9 * scale) == 1
    np.testing.assert_allclose(w[-1], 2 * scale, rtol=1e-12)
    # rigid-body motions (rotation about an arbitrary point too) produce no force
    R = _rigid_modes(p1, p2, np.asarray(centre))
    size = np.abs(R).max()
    np.testing.assert_allclose(k @ R, 0.0, atol=1e-11 * scale * max(size, 1.0))


@settings(max_examples=60, deadline=None)
@given(point, point, st.floats(-np.pi, np.pi), point, positive, positive)
def test_element_stiffness_invariant_under_rotation_and_translation(p1, p2, theta, shift, E, A):
    if not _far_apart(p1, p2):
        return
    Q = _rotation(theta)
    q1 = Q @ np.asarray(p1) + shift
    q2 = Q @ np.asarray(p2) + shift
    k = rods.element_stiffness(p1, p2, E, A)
    k_moved = rods.element_stiffness(q1, q2, E, A)
    T = np.kron(np.eye(2), Q)  # rotates both nodes' (x, y)
    scale = E * A / np.hypot(p2[0] - p1[0], p2[1] - p1[1])
    np.testing.assert_allclose(k_moved, T @ k @ T.T, atol=1e-9 * scale)


def test_element_stiffness_closed_form():
    # rod at 30 degrees, L = 2: E A / L [[c^2, cs], [cs, s^2]] blocks
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    k = rods.element_stiffness([1.0, 1.0], [1.0 + 2 * c, 1.0 + 2 * s], E=6.0, A=0.5)
    t = 1.5 * np.array([[c * c, c * s], [c * s, s * s]])
    np.testing.assert_allclose(k, np.block([[t, -t], [-t, t]]), rtol=1e-14, atol=1e-15)


def _random_truss(rng, n_points=7, n_rods=12):
    points = rng.uniform(-5, 5, size=(n_points, 2))
    pairs = np.array([(i, j) for i in range(n_points) for j in range(i + 1, n_points)])
    edges = pairs[rng.choice(len(pairs), size=n_rods, replace=False)]
    return points, edges


def _dense_assembly(points, edges, element):
    """Hand assembly with a Python loop (the independent reference)."""
    n = 2 * len(points)
    out = np.zeros((n, n))
    for r, (i, j) in enumerate(edges):
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        out[np.ix_(dofs, dofs)] += element(r, points[i], points[j])
    return out


@pytest.mark.parametrize("lumped", [True, False])
def test_assembly_matches_dense_hand_assembly(lumped):
    rng = np.random.default_rng(1)
    points, edges = _random_truss(rng)
    E = rng.uniform(1, 3, len(edges))
    A = rng.uniform(0.1, 1, len(edges))
    rho = 2.5
    K = rods.stiffness(points, edges, E, A)
    M = rods.mass(points, edges, rho, A, lumped=lumped)
    K_ref = _dense_assembly(points, edges, lambda r, p, q: rods.element_stiffness(p, q, E[r], A[r]))
    M_ref = _dense_assembly(points, edges, lambda r, p, q: rods.element_mass(p, q, rho, A[r], lumped=lumped))
    assert K.shape == M.shape == (2 * len(points),) * 2
    np.testing.assert_allclose(K.toarray(), K_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(M.toarray(), M_ref, rtol=1e-13, atol=1e-15)


def test_element_mass_closed_form():
    m = rods.element_mass([0, 0], [3, 4], rho=2.0, A=0.3, lumped=False)  # rho A L = 3
    expected = 0.5 * np.array([[2, 0, 1, 0], [0, 2, 0, 1], [1, 0, 2, 0], [0, 1, 0, 2]])
    np.testing.assert_allclose(m, expected, rtol=1e-14)
    np.testing.assert_allclose(rods.element_mass([0, 0], [3, 4], 2.0, 0.3), 1.5 * np.eye(4), rtol=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.booleans(), positive, st.integers(2, 12))
def test_total_mass_is_rho_sum_area_length(seed, lumped, rho, n_rods):
    rng = np.random.default_rng(seed)
    points, edges = _random_truss(rng, n_points=6, n_rods=n_rods)
    A = rng.uniform(0.1, 2.0, n_rods)
    M = rods.mass(points, edges, rho, A, lumped=lumped)
    L = np.linalg.norm(points[edges[:, 1]] - points[edges[:, 0]], axis=1)
    total = rho * np.sum(A * L)
    # a rigid translation in x (or y) carries the whole mass: u^T M u = total
    ux = np.zeros(2 * len(points))
    ux[0::2] = 1.0
    uy = np.roll(ux, 1)
    np.testing.assert_allclose(ux @ M @ ux, total, rtol=1e-12)
    np.testing.assert_allclose(uy @ M @ uy, total, rtol=1e-12)
    assert abs(ux @ M @ uy) <= 1e-14 * total
    np.testing.assert_allclose((M - M.T).toarray(), 0.0, atol=0)


def test_free_truss_has_exactly_three_zero_eigenvalues():
    # hand-made triangulated square: 4 corners + centre, every cell a triangle
    points = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1.0]])
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [0, 4], [1, 4], [2, 4], [3, 4]])
    K = rods.stiffness(points, edges, E=5.0, A=0.2).toarray()
    M = rods.mass(points, edges, rho=1.0, A=0.2).toarray()
    w = np.linalg.eigvalsh(K)
    scale = np.abs(w).max()
    assert np.sum(np.abs(w) < 1e-10 * scale) == 3
    assert np.all(w > -1e-10 * scale)
    # generalised problem: same count with the mass
    import scipy.linalg

    lam = scipy.linalg.eigh(K, M, eigvals_only=True)
    assert np.sum(np.abs(lam) < 1e-10 * lam.max()) == 3


def test_per_rod_properties_equal_separate_assemblies():
    points = np.array([[0, 0], [1, 0], [1, 1.0]])
    edges = np.array([[0, 1], [1, 2]])
    K = rods.stiffness(points, edges, E=[1.0, 3.0], A=[2.0, 1.0])
    K0 = rods.stiffness(points, edges[:1], E=1.0, A=2.0)
    K1 = rods.stiffness(points, edges[1:], E=3.0, A=1.0)
    np.testing.assert_allclose(K.toarray(), (K0 + K1).toarray())


def test_rod_geometry():
    L, c, s = rods.rod_geometry([[1, 1], [4, 5], [1, -1]], [[0, 1], [0, 2]])
    np.testing.assert_allclose(L, [5, 2])
    np.testing.assert_allclose(c, [0.6, 0])
    np.testing.assert_allclose(s, [0.8, -1])


# -- bad input ---------------------------------------------------------------------------
def test_zero_length_rod_names_rod_nodes_and_coordinates():
    points = [[0, 0], [1, 0], [1.0, 0.0]]
    with pytest.raises(ValueError, match=r"rod 1 has zero length: nodes 1 \(1\.0, 0\.0\) and 2 \(1\.0, 0\.0\)"):
        rods.stiffness(points, [[0, 1], [1, 2]], 1.0, 1.0)
    with pytest.raises(ValueError, match="zero length"):
        rods.mass(points, [[2, 1]], 1.0, 1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
@pytest.mark.parametrize("which", ["E", "A"])
def test_non_positive_or_non_finite_stiffness_properties(bad, which):
    kw = {"E": 1.0, "A": 1.0, which: bad}
    name = "E" if which == "E" else "area"
    with pytest.raises(ValueError, match=rf"{name} must be finite and > 0 \(got {bad}\)"):
        rods.stiffness([[0, 0], [1, 0]], [[0, 1]], **kw)


@pytest.mark.parametrize("bad", [0.0, -2.5, np.nan])
def test_non_positive_or_nan_density(bad):
    with pytest.raises(ValueError, match=rf"rho must be finite and > 0 \(got {bad}\)"):
        rods.mass([[0, 0], [1, 0]], [[0, 1]], rho=bad, A=1.0)
    with pytest.raises(ValueError, match=rf"rho must be finite and > 0 \(got {bad} for rod 1\)"):
        rods.mass([[0, 0], [1, 0], [2, 0]], [[0, 1], [1, 2]], rho=[1.0, bad], A=1.0, lumped=False)


def test_per_rod_array_of_wrong_length():
    with pytest.raises(ValueError, match=r"one value per rod, shape \(2,\)"):
        rods.stiffness([[0, 0], [1, 0], [2, 0]], [[0, 1], [1, 2]], E=[1.0, 2.0, 3.0], A=1.0)


def test_bad_points_and_edges():
    with pytest.raises(ValueError, match=r"point 1 has a non-finite coordinate"):
        rods.stiffness([[0, 0], [np.nan, 0]], [[0, 1]], 1.0, 1.0)
    with pytest.raises(ValueError, match=r"rod 0 refers to nodes \(0, 5\)"):
        rods.stiffness([[0, 0], [1, 0]], [[0, 5]], 1.0, 1.0)
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        rods.stiffness([[0, 0, 0]], [[0, 0]], 1.0, 1.0)
    with pytest.raises(TypeError, match="integer node ids"):
        rods.stiffness([[0, 0], [1, 0]], [[0, 0.5]], 1.0, 1.0)


@pytest.mark.parametrize("lumped", [True, False])
def test_repeated_rods_add_up(lumped):
    # the same node pair given twice (either orientation) is two rods in parallel
    points = np.array([[0, 0], [1, 0], [0.5, 1.0]])
    once = np.array([[0, 1], [1, 2], [2, 0]])
    twice = np.array([[0, 1], [1, 2], [2, 0], [1, 0], [1, 2]])
    K1, K2 = rods.stiffness(points, once, 2.0, 0.5), rods.stiffness(points, twice, 2.0, 0.5)
    extra = rods.stiffness(points, [[0, 1], [1, 2]], 2.0, 0.5)
    np.testing.assert_allclose(K2.toarray(), (K1 + extra).toarray(), rtol=1e-14, atol=1e-15)
    M1 = rods.mass(points, once, 1.0, 0.5, lumped=lumped)
    M2 = rods.mass(points, twice, 1.0, 0.5, lumped=lumped)
    extra_m = rods.mass(points, [[0, 1], [1, 2]], 1.0, 0.5, lumped=lumped)
    np.testing.assert_allclose(M2.toarray(), (M1 + extra_m).toarray(), rtol=1e-14, atol=1e-15)
