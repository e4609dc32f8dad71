"""What every cluster femfreq opens shares: the replica and worker config, waiting for workers, the dashboard."""

from __future__ import annotations

import contextlib
import logging
import os

__all__ = ["KEEP_REPLICAS_CONFIG", "WORKER_CONFIG", "WORKER_ENV_SETTING", "dashboard_link"]

# the announcements are for the user: one logger name for every kind of cluster
logger = logging.getLogger(__package__)

#: dask config for clusters femfreq starts: no ReduceReplicas policy in the Active
#: Memory Manager, so the copies of the System broadcast to every worker stay there
#: (dask/distributed#8657). The AMM itself keeps running for other policies
#: (e.g. RetireWorker, added when a worker is retired).
KEEP_REPLICAS_CONFIG = {"distributed.scheduler.active-memory-manager.policies": []}

#: dask config for the worker processes femfreq starts (with :data:`KEEP_REPLICAS_CONFIG`).
#: dask's nanny exports ``MALLOC_TRIM_THRESHOLD_=65536`` to its workers; any explicit
#: threshold also freezes glibc's mmap threshold at 128 KiB, so every array above that
#: is mapped afresh and faulted in page by page each time it is allocated (figures in
#: docs/scaling.md and ``benchmarks/bench_workers.py``). None drops the variable from the
#: nanny's environment: glibc's dynamic thresholds, and a value the user exported stays.
WORKER_CONFIG = {
    **KEEP_REPLICAS_CONFIG,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

#: The same setting as an environment variable, for workers femfreq does not start
#: (``dask worker`` from a shell, a batch job script): dask merges this mapping into
#: the nanny's ``pre-spawn-environ``, the other entries keep their defaults.
WORKER_ENV_SETTING = ("DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON", "{'MALLOC_TRIM_THRESHOLD_': None}")


@contextlib.contextmanager
def _spawn_environment():
    """``os.environ`` for starting femfreq's workers: without dask's malloc setting.

    A dask nanny writes its ``pre-spawn-environ`` into the environment of the process
    that starts it, for good: after any plain dask cluster in this process, every later
    worker would inherit ``MALLOC_TRIM_THRESHOLD_``. Removed while the workers start
    when it holds dask's own value (a value the user chose stays), then restored.
    """
    import dask

    name = "MALLOC_TRIM_THRESHOLD_"
    dasks = dask.config.get(f"distributed.nanny.pre-spawn-environ.{name}", default=None)
    value = os.environ.get(name)
    drop = value is not None and dasks is not None and value == str(dasks)
    if drop:
        del os.environ[name]
    try:
        yield
    finally:
        if drop:
            os.environ[name] = value


def dashboard_link(client) -> str | None:
    """The dashboard URL of the client's scheduler, or None if it serves no dashboard.

    None when the dashboard is off (``dashboard=False``, ``dask scheduler
    --no-dashboard``) or bokeh is missing on the scheduler. The scheduler's HTTP
    server runs either way (health checks) and ``scheduler_info()`` lists its port
    as ``"dashboard"``, so the scheduler is asked what it serves.
    """
    return client.dashboard_link if _dashboard_state(client) == "on" else None


def _dashboard_state(client) -> str:
    """What the scheduler's HTTP server serves: ``"on"``, ``"off"`` or ``"no bokeh"``."""

    # defined here so that cloudpickle ships it by value: the scheduler need not import femfreq
    def femfreq_dashboard_state(dask_scheduler):
        import importlib.util

        apps = getattr(getattr(dask_scheduler, "http_application", None), "applications", None)
        if apps is None:
            return None  # not a distributed we know: judge by scheduler_info
        if any(type(app).__module__.startswith("distributed.dashboard") or "Bokeh" in type(app).__name__
               for app in apps):
            return "on"
        return "off" if importlib.util.find_spec("bokeh") else "no bokeh"

    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return "off"
    except Exception:  # noqa: BLE001 - the link is informative only
        return "off"
    try:
        state = client.run_on_scheduler(femfreq_dashboard_state)
    except Exception:  # noqa: BLE001 - e.g. a scheduler that refuses pickled code: keep the link
        state = None
    return state or "on"


def _announce(client, what: str) -> None:
    state = _dashboard_state(client)
    address = client.scheduler.address if client.scheduler is not None else "?"
    if state == "on":
        logger.info("%s: scheduler %s, dashboard %s", what, address, client.dashboard_link)
    elif state == "off":
        logger.info("%s: scheduler %s, dashboard off", what, address)
    else:
        logger.info("%s: scheduler %s (no dashboard: install bokeh>=3.1 for one)", what, address)


def _wait_for_workers(client, n: int, timeout: float, where: str) -> None:
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError as exc:
        have = len(client.scheduler_info().get("workers", {}))
        raise TimeoutError(
            f"only {have} of {n} dask workers joined {where} within {timeout:g} s; "
            "check that the workers can reach the scheduler (and that they run femfreq's Python)"
        ) from exc

