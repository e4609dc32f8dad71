"""Entry point of the ``femfreq`` command.

Each subcommand lives in its own module of this package, which defines a module
docstring (its first line is the help text), ``add_args(parser)`` and
``run(args) -> int``. They are discovered here, so adding a subcommand is adding
a module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import warnings

from .. import __version__

_DESCRIPTION = """Frequency response of finite-element rod structures, swept over a dask cluster.

Every subcommand writes its file with -o/--output; `femfreq COMMAND --help` lists its
options with their defaults and examples.

Examples:
  femfreq info satellite --modes 5
  femfreq sweep satellite -o satellite.h5 --plot plots
  femfreq plot satellite.h5 -o plots
"""

_PREFERRED_ORDER = ["mesh", "info", "modes", "sweep", "field", "plot", "cluster", "calibrate", "bench"]


def _subcommands():
    import femfreq._cli as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name != "main"]
    order = {n: i for i, n in enumerate(_PREFERRED_ORDER)}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="femfreq",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"femfreq {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output, -vv for debug and tracebacks (default: warnings and progress only)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _subcommands():
        module = importlib.import_module(f"femfreq._cli.{name}")
        doc = (module.__doc__ or name).strip()
        first = doc.splitlines()[0]
        p = sub.add_parser(name, help=first, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_args(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``femfreq ARGS`` and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    fmt = "%(levelname)s %(name)s: %(message)s" if args.verbose else "femfreq: %(message)s"
    logging.basicConfig(level=level, format=fmt)
    # dask configures its own loggers at INFO when distributed is imported (and in every
    # worker process it spawns); keep them quiet unless -vv. (Only if dask is not imported
    # yet. SSHCluster forwards this config to the remote processes, whose INFO start-up
    # lines it waits for: femfreq.execute.ssh keeps those at INFO, or the start-up hangs.)
    if args.verbose < 2:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    for name in ("distributed", "dask", "asyncssh"):
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose >= 2 else logging.WARNING)
    # femfreq's own INFO lines (cluster address, dashboard link, resume) are for the user
    logging.getLogger("femfreq").setLevel(min(level, logging.INFO))
    showwarning = warnings.showwarning
    if args.verbose < 2:
        warnings.showwarning = _one_line_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("femfreq: interrupted", file=sys.stderr)
        return 130
    # ImportError: a missing optional package; the message names what to install
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        if args.verbose >= 2:
            raise
        print(f"femfreq: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = showwarning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line ``femfreq: warning: ...`` (``-vv`` shows where it came from)."""
    text = " ".join(str(message).split())
    print(f"femfreq: warning: {text}", file=sys.stderr if file is None else file)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
