"""Opening a dask client: a local cluster, a running scheduler, a Client or Cluster, batch jobs.

:func:`open_client` takes a where-object of :mod:`femfreq.options` (or a connected
``Client``, a dask ``Cluster``, or a string for :func:`~femfreq.options.as_cluster`),
yields a :class:`distributed.Client` and closes what it started. Clusters over SSH
come from :mod:`femfreq.execute.ssh`.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ._common import KEEP_REPLICAS_CONFIG, _announce, _wait_for_workers

__all__ = ["open_client"]

logger = logging.getLogger(__name__)

#: seconds to wait for the workers of a Client or Cluster object given as it is
_DEFAULT_TIMEOUT = 60.0

_JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}

_ADDRESS_PREFIXES = ("tcp://", "tls://", "ucx://", "inproc://")


@contextlib.contextmanager
def open_client(cluster="local"):
    """A :class:`distributed.Client` on the cluster to sweep on; closes what it started.

    Parameters
    ----------
    cluster : Local, Scheduler, SSH, JobQueue, str, Client or Cluster
        Where (:mod:`femfreq.options`): :class:`~femfreq.options.Local` an embedded
        ``LocalCluster`` of worker processes, started here; :class:`~femfreq.options.Scheduler`
        a running scheduler (``tcp://host:port``, or ``tls://host:port`` with its
        ``security``); :class:`~femfreq.options.SSH` a cluster started over SSH from a
        host file (TLS by default); :class:`~femfreq.options.JobQueue` workers as batch
        jobs (extra ``femfreq[jobqueue]``). A string goes through
        :func:`~femfreq.options.as_cluster` (``"local"``, an address). A connected
        ``Client`` is used as it is and not closed; a dask ``Cluster`` object gets a
        client (the cluster is not closed).

    Yields
    ------
    distributed.Client
        Once the workers asked for have joined (at least one).

    Raises
    ------
    ValueError, TypeError
        Not a where-object, ``Serial()``, a malformed scheduler address, a ``tls://``
        scheduler without credentials, an unknown job queue.
    TimeoutError
        The workers did not join within the option's ``timeout``, or the SSH cluster
        did not start in that time.
    OSError
        The scheduler cannot be reached.
    ImportError
        A job queue without dask-jobqueue installed, or SSH without asyncssh.
    femfreq.errors.ClusterError
        The SSH cluster could not start (the message names the host file).

    Examples
    --------
    >>> from femfreq.execute import open_client
    >>> from femfreq.options import Local
    >>> with open_client(Local(n_workers=2)) as client:  # doctest: +SKIP
    ...     print(client)
    """
    from ..options import as_cluster

    where = as_cluster(cluster)
    with _opener(where)(where) as client:
        yield client


def _opener(where):
    """The context manager that opens a client on ``where``."""
    from distributed import Client
    from distributed.deploy import Cluster

    from ..options import SSH, JobQueue, Local, Scheduler, Serial

    if isinstance(where, Local):
        return _local_client
    if isinstance(where, Scheduler):
        return _scheduler_client
    if isinstance(where, SSH):
        from .ssh import ssh_client

        return ssh_client
    if isinstance(where, JobQueue):
        return _jobqueue_client
    if isinstance(where, Client):
        return _given_client
    if isinstance(where, Cluster):
        return _cluster_client
    if isinstance(where, Serial):
        raise ValueError("Serial() runs in this process without dask: there is no client to open")
    raise TypeError(f"cluster must be Local, Scheduler, SSH, JobQueue, a Client or a dask Cluster (got {where!r})")


@contextlib.contextmanager
def _given_client(client):
    """A connected Client: used as it is, not closed."""
    yield client


@contextlib.contextmanager
def _cluster_client(cluster):
    """A client on a dask Cluster object (the cluster stays open)."""
    from distributed import Client

    with Client(cluster, security=getattr(cluster, "security", None), timeout=_DEFAULT_TIMEOUT) as client:
        _wait_for_workers(client, 1, _DEFAULT_TIMEOUT, f"the cluster {cluster!r}")
        _announce(client, "dask cluster")
        yield client


def _scheduler_address(address: str) -> str:
    """``address`` with its protocol (``host:port`` is ``tcp://host:port``); ValueError if malformed."""
    full = address
    if "://" not in full:
        if ":" not in full or full.startswith(":"):
            raise ValueError(
                f"not a scheduler address: {address!r}; expected 'local', 'tcp://host:port' or 'tls://host:port'"
            )
        full = "tcp://" + full
    if not full.startswith(_ADDRESS_PREFIXES):
        raise ValueError(f"unsupported scheduler address {address!r}; expected tcp://host:port or tls://host:port")
    return full


@contextlib.contextmanager
def _scheduler_client(where):
    """A client on a running scheduler (:class:`~femfreq.options.Scheduler`)."""
    from distributed import Client

    address = _scheduler_address(where.address)
    if address.startswith("tls://") and not where.security:
        raise ValueError(
            f"{where.address!r} is a TLS scheduler: give its credentials "
            "(Scheduler(address, security=make_security(cert_dir)))"
        )
    # Client(address), never LocalCluster(address): the latter starts a new cluster
    try:
        client = Client(address, security=where.security or None, timeout=where.timeout)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address}: {exc}") from exc
    with client:
        _wait_for_workers(client, where.n_workers or 1, where.timeout, f"the scheduler at {address}")
        _announce(client, "dask scheduler")
        yield client


