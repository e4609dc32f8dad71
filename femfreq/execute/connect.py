"""Opening a dask client: a local cluster, a running scheduler, a Client or Cluster, batch jobs.

:func:`open_client` takes a where-object of :mod:`femfreq.options` (or a connected
``Client``, a dask ``Cluster``, or a string for :func:`~femfreq.options.as_cluster`),
yields a :class:`distributed.Client` and closes what it started. Clusters over SSH
come from :mod:`femfreq.execute.ssh`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings

from ..options import _is_loopback
from ._common import WORKER_CONFIG, WORKER_ENV_SETTING, _announce, _spawn_environment, _wait_for_workers

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

@contextlib.contextmanager
def open_client(cluster="local", *, worker_bytes: float | None = None, what: str = "the sweep"):
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
    worker_bytes : float, optional
        Estimated peak memory of one worker (:func:`femfreq.plan.worker_memory_bytes`):
        a ``Local`` cluster starts as many workers as fit (:func:`femfreq.plan.plan_workers`);
        default: the worker process alone (:data:`femfreq.plan.WORKER_BASE_BYTES`).
    what : str
        Names the model in a refusal (``"satellite level 7, direct"``).

    Yields
    ------
    distributed.Client
        Once the workers asked for have joined (at least one).

    Raises
    ------
    femfreq.errors.ClusterError
        A ``Local`` cluster whose workers do not fit in its ``memory_limit`` (default:
        the memory available): refused before any worker starts.
    ValueError, TypeError
        Not a where-object, ``Serial()``, a malformed scheduler address or a scheme other
        than ``tcp://``/``tls://``, a ``tls://`` scheduler without credentials, a ``Local``
        listening beyond loopback without TLS nor ``insecure=True``, an unknown job queue.
    TimeoutError
        The scheduler sent no dask handshake within ``connect_timeout`` (a port that
        accepts but never answers), the workers did not join within the option's
        ``timeout``, or the SSH cluster did not start in that time.
    OSError
        The scheduler cannot be reached: refused (at once), not speaking dask, TLS
        handshake failed. The message names the address.
    ImportError
        A job queue without dask-jobqueue installed, SSH without asyncssh, a temporary
        TLS certificate without cryptography.

    Warns
    -----
    UserWarning
        A ``Local(insecure=True)`` cluster listening beyond loopback without TLS (naming
        its scheduler and dashboard ports); a dashboard asked for without bokeh installed
        (the cluster starts without it).
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
    opener = _opener(where)
    if opener is _local_client:
        opener = functools.partial(_local_client, worker_bytes=worker_bytes, what=what)
    with opener(where) as client:
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


@contextlib.contextmanager
def _scheduler_client(where):
    """A client on a running scheduler (:class:`~femfreq.options.Scheduler`).

    The address, its scheme and the TLS credentials were checked by the option
    object. dask's own connect waits without limit for the handshake of a port
    that accepts but never answers, and reads a non-dask answer as a frame length
    (a ``MemoryError`` of exabytes): :func:`_reach_scheduler` first hears the
    scheduler's handshake within ``connect_timeout`` seconds.
    """
    from distributed import Client

    address = where.address
    _reach_scheduler(address, where.security, where.connect_timeout)
    # Client(address), never LocalCluster(address): the latter starts a new cluster
    try:
        client = Client(address, security=where.security or None, timeout=where.connect_timeout)
    except (OSError, TimeoutError, MemoryError, ValueError) as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address}: {_reason(exc)}") from exc
    with client:
        _wait_for_workers(client, where.n_workers or 1, where.timeout, f"the scheduler at {address}")
        _announce(client, "dask scheduler")
        yield client


def _reason(exc) -> str:
    """One line of what went wrong (the exception's class when its text is empty)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


#: the largest first message a scheduler sends (its handshake is a few hundred bytes)
_MAX_HANDSHAKE = 1 << 20

#: how long a refused port is retried (a scheduler being restarted), in seconds
_REFUSED_RETRY = 1.0


def _reach_scheduler(address: str, security, timeout: float) -> None:
    """Hear the dask handshake of the scheduler at ``address`` within ``timeout`` seconds.

    A dask server writes its handshake as soon as a connection opens: an 8-byte frame
    length, then that many bytes. Plain sockets with a deadline on every step (connect,
    TLS handshake, read) make each failure end in time, with a message naming the
    address: refused, no answer, not dask, TLS handshake failed.

    Raises
    ------
    TimeoutError
        Nothing (or not all of the handshake) arrived within ``timeout`` seconds.
    OSError
        Refused, unreachable, closed, not speaking the dask protocol, or the TLS
        handshake failed.
    """
    import socket
    import ssl
    import struct
    import time

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    host, port = parse_host_port(location)
    deadline = time.monotonic() + timeout

    def fail(reason, cls=OSError):
        return cls(f"cannot connect to the dask scheduler at {address}: {reason}")

    def left():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout
        return remaining

    def receive(sock, n):
        data = b""
        while len(data) < n:
            sock.settimeout(left())
            part = sock.recv(n - len(data))
            if not part:
                raise fail("it closed the connection without a dask handshake (not a dask scheduler?)")
            data += part
        return data

    sock = None
    try:
        sock = _open_socket(host, port, left, deadline)
        if scheme == "tls":
            context = security.get_connection_args("client")["ssl_context"]
            sock.settimeout(left())
            try:
                sock = context.wrap_socket(sock, server_hostname=host if context.check_hostname else None)
            except ssl.SSLError as exc:
                raise fail(f"TLS handshake failed ({exc.reason or exc}): other credentials than the "
                           "scheduler's, or not a TLS scheduler (tcp://?)") from exc
        (size,) = struct.unpack("<Q", receive(sock, 8))
        if not 0 < size <= _MAX_HANDSHAKE:
            raise fail("it answers, but not in the dask protocol (another kind of server on that port?)")
        receive(sock, size)
    except _LookupTimeout as exc:
        raise fail(f"the host name lookup of {host!r} did not finish within {timeout:g} s (a DNS "
                   "server that does not answer?)", TimeoutError) from exc
    except socket.timeout as exc:
        hint = " (a TLS scheduler? use tls:// and its credentials)" if scheme == "tcp" else ""
        raise fail(f"no dask handshake within {timeout:g} s{hint}", TimeoutError) from exc
    except ConnectionRefusedError as exc:
        raise fail(f"connection refused (no scheduler listens on port {port} of {host})") from exc
    except socket.gaierror as exc:
        raise fail(f"unknown host {host!r} ({exc.strerror or exc})") from exc
    except OSError as exc:
        if "cannot connect to the dask scheduler" in str(exc):
            raise
        raise fail(_reason(exc)) from exc
    finally:
        if sock is not None:
            sock.close()


class _LookupTimeout(TimeoutError):
    """The system resolver did not answer in time (it has no timeout of its own)."""


def _resolve(host, port, left):
    """``socket.getaddrinfo(host, port)`` (TCP) within the deadline of ``left``.

    The system resolver can block for a minute or more on a DNS server that does not
    answer, and has no timeout to pass; the lookup runs in a daemon thread that is
    left behind if it does not finish in time.
    """
    import socket
    import threading

    found = {}
    done = threading.Event()

    def lookup():
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"femfreq-lookup-{host}", daemon=True).start()
    try:
        in_time = done.wait(left())
    except socket.timeout:
        in_time = False
    if not in_time:
        raise _LookupTimeout
    if "error" in found:
        raise found["error"]
    return found["addresses"]


