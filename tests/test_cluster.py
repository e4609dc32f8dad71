"""Cluster plumbing: chunk plans, host files, clients, TLS, the ``femfreq cluster`` command, SSH."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from distributed import Security

from femfreq import execute as cluster
from femfreq.errors import ClusterError
from femfreq.execute._quiet_close import QuietClose
from femfreq.execute.ssh import _ssh_logging_config
from femfreq._cli.main import main
from femfreq.execute import make_security, open_client, read_hostfile, run_on_dask
from femfreq.plan import plan_chunks
from femfreq.execute.task import solve_chunk
from femfreq.options import SSH, Direct, JobQueue, Local, Scheduler, cluster_from
from helpers import assemble

ROOT = Path(__file__).resolve().parents[1]

from operator import add  # importable on every worker, unlike a function of this module


# -- plan_chunks ------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(
    n_freqs=st.integers(0, 5000),
    n_workers=st.integers(1, 64),
    spf=st.one_of(st.none(), st.floats(1e-4, 30.0)),
    method=st.sampled_from(["direct", "fast"]),
)
def test_plan_covers_every_frequency_once_in_contiguous_blocks(n_freqs, n_workers, spf, method):
    chunks = plan_chunks(n_freqs, n_workers, seconds_per_freq=spf, method=method)
    if n_freqs == 0:
        assert chunks == []
        return
    for c in chunks:
        assert c.dtype == np.int64 and c.size >= 1
        np.testing.assert_array_equal(np.diff(c), 1)  # contiguous
    allpos = np.sort(np.concatenate(chunks))
    np.testing.assert_array_equal(allpos, np.arange(n_freqs))
    sizes = np.array([c.size for c in chunks])
    assert sizes.max() - sizes.min() <= 1  # balanced sizes
    # interleaved order: the last block first, then the first block
    assert chunks[0][-1] == n_freqs - 1
    if len(chunks) > 1:
        assert chunks[1][0] == 0
    per_worker = 4 if method == "fast" else 8
    min_size = 16 if method == "fast" else 1
    if spf is not None:
        min_size = max(min_size, int(np.ceil(0.2 / spf)))
    if n_freqs >= n_workers * per_worker * min_size:
        assert len(chunks) >= n_workers * per_worker  # many more chunks than workers
    else:
        # not enough work for that many chunks: none shorter than the overhead bound
        assert sizes.min() >= min(min_size, n_freqs) or len(chunks) == 1


def test_plan_chunk_duration_follows_the_cost_estimate():
    # 2000 freqs at 0.3 s on 2 workers: aim at ~10 s tasks, not 16 chunks of 37 s
    chunks = plan_chunks(2000, 2, seconds_per_freq=0.3)
    sizes = {c.size for c in chunks}
    assert max(sizes) * 0.3 <= 10.0 + 0.3 and len(chunks) >= 16
    # cheap frequencies: no chunk shorter than min_task_seconds
    chunks = plan_chunks(2000, 2, seconds_per_freq=0.001, min_task_seconds=0.5)
    assert min(c.size for c in chunks) >= 500 and len(chunks) == 4


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((-1, 2), {}, ValueError, "n_freqs must be >= 0"),
        ((10, 0), {}, ValueError, "n_workers must be >= 1"),
        ((10.5, 2), {}, TypeError, "n_freqs must be an integer"),
        ((10, 2), {"method": "magic"}, ValueError, "unknown method 'magic'"),
        ((10, 2), {"seconds_per_freq": -1.0}, ValueError, "seconds_per_freq must be a positive"),
        ((10, 2), {"target_task_seconds": 0.0}, ValueError, "target_task_seconds must be a positive"),
        ((10, 2), {"chunks_per_worker": 0}, ValueError, "chunks_per_worker must be >= 1"),
    ],
)
def test_plan_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        plan_chunks(*args, **kwargs)


# -- host files -------------------------------------------------------------------------
def test_hostfile_comments_blanks_and_repeats(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("# cluster\n\nnode1  # scheduler here\nnode2\n  node2\nalice@10.0.0.7\n")
    assert read_hostfile(f) == ["node1", "node2", "node2", "alice@10.0.0.7"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("node1\nnode2 node3\n", r"hosts:2: expected one host per line, got 'node2 node3'"),
        ("node1\n\nno;de\n", r"hosts:3: not a host name or address: 'no;de'"),
        ("@node\n", r"hosts:1: not a host name"),
        ("# nothing\n\n", r"hosts: no hosts"),
    ],
)
def test_hostfile_errors_name_file_and_line(tmp_path, text, match):
    f = tmp_path / "hosts"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_hostfile(f)


def test_hostfile_missing_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        read_hostfile(tmp_path / "nope")


# -- open_client ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: None, ValueError, r"Serial\(\) runs in this process without dask"),
        (lambda: 42, TypeError, "cluster must be None \\(serial\\), 'local', a scheduler address"),
        (lambda: Security(), TypeError, "cluster must be Local, Scheduler, SSH, JobQueue"),
        (lambda: "my-laptop", ValueError, "not a scheduler address: 'my-laptop'"),
        (lambda: Scheduler("http://host:8786"), ValueError, "unsupported scheduler address 'http://host:8786'"),
        (lambda: Scheduler("ucx://host:8786"), ValueError, "only tcp:// and tls:// are supported"),
        (lambda: "tls://127.0.0.1:1", ValueError, "is a TLS scheduler: give its credentials"),
        (lambda: JobQueue("torque-ish"), ValueError, "unknown job queue 'torque-ish'"),
        (lambda: SSH("h", tls=False, security=make_security()), ValueError, r"SSH\(tls=False\) contradicts"),
        # the option objects check their own fields
        (lambda: Local(n_workers=0), ValueError, "n_workers must be >= 1"),
        (lambda: Local(threads_per_worker=0), ValueError, "threads_per_worker must be >= 1"),
        (lambda: Scheduler("tcp://h:1", n_workers=0), ValueError, "n_workers must be >= 1"),
        (lambda: Scheduler(""), TypeError, "address must be a scheduler address"),
        (lambda: JobQueue("slurm", n_workers=-1), ValueError, "n_workers must be >= 0"),
        (lambda: SSH("h", port=70000), ValueError, "port must be"),
        (lambda: Local(timeout=0), ValueError, r"timeout must be finite and > 0"),
        (lambda: cluster_from(scheduler="tcp://h:1", hostfile="h"), ValueError, "at most one of"),
    ],
)
def test_open_client_rejects_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        with open_client(make()):
            pass


def test_unreachable_scheduler_is_a_clear_oserror():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(OSError, match=f"cannot connect to the dask scheduler at tcp://127.0.0.1:{port}"):
        with open_client(Scheduler(f"127.0.0.1:{port}", timeout=1)):
            pass


# -- TLS and the `femfreq cluster` command ---------------------------------------------
def _start_cli(args, tmp_path):
    """``femfreq cluster ARGS`` in a subprocess; returns (proc, dict of printed fields)."""
    log = open(tmp_path / "cli.err", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "femfreq", "cluster", "--scheduler-port", "0", "--no-dashboard", *args],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    fields = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, _, value = line.partition(": ")
        fields[key.strip()] = value.strip()
        if line.startswith("press Ctrl-C"):
            return proc, fields
    proc.kill()
    proc.wait()
    raise RuntimeError(f"femfreq cluster did not come up: {fields} {(tmp_path / 'cli.err').read_text()[-2000:]}")


def _stop_cli(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, out


def test_cli_tls_cluster_serves_only_clients_with_the_credentials_until_ctrl_c(tmp_path):
    cert_dir = tmp_path / "certs"
    proc, fields = _start_cli(["--workers", "1", "--tls", "--cert-dir", str(cert_dir)], tmp_path)
    try:
        address = fields["scheduler"]
        assert address.startswith("tls://127.0.0.1:") and fields["workers"] == "1"
        assert fields["dashboard"] == "off" and str(cert_dir) in fields["connect with"]  # --no-dashboard
        assert oct((cert_dir / "key.pem").stat().st_mode & 0o777) == "0o600"
        # with the credentials: works, also through open_client
        security = make_security(cert_dir)
        with open_client(Scheduler(address, security=security)) as client:
            assert client.submit(add, 1, 1).result(timeout=30) == 2
            # an existing Client is used as is and not closed
            with open_client(client) as same:
                assert same is client
            assert client.status == "running"
            assert client.submit(add, 41, 1).result(timeout=30) == 42
            with pytest.raises(TimeoutError, match="only 1 of 3 dask workers joined"):
                with open_client(Scheduler(address, security=security, n_workers=3, timeout=0.5)):
                    pass
        # without them: refused
        with pytest.raises(ValueError, match="is a TLS scheduler"):
            with open_client(address):
                pass
        # with someone else's certificate: the handshake fails, nothing is submitted
        with pytest.raises(OSError, match="TLS handshake failed"):
            with open_client(Scheduler(address, security=make_security(), connect_timeout=5)):
                pass
        # plain TCP to the TLS port: no dask handshake comes, and femfreq's wait for it has a
        # hard deadline (dask's own Client(..., timeout=3) once hung here for 10+ minutes)
        t0 = time.monotonic()
        with pytest.raises(OSError, match="cannot connect to the dask scheduler at tcp://"):
            with open_client(Scheduler(address.replace("tls://", "tcp://"), connect_timeout=3)):
                pass
        assert time.monotonic() - t0 < 30
    finally:
        code, out = _stop_cli(proc)
    assert code == 0 and "stopping the cluster" in out


def test_dashboard_link_only_when_the_dashboard_is_on(caplog, dask_processes):
    import urllib.request

    from distributed import Client

    def announced():
        lines = [r.getMessage() for r in caplog.records if r.name == "femfreq.execute"]
        caplog.clear()
        return " ".join(lines)

    caplog.set_level(logging.INFO, logger="femfreq.execute")
    with open_client(Local(n_workers=1, dashboard=False)) as client:
        assert cluster.dashboard_link(client) is None  # its HTTP server runs, but serves no dashboard
    text = announced()
    assert "dashboard off" in text and "http" not in text
    with open_client(Local(n_workers=1)) as client:
        link = cluster.dashboard_link(client)
        assert link.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200
    assert f"dashboard {link}" in announced()
    # someone else's scheduler, started with `dask scheduler --no-dashboard`
    with Client(dask_processes.scheduler(), timeout=30) as client:
        assert cluster.dashboard_link(client) is None


def test_make_security_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="TLS certificate files missing"):
        make_security(tmp_path / "none")
    sec = make_security(tmp_path / "new", create=True)
    assert sec.require_encryption and sec.tls_ca_file == str(tmp_path / "new" / "ca.pem")
    again = make_security(tmp_path / "new")  # re-read, not regenerated
    assert (tmp_path / "new" / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE")
    assert again.tls_worker_key == sec.tls_worker_key
    (tmp_path / "new" / "ca.pem").unlink()
    with pytest.raises(FileNotFoundError, match="only some of"):
        make_security(tmp_path / "new", create=True)
    assert "BEGIN" in make_security().tls_ca_file  # temporary: in memory


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["cluster", "--tls", "--no-tls"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["cluster", "--ssh-port", "22"]) == 2
    assert "need --hostfile" in capsys.readouterr().err
    bad = tmp_path / "hosts"
    bad.write_text("a b\n")
    assert main(["cluster", "--hostfile", str(bad)]) == 2
    assert f"{bad}:1: expected one host per line" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["cluster", "sweep"])
@pytest.mark.parametrize(
    "options, message",
    [
        (["--ssh-port", "70000"], "--ssh-port must be a port number in 1..65535 (got 70000)"),
        (["--ssh-key", "{tmp}/no-key"], "--ssh-key {tmp}/no-key: no such file"),
        (["--known-hosts", "{tmp}/nope"], "--known-hosts {tmp}/nope: no such file (or 'none' to skip host key checks)"),
        (["--ssh-user", "a b"], "--ssh-user must be a user name (got 'a b')"),
    ],
)
def test_cli_ssh_options_are_shared_and_checked(command, options, message, tmp_path, capsys):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n")
    model = ["beam", "--no-progress"] if command == "sweep" else []
    argv = [command, *model, "--hostfile", str(hostfile), *(o.format(tmp=tmp_path) for o in options)]
    assert main(argv) == 2  # checked before any SSH connection
    assert capsys.readouterr().err.strip() == f"femfreq: error: {message.format(tmp=tmp_path)}"
    assert main([command, *model, "--ssh-user", "me", "--serial" if model else "--no-dashboard"]) == 2
    assert "the SSH options --ssh-user need --hostfile" in capsys.readouterr().err


# -- SSH host file against a real sshd -------------------------------------------------
def _ssh(sshd, hostfile, **fields):
    """The SSH option for the test sshd (its port, user and key; no host key check)."""
    settings = dict(port=sshd["port"], user=sshd["user"], keys=[sshd["key"]], known_hosts="none")
    settings.update(fields)
    return SSH(hostfile, **settings)


# A worker that closes while a heartbeat waits for the scheduler's answer logs "Failed to
# communicate with scheduler during heartbeat" with two tracebacks (dask/distributed#7105):
# the end of a sweep that went well printed one in CI. This scheduler answers every
# heartbeat 0.3 s late and asks for the next at once, so one is always in flight.
_HEARTBEAT_IN_FLIGHT = """
import asyncio
import time

