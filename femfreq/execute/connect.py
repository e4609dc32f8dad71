"""Opening a dask client: a local cluster, a running scheduler, a Client or Cluster, batch jobs.

:func:`open_client` is a context manager yielding a :class:`distributed.Client`
and closing what it started; SSH clusters come from :mod:`femfreq.execute.ssh`.
"""

from __future__ import annotations

import contextlib
import logging
import os

from .. import _validate as v
from ._common import KEEP_REPLICAS_CONFIG, _announce, _wait_for_workers

__all__ = ["open_client"]

logger = logging.getLogger(__name__)

_JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}




_ADDRESS_PREFIXES = ("tcp://", "tls://", "ucx://", "inproc://")


@contextlib.contextmanager
def open_client(
    cluster="local",
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    hostfile=None,
    security=None,
    jobqueue: str | None = None,
    jobqueue_options: dict | None = None,
    dashboard: bool = True,
    scheduler_port: int = 0,
    host: str = "127.0.0.1",
    connect_options: dict | None = None,
    remote_python: str | None = None,
    timeout: float = 60.0,
):
    """A :class:`distributed.Client` on the cluster to sweep on; closes what it started.

    Parameters
    ----------
    cluster : "local", str, Client or Cluster
        ``"local"``: an embedded ``LocalCluster`` (worker processes on this machine,
        bound to ``host``), started here and closed at exit. ``"tcp://host:port"`` or
        ``"tls://host:port"``: connect to a running scheduler (with ``security`` for
        TLS). A ``Client``: used as is, not closed. A dask ``Cluster`` object: a
        client on it (the cluster is not closed).
    n_workers : int, optional
        Workers to start (local: default one per core; jobqueue: jobs, default 1),
        or, for an existing scheduler, how many to wait for (default 1).
    threads_per_worker : int
        Threads per worker process (1: the solvers are single-threaded per frequency).
    hostfile : str or Path, optional
        Start a cluster over SSH on the hosts of this file (:func:`read_hostfile`):
        the scheduler on the first host, one worker per line. TLS by default.
    security : distributed.Security, False or None
        TLS credentials (:func:`make_security`). For a host-file cluster ``None``
        means a new temporary certificate; ``False`` turns TLS off (not advised:
        anyone who can reach the scheduler port can run code as you). For a local
        cluster ``None`` is plain TCP on ``host`` (loopback by default).
    jobqueue : {"slurm", "pbs", "lsf", "sge", "htcondor"}, optional
        Start the workers as batch jobs with dask-jobqueue (optional extra
        ``femfreq[jobqueue]``); the scheduler runs in this process.
    jobqueue_options : dict, optional
        Passed to the dask-jobqueue cluster class (``queue``, ``account``,
        ``memory``, ``walltime``, ``job_extra_directives``, ...).
    dashboard : bool
        Start the dashboard (needs bokeh) for clusters started here.
    scheduler_port : int
        Scheduler port of a cluster started here (0: any free port).
    host : str
        Interface the local cluster listens on (default loopback only).
    connect_options : dict, optional
        Host-file clusters: options for ``asyncssh.connect`` (``port``,
        ``username``, ``client_keys``, ``known_hosts``, ...).
    remote_python : str, optional
        Host-file clusters: the Python on the remote hosts (default: this one's path).
    timeout : float
        Seconds to wait for the scheduler and the workers.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ValueError, TypeError
        An unknown cluster specification or conflicting arguments.
    TimeoutError
        The workers did not join in time, or the SSH cluster did not start within
        ``timeout`` (no start-up line from the remote processes).
    OSError
        The scheduler cannot be reached.
    ImportError
        ``jobqueue`` without dask-jobqueue installed (or a host file without asyncssh).
    ClusterError
        The SSH cluster could not start (the message names the host file).

    Examples
    --------
    >>> from femfreq.execute import open_client
    >>> with open_client("local", n_workers=2) as client:  # doctest: +SKIP
    ...     print(client)
    """
    from distributed import Client
    from distributed.deploy import Cluster

    from ..options import SSH, JobQueue, Local, Scheduler

    if isinstance(cluster, Local):
        n_workers, threads_per_worker, dashboard = cluster.n_workers, cluster.threads_per_worker, cluster.dashboard
        scheduler_port, host, timeout, cluster = cluster.scheduler_port, cluster.host, cluster.timeout, "local"
    elif isinstance(cluster, Scheduler):
        n_workers, security, timeout, cluster = cluster.n_workers, cluster.security, cluster.timeout, cluster.address
    elif isinstance(cluster, SSH):
        hostfile, connect_options, remote_python = cluster.hostfile, cluster.connect_options, cluster.remote_python
        security = None if cluster.tls else False
        threads_per_worker, scheduler_port, dashboard = (cluster.threads_per_worker, cluster.scheduler_port,
                                                         cluster.dashboard)
        timeout, cluster = cluster.timeout, "local"
    elif isinstance(cluster, JobQueue):
        jobqueue, n_workers, threads_per_worker = cluster.kind, cluster.n_workers, cluster.threads_per_worker
        jobqueue_options, security, dashboard = dict(cluster.options), cluster.security, cluster.dashboard
        timeout, cluster = cluster.timeout, "local"
    if n_workers is not None:
        n_workers = v.as_int("n_workers", n_workers, minimum=0 if jobqueue else 1)
    threads_per_worker = v.as_int("threads_per_worker", threads_per_worker, minimum=1)
    if hostfile is not None and jobqueue is not None:
        raise ValueError("give either hostfile or jobqueue, not both")
    if (hostfile is not None or jobqueue is not None) and cluster not in ("local", None):
        raise ValueError(
            f"cluster={cluster!r} conflicts with {'hostfile' if hostfile is not None else 'jobqueue'}; "
            "leave cluster at its default"
        )

    if hostfile is not None:
        from .ssh import _ssh_client

        with _ssh_client(hostfile, security=security, threads_per_worker=threads_per_worker,
                         scheduler_port=scheduler_port, dashboard=dashboard,
                         connect_options=connect_options, remote_python=remote_python,
                         timeout=timeout) as client:
            yield client
        return
    if jobqueue is not None:
        with _jobqueue_client(jobqueue, n_workers=1 if n_workers is None else n_workers,
                              threads_per_worker=threads_per_worker, security=security,
                              dashboard=dashboard, options=jobqueue_options, timeout=timeout) as client:
            yield client
        return
    if isinstance(cluster, Client):
        if n_workers:
            _wait_for_workers(cluster, n_workers, timeout, f"the scheduler at {cluster.scheduler.address}")
        yield cluster
        return
    if isinstance(cluster, Cluster):
        with Client(cluster, security=security or None, timeout=timeout) as client:
            _wait_for_workers(client, n_workers or 1, timeout, f"the cluster {cluster!r}")
            _announce(client, "dask cluster")
            yield client
        return
    if cluster is None:
        raise ValueError("cluster=None means no dask (in this process); there is no client to open")
    if not isinstance(cluster, str):
        raise TypeError(
            f"cluster must be 'local', a scheduler address, a distributed.Client or a Cluster (got {cluster!r})"
        )
    if cluster == "local":
        with _local_client(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=threads_per_worker,
                           security=security, dashboard=dashboard, scheduler_port=scheduler_port,
                           host=host, timeout=timeout) as client:
            yield client
        return
    address = cluster
    if "://" not in address:
        if ":" not in address or address.startswith(":"):
            raise ValueError(
                f"not a scheduler address: {cluster!r}; expected 'local', 'tcp://host:port' or 'tls://host:port'"
            )
        address = "tcp://" + address
    if not address.startswith(_ADDRESS_PREFIXES):
        raise ValueError(
            f"unsupported scheduler address {cluster!r}; expected tcp://host:port or tls://host:port"
        )
    if address.startswith("tls://") and not security:
        raise ValueError(
            f"{cluster!r} is a TLS scheduler: give its credentials (security=make_security(cert_dir))"
        )
    # Client(address), never LocalCluster(address): the latter starts a new cluster
    try:
        client = Client(address, security=security or None, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address}: {exc}") from exc
    with client:
        _wait_for_workers(client, n_workers or 1, timeout, f"the scheduler at {address}")
        _announce(client, "dask scheduler")
        yield client


