"""Planning a sweep on dask: chunks planned once the System is on the workers.

The fast sweep's mode weights (Sturm counts: real factorizations, seconds on big
models) run as one task on a worker holding the scattered System, not on the client.
"""

from __future__ import annotations

import numpy as np
import pytest
from distributed import get_task_stream

import femfreq
from femfreq.execute import open_client, run_on_dask
from femfreq.plan import plan_chunks
from femfreq.solvers import mkl_available
from femfreq.solvers.fast import count_modes, mode_weights, sturm_frequencies
from femfreq.execute.task import solve_chunk
from femfreq.options import Direct, Local
from femfreq.plan import needs_mode_weights, plan_sweep
from femfreq.system import System
from helpers import assemble


@pytest.fixture(scope="module")
def client():
    with open_client(Local(n_workers=1, dashboard=False, timeout=60)) as c:
        yield c


@pytest.fixture(scope="module")
def light():
    """Satellite level 1 (~1.3k DOF) with structural damping only: lightly damped."""
    K, _, M, b = femfreq.load_model("satellite", level=1).matrices()
    return System(K=K, C=None, M=M, b=b, g=0.02, output_dofs=[0, 1])


def _mode_weight_tasks(stream):
    return [t for t in stream.data if str(t["key"]).startswith("mode_weights")]


@pytest.mark.skipif(not mkl_available(), reason="Sturm counts need the MKL runtime")
def test_mode_weights_on_a_worker_equal_the_local_ones(client, light):
    freqs = np.linspace(0.0, 1000.0, 513)
    local = mode_weights(light, freqs)
    future = client.scatter(light, broadcast=True, hash=False)
    try:
        with get_task_stream(client) as stream:
            remote = client.submit(mode_weights, future, freqs, pure=False).result()
    finally:
        future.release()
    assert len(_mode_weight_tasks(stream)) == 1  # one task, on the worker
    np.testing.assert_array_equal(remote, local)
    # the counts did run there (not the default exponent of a worker without MKL)
    assert not np.allclose(remote, mode_weights(light, freqs, counts=False))


def test_run_on_dask_plans_with_the_scattered_system(client, light):
    freqs = np.linspace(1.0, 200.0, 12)
    load = np.ones(freqs.size, dtype=complex)
    seen, stats = [], {}

    def plan(system_future):
        seen.append(system_future.key)
        assert client.who_has([system_future])[system_future.key]  # already on a worker
        return [(p, freqs[p], load[p]) for p in plan_chunks(freqs.size, 1, chunks_per_worker=3)]

    results = list(run_on_dask(client, light, plan, method=Direct(solver="superlu"), stats=stats))
    assert seen == [stats["system_key"]] and stats["n_tasks"] == len(results) == 3
    got = assemble(results, freqs.size, 2)
    ref = solve_chunk(light, np.arange(freqs.size), freqs, load, Direct(solver="superlu")).response
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_fast_sweep_on_dask_counts_modes_on_a_worker(client, light):
    with get_task_stream(client) as stream:
        r = femfreq.solve(light, freqs_hz="1:400:64", method="fast", cluster=client, progress=False)
    assert len(_mode_weight_tasks(stream)) == 1
    ref = femfreq.solve(light, freqs_hz="1:400:64", method="direct", cluster=None, progress=False)
    assert r.complete and np.max(np.abs(r.response - ref.response)) <= 1e-5 * np.max(np.abs(ref.response))


@pytest.mark.skipif(not mkl_available(), reason="Sturm counts need the MKL runtime")
def test_sturm_counts_made_elsewhere_give_the_same_weights(light):
    freqs = np.linspace(0.0, 1000.0, 513)
    points = sturm_frequencies(freqs)
    assert points == (1000.0, 500.0)
    counts = [int(count_modes(light, [f])[0]) for f in points]
    np.testing.assert_array_equal(mode_weights(light, freqs, sturm_counts=counts), mode_weights(light, freqs))
    assert sturm_frequencies([0.0, 0.0]) == () and sturm_frequencies([5.0]) == ()
    with pytest.raises(ValueError, match="sturm_counts"):
        mode_weights(light, freqs, sturm_counts=[3])


@pytest.mark.skipif(not mkl_available(), reason="Sturm counts need the MKL runtime")
def test_two_workers_make_the_two_sturm_counts_at_once(light):
    """Each of two workers makes one count (and keeps the analysis for its first sub-band)
    instead of one worker making both while the other idles."""
    with open_client(Local(n_workers=2, threads_per_worker=1, dashboard=False, timeout=60)) as two:
        with get_task_stream(two) as stream:
            r = femfreq.solve(light, freqs_hz="1:400:64", method="fast", cluster=two, progress=False)
    counts = [t for t in stream.data if str(t["key"]).startswith("count_modes")]
    assert len(counts) == 2 and len({t["worker"] for t in counts}) == 2
    assert not _mode_weight_tasks(stream)
    ref = femfreq.solve(light, freqs_hz="1:400:64", method="direct", cluster=None, progress=False)
    assert r.complete and np.max(np.abs(r.response - ref.response)) <= 1e-5 * np.max(np.abs(ref.response))


def test_heavily_damped_fast_sweep_gets_one_sub_band_per_worker(light):
    """C = 0.004 K overdamps every mode above ~80 Hz: one basis covers the band, so more
    sub-bands would only repeat the fixed costs (factorization, first vectors)."""
    heavy = System(K=light.K, C=0.004 * light.K, M=light.M, b=light.b, output_dofs=[0, 1])
    freqs = np.linspace(0.0, 1000.0, 2049)
    assert not needs_mode_weights(heavy, "fast", freqs)
    chunks = plan_sweep(heavy, freqs, 2, "fast")
    assert len(chunks) == 2 and sorted(np.concatenate(chunks).tolist()) == list(range(freqs.size))
    # light damping keeps many equal-mode sub-bands
    assert needs_mode_weights(light, "fast", freqs)
    weights = mode_weights(light, freqs, counts=False)
    assert len(plan_sweep(light, freqs, 2, "fast", weights=weights)) > 2
    assert len(plan_sweep(heavy, freqs, 2, "direct")) > 2  # direct keeps many chunks per worker