from femfreq.execute import open_client
from femfreq.options import Local


def slow_heartbeats(dask_scheduler):
    answer = dask_scheduler.handlers["heartbeat_worker"]
    dask_scheduler.femfreq_slow = 0

    async def slow(*args, **kwargs):
        await asyncio.sleep(0.3)
        dask_scheduler.femfreq_slow += 1
        response = answer(*args, **kwargs)
        if isinstance(response, dict) and "heartbeat-interval" in response:
            response["heartbeat-interval"] = 0.001
        return response

    dask_scheduler.handlers["heartbeat_worker"] = slow


if __name__ == "__main__":
    with open_client(Local(n_workers=2)) as client:
        client.run_on_scheduler(slow_heartbeats)
        time.sleep(2.0)  # a worker's first heartbeat comes 1 s after its start
        print(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.femfreq_slow))
"""


def test_local_cluster_closes_quietly_with_a_heartbeat_in_flight(tmp_path):
    script = tmp_path / "in_flight.py"
    script.write_text(_HEARTBEAT_IN_FLIGHT, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert int(proc.stdout.split()[-1]) >= 4  # the slow answers did happen: both workers, twice or more
    assert "Traceback" not in proc.stderr and "heartbeat" not in proc.stderr, proc.stderr[-4000:]


def test_a_plugin_that_cannot_be_registered_does_not_stop_the_cluster(caplog):
    """A worker that fails the plugin's setup makes ``register_plugin`` raise (distributed
    2026.8); the quieter close is not worth a failed sweep."""
    from femfreq.execute._quiet_close import register_quiet_close

    class Refusing:  # what a Client does when a worker cannot set the plugin up
        def register_plugin(self, plugin, name=None):
            raise RuntimeError(f"worker plugin {name} failed to setup")

    caplog.set_level(logging.DEBUG, logger="femfreq.execute._quiet_close")
    register_quiet_close(Refusing())
    assert "could not register femfreq-quiet-close" in caplog.text


def test_hostfile_cluster_over_ssh_with_tls(sshd, tmp_path, caplog):
    from femfreq.system import System
    import scipy.sparse as sp

    hostfile = tmp_path / "hosts"
    hostfile.write_text("# scheduler and a worker on the first host\n127.0.0.1\n\n127.0.0.1  # second worker\n")
    n = 30
    K = 100.0 * (sp.diags([2.0] * n) - sp.diags([1.0] * (n - 1), 1) - sp.diags([1.0] * (n - 1), -1))
    system = System(K=K, C=0.01 * K, M=sp.eye(n), b=np.arange(1.0, n + 1), output_dofs=[0, n - 1])
    freqs = np.linspace(0.0, 3.0, 24)
    load = np.ones(freqs.size, dtype=complex)
    tasks = [(c, freqs[c], load[c]) for c in plan_chunks(freqs.size, 2)]
    caplog.set_level(logging.DEBUG, logger="femfreq.execute.remote")
    with _Watchdog(sshd, 150), \
            open_client(_ssh(sshd, hostfile, timeout=90)) as client:
        assert client.scheduler.address.startswith("tls://")  # TLS by default
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(w.startswith("tls://") for w in workers)
        # the remote output is read after start-up: 16 MiB on stderr (more than the SSH
        # channel and the pipe hold; unread, 20 MiB froze the scheduler here) must not block
        # the scheduler or a worker in its write
        def flood():
            for i in range(1024):
                sys.stderr.write(f"flood {i} " + "x" * 16384 + "\n")
            sys.stderr.flush()

        client.run_on_scheduler(flood)
        client.run(flood)
        assert client.submit(add, 1, 2).result(timeout=30) == 3
        assert all(client.run(lambda dask_worker: QuietClose.name in dask_worker.plugins).values())
        results = list(run_on_dask(client, system, tasks, method=Direct(solver="superlu")))
        deadline = time.monotonic() + 30
        while sum("flood 1023 " in r.getMessage() for r in caplog.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sum("flood 1023 " in r.getMessage() for r in caplog.records) == 3  # to the DEBUG log
    got = assemble(results, freqs.size, 2)
    serial = solve_chunk(system, np.arange(freqs.size), freqs, load, Direct(solver="superlu")).response
    assert np.max(np.abs(got - serial)) <= 1e-12 * np.max(np.abs(serial))


def test_hostfile_cluster_unreachable_host_names_the_file(sshd, tmp_path, monkeypatch):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys either
    with pytest.raises(ClusterError, match=f"could not start the SSH cluster of {hostfile}"):
        with open_client(_ssh(sshd, hostfile, keys=(), timeout=20)):  # no key: authentication fails
            pass


# -- dask-jobqueue (no batch system here: the cluster is built, its job script checked) --
def test_jobqueue_cluster_builds_a_job_script_and_keeps_replicas():
    pytest.importorskip("dask_jobqueue")
    opts = {"memory": "1GB", "queue": "short", "walltime": "01:00:00"}
    with open_client(JobQueue("slurm", n_workers=0, options=opts, timeout=10)) as client:
        script = client.cluster.job_script()
        policies = client.run_on_scheduler(
            lambda dask_scheduler: [type(p).__name__ for p in dask_scheduler.extensions["amm"].policies]
        )
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    assert "#SBATCH -p short" in script and "#SBATCH -t 01:00:00" in script
    assert "--nthreads 1" in script and "distributed.cli.dask_worker" in script
    assert "ReduceReplicas" not in policies
    assert QuietClose.name in plugins  # for the jobs that join later


# -- SSH start-up under a quiet dask log config (issue 3) -------------------------------
# SSHCluster forwards this process's dask config to the remote processes and waits for
# their "Scheduler at:" / "Start worker at:" log lines on stderr. `femfreq` (main) quiets
# dask with DASK_LOGGING__DISTRIBUTED=warning, which hid those lines: start-up hung.
_QUIET = {"logging": {"distributed": "warning"}}  # what a fresh `femfreq` process has


@pytest.mark.parametrize(
    "cfg",
    [
        _QUIET,
        {"distributed.logging": {"distributed": "error", "distributed.worker": "critical"}},
        {"logging": {"version": 1, "loggers": {"distributed": {"level": "WARNING"},
                                                "distributed.scheduler": {"level": "ERROR"}}}},
    ],
    ids=["env-style", "distributed-section", "dictConfig"],
)
def test_ssh_logging_config_lets_remote_processes_print_their_startup_lines(cfg):
    # a fresh interpreter with the config SSHCluster would forward (as the remote gets it)
    import dask

    with dask.config.set({**cfg}):
        with dask.config.set(_ssh_logging_config()):
            inherit = dask.config.serialize(dask.config.global_config)
    code = (
        "import logging, distributed\n"
        "print(*(logging.getLevelName(logging.getLogger(n).getEffectiveLevel()) for n in "
        "('distributed.scheduler', 'distributed.worker', 'distributed.nanny')))\n"
    )
    env = dict(os.environ, DASK_INTERNAL_INHERIT_CONFIG=inherit)
    env.pop("DASK_LOGGING__DISTRIBUTED", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    scheduler, worker, nanny = out.stdout.split()
    assert (scheduler, worker) == ("INFO", "INFO")
    assert nanny in ("WARNING", "ERROR")  # the rest stays as quiet as asked


def test_ssh_logging_config_leaves_a_verbose_config_alone():
    import dask

    for cfg in ({}, {"logging": {"distributed": "debug"}}, {"logging": {"distributed.scheduler": "info",
                                                                         "distributed.worker": 10}}):
        with dask.config.set(cfg):
            assert _ssh_logging_config() == {}


def test_hostfile_cluster_start_up_that_hangs_is_a_timeout_error(sshd, tmp_path):
    # a remote "python" that runs but never prints the start-up line: a clear error in
    # `timeout` seconds instead of waiting forever (and the session is closed)
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n")
    t0 = time.monotonic()
    with _Watchdog(sshd, 90):
        with pytest.raises(TimeoutError, match=f"the SSH cluster of {hostfile} did not start within 3 s"):
            # a remote "python" with no output that exits at EOF
            with open_client(_ssh(sshd, hostfile, timeout=3, remote_python="cat >/dev/null #")):
                pass
    assert time.monotonic() - t0 < 60


class _Watchdog:
    """Ends a hung SSH start-up: kills the sshd sessions' processes (and ``proc``) after ``seconds``."""

    def __init__(self, sshd, seconds, proc=None):
        import threading

        self.fired = False

        def fire():
            self.fired = True
            if proc is not None:
                proc.kill()
            sshd["kill_sessions"]()

        self.timer = threading.Timer(seconds, fire)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        assert not self.fired, "the SSH cluster hung (watchdog fired)"


