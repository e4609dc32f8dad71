"""Workers femfreq starts: their malloc environment, their threads, and how many fit in memory."""

from __future__ import annotations

import ast
import contextlib
import logging
import os

import numpy as np
import pytest

from femfreq.errors import ClusterError
from femfreq.execute import MALLOC_ENV, WORKER_ENV_SETTING, open_client, solve_chunk
from femfreq.options import Direct, Fast, JobQueue, Local
from femfreq.plan import WORKER_BASE_BYTES, plan_workers, worker_memory_bytes
from femfreq.solvers import pardiso_available
from tests.helpers import grid_system, square_truss

needs_mkl = pytest.mark.skipif(not pardiso_available()[0], reason="MKL PARDISO not available")


# -- plan_workers: pure numbers ---------------------------------------------------------
@pytest.mark.parametrize(
    "cores, memory, per_worker, kwargs, expected",
    [
        (8, 16e9, 2e9, {}, (8, 1)),  # everything fits: one worker per core
        (8, 5e9, 2e9, {}, (2, 4)),  # memory for two: the cores become threads
        (8, 7e9, 2e9, {}, (3, 2)),  # 3 fit; 8 // 3 = 2 threads each (no oversubscription)
        (2, 1e12, 0.0, {}, (2, 1)),  # memory does not limit
        (1, 3e9, 2e9, {}, (1, 1)),
        (8, 16e9, 2e9, {"threads_per_worker": 2}, (4, 2)),
        (8, 5e9, 2e9, {"threads_per_worker": 2}, (2, 2)),  # threads kept, workers by memory
        (2, 16e9, 2e9, {"threads_per_worker": 4}, (1, 4)),  # more threads than cores: one worker
        (8, 16e9, 2e9, {"n_workers": 2}, (2, 4)),
        (8, 16e9, 2e9, {"n_workers": 3, "threads_per_worker": 1}, (3, 1)),
        (2, 16e9, 2e9, {"n_workers": 4}, (4, 1)),  # more workers than cores: the user's choice
    ],
)
def test_plan_workers_fits_workers_and_shares_cores(cores, memory, per_worker, kwargs, expected):
    assert plan_workers(cores, memory, per_worker, **kwargs) == expected


def test_plan_workers_refuses_a_worker_that_does_not_fit():
    with pytest.raises(ClusterError, match=r"^level 7 needs ~2\.0 GB per worker; this machine has 1\.5 GB "
                                           r"available: not one worker fits"):
        plan_workers(2, 1.5e9, 2.0e9, what="level 7")


def test_plan_workers_refuses_more_workers_than_fit():
    with pytest.raises(ClusterError, match=r"3 workers do not fit, 2 do \(n_workers=2"):
        plan_workers(8, 5e9, 2e9, n_workers=3)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((0, 1e9, 1e8), {}, ValueError, "cores must be >= 1"),
        ((2, 0, 1e8), {}, ValueError, "memory_bytes must be finite and > 0"),
        ((2, 1e9, -1), {}, ValueError, "per_worker_bytes must be finite and >= 0"),
        ((2, 1e9, 1e8), {"n_workers": 0}, ValueError, "n_workers must be >= 1"),
        ((2, 1e9, 1e8), {"threads_per_worker": 1.5}, TypeError, "threads_per_worker must be an integer"),
    ],
)
def test_plan_workers_checks_its_numbers(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        plan_workers(*args, **kwargs)


# -- worker_memory_bytes: against what PARDISO reports ------------------------------------
@needs_mkl
def test_worker_memory_estimate_covers_pardisos_own_factor_memory():
    from femfreq.model import load_model
    from femfreq.solvers import PardisoSolver

    system = load_model("satellite", level=3).system()  # the smallest mesh of the fit (levels 3-5)
    solver = PardisoSolver(system)
    solver.solve(100.0, system.b)
    reported = 1024 * (solver.stats["factor_memory_kb"] + solver.stats["analysis_memory_kb"])
    solver.close()
    estimate = worker_memory_bytes(system.n, system.nnz, Direct())
    # the factor's share of the estimate covers PARDISO's figure, within a factor of 2
    factor_part = estimate - WORKER_BASE_BYTES - 45.0 * system.nnz
    assert reported <= factor_part <= 2 * reported
    assert worker_memory_bytes(system.n, system.nnz, Fast()) > WORKER_BASE_BYTES
    assert worker_memory_bytes(4 * system.n, 4 * system.nnz) > estimate  # grows with the model


def test_worker_memory_estimate_checks_its_inputs():
    with pytest.raises(ValueError, match="method must be 'direct' or 'fast'"):
        worker_memory_bytes(100, 1000, "modal")
    with pytest.raises(ValueError, match="n must be >= 1"):
        worker_memory_bytes(0, 1000)


# -- Local: refused before any worker starts ------------------------------------------------
def _children() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_local_cluster_that_cannot_fit_is_refused_before_any_worker_starts():
    before = _children()
    with pytest.raises(ClusterError, match=r"^level 7 needs ~2\.0 GB per worker; this machine has 1\.5 GB"):
        with open_client(Local(n_workers=1, memory_limit="1.5GB", dashboard=False), worker_bytes=2.0e9,
                         what="level 7"):
            pytest.fail("a cluster started")
    assert _children() <= before


def test_solve_refuses_a_local_cluster_smaller_than_one_worker_process():
    import femfreq

    before = _children()
    with pytest.raises(ClusterError, match="not one worker fits"):
        femfreq.solve(square_truss(n=3), freqs_hz=[1.0, 2.0], cluster=Local(memory_limit="50MB", dashboard=False),
                      progress=False)
    assert _children() <= before



def test_a_model_whose_system_fails_while_its_cluster_starts_leaves_nothing_behind(tmp_path, caplog):
    """A Model's System is built while its embedded cluster starts: a build that fails
    raises its own error, closes the cluster and writes no file."""
    import dataclasses

    import femfreq

    import psutil

    def workers():  # multiprocessing's resource tracker stays for the life of this process: not a worker
        found = set()
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found.add(child.pid)
        return found

    model = dataclasses.replace(square_truss(n=3), b_full=None)  # no load, no base: no System
    before = workers()
    caplog.set_level(logging.INFO, logger="femfreq.execute")
    with pytest.raises(ValueError, match="has no load"):
        femfreq.solve(model, freqs_hz=[1.0, 2.0], cluster=Local(n_workers=1, dashboard=False),
                      out=tmp_path / "r.h5", progress=False)
    assert any("local dask cluster" in r.getMessage() for r in caplog.records)  # it had started, and closed
    assert workers() <= before
    assert not (tmp_path / "r.h5").exists()


def test_model_pattern_bound_is_a_tight_upper_bound():
    model = square_truss(n=5)
    nnz = model.system().nnz
    assert nnz <= model.pattern_nnz() <= 1.05 * nnz + 16  # free-free: only the fixed DOF's entries differ


@pytest.mark.parametrize("value, message", [("lots", "memory_limit must be bytes or a size"),
                                            (0, "memory_limit must be finite and > 0")])
def test_local_memory_limit_is_checked(value, message):
    with pytest.raises(ValueError, match=message):
        Local(memory_limit=value)


# -- a real 2-thread worker ------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_thread_worker():
    with open_client(Local(n_workers=1, threads_per_worker=2, dashboard=False)) as client:
        yield client


def _worker_env(name):
    return os.environ.get(name)


def test_workers_femfreq_starts_reuse_large_arrays_from_the_heap(two_thread_worker):
    # dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536; femfreq's workers get MALLOC_ENV instead
    from femfreq.execute import MALLOC_ENV

    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) >= 2**27 and int(MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]) >= 2**28
    for name, wanted in MALLOC_ENV.items():
        (value,) = two_thread_worker.run(_worker_env, name).values()
        assert value == wanted, name
    (mkl,) = two_thread_worker.run(_worker_env, "MKL_NUM_THREADS").values()
    assert mkl == "1"  # the nanny's other settings stay
    # what the setting is for: a 64 MB array allocated again and again is not faulted in again
    (faults,) = two_thread_worker.run(_refaults, 64).values()
    assert faults < 100, faults


