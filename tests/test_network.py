"""The cluster side under hostile conditions: bad scheduler ports, open listeners, signals, missing packages.

Every socket here is on 127.0.0.1. A listener beyond loopback is only ever refused
(checked before anything binds) or, for the ``--insecure`` warning, asked for and
then bound to 127.0.0.1 by a stand-in at the very last step.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from femfreq.execute import make_security, open_client
from femfreq.options import SSH, Local, Scheduler, cluster_from

ROOT = Path(__file__).resolve().parents[1]


# -- servers that are not dask schedulers -----------------------------------------------
class _Listener:
    """A TCP listener on 127.0.0.1 that accepts and then stays silent, or sends ``answer``."""

    def __init__(self, answer: bytes | None = None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.answer is not None:
                try:
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def silent_port():
    listener = _Listener()
    yield listener.port
    listener.close()


@pytest.fixture
def http_port():
    """A real HTTP server (answers bytes that are not dask's protocol)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # the server waits for a request: a dask client sends its handshake first, so this
    # also sends garbage on accept, as a misconfigured service would
    garbage = _Listener(answer=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    yield garbage.port
    garbage.close()
    server.shutdown()


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(address, **fields):
    with open_client(Scheduler(address, **fields)):
        pass


# -- item 8: one connect timeout, every failure one line naming the address --------------
@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_a_port_that_accepts_but_never_answers_times_out(silent_port, scheme):
    address = f"{scheme}://127.0.0.1:{silent_port}"
    security = make_security() if scheme == "tls" else None
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=f"cannot connect to the dask scheduler at {address}: no dask handshake "
                                           "within 1.5 s"):
        _connect(address, security=security, connect_timeout=1.5)
    assert time.monotonic() - t0 < 6


def test_a_port_that_answers_other_bytes_is_not_a_memory_error(http_port):
    address = f"tcp://127.0.0.1:{http_port}"
    t0 = time.monotonic()
    with pytest.raises(OSError, match=f"at {address}: it answers, but not in the dask protocol"):
        _connect(address, connect_timeout=5)
    assert time.monotonic() - t0 < 5


def test_a_host_name_lookup_that_hangs_ends_at_the_connect_timeout(monkeypatch):
    """The system resolver has no timeout: a DNS server that does not answer must not
    hold the connect for longer than ``connect_timeout`` (the lookup is a stand-in: no
    query leaves this machine)."""
    real = socket.getaddrinfo
    release = threading.Event()

    def hanging_lookup(host, *args, **kwargs):
        if host == "scheduler.example.invalid":
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    address = "tcp://scheduler.example.invalid:8786"
    t0 = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=f"at {address}: the host name lookup of "
                                               "'scheduler.example.invalid' did not finish within 0.5 s"):
            _connect(address, connect_timeout=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        release.set()


def test_an_unknown_host_is_named(monkeypatch):
    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(OSError, match="at tcp://scheduler.example.invalid:8786: unknown host "
                                      "'scheduler.example.invalid' \\(Name or service not known\\)"):
        _connect("tcp://scheduler.example.invalid:8786", connect_timeout=5)


def test_a_refused_port_fails_within_seconds(closed_port):
    address = f"tcp://127.0.0.1:{closed_port}"
    t0 = time.monotonic()
    with pytest.raises(OSError, match=f"at {address}: connection refused"):
        _connect(address)  # the default connect_timeout (10 s) is not waited out
    assert time.monotonic() - t0 < 4


def test_tls_and_tcp_mismatches_end_in_time(dask_processes):
    """Plain TCP to a TLS scheduler (hung for 10+ minutes under load) and TLS to a TCP one."""
    tcp = dask_processes.scheduler()
    t0 = time.monotonic()
    with pytest.raises(OSError, match=f"at {tcp.replace('tcp://', 'tls://')}: TLS handshake failed"):
        _connect(tcp.replace("tcp://", "tls://"), security=make_security(), connect_timeout=5)
    # a real scheduler answers: the client connects (and waits for a worker it has not got)
    with pytest.raises(TimeoutError, match="only 0 of 1 dask workers joined the scheduler at"):
        _connect(tcp, timeout=0.5, connect_timeout=5)
    assert time.monotonic() - t0 < 30


def test_default_connect_timeout_is_short_and_validated():
    assert Scheduler("tcp://127.0.0.1:8786").connect_timeout == 10.0
    with pytest.raises(ValueError, match="connect_timeout must be finite and > 0"):
        Scheduler("tcp://127.0.0.1:8786", connect_timeout=0)
    assert cluster_from(scheduler="127.0.0.1:1", connect_timeout=2.5).connect_timeout == 2.5
    with pytest.raises(ValueError, match="needs a scheduler address"):
        cluster_from(connect_timeout=2.5)


@pytest.mark.parametrize(
    "address, match",
    [
        ("ucx://127.0.0.1:8786", "only tcp:// and tls:// are supported"),
        ("inproc://127.0.0.1/1/2", "only tcp:// and tls:// are supported"),
        ("http://127.0.0.1:8786", "only tcp:// and tls:// are supported"),
        ("tcp://127.0.0.1", "not a scheduler address"),
        ("tcp://127.0.0.1:0", "a port in 1..65535"),
        ("tcp://127.0.0.1:99999", "a port in 1..65535"),
        ("tcp://:8786", "not a scheduler address"),
        ("tls://127.0.0.1:8786", "is a TLS scheduler: give its credentials"),
    ],
)
def test_scheduler_address_is_checked_when_the_option_is_made(address, match):
    with pytest.raises(ValueError, match=match):
        Scheduler(address)


def test_host_port_means_tcp():
    assert Scheduler("127.0.0.1:8786").address == "tcp://127.0.0.1:8786"
    assert Scheduler("tcp://[::1]:8786").address == "tcp://[::1]:8786"


def _femfreq(args, *, prelude="", timeout=120, env=None, **kwargs):
    """``femfreq ARGS`` in a fresh interpreter, after ``prelude`` (e.g. hiding a package)."""
    code = prelude + "\nimport sys\nfrom femfreq._cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, **kwargs)


def _one_error_line(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in lines if line.startswith("femfreq: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("command", ["sweep", "calibrate"])
@pytest.mark.parametrize("case", ["silent", "garbage", "refused", "scheme"])
def test_cli_bad_scheduler_is_one_line_exit_2(command, case, silent_port, http_port, closed_port, tmp_path):
    address = {"silent": f"tcp://127.0.0.1:{silent_port}", "garbage": f"tcp://127.0.0.1:{http_port}",
               "refused": f"tcp://127.0.0.1:{closed_port}", "scheme": "ucx://127.0.0.1:8786"}[case]
    extra = ["beam", "--level", "1", "--no-progress", "-o", str(tmp_path / "out.h5")] if command == "sweep" else []
    t0 = time.monotonic()
    proc = _femfreq([command, *extra, "--scheduler", address, "--connect-timeout", "2"], cwd=tmp_path)
    _one_error_line(proc, address)
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "out.h5").exists()
    if case == "scheme":  # refused before the model is built
        assert "free DOF" not in proc.stderr and "model beam" not in proc.stderr


# -- item 9: no open plain-TCP listener by accident; TLS on the default install --------
@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "myhost.example"])
def test_local_beyond_loopback_without_tls_is_refused_when_the_option_is_made(host):
    with pytest.raises(ValueError, match="without TLS: anyone who can reach the scheduler could run code as you"):
        Local(host=host)
    Local(host=host, security=make_security())  # only made, never opened here
    Local(host=host, insecure=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_local_on_loopback_needs_no_tls(host):
    Local(host=host)


#: makes the process refuse (and record) any bind beyond loopback: proves nothing listens there
_NO_WIDE_BIND = textwrap.dedent("""
    import socket, ipaddress
    _bind = socket.socket.bind
    def _guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("localhost",):
            try:
                wide = not ipaddress.ip_address(address[0]).is_loopback
            except ValueError:
                wide = True
            if wide:
                print("BOUND BEYOND LOOPBACK", address, file=__import__("sys").stderr)
                raise OSError("test: binding beyond loopback is not allowed here")
        return _bind(self, address)
    socket.socket.bind = _guarded
""")

#: LocalCluster asked for another interface binds 127.0.0.1 instead (the last step only)
_BIND_LOOPBACK = _NO_WIDE_BIND + textwrap.dedent("""
    import distributed
    _LocalCluster = distributed.LocalCluster
    def _loopback_cluster(*args, **kwargs):
        kwargs.update(host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return _LocalCluster(*args, **kwargs)
    distributed.LocalCluster = _loopback_cluster
""")


def test_cli_cluster_on_every_interface_without_tls_is_refused_before_binding(tmp_path):
    proc = _femfreq(["cluster", "--host", "0.0.0.0", "--scheduler-port", "0"], prelude=_NO_WIDE_BIND)
    _one_error_line(proc, "refusing to listen on '0.0.0.0' without TLS", "--insecure")
    assert "BOUND BEYOND LOOPBACK" not in proc.stderr and proc.stdout == ""


def _start_cluster(args, tmp_path, *, prelude="", env=None):
    """A ``femfreq cluster`` process (own session, as from a terminal) and its printed fields."""
    code = prelude + "\nimport sys\nfrom femfreq._cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    full_env.update(env or {})
    err = open(tmp_path / "cluster.err", "w+")
    proc = subprocess.Popen([sys.executable, "-c", code, "cluster", "--scheduler-port", "0", *args],
                            stdout=subprocess.PIPE, stderr=err, text=True, env=full_env, start_new_session=True)
    fields = {}
    timer = threading.Timer(120, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            key, _, value = line.partition(": ")
            fields[key.strip()] = value.strip()
            if line.startswith("press Ctrl-C"):
                return proc, fields
    finally:
        timer.cancel()
    proc.kill()
    proc.wait()
    raise AssertionError(f"femfreq cluster did not come up: {fields} {(tmp_path / 'cluster.err').read_text()}")


def _signal_and_wait(proc, sig, *, group):
    """Send ``sig`` (to the process group, as a terminal's Ctrl-C does) and collect the end."""
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    assert children  # the worker processes
    (os.killpg(proc.pid, sig) if group else proc.send_signal(sig))
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    gone, alive = psutil.wait_procs(children, timeout=20)
    return proc.returncode, out, alive


def test_cli_insecure_cluster_warns_with_its_real_ports(tmp_path):
    proc, fields = _start_cluster(["--host", "0.0.0.0", "--insecure", "--workers", "1"], tmp_path,
                                  prelude=_BIND_LOOPBACK)
    try:
        port = fields["scheduler"].rpartition(":")[2]
        dashboard_port = fields["dashboard"].split(":")[2].split("/")[0]
    finally:
        code, out, alive = _signal_and_wait(proc, signal.SIGINT, group=True)
    err = (tmp_path / "cluster.err").read_text()
    warning = [line for line in err.splitlines() if line.startswith("femfreq: warning: ")]
    assert len(warning) == 1, err
    assert f"scheduler port {port}" in warning[0] and f"dashboard port {dashboard_port}" in warning[0]
    assert "without TLS" in warning[0] and "port 0" not in warning[0]
    assert "BOUND BEYOND LOOPBACK" not in err and "Traceback" not in err
    assert code == 0 and not alive


def test_api_insecure_local_cluster_warns_with_its_real_ports(monkeypatch):
    import distributed

    real = distributed.LocalCluster

    def loopback_cluster(*args, **kwargs):  # asked for 0.0.0.0; binds 127.0.0.1 (test only)
        assert kwargs["host"] == "0.0.0.0"
        kwargs.update(host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", loopback_cluster)
    with pytest.warns(UserWarning, match=r"listens on 0\.0\.0\.0 without TLS \(scheduler port (\d+)") as record:
        with open_client(Local(n_workers=1, host="0.0.0.0", insecure=True, dashboard=False)) as client:
            port = client.scheduler.address.rpartition(":")[2]
    assert any(f"scheduler port {port}" in str(w.message) for w in record)


_NO_CRYPTOGRAPHY = "import sys\nfor name in ('cryptography',):\n    sys.modules[name] = None\n"


@pytest.mark.parametrize("args", [["--tls"], ["--cert-dir", "{tmp}/certs"], ["--hostfile", "{tmp}/hosts"]])
def test_tls_without_cryptography_is_one_line_and_leaves_no_folder(args, tmp_path):
    (tmp_path / "hosts").write_text("127.0.0.1\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _femfreq(["cluster", "--workers", "1", *(a.format(tmp=tmp_path) for a in args)],
                    prelude=_NO_CRYPTOGRAPHY, env={"TMPDIR": str(scratch)})
    _one_error_line(proc, "pip install cryptography")
    assert list(scratch.iterdir()) == [] and not (tmp_path / "certs").exists()


def test_cryptography_is_a_main_dependency():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "cryptography" for d in deps)


# -- item 10: Ctrl-C and SIGTERM end a `femfreq cluster` cleanly ---------------------------
@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c-in-a-terminal", "sigterm"])
def test_cli_cluster_stops_cleanly_on_a_signal(sig, group, tmp_path):
    proc, fields = _start_cluster(["--workers", "2"], tmp_path)
    assert fields["workers"] == "2"
    code, out, alive = _signal_and_wait(proc, sig, group=group)
    err = (tmp_path / "cluster.err").read_text()
    assert code == 0 and "stopping the cluster" in out, err
    assert "Traceback" not in err and "leaked semaphore" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 1, err  # at most femfreq's own "local dask cluster" line
    assert not alive  # the worker processes are gone


_CTRL_C_DURING_SPAWN = textwrap.dedent("""
    import os, signal, sys
    import distributed, psutil
    from femfreq.execute import open_client
    from femfreq.options import Local

    real = distributed.LocalCluster

    def cluster_then_ctrl_c(*args, **kwargs):  # a Ctrl-C while LocalCluster() starts the workers
        cluster = real(*args, **kwargs)
        workers = [c.pid for c in psutil.Process().children(recursive=True)]
        print("workers", " ".join(map(str, workers)), flush=True)
        os.killpg(os.getpgrp(), signal.SIGINT)  # a terminal's Ctrl-C: this process and its workers
        return cluster

    distributed.LocalCluster = cluster_then_ctrl_c
    if __name__ == "__main__":
        try:
            with open_client(Local(n_workers=2, dashboard=False)) as client:
                client.run(lambda: 1)
                print("not interrupted", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
""")


def test_a_ctrl_c_while_the_workers_start_interrupts_and_leaves_no_worker(tmp_path):
    import psutil

    script = tmp_path / "ctrl_c.py"
    script.write_text(_CTRL_C_DURING_SPAWN)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("workers ") and len(lines[0].split()) >= 3, (proc.stdout, proc.stderr)
    # the Ctrl-C is acted on once the cluster can be closed, not dropped
    assert lines[-1] == "interrupted", (proc.stdout, proc.stderr)
    # the workers got it too, and neither died of it nor printed it
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr, proc.stderr
    workers = [psutil.Process(int(pid)) for pid in lines[0].split()[1:] if psutil.pid_exists(int(pid))]
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive


# -- item 12: a missing optional package is one line naming the extra, before any work ---
def _hide(*names):
    return "import sys\n" + "".join(f"sys.modules[{n!r}] = None\n" for n in names)


def test_calibrate_primes_without_sympy(tmp_path):
    t0 = time.monotonic()
    proc = _femfreq(["calibrate", "--workers", "1", "--primes", "2:100", "-o", str(tmp_path / "c.json")],
                    prelude=_hide("sympy"))
    _one_error_line(proc, "sympy", "pip install 'femfreq[calibrate]'")
    assert proc.stdout == "" and not (tmp_path / "c.json").exists()  # no cluster was measured
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("command", ["cluster", "sweep", "calibrate"])
def test_hostfile_without_asyncssh(command, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n")
    extra = ["beam", "--level", "1", "--no-progress", "-o", str(tmp_path / "out.h5")] if command == "sweep" else []
    proc = _femfreq([command, *extra, "--hostfile", str(hosts)], prelude=_hide("asyncssh"),
                    env={"TMPDIR": str(tmp_path)}, cwd=tmp_path)
    _one_error_line(proc, "asyncssh", "pip install 'femfreq[ssh]'")
    assert "free DOF" not in proc.stderr and not (tmp_path / "out.h5").exists()
    assert not list(tmp_path.glob("femfreq-tls-*"))


def test_jobqueue_without_dask_jobqueue():
    code = _hide("dask_jobqueue") + textwrap.dedent("""
        from femfreq.options import JobQueue
        try:
            JobQueue("slurm", n_workers=1)
        except ImportError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.stdout.strip() == ("JobQueue('slurm') needs dask_jobqueue, which is not installed: "
                                  "pip install 'femfreq[jobqueue]'"), out.stderr


def test_ssh_option_without_asyncssh_names_the_extra():
    code = _hide("asyncssh") + "from femfreq.options import SSH\ntry:\n    SSH('hosts')\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert "pip install 'femfreq[ssh]'" in out.stdout, out.stderr


def test_cluster_without_bokeh_runs_with_the_dashboard_off(tmp_path):
    proc, fields = _start_cluster(["--workers", "1"], tmp_path, prelude=_hide("bokeh"))
    assert fields["dashboard"].startswith("not available")
    code, out, alive = _signal_and_wait(proc, signal.SIGINT, group=True)
    err = (tmp_path / "cluster.err").read_text()
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ["femfreq: warning: no dashboard: bokeh is not installed (pip install 'bokeh>=3.1')"], err
