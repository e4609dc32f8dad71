"""Export a mesh and nodal fields with meshio (VTU, XDMF, ... for ParaView)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .geometry import Mesh

__all__ = ["write_mesh"]


def write_mesh(path, mesh: Mesh, point_data: dict | None = None, *, file_format: str | None = None,
               field_data: dict | None = None) -> Path:
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
    field_data : dict of str to array, optional
        Whole-dataset values (e.g. ``{"frequency_hz": [120.0]}``), written as VTK
        ``FieldData`` in a ``.vtu`` file (ParaView shows them in its information
        panel); other formats do not carry them (meshio drops them).

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
    if field_data and (file_format == "vtu" or (file_format is None and path.suffix.lower() == ".vtu")):
        _add_vtu_field_data(path, field_data)
    return path


def _add_vtu_field_data(path: Path, field_data: dict) -> None:
    """Insert a VTK ``<FieldData>`` block (ascii Float64 arrays) into a written .vtu file."""
    from xml.sax.saxutils import quoteattr

    arrays = []
    for name, value in field_data.items():
        a = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
        numbers = " ".join(repr(float(x)) for x in a)
        arrays.append(f'<DataArray type="Float64" Name={quoteattr(str(name))} NumberOfTuples="{a.size}" '
                      f'format="ascii">{numbers}</DataArray>')
    block = "<FieldData>" + "".join(arrays) + "</FieldData>"
    text = path.read_bytes()
    tag = b"<UnstructuredGrid>"
    at = text.find(tag)
    if at < 0:  # not meshio's layout: leave the file as it is
        return
    at += len(tag)
    path.write_bytes(text[:at] + block.encode() + text[at:])
