"""Enforced base motion: transmissibility, interface force, effective mass, result files, CLI.

References are independent of the relative formulation femfreq uses: the closed-form
single-DOF transmissibility, a partitioned enforced-motion solve of the full matrices
(the driven DOF prescribed, the reactions read off the driven rows), Newton's second law
at 0 Hz, and a dense eigen-solve of the free-DOF K, M.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

import femfreq
from femfreq._cli.main import main
from femfreq.errors import ReadError
from femfreq.model import Damping, Model
from femfreq.options import Direct, Fast


def _sdof(g=0.02, alpha=0.0):
    """One rod along x: node 0 driven (fixed in x and y), node 1 free in x (its y fixed)."""
    E, rho, area, length = 2.0, 3.0, 0.5, 4.0
    model = Model(points=[[0, 0], [length, 0]], edges=[[0, 1]], E=E, rho=rho, area=area,
                  damping=Damping(g=g, alpha=alpha), fixed_dofs=[0, 1, 3], output_dofs_full=[2])
    k = E * area / length
    m = rho * area * length / 2  # lumped: half the rod's mass on each node
    return model, k, m


@pytest.mark.parametrize("method", ["direct", "fast"])
def test_sdof_transmissibility_equals_the_closed_form(method):
    model, k, m = _sdof(g=0.02)
    fn = np.sqrt(k / m) / (2 * np.pi)
    f = np.array([0.0, 0.1 * fn, 0.7 * fn, fn, 1.3 * fn, 5 * fn])
    r = femfreq.solve(model.with_base("x"), freqs_hz=f, cluster=None, progress=False, method=method)
    w = 2 * np.pi * f
    T = k * (1 + 0.02j) / (k * (1 + 0.02j) - w**2 * m)
    assert np.max(np.abs(r.transmissibility[:, 0] / T - 1)) < 1e-9
    assert abs(r.transmissibility[3, 0]) > 49  # at resonance, |T| ~ 1/g
    # the base pushes the driven node's own mass and the free mass: m a_b + m T a_b
    np.testing.assert_allclose(r.interface_force[:, 0], m + m * T, rtol=1e-9)
    np.testing.assert_array_equal(r.interface_force[:, 1], 0)
    assert r.interface_force[0, 0] == pytest.approx(model.total_mass, rel=1e-12)  # 0 Hz: total mass x a_b
    # absolute = relative + base motion; the relative displacement is what the solver returned
    np.testing.assert_allclose(r.acceleration[1:, 0], -(w[1:] ** 2) * r.relative_displacement[1:, 0] + 1.0)
    np.testing.assert_allclose(r.velocity[1:, 0], r.acceleration[1:, 0] / (1j * w[1:]))
    np.testing.assert_allclose(r.frf[1:, 0], T[1:] / -(w[1:] ** 2), rtol=1e-9)


def _partitioned(model, freqs_hz, driven, direction, accel=1.0):
    """Independent reference: prescribe the driven DOF, solve the free ones, read the reactions."""
    K, M = (sp.csr_matrix(A).toarray() for A in model.full_matrices())
    d = model.damping
    C = d.alpha * M + d.beta * K
    free = model.free_dofs
    u_D = np.asarray(direction)[driven % 2]
    out = model.output_dofs_full
    acc, force = [], []
    for f in freqs_hz:
        w = 2 * np.pi * f
        A = (1 + 1j * d.g) * K + 1j * w * C - w**2 * M
        u_b = -accel / w**2
        x = np.zeros(model.n_dof, dtype=complex)
        x[driven] = u_D * u_b
        x[free] = np.linalg.solve(A[np.ix_(free, free)], -A[np.ix_(free, driven)] @ x[driven])
        acc.append(-(w**2) * x[out])
        reaction = A[driven] @ x  # the driven rows: inertia of the driven DOF included
        force.append([reaction[driven % 2 == c].sum() for c in (0, 1)])
    return np.array(acc), np.array(force)


@pytest.mark.parametrize("damping", [Damping(beta=0.004, g=0.02), Damping(alpha=3.0, beta=1e-3, g=0.01)])
def test_relative_formulation_equals_partitioned_enforced_motion(damping):
    import dataclasses

    model = dataclasses.replace(femfreq.load_model("satellite", level=1), damping=damping)
    direction = np.array([0.6, 0.8])
    f = np.array([0.5, 7.0, 23.0, 80.0])
    r = femfreq.solve(model.with_base(direction), freqs_hz=f, cluster=None, progress=False)
    acc, force = _partitioned(model, f, model.fixed_dofs, direction)
    np.testing.assert_allclose(r.acceleration, acc, rtol=1e-7, atol=1e-9 * np.abs(acc).max())
    np.testing.assert_allclose(r.interface_force, force, rtol=1e-7, atol=1e-9 * np.abs(force).max())


def test_a_base_that_is_not_rigid_uses_the_quasi_static_influence():
    # a rod fixed at both ends, only the left end driven: the middle node moves half as much
    model = Model(points=[[0, 0], [1, 0], [2, 0]], edges=[[0, 1], [1, 2]], E=5.0, rho=1.0, area=1.0,
                  damping=Damping(g=0.03), fixed_dofs=[0, 1, 3, 4, 5], output_dofs_full=[2])
    driven = model.with_base("x", nodes=[0])
    assert driven.system().base.influence.tolist() == [0.5]
    f = np.array([0.05, 0.3, 0.6])
    r = femfreq.solve(driven, freqs_hz=f, cluster=None, progress=False)
    acc, force = _partitioned(model, f, np.array([0, 1]), [1.0, 0.0])
    np.testing.assert_allclose(r.acceleration, acc, rtol=1e-10)
    np.testing.assert_allclose(r.interface_force, force, rtol=1e-10)


def test_mass_proportional_damping_refuses_0_hz():
    model, _, _ = _sdof(alpha=1.0)
    with pytest.raises(ValueError, match="alpha > 0"):
        femfreq.solve(model.with_base("x"), freqs_hz=[0.0, 1.0], cluster=None, progress=False)


def test_satellite_interface_force_at_low_frequency_is_total_mass_times_acceleration():
    model = femfreq.load_model("satellite", level=1).with_base("y", acceleration=9.80665)
    r = femfreq.solve(model, freqs_hz=[0.01], cluster=None, progress=False)
    F = r.interface_force[0]
    expected = model.total_mass * 9.80665
    assert abs(F[1] / expected - 1) < 1e-4
    assert abs(F[0]) < 1e-4 * expected
    np.testing.assert_allclose(r.base["acceleration"], 9.80665)


def test_effective_masses_of_all_modes_sum_to_the_moving_mass():
    model = femfreq.load_model("satellite", level=1)
    K, _, M, _ = model.matrices()
    lam, phi = scipy.linalg.eigh(K.toarray(), M.toarray())  # dense, every mode, M-orthonormal
    free = model.free_dofs
    R = np.column_stack([free % 2 == 0, free % 2 == 1]).astype(float)
    reference = (phi.T @ (M @ R)) ** 2
    # the moving mass: total mass minus what is lumped on the constrained nodes' fixed DOF
    rod_mass = model.rho * model.area * model.lengths
    node_mass = np.zeros(model.n_nodes)
    np.add.at(node_mass, model.edges[:, 0], rod_mass / 2)
    np.add.at(node_mass, model.edges[:, 1], rod_mass / 2)
    held = [node_mass[model.fixed_dofs[model.fixed_dofs % 2 == c] // 2].sum() for c in (0, 1)]
    moving = model.total_mass - np.array(held)
    np.testing.assert_allclose(reference.sum(axis=0), moving, rtol=1e-9)

    em = model.effective_mass(model.n_free)
    np.testing.assert_allclose(em.moving_mass, moving, rtol=1e-12)
    np.testing.assert_allclose(em.mass.sum(axis=0), moving, rtol=1e-9)
    np.testing.assert_allclose(em.cumulative[-1], 1.0, rtol=1e-9)
    few = model.effective_mass(6)
    np.testing.assert_allclose(few.mass, reference[:6], rtol=1e-6, atol=1e-12 * moving.max())
    assert np.all(np.diff(few.cumulative, axis=0) >= 0)


@pytest.mark.parametrize("direction", ["y", [1.0, 1.0]])
def test_direct_and_fast_agree_on_base_excitation(direction):
    import dataclasses

    model = femfreq.load_model("satellite", level=1)
    model = dataclasses.replace(model, damping=Damping(g=0.02)).with_base(direction)
    f = np.linspace(2.0, 120.0, 60)
    tol = 1e-6
    direct = femfreq.solve(model, freqs_hz=f, cluster=None, progress=False, method=Direct(tol=tol))
    fast = femfreq.solve(model, freqs_hz=f, cluster=None, progress=False, method=Fast(tol=tol))
    assert np.all(direct.rel_residual <= tol) and np.all(fast.rel_residual <= tol)
    scale = np.abs(direct.response).max(axis=0)
    assert np.max(np.abs(fast.response - direct.response) / scale) < 1e3 * tol
    fscale = np.abs(direct.interface_force).max()
    assert np.max(np.abs(fast.interface_force - direct.interface_force)) < 1e3 * tol * fscale


def _write_model(tmp_path, base_table, load=True):
    text = """
