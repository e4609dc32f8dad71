"""Resuming a result file: does it belong to this sweep, and bringing it to the current format.

A file may be resumed only by the sweep that wrote it: the same frequencies, load
spectrum and outputs (checked against the datasets) and the same fingerprint
(``/fingerprint``: hashes of K, C, M, b and the output DOF, g, the method, tol,
solver and skip_singular; see :func:`femfreq.sweep.solve`). A mismatch is a
``ValueError`` naming every difference. A file of format version 1 or 2 has no
fingerprint: it is resumed with a warning saying that the model cannot be checked,
and the fingerprint of the resuming sweep is recorded so later resumes are checked.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..codes import MEANING
from ._format import FORMAT, FORMAT_VERSION
from ._layout import finish_placeholders, now, write_attrs
from .reader import _attr_str, _format_version

logger = logging.getLogger(__name__)

#: what each fingerprint entry is, for the messages
_LABELS = {
    "n_dof": "number of DOF", "K": "stiffness K", "C": "damping C", "M": "mass M", "b": "load vector b",
    "output_dofs": "output DOF", "g": "structural damping g", "method": "method", "tol": "tol",
    "solver": "solver", "skip_singular": "skip_singular",
}
_DIGEST = "blake2b:"


def check_fingerprint(h5, path, fingerprint: dict | None) -> None:
    """ValueError naming every entry of ``fingerprint`` that differs from the file's.

    A file without ``/fingerprint`` (format version 1 or 2) gets a warning instead.
    """
    if not fingerprint:
        return
    if "fingerprint" not in h5:
        warnings.warn(
            f"{path}: written by femfreq {_attr_str(h5.attrs.get('femfreq_version'))} (result format "
            f"version {_format_version(h5)}) without a fingerprint of the model: resuming it cannot check "
            "that its rows belong to the same matrices, g, method and tol (only the frequencies, load "
            "and outputs are checked)",
            UserWarning,
            stacklevel=4,
        )
        return
    stored = {key: _plain(value) for key, value in h5["fingerprint"].attrs.items()}
    diffs = []
    for key, new in fingerprint.items():
        old = stored.get(key)
        new = _plain(new)
        if old == new:
            continue
        label = _LABELS.get(key, key)
        if isinstance(old, str) and isinstance(new, str) and old.startswith(_DIGEST) and new.startswith(_DIGEST):
            diffs.append(f"{label} differs")
        else:
            diffs.append(f"{label} {_show(old)} (file) vs {_show(new)} (this sweep)")
    if diffs:
        raise ValueError(
            f"cannot resume {path!r}: the file was written for another model or method: {'; '.join(diffs)}. "
            "Resume it with the model and options that wrote it, or pass overwrite=True (--overwrite) "
            "or another output"
        )


def _plain(value):
    """An attribute value as a comparable Python scalar."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _show(value) -> str:
    return "(not recorded)" if value is None else (repr(value) if isinstance(value, float) else str(value))


def open_existing(path, mode="r+", opener=None):
    """Open a file to resume: an HDF5 femfreq result file of a version this femfreq writes or older."""
    import h5py

    if not h5py.is_hdf5(path):
        raise ValueError(f"cannot resume {path!r}: it is not an HDF5 file (use overwrite=True to replace it)")
    h5 = opener(path) if opener is not None else h5py.File(path, mode)
    version = _format_version(h5)
    if version is None:
        h5.close()
        raise ValueError(f"cannot resume {path!r}: not a femfreq result file (no format={FORMAT!r} attribute)")
    if version > FORMAT_VERSION:
        h5.close()
        raise ValueError(
            f"cannot resume {path!r}: it has result format version {version}; this femfreq writes {FORMAT_VERSION}"
        )
    return h5


def upgrade(h5, path, fingerprint: dict | None) -> None:
    """Bring an older file to :data:`FORMAT_VERSION` before new rows are written to it."""
    version = _format_version(h5)
    if version >= FORMAT_VERSION:
        return
    # version 1 rows already mean what version 2 says (a skipped frequency is done, code 3);
    # only its meaning attribute lacked code 3, which this sweep may now write
    h5["method"].attrs["meaning"] = MEANING
    h5.flush()
    # version 3: status/finished as variable-length strings, and a fingerprint
    status = _attr_str(h5.attrs.get("status")) or "running"
    placeholders = finish_placeholders(status=status.rstrip("\0") or "running")
    for key in ("status", "finished"):
        h5.attrs[key] = placeholders[key]
    if fingerprint and "fingerprint" not in h5:
        group = h5.create_group("fingerprint")
        write_attrs(group.attrs, fingerprint)
        group.attrs["note"] = (f"recorded on {now()} when this version {version} file was resumed; "
                               "rows written before were not checked against it")
    h5.flush()
    if "analysis" not in h5.attrs:  # version 4: the analysis kind; older files are point-load sweeps
        h5.attrs["analysis"] = "point_load"
    h5.attrs["format_version"] = FORMAT_VERSION
    h5.flush()
    logger.info("%s: result format version %d upgraded to %d", path, version, FORMAT_VERSION)


def check_matches(h5, path, freqs_hz, P, outs):
    """ValueError naming the first difference between the file's sweep and this one."""
    old = h5["freqs_hz"][()]
    if old.shape != freqs_hz.shape:
        raise ValueError(
            f"cannot resume {path!r}: freqs_hz differ: the file has {old.size} frequencies, "
            f"this sweep {freqs_hz.size}"
        )
    diff = np.flatnonzero(old != freqs_hz)
    if diff.size:
        k = diff[0]
        raise ValueError(
            f"cannot resume {path!r}: freqs_hz differ at {diff.size} positions, first at {k}: "
            f"file {float(old[k])!r} Hz, this sweep {float(freqs_hz[k])!r} Hz"
        )
    old_n_out = h5["response"].shape[1]
    if old_n_out != outs["dof"].size:
        raise ValueError(
            f"cannot resume {path!r}: n_out differs: the file has {old_n_out} output DOF, "
            f"this sweep {outs['dof'].size}"
        )
    for name in ("node", "direction", "dof"):
        stored = h5[f"outputs/{name}"][()]
        if not np.array_equal(stored, outs[name]):
            k = int(np.flatnonzero(stored != outs[name])[0])
            raise ValueError(
                f"cannot resume {path!r}: outputs {name} differ at position {k}: "
                f"file {stored[k]}, this sweep {outs[name][k]}"
            )
    xy = h5["outputs/xy"][()]
    if not np.allclose(xy, outs["xy"], rtol=1e-12, atol=0, equal_nan=True):
        raise ValueError(f"cannot resume {path!r}: outputs xy (node coordinates) differ")
    oldP = h5["load_spectrum"][()]
    if not np.allclose(oldP, P, rtol=1e-12, atol=1e-14 * max(np.abs(P).max(), 1e-300)):
        k = int(np.argmax(np.abs(oldP - P)))
        raise ValueError(
            f"cannot resume {path!r}: load_spectrum differs (first at frequency {freqs_hz[k]:g} Hz: "
            f"file {oldP[k]:.6g}, this sweep {P[k]:.6g}); was the load history changed?"
        )
