"""TLS for dask clusters: credentials (:func:`make_security`) and the config remote processes read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["make_security"]

logger = logging.getLogger(__name__)


def make_security(cert_dir=None, *, create: bool = False):
    """TLS credentials for a dask cluster.

    Parameters
    ----------
    cert_dir : str or Path, optional
        ``None``: a new temporary self-signed certificate held in memory
        (``Security.temporary()``), for a cluster started and used by this process.
        A directory: ``ca.pem``, ``cert.pem`` and ``key.pem`` there (one certificate
        for all roles: the scheduler, the workers and the clients); give the same
        directory to every client.
    create : bool
        With ``cert_dir``: if the files are missing, create a self-signed set there
        (the key readable by the owner only).

    Returns
    -------
    distributed.Security
        With ``require_encryption=True``.

    Raises
    ------
    FileNotFoundError
        ``cert_dir`` lacks one of the files and ``create`` is false.
    ImportError
        A certificate must be made and the ``cryptography`` package is missing (checked
        before ``cert_dir`` is created).
    """
    from distributed import Security

    if cert_dir is None:
        _require_cryptography()
        return Security.temporary()
    cert_dir = Path(cert_dir)
    files = {name: cert_dir / f"{name}.pem" for name in ("ca", "cert", "key")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing and create:
        if len(missing) < 3:
            raise FileNotFoundError(f"{cert_dir} holds only some of ca.pem, cert.pem, key.pem (missing {missing})")
        _require_cryptography()
        cert_dir.mkdir(parents=True, exist_ok=True)
        tmp = Security.temporary()
        files["ca"].write_text(tmp.tls_ca_file)
        files["cert"].write_text(tmp.tls_scheduler_cert)
        fd = os.open(files["key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(tmp.tls_scheduler_key)
        logger.info("wrote a self-signed TLS certificate to %s", cert_dir)
    elif missing:
        raise FileNotFoundError(
            f"TLS certificate files missing: {', '.join(missing)} "
            "(expected ca.pem, cert.pem and key.pem in the directory)"
        )
    ca, cert, key = (str(files[k]) for k in ("ca", "cert", "key"))
    return Security(
        require_encryption=True,
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


def _require_cryptography() -> None:
    """ImportError naming the fix if ``cryptography`` (which makes the certificates) is missing."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise ImportError("making a TLS certificate needs the cryptography package, which is not "
                          "installed: pip install cryptography") from exc


def _pem(value):
    """PEM text of a Security field: file contents for a path (remote hosts may not have it)."""
    if value is None or "\n" in value:
        return value
    return Path(value).read_text()


def _security_config(security) -> dict:
    """The dask config keys that make remote processes use ``security`` (PEM text, not paths)."""
    cfg = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": _pem(security.tls_ca_file),
    }
    for role in ("scheduler", "worker", "client"):
        cfg[f"distributed.comm.tls.{role}.cert"] = _pem(getattr(security, f"tls_{role}_cert"))
        cfg[f"distributed.comm.tls.{role}.key"] = _pem(getattr(security, f"tls_{role}_key"))
    return cfg

