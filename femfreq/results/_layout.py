"""Creating a result file: every dataset at full size with its storage allocated.

The file is built in memory (HDF5's core driver) and its image written with plain
``write()`` calls to a temporary next to the output: a full disk (or a file size limit)
then fails as a clean ``OSError`` before HDF5 ever holds an open file it cannot extend
(HDF5 crashed closing such a file). The image is about the size of the sweep's results,
held in memory once at creation.

Also the attribute encoding (dicts and mixed lists as JSON) and the attributes
:meth:`~femfreq.results.writer.ResultWriter.finish` rewrites.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..codes import MEANING
from ._format import FORMAT, FORMAT_VERSION, _chunk_dtype


def create_image(freqs_hz, P, outs, attrs: dict, model: dict, n_fft: int | None,
                 fingerprint: dict | None = None, base: dict | None = None) -> bytes:
    """The bytes of a new result file (every dataset allocated, status "running")."""
    import h5py

    # the oldest superblock on purpose: it has no enforced "open for writing" flag, so
    # a file whose writer was killed opens for reading and resuming without h5clear
    # (libver="latest", which SWMR needs, leaves such a file unopenable)
    with h5py.File(f"femfreq-{os.getpid()}-{id(freqs_hz)}", "w", driver="core", backing_store=False,
                   libver="earliest") as h5:
        _write_layout(h5, freqs_hz, P, outs, attrs, model, n_fft)
        _write_base(h5, base, freqs_hz.size)
        if fingerprint:
            write_attrs(h5.create_group("fingerprint").attrs, fingerprint)
        h5.flush()
        return h5.id.get_file_image()


def write_image(path: str, image: bytes) -> None:
    """Write ``image`` to a new file ``path``; on any error remove it and raise ``OSError``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(image)
        while view:
            view = view[os.write(fd, view[: 1 << 24]):]
    except BaseException:
        os.close(fd)
        os.remove(path)
        raise
    os.close(fd)


def _write_layout(h5, freqs_hz, P, outs, attrs, model, n_fft):
    """Create every dataset at full size, storage allocated."""
    from .._version import __version__

    F, n_out = freqs_hz.size, outs["dof"].size
    nan_c = np.complex128(complex(np.nan, np.nan))

    def dset(name, shape, dtype, data=None, fill=None, **kw):
        return h5.create_dataset(name, shape=shape, dtype=dtype, data=data, fillvalue=fill,
                                 dcpl=_early_dcpl(), **kw)

    dset("freqs_hz", (F,), np.float64, data=freqs_hz)
    dset("load_spectrum", (F,), np.complex128, data=P)
    dset("response", (F, n_out), np.complex128, fill=nan_c)
    dset("done", (F,), np.bool_, fill=False)
    dset("rel_residual", (F,), np.float64, fill=np.nan)
    dset("backward_error", (F,), np.float64, fill=np.nan)
    dset("method", (F,), np.int8, fill=0)
    dset("outputs/node", (n_out,), np.int64, data=outs["node"])
    dset("outputs/direction", (n_out,), np.int8, data=outs["direction"])
    dset("outputs/dof", (n_out,), np.int64, data=outs["dof"])
    dset("outputs/xy", (n_out, 2), np.float64, data=outs["xy"])
    nt = n_fft or 0
    dset("time/t", (nt,), np.float64, fill=np.nan)
    dset("time/response", (nt, n_out), np.float64, fill=np.nan)
    rows = max(F, 1)
    h5.create_dataset(
        "chunks", shape=(rows,), maxshape=(None,), chunks=(min(rows, 1024),), dtype=_chunk_dtype(),
        dcpl=_early_dcpl(),
    )
    h5["outputs/direction"].attrs["meaning"] = "0 = x, 1 = y"
    h5["method"].attrs["meaning"] = MEANING
    h5["response"].attrs["meaning"] = "x at the output DOF; (K(1+ig) + i w C - w^2 M) x = P(w) b"
    h5.create_group("model")
    h5.create_group("versions")
    root = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "femfreq_version": __version__,
        "created": now(),
    }
    write_attrs(h5.attrs, {**attrs, **root})
    # what finish() records, created now so that finishing rewrites values in place
    # (a variable-length string is a fixed-size reference to the file's global heap)
    for key, value in finish_placeholders().items():
        h5.attrs[key] = value
    write_attrs(h5["model"].attrs, model)
    write_attrs(h5["versions"].attrs, _versions())
    h5.flush()


def _write_base(h5, base, F):
    """The analysis kind (root ``analysis``) and, for base motion, the ``/base`` group."""
    if base is None:
        h5.attrs["analysis"] = "point_load"
        return
    h5.attrs["analysis"] = "base_motion"
    h5.attrs["base_direction"] = np.asarray(base["direction"], dtype=np.float64)
    g = h5.create_group("base")
    g.create_dataset("acceleration", data=np.asarray(base["acceleration"], dtype=np.complex128),
                     dcpl=_early_dcpl())
    g.create_dataset("influence", data=np.asarray(base["influence"], dtype=np.float64), dcpl=_early_dcpl())
    g.create_dataset("interface_force", shape=(F, 2), dtype=np.complex128,
                     fillvalue=np.complex128(complex(np.nan, np.nan)), dcpl=_early_dcpl())
    g["acceleration"].attrs["meaning"] = "a_b(omega), the base acceleration along base_direction"
    g["influence"].attrs["meaning"] = "r at the outputs: absolute displacement = response + r a_b / (-w^2)"
    g["interface_force"].attrs["meaning"] = "force the base applies to the structure, x and y"
    h5["response"].attrs["meaning"] = ("relative displacement y at the output DOF; "
                                       "(K(1+ig) + i w C - w^2 M) y = P(w) b, b = -M r")


def _versions() -> dict:
    """Versions of femfreq, its dependencies, HDF5 and Python (the ``/versions`` attributes)."""
    from importlib import metadata

    import h5py

    out = {}
    for name in ("femfreq", "numpy", "scipy", "h5py", "dask", "distributed", "numba", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["hdf5"] = h5py.version.hdf5_version
    out["python"] = sys.version.split()[0]
    return out


def _attr_value(value):
    """A value h5py can store as an attribute (dicts and lists of mixed types become JSON)."""
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default)
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" or (arr.dtype.kind == "U" and arr.ndim == 1):
            return arr.astype(str).astype(object) if arr.dtype.kind == "U" else arr
        return json.dumps(value, default=_json_default)
    if isinstance(value, Path):
        return str(value)
    return value


def _json_default(obj):
    """JSON for numpy scalars and arrays; anything else as its str."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def write_attrs(attrs_obj, values: dict):
    """Store ``values`` as attributes (None skipped); TypeError naming a key HDF5 cannot hold."""
    for key, value in values.items():
        if value is None:
            continue
        try:
            attrs_obj[key] = _attr_value(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"attribute {key!r} = {value!r} cannot be stored in HDF5 ({exc})") from None


def _early_dcpl():
    """A dataset creation property list that allocates the storage at creation."""
    from h5py import h5d, h5p

    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
    return dcpl


def finish_placeholders(status="running", finished="", n_done=-1) -> dict:
    """The attributes finish() sets: status and finished as variable-length UTF-8 strings."""
    return {"status": str(status), "finished": str(finished), "n_done": np.int64(n_done)}


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
