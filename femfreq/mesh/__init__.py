"""Geometry and meshes: Triangle ``.poly``/``.node``/``.ele`` files, meshing, export.

The first stage of the pipeline. A planar straight-line graph (:class:`Poly`: an
outline, holes, regions) is read from a Triangle ``.poly`` file, meshed with the
`triangle <https://rufat.be/triangle/>`_ package using Triangle's command-line
switches, optionally refined progressively (:func:`mesh_levels`), and written
back as ``.node``/``.ele`` files or, with meshio, as VTU/XDMF for ParaView.
Every unique triangle edge (:attr:`Mesh.edges`) later becomes a rod.

Example
-------
>>> import numpy as np
>>> from femfreq.mesh import Poly, triangulate
>>> square = Poly(vertices=[[0, 0], [1, 0], [1, 1], [0, 1]],
...               segments=[[0, 1], [1, 2], [2, 3], [3, 0]])
>>> mesh = triangulate(square, "pq30a0.1")
>>> bool(mesh.triangle_areas.max() <= 0.1)
True
>>> n_edges = len(mesh.edges)   # Euler: E = V + T - 1 (no holes)
>>> n_edges == mesh.n_points + mesh.n_triangles - 1
True
"""

from ..errors import ReadError
from .export import write_mesh
from .geometry import Mesh, Poly
from .meshing import check_switches, mesh_levels, refine, triangulate
from .triangle_io import read_ele, read_node, read_poly, read_triangle_mesh, write_poly, write_triangle_mesh

__all__ = [
    "ReadError",
    "Poly",
    "Mesh",
    "read_poly",
    "write_poly",
    "read_node",
    "read_ele",
    "read_triangle_mesh",
    "write_triangle_mesh",
    "triangulate",
    "refine",
    "mesh_levels",
    "write_mesh",
    "check_switches",
]
