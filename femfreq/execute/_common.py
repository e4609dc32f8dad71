"""What every cluster femfreq opens shares: the replica and worker config, waiting for workers, the dashboard."""

from __future__ import annotations

import contextlib
import logging
import os

__all__ = ["KEEP_REPLICAS_CONFIG", "MALLOC_ENV", "WORKER_CONFIG", "WORKER_ENV_SETTING", "dashboard_link"]

# the announcements are for the user: one logger name for every kind of cluster
logger = logging.getLogger(__package__)

#: dask config for clusters femfreq starts: no ReduceReplicas policy in the Active
#: Memory Manager, so the copies of the System broadcast to every worker stay there
#: (dask/distributed#8657). The AMM itself keeps running for other policies
#: (e.g. RetireWorker, added when a worker is retired).
KEEP_REPLICAS_CONFIG = {"distributed.scheduler.active-memory-manager.policies": []}

#: glibc's malloc settings of the worker processes femfreq starts. dask's nanny exports
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB:
#: every array above that is mapped afresh and faulted in page by page each time it is
#: allocated. glibc's own dynamic threshold stops at 32 MiB, and a fast sub-band's tall
#: blocks are larger on a big model (n doubles x 8..32 columns: 39-157 MB at 613k DOF),
#: so they were faulted in afresh on every pass (15-20 % of a band's time in the kernel).
#: Up to 256 MiB an array now comes from the heap and goes back to it, and the heap keeps
#: up to 512 MiB of free memory at its top instead of handing it back at once; larger
#: arrays (a basis) are still mapped. The resident memory of a worker then stays near its
#: peak, which the worker plan counts anyway (figures in docs/scaling.md and
#: ``benchmarks/bench_workers.py``).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(256 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(512 * 2**20)}

#: dask config for the worker processes femfreq starts (with :data:`KEEP_REPLICAS_CONFIG`):
#: the nanny's ``pre-spawn-environ`` gets :data:`MALLOC_ENV` (a value exported in the
#: environment that starts the workers wins, as everywhere in dask).
WORKER_CONFIG = {
    **KEEP_REPLICAS_CONFIG,
    **{f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in MALLOC_ENV.items()},
}

#: The same setting as an environment variable, for workers femfreq does not start
#: (``dask worker`` from a shell, a batch job script): dask merges this mapping into
#: the nanny's ``pre-spawn-environ``, the other entries keep their defaults.
WORKER_ENV_SETTING = ("DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON",
                      "{" + ", ".join(f"'{k}': '{v}'" for k, v in MALLOC_ENV.items()) + "}")


@contextlib.contextmanager
def _spawn_environment():
    """``os.environ`` for starting femfreq's workers, and as it was afterwards.

    A dask nanny writes its ``pre-spawn-environ`` into the environment of the process
    that starts it, for good: after any plain dask cluster in this process,
    ``MALLOC_TRIM_THRESHOLD_`` holds dask's value, which would win over
    :data:`MALLOC_ENV`. It is removed while the workers start when it holds dask's own
    value (a value the user chose stays); afterwards the variables of :data:`MALLOC_ENV`
    are as they were found (the nanny wrote them into this process's environment).
    """
    import dask

    before = {name: os.environ.get(name) for name in MALLOC_ENV}
    name = "MALLOC_TRIM_THRESHOLD_"
    dasks = dask.config.get(f"distributed.nanny.pre-spawn-environ.{name}", default=None)
    value = before[name]
    if value is not None and dasks is not None and value == str(dasks):
        del os.environ[name]
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


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

