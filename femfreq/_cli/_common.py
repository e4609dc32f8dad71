"""Options shared by the subcommands that reach a dask cluster."""

from __future__ import annotations

import os
import sys


def add_cluster_args(parser, *, serial: bool = False) -> None:
    """``--scheduler | --hostfile`` (and ``--serial``), ``--workers`` and the TLS client files."""
    where = parser.add_mutually_exclusive_group()
    if serial:
        where.add_argument("--serial", action="store_true", help="solve in this process, without dask")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing dask scheduler, tcp://... or tls://... (default: an embedded local cluster)")
    where.add_argument("--hostfile", metavar="FILE", help="start a cluster over SSH on these hosts (default: an embedded local cluster)")
    parser.add_argument("--workers", type=int, help="workers of the embedded local cluster (default: one per core)")
    parser.add_argument("--tls-ca", help="TLS CA file for a tls:// scheduler (default: none, plain tcp://)")
    parser.add_argument("--tls-cert", help="TLS client certificate, with its key or see --tls-key (default: none)")
    parser.add_argument("--tls-key", help="TLS client key (default: the one in the --tls-cert file)")
    parser.add_argument("--connect-timeout", type=float, metavar="S",
                        help="seconds to reach --scheduler and hear its handshake (default 10; "
                             "a refused port fails at once)")


def mesh_output(path, *, triangle: bool = False):
    """``-o`` of a mesh writer checked before any work: a known meshio suffix (or, with
    ``triangle``, none/.node/.ele) and not a directory."""
    from pathlib import Path

    import meshio

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"-o {path}: is a directory; give a file name")
    suffix = path.suffix.lower()
    if triangle and suffix in ("", ".node", ".ele"):
        return path
    known = meshio.extension_to_filetypes
    if suffix not in known:
        raise ValueError(f"-o {path}: unknown mesh format {suffix or '(no suffix)'!r}; "
                         f"use .vtu, .xdmf or another meshio suffix ({', '.join(sorted(known)[:12])}, ...)")
    return path


def security_from_args(args):
    """A ``distributed.Security`` from ``--tls-*`` (None without them)."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    if not (args.tls_ca and args.tls_cert):
        given = ", ".join(f"--tls-{n}" for n in ("ca", "cert", "key") if getattr(args, f"tls_{n}"))
        raise ValueError(f"{given} alone: TLS needs --tls-ca and --tls-cert (and --tls-key unless the "
                         "certificate file holds the key)")
    from distributed.security import Security

    return Security(tls_ca_file=args.tls_ca, tls_client_cert=args.tls_cert, tls_client_key=args.tls_key,
                    require_encryption=True)


#: the SSH options of a host-file cluster and their ``args`` attributes
_SSH_OPTIONS = [("--ssh-port", "ssh_port"), ("--ssh-user", "ssh_user"), ("--ssh-key", "ssh_key"),
                ("--known-hosts", "known_hosts"), ("--remote-python", "remote_python")]


def add_ssh_args(parser) -> None:
    """``--ssh-port/--ssh-user/--ssh-key/--known-hosts/--remote-python`` for ``--hostfile`` clusters."""
    ssh = parser.add_argument_group("ssh (with --hostfile; default: ~/.ssh/config and ~/.ssh/known_hosts)")
    ssh.add_argument("--ssh-port", type=int, default=None, metavar="PORT", help="SSH port (default 22)")
    ssh.add_argument("--ssh-user", default=None, metavar="USER", help="SSH user name (default: yours)")
    ssh.add_argument("--ssh-key", action="append", default=None, metavar="FILE",
                     help="private key file (repeatable; default: your SSH agent and ~/.ssh keys)")
    ssh.add_argument("--known-hosts", default=None, metavar="FILE",
                     help="known_hosts file, or 'none' to skip host key checks (default ~/.ssh/known_hosts)")
    ssh.add_argument("--remote-python", default=None, metavar="PATH",
                     help=f"Python on the hosts (default {sys.executable})")


def ssh_settings_from_args(args) -> dict | None:
    """The fields of :class:`femfreq.options.SSH` given by ``--ssh-*`` (None without ``--hostfile``).

    Only the options given are returned: asyncssh takes the rest from ``~/.ssh/config``,
    like ``ssh``.

    Raises
    ------
    ValueError
        An SSH option without ``--hostfile``, a port outside 1..65535, or a key or
        known_hosts file that does not exist (the message names the option).
    """
    given = {name: getattr(args, dest) for name, dest in _SSH_OPTIONS if getattr(args, dest) is not None}
    if args.hostfile is None:
        if given:
            raise ValueError(f"the SSH options {', '.join(given)} need --hostfile")
        return None
    settings = {}
    if args.ssh_port is not None:
        if not 1 <= args.ssh_port <= 65535:
            raise ValueError(f"--ssh-port must be a port number in 1..65535 (got {args.ssh_port})")
        settings["port"] = args.ssh_port
    if args.ssh_user is not None:
        if not args.ssh_user.strip() or any(c.isspace() or c == "@" for c in args.ssh_user):
            raise ValueError(f"--ssh-user must be a user name (got {args.ssh_user!r})")
        settings["user"] = args.ssh_user
    if args.ssh_key:
        for key in args.ssh_key:
            if not os.path.isfile(os.path.expanduser(key)):
                raise ValueError(f"--ssh-key {key}: no such file")
        settings["keys"] = tuple(args.ssh_key)
    if args.known_hosts is not None:
        if args.known_hosts.lower() != "none" and not os.path.isfile(os.path.expanduser(args.known_hosts)):
            raise ValueError(f"--known-hosts {args.known_hosts}: no such file (or 'none' to skip host key checks)")
        settings["known_hosts"] = args.known_hosts
    if args.remote_python is not None:
        settings["remote_python"] = args.remote_python
    return settings


def ssh_options_from_args(args) -> tuple[dict | None, str | None]:
    """``(connect_options, remote_python)`` from ``--ssh-*``: :func:`ssh_settings_from_args` in the flat form.

    ``connect_options`` (for ``asyncssh.connect``) is None without ``--hostfile``.
    """
    from femfreq.options import SSH

    settings = ssh_settings_from_args(args)
    if settings is None:
        return None, None
    ssh = SSH(args.hostfile, **settings)
    return ssh.connect_options, ssh.remote_python
