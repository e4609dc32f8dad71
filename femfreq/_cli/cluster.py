"""Start a long-lived dask cluster (local or from a host file) for femfreq sweeps.

Starts a scheduler and workers, prints the scheduler address and the dashboard
URL, and waits until Ctrl-C (or SIGTERM), then closes them. Sweeps then connect
to it with ``femfreq sweep ... --scheduler ADDRESS`` or
``femfreq.solve(..., cluster=ADDRESS)``.

Local (default): worker processes on this machine, listening on --host (loopback
by default; another interface needs --tls, or --insecure to accept that anyone
who can reach it can run code as you). With --hostfile: over SSH, the scheduler
on the file's first host and one worker per line, TLS by default (the
certificates are written to --cert-dir, or to a temporary directory removed at
exit; give clients that directory).

Examples:
  femfreq cluster                                    # local workers on tcp://127.0.0.1:8786
  femfreq cluster --workers 4 --scheduler-port 0     # any free port
  femfreq cluster --host 0.0.0.0 --tls --cert-dir certs             # reachable from other hosts, TLS
  femfreq cluster --hostfile hosts --ssh-user me --cert-dir certs   # over SSH, TLS
  femfreq sweep satellite --scheduler tcp://127.0.0.1:8786          # then, in another shell
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time

from .. import execute as _cluster
from ..options import SSH, Local
from ._common import add_ssh_args, ssh_settings_from_args


def add_args(parser):
    """Register the ``femfreq cluster`` options."""
    where = parser.add_argument_group("where")
    where.add_argument("--hostfile", metavar="FILE",
                       help="start over SSH on the hosts of FILE (one per line, '#' comments, repeats = more workers; default: a local cluster)")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local workers (default: one per core)")
    where.add_argument("--threads-per-worker", type=int, default=1, metavar="T", help="threads per worker (default 1)")
    where.add_argument("--host", default="127.0.0.1",
                       help="local cluster: interface to listen on (default 127.0.0.1; others need --tls, "
                            "or --insecure)")
    where.add_argument("--scheduler-port", type=int, default=8786, metavar="P",
                       help="scheduler port (default 8786; 0 for any free port)")
    where.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    where.add_argument("--timeout", type=float, default=120.0, metavar="S",
                       help="seconds to wait for the workers (default 120)")
    sec = parser.add_argument_group("security")
    sec.add_argument("--tls", action="store_true", help="use TLS (the default with --hostfile)")
    sec.add_argument("--no-tls", action="store_true",
                     help="host file without TLS: anyone who can reach the port can run code as you")
    sec.add_argument("--insecure", action="store_true",
                     help="allow --host other than loopback without TLS: anyone who can reach the ports can "
                          "run code as you (default: refused)")
    sec.add_argument("--cert-dir", metavar="DIR",
                     help="TLS certificates ca.pem, cert.pem, key.pem in DIR (created if missing; "
                          "default: a temporary directory, removed at exit)")
    add_ssh_args(parser)


def run(args) -> int:
    """Start the cluster, print how to reach it, wait for Ctrl-C (or SIGTERM)."""
    if args.tls and args.no_tls:
        raise ValueError("--tls and --no-tls contradict each other")
    ssh = ssh_settings_from_args(args)
    use_tls = args.tls or args.cert_dir is not None or (args.hostfile is not None and not args.no_tls)
    if args.insecure and (use_tls or args.hostfile is not None):
        raise ValueError("--insecure is for a local cluster without TLS (--host); drop it")
    common = dict(threads_per_worker=args.threads_per_worker, scheduler_port=args.scheduler_port,
                  dashboard=not args.no_dashboard, timeout=args.timeout)
    # the option objects check their fields (a listener beyond loopback without TLS, asyncssh
    # installed) before any certificate is made or anything listens
    if args.hostfile is not None:
        SSH(args.hostfile, tls=use_tls, **ssh, **common)
    elif not use_tls:
        Local(n_workers=args.workers, host=args.host, insecure=args.insecure, **common)
    tmp_certs = None
    cert_dir = args.cert_dir
    try:
        security = None
        if use_tls:
            if cert_dir is None:
                tmp_certs = cert_dir = tempfile.mkdtemp(prefix="femfreq-tls-")
            security = _cluster.make_security(cert_dir, create=True)
        if args.hostfile is not None:
            where = SSH(args.hostfile, tls=use_tls, security=security, **ssh, **common)
        else:
            where = Local(n_workers=args.workers, host=args.host, insecure=args.insecure, security=security,
                          **common)
        with _sigterm_as_interrupt(), _cluster.open_client(where) as client:
            return _serve(client, lambda: _print_how_to_connect(client, args, cert_dir if use_tls else None,
                                                                tmp_certs is not None))
    finally:
        if tmp_certs is not None:
            shutil.rmtree(tmp_certs, ignore_errors=True)


def _print_how_to_connect(client, args, cert_dir, temporary: bool) -> None:
    """The scheduler address, dashboard, workers and the ``femfreq sweep`` line to use."""
    address = client.scheduler.address
    link = _cluster.dashboard_link(client)
    n = len(client.scheduler_info().get("workers", {}))
    print(f"scheduler: {address}")
    if link is None:
        link = "off" if args.no_dashboard else "not available (install bokeh>=3.1 for it)"
    print(f"dashboard: {link}")
    print(f"workers: {n}")
    hint = f"femfreq sweep MODEL --scheduler {address}"
    if cert_dir is not None:
        d = os.path.abspath(cert_dir)
        print(f"tls certificates: {d}" + (" (temporary: removed when the cluster stops)" if temporary else ""))
        hint += f" --tls-ca {d}/ca.pem --tls-cert {d}/cert.pem --tls-key {d}/key.pem"
    print(f"connect with: {hint}")
    print("press Ctrl-C to stop", flush=True)


def _serve(client, announce) -> int:
    """``announce()``, then wait until Ctrl-C or SIGTERM (0, the cluster then closes) or the
    scheduler is lost (1)."""
    try:
        announce()
        while client.status == "running":
            time.sleep(0.5)
    except KeyboardInterrupt:
        # a second Ctrl-C must not cut the shutdown short (tracebacks, leaked semaphores)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        print("stopping the cluster", flush=True)
        return 0
    print("femfreq: error: lost the scheduler", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (``kill``, a service manager) stops the cluster like Ctrl-C: a clean shutdown.

    By default SIGTERM ends Python at once: the worker processes are orphaned and
    multiprocessing's resource tracker reports leaked semaphores. The handlers in
    force before are restored on exit.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
