"""The sweep on real dask processes: equal to serial, replicas kept, faults survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from femfreq.errors import ClusterError
from femfreq.execute import open_client, run_on_dask
from femfreq.plan import plan_chunks
from femfreq.execute.task import solve_chunk
from femfreq.options import Direct, Local, Scheduler
from femfreq.system import System
from helpers import assemble, grid_system

# fast AMM cycles so that "replicas still there" is checked after several of them
FAST_AMM = {"DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__INTERVAL": "100ms"}


def sweep_tasks(n_freqs, n_workers=2, f_max=40.0, **plan):
    freqs = np.linspace(0.0, f_max, n_freqs)
    load = np.exp(1j * freqs / 7.0) * (1.0 + freqs)
    return freqs, load, [(p, freqs[p], load[p]) for p in plan_chunks(n_freqs, n_workers, **plan)]


def dense_reference(system, freqs, load):
    K, C, M = (A.toarray() for A in (system.K, system.C, system.M))
    out = []
    for f, p in zip(freqs, load):
        w = 2 * np.pi * f
        A = (1 + 1j * system.g) * K + 1j * w * C - w**2 * M
        out.append(np.linalg.solve(A, p * system.b)[system.output_dofs])
    return np.array(out)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def slow_chunk(delay):
    """solve_chunk that sleeps first (made here so cloudpickle ships it by value)."""

    def chunk(system, index, freqs_hz, load, *args):
        import time

        from femfreq.execute.task import solve_chunk

        time.sleep(delay)
        return solve_chunk(system, index, freqs_hz, load, *args)

    return chunk


def worker_pids(client):
    return client.run(os.getpid)


@pytest.fixture(scope="module")
def shared_cluster(dask_processes_module):
    """A scheduler (default config, fast AMM cycles) and 2 workers with nannies, for the module.

    Tests that kill workers leave it usable: the nannies restart them.
    """
    address = dask_processes_module.scheduler(env=FAST_AMM)
    dask_processes_module.workers(address, 2)
    return address


def test_distributed_equals_serial_and_dense(shared_cluster):
    system = grid_system(10)
    freqs, load, tasks = sweep_tasks(48)
    serial = solve_chunk(system, np.arange(freqs.size), freqs, load, Direct(solver="superlu")).response
    np.testing.assert_allclose(serial, dense_reference(system, freqs, load), rtol=1e-9, atol=0)
    with open_client(Scheduler(shared_cluster, n_workers=2)) as client:
        stats = {}
        results = list(run_on_dask(client, system, tasks, method=Direct(solver="superlu"), stats=stats))
        workers = set(client.scheduler_info()["workers"])
    assert len(tasks) >= 8 * 2 and stats["n_tasks"] == len(tasks)
    assert stats["resubmitted"] == 0 and stats["scatter_bytes"] > system.nnz * 8
    got = assemble(results, freqs.size, 3)
    assert rel_err(got, serial) <= 1e-12
    # per-chunk timings: where and when
    assert {r.worker for r in results} == workers  # dynamic scheduling used both
    assert all(r.t_start <= r.t_end for r in results)


def test_replicas_stay_on_every_worker_of_a_default_scheduler(shared_cluster):
    # the shared scheduler has the default AMM (ReduceReplicas on), cycling every 100 ms
    system = grid_system(6)
    _, _, tasks = sweep_tasks(4, n_workers=1, chunks_per_worker=1)
    with open_client(Scheduler(shared_cluster, n_workers=2)) as client:
        workers = set(client.scheduler_info()["workers"])
        # control: an ordinary broadcast loses its extra copies within a few AMM cycles
        control = client.scatter(np.arange(10.0), broadcast=True, hash=False)
        stats = {}
        sweep = run_on_dask(client, system, tasks, stats=stats)
        next(sweep)  # the only chunk is done: no task is waiting on the system any more
        assert set(client.who_has()[stats["system_key"]]) == workers
        time.sleep(1.5)  # ~15 AMM cycles
        assert len(client.who_has([control])[control.key]) == 1
        assert set(client.who_has()[stats["system_key"]]) == workers
        assert list(sweep) == []
        # the exemption is lifted at the end: nothing is left behind on the scheduler
        left = client.run_on_scheduler(
            lambda dask_scheduler: sorted(
                k for p in dask_scheduler.extensions["amm"].policies for k in getattr(p, "_femfreq_protected", ())
            )
        )
        assert left == []


def test_local_cluster_has_no_reduce_replicas_policy():
    import dask

    with dask.config.set({"distributed.scheduler.active-memory-manager.interval": "100ms"}):
        with open_client(Local(n_workers=2, dashboard=False)) as client:
            policies = client.run_on_scheduler(
                lambda dask_scheduler: [type(p).__name__ for p in dask_scheduler.extensions["amm"].policies]
            )
            assert "ReduceReplicas" not in policies
            future = client.scatter(np.arange(10.0), broadcast=True, hash=False)
            time.sleep(1.0)
            assert len(client.who_has([future])[future.key]) == 2


def test_no_large_object_in_the_task_graph(shared_cluster):
    import dask

    system = grid_system(40)  # ~0.4 MB of matrices, above the lowered threshold
    _, _, tasks = sweep_tasks(16)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "100kB"}):
        with open_client(Scheduler(shared_cluster)) as client:
            # control: the system put in the graph itself does warn
            with pytest.warns(UserWarning, match="large graph|Large object"):
                client.submit(solve_chunk, system, *tasks[0], pure=False).result()
            with warnings.catch_warnings():
                warnings.filterwarnings("error", message=".*(Large object|large graph).*")
                results = list(run_on_dask(client, system, tasks))
    assert len(results) == len(tasks)


def test_worker_killed_mid_sweep_completes_with_the_same_answer(shared_cluster):
    system = grid_system(8)
    freqs, load, tasks = sweep_tasks(40, chunks_per_worker=10)
    serial = solve_chunk(system, np.arange(freqs.size), freqs, load, Direct(solver="superlu")).response
    with open_client(Scheduler(shared_cluster, n_workers=2, timeout=30)) as client:
        pids = worker_pids(client)
        results = []
        for r in run_on_dask(client, system, tasks, method=Direct(solver="superlu"), function=slow_chunk(0.1)):
            results.append(r)
            if len(results) == 3:
                os.kill(pids[r.worker], signal.SIGKILL)  # the nanny restarts it, empty
    assert rel_err(assemble(results, freqs.size, 3), serial) <= 1e-12


def test_all_copies_of_the_system_lost_it_is_scattered_again(shared_cluster):
    system = grid_system(8)
    freqs, load, tasks = sweep_tasks(24, chunks_per_worker=6)
    serial = solve_chunk(system, np.arange(freqs.size), freqs, load, Direct(solver="superlu")).response
    with open_client(Scheduler(shared_cluster, n_workers=2, timeout=30)) as client:
        pids = worker_pids(client)
        results, stats = [], {}
        for r in run_on_dask(client, system, tasks, method=Direct(solver="superlu"), function=slow_chunk(0.1), stats=stats):
            results.append(r)
            if len(results) == 2:
                for pid in pids.values():  # every replica of the scattered system dies
                    os.kill(pid, signal.SIGKILL)
    assert stats["rescatters"] >= 1 and stats["resubmitted"] >= 1
    assert rel_err(assemble(results, freqs.size, 3), serial) <= 1e-12


def test_dead_scheduler_mid_sweep_is_a_sweep_interrupted_that_keeps_the_done_part(dask_processes, tmp_path):
    import threading

    import femfreq
    from femfreq.errors import SweepInterrupted
    from femfreq.results import read_results

    system = grid_system(40)
    freqs = np.linspace(0.0, 40.0, 160)
    out = tmp_path / "sweep.h5"
    address = dask_processes.scheduler()
    dask_processes.workers(address, 1, "--no-nanny")  # quicker to start
    scheduler = dask_processes.procs[0]
    killed = threading.Event()

    def kill_after_the_first_chunk():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if read_results(out).done.any():
                    break
            except (OSError, KeyError, ValueError):
                pass  # not created yet
            time.sleep(0.02)
        os.killpg(scheduler.pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_after_the_first_chunk, daemon=True)
    t0 = time.monotonic()
    with pytest.raises(SweepInterrupted, match="lost the connection to the dask scheduler") as info:
        killer.start()
        femfreq.solve(system, freqs_hz=freqs, method=Direct(solver="superlu"),
                      cluster=Scheduler(address, n_workers=1), out=out, progress=False)
    assert killed.is_set() and time.monotonic() - t0 < 60
    err = info.value
    assert isinstance(err, ClusterError) and err.path == str(out) and err.total == freqs.size
    assert 0 < err.done < err.total
    assert int(read_results(out).done.sum()) == err.done  # what it says is in the file


def test_a_task_error_on_a_worker_arrives_as_its_own_class():
    import femfreq
    from femfreq.errors import SingularMatrixError

    # every mode at 5 Hz: A(omega) = K - omega^2 M is exactly zero there
    w0 = 2 * np.pi * 5.0
    system = System(K=sp.diags([w0**2, 2 * w0**2, 3 * w0**2]).tocsc(), C=None,
                    M=sp.diags([1.0, 2.0, 3.0]).tocsc(), b=np.ones(3), output_dofs=[0])
    sweep = dict(freqs_hz=np.arange(1.0, 11.0), method=Direct(solver="superlu"), progress=False)
    with pytest.raises(SingularMatrixError) as serial:
        femfreq.solve(system, cluster=None, **sweep)
    with pytest.raises(SingularMatrixError) as on_dask:
        femfreq.solve(system, cluster=Local(n_workers=1, dashboard=False), **sweep)
    assert not isinstance(on_dask.value, ClusterError)
    assert on_dask.value.freq_hz == pytest.approx(5.0) == serial.value.freq_hz
    assert str(on_dask.value) == str(serial.value)


_CLIENT_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import femfreq
from helpers import grid_system
import numpy as np
system = grid_system({m})
femfreq.solve(system, freqs_hz=np.linspace(0, 40, {n}), load=np.exp(1j * np.linspace(0, 40, {n})),
              method=femfreq.Direct(solver="superlu"), cluster={address!r}, out={out!r}, progress=False)
"""


