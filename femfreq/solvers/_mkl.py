"""The one loader of MKL's single dynamic library ``mkl_rt``.

Every use of MKL in femfreq goes through :func:`load`. ``FEMFREQ_NO_MKL=1``
hides MKL from the whole package; ``FEMFREQ_MKL_RT=/path/libmkl_rt.so.2`` points
at a specific library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import SolverUnavailableError

logger = logging.getLogger(__name__)


# -- loading mkl_rt -------------------------------------------------------------
def _library_names():
    if sys.platform.startswith("win"):
        return ["mkl_rt.2.dll", "mkl_rt.3.dll", "mkl_rt.dll"]
    if sys.platform == "darwin":
        return ["libmkl_rt.2.dylib", "libmkl_rt.3.dylib", "libmkl_rt.dylib"]
    return ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"]


def _candidate_paths():
    """Places where the mkl wheel (or a system MKL) puts mkl_rt, most specific first."""
    env = os.environ.get("FEMFREQ_MKL_RT")
    if env:
        yield Path(env)
        return
    # files recorded by the installed 'mkl' distribution: exact, whatever the layout
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            dist = distribution("mkl")
            for f in dist.files or ():
                if "mkl_rt" in f.name:
                    yield Path(dist.locate_file(f)).resolve()
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    exe_dir = Path(sys.executable).resolve().parent
    dirs = []
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        dirs += [Path(prefix) / "lib", Path(prefix) / "Library" / "bin"]
    dirs += [exe_dir, exe_dir.parent / "lib"]
    seen = set()
    for d in dirs:
        for name in _library_names():
            p = d / name
            if p not in seen:
                seen.add(p)
                yield p
    found = ctypes.util.find_library("mkl_rt")
    if found:
        yield Path(found)


class MKL:
    """The loaded mkl_rt library and the integer type of its interface."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        self.path = path
        self.lib = lib
        # the C entry points are MKL_Set_...; the lower-case names are the Fortran
        # interface (arguments by reference)
        lib.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Interface_Layer.restype = ctypes.c_int
        # LP64 (32-bit MKL_INT) = 0; returns the layer in force (if another
        # component set ILP64 first, follow it)
        layer = lib.MKL_Set_Interface_Layer(0)
        self.int_type = np.int64 if layer == 1 else np.int32
        if "MKL_THREADING_LAYER" not in os.environ and not _have_iomp(path.parent):
            lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
            lib.MKL_Set_Threading_Layer(1)  # sequential: no OpenMP runtime found
        self.pardiso = lib.pardiso
        self.pardiso.restype = None
        self.pardiso.argtypes = [ctypes.c_void_p] * 16
        self.pardisoinit = lib.pardisoinit
        self.pardisoinit.restype = None
        self.pardisoinit.argtypes = [ctypes.c_void_p] * 3
        self.set_threads_local = lib.MKL_Set_Num_Threads_Local
        self.set_threads_local.argtypes = [ctypes.c_int]
        self.set_threads_local.restype = ctypes.c_int
        self.get_max_threads = lib.MKL_Get_Max_Threads  # this thread's count (its local setting if any)
        self.get_max_threads.argtypes = []
        self.get_max_threads.restype = ctypes.c_int
        self.mem_stat = lib.MKL_Mem_Stat
        self.mem_stat.argtypes = [ctypes.POINTER(ctypes.c_int)]
        self.mem_stat.restype = ctypes.c_int64
        try:
            buf = ctypes.create_string_buffer(256)
            lib.MKL_Get_Version_String(buf, 256)
            self.version = buf.value.decode(errors="replace").strip()
        except AttributeError:  # pragma: no cover
            self.version = "unknown"


def _have_iomp(libdir: Path) -> bool:
    names = ("libiomp5.so", "libiomp5.dylib", "libiomp5md.dll")
    if any((libdir / n).exists() for n in names):
        return True
    return ctypes.util.find_library("iomp5") is not None


_mkl: MKL | None = None
_mkl_error: str | None = None
_mkl_lock = threading.Lock()


def hidden() -> bool:
    """True when ``FEMFREQ_NO_MKL`` hides MKL from this process."""
    return os.environ.get("FEMFREQ_NO_MKL", "").strip().lower() not in ("", "0", "false", "no")


def load() -> MKL:
    """The process's one loaded ``mkl_rt`` (loaded on first use).

    Raises
    ------
    SolverUnavailableError
        If ``FEMFREQ_NO_MKL`` is set (then nothing is loaded) or no library loads.
    """
    global _mkl, _mkl_error
    if hidden():
        raise SolverUnavailableError("MKL is hidden by FEMFREQ_NO_MKL=" + os.environ["FEMFREQ_NO_MKL"])
    with _mkl_lock:
        if _mkl is not None:
            return _mkl
        if _mkl_error is not None:
            raise SolverUnavailableError(_mkl_error)
        tried = []
        for path in _candidate_paths():
            if not path.exists():
                continue
            try:
                _mkl = MKL(path)
                logger.debug("loaded MKL %s from %s", _mkl.version, path)
                return _mkl
            except (OSError, AttributeError) as exc:
                tried.append(f"{path}: {exc}")
        _mkl_error = "MKL runtime library (mkl_rt) not found" + (
            f" or not loadable ({'; '.join(tried)})" if tried else " (pip install mkl, x86-64 only)"
        )
        raise SolverUnavailableError(_mkl_error)


def status() -> tuple[bool, str]:
    """Whether MKL can be used in this process, and why not (empty reason when it can)."""
    if hidden():
        return False, "hidden by FEMFREQ_NO_MKL=" + os.environ["FEMFREQ_NO_MKL"]
    try:
        load()
    except SolverUnavailableError as exc:
        return False, str(exc)
    return True, ""


def memory_bytes() -> int:
    """Bytes currently allocated by MKL's memory manager (includes PARDISO's factors)."""
    mkl = load()
    nbuf = ctypes.c_int(0)
    return int(mkl.mem_stat(ctypes.byref(nbuf)))