@contextlib.contextmanager
def _local_client(where):
    """An embedded LocalCluster of worker processes (:class:`~femfreq.options.Local`) and a client on it."""
    import dask
    from distributed import Client, LocalCluster

    n_workers = where.n_workers or os.cpu_count() or 1
    security = where.security
    kwargs = {}
    if security:
        kwargs.update(security=security, protocol="tls://")
    with dask.config.set(KEEP_REPLICAS_CONFIG):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=where.threads_per_worker,
            processes=True,
            host=where.host,
            scheduler_port=where.scheduler_port,
            # the HTTP server always runs (health checks); ":0" avoids port clashes
            dashboard_address=f"{where.host}:0",
            scheduler_kwargs={"dashboard": bool(where.dashboard)},
            **kwargs,
        )
    try:
        with Client(cluster, security=security or None, timeout=where.timeout) as client:
            _wait_for_workers(client, n_workers, where.timeout, "the local cluster")
            _announce(client, f"local dask cluster ({n_workers} workers)")
            yield client
    finally:
        cluster.close()


@contextlib.contextmanager
def _jobqueue_client(where):
    """Workers as batch jobs (:class:`~femfreq.options.JobQueue`); the scheduler runs in this process."""
    import dask
    from distributed import Client

    if where.kind not in _JOBQUEUE_CLASSES:
        raise ValueError(f"unknown job queue {where.kind!r}; pick one of {sorted(_JOBQUEUE_CLASSES)}")
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ImportError(f"JobQueue({where.kind!r}) needs dask-jobqueue: pip install 'femfreq[jobqueue]'") from exc
    cls = getattr(dask_jobqueue, _JOBQUEUE_CLASSES[where.kind])
    opts = {"cores": where.threads_per_worker, "processes": 1}
    opts.update(dict(where.options))
    if where.security:
        opts.setdefault("security", where.security)
        opts.setdefault("protocol", "tls://")
    scheduler_options = opts.setdefault("scheduler_options", {})
    scheduler_options.setdefault("dashboard_address", ":0")  # not a fixed port that may be taken
    if not where.dashboard:
        scheduler_options.setdefault("dashboard", False)
    with dask.config.set(KEEP_REPLICAS_CONFIG):
        cluster = cls(**opts)
    try:
        cluster.scale(where.n_workers)
        with Client(cluster, security=where.security or None, timeout=where.timeout) as client:
            if where.n_workers:
                _wait_for_workers(client, where.n_workers, where.timeout, f"the {where.kind} job queue")
            _announce(client, f"{where.kind} dask cluster ({where.n_workers} jobs)")
            yield client
    finally:
        cluster.close()