def test_client_killed_mid_sweep_then_resumed_gives_the_same_answer(shared_cluster, tmp_path):
    from femfreq.results import read_results
    from femfreq import solve

    m, n = 45, 120
    out = tmp_path / "sweep.h5"
    address = shared_cluster
    with open_client(Scheduler(address, n_workers=2, timeout=30)):
        pass  # both workers up (an earlier test may have killed them)
    script = _CLIENT_SCRIPT.format(tests=os.path.dirname(__file__), m=m, n=n, address=address, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists():
                try:
                    done = int(np.sum(read_results(out).done))
                except (OSError, KeyError, ValueError):
                    done = 0
                if done:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    stderr = proc.stderr.read().decode()
    assert done, f"the client never wrote a chunk: {stderr[-2000:]}"
    partial = read_results(out)  # readable after SIGKILL
    assert 0 < partial.done.sum() < n, "the sweep ended before the kill: make it longer"
    resumed = solve(grid_system(m), freqs_hz=np.linspace(0, 40, n), load=np.exp(1j * np.linspace(0, 40, n)),
                    method=Direct(solver="superlu"), cluster=address, out=out, resume=True, progress=False)
    reference = solve(grid_system(m), freqs_hz=np.linspace(0, 40, n), load=np.exp(1j * np.linspace(0, 40, n)),
                      method=Direct(solver="superlu"), cluster=None, progress=False)
    assert resumed.done.all()
    assert rel_err(np.asarray(resumed.response), np.asarray(reference.response)) <= 1e-12
