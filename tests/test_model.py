"""Model: selections, constraint elimination, closed-form FRFs and modes, model files, CLI."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
from helpers import vtu_field_data, one_rod, spring_mass_chain, square_truss, straight_rod, two_bar_truss

from femfreq.model import rods
from femfreq._cli.main import main
from femfreq.mesh import ReadError
from femfreq.model import (
    Damping,
    LoadHistory,
    Model,
    fixed_dofs_from,
    load_model,
    load_vector,
    output_dofs_from,
    select_nodes,
)

GRID = np.array([[x, y] for y in range(3) for x in range(4)], dtype=float)  # node = 4 y + x


# -- selections ----------------------------------------------------------------------------
def test_select_box_line_near_circle():
    np.testing.assert_array_equal(select_nodes(GRID, {"box": [1, 1, 2, 2]}), [5, 6, 9, 10])
    np.testing.assert_array_equal(select_nodes(GRID, {"line": [[0, 0], [3, 0]], "tol": 1e-9}), [0, 1, 2, 3])
    # a segment, not an infinite line: (0, 0)-(1, 1) stops before node (2, 2)
    np.testing.assert_array_equal(select_nodes(GRID, {"line": [[0, 0], [1, 1]]}), [0, 5])
    np.testing.assert_array_equal(select_nodes(GRID, {"near": [2.9, 1.2]}), [7])
    np.testing.assert_array_equal(select_nodes(GRID, {"circle": [0, 0], "radius": 1.0}), [0, 1, 4])


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"box": [10, 10, 11, 11]}, r"selects no node \(the nodes span x 0\.\.3, y 0\.\.2\)"),
        ({"circle": [0.5, 0.5], "radius": 0.1}, "selects no node"),
        ({"line": [[0.5, 0], [0.5, 2]], "tol": 0.01}, r"'line'.*selects no node"),
        ({"box": [0, 0, 1]}, r"'box' must be finite numbers of shape \(4,\)"),
        ({"circle": [0, 0]}, "needs a 'radius'"),
        ({"near": [0, 0], "radius": 1}, "unknown key 'radius'"),
        ({"near": [0, 0], "box": [0, 0, 1, 1]}, "exactly one of the keys"),
        ({"nearest": [0, 0]}, "exactly one of the keys"),
        ({"circle": [0, 0], "radius": -1}, r"'radius' must be finite and >= 0"),
        ({"box": [2, 0, 1, 1]}, "min <= max"),
        ({"near": [np.nan, 0]}, "finite numbers"),
    ],
)
def test_bad_selections(spec, match):
    with pytest.raises(ValueError, match=match):
        select_nodes(GRID, spec)


def test_selection_must_be_a_dict():
    with pytest.raises(TypeError, match="must be a dict"):
        select_nodes(GRID, [0, 0])


def test_constraints_load_and_outputs_from_selections():
    fixed = fixed_dofs_from(GRID, [{"select": {"near": [0, 0]}, "fix": "xy"}, {"select": {"near": [3, 0]}, "fix": "y"}])
    np.testing.assert_array_equal(fixed, [0, 1, 7])
    b = load_vector(GRID, {"near": [3, 2]}, direction=[3.0, -4.0], magnitude=10.0)
    expected = np.zeros(24)
    expected[[22, 23]] = [6.0, -8.0]
    np.testing.assert_array_equal(b, expected)
    np.testing.assert_array_equal(output_dofs_from(GRID, {"box": [0, 1, 1, 1]}, "xy"), [8, 9, 10, 11])
    np.testing.assert_array_equal(output_dofs_from(GRID, {"box": [0, 1, 1, 1]}, "y"), [9, 11])
    with pytest.raises(ValueError, match=r"must be 'x', 'y' or 'xy' \(got 'z'\)"):
        output_dofs_from(GRID, {"near": [0, 0]}, "z")
    with pytest.raises(ValueError, match="not both zero"):
        load_vector(GRID, {"near": [0, 0]}, direction=[0, 0])


# -- matrices and DOF maps ------------------------------------------------------------------
def test_two_bar_truss_matrices_equal_hand_calculation():
    E, A, rho, w, h = 1e3, 0.1, 1.0, 2.0, 1.5
    m = two_bar_truss(E=E, area=A, rho=rho, width=w, height=h, damping=Damping(alpha=0.3, beta=0.01, g=0.05))
    L = math.hypot(w / 2, h)
    c, s = (w / 2) / L, h / L
    # rod 0 from (0,0) to apex: direction (c, s); rod 1 from (w,0): direction (-c, s)
    k = E * A / L
    K_ref = k * np.array([[c * c, c * s], [c * s, s * s]]) + k * np.array([[c * c, -c * s], [-c * s, s * s]])
    M_ref = rho * A * L * np.eye(2)  # half of each of the two rods
    K, C, M, b = m.matrices()
    np.testing.assert_allclose(K.toarray(), K_ref, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(M.toarray(), M_ref, rtol=1e-13)
    np.testing.assert_allclose(C.toarray(), 0.3 * M_ref + 0.01 * K_ref, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(b, [0.0, -1.0])
    s_ = m.system()
    assert s_.g == 0.05 and s_.n == 2
    np.testing.assert_array_equal(s_.output_dofs, [0, 1])
    assert m.system() is s_  # cached: one token per model


def test_reduced_matrices_equal_dense_elimination():
    m = square_truss(n=4, E=3.0, rho=2.0, area=0.5, lumped=False)
    fixed = [0, 1, 5, 30, 31]
    m = replace(m, fixed_dofs=fixed, damping=Damping(beta=0.02), b_full=None)
    K_full = rods.stiffness(m.points, m.edges, 3.0, 0.5).toarray()
    M_full = rods.mass(m.points, m.edges, 2.0, 0.5, lumped=False).toarray()
    free = np.setdiff1d(np.arange(32), fixed)
    K, C, M, b = m.matrices()
    np.testing.assert_array_equal(m.free_dofs, free)
    np.testing.assert_allclose(K.toarray(), K_full[np.ix_(free, free)], rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(M.toarray(), M_full[np.ix_(free, free)], rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(C.toarray(), 0.02 * K_full[np.ix_(free, free)], rtol=1e-14, atol=1e-14)
    assert m.full_to_free[5] == -1 and m.full_to_free[free[3]] == 3
    np.testing.assert_array_equal(m.full_to_free[m.free_dofs], np.arange(m.n_free))
    x = np.arange(m.n_free) + 1j
    full = m.expand(x)
    assert full.dtype == complex and full.shape == (32,)
    np.testing.assert_array_equal(full[fixed], 0)
    np.testing.assert_array_equal(full[free], x)
    np.testing.assert_array_equal(m.expand(np.ones((m.n_free, 3))).shape, (32, 3))
    with pytest.raises(ValueError, match=r"must have 27 rows \(has shape \(5,\)\)"):
        m.expand(np.ones(5))


def _frf(system, omega):
    """Dense solve of A(omega) x = b at the output DOF (the frequency-response reference path)."""
    x = np.linalg.solve(system.dynamic_matrix(omega).toarray(), system.b)
    return x[system.output_dofs]


@pytest.mark.parametrize("omega", [0.0, 3.0, 7.5, 20.0])
def test_single_dof_frf_equals_closed_form(omega):
    k, m_rod, alpha, beta, g = 50.0, 2.0, 0.2, 0.003, 0.04
    model = spring_mass_chain([k], [m_rod], damping=Damping(alpha=alpha, beta=beta, g=g))
    m = m_rod / 2  # lumped: half the rod mass at the free end
    c = alpha * m + beta * k
    expected = 1.0 / (k * (1 + 1j * g) + 1j * omega * c - omega**2 * m)
    assert model.n_free == 1
    np.testing.assert_allclose(_frf(model.system(), omega), [expected], rtol=1e-12)


@pytest.mark.parametrize("omega", [0.0, 1.0, 4.3, 11.0])
def test_two_dof_frf_equals_closed_form(omega):
    k1, k2, mr1, mr2, beta, g = 40.0, 25.0, 2.0, 1.2, 0.01, 0.02
    model = spring_mass_chain([k1, k2], [mr1, mr2], damping=Damping(beta=beta, g=g))
    m1, m2 = (mr1 + mr2) / 2, mr2 / 2
    z1 = k1 * (1 + 1j * g) + 1j * omega * beta * k1  # spring + dashpot of rod 1
    z2 = k2 * (1 + 1j * g) + 1j * omega * beta * k2
    a11, a12, a22 = z1 + z2 - omega**2 * m1, -z2, z2 - omega**2 * m2
    det = a11 * a22 - a12 * a12
    # load on mass 2: Cramer's rule
    expected = [-a12 / det, a11 / det]
    np.testing.assert_allclose(_frf(model.system(), omega), expected, rtol=1e-12)


# -- modes ----------------------------------------------------------------------------------
def test_free_free_truss_modes_have_three_rigid_modes_dense_and_sparse():
    small = square_truss(n=4)  # 32 DOF: dense path
    freqs, shapes = small.modes(6)
    top = freqs.max()
    assert np.sum(freqs < 1e-6 * top) == 3 and np.all(freqs[3:] > 1e-3 * top)
    big = square_truss(n=17)  # 578 DOF: eigsh shift-invert below zero
    f_sparse, shapes = big.modes(6)
    K, _, M, _ = big.matrices()
    lam = scipy.linalg.eigh(K.toarray(), M.toarray(), eigvals_only=True, subset_by_index=[0, 5])
    f_dense = np.sqrt(np.clip(lam, 0, None)) / (2 * np.pi)
    assert np.sum(f_sparse < 1e-6 * f_sparse.max()) == 3
    np.testing.assert_allclose(f_sparse[3:], f_dense[3:], rtol=1e-8)
    # mass-normalised
    np.testing.assert_allclose(shapes.T @ (M @ shapes), np.eye(6), atol=1e-8)


@pytest.mark.parametrize("lumped", [True, False])
def test_fixed_free_rod_modes_converge_at_rate_two(lumped):
    E, rho, L = 4.0e6, 0.25, 2.0
    c = math.sqrt(E / rho)
    exact = (2 * np.arange(1, 4) - 1) * c / (4 * L)
    ns = np.array([8, 16, 32, 64])
    errors = []
    for n in ns:
        m = straight_rod(int(n), length=L, E=E, rho=rho, lumped=lumped)
        freqs, _ = m.modes(3)
        errors.append(np.abs(freqs - exact) / exact)
        # lumped mass under-estimates, consistent mass over-estimates the frequencies
        assert np.all(freqs < exact) if lumped else np.all(freqs > exact)
    errors = np.array(errors)
    for mode in range(3):
        rate = -np.polyfit(np.log(ns), np.log(errors[:, mode]), 1)[0]
        assert 1.9 < rate < 2.1, (mode, rate)
    assert errors[-1].max() < 2e-3


def test_rod_modes_on_the_sparse_path_agree_with_closed_form():
    m = straight_rod(800, length=1.0, E=1.0, rho=1.0)
    freqs, shapes = m.modes(4)
    exact = (2 * np.arange(1, 5) - 1) / 4.0
    np.testing.assert_allclose(freqs, exact, rtol=1e-4)
    # first mode: sin(pi x / 2L) along x
    x = m.points[:, 0]
    u = shapes[0::2, 0]
    u = u / u[-1]
    np.testing.assert_allclose(u, np.sin(np.pi * x / 2), atol=1e-5)
    np.testing.assert_array_equal(shapes[1::2], 0.0)  # transverse DOF fixed


def test_modes_bad_k():
    with pytest.raises(ValueError, match="k = 5 modes asked for but the model has only 2 free DOF"):
        two_bar_truss().modes(5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        two_bar_truss().modes(0)


# -- model validation -----------------------------------------------------------------------
def test_output_on_fixed_dof_is_an_error():
    with pytest.raises(ValueError, match=r"output DOF 1 \(node 0, y\) is fixed"):
        replace(two_bar_truss(), output_dofs_full=[4, 1])


def test_bad_model_inputs():
    base = dict(points=[[0, 0], [1, 0]], edges=[[0, 1]], E=1.0, rho=1.0, area=1.0)
    with pytest.raises(ValueError, match=r"rod 0 has zero length"):
        Model(**{**base, "points": [[1, 1], [1, 1]]})
    for key in ("E", "rho", "area"):
        with pytest.raises(ValueError, match=rf"{key} must be finite and > 0 \(got nan\)"):
            Model(**{**base, key: np.nan})
        with pytest.raises(ValueError, match=rf"{key} must be finite and > 0 \(got -1.0\)"):
            Model(**{**base, key: -1.0})
    with pytest.raises(ValueError, match=r"fixed_dofs\[0\] = 4 is out of range \[0, 4\)"):
        Model(**base, fixed_dofs=[4])
    # a mask is not a list of DOF: [True, False, ...] used to fix DOF 1 and 0
    with pytest.raises(TypeError, match="fixed_dofs must be integer indices, not a boolean mask"):
        Model(**base, fixed_dofs=[True, False, False, False])
    with pytest.raises(ValueError, match=r"output_dofs_full\[1\] = -1 is out of range \[0, 4\)"):
        Model(**base, output_dofs_full=[2, -1])
    with pytest.raises(TypeError, match=r"damping alpha must be a number \(got True\)"):
        Damping(alpha=True)
    with pytest.raises(ValueError, match=r"every DOF of the model is fixed"):
        Model(**base, fixed_dofs=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"b_full must have shape \(4,\)"):
        Model(**base, b_full=[1, 0])
    with pytest.raises(ValueError, match=r"has no load"):
        Model(**base).system()
    with pytest.raises(ValueError, match=r"damping g must be finite and >= 0 \(got -0.1\)"):
        Damping(g=-0.1)
    with pytest.raises(ValueError, match=r"n_fft must be >= 2 \(got 1\)"):
        LoadHistory(n_fft=1)


def test_isolated_node_is_fixed_with_a_warning():
    with pytest.warns(UserWarning, match=r"1 node\(s\) belong to no rod.*node 2"):
        m = Model(points=[[0, 0], [1, 0], [5, 5]], edges=[[0, 1]], E=1.0, rho=1.0, area=1.0, fixed_dofs=[0, 1])
    np.testing.assert_array_equal(m.fixed_dofs, [0, 1, 4, 5])


def test_summary():
    m = two_bar_truss(E=1e3, rho=2.0, area=0.1, width=2.0, height=1.0)
    s = m.summary()
    assert (s["n_nodes"], s["n_rods"], s["n_dof"], s["n_free"], s["n_fixed"]) == (3, 2, 6, 2, 4)
    np.testing.assert_allclose(s["total_mass"], 2.0 * 0.1 * 2 * math.sqrt(2))
    assert s["bounding_box"] == [0.0, 0.0, 2.0, 1.0]
    assert s["mass"] == "lumped" and s["load_dofs"] == [5] and s["n_outputs"] == 2


def test_one_rod_fixture_any_angle_has_axial_stiffness_only():
    m = one_rod(angle=0.7, E=2.0, area=0.5, length=4.0)
    K, _, M, b = m.matrices()
    d = np.array([math.cos(0.7), math.sin(0.7)])
    np.testing.assert_allclose(K.toarray(), 0.25 * np.outer(d, d), atol=1e-15)
    np.testing.assert_allclose(K @ b, 0.25 * b)


# -- model files ------------------------------------------------------------------------------
ROD_TOML = """
name = "test-rod"
[mesh]
line = {{ start = [0.0, 0.0], end = [{L}, 0.0], n = {n} }}
[material]
E = {E}
rho = {rho}
[section]
area = {area}
mass = "lumped"
[damping]
beta = 0.001
g = 0.01
[[constraints]]
select = {{ near = [0.0, 0.0] }}
fix = "xy"
[load]
select = {{ near = [{L}, 0.0] }}
direction = [1.0, 0.0]
magnitude = 2.0
history = "shock.csv"
dt = 1e-3
n_fft = 1024
[output]
select = {{ near = [{L}, 0.0] }}
directions = "x"
"""


def _write(tmp_path, text, name="m.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _rod_text(L=3.0, n=6, E=1e6, rho=2.0, area="0.01"):
    return ROD_TOML.format(L=L, n=n, E=E, rho=rho, area=area)


def test_load_line_model_from_file(tmp_path):
    p = _write(tmp_path, _rod_text())
    m = load_model(p)
    assert m.name == "test-rod" and m.n_nodes == 7 and m.n_rods == 6
    # transverse DOF of a line model are fixed: 6 free axial DOF
    assert m.n_free == 6
    np.testing.assert_array_equal(m.free_dofs, 2 * np.arange(1, 7))
    np.testing.assert_array_equal(m.output_dofs_full, [12])
    np.testing.assert_array_equal(m.system().output_dofs, [5])
    assert m.b_full[12] == 2.0 and m.damping == Damping(beta=0.001, g=0.01)
    h = m.history
    assert h.history == str(tmp_path / "shock.csv") and h.dt == 1e-3 and h.n_fft == 1024 and h.magnitude == 2.0
    assert m.load_history() == (str(tmp_path / "shock.csv"), 1e-3, 1024)
    # level l: n * 2^(l - 1) rods
    assert load_model(p, level=3).n_rods == 24
    # closed form for the axial modes, as for the fixture rod
    freqs, _ = load_model(p, level=4).modes(2)
    np.testing.assert_allclose(freqs, np.array([1, 3]) * math.sqrt(1e6 / 2.0) / (4 * 3.0), rtol=2e-3)


def test_overrides_and_reference_area(tmp_path):
    p = _write(tmp_path, _rod_text(area='"reference"'))
    m = load_model(p, E=2e6, rho=None, mass="consistent", beta=0.0, g=0.0, n_fft=256, name="x")
    assert m.name == "x" and m.lumped is False and m.history.n_fft == 256
    assert m.damping == Damping()
    np.testing.assert_allclose(m.E, 2e6)
    np.testing.assert_allclose(m.rho, 2.0)
    np.testing.assert_allclose(m.area, math.sqrt(2.0 / (2 * 7)))
    with pytest.raises(TypeError, match="unknown override 'young'"):
        load_model(p, young=1.0)


def test_numpy_overrides_are_numbers_and_booleans_are_not(tmp_path):
    # numpy scalars (what a script computes) used to be refused as "not a positive integer"
    p = _write(tmp_path, _rod_text())
    m = load_model(p, n_fft=np.int64(2048), E=np.float64(2e6), level=np.int64(2))
    assert m.history.n_fft == 2048 and m.n_rods == 12
    np.testing.assert_allclose(m.E, 2e6)
    with pytest.raises(ReadError, match=r"m\.toml:\d+: \[damping\] g must be a number \(got True\)"):
        load_model(p, g=True)
    with pytest.raises(TypeError, match=r"level must be an integer \(got 2.0\)"):
        load_model(p, level=2.0)


def test_shipped_rod_model_matches_closed_form():
    m = load_model("rod", level=3)
    E, rho = float(m.E), float(m.rho)
    L = m.points[:, 0].max()
    freqs, _ = m.modes(2)
    np.testing.assert_allclose(freqs, np.array([1, 3]) * math.sqrt(E / rho) / (4 * L), rtol=2e-3)
    s = m.system()
    assert s.output_dofs.size == 1 and s.b[s.output_dofs[0]] == 1.0
    history, dt, n_fft = m.load_history()
    assert history.shape == (n_fft,) and dt == m.history.dt and np.abs(history).max() > 0
    assert two_bar_truss().load_history() == (None, None, None)


@pytest.mark.parametrize(
    "edit, match",
    [
        (("[material]", "[material]\nnu = 0.3"), r"m\.toml:\d+: unknown key 'nu' in \[material\]"),
        (("name = ", "nmae = 'x'\nname = "), r"m\.toml:2: unknown key 'nmae' in the top level"),
        (("fix = \"xy\"", "fix = \"xy\"\nfixx = 1"), r"unknown key 'fixx' in \[constraints\]"),
        (("directions = \"x\"", "directions = \"x\"\nradius = 2"), r"unknown key 'radius' in \[output\]"),
        (("n = 6", "n = 6, m = 2"), r"unknown key 'm' in \[mesh.line\]"),
        (("E = 1000000.0", "E = -5.0"), r"m\.toml:6: \[material\] E must be finite and > 0 \(got -5.0\)"),
        (("E = 1000000.0", "E = nan"), r"m\.toml:6: \[material\] E must be finite and > 0 \(got nan\)"),
        (("rho = 2.0", "rho = 0"), r"m\.toml:7: \[material\] rho must be finite and > 0 \(got 0\)"),
        (("area = 0.01", "area = -0.01"), r"m\.toml:9: \[section\] area must be finite and > 0 \(got -0.01\)"),
        (("area = 0.01", "area = 'big'"), r"m\.toml:9: \[section\] area must be a number \(got 'big'\)"),
        (("mass = \"lumped\"", "mass = \"diagonal\""), r"mass must be 'lumped' or 'consistent'"),
        (("select = { near = [0.0, 0.0] }", "select = { box = [5, 5, 6, 6] }"), r"m\.toml:\d+: selection .* selects no node"),
        (("select = { near = [0.0, 0.0] }", "select = { box = [0, 0, 0, 0], tol = 1 }"), r"unknown key 'tol'"),
        (("directions = \"x\"", "directions = \"y\""), r"output DOF 13 \(node 6, y\) is fixed"),
        (("n_fft = 1024", "n_fft = 10.5"), r"m\.toml:23: \[load\] n_fft must be an integer \(got 10.5\)"),
        (("g = 0.01", "g = -1"), r"m\.toml:13: \[damping\] g must be finite and >= 0 \(got -1\)"),
        (("[mesh]", "[mesh]\npoly = 'x.poly'"), r"exactly one of 'poly'"),
        (("end = [3.0, 0.0]", "end = [3.0, 1.0]"), r"parallel to the x or the y axis"),
        (("[load]", "[load\n"), r"m\.toml:\d+: not valid TOML"),
    ],
)
def test_bad_model_files(tmp_path, edit, match):
    text = _rod_text()
    old, new = edit
    assert old in text
    p = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ReadError, match=match):
        load_model(p)


def test_missing_files_and_bad_levels(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shipped model of that name"):
        load_model("no-such-model")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "absent.toml")
    p = _write(tmp_path, _rod_text())
    with pytest.raises(ValueError, match=r"level must be >= 1 \(got 0\)"):
        load_model(p, level=0)
    with pytest.raises(ValueError, match=r"level 9 does not exist \(the model has levels 1..4\)"):
        load_model("beam", level=9)


def test_node_ele_model_and_history_path(tmp_path):
    from femfreq.mesh import Mesh, write_triangle_mesh

    mesh = Mesh(points=[[0, 0], [1, 0], [1, 1], [0, 1]], triangles=[[0, 1, 2], [0, 2, 3]])
    write_triangle_mesh(tmp_path / "sq", mesh)
    text = """
