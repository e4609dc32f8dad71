"""Shared fixtures: real dask scheduler/worker processes and a throw-away sshd on loopback.

- ``dask_processes``: a factory; ``scheduler()`` starts ``dask scheduler`` on 127.0.0.1
  and returns its address, ``workers(address, n)`` starts ``n`` ``dask worker``
  processes (each with its nanny). Everything started is killed at teardown.
- ``sshd``: an OpenSSH server on a free loopback port with throw-away host and user
  keys (skipped, with the reason, only if ``/usr/sbin/sshd`` is missing); its sessions
  import the femfreq of this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 10.0, *, graceful: bool = True) -> None:
    """Stop a process started in its own session, and its children (by process group)."""
    if graceful and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind by the leader
    except ProcessLookupError:
        pass
    proc.wait(timeout)


class DaskProcesses:
    """Starts real ``dask scheduler`` / ``dask worker`` processes; :meth:`close` kills them."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []
        self._logs = []

    def _popen(self, args, name, env=None):
        log = open(self.tmp_path / f"{name}-{len(self.procs)}.log", "w")
        self._logs.append(log)
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # own process group: teardown kills nanny and worker together
        )
        self.procs.append(proc)
        return proc

    def scheduler(self, *args, env=None, timeout=30.0) -> str:
        """Start a scheduler on 127.0.0.1 (any free port) and return its address."""
        sfile = self.tmp_path / f"scheduler-{len(self.procs)}.json"
        proc = self._popen(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sfile), *args],
            "scheduler",
            env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with {proc.returncode}: {self.log_text()}")
            if sfile.exists():
                try:
                    return json.loads(sfile.read_text())["address"]
                except (json.JSONDecodeError, KeyError):
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"dask scheduler did not start within {timeout} s: {self.log_text()}")

    def workers(self, address: str, n: int = 1, *args, env=None) -> list[subprocess.Popen]:
        """Start ``n`` single-threaded workers (each with a nanny) on 127.0.0.1."""
        return [
            self._popen(
                ["distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--no-dashboard", "--memory-limit", "0", *args],
                "worker",
                env,
            )
            for _ in range(n)
        ]

    def log_text(self) -> str:
        out = []
        for log in self._logs:
            log.flush()
            out.append(Path(log.name).read_text()[-3000:])
        return "\n".join(out)

    def close(self):
        # throw-away processes: SIGKILL (a graceful dask shutdown costs seconds each)
        for proc in reversed(self.procs):
            _stop(proc, graceful=False)
        for log in self._logs:
            log.close()


@pytest.fixture
def dask_processes(tmp_path):
    """Factory of real dask scheduler/worker processes on loopback, killed at teardown."""
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.close()


@pytest.fixture(scope="module")
def dask_processes_module(tmp_path_factory):
    """Like ``dask_processes``, shared by the tests of one module (start once, kill at the end)."""
    procs = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        yield procs
    finally:
        procs.close()


@pytest.fixture
def sshd(tmp_path):
    """A throw-away OpenSSH server on 127.0.0.1 accepting one throw-away key for this user.

    Yields a dict: ``port``, ``key`` (client private key path), ``user``,
    ``host_key`` (the server's public key line, for a known_hosts file), ``pid`` (of the
    sshd listener), ``connect_options`` (for ``asyncssh.connect`` / dask's ``SSHCluster``).
    ``kill_sessions()`` kills every process the sessions started (a test's watchdog: a
    remote process killed ends its SSH channel, which ends a client waiting on it).
    """
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip(f"{SSHD} or ssh-keygen not installed (apt-get install openssh-server)")
    d = tmp_path / "sshd"
    d.mkdir()
    host_key, user_key = d / "host_key", d / "user_key"
    for key in (host_key, user_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (d / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    # the sessions' Python imports the femfreq under test (this checkout), not an installed one
    pythonpath = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                  *filter(None, [os.environ.get("PYTHONPATH")])])
    config = d / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {d / 'authorized_keys'}
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
LogLevel ERROR
SetEnv PYTHONPATH={pythonpath}
"""
    )
    # sshd insists on its privilege-separation directory
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"sshd rejected the test configuration: {check.stderr}")
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {proc.returncode}: {(d / 'sshd.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("sshd did not listen within 15 s")
            time.sleep(0.05)
        user = os.environ.get("USER") or __import__("getpass").getuser()
        yield {
            "port": port,
            "key": str(user_key),
            "user": user,
            "host_key": Path(f"{host_key}.pub").read_text().strip(),
            "pid": proc.pid,
            "kill_sessions": lambda: _kill_descendants(proc.pid),
            "connect_options": {"port": port, "username": user, "known_hosts": None, "client_keys": [str(user_key)]},
        }
    finally:
        # sessions start their own process groups: stop what they left running, by pid
        _kill_descendants(proc.pid)
        _stop(proc)
        log.close()


def _kill_descendants(pid: int) -> None:
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for child in children:
        with __import__("contextlib").suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)
