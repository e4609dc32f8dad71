"""How :func:`femfreq.solve` gets its System and, for a model on an embedded cluster, starts the
cluster and the node ordering meanwhile.

Starting an embedded cluster (~1-1.5 s of waiting for its worker processes) and building a
large model's System take about as long, and a fast sweep's node ordering as long again:
for a :class:`~femfreq.model.Model` swept on a :class:`~femfreq.options.Local` cluster the
three overlap (:func:`_system_and_client`). The ordering reaches the System, and every
worker's copy of it, whenever it is ready (:func:`_attach_ordering`, :func:`_attach_late`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from . import _validate as v
from .options import Local
from .system import System, as_system

log = logging.getLogger(__name__)


def _what(name, n, method) -> str:
    """The model as a refused worker plan names it."""
    return f"{name or 'the model'} ({n:,} DOF, {method.name})"


def _system_and_client(stack, model_or_K, C, M, b, *, g, output_dofs, where, method, resume):
    """The System, its model (or None), a client already open on ``where`` (or None), the
    future of the model's node ordering (or None: :func:`_start_ordering`) and the
    :class:`_EarlyCluster` that closes that client's cluster (or None).

    Starting an embedded cluster is ~1-1.5 s of waiting for its worker processes, and
    building a large model's System takes as long (1.7 s at satellite level 7). For a
    :class:`~femfreq.model.Model` swept on a :class:`~femfreq.options.Local` cluster the
    cluster therefore starts here, on ``stack``, while a helper thread builds the System;
    the worker plan comes from the model's size (:meth:`~femfreq.model.Model.pattern_nnz`
    bounds the System's entries). Not for a resume: its file may need no cluster at all,
    and a file of another model must be refused before one starts. A build that fails
    raises once the cluster is open; ``stack`` then closes it.
    """
    from .model import Model  # local: keeps femfreq.sweep importable on its own

    if not (isinstance(model_or_K, Model) and isinstance(where, Local) and not resume):
        return (*_build_system(model_or_K, C, M, b, g=g, output_dofs=output_dofs), None, None, None)
    _check_model_arguments(model_or_K, C, M, b, output_dofs)
    from concurrent.futures import ThreadPoolExecutor

    from . import plan
    from .execute import open_client

    model = model_or_K
    ordering = _start_ordering(model, method)
    if ordering is not None:  # solve() never returns, or raises, with PARDISO still running in it
        stack.callback(ordering.thread.join)
    pool = ThreadPoolExecutor(1, thread_name_prefix="femfreq-system")
    cluster = _EarlyCluster()
    stack.callback(cluster.close)  # closed however solve() ends, at the latest when it does
    try:
        build = pool.submit(_build_system, model, C, M, b, g=g, output_dofs=output_dofs)
        client = cluster.stack.enter_context(open_client(
            where, worker_bytes=plan.worker_memory_bytes(model.n_free, model.pattern_nnz(), method),
            what=_what(model.name, model.n_free, method)))
        system, model = build.result()
    finally:
        pool.shutdown(wait=False)  # an error while the cluster starts need not wait for the build
    return system, model, client, ordering, cluster


class _EarlyCluster:
    """The embedded cluster :func:`_system_and_client` started, and its closing.

    Closing the scheduler and its worker processes takes a few tenths of a second. Once
    every chunk is written, :meth:`close_in_background` starts it in a thread, while the
    result file is finished and read back; :meth:`close` (on ``solve()``'s exit stack)
    waits for it, or closes the cluster itself if that never started (an error, a Ctrl-C).
    """

    def __init__(self):
        self.stack = contextlib.ExitStack()
        self._thread = None
        self._error = None

    def close_in_background(self):
        import threading

        def run():
            try:
                self.stack.close()
            except BaseException as exc:  # noqa: BLE001 - raised in close(), in the caller's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="femfreq-cluster-close", daemon=True)
        self._thread.start()

    def close(self):
        if self._thread is None:
            self.stack.close()
            return
        self._thread.join()
        if self._error is not None:
            raise self._error


def _start_ordering(model, method):
    """For a fast sweep: order the model's node graph in a low-priority thread while the cluster
    starts (:func:`~femfreq.solvers.ordering.node_ordering`, 1.6 s at satellite level 7), so that
    no worker orders the DOF pattern itself (2.2 s each); :func:`_attach_ordering` gives it to
    the System before it goes to the workers. A future of it, or None: a direct sweep, no MKL
    here, or a System that has its ordering already."""
    from .solvers import _mkl
    from .solvers.ordering import node_ordering, ordering_of

    if method.name != "fast" or getattr(method, "factor", "auto") == "superlu" or not _mkl.status()[0]:
        return None
    cached = model._cache.get("system")
    if cached is not None and ordering_of(cached) is not None:
        return None
    import threading
    from concurrent.futures import Future

    future = Future()

    def run():
        try:  # Linux: this thread only; it takes what the cluster start leaves of the cores
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        try:
            future.set_result(node_ordering(model.free_dofs // 2, model.edges, threads=1))
        except BaseException as exc:  # noqa: BLE001 - reported where it is used
            future.set_exception(exc)

    future.thread = threading.Thread(target=run, name="femfreq-ordering", daemon=True)
    future.thread.start()
    return future


def _attach_ordering(system, future, wait=True):
    """Give ``system`` the node ordering of ``future``, when one was started: waiting for it,
    or, with ``wait=False``, only if it is ready. The future still to attach, or None."""
    from .solvers.ordering import attach, ordering_of

    if future is None or ordering_of(system) is not None:
        return None
    if not (wait or future.done()):
        return future
    t0 = time.perf_counter()
    try:
        perm = future.result()
    except Exception as exc:  # noqa: BLE001 - PARDISO orders the pattern itself on the workers
        log.debug("no node ordering (%s): the workers order the pattern", exc)
        return
    if perm.size == system.n:
        attach(system, perm)
        log.debug("node ordering attached (waited %.2f s)", time.perf_counter() - t0)
    return None


def _attach_late(client, system, system_future, future) -> None:
    """The node ordering ``future`` that was not ready when the System left for the workers:
    attached to ``system`` (so that a System sent again carries it) and to every worker's
    copy, before any task factors with it. A worker without a copy (one that joins later
    loads the System as it was sent) orders the pattern itself: slower, the same answer."""
    from .solvers.ordering import ordering_of

    if future is None:
        return
    t0 = time.perf_counter()
    _attach_ordering(system, future)
    perm = ordering_of(system)
    if perm is not None:  # a worker that fails here (one just lost) costs no frequency: dask handles its tasks
        given = client.run(_attach_to_copy, system_future.key, perm, on_error="return")
        log.debug("node ordering given to %d of %d workers' copies of the system (%.2f s after they held it)",
                  sum(v is True for v in given.values()), len(given), time.perf_counter() - t0)


def _attach_to_copy(key, perm, dask_worker=None) -> bool:
    """On a worker: give its copy of the System (dask key ``key``) the ordering ``perm``;
    whether it has it now."""
    from .solvers.ordering import attach, ordering_of

    held = dask_worker.data.get(key) if dask_worker is not None else None
    if not isinstance(held, System):
        return False
    if ordering_of(held) is None:
        attach(held, perm)
    return True


def _check_model_arguments(model_or_K, C, M, b, output_dofs):
    """A Model or System comes without the matrices' arguments."""
    kind = type(model_or_K).__name__
    if any(v is not None for v in (C, M, b)):
        raise TypeError(f"give either a {kind} or the matrices K, C, M, b, not both")
    if output_dofs is not None:
        raise TypeError(f"output_dofs comes from the {kind}; set its outputs instead")


def _build_system(model_or_K, C, M, b, *, g, output_dofs):
    """A System, the model it came from (or None), and the output description."""
    from .model import Model  # local: keeps femfreq.sweep importable on its own

    model = None
    if isinstance(model_or_K, (Model, System)):
        _check_model_arguments(model_or_K, C, M, b, output_dofs)
        if isinstance(model_or_K, Model):
            model = model_or_K
            system = model.system()
        else:
            system = model_or_K
        if g is not None and g != system.g:
            system = System(K=system.K, C=system.C, M=system.M, b=system.b, g=g,
                            output_dofs=system.output_dofs, name=system.name, base=system.base)
    elif isinstance(model_or_K, (str, os.PathLike)):
        raise TypeError(
            f"solve() takes a Model, a System or matrices; load the model file first: "
            f"femfreq.load_model({str(model_or_K)!r})"
        )
    else:
        system = as_system(model_or_K, C, M, b, g=g or 0.0, output_dofs=output_dofs)
        if output_dofs is not None:  # a boolean mask or floats are not DOF indices
            v.index_array("output_dofs", output_dofs, system.n, allow_empty=False)
    return system, model