@contextlib.contextmanager
def _local_client(*, n_workers, threads_per_worker, security, dashboard, scheduler_port, host, timeout):
    """An embedded LocalCluster of worker processes and a client on it."""
    import dask
    from distributed import Client, LocalCluster

    kwargs = {}
    if security:
        kwargs.update(security=security, protocol="tls://")
    with dask.config.set(KEEP_REPLICAS_CONFIG):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host=host,
            scheduler_port=scheduler_port,
            # the HTTP server always runs (health checks); ":0" avoids port clashes
            dashboard_address=f"{host}:0",
            scheduler_kwargs={"dashboard": bool(dashboard)},
            **kwargs,
        )
    try:
        with Client(cluster, security=security or None, timeout=timeout) as client:
            _wait_for_workers(client, n_workers, timeout, "the local cluster")
            _announce(client, f"local dask cluster ({n_workers} workers)")
            yield client
    finally:
        cluster.close()



@contextlib.contextmanager
def _jobqueue_client(kind, *, n_workers, threads_per_worker, security, dashboard, options, timeout):
    """Workers as batch jobs (dask-jobqueue); the scheduler runs in this process."""
    import dask
    from distributed import Client

    key = str(kind).lower()
    if key not in _JOBQUEUE_CLASSES:
        raise ValueError(f"unknown job queue {kind!r}; pick one of {sorted(_JOBQUEUE_CLASSES)}")
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ImportError(
            f"jobqueue={kind!r} needs dask-jobqueue: pip install 'femfreq[jobqueue]'"
        ) from exc
    cls = getattr(dask_jobqueue, _JOBQUEUE_CLASSES[key])
    opts = {"cores": threads_per_worker, "processes": 1}
    opts.update(options or {})
    if security:
        opts.setdefault("security", security)
        opts.setdefault("protocol", "tls://")
    scheduler_options = opts.setdefault("scheduler_options", {})
    scheduler_options.setdefault("dashboard_address", ":0")  # not a fixed port that may be taken
    if not dashboard:
        scheduler_options.setdefault("dashboard", False)
    with dask.config.set(KEEP_REPLICAS_CONFIG):
        cluster = cls(**opts)
    try:
        cluster.scale(n_workers)
        with Client(cluster, security=security or None, timeout=timeout) as client:
            if n_workers:
                _wait_for_workers(client, n_workers, timeout, f"the {key} job queue")
            _announce(client, f"{key} dask cluster ({n_workers} jobs)")
            yield client
    finally:
        cluster.close()

