"""How the System reaches the workers: lean pickles, the model recipe, one upload, retiring workers."""

from __future__ import annotations

import logging
import pickle
import shutil
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import femfreq
from femfreq.execute import open_client, run_on_dask
from femfreq.execute.task import solve_chunk
from femfreq.model import load_model, models_dir
from femfreq.options import Direct, Scheduler
from femfreq.system import System
from helpers import assemble, grid_system

DIRECT = Direct(solver="superlu")


def same_array(a, b):
    """Equal dtype, shape and bits (so -0.0 and 0.0 differ)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_identical(s, t):
    for name in "KCM":
        A, B = getattr(s, name), getattr(t, name)
        assert type(A) is type(B) and A.shape == B.shape, name
        for part in ("data", "indices", "indptr"):
            assert same_array(getattr(A, part), getattr(B, part)), (name, part)
    for name in ("k_values", "c_values", "m_values", "b", "output_dofs"):
        assert same_array(getattr(s, name), getattr(t, name)), name
    for a, b in zip(s.pattern, t.pattern):
        assert same_array(a, b)
    assert (s.g, s.name, s.token, s.n, s.nnz) == (t.g, t.name, t.token, t.n, t.nnz)
    assert s.digest() == t.digest()


@st.composite
def systems(draw):
    n = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def sparse(density, zeros):
        A = sp.random(n, n, density=density, random_state=rng, format="csc")
        A = A + A.T + sp.eye(n)
        A = sp.csc_matrix(A)
        if zeros and A.nnz:  # explicit zeros stay stored entries
            A.data[rng.random(A.nnz) < 0.2] = 0.0
        return A

    K = sparse(draw(st.floats(0.0, 1.0)), draw(st.booleans()))
    M = sp.diags(rng.random(n) + 0.1, format="csc") if draw(st.booleans()) else sparse(0.3, False)
    alpha = draw(st.sampled_from([0.0, 1e-3, 2.5, 1 / 3]))
    beta = draw(st.sampled_from([0.0, 4e-3, 1e-5, 1 / 7]))
    kind = draw(st.sampled_from(["none", "proportional", "other"]))
    C = {"none": None, "proportional": (alpha * M + beta * K).tocsc(), "other": sparse(0.5, True)}[kind]
    b = rng.standard_normal(n) + (1j * rng.standard_normal(n) if draw(st.booleans()) else 0)
    out = np.sort(rng.choice(n, size=draw(st.integers(1, n)), replace=False))
    return System(K=K, C=C, M=M, b=b, g=draw(st.sampled_from([0.0, 0.02])), output_dofs=out, name="h")


@settings(max_examples=150, deadline=None)
@given(systems())
def test_lean_pickle_restores_every_array_bit_for_bit(system):
    if system.n > 3:
        system.is_symmetric  # noqa: B018 - a computed property travels too
    assert_identical(system, pickle.loads(pickle.dumps(system, protocol=5)))
    assert_identical(system, pickle.loads(pickle.dumps(system)))


def test_lean_pickle_of_a_model_with_proportional_damping_is_under_a_third_of_the_arrays():
    system = load_model("satellite", level=2).system()  # C = 0.004 K
    arrays = sum(a.nbytes for A in (system.K, system.C, system.M) for a in (A.data, A.indices, A.indptr))
    arrays += sum(a.nbytes for a in (system.k_values, system.c_values, system.m_values, *system.pattern))
    lean = len(pickle.dumps(system, protocol=5))
    # K's values and the pattern's row indices (12 bytes per entry) and little else
    assert lean < 13 * system.nnz + 40 * system.n
    assert lean < arrays / 3


def test_sweep_answers_unchanged_through_a_pickle():
    system = load_model("satellite", level=1).system()
    freqs = np.linspace(5.0, 400.0, 7)
    load = np.ones(freqs.size, complex)
    before = solve_chunk(system, np.arange(freqs.size), freqs, load, DIRECT)
    after = solve_chunk(pickle.loads(pickle.dumps(system)), np.arange(freqs.size), freqs, load, DIRECT)
    assert same_array(before.response, after.response)


@pytest.fixture
def cluster3(dask_processes):
    address = dask_processes.scheduler()
    dask_processes.workers(address, 3)
    return address


def _model_copy(tmp_path):
    for f in models_dir().glob("satellite.*"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "satellite.toml"


def test_a_model_reaches_the_workers_as_its_recipe(cluster3, tmp_path, caplog):
    model = load_model(_model_copy(tmp_path), level=2)
    freqs = "20:300:24"
    serial = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=None, progress=False)
    with caplog.at_level(logging.INFO, logger="femfreq.execute.on_dask"):
        got = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=Scheduler(cluster3, n_workers=3),
                            progress=False)
    assert "sent the model recipe" in caplog.text and "to 3 workers" in caplog.text
    np.testing.assert_allclose(got.response, serial.response, rtol=1e-10, atol=0)  # serial: other threads


def test_a_worker_that_builds_another_system_gets_it_uploaded(cluster3, tmp_path, caplog):
    path = _model_copy(tmp_path)
    model = load_model(path, level=2)
    freqs = "20:300:12"
    serial = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=None, progress=False)
    # the file changes after the client read it: the workers' System differs in K
    path.write_text(path.read_text().replace("E = 1.0e7", "E = 2.0e7", 1))
    with caplog.at_level(logging.INFO, logger="femfreq.execute.on_dask"):
        got = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=Scheduler(cluster3, n_workers=3),
                            progress=False)
    assert "could not build the system" in caplog.text and "differs from the client's in K" in caplog.text
    assert "uploaded the system" in caplog.text
    np.testing.assert_allclose(got.response, serial.response, rtol=1e-10, atol=0)  # serial: other threads


def _file_route(cluster3, shared_dir, system):
    """A 12-frequency sweep through run_on_dask on the 3-worker cluster (``shared_dir`` None:
    the upload); checked against the serial result. ``(system, stats, holders, workers)``."""
    freqs = np.linspace(0.0, 30.0, 12)
    load = np.ones(freqs.size, complex)
    holders = []
    with open_client(Scheduler(cluster3, n_workers=3)) as client:
        def plan(system_future):
            holders.extend(client.who_has([system_future])[system_future.key])
            return [(np.array([i]), freqs[i:i + 1], load[i:i + 1]) for i in range(freqs.size)]

        stats = {}
        results = list(run_on_dask(client, system, plan, method=DIRECT, stats=stats, shared_dir=shared_dir))
        workers = set(client.scheduler_info()["workers"])
    serial = solve_chunk(system, np.arange(freqs.size), freqs, load, DIRECT).response
    np.testing.assert_allclose(assemble(results, freqs.size, system.output_dofs.size), serial, rtol=1e-10, atol=0)
    return system, stats, set(holders), workers


def test_matrices_are_uploaded_once_and_every_worker_holds_them(cluster3):
    _, stats, holders, workers = _file_route(cluster3, None, grid_system(8))
    assert stats["system_route"] == "upload" and holders == workers and len(workers) == 3


def test_workers_on_this_machine_load_the_system_from_one_file(cluster3, tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    with caplog.at_level(logging.INFO, logger="femfreq.execute.on_dask"):
        system, stats, holders, workers = _file_route(cluster3, shared, grid_system(8))
    assert stats["system_route"] == "file" and holders == workers and len(workers) == 3
    assert stats["scatter_bytes"] < 2000  # the handle, not the matrices
    assert "workers loaded it from there" in caplog.text
    assert [p.name for p in shared.iterdir()] == [f"system-{system.token}.pickle"]  # no temporary left


def test_a_file_the_workers_cannot_use_falls_back_to_the_upload(cluster3, tmp_path, caplog):
    # a file of another System where this one's should be: every worker refuses it
    system = grid_system(8)
    other = grid_system(6)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / f"system-{system.token}.pickle").write_bytes(pickle.dumps(other))
    with caplog.at_level(logging.INFO, logger="femfreq.execute.on_dask"):
        _, stats, holders, workers = _file_route(cluster3, shared, system)
    assert stats["system_route"] == "upload" and holders == workers
    assert "could not load the system" in caplog.text and "holds another system" in caplog.text


def test_an_embedded_cluster_sweep_reads_one_file_and_leaves_none(tmp_path, monkeypatch, caplog):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = load_model("satellite", level=1)
    with caplog.at_level(logging.INFO, logger="femfreq.execute.on_dask"):
        got = femfreq.solve(model, freqs_hz="20:300:6", method=DIRECT, cluster=femfreq.Local(n_workers=2),
                            progress=False, out=tmp_path / "r.h5")
    assert "2 workers loaded it from there" in caplog.text
    serial = femfreq.solve(model, freqs_hz="20:300:6", method=DIRECT, cluster=None, progress=False)
    np.testing.assert_allclose(got.response, serial.response, rtol=1e-10, atol=0)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("femfreq")]  # the System's file went


def test_a_worker_retiring_mid_sweep_costs_no_frequency(cluster3):
    # what a batch job's walltime does (dask-jobqueue --lifetime): the worker retires gracefully
    model = load_model("satellite", level=2)
    freqs = "10:600:30"
    serial = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=None, progress=False)
    retired = []

    def retire_one():
        from distributed import Client

        with Client(cluster3, timeout=30) as watcher:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = {w: keys for w, keys in watcher.processing().items()
                        if any("femfreq-chunk" in str(k) for k in keys)}
                if busy:
                    worker = sorted(busy)[0]
                    retired.append(worker)
                    watcher.retire_workers([worker], close_workers=True)
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=retire_one, daemon=True)
    thread.start()
    got = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=Scheduler(cluster3, n_workers=3),
                        progress=False)
    thread.join(60)
    assert retired, "no chunk was seen running"
    from distributed import Client

    with Client(cluster3, timeout=30) as client:
        assert retired[0] not in client.scheduler_info()["workers"]
    assert np.all(np.isfinite(got.response)) and got.response.shape == serial.response.shape
    np.testing.assert_allclose(got.response, serial.response, rtol=1e-10, atol=0)
    assert got.rel_residual.max() <= DIRECT.tol


def test_a_worker_reaching_its_lifetime_mid_sweep_costs_no_frequency(dask_processes):
    # dask-jobqueue's --lifetime: the worker closes itself gracefully at its walltime
    model = load_model("satellite", level=2)
    freqs = "10:600:40"
    serial = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=None, progress=False)
    address = dask_processes.scheduler()
    dask_processes.workers(address, 2)
    mortal = dask_processes.workers(address, 1, "--lifetime", "8s", "--lifetime-stagger", "0s")[0]
    got = femfreq.solve(model, freqs_hz=freqs, method=DIRECT, cluster=Scheduler(address, n_workers=3),
                        progress=False)
    mortal.wait(30)  # it did retire (within the sweep or just after)
    assert np.all(np.isfinite(got.response)) and got.response.shape == serial.response.shape
    np.testing.assert_allclose(got.response, serial.response, rtol=1e-10, atol=0)
