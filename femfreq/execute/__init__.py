"""Where the sweep runs: a dask client for a local, remote, SSH or batch cluster.

The sweep is embarrassingly parallel over frequencies. This module opens a
:class:`distributed.Client` on one of

- an embedded ``LocalCluster`` (processes, one thread each, one per core: the default),
- an existing scheduler (``"tcp://host:8786"``, ``"tls://host:8786"``) or ``Client``,
- a host file, like ``dask-ssh --hostfile``: dask's ``SSHCluster`` (asyncssh), TLS by default,
- a batch queue through dask-jobqueue (Slurm, PBS, LSF; optional extra),

and runs the sweep on it (:func:`run_on_dask`): the :class:`~femfreq.system.System`
(K, C, M, b) goes to every worker once, chunks of frequencies are submitted as
small tasks and the :class:`~femfreq.sweep.ChunkResult` of each comes back as it
completes; :mod:`femfreq.plan` splits the sweep into chunks.

See ``docs/cluster.md`` for the pitfalls this module avoids (replicas dropped by
the Active Memory Manager, scattered data lost with a worker, open ``dask-ssh``
clusters).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..errors import ClusterError

__all__ = [
    "KEEP_REPLICAS_CONFIG",
    "ClusterError",
    "dashboard_link",
    "make_security",
    "open_client",
    "read_hostfile",
    "run_on_dask",
]

logger = logging.getLogger(__name__)

#: dask config for clusters femfreq starts: no ReduceReplicas policy in the Active
#: Memory Manager, so the copies of the System broadcast to every worker stay there
#: (dask/distributed#8657). The AMM itself keeps running for other policies
#: (e.g. RetireWorker, added when a worker is retired).
KEEP_REPLICAS_CONFIG = {"distributed.scheduler.active-memory-manager.policies": []}

_JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}



def read_hostfile(path) -> list[str]:
    """Hosts listed in a host file, one per line.

    ``#`` starts a comment, blank lines are ignored, a host may be repeated to get
    several workers on it (as ``dask-ssh --hostfile``). A line may be ``host`` or
    ``user@host``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of str
        The hosts in file order, repeats kept.

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        A line holds more than one word or a malformed host (the message names the
        file and line), or the file lists no host.
    """
    path = Path(path)
    text = path.read_text()
    hosts = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) != 1:
            raise ValueError(f"{path}:{number}: expected one host per line, got {line!r}")
        host = words[0]
        user, _, name = host.rpartition("@")
        if not name or any(c in host for c in "/\\'\"`$;|&<>(){}") or (("@" in host) and not user):
            raise ValueError(f"{path}:{number}: not a host name or address: {host!r}")
        hosts.append(host)
    if not hosts:
        raise ValueError(f"{path}: no hosts (one host per line; '#' starts a comment)")
    return hosts


def make_security(cert_dir=None, *, create: bool = False):
    """TLS credentials for a dask cluster.

    Parameters
    ----------
    cert_dir : str or Path, optional
        ``None``: a new temporary self-signed certificate held in memory
        (``Security.temporary()``), for a cluster started and used by this process.
        A directory: ``ca.pem``, ``cert.pem`` and ``key.pem`` there (one certificate
        for all roles: the scheduler, the workers and the clients); give the same
        directory to every client.
    create : bool
        With ``cert_dir``: if the files are missing, create a self-signed set there
        (the key readable by the owner only).

    Returns
    -------
    distributed.Security
        With ``require_encryption=True``.

    Raises
    ------
    FileNotFoundError
        ``cert_dir`` lacks one of the files and ``create`` is false.
    """
    from distributed import Security

    if cert_dir is None:
        return Security.temporary()
    cert_dir = Path(cert_dir)
    files = {name: cert_dir / f"{name}.pem" for name in ("ca", "cert", "key")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing and create:
        if len(missing) < 3:
            raise FileNotFoundError(f"{cert_dir} holds only some of ca.pem, cert.pem, key.pem (missing {missing})")
        cert_dir.mkdir(parents=True, exist_ok=True)
        tmp = Security.temporary()
        files["ca"].write_text(tmp.tls_ca_file)
        files["cert"].write_text(tmp.tls_scheduler_cert)
        fd = os.open(files["key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(tmp.tls_scheduler_key)
        logger.info("wrote a self-signed TLS certificate to %s", cert_dir)
    elif missing:
        raise FileNotFoundError(
            f"TLS certificate files missing: {', '.join(missing)} "
            "(expected ca.pem, cert.pem and key.pem in the directory)"
        )
    ca, cert, key = (str(files[k]) for k in ("ca", "cert", "key"))
    return Security(
        require_encryption=True,
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


def _pem(value):
    """PEM text of a Security field: file contents for a path (remote hosts may not have it)."""
    if value is None or "\n" in value:
        return value
    return Path(value).read_text()


def _security_config(security) -> dict:
    """The dask config keys that make remote processes use ``security`` (PEM text, not paths)."""
    cfg = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": _pem(security.tls_ca_file),
    }
    for role in ("scheduler", "worker", "client"):
        cfg[f"distributed.comm.tls.{role}.cert"] = _pem(getattr(security, f"tls_{role}_cert"))
        cfg[f"distributed.comm.tls.{role}.key"] = _pem(getattr(security, f"tls_{role}_key"))
    return cfg


# -- clients ----------------------------------------------------------------------------
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


#: Loggers whose INFO lines ``SSHCluster`` waits for on the remote stderr: "Scheduler at:"
#: (the scheduler's address) and "Start worker at:" (one per worker). If the remote
#: processes inherit a config that hides them (``DASK_LOGGING__DISTRIBUTED=warning``,
#: ``logging: {distributed: warning}``), ``SSHCluster`` waits for them forever.
_SSH_STARTUP_LOGGERS = ("distributed.scheduler", "distributed.worker")


def _ssh_logging_config() -> dict:
    """The dask config that lets the remote processes print the lines ``SSHCluster`` waits for.

    ``SSHCluster`` forwards this process's whole dask config to the remote scheduler and
    workers (``DASK_INTERNAL_INHERIT_CONFIG``) and detects that they started by reading
    their log on stderr. The levels of the start-up loggers (:data:`_SSH_STARTUP_LOGGERS`)
    are lowered to INFO if the config sets them higher (directly or through their
    ``distributed`` parent); every other level is kept (the remote log is read only at
    start-up, by dask's ``distributed.deploy.ssh`` logger, and is not shown here unless
    that logger shows INFO). A ``logging-file-config`` is left alone (with a warning).

    Returns
    -------
    dict
        Keys and values for ``dask.config.set`` (empty if nothing needs changing).
    """
    import dask

    names = logging.getLevelNamesMapping()
    section = "distributed." if any(
        dask.config.get(f"distributed.{k}", None) is not None for k in ("logging", "logging-file-config")
    ) else ""
    if dask.config.get(f"{section}logging-file-config", None) is not None:
        logger.warning(
            "dask config %slogging-file-config is set: make sure it logs %s at INFO to stderr, "
            "or the SSH cluster start-up waits forever", section, " and ".join(_SSH_STARTUP_LOGGERS),
        )
        return {}
    current = dask.config.get(f"{section}logging", None) or {}

    def level_of(value):
        return names.get(str(value).upper(), logging.INFO) if not isinstance(value, int) else value

    if "version" in current:  # logging.config.dictConfig schema
        loggers = dict(current.get("loggers") or {})
        for name in _SSH_STARTUP_LOGGERS:
            entry = dict(loggers.get(name) or {})
            if entry.get("level") is None or level_of(entry["level"]) > logging.INFO:
                entry["level"] = "INFO"  # unset: would inherit the parent's level
            loggers[name] = entry
        return {f"{section}logging": {**current, "loggers": loggers}}
    # dask's own format {logger name: level}; a name inherits from its dotted parents,
    # "distributed" being INFO unless set
    new = dict(current)
    for name in _SSH_STARTUP_LOGGERS:
        parts = name.split(".")
        inherited = [current[p] for p in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if p in current]
        if level_of(inherited[0] if inherited else "info") > logging.INFO:
            new[name] = "info"
    return {f"{section}logging": new} if new != current else {}


def _drain_remote_output(cluster) -> None:
    """Keep reading the remote processes' stdout and stderr (to the DEBUG log) after start-up.

    ``SSHCluster`` reads their stderr only until the start-up line. Unread output piles
    up in the SSH channel; once its window (2 MiB) and the remote pipe are full, the
    remote scheduler or worker blocks in its next log write, i.e. freezes. Lines go to
    the ``femfreq.execute.remote`` logger at DEBUG (shown with ``femfreq -vv``).
    """
    remote = logging.getLogger(f"{__name__}.remote")

    async def drain(stream, who):
        try:
            while True:
                line = await stream.readline()
                if not line:
                    return
                remote.debug("%s: %s", who, line.rstrip())
        except Exception:  # noqa: BLE001 - the session ended; nothing left to read
            return

    for name, proc in [("scheduler", cluster.scheduler), *((f"worker {k}", w) for k, w in cluster.workers.items())]:
        session = getattr(proc, "proc", None)  # dask's SSH Process: its asyncssh process
        if session is None:
            continue
        who = f"{name} on {getattr(proc, 'address', '?')}"
        for stream in (session.stdout, session.stderr):
            cluster.loop.add_callback(drain, stream, who)


class _StartupDeadline:
    """Ends an ``SSHCluster`` start-up that outlives ``timeout`` seconds.

    ``SSHCluster`` waits without limit for the remote log lines that say a process
    started. On expiry this closes the SSH connections of the cluster being built
    (found among dask's ``SpecCluster`` instances, in its event loop): the waiting
    read then ends and the constructor raises. Best effort: if dask's internals
    change, it does nothing.
    """

    def __init__(self, timeout: float):
        import threading

        from distributed.deploy.spec import SpecCluster

        self._before = set(getattr(SpecCluster, "_instances", ()))
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def finish(self) -> bool:
        """Stop watching; True if the deadline passed (its connections may be closed)."""
        with self._lock:
            self._done = True
            return self.expired

    def _expire(self):
        from distributed.deploy.spec import SpecCluster

        with self._lock:
            if self._done:
                return
            self.expired = True
        try:
            for cluster in set(getattr(SpecCluster, "_instances", ())) - self._before:
                procs = [cluster.scheduler, *cluster.workers.values()]
                conns = [c for c in (getattr(p, "connection", None) for p in procs) if c is not None]
                for conn in conns:
                    cluster.loop.add_callback(conn.close)
        except Exception:  # noqa: BLE001 - best effort, see the class docstring
            logger.debug("could not end the SSH cluster start-up", exc_info=True)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


@contextlib.contextmanager
def _ssh_client(hostfile, *, security, threads_per_worker, scheduler_port, dashboard,
                connect_options, remote_python, timeout):
    """A cluster started over SSH on the hosts of ``hostfile`` and a client on it."""
    import dask
    from distributed import Client

    try:
        import asyncssh  # noqa: F401
    except ImportError as exc:
        raise ImportError("host-file clusters need asyncssh: pip install 'femfreq[ssh]'") from exc
    from distributed.deploy.ssh import SSHCluster

    hosts = read_hostfile(hostfile)
    if security is None:
        security = make_security()
    elif security is False:
        warnings.warn(
            "starting an SSH cluster without TLS: anyone who can reach the scheduler port can run code as you",
            UserWarning,
            stacklevel=3,
        )
    protocol = "tls" if security else "tcp"
    config = dict(KEEP_REPLICAS_CONFIG)
    config.update(_ssh_logging_config())
    if security:
        # the remote scheduler and workers read it from the config SSHCluster forwards
        config.update(_security_config(security))
    scheduler_options = {
        "port": scheduler_port,
        "protocol": protocol,
        # the HTTP server always runs (health checks); ":0" avoids a clash on 8787
        "dashboard_address": ":0",
        "dashboard": bool(dashboard),
    }
    worker_options = {"nthreads": threads_per_worker, "protocol": protocol}
    logger.info("starting a dask cluster over SSH: scheduler on %s, %d workers", hosts[0], len(hosts))
    too_slow = (
        f"the SSH cluster of {hostfile} did not start within {timeout:g} s: no 'Scheduler at:' / "
        "'Start worker at:' line from the remote processes (do they run? does their dask logging "
        "config hide INFO?)"
    )
    with dask.config.set(config), _StartupDeadline(timeout) as deadline:
        try:
            cluster = SSHCluster(
                [hosts[0], *hosts],
                connect_options=dict(connect_options or {}),
                worker_options=worker_options,
                scheduler_options=scheduler_options,
                # run through our entry point so that they exit with their SSH session
                remote_python=f"{remote_python or sys.executable} -m femfreq.execute",
                security=security or None,
            )
        except Exception as exc:  # asyncssh and dask raise many kinds; name the file
            if deadline.finish():
                raise TimeoutError(too_slow) from exc
            raise ClusterError(f"could not start the SSH cluster of {hostfile}: {type(exc).__name__}: {exc}") from exc
        if deadline.finish():  # started just as the deadline passed: its connections may be closing
            cluster.close()
            raise TimeoutError(too_slow)
    try:
        _drain_remote_output(cluster)
        with Client(cluster, security=security or None, timeout=timeout) as client:
            _wait_for_workers(client, len(hosts), timeout, f"the SSH cluster of {hostfile}")
            _announce(client, f"SSH dask cluster ({len(hosts)} workers, {'TLS' if security else 'no TLS'})")
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


# -- the distributed sweep --------------------------------------------------------------
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


def _scatter_system(client, system, timeout):
    """Broadcast the System to every worker; its future, seconds taken and size in bytes."""
    _wait_for_workers(client, 1, timeout, f"the scheduler at {client.scheduler.address}")
    nbytes = _nbytes(system)
    n = len(client.scheduler_info().get("workers", {}))
    # a timeout, so that a worker dying mid-broadcast cannot hang the sweep (distributed#5704);
    # generous: every copy may go through one link at a pessimistic 5 MB/s
    scatter_timeout = max(timeout, 30.0 + n * nbytes / 5e6)
    t0 = time.perf_counter()
    try:
        future = client.scatter(system, broadcast=True, hash=False, timeout=scatter_timeout)
    except TimeoutError as exc:
        raise TimeoutError(
            f"sending the system ({nbytes / 1e6:.1f} MB) to {n} workers took over {scatter_timeout:.0f} s"
        ) from exc
    seconds = time.perf_counter() - t0
    _protect_replicas(client, [future.key], True)
    logger.info("scattered the system (%.1f MB) to %d workers in %.2f s", nbytes / 1e6, n, seconds)
    return future, seconds, nbytes


def _nbytes(obj) -> int:
    """Bytes held by the numpy arrays and sparse matrices of a System."""
    import scipy.sparse as sp

    total = 0
    for value in vars(obj).values():
        for item in value if isinstance(value, tuple) else (value,):
            if sp.issparse(item):
                total += item.data.nbytes + item.indices.nbytes + item.indptr.nbytes
            elif isinstance(item, np.ndarray):
                total += item.nbytes
    return total


def _default_chunk_function():
    from .task import solve_chunk

    return solve_chunk


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
):
    """Run the chunks of a sweep on a dask cluster and yield their results as they complete.

    The System goes to every worker once (``scatter(broadcast=True, hash=False)``)
    and its copies are kept there; each task carries only its chunk (index,
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
        Filled with ``scatter_seconds``, ``scatter_bytes``, ``n_tasks``, ``resubmitted``,
        ``rescatters`` and ``system_key`` (the dask key of the scattered System).

    Yields
    ------
    ChunkResult
        One per task, in completion order.

    Raises
    ------
    ClusterError
        The scheduler died or the client lost its connection (results already
        yielded are valid; rerun the missing chunks, e.g. ``resume=True``), or
        chunks kept being lost.
    Exception
        What the chunk function raised after its retries (e.g. a singular matrix).
    """
    from distributed import as_completed

    fn = function or _default_chunk_function()
    stats = stats if stats is not None else {}
    plan = tasks if callable(tasks) else None
    tasks = [] if plan is not None else list(tasks)
    stats.update(n_tasks=len(tasks), resubmitted=0, rescatters=0)
    if not tasks and plan is None:
        return
    run_id = uuid.uuid4().hex[:8]
    system_future, stats["scatter_seconds"], stats["scatter_bytes"] = _scatter_system(client, system, timeout)
    protected = {system_future.key}
    stats["system_key"] = system_future.key
    attempts = {}

    def submit(i, data_future):
        index, freqs, load = tasks[i]
        attempts[i] = attempts.get(i, 0) + 1
        return client.submit(
            fn,
            data_future,
            np.asarray(index, dtype=np.int64),
            np.asarray(freqs, dtype=np.float64),
            np.asarray(load, dtype=np.complex128),
            method,
            pure=False,
            retries=retries,
            key=f"femfreq-chunk-{run_id}-{i}-{attempts[i]}",
        )

    pending = {}
    try:
        if plan is not None:
            tasks = list(plan(system_future))
            stats["n_tasks"] = len(tasks)
        for i in range(len(tasks)):
            pending[submit(i, system_future)] = i
        completed = as_completed(list(pending))
        for future in completed:
            i = pending.pop(future)
            if future.status == "finished":
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - the connection went between status and result
                    _raise_if_disconnected(client, exc)
                    raise
                future.release()
                yield result
                continue
            if future.status == "error":
                exc = future.exception()
                _raise_if_disconnected(client, exc)
                future.result()  # re-raise the task's own exception with its traceback
            # cancelled or lost: the connection, or the data it depended on, went away
            _raise_if_disconnected(client, None)
            if attempts[i] > max_resubmits:
                raise ClusterError(
                    f"chunk {i} (frequencies {_describe_chunk(tasks[i])}) was lost {attempts[i]} times; giving up"
                )
            if system_future.status != "finished" or not _held_anywhere(client, system_future):
                logger.warning("the workers lost the system (%s); scattering it again", system_future.status)
                _protect_replicas(client, protected, False)
                system_future, _, _ = _scatter_system(client, system, timeout)
                protected = {system_future.key}
                stats["system_key"] = system_future.key
                stats["rescatters"] += 1
            logger.warning("resubmitting chunk %d (%s)", i, future.status)
            stats["resubmitted"] += 1
            new = submit(i, system_future)
            pending[new] = i
            completed.add(new)
    finally:
        if pending and client.status == "running":
            with contextlib.suppress(Exception):
                client.cancel(list(pending))
        if client.status == "running":
            _protect_replicas(client, protected, False)
            with contextlib.suppress(Exception):
                system_future.release()


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


# -- entry point of processes started over SSH -------------------------------------------
def _remote_main(argv: list[str]) -> None:
    """Run ``python -m <module> ARGS`` and exit when the SSH session that started us ends.

    ``SSHCluster`` runs ``<remote_python> -m distributed.cli.dask_spec ...`` without a
    terminal; OpenSSH does not deliver the KILL signal asyncssh requests on close, so
    the scheduler and workers would outlive the cluster. The session's end closes our
    stdin: on that EOF, SIGTERM (dask closes gracefully), then SIGKILL to the process
    group (the nanny's worker too) if still alive after 10 s.
    """
    import runpy
    import signal
    import threading

    def watch_stdin():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10.0)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    if len(argv) < 2 or argv[0] != "-m":
        raise SystemExit("usage: python -m femfreq.execute -m MODULE [ARGS...]")
    threading.Thread(target=watch_stdin, name="femfreq-ssh-watch", daemon=True).start()
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _remote_main(sys.argv[1:])

