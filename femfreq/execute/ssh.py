"""Clusters started over SSH from a host file (like ``dask-ssh --hostfile``).

Host files (:func:`read_hostfile`), dask's ``SSHCluster`` with the workarounds it
needs (remote log levels, draining the remote output, a start-up deadline), and the
entry point of the processes it starts: ``python -m femfreq.execute.ssh -m MODULE
ARGS`` runs ``MODULE`` and exits when its SSH session ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from ..errors import ClusterError
from ._common import WORKER_CONFIG, _announce, _wait_for_workers
from .security import _security_config, make_security

__all__ = ["read_hostfile"]

logger = logging.getLogger(__name__)


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
    remote = logging.getLogger(f"{__package__}.remote")

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
def ssh_client(where):
    """A cluster started over SSH (:class:`~femfreq.options.SSH`) and a client on it.

    The scheduler runs on the host file's first host, one worker per line; TLS with
    ``where.security``, or a temporary certificate, unless ``where.tls`` is false.
    """
    from distributed import Client

    from ._quiet_close import register_quiet_close

    try:
        import asyncssh  # noqa: F401
    except ImportError as exc:
        raise ImportError("host-file clusters need asyncssh: pip install 'femfreq[ssh]'") from exc
    security = _ssh_security(where)
    hosts = read_hostfile(where.hostfile)
    cluster = _start_ssh_cluster(where, hosts, security)
    try:
        _drain_remote_output(cluster)
        with Client(cluster, security=security or None, timeout=where.timeout) as client:
            _wait_for_workers(client, len(hosts), where.timeout, f"the SSH cluster of {where.hostfile}")
            register_quiet_close(client)
            _announce(client, f"SSH dask cluster ({len(hosts)} workers, {'TLS' if security else 'no TLS'})")
            yield client
    finally:
        cluster.close()


def _ssh_security(where):
    """The cluster's TLS credentials, or False for none (with a warning)."""
    if where.tls:
        return where.security or make_security()
    if where.security:
        raise ValueError("SSH(tls=False) contradicts its security credentials: drop one")
    warnings.warn(
        "starting an SSH cluster without TLS: anyone who can reach the scheduler port can run code as you",
        UserWarning,
        stacklevel=4,
    )
    return False


def _start_ssh_cluster(where, hosts, security):
    """dask's ``SSHCluster`` on ``hosts``, started within ``where.timeout`` seconds."""
    import dask
    from distributed.deploy.ssh import SSHCluster

    protocol = "tls" if security else "tcp"
    config = dict(WORKER_CONFIG)  # forwarded to the remote nannies by SSHCluster
    config.update(_ssh_logging_config())
    if security:
        # the remote scheduler and workers read it from the config SSHCluster forwards
        config.update(_security_config(security))
    scheduler_options = {
        "port": where.scheduler_port,
        "protocol": protocol,
        # the HTTP server always runs (health checks); ":0" avoids a clash on 8787
        "dashboard_address": ":0",
        "dashboard": bool(where.dashboard),
    }
    worker_options = {"nthreads": where.threads_per_worker, "protocol": protocol}
    logger.info("starting a dask cluster over SSH: scheduler on %s, %d workers", hosts[0], len(hosts))
    too_slow = (
        f"the SSH cluster of {where.hostfile} did not start within {where.timeout:g} s: no 'Scheduler at:' / "
        "'Start worker at:' line from the remote processes (do they run? does their dask logging "
        "config hide INFO?)"
    )
    with dask.config.set(config), _StartupDeadline(where.timeout) as deadline:
        try:
            cluster = SSHCluster(
                [hosts[0], *hosts],
                connect_options=where.connect_options,
                worker_options=worker_options,
                scheduler_options=scheduler_options,
                # run through our entry point so that they exit with their SSH session
                remote_python=f"{where.remote_python or sys.executable} -m femfreq.execute.ssh",
                security=security or None,
            )
        except Exception as exc:  # asyncssh and dask raise many kinds; name the file
            if deadline.finish():
                raise TimeoutError(too_slow) from exc
            raise ClusterError(
                f"could not start the SSH cluster of {where.hostfile}: {type(exc).__name__}: {exc}"
            ) from exc
        if deadline.finish():  # started just as the deadline passed: its connections may be closing
            cluster.close()
            raise TimeoutError(too_slow)
    return cluster


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
        raise SystemExit("usage: python -m femfreq.execute.ssh -m MODULE [ARGS...]")
    threading.Thread(target=watch_stdin, name="femfreq-ssh-watch", daemon=True).start()
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _remote_main(sys.argv[1:])

