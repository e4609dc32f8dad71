"""The sweep on a dask cluster: send the System once, submit the chunks, yield results.

The System goes to every worker once (built there from the model's recipe, read from
one file by the workers of an embedded cluster, or uploaded once and copied worker to
worker) and its copies are kept there (protected from
the Active Memory Manager's ReduceReplicas policy); chunks lost with their data are
resubmitted; a lost scheduler becomes :class:`~femfreq.errors.ClusterError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import uuid
import warnings

import numpy as np

from ..errors import ClusterError
from ._common import _wait_for_workers
from .task import ChunkResult

__all__ = ["run_on_dask"]

logger = logging.getLogger(__name__)


def _protect_replicas(client, keys, protect: bool) -> bool:
    """Exempt ``keys`` from the scheduler's ReduceReplicas policy (or lift the exemption).

    Clusters femfreq starts have no ReduceReplicas policy at all
    (:data:`KEEP_REPLICAS_CONFIG`); on someone else's scheduler this wraps the
    policy so that it skips our keys only, leaving everything else as configured.
    Returns False if the scheduler refused (e.g. it does not accept pickled code).
    """
    keys = list(keys)

    # defined here so that cloudpickle ships it by value: the scheduler need not import femfreq
    def on_scheduler(dask_scheduler, keys, protect):
        from distributed.active_memory_manager import ReduceReplicas

        amm = dask_scheduler.extensions.get("amm")
        if amm is None:
            return 0
        n = 0
        for policy in list(amm.policies):
            if not isinstance(policy, ReduceReplicas):
                continue
            protected = getattr(policy, "_femfreq_protected", None)
            if protected is None:
                protected = policy._femfreq_protected = set()
                original = policy.run

                def run(original=original, protected=protected):
                    # ReduceReplicas ignores the values sent back, so filtering is safe
                    for suggestion in original():
                        if suggestion[1].key not in protected:
                            yield suggestion

                policy.run = run
            if protect:
                protected.update(keys)
            else:
                protected.difference_update(keys)
            n += 1
        return n

    try:
        n = client.run_on_scheduler(on_scheduler, keys=keys, protect=protect)
    except Exception as exc:  # noqa: BLE001 - a refusal only costs extra transfers
        if protect:
            warnings.warn(
                f"could not keep the broadcast copies of the system on the workers ({exc}); "
                "the Active Memory Manager may drop them and workers will fetch them again",
                RuntimeWarning,
                stacklevel=3,
            )
        return False
    if protect and n:
        logger.debug("exempted %s from %d ReduceReplicas policies", keys, n)
    return True


def _send_system(client, system, recipe, timeout, shared_dir=None):
    """Put the System on every worker: by ``recipe`` when given and every worker's build
    matches, else through a file in ``shared_dir`` when given (workers on this machine),
    else uploaded once. ``(future, seconds, bytes sent from the client, route)``.

    No worker within ``timeout``, or a broadcast that does not end, is a
    :class:`~femfreq.errors.ClusterError`: the cluster cannot run the sweep.
    """
    try:
        _wait_for_workers(client, 1, timeout, f"the scheduler at {client.scheduler.address}")
    except TimeoutError as exc:
        raise ClusterError(str(exc)) from exc
    if recipe is not None:
        reason = None
        try:
            return _send_recipe(client, system, recipe, timeout)
        except Exception as exc:  # noqa: BLE001 - a mismatch, a missing file, a worker lost while building
            reason = exc
        logger.warning("the workers could not build the system from %s (%s); uploading it instead", recipe, reason)
    elif shared_dir is not None:
        try:
            return _send_file(client, system, shared_dir, timeout)
        except Exception as exc:  # noqa: BLE001 - an unreadable file, a worker lost while loading
            logger.warning("the workers could not load the system from %s (%s); uploading it instead",
                           shared_dir, exc)
    return _upload_system(client, system, timeout)


def _send_file(client, system, shared_dir, timeout):
    """Write the System to a file in ``shared_dir`` once; each worker loads it (all at once)."""
    from ._shared_file import write_system

    t0 = time.perf_counter()
    handle = write_system(system, shared_dir)
    future, _, n = _prepare_and_broadcast(client, handle, "load", timeout)
    seconds = time.perf_counter() - t0
    logger.info("wrote the system (%.1f MB) to %s; %d workers loaded it from there: ready in %.2f s",
                os.path.getsize(handle.path) / 1e6, handle.path, n, seconds)
    return future, seconds, _pickled_nbytes(handle), "file"


def _send_recipe(client, system, recipe, timeout):
    """Each worker builds the System from the recipe and checks its digest."""
    handle = recipe.handle(system.token, system.digest())
    t0 = time.perf_counter()
    future, build_seconds, n = _prepare_and_broadcast(client, handle, "build", timeout)
    seconds = time.perf_counter() - t0
    nbytes = _pickled_nbytes(handle)
    if logger.isEnabledFor(logging.INFO):
        logger.info("sent the model recipe (%d bytes) to %d workers instead of the system (%.1f MB): each built "
                    "and checked it (%.2f s at most); ready in %.2f s", nbytes, n,
                    _pickled_nbytes(system) / 1e6, max(build_seconds, default=0.0), seconds)
    return future, seconds, nbytes, "recipe"


def _prepare_and_broadcast(client, handle, what, timeout):
    """Make the System ready on every worker (``handle.prebuild``, one pinned task each),
    then broadcast ``handle.stand_in()``, which unpickles there as that System.

    ``(future, seconds each worker took, workers)``. The first worker's error is raised,
    after every worker dropped what it made ready.
    """
    from distributed import wait

    workers = sorted(client.scheduler_info().get("workers", {}))
    jobs = [client.submit(handle.prebuild, workers=[w], allow_other_workers=False, pure=False,
                          key=f"femfreq-{what}-{uuid.uuid4().hex[:8]}-{i}") for i, w in enumerate(workers)]
    try:
        try:
            wait(jobs, timeout=max(timeout, 300.0))
            errors = [f.exception() for f in jobs if f.status == "error"]
            seconds = [f.result() for f in jobs if f.status == "finished"]
        finally:
            for f in jobs:
                f.release()
        if errors:
            raise errors[0]
        future = client.scatter(handle.stand_in(), broadcast=True, hash=False, timeout=max(timeout, 60.0))
    except Exception:
        with contextlib.suppress(Exception):  # the Systems made ready and not taken
            client.run(handle.forget)
        raise
    _protect_replicas(client, [future.key], True)
    return future, seconds, len(workers)


def _upload_system(client, system, timeout):
    """Upload the System once and let the workers copy it among themselves.

    ``scatter(broadcast=True)`` sends one copy through the scheduler to one worker, and
    the scheduler's ``replicate`` has the workers copy it peer to peer (a tree: the
    holders double or triple each round), so the client's link carries one copy.
    """
    nbytes = _pickled_nbytes(system)
    n = len(client.scheduler_info().get("workers", {}))
    # a timeout, so that a worker dying mid-broadcast cannot hang the sweep (distributed#5704);
    # generous: every copy may go through one link at a pessimistic 5 MB/s
    scatter_timeout = max(timeout, 30.0 + n * nbytes / 5e6)
    t0 = time.perf_counter()
    try:
        future = client.scatter(system, broadcast=True, hash=False, timeout=scatter_timeout)
    except TimeoutError as exc:
        raise ClusterError(
            f"sending the system ({nbytes / 1e6:.1f} MB) to {n} workers took over {scatter_timeout:.0f} s"
        ) from exc
    seconds = time.perf_counter() - t0
    _protect_replicas(client, [future.key], True)
    logger.info("uploaded the system (%.1f MB) once; %d workers hold it (copied peer to peer) after %.2f s",
                nbytes / 1e6, n, seconds)
    return future, seconds, nbytes, "upload"


def _pickled_nbytes(obj) -> int:
    """Bytes of ``obj`` pickled as dask sends it (protocol 5, arrays out of band), without a copy."""
    import pickle

    buffers = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


def _default_chunk_function():
    """:func:`~femfreq.execute.task.solve_chunk` with fast responses sent back factored."""
    from .task import solve_chunk

    return functools.partial(solve_chunk, factored=True)


def run_on_dask(
    client,
    system,
    tasks,
    *,
    method="direct",
    retries: int = 1,
    max_resubmits: int = 3,
    timeout: float = 60.0,
    function=None,
    stats: dict | None = None,
    recipe=None,
    shared_dir=None,
):
    """Run the chunks of a sweep on a dask cluster and yield their results as they complete.

    The System goes to every worker once and its copies are kept there: built by each
    worker from ``recipe`` (a few hundred bytes from the client), or uploaded once
    (``scatter(broadcast=True, hash=False)``: one copy from the client, the workers copy
    it among themselves); each task carries only its chunk (index,
    frequencies, load: small), so no large array enters the task graph. One task
    per chunk, ``pure=False``, scheduled dynamically by dask.

    If a worker dies, dask reruns its tasks elsewhere (the other workers hold the
    System). If every copy of the System is lost (distributed#3149: scattered data
    cannot be recomputed), it is scattered again and the missing chunks resubmitted.

    Parameters
    ----------
    client : distributed.Client
    system : System
        The structure; :attr:`System.token` keys the workers' solver caches.
    tasks : sequence of (index (k,) int64, freqs_hz (k,) float, load (k,) complex), or callable
        The chunks, in submission order (see :func:`femfreq.plan.plan_chunks`). A callable
        ``tasks(system_future)`` is called once the System is on the workers and
        returns them: planning can then run its own tasks on the scattered System
        (e.g. :func:`femfreq.solvers.fast.mode_weights`).
    method : Direct, Fast or str
        Passed to the chunk function (:func:`femfreq.execute.task.solve_chunk`).
    retries : int
        Reruns of a chunk whose function raised (dask's ``retries``).
    max_resubmits : int
        How many times chunks cancelled by lost data may be resubmitted.
    timeout : float
        Seconds to wait for workers (at start and after losing all of them).
    function : callable, optional
        The chunk function, ``function(system, index, freqs_hz, load, method)``;
        default :func:`femfreq.execute.task.solve_chunk`. Module level
        (importable by the workers).
    stats : dict, optional
        Filled with ``scatter_seconds`` (until every worker holds the System), ``scatter_bytes``
        (what the client sent), ``system_route`` (``"recipe"``, ``"file"`` or ``"upload"``), ``n_tasks``,
        ``resubmitted``, ``rescatters`` and ``system_key`` (the dask key of the System).
    recipe : femfreq.model.recipe.Recipe, optional
        How the System was built (:func:`femfreq.model.recipe.recipe_of`). Then each worker
        builds the System itself and checks its digest against ``system``'s; if any worker
        cannot (a different Triangle or femfreq, a missing file), the System is uploaded
        instead, with a warning in the log.
    shared_dir : str or Path, optional
        A directory the workers can read (an embedded cluster on this machine): the System
        is written there once and each worker loads it, instead of the upload hopping from
        worker to worker. If any worker cannot, the System is uploaded, with a warning.
        The caller removes the directory after the sweep.

    Yields
    ------
    ChunkResult
        One per task, in completion order.

    Raises
    ------
    femfreq.errors.ClusterError
        The cluster went away: the scheduler died or the client lost its connection,
        no worker joined within ``timeout``, or chunks kept being lost (results
        already yielded are valid; rerun the missing chunks, e.g. ``resume=True``).
        Nothing else becomes a ClusterError.
    Exception
        What the chunk function (or the planner ``tasks``) raised, after its
        retries, as the class it was: e.g.
        :class:`~femfreq.errors.SingularMatrixError`,
        :class:`~femfreq.errors.PardisoError`, a ``ValueError``.
    """
    stats = stats if stats is not None else {}
    plan = tasks if callable(tasks) else None
    tasks = [] if plan is not None else list(tasks)
    stats.update(n_tasks=len(tasks), resubmitted=0, rescatters=0)
    if not tasks and plan is None:
        return
    run = None
    try:
        run = _Run(client, system, function or _default_chunk_function(), method, retries, timeout, stats, recipe,
                   shared_dir)
        if plan is not None:
            tasks = list(plan(run.system_future))
            stats["n_tasks"] = len(tasks)
        yield from run.results(tasks, max_resubmits)
    except ClusterError:
        raise
    except Exception as exc:
        _raise_if_disconnected(client, exc)  # a lost scheduler, whatever dask raised for it
        raise  # the task's (or the planner's) own error, as it was
    finally:
        if run is not None:
            run.close()


class _Run:
    """One sweep on dask: the scattered System, the chunks submitted, what was resubmitted."""

    def __init__(self, client, system, function, method, retries, timeout, stats, recipe=None, shared_dir=None):
        self.client, self.system, self.function, self.method = client, system, function, method
        self.recipe, self.shared_dir = recipe, shared_dir
        self.retries, self.timeout, self.stats = retries, timeout, stats
        self.run_id = uuid.uuid4().hex[:8]
        self.attempts = {}
        self.pending = {}
        self.system_future = None
        stats["scatter_seconds"], stats["scatter_bytes"] = self._scatter()

    def _scatter(self):
        """Broadcast the System (again); seconds taken and bytes."""
        if self.system_future is not None:
            _protect_replicas(self.client, [self.system_future.key], False)
        self.system_future, seconds, nbytes, route = _send_system(self.client, self.system, self.recipe,
                                                                  self.timeout, self.shared_dir)
        self.stats["system_key"], self.stats["system_route"] = self.system_future.key, route
        return seconds, nbytes

    def _submit(self, i, task):
        index, freqs, load = task
        self.attempts[i] = self.attempts.get(i, 0) + 1
        future = self.client.submit(
            self.function,
            self.system_future,
            np.asarray(index, dtype=np.int64),
            np.asarray(freqs, dtype=np.float64),
            np.asarray(load, dtype=np.complex128),
            self.method,
            pure=False,
            retries=self.retries,
            key=f"femfreq-chunk-{self.run_id}-{i}-{self.attempts[i]}",
        )
        self.pending[future] = i
        return future

    def results(self, tasks, max_resubmits):
        """Yield each chunk's result as it completes; resubmit the chunks lost with their data."""
        from distributed import as_completed

        completed = as_completed([self._submit(i, task) for i, task in enumerate(tasks)])
        for future in completed:
            i = self.pending.pop(future)
            if future.status == "finished":
                result = future.result()
                future.release()
                yield result.expanded() if isinstance(result, ChunkResult) else result
                continue
            if future.status == "error":
                _raise_if_disconnected(self.client, future.exception())
                future.result()  # re-raise the task's own exception with its traceback
            # cancelled or lost: the connection, or the data it depended on, went away
            _raise_if_disconnected(self.client, None)
            if self.attempts[i] > max_resubmits:
                raise ClusterError(
                    f"chunk {i} (frequencies {_describe_chunk(tasks[i])}) was lost {self.attempts[i]} times; giving up"
                )
            if self.system_future.status != "finished" or not _held_anywhere(self.client, self.system_future):
                logger.warning("the workers lost the system (%s); scattering it again", self.system_future.status)
                self._scatter()
                self.stats["rescatters"] += 1
            logger.warning("resubmitting chunk %d (%s)", i, future.status)
            self.stats["resubmitted"] += 1
            completed.add(self._submit(i, tasks[i]))

    def close(self):
        """Cancel what is still pending; let the System's copies go."""
        if self.client.status != "running":
            return
        with contextlib.suppress(Exception):
            if self.pending:
                self.client.cancel(list(self.pending))
        _protect_replicas(self.client, [self.system_future.key], False)
        with contextlib.suppress(Exception):
            self.system_future.release()


def _held_anywhere(client, future) -> bool:
    """True if at least one worker holds ``future``'s data."""
    try:
        return bool(client.who_has([future]).get(future.key))
    except Exception:  # noqa: BLE001 - treat an unanswerable query as lost
        return False


def _describe_chunk(task) -> str:
    freqs = np.asarray(task[1])
    return f"{freqs.min():.6g}..{freqs.max():.6g} Hz" if freqs.size else "none"


def _raise_if_disconnected(client, exc):
    """Raise ClusterError if the client has lost its scheduler."""
    from distributed.client import FutureCancelledError

    # "connecting" too: a reconnecting client has already lost its futures (distributed#5663)
    lost = client.status != "running" or client.scheduler_comm is None
    if not lost and isinstance(exc, FutureCancelledError):
        lost = "scheduler" in str(exc).lower() and "connection" in str(exc).lower()
    if not lost and exc is not None and isinstance(exc, (OSError, TimeoutError)) and "comm" in type(exc).__module__:
        lost = True
    if lost:
        address = getattr(client.scheduler, "address", "?")
        raise ClusterError(
            f"lost the connection to the dask scheduler at {address} mid-sweep "
            f"(client status {client.status!r}); the chunks already returned are kept"
        ) from exc