def _refaults(mb):
    """Minor page faults of allocating and filling an ``mb`` MB array, after a first such array was freed."""
    import resource

    n = mb * 2**20 // 8
    a = np.ones(n)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(n)
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_femfreq_workers_get_their_setting_after_a_plain_dask_cluster_set_dasks_here(monkeypatch):
    # a dask nanny leaves its pre-spawn environment in the process that started it
    from distributed import LocalCluster

    from femfreq.execute import MALLOC_ENV

    for name in MALLOC_ENV:
        monkeypatch.delenv(name, raising=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None):
        pass
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == "65536"
    with open_client(Local(n_workers=1, dashboard=False)) as client:
        got = {name: next(iter(client.run(_worker_env, name).values())) for name in MALLOC_ENV}
    assert got == MALLOC_ENV
    # this process's own environment is left as found: dask's value, and no mmap threshold
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == "65536"
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ


@needs_mkl
def test_a_two_thread_worker_factors_with_two_threads(two_thread_worker):
    system = grid_system(m=12)
    freqs = np.array([3.0, 5.0])
    args = (system, np.arange(2), freqs, np.ones(2, complex))
    reference = solve_chunk(*args, Direct(solver="pardiso"))
    assert reference.info["threads"] == 1  # in this process: the solver's default
    got = two_thread_worker.submit(solve_chunk, *args, Direct(solver="pardiso"), pure=False).result()
    assert got.info == {"solver": "pardiso", "threads": 2}
    np.testing.assert_allclose(got.response, reference.response, rtol=1e-10)
    pinned = two_thread_worker.submit(solve_chunk, *args, Direct(solver="pardiso", solver_options={"threads": 1}),
                                      pure=False).result()
    assert pinned.info["threads"] == 1  # the user's solver_options win


@needs_mkl
def test_a_fast_chunk_alone_on_a_two_thread_worker_uses_both(two_thread_worker):
    system = grid_system(m=12)
    freqs = np.linspace(1.0, 20.0, 12)
    args = (system, np.arange(12), freqs, np.ones(12, complex), Fast())
    got = two_thread_worker.submit(solve_chunk, *args, pure=False).result()
    assert got.info["threads"] == 2
    assert solve_chunk(*args).info["threads"] == 1
    assert np.all(got.rel_residual <= 1e-6)


def test_jobqueue_workers_get_the_malloc_setting_in_their_job_script():
    pytest.importorskip("dask_jobqueue")
    opts = {"memory": "1GB", "job_script_prologue": ["module load x"]}
    with open_client(JobQueue("slurm", n_workers=0, options=opts, timeout=10)) as client:
        script = client.cluster.job_script()
    assert "module load x" in script
    name, value = WORKER_ENV_SETTING
    assert f'export {name}="{value}"' in script
    assert ast.literal_eval(value) == MALLOC_ENV  # what dask reads from that variable
