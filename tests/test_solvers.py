"""Direct solver backends: SuperLU and MKL PARDISO against dense numpy solves."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq.solvers import (
    SingularMatrixError,
    SolverUnavailableError,
    available_solvers,
    clear_caches,
    get_solver,
    solve_certified,
)
from femfreq.solvers import CACHE_SIZE
from femfreq.solvers._structure import upper_triangle, values_on
from femfreq.solvers.pardiso import PardisoError, PardisoSolver, mkl_memory_bytes, pardiso_available
from femfreq.solvers.superlu import SuperLUSolver
from femfreq.system import System

HAVE_PARDISO = pardiso_available()[0]
needs_pardiso = pytest.mark.skipif(not HAVE_PARDISO, reason="MKL PARDISO not available")
BACKENDS = ["superlu", pytest.param("pardiso", marks=needs_pardiso)]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_caches()
    yield
    clear_caches()


def grid_truss(nx, ny, *, fixed=True, beta=0.004, g=0.0, E=1e7, rho=0.1, area=1e-2):
    """Triangulated nx x ny grid of rods (unit spacing), bottom row fixed."""
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    points = np.column_stack([i.ravel(), j.ravel()]).astype(float)
    ids = (j * nx + i)
    edges = np.concatenate([
        np.column_stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()]),
        np.column_stack([ids[:-1, :].ravel(), ids[1:, :].ravel()]),
        np.column_stack([ids[:-1, :-1].ravel(), ids[1:, 1:].ravel()]),
    ])
    d = points[edges[:, 1]] - points[edges[:, 0]]
    L = np.linalg.norm(d, axis=1)
    v = np.column_stack([-d / L[:, None], d / L[:, None]])  # (e, 4): [-c, -s, c, s]
    ke = (E * area / L)[:, None, None] * v[:, :, None] * v[:, None, :]
    dofs = np.column_stack([2 * edges[:, 0], 2 * edges[:, 0] + 1, 2 * edges[:, 1], 2 * edges[:, 1] + 1])
    n = 2 * len(points)
    K = sp.coo_matrix((ke.ravel(), (np.repeat(dofs, 4, axis=1).ravel(), np.tile(dofs, 4).ravel())), (n, n)).tocsc()
    m = np.zeros(n)
    np.add.at(m, dofs.ravel(), np.repeat(rho * area * L / 2, 4))
    M = sp.diags(m).tocsc()
    b = np.zeros(n)
    b[-1] = -1.0  # downward force on the top-right node
    free = np.arange(n) if not fixed else np.arange(2 * nx, n)
    Kf, Mf = K[free][:, free], M[free][:, free]
    return System(K=Kf, C=beta * Kf if beta else None, M=Mf, b=b[free], g=g, name=f"grid{nx}x{ny}")


def dense_solve(system, omega, rhs):
    return np.linalg.solve(system.dynamic_matrix(omega).toarray(), rhs)


def rel_err(x, ref):
    return np.linalg.norm(x - ref) / np.linalg.norm(ref)


def random_system(n, seed, *, g, c_scale, density=0.3):
    rng = np.random.default_rng(seed)

    def spd():
        R = sp.random(n, n, density=density, random_state=rng)
        return (R @ R.T + sp.eye(n) * n * 0.1).tocsc()

    K, M = spd(), spd()
    C = c_scale * spd() if c_scale else None
    return System(K=K, C=C, M=M, b=rng.standard_normal(n) + 1j * rng.standard_normal(n), g=g)


# -- accuracy -----------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    damping=st.sampled_from(["g", "C", "both"]),
    level=st.floats(0.005, 0.2),
    omega_scale=st.sampled_from([0.0, 0.3, 1.0, 3.0]),
)
def test_backends_match_dense_on_random_symmetric_models(n, seed, damping, level, omega_scale):
    g = level if damping in ("g", "both") else 0.0
    c_scale = level if damping in ("C", "both") else 0.0
    s = random_system(n, seed, g=g, c_scale=c_scale)
    # frequencies across the spectrum, resonances included (damping keeps A regular)
    omega = omega_scale * np.sqrt(np.abs(s.K).sum() / np.abs(s.M).diagonal().min())
    ref = dense_solve(s, omega, s.b)
    names = ["superlu"] + (["pardiso"] if HAVE_PARDISO else [])
    results = {}
    for name in names:
        with get_solver(s, name) as solver:
            results[name] = solver.solve(omega, s.b)
        assert rel_err(results[name], ref) < 1e-10, name
    if HAVE_PARDISO:
        assert rel_err(results["pardiso"], results["superlu"]) < 1e-10


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("g, beta", [(0.0, 0.004), (0.02, 0.0), (0.02, 0.004)])
def test_truss_matches_dense_over_frequencies_with_multiple_rhs(name, g, beta):
    s = grid_truss(7, 5, beta=beta, g=g)
    rng = np.random.default_rng(1)
    B = rng.standard_normal((s.n, 3)) + 1j * rng.standard_normal((s.n, 3))
    solver = get_solver(s, name)
    for omega in [0.0, 50.0, 400.0, 2000.0]:
        X = solver.solve(omega, B)
        assert X.shape == (s.n, 3) and X.dtype == np.complex128
        ref = dense_solve(s, omega, B)
        for k in range(3):
            assert rel_err(X[:, k], ref[:, k]) < 1e-10
        x1 = solver.solve(omega, B[:, 1])
        assert x1.shape == (s.n,)
        assert rel_err(x1, ref[:, 1]) < 1e-10
    assert solver.stats["analyses"] == 1
    assert solver.stats["factorizations"] == 8


@needs_pardiso
@pytest.mark.parametrize("g, beta", [(0.02, 0.0), (0.0, 0.004)])
def test_backends_agree_on_the_satellite_at_resonance_peaks(g, beta):
    from femfreq.model import load_model

    model = load_model("satellite", level=1)  # ~1.4k DOF
    s0 = model.system()
    s = System(K=s0.K, C=beta * s0.K if beta else None, M=s0.M, b=s0.b, g=g)
    peaks, _ = model.modes(3)
    freqs = np.concatenate([[0.0], peaks, [500.0]])
    lu, pd = get_solver(s, "superlu"), get_solver(s, "pardiso")
    for f in freqs:
        omega = 2 * np.pi * f
        x_lu, x_pd = lu.solve(omega, s.b), pd.solve(omega, s.b)
        for solver, x in ((lu, x_lu), (pd, x_pd)):
            rel, bwd = s.residuals(omega, x, 1.0)
            assert rel < 1e-10 and bwd < 1e-15, (solver.name, f, rel, bwd)
        # two backward-stable solves differ by up to cond(A) eps: ~1e-10 at these peaks
        assert rel_err(x_pd, x_lu) < 1e-8, f


@needs_pardiso
def test_pardiso_unsymmetric_uses_type_13():
    s0 = random_system(25, 3, g=0.01, c_scale=0.01)
    K = s0.K + sp.triu(s0.K, 1) * 0.3  # break the symmetry
    s = System(K=K, C=s0.C, M=s0.M, b=s0.b)
    assert not s.is_symmetric
    with PardisoSolver(s) as solver:
        assert solver.mtype == 13
        for omega in (0.0, 2.0):
            assert rel_err(solver.solve(omega, s.b), dense_solve(s, omega, s.b)) < 1e-10
    assert get_solver(s, "auto").name == "superlu"


@needs_pardiso
@pytest.mark.parametrize("opts", [dict(threads=2), dict(ordering="amd"), dict(matching=True, analysis_omega=30.0),
                                  dict(refinement=2), dict(threads=0, ordering="parallel-metis"),
                                  dict(iparm={23: 1}), dict(ordering="pymetis"), dict(ordering="metis")])
def test_pardiso_options_give_the_same_answer(opts):
    s = grid_truss(6, 6, g=0.02)
    with PardisoSolver(s, **opts) as solver:
        for omega in (0.0, 300.0):
            assert rel_err(solver.solve(omega, s.b), dense_solve(s, omega, s.b)) < 1e-10


@needs_pardiso
def test_pardiso_refactors_with_bunch_kaufman_pivots_where_a_1x1_pivot_fails():
    # 2x2 blocks [[-w^2 m, 1], [1, -w^2 m]] with a tiny mass: their diagonal pivots are
    # ~1e-12, which 1x1 pivoting (the default) cannot take without losing the answer
    n = 40
    K = sp.block_diag([sp.csr_matrix([[0.0, 1.0], [1.0, 0.0]])] * (n // 2)).tocsc()
    s = System(K=K, C=None, M=sp.identity(n, format="csc") * 1e-12, b=np.random.default_rng(1).standard_normal(n))
    with PardisoSolver(s) as solver:
        for omega in (1.0, 0.0, 2.0):
            assert rel_err(solver.solve(omega, s.b), dense_solve(s, omega, s.b)) < 1e-12
            assert solver.last_info["rel_residual"].max() < 1e-12
        assert solver.stats["bunch_kaufman_refactorizations"] >= 1
        # a model that keeps needing them keeps them: at most 3 frequencies are factored twice
        factorizations = []
        for omega in np.linspace(0.5, 3.0, 8):
            before = solver.stats["factorizations"]
            solver.solve(omega, s.b)
            assert solver.last_info["rel_residual"].max() < 1e-12
            factorizations.append(solver.stats["factorizations"] - before)
        assert solver.stats["bunch_kaufman_refactorizations"] <= 3 and factorizations[-3:] == [1, 1, 1]
    with PardisoSolver(s, iparm={20: 0}) as solver:  # the retry is off when the pivoting is the user's
        solver.solve(1.0, s.b)
        assert solver.stats["bunch_kaufman_refactorizations"] == 0


def test_pattern_without_diagonal_entries():
    # a zero diagonal in K and M: PARDISO needs it stored, the binding inserts it
    K = sp.csc_matrix(np.array([[0.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 3.0]]))
    M = sp.csc_matrix(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    s = System(K=K, C=None, M=M, b=[1.0, 2.0, 3.0], g=0.01)
    for name in available_solvers():
        with get_solver(s, name) as solver:
            assert rel_err(solver.solve(1.5, s.b), dense_solve(s, 1.5, s.b)) < 1e-12


# -- certification ----------------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
def test_solve_certified_reports_residuals_and_refines(name):
    s = grid_truss(8, 4, beta=0.0, g=0.02)
    solver = get_solver(s, name)
    omega, load = 120.0, 0.5 - 2j
    x, rel, bwd = solve_certified(solver, s, omega, load)
    assert (rel, bwd) == pytest.approx(s.residuals(omega, x, load), rel=1e-9)
    assert rel < 1e-10 and bwd < 1e-14
    assert rel_err(x, dense_solve(s, omega, load * s.b)) < 1e-10
    before = solver.stats["factorizations"]
    x2, rel2, _ = solve_certified(solver, s, omega, load, tol=1e-300, refine=3)
    assert rel2 <= rel
    assert solver.stats["factorizations"] == before + 1  # refinement reuses the factors
    assert solver.stats["solves"] > solver.stats["factorizations"]


def test_solve_certified_rejects_bad_arguments():
    s, other = grid_truss(4, 3), grid_truss(4, 3)
    solver = get_solver(s, "superlu")
    with pytest.raises(ValueError, match="solver was built for another system"):
        solve_certified(solver, other, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"refine must be >= 0 \(got -1\)"):
        solve_certified(solver, s, 1.0, 1.0, refine=-1)


@pytest.mark.parametrize("name", BACKENDS)
def test_solve_with_factor_needs_the_same_frequency(name):
    s = grid_truss(4, 3)
    solver = get_solver(s, name)
    with pytest.raises(ValueError, match="no factorization of A at .* is kept"):
        solver.solve_with_factor(10.0, s.b)
    solver.solve(10.0, s.b)
    x = solver.solve_with_factor(10.0, 2 * s.b)
    assert rel_err(x, dense_solve(s, 10.0, 2 * s.b)) < 1e-12
    with pytest.raises(ValueError, match=r"the last one is 1\.59155 Hz"):
        solver.solve_with_factor(11.0, s.b)


# -- singular matrices -----------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
def test_free_free_model_at_zero_hz_is_singular(name):
    s = grid_truss(5, 3, fixed=False, beta=0.004)
    solver = get_solver(s, name)
    with pytest.raises(SingularMatrixError, match=r"singular.* at 0 Hz \(omega = 0 rad/s\)") as info:
        solver.solve(0.0, s.b)
    assert isinstance(info.value, ValueError)
    assert info.value.freq_hz == 0.0
    # the same solver still works at a regular frequency
    assert rel_err(solver.solve(100.0, s.b), dense_solve(s, 100.0, s.b)) < 1e-10


@pytest.mark.parametrize("name", BACKENDS)
def test_dof_without_stiffness_or_mass_is_singular(name):
    K = sp.diags([2.0, 3.0, 0.0]).tocsc()
    M = sp.diags([1.0, 1.0, 0.0]).tocsc()
    s = System(K=K, C=None, M=M, b=[1.0, 1.0, 1.0])
    with get_solver(s, name) as solver:
        with pytest.raises(SingularMatrixError, match=r"singular.* at 1\.59155 Hz"):
            solver.solve(10.0, s.b)


def test_singular_tol_is_validated():
    with pytest.raises(ValueError, match="singular_tol must be > 0"):
        SuperLUSolver(grid_truss(3, 3), singular_tol=0)


# -- selection, cache, lifetime ----------------------------------------------------------
def test_available_and_unknown_names():
    names = available_solvers()
    assert names[0] == "superlu"
    assert ("pardiso" in names) == HAVE_PARDISO
    s = grid_truss(3, 3)
    with pytest.raises(ValueError, match=r"unknown solver 'umfpack'; pick one of \['auto', 'superlu', 'pardiso'\]"):
        get_solver(s, "umfpack")
    expected = "pardiso" if HAVE_PARDISO else "superlu"
    assert get_solver(s).name == expected


def test_cache_returns_the_same_solver_and_analyses_once():
    s = grid_truss(5, 4)
    name = "pardiso" if HAVE_PARDISO else "superlu"
    a = get_solver(s, name)
    a.solve(1.0, s.b)
    b = get_solver(s, name)
    b.solve(2.0, s.b)
    assert a is b
    assert a.stats["analyses"] == 1 and a.stats["factorizations"] == 2
    if HAVE_PARDISO:
        assert a.calls == [11, 23, 23]
        assert get_solver(s, "auto") is a
    other = get_solver(s, name, singular_tol=1e-6)
    assert other is not a


def test_cache_is_bounded_and_closes_evicted_solvers():
    systems = [grid_truss(3, 3) for _ in range(CACHE_SIZE + 1)]
    solvers = [get_solver(s, "superlu") for s in systems]
    assert solvers[0].closed
    assert not any(s.closed for s in solvers[1:])
    with pytest.raises(ValueError, match="the superlu solver is closed"):
        solvers[0].solve(1.0, systems[0].b)
    fresh = get_solver(systems[0], "superlu")
    assert fresh is not solvers[0] and not fresh.closed


@needs_pardiso
def test_pardiso_close_frees_memory():
    s = grid_truss(30, 30)
    with PardisoSolver(s) as warm_up:  # MKL keeps a few small global buffers after first use
        warm_up.solve(10.0, s.b)
    base_bytes = mkl_memory_bytes()
    solver = PardisoSolver(s)
    solver.solve(10.0, s.b)
    used = mkl_memory_bytes() - base_bytes
    assert used > 16 * solver.stats["factor_nnz"]  # complex factors live in MKL's memory
    solver.close()
    assert solver.calls[-1] == -1
    assert not np.any(solver._pt)
    assert mkl_memory_bytes() - base_bytes < 0.1 * used
    solver.close()  # a second close does nothing
    assert solver.calls.count(-1) == 1
    with PardisoSolver(s) as solver2:
        pass
    assert solver2.closed and solver2.calls == [11, -1]


class _UnsortedPardiso(PardisoSolver):
    """Feeds PARDISO a CSR structure with two column indices swapped (an invalid input)."""

    def _csr_structure(self):
        ia, ja, src = super()._csr_structure()
        ja[3], ja[4] = ja[4], ja[3]
        return ia, ja, src


@needs_pardiso
def test_pardiso_error_codes_become_clear_errors():
    with pytest.raises(PardisoError, match="PARDISO analysis failed with error -1: input inconsistent") as info:
        _UnsortedPardiso(grid_truss(4, 4))
    assert info.value.code == -1


@needs_pardiso
@needs_pardiso
def test_pardiso_sparse_rhs_partial_solve_is_exact_and_falls_back_for_dense_rhs():
    s = grid_truss(8, 6, g=0.02)
    rng = np.random.default_rng(3)
    dense_rhs = rng.standard_normal((s.n, 2)) + 1j * rng.standard_normal((s.n, 2))
    with PardisoSolver(s) as solver, PardisoSolver(s, sparse_rhs=None) as full:
        assert solver.options["sparse_rhs"] == (s.n - 1,)  # the point load's row
        assert full.options["sparse_rhs"] is None
        for omega in (0.0, 250.0, 900.0):
            ref = dense_solve(s, omega, s.b)
            assert rel_err(solver.solve(omega, s.b), ref) < 1e-10
            assert rel_err(full.solve(omega, s.b), ref) < 1e-10
            # a right-hand side that is not zero off the marked rows: full substitution
            assert rel_err(solver.solve_with_factor(omega, dense_rhs), dense_solve(s, omega, dense_rhs)) < 1e-10
            assert rel_err(solver.solve_with_factor(omega, 3j * s.b), 3j * ref) < 1e-10
        assert solver.stats["partial_solves"] == 6  # b and 3j b at each frequency, not the dense ones
        assert full.stats["partial_solves"] == 0
    # explicit rows: a load spread over two rows
    b2 = np.zeros(s.n)
    b2[[3, s.n - 2]] = [1.0, -2.0]
    s2 = System(K=s.K, C=s.C, M=s.M, b=b2, g=s.g)
    with PardisoSolver(s2, sparse_rhs=np.array([s.n - 2, 3])) as solver:
        assert rel_err(solver.solve(400.0, b2), dense_solve(s2, 400.0, b2)) < 1e-10
        assert solver.stats["partial_solves"] == 1
    # a dense load: "auto" leaves the partial solve off
    s3 = System(K=s.K, C=s.C, M=s.M, b=np.ones(s.n), g=s.g)
    with PardisoSolver(s3) as solver:
        assert solver.options["sparse_rhs"] is None
    with PardisoSolver(s, iparm={23: 1}) as solver:  # two-level factorization: no partial solve
        assert solver.options["sparse_rhs"] is None
        assert rel_err(solver.solve(300.0, s.b), dense_solve(s, 300.0, s.b)) < 1e-10


@needs_pardiso
def test_pardiso_auto_ordering_and_nested_dissection(monkeypatch):
    from femfreq.solvers import pardiso

    s = grid_truss(8, 6, g=0.02)
    perm = pardiso.nested_dissection(*s.pattern, s.n)
    assert np.array_equal(np.sort(perm), np.arange(s.n))  # a permutation
    spread = System(K=s.K, C=s.C, M=s.M, b=np.linspace(1, 2, s.n), g=s.g)  # a distributed load
    with PardisoSolver(s) as point, PardisoSolver(spread) as dense:
        # a point load keeps PARDISO's METIS and the sparse right-hand side solve ...
        assert point.ordering == "metis" and point.options["sparse_rhs"] == (s.n - 1,)
        # ... any other load gets the pymetis ordering as a user permutation
        assert dense.ordering == "pymetis" and dense._iparm[4] == 1 and dense.options["sparse_rhs"] is None
        assert np.array_equal(dense._perm, perm)
        for omega in (0.0, 300.0):
            assert rel_err(dense.solve(omega, spread.b), dense_solve(spread, omega, spread.b)) < 1e-10
    with pytest.raises(ValueError, match=r"iparm\[4\] conflicts with ordering='pymetis'"):
        PardisoSolver(s, ordering="pymetis", iparm={4: 1})
    with PardisoSolver(spread, iparm={4: 0}) as solver:  # "auto" leaves a user's iparm[4] to PARDISO
        assert solver.ordering == "metis"
        assert rel_err(solver.solve(300.0, spread.b), dense_solve(spread, 300.0, spread.b)) < 1e-10
    monkeypatch.setattr(pardiso, "_have_pymetis", lambda: False)
    with PardisoSolver(spread) as solver:
        assert solver.ordering == "metis"  # falls back without pymetis
    with pytest.raises(SolverUnavailableError, match="ordering 'pymetis' needs the pymetis package"):
        PardisoSolver(spread, ordering="pymetis")


def test_pardiso_rejects_bad_options():
    s = grid_truss(3, 3)
    with pytest.raises(ValueError, match="threads must be an integer >= 0 .got -1"):
        PardisoSolver(s, threads=-1)
    with pytest.raises(ValueError, match=r"unknown ordering 'rcm'; pick one of \['auto', 'amd', 'metis', 'parallel-metis', 'pymetis'\]"):
        PardisoSolver(s, ordering="rcm")
    with pytest.raises(ValueError, match=r"iparm keys must be 0-based indices 0..63 \(got 64\)"):
        PardisoSolver(s, iparm={64: 1})
    with pytest.raises(ValueError, match=r"iparm\[34\] is fixed by the binding"):
        PardisoSolver(s, iparm={34: 0})
    with pytest.raises(ValueError, match=r"sparse_rhs row 99 is out of range for n = 12"):
        PardisoSolver(s, sparse_rhs=[0, 99])
    with pytest.raises(ValueError, match=r"sparse_rhs must be 'auto', None or an array of row indices \(got 'yes'\)"):
        PardisoSolver(s, sparse_rhs="yes")
    with pytest.raises(ValueError, match=r"sparse_rhs must be a non-empty 1-D array of row indices"):
        PardisoSolver(s, sparse_rhs=[])


def test_superlu_rejects_bad_options():
    s = grid_truss(3, 3)
    with pytest.raises(ValueError, match="unknown permc_spec 'AMD'"):
        SuperLUSolver(s, permc_spec="AMD")
    with pytest.raises(ValueError, match=r"diag_pivot_thresh must be in \[0, 1\] \(got 2.0\)"):
        SuperLUSolver(s, diag_pivot_thresh=2)


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_inputs(name):
    s = grid_truss(3, 3)
    solver = get_solver(s, name)
    with pytest.raises(ValueError, match=rf"rhs must have shape \({s.n},\) or \({s.n}, k\) \(has shape \(5,\)\)"):
        solver.solve(1.0, np.ones(5))
    with pytest.raises(ValueError, match="omega must be finite .got nan"):
        solver.solve(float("nan"), s.b)
    with pytest.raises(TypeError, match="omega must be a real number"):
        solver.solve("fast", s.b)
    with pytest.raises(ValueError, match="rhs has a non-finite entry"):
        solver.solve(1.0, np.full(s.n, np.inf))
    with pytest.raises(TypeError, match="system must be a femfreq.system.System"):
        get_solver("not a system", name)


_HIDDEN_SCRIPT = """
import json, logging, io
import numpy as np
stream = io.StringIO()
logging.basicConfig(stream=stream, level=logging.INFO)
from femfreq.system import System
from femfreq.solvers import available_solvers, get_solver, SolverUnavailableError
s = System(K=[[2.0, -1.0], [-1.0, 2.0]], C=None, M=np.eye(2), b=[1.0, 0.0])
out = {"available": available_solvers(), "auto": get_solver(s).name}
out["x"] = get_solver(s).solve(0.5, s.b).real.tolist()
try:
    get_solver(s, "pardiso")