def _open_socket(host, port, left, deadline):
    """A TCP connection to ``host:port``; a refused port is retried for :data:`_REFUSED_RETRY` s only.

    The host name is looked up once, within the deadline; each of its addresses is
    tried in turn, as :func:`socket.create_connection` does.
    """
    import socket
    import time

    addresses = _resolve(host.strip("[]"), port, left)
    give_up = min(deadline, time.monotonic() + _REFUSED_RETRY)
    while True:
        try:
            return _connect_any(addresses, left)
        except ConnectionRefusedError:
            if time.monotonic() + 0.1 >= give_up:
                raise
            time.sleep(0.1)


def _connect_any(addresses, left):
    """A socket connected to the first of ``addresses`` (getaddrinfo tuples) that accepts."""
    import socket

    error = None
    for family, kind, proto, _, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left())
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, socket.timeout):
                raise
    raise error if error is not None else OSError(f"no address to connect to ({addresses!r})")


@contextlib.contextmanager
def _local_client(where, *, worker_bytes=None, what="the sweep"):
    """An embedded LocalCluster of worker processes (:class:`~femfreq.options.Local`) and a client on it.

    ``Local`` itself refused a listener beyond loopback without TLS unless ``insecure``;
    with ``insecure`` the ports it opened are named in a warning. Workers x threads come
    from :func:`_local_plan` (refused before anything starts if they do not fit).
    """
    import dask
    from distributed import Client, LocalCluster

    from ._quiet_close import register_quiet_close

    n_workers, threads = _local_plan(where, worker_bytes, what)
    security = where.security
    dashboard = bool(where.dashboard) and _have_bokeh()
    kwargs = {}
    if security:
        kwargs.update(security=security, protocol="tls://")
    if where.memory_limit is not None:
        kwargs["memory_limit"] = max(1, where.memory_limit // n_workers)
    # dask's own value is read here, before WORKER_CONFIG replaces it
    with _spawn_environment(), dask.config.set(WORKER_CONFIG), _sigint_deferred() as interrupt:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=True,
            host=where.host,
            scheduler_port=where.scheduler_port,
            # the HTTP server always runs (health checks); ":0" avoids port clashes
            dashboard_address=f"{where.host}:0",
            scheduler_kwargs={"dashboard": dashboard},
            **kwargs,
        )
    try:
        interrupt.raise_if_pressed()  # a Ctrl-C while the workers started: now that they can be closed
        # not `with Client(...)`: that also makes it the current client of this thread's context,
        # which only this thread could undo, and femfreq.solve closes the cluster in another one
        client = Client(cluster, security=security or None, timeout=where.timeout)
        try:
            if not security and not _is_loopback(where.host):
                _warn_open(client, where.host)
            _wait_for_workers(client, n_workers, where.timeout, "the local cluster")
            register_quiet_close(client)
            _announce(client, f"local dask cluster ({n_workers} workers x {threads} threads)")
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _local_plan(where, worker_bytes, what) -> tuple[int, int]:
    """(workers, threads per worker) of a ``Local`` cluster on this machine's cores and memory."""
    from ..plan import WORKER_BASE_BYTES, plan_workers

    memory = where.memory_limit if where.memory_limit is not None else _available_memory()
    per_worker = WORKER_BASE_BYTES if worker_bytes is None else float(worker_bytes)
    n, threads = plan_workers(os.cpu_count() or 1, memory, per_worker, n_workers=where.n_workers,
                              threads_per_worker=where.threads_per_worker, what=what)
    logger.debug("%s: %d workers x %d threads (~%.2f GB per worker, %.1f GB available)",
                what, n, threads, per_worker / 1e9, memory / 1e9)
    return n, threads