[mesh]
node = "sq.node"
ele = "sq.ele"
[material]
E = 10.0
rho = 1.0
[section]
area = 1.0
[[constraints]]
select = { line = [[0, 0], [1, 0]] }
fix = "xy"
[load]
select = { near = [1, 1] }
history = "/abs/h.csv"
"""
    m = load_model(_write(tmp_path, text, "sq.toml"))
    with pytest.raises(ValueError, match="a node/ele mesh has one level"):
        load_model(tmp_path / "sq.toml", level=2)
    assert m.name == "sq" and m.n_rods == 5 and m.n_free == 4
    assert m.history.history == "/abs/h.csv" and m.history.n_fft == 4096
    np.testing.assert_array_equal(m.b_full, [0, 0, 0, 0, 0, -1, 0, 0])  # default direction (0, -1)
    K, _, _, _ = m.matrices()
    K_ref = rods.stiffness(m.points, m.edges, 10.0, 1.0).toarray()[np.ix_(m.free_dofs, m.free_dofs)]
    np.testing.assert_allclose(K.toarray(), K_ref)


def test_shipped_beam_model():
    m = load_model("beam", level=1)
    assert m.summary()["bounding_box"] == [0.0, 0.0, 10.0, 1.0]
    # clamped along x = 0
    clamped = select_nodes(m.points, {"line": [[0, 0], [0, 1]], "tol": 1e-9})
    assert np.all(m.full_to_free[2 * clamped] == -1) and np.all(m.full_to_free[2 * clamped + 1] == -1)
    assert m.load_dofs.size == 1 and m.points[m.load_dofs[0] // 2].tolist() == [10.0, 0.5]
    freqs, _ = m.modes(3)
    assert np.all(np.diff(freqs) > 0) and freqs[0] > 0


# -- CLI --------------------------------------------------------------------------------------
def test_cli_info(capsys):
    assert main(["info", "rod", "--level", "2", "--modes", "2"]) == 0
    out = capsys.readouterr().out
    assert "n_free" in out and " 40\n" in out
    line = [ln for ln in out.splitlines() if ln.startswith("modes (Hz)")][0]
    f1 = float(line.split()[-2].rstrip(","))
    np.testing.assert_allclose(f1, 1e4 / 40, rtol=1e-3)


def test_cli_modes_writes_vtu(tmp_path, capsys):
    import meshio

    out = tmp_path / "modes.vtu"
    assert main(["modes", "beam", "--level", "1", "-k", "3", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mode shapes written" in text
    data = meshio.read(out)
    m = load_model("beam", level=1)
    freqs, shapes = m.modes(3)
    first = f"mode_1_{freqs[0]:.5g}Hz"  # each field names its natural frequency
    np.testing.assert_allclose(np.abs(data.point_data[first][:, :2]), np.abs(shapes[:, 0].reshape(-1, 2)), atol=1e-12)
    assert f"{freqs[0]:.6f}" in text
    np.testing.assert_allclose(vtu_field_data(out)["natural_frequency_hz"], freqs, rtol=1e-15)
    # a line model has no triangles: written on the rods
    out2 = tmp_path / "rod.vtu"
    assert main(["modes", "rod", "-k", "1", "-o", str(out2)]) == 0
    assert meshio.read(out2).cells[0].type == "line"


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["info", "no-such-model"]) == 2
    assert "femfreq: error: no model file 'no-such-model'" in capsys.readouterr().err
    p = _write(tmp_path, _rod_text().replace("[material]", "[material]\nnu = 0.3"))
    assert main(["modes", str(p)]) == 2
    assert "unknown key 'nu'" in capsys.readouterr().err


def test_model_warns_when_load_is_on_a_fixed_dof():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        Model(points=[[0, 0], [1, 0]], edges=[[0, 1]], E=1.0, rho=1.0, area=1.0, fixed_dofs=[0, 1, 3], b_full=[1, 0, 1, 0])
    assert any("load acts on fixed DOF [0]" in str(x.message) for x in w)


# -- a load or output that would make the response meaningless --------------------------------
@pytest.mark.parametrize(
    "edit, match",
    [
        # the load snaps onto the clamped end: its x DOF is fixed by [[constraints]]
        (("select = {{ near = [{L}, 0.0] }}\ndirection", "select = {{ near = [0.0, 0.0] }}\ndirection"),
         r"m\.toml:\d+: \[load\] select = \{'near': \[0\.0, 0\.0\]\}: the load at node 0 \(0, 0\) acts only on "
         r"fixed DOF \(its x DOF is fixed\)"),
        # a transverse load on a line model, whose transverse DOF are fixed
        (("direction = [1.0, 0.0]", "direction = [0.0, 1.0]"), r"the load at node 6 \(3, 0\) acts only on fixed DOF "
         r"\(its y DOF is fixed\)"),
        (("select = {{ near = [{L}, 0.0] }}\ndirection", "select = {{ near = [100.0, 50.0] }}\ndirection"),
         r"m\.toml:\d+: \[load\] selection \{'near': \[100\.0, 50\.0\]\}: the nearest node, 6 at \(3, 0\), is 109\.1 "
         r"away, farther than 0\.5 \(the longest rod, the default 'tol'\)"),
        (("magnitude = 2.0", "magnitude = 0.0"), r"\[load\] .*the load vector is zero"),
        # outputs far off the structure, with an explicit tol
        (("select = {{ near = [{L}, 0.0] }}\ndirections", "select = {{ near = [3.2, 0.0], tol = 0.1 }}\ndirections"),
         r"selection \{'near': \[3\.2, 0\.0\], 'tol': 0\.1\}: the nearest node, 6 at \(3, 0\), is 0\.2 away, "
         r"farther than 0\.1 \(its 'tol'\)"),
    ],
)
def test_load_lost_or_off_the_structure_is_an_error(tmp_path, edit, match):
    old, new = edit
    assert old in ROD_TOML
    p = _write(tmp_path, ROD_TOML.replace(old, new, 1).format(L=3.0, n=6, E=1e6, rho=2.0, area="0.01"))
    with pytest.raises(ReadError, match=match):
        load_model(p)


def test_near_within_its_tolerance_is_accepted(tmp_path):
    text = ROD_TOML.replace("select = {{ near = [{L}, 0.0] }}\ndirection", "select = {{ near = [3.4, 0.3] }}\ndirection")
    m = load_model(_write(tmp_path, text.format(L=3.0, n=6, E=1e6, rho=2.0, area="0.01")))
    assert m.b_full[12] == 2.0  # 0.5 from the tip: within the longest rod
    text = ROD_TOML.replace("select = {{ near = [{L}, 0.0] }}\ndirection", "select = {{ near = [9.0, 0.0], tol = 6.5 }}\ndirection")
    assert load_model(_write(tmp_path, text.format(L=3.0, n=6, E=1e6, rho=2.0, area="0.01"))).b_full[12] == 2.0


def _square_with_a_lonely_node(tmp_path, load_at, output_at):
    """A two-triangle square model with node 4 at (0.5, 3) in no rod."""
    (tmp_path / "sq.node").write_text("5 2 0 0\n1 0 0\n2 1 0\n3 1 1\n4 0 1\n5 0.5 3\n")
    (tmp_path / "sq.ele").write_text("2 3 0\n1 1 2 3\n2 1 3 4\n")
    text = f"""