except SolverUnavailableError as exc:
    out["error"] = str(exc)
out["log"] = stream.getvalue()
print(json.dumps(out))
"""


def test_mkl_hidden_falls_back_to_superlu():
    env = dict(os.environ, FEMFREQ_NO_MKL="1")
    proc = subprocess.run([sys.executable, "-c", _HIDDEN_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["available"] == ["superlu"]
    assert out["auto"] == "superlu"
    np.testing.assert_allclose(out["x"], np.linalg.solve([[1.75, -1.0], [-1.0, 1.75]], [1.0, 0.0]))
    assert "solver 'pardiso' is not available: hidden by FEMFREQ_NO_MKL" in out["error"]
    assert "using superlu (pardiso unavailable: hidden by FEMFREQ_NO_MKL=1)" in out["log"]


@pytest.mark.skipif(not pardiso_available(), reason="needs the MKL runtime (PARDISO)")
@pytest.mark.parametrize("analysed, used", [(2, 1), (1, 2)])
def test_a_kept_real_factorization_solves_right_whatever_threads_the_next_caller_has(analysed, used):
    """A dask worker with 2 threads keeps the fast sweep's analysis for its next chunks. One
    chunk analysed with 2 MKL threads, the next refactored and solved with 1 (or the other
    way round): PARDISO then returned garbage (residual 5.8 / 630 here) and the sweep
    failed. The factorization keeps the thread count of its analysis."""
    from femfreq.model import load_model
    from femfreq.solvers.pardiso import mkl_threads
    from femfreq.solvers.pardiso_real import RealSymmetricPardiso

    K, _, M, b = load_model("satellite", level=1).matrices()
    P = sp.triu(abs(K) + abs(M) + sp.eye(K.shape[0]), format="csr")
    P.sort_indices()

    def on_pattern(A):
        A = sp.triu(A + 0.0 * P, format="csr")
        A.sort_indices()
        assert np.array_equal(A.indptr, P.indptr) and np.array_equal(A.indices, P.indices)
        return A.data

    with mkl_threads(analysed):
        F = RealSymmetricPardiso(P.indptr, P.indices, on_pattern(K - 1e5 * M))
    try:
        A = K - 3e5 * M
        with mkl_threads(used):
            F.refactor(on_pattern(A))
            x = F.solve(b.real)
    finally:
        F.close()
    assert F.threads == analysed
    assert np.linalg.norm(A @ x - b.real) <= 1e-10 * np.linalg.norm(b.real)


@needs_pardiso
def test_real_symmetric_pardiso_close_survives_a_failed_release(monkeypatch):
    from femfreq.solvers import pardiso_real
    from femfreq.solvers.pardiso_real import RealSymmetricPardiso

    A = sp.triu(sp.diags([-1.0, 4.0, -1.0], [-1, 0, 1], shape=(6, 6)), format="csr")
    F = RealSymmetricPardiso(A.indptr, A.indices, A.data)
    pt = F._pt.copy()
    real = pardiso_real._pardiso
    monkeypatch.setattr(pardiso_real, "_pardiso", lambda *a, **k: -1 if a[3] == -1 else real(*a, **k))
    F.close()  # a release that fails is not raised from close (nor from the finaliser)
    F.close()
    assert not np.any(F._pt)
    monkeypatch.setattr(pardiso_real, "_pardiso", real)
    F._pt[:] = pt  # free it for real
    F._alive = True
    F.close()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), density=st.floats(0.0, 0.6), diag=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_upper_triangle_matches_scipy_triu_with_the_whole_diagonal(n, density, diag, seed):
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=density, random_state=rng, format="csc")
    A = (A + A.T).tolil()
    A.setdiag(np.where(rng.random(n) < diag, 1.0 + rng.random(n), 0.0))  # some diagonals absent
    A = sp.csc_matrix(A)
    A.eliminate_zeros()
    A.sort_indices()
    ia, ja, src = upper_triangle(A.indptr, A.indices, n)
    for i in range(n):  # each row sorted, starting at its diagonal
        row = ja[ia[i]:ia[i + 1]]
        assert row.size and row[0] == i and np.all(np.diff(row) > 0)
    values, doubled = values_on(src, A.data, 2 * A.data)
    np.testing.assert_array_equal(values, np.r_[A.data, 0.0][src])
    np.testing.assert_array_equal(doubled, 2 * values)
    U = sp.csr_matrix((values, ja, ia), shape=(n, n))
    pattern = sp.triu(abs(A) + sp.eye(n), format="csr")  # the upper triangle plus the diagonal
    assert np.array_equal(U.indptr, pattern.indptr) and np.array_equal(U.indices, pattern.indices)
    assert np.array_equal(U.toarray(), sp.triu(A).toarray())  # values from A, 0 where inserted
    # keep=False drops an entry, never a diagonal one
    keep = rng.random(A.nnz) < 0.5
    ia, ja, src = upper_triangle(A.indptr, A.indices, n, keep=keep)
    kept = sp.csc_matrix((np.where(keep, 1.0, 0.0), A.indices, A.indptr), shape=(n, n))
    kept.eliminate_zeros()
    pattern = sp.triu(kept.T + sp.eye(n), format="csr")  # the kept entries of column j, rows >= j
    assert np.array_equal(ia, pattern.indptr) and np.array_equal(ja, pattern.indices)


@needs_pardiso
def test_explicit_zeros_stay_out_of_pardiso_and_out_of_the_answer():
    s = grid_truss(6, 5, g=0.02)
    n, K = s.n, s.K.tocoo()
    far = np.array([0, 1, 2, 3]), np.array([n - 1, n - 2, n - 3, n - 4])  # not coupled in K
    rows, cols = np.r_[K.row, far[0], far[1]], np.r_[K.col, far[1], far[0]]
    Kz = sp.csc_matrix((np.r_[K.data, np.zeros(8)], (rows, cols)), shape=K.shape)  # 8 stored zeros
    z = System(K=Kz, C=s.C, M=s.M, b=s.b, g=0.02)
    assert z.nnz == s.nnz + 8  # the zeros are stored entries of the System
    with PardisoSolver(s) as plain, PardisoSolver(z) as zeros:
        assert zeros._ja.size == plain._ja.size  # ... but not entries of the factored matrix
        omega = 2 * np.pi * 37.0
        x = zeros.solve(omega, z.b.astype(complex))
        dense = np.linalg.solve(z.dynamic_matrix(omega).toarray(), z.b)
        assert np.allclose(x, dense, rtol=1e-10, atol=1e-12 * np.abs(dense).max())
