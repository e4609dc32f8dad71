"""Export a mesh and nodal fields with meshio (VTU, XDMF, ... for ParaView)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .geometry import Mesh

__all__ = ["write_mesh"]


def write_mesh(path, mesh: Mesh, point_data: dict | None = None, *, file_format: str | None = None) -> Path:
    """Write a mesh and nodal fields with meshio (VTU, XDMF, ... by the file suffix).

    Parameters
    ----------
    path : str or Path
        Output file; ``.vtu`` and ``.xdmf`` open in ParaView.
    mesh : Mesh
    point_data : dict of str to array, optional
        Nodal fields, each ``(n,)`` (scalar) or ``(n, 2)`` (in-plane vector; padded
        with a zero z component so ParaView shows it as a vector). Complex fields
        are rejected: pass ``np.abs(x)`` or the real part. The point markers are
        always written as ``"point_markers"``.
    file_format : str, optional
        meshio format name, if the suffix does not say it.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If a field has the wrong shape.
    TypeError
        If a field is complex or not numeric.
    """
    import meshio

    n = mesh.n_points
    points = np.column_stack([mesh.points, np.zeros(n)])
    data = {"point_markers": mesh.point_markers.astype(np.int32)}
    for name, value in (point_data or {}).items():
        a = np.asarray(value)
        if np.iscomplexobj(a):
            raise TypeError(f"point_data[{name!r}] is complex; write np.abs(...) or .real instead")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"point_data[{name!r}] must be numeric (has dtype {a.dtype})")
        if a.shape == (n,):
            data[name] = a.astype(np.float64) if a.dtype.kind == "f" else a
        elif a.shape == (n, 2):
            data[name] = np.column_stack([a, np.zeros(n)]).astype(np.float64)
        else:
            raise ValueError(f"point_data[{name!r}] must have shape ({n},) or ({n}, 2) (has shape {a.shape})")
    path = Path(path)
    m = meshio.Mesh(points, [("triangle", mesh.triangles)], point_data=data)
    m.write(path, file_format=file_format)
    return path