[mesh]
node = "sq.node"
ele = "sq.ele"
[material]
E = 10.0
rho = 1.0
[section]
area = 1.0
[[constraints]]
select = {{ line = [[0, 0], [1, 0]] }}
fix = "xy"
[load]
select = {{ near = {load_at} }}
[output]
select = {{ near = {output_at} }}
"""
    return _write(tmp_path, text, "sq.toml")


def test_load_or_output_on_a_node_in_no_rod_is_an_error(tmp_path):
    with pytest.raises(ReadError, match=r"sq\.toml:\d+: \[load\] .*the load at node 4 \(0\.5, 3\) acts only on fixed DOF "
                                        r"\(node 4 belongs to no rod\)"):
        load_model(_square_with_a_lonely_node(tmp_path, [0.5, 3], [1, 1]))
    with pytest.raises(ReadError, match=r"sq\.toml:\d+: \[output\] .*output DOF 8 \(node 4, x\) is on a node in no rod"):
        load_model(_square_with_a_lonely_node(tmp_path, [1, 1], [0.5, 3]))
    with pytest.warns(UserWarning, match="belong to no rod"):
        m = load_model(_square_with_a_lonely_node(tmp_path, [1, 1], [1, 1]))
    assert m.load_dofs.tolist() == [5]


def test_model_whose_load_acts_only_on_fixed_dof_is_an_error():
    base = dict(points=[[0, 0], [1, 0], [1, 1]], edges=[[0, 1], [1, 2]], E=1.0, rho=1.0, area=1.0,
                fixed_dofs=[0, 1, 3, 4])
    with pytest.raises(ValueError, match=r"the load at node 0 \(0, 0\) acts only on fixed DOF \(its x and y DOF are fixed\)"):
        Model(**base, b_full=[1, 1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"the load at 2 nodes \(first: node 1 at \(1, 0\)\) acts only on fixed DOF"):
        Model(**base, b_full=[0, 0, 0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"the load vector is zero"):
        Model(**base, b_full=np.zeros(6))
    with pytest.warns(UserWarning, match=r"that part of the load is lost"):
        assert Model(**base, b_full=[0, 0, 0, 1, 1, 1]).matrices()[3].tolist() == [0, 1]
    with pytest.warns(UserWarning, match="belong to no rod"), \
            pytest.raises(ValueError, match=r"node 2 belongs to no rod"):
        Model(points=[[0, 0], [1, 0], [3, 3]], edges=[[0, 1]], E=1.0, rho=1.0, area=1.0, fixed_dofs=[0, 1],
              b_full=[0, 0, 0, 0, 1, 0])


def test_cli_sweep_with_all_load_lost_fails_in_one_line_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    text = ROD_TOML.replace("history = \"shock.csv\"\n", "").replace("direction = [1.0, 0.0]", "direction = [0.0, 1.0]")
    p = _write(tmp_path, text.format(L=3.0, n=6, E=1e6, rho=2.0, area="0.01"))
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-m", "femfreq", "sweep", str(p), "--serial", "--freqs", "1:10:4",
                           "-o", str(out), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("femfreq: error: ")
    assert "acts only on fixed DOF (its y DOF is fixed)" in proc.stderr
    assert not out.exists()


def test_near_tolerance_defaults():
    points = [[0, 0], [1, 0], [2, 0]]
    assert select_nodes(points, {"near": [3.9, 0]}).tolist() == [2]  # within the model size, 2
    with pytest.raises(ValueError, match=r"is 2\.1 away, farther than 2 \(the size of the model, the default 'tol'\)"):
        select_nodes(points, {"near": [4.1, 0]})
    with pytest.raises(ValueError, match=r"is 1\.5 away, farther than 1 \(the longest rod, the default 'tol'\)"):
        select_nodes(points, {"near": [3.5, 0]}, edges=[[0, 1], [1, 2]])
    assert select_nodes(points, {"near": [3.5, 0], "tol": 1.5}, edges=[[0, 1], [1, 2]]).tolist() == [2]
    with pytest.raises(ValueError, match=r"edges must be node ids in 0\.\.2"):
        select_nodes(points, {"near": [0, 0]}, edges=[[0, 3]])


def test_a_models_system_shares_its_matrices_which_an_in_place_change_cannot_alter():
    # Model.system() adopts the matrices it made for itself (no copy); the Model's matrices()
    # are then those arrays, read-only: an in-place change is an error, not a silent change
    m = replace(square_truss(), damping=Damping(beta=1e-3))
    s = m.system()
    K, C, M, _ = m.matrices()
    assert np.shares_memory(s.k_values, K.data) and np.shares_memory(s.c_values, C.data)
    before = s.dynamic_matrix(7.0).toarray()
    for A in (K, C, M):
        with pytest.raises(ValueError, match="read-only"):
            A.data[0] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            A.indices[0] = 0
    # what a user does with them out of place still works
    assert (2.0 * K).data[0] == 2.0 * K.data[0]
    np.testing.assert_array_equal(s.dynamic_matrix(7.0).toarray(), before)


def test_matrices_taken_before_the_system_stay_the_callers_own():
    m = square_truss()
    K, C, M, _ = m.matrices()  # the caller holds them before the System exists: it gets a copy
    s = m.system()
    before = s.dynamic_matrix(7.0).toarray()
    K.data[:] = -1.0
    M.data[:] = 5.0
    np.testing.assert_array_equal(s.dynamic_matrix(7.0).toarray(), before)