def _wait_no_sessions(sshd, timeout=20.0):
    """The remote scheduler/workers exit with their SSH sessions (returns the leftovers)."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        left = [p.cmdline() for p in psutil.Process(sshd["pid"]).children(recursive=True)
                if "femfreq.execute" in " ".join(p.cmdline())]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_cli_cluster_over_ssh_through_main_starts_serves_and_stops(sshd, tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n127.0.0.1\n")
    cert_dir = tmp_path / "certs"
    env_quiet = {k: v for k, v in os.environ.items() if k != "DASK_LOGGING__DISTRIBUTED"}
    args = ["--hostfile", str(hostfile), "--ssh-port", str(sshd["port"]), "--ssh-key", sshd["key"],
            "--known-hosts", "none", "--cert-dir", str(cert_dir), "--timeout", "60"]
    proc = subprocess.Popen(  # `python -m femfreq` = main(): sets DASK_LOGGING__DISTRIBUTED itself
        [sys.executable, "-m", "femfreq", "cluster", "--scheduler-port", "0", "--no-dashboard", *args],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "cli.err", "w"), text=True, env=env_quiet,
    )
    fields = {}
    try:
        with _Watchdog(sshd, 120, proc):
            for line in proc.stdout:
                key, _, value = line.partition(": ")
                fields[key.strip()] = value.strip()
                if line.startswith("press Ctrl-C"):
                    break
        assert fields.get("workers") == "2", f"{fields} {(tmp_path / 'cli.err').read_text()[-2000:]}"
        assert fields["scheduler"].startswith("tls://")
        with open_client(Scheduler(fields["scheduler"], security=make_security(cert_dir), n_workers=2,
                                   timeout=30)) as client:
            assert client.submit(add, 20, 22).result(timeout=30) == 42
    finally:
        code, out = _stop_cli(proc)
    assert code == 0 and "stopping the cluster" in out
    # quiet by default: femfreq's own lines only, no INFO from dask or asyncssh
    err = (tmp_path / "cli.err").read_text()
    assert all(line.startswith("femfreq: ") for line in err.splitlines()), err
    assert _wait_no_sessions(sshd) == []


def test_sweep_over_ssh_through_main_equals_serial(sshd, tmp_path, monkeypatch):
    import dask

    from femfreq import read_results

    # SSH settings come from ~/.ssh/config and ~/.ssh/known_hosts, as for dask-ssh
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host 127.0.0.1\n  Port {sshd['port']}\n  User {sshd['user']}\n  IdentityFile {sshd['key']}\n"
    )
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{sshd['port']} {sshd['host_key']}\n")
    monkeypatch.setenv("HOME", str(home))
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n127.0.0.1\n")
    common = ["sweep", "beam", "--level", "1", "--freqs", "1:50:8", "--no-progress"]
    # dask is imported already in this process, so main()'s DASK_LOGGING__DISTRIBUTED does
    # not reach its config: set what a fresh `femfreq` process has
    with dask.config.set(_QUIET), _Watchdog(sshd, 150):
        assert main([*common, "--hostfile", str(hostfile), "-o", str(tmp_path / "ssh.h5")]) == 0
    assert main([*common, "--serial", "-o", str(tmp_path / "serial.h5")]) == 0
    got, ref = read_results(tmp_path / "ssh.h5"), read_results(tmp_path / "serial.h5")
    assert got.complete and got.response.shape == ref.response.shape == (8, ref.response.shape[1])
    np.testing.assert_array_equal(got.freqs_hz, ref.freqs_hz)
    assert np.max(np.abs(got.response - ref.response)) <= 1e-12 * np.max(np.abs(ref.response))
    assert _wait_no_sessions(sshd) == []


def test_sweep_over_ssh_with_ssh_options_through_main(sshd, tmp_path, monkeypatch):
    import dask

    from femfreq import load_model, read_results, solve

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh: every setting from the options
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd['port']} {sshd['host_key']}\n")
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1\n")
    out = tmp_path / "ssh.h5"
    with dask.config.set(_QUIET), _Watchdog(sshd, 150):
        assert main(["sweep", "beam", "--level", "1", "--freqs", "1:50:6", "--no-progress", "-o", str(out),
                     "--hostfile", str(hostfile), "--ssh-port", str(sshd["port"]), "--ssh-user", sshd["user"],
                     "--ssh-key", sshd["key"], "--known-hosts", str(tmp_path / "known_hosts")]) == 0
    got = read_results(out)
    ref = solve(load_model("beam", level=1), freqs_hz="1:50:6", cluster=None, progress=False)
    assert got.complete and np.max(np.abs(got.response - ref.response)) <= 1e-12 * np.max(np.abs(ref.response))
    assert {w.split("://")[0] for w in got.chunks["worker"]} == {"tls"}  # ran on the SSH cluster (TLS)
    assert _wait_no_sessions(sshd) == []
