"""The fast sweep's fill-reducing ordering from the model's node graph: computed once, carried by the System."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from femfreq.model import load_model
from femfreq.solvers import _mkl
from femfreq.solvers.fast.factors import ShiftedFactors
from femfreq.solvers.ordering import attach, node_ordering, ordering_of

pytestmark = pytest.mark.skipif(not _mkl.status()[0], reason=f"needs MKL PARDISO: {_mkl.status()[1]}")


def _factor(system, shift):
    factors = ShiftedFactors(system, "pardiso")
    F = factors.factor(shift)
    return factors, F


@pytest.fixture(scope="module")
def model():
    return load_model("satellite", level=2)


def test_node_ordering_keeps_the_solution_and_the_fill(model):
    system = load_model("satellite", level=2).system()  # a System of its own: the test attaches to it
    perm = node_ordering(model.free_dofs // 2, model.edges)
    np.testing.assert_array_equal(np.sort(perm), np.arange(system.n))
    b = np.random.default_rng(0).standard_normal(system.n)
    shift = -(2 * np.pi * 5.0) ** 2
    own, F = _factor(system, shift)
    x_own, fill_own = F.solve(b), int(F._iparm[17])
    own.close()
    attach(system, perm)
    nodes, F = _factor(system, shift)
    x_nodes, fill_nodes = F.solve(b), int(F._iparm[17])
    nodes.close()
    assert (own.ordering, nodes.ordering) == ("metis", "model nodes")
    # another ordering changes only the rounding ...
    np.testing.assert_allclose(x_nodes, x_own, rtol=0, atol=1e-10 * np.abs(x_own).max())
    # ... and the fill, which stays that of a nested dissection (reversed, it is 5x; random, 40x)
    assert fill_nodes < 1.25 * fill_own


@pytest.mark.parametrize("bad, match", [
    (lambda n: np.arange(n - 1), r"shape \(6448,\)"),
    (lambda n: np.zeros(n, dtype=np.int64), "not a permutation"),
    (lambda n: np.arange(1, n + 1), "not a permutation"),
    (lambda n: np.arange(n, dtype=float), "integers"),
])
def test_attach_refuses_what_is_not_a_permutation(model, bad, match):
    system = load_model("satellite", level=2).system()
    with pytest.raises(ValueError, match=match):
        attach(system, bad(system.n))
    assert ordering_of(system) is None


def test_the_ordering_travels_with_the_system(model, tmp_path):
    from femfreq.execute._shared_file import write_system

    system = load_model("satellite", level=2).system()
    perm = node_ordering(model.free_dofs // 2, model.edges)
    attach(system, perm)
    for copy in (pickle.loads(pickle.dumps(system)), write_system(system, tmp_path).build()):
        np.testing.assert_array_equal(ordering_of(copy), perm)


def test_a_fast_sweep_on_local_workers_orders_the_node_graph_once(tmp_path):
    import femfreq
    from femfreq.execute import open_client, run_on_dask
    from femfreq.options import Fast, Local
    from femfreq.solvers import clear_caches

    freqs = np.linspace(0.0, 400.0, 64)
    model = load_model("satellite", level=2)
    r = femfreq.solve(model, method="fast", freqs_hz=freqs, cluster=Local(n_workers=1, dashboard=False),
                      progress=False)
    system = model.system()
    assert ordering_of(system) is not None  # computed by the client while the cluster started
    reference = femfreq.solve(load_model("satellite", level=2), method="fast", freqs_hz=freqs, cluster=None,
                              progress=False)  # a fresh model: PARDISO's own ordering
    assert r.rel_residual.max() <= 1e-6 and reference.rel_residual.max() <= 1e-6
    np.testing.assert_allclose(r.response, reference.response, rtol=0,
                               atol=1e-7 * np.abs(reference.response).max())
    # the workers factor with it: the ordering goes with the System, by file and by upload
    tasks = [(np.arange(freqs.size), freqs, np.ones(freqs.size, complex))]
    with open_client(Local(n_workers=1, dashboard=False)) as client:
        for shared_dir in (tmp_path, None):
            client.run(clear_caches)  # no analysis kept from the route before
            (chunk,) = run_on_dask(client, system, tasks, method=Fast(), shared_dir=shared_dir)
            assert chunk.info["ordering"] == "model nodes"


def test_a_sweep_that_fails_at_the_start_leaves_no_ordering_running(tmp_path, monkeypatch):
    # the client's ordering thread runs PARDISO: solve() must not return (nor the process exit,
    # unloading MKL under it) while it still does; here it outlasts the start of the sweep
    import threading
    import time

    import femfreq
    from femfreq.options import Local
    from femfreq.solvers import ordering

    real = ordering.node_ordering

    def slow(*args, **kwargs):
        time.sleep(3.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(ordering, "node_ordering", slow)
    out = tmp_path / "taken.h5"
    out.write_bytes(b"")
    with pytest.raises(FileExistsError, match="already exists"):
        femfreq.solve(load_model("satellite", level=3), method="fast", freqs_hz=np.linspace(0.0, 400.0, 64),
                      out=out, cluster=Local(n_workers=1, dashboard=False), progress=False)
    assert [t.name for t in threading.enumerate() if t.name == "femfreq-ordering"] == []


def test_an_ordering_that_ends_after_the_system_left_reaches_the_workers(monkeypatch, caplog):
    # the System goes to the workers without waiting for the client's ordering thread; a late
    # ordering is then given to every worker's copy before the first task factors with it
    import logging
    import time

    import femfreq
    from femfreq.options import Local
    from femfreq.solvers import ordering

    real = ordering.node_ordering

    def slow(*args, **kwargs):
        time.sleep(4.0)  # still running when the System is on the workers
        return real(*args, **kwargs)

    monkeypatch.setattr(ordering, "node_ordering", slow)
    caplog.set_level(logging.DEBUG, logger="femfreq")
    freqs = np.linspace(0.0, 400.0, 64)
    model = load_model("satellite", level=2)
    r = femfreq.solve(model, method="fast", freqs_hz=freqs, cluster=Local(n_workers=2, dashboard=False),
                      progress=False)
    assert ordering_of(model.system()) is not None
    given = [rec.getMessage() for rec in caplog.records if "node ordering given to" in rec.getMessage()]
    assert len(given) == 1 and given[0].startswith("node ordering given to 2 of 2 workers' copies"), given
    reference = femfreq.solve(load_model("satellite", level=2), method="fast", freqs_hz=freqs, cluster=None,
                              progress=False)
    assert r.rel_residual.max() <= 1e-6
    np.testing.assert_allclose(r.response, reference.response, rtol=0,
                               atol=1e-7 * np.abs(reference.response).max())
