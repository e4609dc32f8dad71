"""The solvers' one cache owner and one MKL loader, through femfreq.solve and femfreq.solvers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import femfreq
from femfreq.solvers import (
    DirectSolver,
    available_solvers,
    cache_info,
    clear_caches,
    get_solver,
    mkl_available,
    register_solver,
)
from femfreq.system import System
from helpers import grid_system


def _light(m=8):
    """A grid of springs with light viscous damping (the fast sweep plans by mode weights)."""
    s = grid_system(m, g=0.0)
    return System(K=s.K, C=1e-6 * s.K, M=s.M, b=s.b, output_dofs=s.output_dofs)


_NO_MKL_SCRIPT = """
import json
import numpy as np
import femfreq
from helpers import grid_system
from femfreq.system import System

s = grid_system(8, g=0.0)
light = System(K=s.K, C=1e-6 * s.K, M=s.M, b=s.b, output_dofs=s.output_dofs)
out = {}
for name, system in (("light", light), ("damped", s)):
    r = femfreq.solve(system, freqs_hz=np.linspace(0.0, 40.0, 33), method="fast", cluster=None, progress=False)
    out[name] = [float(np.nanmax(r.rel_residual)), sorted(set(int(c) for c in r.method))]
out["maps"] = [line.split()[-1] for line in open("/proc/self/maps") if "mkl" in line.lower()]
print(json.dumps(out))
"""


def test_no_mkl_fast_sweep_never_loads_mkl():
    tests = os.path.dirname(__file__)
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, FEMFREQ_NO_MKL="1", PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-c", _NO_MKL_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["maps"] == []  # libmkl_rt never mapped into the process
    for name in ("light", "damped"):
        worst, codes = out[name]
        assert worst <= 1e-6 and set(codes) <= {1, 2}


def test_serial_fast_sweep_frees_its_factorization():
    clear_caches()
    r = femfreq.solve(_light(), freqs_hz=np.linspace(0.0, 40.0, 33), method="fast", cluster=None,
                      progress=False)
    assert np.nanmax(r.rel_residual) <= 1e-6
    assert cache_info() == {"direct_solvers": 0, "factorizations": 0}


def test_serial_direct_sweep_frees_its_solvers():
    clear_caches()
    femfreq.solve(grid_system(6), freqs_hz=[1.0, 2.0, 3.0], method="direct", cluster=None, progress=False)
    assert cache_info() == {"direct_solvers": 0, "factorizations": 0}


def test_clear_caches_frees_direct_solvers_and_fast_factorizations():
    from femfreq.solvers.fast import solve_band

    clear_caches()
    system = _light()
    direct = get_solver(system, "superlu")
    solve_band(system, np.linspace(1.0, 30.0, 12), np.ones(12))
    info = cache_info()
    assert info["direct_solvers"] >= 1
    assert info["factorizations"] == (1 if mkl_available() else 0)  # SuperLU has no analysis to keep
    clear_caches()
    assert direct.closed
    assert cache_info() == {"direct_solvers": 0, "factorizations": 0}


class _DenseSolver(DirectSolver):
    """A toy backend: numpy's dense solve (what a third-party backend looks like)."""

    name = "dense"

    def _analyse(self):
        pass

    def _factor_solve(self, omega, B):
        self._A = self.system.dynamic_matrix(omega).toarray()
        return np.linalg.solve(self._A, B)

    def _solve_factored(self, B):
        return np.linalg.solve(self._A, B)


def test_a_registered_backend_is_reachable_by_name():
    register_solver("dense", _DenseSolver)
    try:
        s = grid_system(4)
        assert "dense" in available_solvers()
        x = get_solver(s, "dense").solve(3.0, s.b)
        ref = np.linalg.solve(s.dynamic_matrix(3.0).toarray(), s.b)
        np.testing.assert_allclose(x, ref, rtol=1e-12)
    finally:
        from femfreq.solvers import _BACKENDS

        clear_caches()
        _BACKENDS.pop("dense", None)
    with pytest.raises(TypeError, match="cls must be a DirectSolver subclass"):
        register_solver("bad", dict)


def test_frobenius_norm_is_the_norm_of_the_dynamic_matrix():
    rng = np.random.default_rng(1)
    A = sp.random(12, 12, density=0.3, random_state=2)
    K = A @ A.T + sp.eye(12)
    s = System(K=K, C=0.01 * K + sp.diags(rng.random(12)), M=sp.eye(12), b=np.ones(12), g=0.03)
    omegas = np.array([0.0, 0.7, 5.0, 80.0])
    expected = [np.linalg.norm(s.dynamic_matrix(w).toarray()) for w in omegas]
    np.testing.assert_allclose(s.frobenius_norm(omegas), expected, rtol=1e-12)
    assert isinstance(s.frobenius_norm(5.0), float)
