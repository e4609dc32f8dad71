"""Typed options: *how* each frequency is solved and *where* the sweep runs.

They are frozen, picklable dataclasses: the method object travels to the dask
workers unchanged, and the Python API, the command line and the MATLAB adapter
all build the same objects. Strings keep working for the common cases::

    femfreq.solve(model, method="fast", cluster="tcp://127.0.0.1:8786")
    femfreq.solve(model, method=Fast(tol=1e-8, max_basis=400), cluster=Local(n_workers=2))
    femfreq.solve(model, method=Direct(solver="pardiso", solver_options={"ordering": "pymetis"}),
                  cluster=SSH("hosts", user="me"))

How: :class:`Direct`, :class:`Fast`. Where: :class:`Serial`, :class:`Local`,
:class:`Scheduler`, :class:`SSH`, :class:`JobQueue` (or a connected
``distributed.Client``).

>>> from femfreq.options import Fast, as_method, as_cluster
>>> as_method("fast") == Fast()
True
>>> as_cluster("tcp://127.0.0.1:8786")
Scheduler(address='tcp://127.0.0.1:8786', security=None, n_workers=None, calibration=None, timeout=60.0, connect_timeout=10.0)
>>> as_cluster(None)
Serial()
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import _validate as v

__all__ = [
    "Direct",
    "Fast",
    "Serial",
    "Local",
    "Scheduler",
    "SSH",
    "JobQueue",
    "as_method",
    "as_cluster",
    "cluster_from",
    "method_from",
]

_SOLVERS = ("auto", "pardiso", "superlu")


def _frozen_mapping(name, value) -> tuple:
    """A mapping as sorted ``(key, value)`` pairs: immutable, picklable, comparable."""
    if value is None:
        return ()
    if isinstance(value, tuple):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of option names to values (got {type(value).__name__})")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be option names (got {key!r})")
    return tuple(sorted(value.items()))


# -- how -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Direct:
    """A sparse direct factorization and solve at every frequency.

    Parameters
    ----------
    solver : {"auto", "pardiso", "superlu"}
        Backend: MKL PARDISO (complex symmetric, analysis reused) when available, else
        SuperLU. "auto" picks PARDISO if it can run here.
    tol : float
        Relative residual ``||A x - P b|| / ||P b||`` that certifies a frequency; one
        above it gets iterative refinement, and is flagged in the result if it stays above.
    refine : int
        Most iterative refinement steps per frequency.
    skip_singular : bool
        Record a singular frequency (0 Hz on a free-free model) as skipped (NaN)
        instead of raising :class:`~femfreq.errors.SingularMatrixError`.
    solver_options : mapping, optional
        Backend options (PARDISO: ``ordering``, ``sparse_rhs``, ``iparm``, ``threads``,
        ...; SuperLU: ``permc_spec``, ``diag_pivot_thresh``). Stored as sorted pairs.
    """

    name: ClassVar[str] = "direct"
    solver: str = "auto"
    tol: float = 1e-6
    refine: int = 2
    skip_singular: bool = False
    solver_options: tuple = ()

    def __post_init__(self):
        v.one_of("solver", self.solver, _SOLVERS)
        object.__setattr__(self, "tol", v.positive_float("tol", self.tol))
        object.__setattr__(self, "refine", v.as_int("refine", self.refine, minimum=0))
        object.__setattr__(self, "skip_singular", bool(self.skip_singular))
        object.__setattr__(self, "solver_options", _frozen_mapping("solver_options", self.solver_options))

    @property
    def solver_kwargs(self) -> dict:
        """``solver_options`` as keyword arguments for the backend."""
        return dict(self.solver_options)


@dataclass(frozen=True)
class Fast:
    """The certified reduced-order sweep: a Krylov basis per sub-band, every frequency checked.

    Every frequency's true full-system residual is computed; those above ``tol`` are
    solved directly (with ``solver``), so the result meets ``tol`` everywhere.

    Parameters
    ----------
    tol : float
        Relative residual every frequency must meet (down to ~1e-11 is practical).
    max_basis : int, optional
        Largest basis per sub-band (default 400, capped by the model size).
    shifts : sequence of float, optional
        Initial shifts (Hz); default one placed for the band, more added where needed.
    max_shifts : int
        Most factorizations per sub-band.
    step : int, optional
        Vectors added between certifications (default adaptive).
    split_depth : int
        How many times a sub-band whose basis fills up may be bisected.
    n_checks : int
        Fast frequencies per sub-band cross-checked with an explicit residual.
    enlarge : bool
        Enlarge the basis until every frequency passes (else fall back at once).
    factor : {"auto", "pardiso", "superlu"}
        Backend of the real symmetric factorizations ``K - s M``.
    solver : {"auto", "pardiso", "superlu"}
        Direct solver of the fallback.
    skip_singular : bool
        As for :class:`Direct`.
    """

    name: ClassVar[str] = "fast"
    tol: float = 1e-6
    max_basis: int | None = None
    shifts: tuple | None = None
    max_shifts: int = 8
    step: int | None = None
    split_depth: int = 3
    n_checks: int = 2
    enlarge: bool = True
    factor: str = "auto"
    solver: str = "auto"
    skip_singular: bool = False

    def __post_init__(self):
        object.__setattr__(self, "tol", v.positive_float("tol", self.tol))
        if self.max_basis is not None:
            object.__setattr__(self, "max_basis", v.as_int("max_basis", self.max_basis, minimum=1))
        if self.shifts is not None:
            shifts = tuple(v.as_float("shifts", s, nonneg=True) for s in self.shifts)
            object.__setattr__(self, "shifts", shifts)
        object.__setattr__(self, "max_shifts", v.as_int("max_shifts", self.max_shifts, minimum=1))
        if self.step is not None:
            object.__setattr__(self, "step", v.as_int("step", self.step, minimum=1))
        object.__setattr__(self, "split_depth", v.as_int("split_depth", self.split_depth, minimum=0))
        object.__setattr__(self, "n_checks", v.as_int("n_checks", self.n_checks, minimum=0))
        object.__setattr__(self, "enlarge", bool(self.enlarge))
        object.__setattr__(self, "skip_singular", bool(self.skip_singular))
        v.one_of("factor", self.factor, _SOLVERS)
        v.one_of("solver", self.solver, _SOLVERS)

    @property
    def band_kwargs(self) -> dict:
        """Keyword arguments of :func:`femfreq.solvers.fast.solve_band`."""
        return dict(tol=self.tol, max_basis=self.max_basis, shifts=self.shifts, max_shifts=self.max_shifts,
                    step=self.step, split_depth=self.split_depth, n_checks=self.n_checks,
                    enlarge=self.enlarge, factor=self.factor, direct_solver=self.solver,
                    skip_singular=self.skip_singular)


_METHODS = {"direct": Direct, "fast": Fast}


def as_method(method) -> Direct | Fast:
    """A method object from ``"direct"``, ``"fast"`` or a :class:`Direct`/:class:`Fast`."""
    if isinstance(method, (Direct, Fast)):
        return method
    if isinstance(method, str) and method in _METHODS:
        return _METHODS[method]()
    raise ValueError(f"unknown method {method!r}; pick one of {sorted(_METHODS)} or a Direct(...)/Fast(...)")


# -- where -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Serial:
    """In this process, without dask."""


@dataclass(frozen=True)
class Local:
    """An embedded ``LocalCluster`` of worker processes, started for the sweep and closed after it.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes (default: as many as fit, see :func:`femfreq.plan.plan_workers`:
        one per core while the model's estimated memory per worker fits in
        ``memory_limit``, else fewer with the cores shared as threads).
    threads_per_worker : int, optional
        Threads per worker; PARDISO factors with that many (default: the cores divided
        among the workers; 1 when there is one worker per core).
    memory_limit : int or str, optional
        Memory the workers may use in all, in bytes or as ``"8GB"`` (default: what the
        machine has available when the cluster starts). A plan whose workers do not fit
        is refused (:class:`~femfreq.errors.ClusterError`) before any worker starts; when
        given, each worker's dask memory limit is its share.
    host : str
        Interface to listen on (loopback by default).
    scheduler_port : int
        Scheduler port (0: any free port).
    dashboard : bool
        Start the dashboard (needs bokeh).
    calibration : path or dict, optional
        A cluster calibration (``femfreq calibrate -o calib.json``) for chunk sizes.
    timeout : float
        Seconds to wait for the workers.
    security : distributed.Security, optional
        TLS for the cluster (see :func:`femfreq.execute.make_security`); default plain TCP.
    insecure : bool
        Accept a ``host`` other than loopback without ``security``. A dask scheduler runs
        the code its clients send, so that lets anyone who can reach its port run code as
        you; without this flag such a cluster is refused (ValueError) before anything
        listens, and with it the cluster warns naming its ports.

    Raises
    ------
    ValueError
        A field out of range, or a ``host`` other than loopback without ``security``
        and without ``insecure=True``.
    """

    n_workers: int | None = None
    threads_per_worker: int | None = None
    host: str = "127.0.0.1"
    scheduler_port: int = 0
    dashboard: bool = True
    calibration: Any = None
    timeout: float = 60.0
    security: Any = None
    insecure: bool = False
    memory_limit: Any = None

    def __post_init__(self):
        if not isinstance(self.host, str):
            raise TypeError(f"host must be an interface name or address such as '127.0.0.1' (got {self.host!r})")
        object.__setattr__(self, "insecure", bool(self.insecure))
        if not self.security and not self.insecure and not _is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host or 'every interface'!r} without TLS: anyone who can reach "
                "the scheduler could run code as you; give security=make_security(...) "
                "(femfreq cluster --tls), or insecure=True (--insecure) to accept that"
            )
        if self.n_workers is not None:
            object.__setattr__(self, "n_workers", v.as_int("n_workers", self.n_workers, minimum=1))
        if self.threads_per_worker is not None:
            object.__setattr__(self, "threads_per_worker",
                               v.as_int("threads_per_worker", self.threads_per_worker, minimum=1))
        if self.memory_limit is not None:
            object.__setattr__(self, "memory_limit", _bytes("memory_limit", self.memory_limit))
        object.__setattr__(self, "scheduler_port",
                           v.as_int("scheduler_port", self.scheduler_port, minimum=0, maximum=65535))
        object.__setattr__(self, "timeout", v.positive_float("timeout", self.timeout))


@dataclass(frozen=True)
class Scheduler:
    """A running dask scheduler, by address (``tcp://host:port`` or ``tls://host:port``).

    Parameters
    ----------
    address : str
        The scheduler's address; ``host:port`` means ``tcp://host:port``.
    security : distributed.Security, optional
        TLS credentials, required for ``tls://`` (see
        :func:`femfreq.execute.make_security`).
    n_workers : int, optional
        Workers to wait for before starting (default 1).
    calibration : path or dict, optional
        A calibration of this cluster (``femfreq calibrate``).
    timeout : float
        Seconds to wait for the workers once connected.
    connect_timeout : float
        Seconds to reach the scheduler and hear its dask handshake, host name lookup
        included; past it (a port that accepts but never answers, a DNS server that
        does not answer) the connection fails with ``TimeoutError``. A refused port
        fails at once.

    Raises
    ------
    ValueError
        A malformed address, a scheme other than ``tcp://`` and ``tls://``, a
        ``tls://`` address without ``security``, a field out of range.
    """

    address: str
    security: Any = None
    n_workers: int | None = None
    calibration: Any = None
    timeout: float = 60.0
    connect_timeout: float = 10.0

    def __post_init__(self):
        if not isinstance(self.address, str) or not self.address.strip():
            raise TypeError(f"address must be a scheduler address such as 'tcp://host:8786' (got {self.address!r})")
        object.__setattr__(self, "address", _scheduler_address(self.address.strip()))
        if self.address.startswith("tls://") and not self.security:
            raise ValueError(
                f"{self.address!r} is a TLS scheduler: give its credentials "
                "(Scheduler(address, security=make_security(cert_dir)); --tls-ca/--tls-cert/--tls-key)"
            )
        object.__setattr__(self, "connect_timeout", v.positive_float("connect_timeout", self.connect_timeout))
        if self.n_workers is not None:
            object.__setattr__(self, "n_workers", v.as_int("n_workers", self.n_workers, minimum=1))
        object.__setattr__(self, "timeout", v.positive_float("timeout", self.timeout))


@dataclass(frozen=True)
class SSH:
    """A cluster started over SSH on the hosts of a host file (like ``dask-ssh --hostfile``).

    The scheduler runs on the first host, one worker per line. TLS with a temporary
    certificate unless ``tls=False`` (not advised: anyone who can reach the scheduler
    port can run code as you). Unset SSH settings come from ``~/.ssh/config``.

    Parameters
    ----------
    hostfile : path
        One host per line (``#`` comments).
    user : str, optional
        SSH user name.
    port : int, optional
        SSH port.
    keys : sequence of path, optional
        Private key files.
    known_hosts : path or "none", optional
        known_hosts file, or "none" to skip host key checks.
    remote_python : str, optional
        The Python on the hosts (default: this one's path).
    tls : bool
        Encrypt and authenticate the cluster's connections.
    threads_per_worker, scheduler_port, dashboard, calibration, timeout
        As for :class:`Local`.
    security : distributed.Security, optional
        With ``tls``: these credentials (e.g. ``make_security(cert_dir, create=True)``, to
        give clients the same directory) instead of a temporary certificate.
    """

    hostfile: Any
    user: str | None = None
    port: int | None = None
    keys: tuple = ()
    known_hosts: str | None = None
    remote_python: str | None = None
    tls: bool = True
    threads_per_worker: int = 1
    scheduler_port: int = 0
    dashboard: bool = True
    calibration: Any = None
    timeout: float = 60.0
    security: Any = None

    def __post_init__(self):
        object.__setattr__(self, "hostfile", os.fspath(self.hostfile))
        _require("asyncssh", "a host-file (SSH) cluster", "pip install 'femfreq[ssh]'")
        if self.port is not None:
            object.__setattr__(self, "port", v.as_int("port", self.port, minimum=1, maximum=65535))
        if self.user is not None and (not str(self.user).strip()
                                      or any(c.isspace() or c == "@" for c in str(self.user))):
            raise ValueError(f"user must be a user name (got {self.user!r})")
        keys = (self.keys,) if isinstance(self.keys, (str, os.PathLike)) else tuple(self.keys or ())
        object.__setattr__(self, "keys", tuple(os.path.expanduser(os.fspath(k)) for k in keys))
        object.__setattr__(self, "threads_per_worker",
                           v.as_int("threads_per_worker", self.threads_per_worker, minimum=1))
        object.__setattr__(self, "scheduler_port",
                           v.as_int("scheduler_port", self.scheduler_port, minimum=0, maximum=65535))
        object.__setattr__(self, "timeout", v.positive_float("timeout", self.timeout))

    @property
    def connect_options(self) -> dict:
        """Options for ``asyncssh.connect``: only those given (the rest from ``~/.ssh/config``)."""
        opts: dict = {}
        if self.port is not None:
            opts["port"] = self.port
        if self.user is not None:
            opts["username"] = self.user
        if self.keys:
            opts["client_keys"] = list(self.keys)
        if self.known_hosts is not None:
            opts["known_hosts"] = (None if str(self.known_hosts).lower() == "none"
                                   else os.path.expanduser(os.fspath(self.known_hosts)))
        return opts


@dataclass(frozen=True)
class JobQueue:
    """Workers started as batch jobs with dask-jobqueue (extra ``femfreq[jobqueue]``).

    Parameters
    ----------
    kind : {"slurm", "pbs", "lsf", "sge", "htcondor"}
        The batch system.
    n_workers : int
        Jobs (one worker each).
    threads_per_worker : int
        Cores per job.
    options : mapping, optional
        Passed to the dask-jobqueue cluster class (``queue``, ``account``, ``memory``,
        ``walltime``, ...).
    security : distributed.Security, optional
        TLS credentials.
    dashboard, calibration, timeout
        As for :class:`Local`.
    """

    kind: str
    n_workers: int = 1
    threads_per_worker: int = 1
    options: tuple = field(default=())
    security: Any = None
    dashboard: bool = True
    calibration: Any = None
    timeout: float = 60.0

    def __post_init__(self):
        object.__setattr__(self, "kind", str(self.kind).lower())
        _require("dask_jobqueue", f"JobQueue({self.kind!r})", "pip install 'femfreq[jobqueue]'")
        object.__setattr__(self, "n_workers", v.as_int("n_workers", self.n_workers, minimum=0))
        object.__setattr__(self, "threads_per_worker",
                           v.as_int("threads_per_worker", self.threads_per_worker, minimum=1))
        object.__setattr__(self, "options", _frozen_mapping("options", self.options))
        object.__setattr__(self, "timeout", v.positive_float("timeout", self.timeout))


def _bytes(name: str, value) -> int:
    """A positive number of bytes: an int, or a string such as ``"8GB"`` / ``"512 MiB"``."""
    if isinstance(value, str):
        from dask.utils import parse_bytes

        try:
            value = parse_bytes(value)
        except ValueError:
            raise ValueError(f"{name} must be bytes or a size such as '8GB' (got {value!r})") from None
    return int(v.positive_float(name, value))


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only (``localhost``, 127.x, ::1).

    Any other name, ``""`` and ``0.0.0.0`` (every interface) are not: a name is not
    resolved, so one that happens to point at loopback still counts as reachable.

    >>> _is_loopback("127.0.0.1"), _is_loopback("localhost"), _is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _scheduler_address(address: str) -> str:
    """``address`` with its scheme (``host:port`` is ``tcp://host:port``); ValueError if malformed.

    Only ``tcp://`` and ``tls://`` are accepted, with a host and a port in 1..65535.
    """
    expected = "expected 'tcp://host:port' or 'tls://host:port'"
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
        if ":" not in rest or rest.startswith(":"):
            raise ValueError(f"not a scheduler address: {address!r}; expected 'local', "
                             "'tcp://host:port' or 'tls://host:port'")
    if scheme not in ("tcp", "tls"):
        raise ValueError(f"unsupported scheduler address {address!r}: only tcp:// and tls:// are supported; {expected}")
    host, _, port = rest.rpartition(":")
    if not host or not host.strip("[]") or any(c.isspace() or c in "/?#@" for c in host) or not port.isdigit() \
            or not 1 <= int(port) <= 65535:
        raise ValueError(f"not a scheduler address: {address!r}; {expected} (a host and a port in 1..65535)")
    return f"{scheme}://{host}:{int(port)}"


def _require(module: str, what: str, install: str) -> None:
    """ImportError naming ``install`` if ``module`` (or a package it needs) cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        if missing != module and missing.split(".")[0] == "cryptography":
            install = "pip install cryptography"
        raise ImportError(f"{what} needs {missing.split('.')[0]}, which is not installed: {install}") from exc


def as_cluster(cluster):
    """A where-object from a string, None or an object.

    ``None`` or ``"serial"`` -> :class:`Serial`; ``"local"`` -> :class:`Local`; an address
    (``"tcp://host:port"``, ``"tls://host:port"``, ``"host:port"``) -> :class:`Scheduler`;
    option objects, a ``distributed.Client`` or a dask ``Cluster`` are returned as they are.
    """
    if cluster is None or cluster == "serial":
        return Serial()
    if cluster == "local":
        return Local()
    if isinstance(cluster, (Serial, Local, Scheduler, SSH, JobQueue)):
        return cluster
    if isinstance(cluster, str):
        return Scheduler(cluster)
    if type(cluster).__module__.split(".")[0] in ("distributed", "dask_jobqueue"):
        return cluster  # a connected Client, or a dask Cluster object
    raise TypeError(
        "cluster must be None (serial), 'local', a scheduler address, Serial/Local/Scheduler/SSH/JobQueue(...) "
        f"or a distributed.Client (got {cluster!r})"
    )


def method_from(name="direct", *, solver="auto", tol=1e-6, skip_singular=False) -> Direct | Fast:
    """The method object from the flat settings of the command line and the MATLAB adapter."""
    if name == "direct":
        return Direct(solver=solver, tol=tol, skip_singular=skip_singular)
    if name == "fast":
        return Fast(tol=tol, solver=solver, skip_singular=skip_singular)
    raise ValueError(f"unknown method {name!r}; pick one of {sorted(_METHODS)}")


def cluster_from(*, serial=False, scheduler=None, hostfile=None, n_workers=None, security=None,
                 calibration=None, ssh=None, connect_timeout=None):
    """The where-object from the flat settings of the command line and the MATLAB adapter.

    ``serial`` -> :class:`Serial`; ``scheduler`` (an address) -> :class:`Scheduler`
    (``connect_timeout``: seconds to reach it, default that of :class:`Scheduler`);
    ``hostfile`` -> :class:`SSH` (``ssh``: a mapping of its SSH settings, e.g. ``user``,
    ``port``, ``keys``); else :class:`Local` with ``n_workers``.
    """
    given = [name for name, value in (("serial", serial), ("scheduler", scheduler), ("hostfile", hostfile))
             if value]
    if len(given) > 1:
        raise ValueError(f"give at most one of serial, scheduler and hostfile (got {', '.join(given)})")
    if ssh and not hostfile:
        raise ValueError(f"the SSH settings {', '.join(sorted(ssh))} need a host file")
    if connect_timeout is not None and not scheduler:
        raise ValueError("a connect timeout (--connect-timeout) needs a scheduler address (--scheduler)")
    if serial:
        return Serial()
    if scheduler:
        extra = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        return Scheduler(scheduler, security=security, n_workers=n_workers, calibration=calibration, **extra)
    if hostfile:
        return SSH(hostfile, calibration=calibration, **dict(ssh or {}))
    return Local(n_workers=n_workers, calibration=calibration)
