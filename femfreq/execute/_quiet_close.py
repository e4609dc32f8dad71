"""A worker plugin that lets the workers of a cluster femfreq started close without a traceback.

A dask worker sends the scheduler a heartbeat every fraction of a second. When it closes, it
stops its periodic callbacks and then closes its connections, including one on which a
heartbeat may still wait for the scheduler's answer; the worker then logs "Failed to
communicate with scheduler during heartbeat" with two tracebacks (dask/distributed#7105).
The scheduler answers slowly exactly when the cluster is being closed (it is retiring the
workers), so the end of a sweep that went well can print a traceback.

:class:`QuietClose` runs in the worker's close before its connections are closed: it stops
the heartbeat and waits (at most :data:`DRAIN_SECONDS`) for one still in flight to be
answered. It is registered only on clusters femfreq starts (and so closes); it does nothing
while the worker is running.
"""

from __future__ import annotations

import asyncio
import logging
import time

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["DRAIN_SECONDS", "QuietClose", "register_quiet_close"]

logger = logging.getLogger(__name__)

#: longest a closing worker waits for an answer to its last heartbeat
DRAIN_SECONDS = 2.0


class QuietClose(WorkerPlugin):
    """On a worker's close: stop its heartbeat and let one in flight finish."""

    name = "femfreq-quiet-close"

    async def teardown(self, worker):
        if worker.status not in (Status.closing, Status.closing_gracefully, Status.closed):
            return  # the plugin was removed from a running worker: keep its heartbeat
        callback = worker.periodic_callbacks.get("heartbeat")
        if callback is None:
            return
        callback.stop()
        try:
            pool, address = worker.rpc, worker.scheduler.address
            deadline = time.monotonic() + DRAIN_SECONDS
            while pool.occupied.get(address) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        except AttributeError:  # a distributed whose internals differ: stopping the heartbeat is what we can do
            logger.debug("cannot see the worker's connections to the scheduler; not waiting", exc_info=True)


def register_quiet_close(client) -> None:
    """Register :class:`QuietClose` on the client's workers, present and future.

    Only the closing output depends on it: a registration that fails (a worker that cannot
    import femfreq, a scheduler that refuses plugins) is logged and the cluster is used as it is.
    """
    try:
        client.register_plugin(QuietClose(), name=QuietClose.name)
    except Exception:  # noqa: BLE001 - a sweep must not fail for a quieter close
        logger.debug("could not register %s; workers may log a heartbeat traceback when they close",
                     QuietClose.name, exc_info=True)
