"""Options shared by the subcommands that reach a dask cluster."""

from __future__ import annotations


def add_cluster_args(parser, *, serial: bool = False) -> None:
    """``--scheduler | --hostfile`` (and ``--serial``), ``--workers`` and the TLS client files."""
    where = parser.add_mutually_exclusive_group()
    if serial:
        where.add_argument("--serial", action="store_true", help="solve in this process, without dask")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing dask scheduler (tcp://... or tls://...)")
    where.add_argument("--hostfile", metavar="FILE", help="start a cluster over SSH on these hosts")
    parser.add_argument("--workers", type=int, help="workers of the embedded local cluster (default: one per core)")
    parser.add_argument("--tls-ca", help="TLS CA file for a tls:// scheduler")
    parser.add_argument("--tls-cert", help="TLS client certificate (with its key, or see --tls-key)")
    parser.add_argument("--tls-key", help="TLS client key")


def security_from_args(args):
    """A ``distributed.Security`` from ``--tls-*`` (None without them)."""
    if not (args.tls_ca or args.tls_cert):
        return None
    from distributed.security import Security

    return Security(tls_ca_file=args.tls_ca, tls_client_cert=args.tls_cert, tls_client_key=args.tls_key,
                    require_encryption=True)