def _available_memory() -> int:
    """Bytes this process's children may use now: available RAM, within dask's limit (cgroups, rlimit)."""
    import psutil
    from distributed.system import MEMORY_LIMIT

    return int(min(psutil.virtual_memory().available, MEMORY_LIMIT))


def _have_bokeh() -> bool:
    """Whether the dashboard can be served; warns (one line) when bokeh is missing."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        warnings.warn("no dashboard: bokeh is not installed (pip install 'bokeh>=3.1')", UserWarning, stacklevel=4)
        return False
    return True


def _warn_open(client, host: str) -> None:
    """Warn that the cluster listens beyond loopback without TLS, naming its real ports."""
    address = client.scheduler.address
    ports = [f"scheduler port {address.rpartition(':')[2]}"]
    http = client.scheduler_info().get("services", {}).get("dashboard")
    if http:
        ports.append(f"dashboard port {http}")
    warnings.warn(
        f"the cluster listens on {host or 'every interface'} without TLS ({', '.join(ports)}): anyone who "
        "can reach these ports can run code as you (insecure=True / --insecure; use TLS instead)",
        UserWarning, stacklevel=4,
    )


class _Interrupt:
    """A Ctrl-C held back while an embedded cluster starts (see :func:`_sigint_deferred`)."""

    pressed = False
    previous = None  # the SIGINT handler in force before

    def raise_if_pressed(self):
        """Act on a held-back Ctrl-C as the handler in force before would have (KeyboardInterrupt)."""
        import signal

        if not self.pressed:
            return
        self.pressed = False
        if callable(self.previous):
            self.previous(signal.SIGINT, None)
        elif self.previous != signal.SIG_IGN:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_deferred():
    """Start the worker processes with SIGINT blocked, and hold back a Ctrl-C meanwhile.

    A Ctrl-C in a terminal goes to the whole process group: worker processes would
    each die with a KeyboardInterrupt traceback while this process closes them anyway.
    They cannot inherit a handler (a process that starts resets it), but they inherit
    the signal mask: the main thread blocks SIGINT while ``LocalCluster`` creates its
    event-loop thread, which spawns the workers, so the workers start, and stay, with
    SIGINT blocked (as CPython starts its multiprocessing resource tracker). This
    process's own SIGINT is recorded meanwhile, not lost: the caller raises it
    (``raise_if_pressed``) once the cluster exists and can be closed. Ignoring SIGINT
    instead (``SIG_IGN`` is inherited too) dropped a Ctrl-C pressed in that second or two.

    Outside the main thread, or without ``pthread_sigmask`` (Windows), nothing changes.
    """
    import signal
    import threading

    interrupt = _Interrupt()
    if (threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask")
            or signal.getsignal(signal.SIGINT) is None):  # None: a handler set outside Python, left alone
        yield interrupt
        return

    def record(signum, frame):
        interrupt.pressed = True

    from multiprocessing import resource_tracker

    # started by the first worker otherwise, and starting it unblocks SIGINT in the spawning thread
    resource_tracker.ensure_running()
    interrupt.previous = signal.signal(signal.SIGINT, record)
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield interrupt
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT is recorded here
    finally:
        signal.signal(signal.SIGINT, interrupt.previous)


@contextlib.contextmanager
def _jobqueue_client(where):
    """Workers as batch jobs (:class:`~femfreq.options.JobQueue`); the scheduler runs in this process."""
    import dask
    from distributed import Client

    from ._quiet_close import register_quiet_close

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
    # the nanny setting of WORKER_CONFIG, for the job's own dask (it does not read ours)
    name, value = WORKER_ENV_SETTING
    opts["job_script_prologue"] = [*opts.get("job_script_prologue", ()), f'export {name}="{value}"']
    scheduler_options = opts.setdefault("scheduler_options", {})
    scheduler_options.setdefault("dashboard_address", ":0")  # not a fixed port that may be taken
    if not where.dashboard:
        scheduler_options.setdefault("dashboard", False)
    with dask.config.set(WORKER_CONFIG):
        cluster = cls(**opts)
    try:
        cluster.scale(where.n_workers)
        with Client(cluster, security=where.security or None, timeout=where.timeout) as client:
            if where.n_workers:
                _wait_for_workers(client, where.n_workers, where.timeout, f"the {where.kind} job queue")
            register_quiet_close(client)
            _announce(client, f"{where.kind} dask cluster ({where.n_workers} jobs)")
            yield client
    finally:
        cluster.close()