name = "bar"
[mesh]
line = { start = [0.0, 0.0], end = [4.0, 0.0], n = 4 }
[material]
E = 100.0
rho = 1.0
[section]
area = 1.0
[damping]
g = 0.02
[[constraints]]
select = { near = [0.0, 0.0] }
fix = "xy"
[output]
select = { near = [4.0, 0.0] }
directions = "x"
""" + base_table
    if load:
        text += '[load]\nselect = { near = [4.0, 0.0] }\ndirection = [1.0, 0.0]\n'
    path = tmp_path / "bar.toml"
    path.write_text(text)
    return path


def test_toml_base_section_without_load(tmp_path):
    path = _write_model(tmp_path, '[base]\ndirection = [1.0, 0.0]\nacceleration = 2.0\n', load=False)
    model = femfreq.load_model(path)
    assert model.b_full is None and model.base.acceleration == 2.0
    assert model.base.direction.tolist() == [1.0, 0.0]
    r = femfreq.solve(model, freqs_hz=[0.0, 1.0], cluster=None, progress=False)
    np.testing.assert_allclose(r.interface_force[0, 0], 2.0 * model.total_mass)
    np.testing.assert_allclose(r.base["acceleration"], 2.0)
    with pytest.raises(ValueError, match="needs frequencies"):
        femfreq.solve(model, cluster=None, progress=False)


def test_base_select_must_be_constrained(tmp_path):
    from femfreq.model import models_dir

    text = (models_dir() / "satellite.toml").read_text()
    text = text.replace('poly = "satellite.poly"', f'poly = "{(models_dir() / "satellite.poly").as_posix()}"')
    ok = tmp_path / "ok.toml"
    ok.write_text(text + '\n[base]\ndirection = [0.0, 1.0]\nselect = { box = [16.0, 1.9, 20.0, 2.1] }\n')
    model = femfreq.load_model(ok, level=1)
    assert 0 < model.base.nodes.size < np.unique(model.fixed_dofs // 2).size
    bad = tmp_path / "bad.toml"
    bad.write_text(text + '\n[base]\ndirection = [0.0, 1.0]\nselect = { near = [23.5, 10.5] }\n')
    with pytest.raises(ReadError, match="not constrained"):
        femfreq.load_model(bad, level=1)
    with pytest.raises(ValueError, match="no fixed DOF"):
        model.with_base("y", nodes=[int(model.output_nodes[0])])
    with pytest.raises(ReadError, match="base"):
        femfreq.load_model(_write_model(tmp_path, '[base]\ndirection = [0.0, 0.0]\n'))


def test_result_file_records_the_analysis_and_reads_back(tmp_path):
    out = tmp_path / "base.h5"
    model = femfreq.load_model("rod").with_base("x")
    r = femfreq.solve(model, freqs_hz="10:600:12", cluster=None, progress=False, out=out)
    back = femfreq.read_results(out)
    assert back.analysis == "base_motion" and back.attrs["analysis"] == "base_motion"
    assert back.attrs["format_version"] == 4
    np.testing.assert_array_equal(back.base["direction"], [1.0, 0.0])
    np.testing.assert_array_equal(back.interface_force, r.interface_force)
    np.testing.assert_array_equal(back.transmissibility, r.transmissibility)

    point = tmp_path / "point.h5"
    femfreq.solve(femfreq.load_model("rod"), freqs_hz="10:600:12", cluster=None, progress=False, out=point)
    p = femfreq.read_results(point)
    assert p.analysis == "point_load" and p.attrs["analysis"] == "point_load" and p.interface_force is None
    with pytest.raises(ValueError, match="base-motion"):
        p.transmissibility
    with h5py.File(point, "r+") as h5:  # a version 3 file: no analysis attribute
        del h5.attrs["analysis"]
        h5.attrs["format_version"] = 3
    old = femfreq.read_results(point)
    assert old.analysis == "point_load" and old.base is None
    np.testing.assert_array_equal(old.response, p.response)


def test_cli_sweep_base_and_modes_effective_mass(tmp_path, capsys):
    out = tmp_path / "rod.h5"
    assert main(["sweep", "rod", "--base", "x", "--freqs", "10:600:7", "--serial", "--no-progress",
                 "-o", str(out)]) == 0
    assert "max transmissibility" in capsys.readouterr().out
    r = femfreq.read_results(out)
    assert r.analysis == "base_motion" and r.interface_force.shape == (7, 2)
    assert main(["sweep", "rod", "--base", "x", "--serial", "-o", str(tmp_path / "x.h5")]) == 2
    assert capsys.readouterr().err.strip().startswith("femfreq: error: base motion needs --freqs")
    assert main(["sweep", "rod", "--base", "up", "--freqs", "1", "--serial", "-o", str(tmp_path / "y.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("femfreq: error: base direction 'up'")

    assert main(["modes", "rod", "-k", "3", "--effective-mass"]) == 0
    text = capsys.readouterr().out
    assert "m_eff x" in text and "cum y" in text and "moving mass" in text
    rod = femfreq.load_model("rod")
    em = rod.effective_mass(3)
    # fixed-free rod: the first axial mode carries 8 / pi^2 of the (continuous) rod's mass
    assert em.mass[0, 0] / rod.total_mass == pytest.approx(8 / np.pi**2, rel=3e-3)
    assert em.moving_mass[0] == pytest.approx(rod.total_mass * 19.5 / 20)  # half a rod sits on the base
    assert f"{em.cumulative[2, 0]:.4f}" in text


def test_random_response_of_a_base_gives_the_interface_force_rms():
    """The interface-force rms under a flat ASD equals an independent adaptive quadrature of
    |m + m T(f)|^2 W (the single-DOF interface force per unit base acceleration)."""
    from scipy.integrate import quad

    model, k, m = _sdof(g=0.05)
    fn = np.sqrt(k / m) / (2 * np.pi)
    lo, hi = fn / 4, fn * 4
    # a grid that resolves the peak: log background plus points around fn
    f = np.unique(np.concatenate([np.geomspace(lo, hi, 400), fn * (1 + np.linspace(-0.1, 0.1, 201))]))
    r = femfreq.solve(model.with_base("x"), freqs_hz=f, cluster=None, progress=False)
    W = 0.04
    rr = femfreq.random_response(r, f"{lo}:{W},{hi}:{W}")
    k_c = k * (1 + 0.05j)

    def force2(fi):
        w = 2 * np.pi * fi
        return abs(m + m * k_c / (k_c - w**2 * m)) ** 2 * W

    ref = np.sqrt(quad(force2, lo, hi, points=[fn], limit=400, epsabs=0, epsrel=1e-10)[0])
    assert rr.interface_force_rms[0] == pytest.approx(ref, rel=5e-3)
    assert rr.interface_force_rms[1] == 0.0
    assert rr.interface_force_psd.shape == (f.size, 2)
    point = femfreq.solve(*_sdof()[0].matrices(), freqs_hz=f, cluster=None, progress=False)
    assert femfreq.random_response(point, f"{lo}:{W},{hi}:{W}").interface_force_rms is None
