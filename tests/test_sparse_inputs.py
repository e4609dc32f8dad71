"""Every sparse matrix that enters femfreq has its structure checked before scipy reads it.

scipy's compiled routines trust the compressed arrays of a matrix: a column pointer that
decreases or an index out of range reads and writes outside the arrays (a C++ exception
at best, heap corruption at worst). These tests craft such matrices at each entry point
(MATLAB v7.3 files, the CLI, ``femfreq.System``, MATLAB triplets) and ask for a clean
``ValueError`` naming the matrix; the CLI cases run in a real process, so an abort would
show as its exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import femfreq
from femfreq import matlab
from helpers import write_matlab_v73_sparse

N = 6
#: the fuzz targets run in a child process (test_fuzz_in_a_child_process): on unchecked input
#: scipy aborts or segfaults, which must fail one test, not kill the test session
in_child = pytest.mark.skipif(os.environ.get("FEMFREQ_FUZZ_CHILD") != "1",
                              reason="run by test_fuzz_in_a_child_process")
_DENSE = {"M": np.eye(N), "b": np.ones(N), "freqs": np.array([1.0, 2.0])}


def _raw_csc(indptr, indices, data, shape, fmt="csc"):
    """A scipy matrix holding the arrays as given (scipy's own checks bypassed, as a buggy
    producer or a mutated matrix would leave them)."""
    A = (sp.csc_matrix if fmt == "csc" else sp.csr_matrix)(shape)
    A.indptr, A.indices, A.data = indptr, indices, data
    return A


def _good():
    A = sp.csc_matrix(np.diag(np.arange(1.0, N + 1)) + np.eye(N, k=1))
    return A.indptr.astype(np.int64), A.indices.astype(np.int64), A.data.copy()


_int = st.integers(min_value=-3, max_value=3 * N)


@st.composite
def _crafted(draw):
    """Sparse arrays near a valid matrix: a pointer moved, an index shifted, a value broken,
    an array cut or lengthened."""
    indptr, indices, data = _good()
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["ptr", "idx", "val", "cut_idx", "cut_ptr", "grow"]))
        if what == "ptr" and indptr.size:
            indptr[draw(st.integers(0, indptr.size - 1))] = draw(_int)
        elif what == "idx" and indices.size:
            indices[draw(st.integers(0, indices.size - 1))] = draw(_int)
        elif what == "val" and data.size:
            data[draw(st.integers(0, data.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e308]))
        elif what == "cut_idx":
            k = draw(st.integers(0, indices.size))
            indices, data = indices[:k], data[:k]
        elif what == "cut_ptr":
            indptr = indptr[: draw(st.integers(0, indptr.size))]
        else:
            indices = np.append(indices, draw(_int))
            data = np.append(data, 1.0)
    return indptr, indices, data


def _clean(call):
    """Run ``call``: it succeeds, or raises a ValueError (a broken structure names K; a
    valid one with extreme values may be singular), never anything else."""
    try:
        call()
    except ValueError as exc:
        assert "K" in str(exc) or "singular" in str(exc), str(exc)


@in_child
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=_crafted(), n_rows=st.sampled_from([N, N - 1, N + 1, 0]))
def test_crafted_v73_mat_is_a_clean_error(tmp_path, arrays, n_rows):
    indptr, indices, data = arrays
    path = tmp_path / "crafted.mat"
    write_matlab_v73_sparse(path, "K", np.uint64(n_rows), indptr.astype(np.uint64) if indptr.min(initial=0) >= 0
                            else indptr, indices.astype(np.int64), data, **_DENSE)
    _clean(lambda: matlab.read_mat_input(path))


@in_child
@settings(max_examples=150, deadline=None)
@given(arrays=_crafted(), fmt=st.sampled_from(["csc", "csr"]))
def test_crafted_matrix_to_system_is_a_clean_error(arrays, fmt):
    indptr, indices, data = arrays
    K = _raw_csc(indptr, indices, data, (N, N), fmt)
    _clean(lambda: femfreq.System(K=K, C=None, M=sp.eye(N), b=np.ones(N)))


@in_child
@settings(max_examples=60, deadline=None)
@given(arrays=_crafted())
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_crafted_matrix_to_solve_is_a_clean_error(arrays):
    K = _raw_csc(*arrays, (N, N))
    _clean(lambda: femfreq.solve(K, None, sp.eye(N), np.ones(N), freqs_hz=[1.0], cluster=None, progress=False))


@pytest.mark.parametrize("mutate, match", [
    (lambda A: A.indptr.__setitem__(3, 1), r"K: the column pointers decrease at column 2"),
    (lambda A: A.indices.__setitem__(0, 10**6), r"K: index 1000000 \(entry 0\) is out of range \[0, 6\)"),
    (lambda A: A.indices.__setitem__(0, -1), r"K: index -1 \(entry 0\) is out of range"),
    (lambda A: A.data.__setitem__(0, np.nan), r"K: non-finite value nan"),
])
def test_system_names_the_fault(mutate, match):
    K = sp.csc_matrix(np.diag(np.arange(1.0, N + 1)))
    mutate(K)
    with pytest.raises(ValueError, match=match):
        femfreq.System(K=K, C=None, M=sp.eye(N), b=np.ones(N))


def test_coo_out_of_range_is_refused():
    K = sp.coo_matrix(np.eye(N))
    K.row[0] = 2 * N
    with pytest.raises(ValueError, match=r"K: row index 12 \(entry 0\) is out of range \[0, 6\)"):
        femfreq.System(K=K, C=None, M=sp.eye(N), b=np.ones(N))


def test_fuzz_in_a_child_process():
    """The hypothesis targets above, in a child pytest: an abort shows as its exit code."""
    env = dict(os.environ, FEMFREQ_FUZZ_CHILD="1", PYTHONPATH=str(Path(femfreq.__file__).parents[1]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "crafted_"],
                       capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).parent)
    assert r.returncode == 0, f"exit code {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-500:]


def _crafted_files(folder: Path) -> dict[str, Path]:
    """Crafted v7.3 inputs that made scipy fail with C++ messages, huge allocations or tracebacks."""
    n = 50
    ir = (np.arange(3 * n) % n).astype(np.uint64)
    files = {}
    for name, jc, ir_ in [
        ("dip", np.r_[np.arange(10) * 3, 1, np.arange(11, n + 1) * 3], ir),      # pointers go down
        ("bump", np.r_[np.arange(5) * 3, 100, np.arange(6, n + 1) * 3], ir),     # and then down again
        ("huge_index", np.arange(n + 1) * 3, np.full(3 * n, 2**40, np.uint64)),  # row index 2**40
        ("end_beyond", np.r_[np.arange(n) * 3, 10**6], ir),                      # ends past the data
    ]:
        path = folder / f"{name}.mat"
        write_matlab_v73_sparse(path, "K", np.uint64(n), np.asarray(jc, np.uint64), ir_, np.ones(3 * n),
                                M=np.eye(n), b=np.ones(n), freqs=np.array([1.0, 2.0]))
        files[name] = path
    return files


def test_crafted_mat_through_the_cli_is_one_line_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(femfreq.__file__).parents[1]))
    for name, path in _crafted_files(tmp_path).items():
        r = subprocess.run([sys.executable, "-m", "femfreq", "sweep", "--matrices", str(path), "-o",
                            str(tmp_path / f"{name}_out.mat"), "--serial", "--no-progress"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 2, (name, r.returncode, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"femfreq: error: {path}: K: "), (name, r.stderr)
        assert not (tmp_path / f"{name}_out.mat").exists()
