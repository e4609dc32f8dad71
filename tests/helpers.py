"""Shared test helpers: tiny fixture models (one rod, a two-bar truss, spring-mass chains),
a grid-of-springs System, and the check that chunk results cover a sweep once.

Import with ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``).
Every builder returns a :class:`femfreq.model.Model`; the spring-mass chains also
document the equivalent discrete springs and masses for closed-form references.
"""

from __future__ import annotations

import h5py
import numpy as np
import scipy.sparse as sp

from femfreq.model import Damping, Model
from femfreq.system import System


def one_rod(*, E=2.0, rho=3.0, area=0.5, length=4.0, angle=0.0, lumped=True, damping=None) -> Model:
    """A single rod from the origin at ``angle`` (rad), node 0 fixed, node 1 free in x and y.

    Loaded by a unit force along the rod at node 1; outputs both DOF of node 1.
    """
    p1 = length * np.array([np.cos(angle), np.sin(angle)])
    points = np.array([[0.0, 0.0], p1])
    b = np.zeros(4)
    b[2:] = p1 / length
    return Model(
        points=points,
        edges=[[0, 1]],
        E=E,
        rho=rho,
        area=area,
        lumped=lumped,
        damping=damping or Damping(),
        fixed_dofs=[0, 1],
        b_full=b,
        output_dofs_full=[2, 3],
        name="one-rod",
    )


def two_bar_truss(*, E=1.0e3, rho=1.0, area=0.1, width=2.0, height=1.0, lumped=True, damping=None) -> Model:
    """Two rods from the supports (0, 0) and (width, 0) to the apex (width / 2, height).

    Supports fixed in x and y; the apex (node 2) is free and loaded downwards; outputs both
    apex DOF. Two free DOF in all.
    """
    points = np.array([[0.0, 0.0], [width, 0.0], [width / 2, height]])
    b = np.zeros(6)
    b[5] = -1.0
    return Model(
        points=points,
        edges=[[0, 2], [1, 2]],
        E=E,
        rho=rho,
        area=area,
        lumped=lumped,
        damping=damping or Damping(),
        fixed_dofs=[0, 1, 2, 3],
        b_full=b,
        output_dofs_full=[4, 5],
        name="two-bar-truss",
    )


def spring_mass_chain(stiffnesses, rod_masses, *, damping=None, spacing=1.0) -> Model:
    """A chain of collinear rods along x: node 0 fixed, every y DOF fixed, load at the last node.

    Rod ``r`` joins nodes ``r`` and ``r + 1`` with axial stiffness ``E A / L = stiffnesses[r]``
    and mass ``rho A L = rod_masses[r]`` (A = L = spacing = 1 by default). With lumped mass
    it is the discrete chain of springs ``k_r`` and masses
    ``m_i = (rod_masses[i - 1] + rod_masses[i]) / 2`` (the last: ``rod_masses[-1] / 2``),
    the free DOF being the x DOF of nodes ``1..n``. Outputs: every free DOF.
    """
    k = np.asarray(stiffnesses, dtype=np.float64)
    mr = np.asarray(rod_masses, dtype=np.float64)
    n = k.size
    points = np.column_stack([spacing * np.arange(n + 1.0), np.zeros(n + 1)])
    edges = np.column_stack([np.arange(n), np.arange(1, n + 1)])
    fixed = np.concatenate([[0], 2 * np.arange(n + 1) + 1])
    b = np.zeros(2 * (n + 1))
    b[2 * n] = 1.0
    return Model(
        points=points,
        edges=edges,
        E=k * spacing,  # E A / L = k with A = 1, L = spacing
        rho=mr / spacing,
        area=1.0,
        lumped=True,
        damping=damping or Damping(),
        fixed_dofs=fixed,
        b_full=b,
        name=f"spring-mass-{n}",
    )


def square_truss(*, n=3, size=1.0, E=1.0, rho=1.0, area=1.0, lumped=True) -> Model:
    """A free-free triangulated square: an n x n grid of nodes, each cell cut by one diagonal.

    No constraints, a unit x load at node 0. It has exactly 3 rigid-body modes.
    """
    x, y = np.meshgrid(np.linspace(0, size, n), np.linspace(0, size, n))
    points = np.column_stack([x.ravel(), y.ravel()])
    idx = np.arange(n * n).reshape(n, n)
    edges = np.concatenate(
        [
            np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
            np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]),
            np.column_stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()]),
        ]
    )
    b = np.zeros(2 * n * n)
    b[0] = 1.0
    return Model(points=points, edges=edges, E=E, rho=rho, area=area, lumped=lumped, b_full=b, name="square-truss")


def straight_rod(n_rods, *, length=1.0, E=1.0, rho=1.0, area=1.0, lumped=True) -> Model:
    """A fixed-free straight rod along x cut into ``n_rods`` equal rods; y DOF all fixed.

    Axial natural frequencies tend to ``(2k - 1) sqrt(E / rho) / (4 length)``.
    """
    points = np.column_stack([np.linspace(0, length, n_rods + 1), np.zeros(n_rods + 1)])
    edges = np.column_stack([np.arange(n_rods), np.arange(1, n_rods + 1)])
    fixed = np.concatenate([[0], 2 * np.arange(n_rods + 1) + 1])
    b = np.zeros(2 * (n_rods + 1))
    b[2 * n_rods] = 1.0
    return Model(
        points=points, edges=edges, E=E, rho=rho, area=area, lumped=lumped, fixed_dofs=fixed, b_full=b,
        output_dofs_full=[2 * n_rods], name=f"rod-{n_rods}",
    )


def grid_system(m=10, g=0.01, seed=0):
    """A 2-D grid of springs (5-point Laplacian), lumped unit masses, C = 0.004 K."""
    T = sp.diags([2.0] * m) - sp.diags([1.0] * (m - 1), 1) - sp.diags([1.0] * (m - 1), -1)
    eye = sp.eye(m)
    K = 1.0e4 * (sp.kron(T, eye) + sp.kron(eye, T))
    n = m * m
    rng = np.random.default_rng(seed)
    return System(K=K, C=0.004 * K, M=sp.eye(n), b=rng.standard_normal(n), g=g,
                  output_dofs=[0, n // 3, n - 1])


def assemble(results, n_freqs, n_out):
    out = np.full((n_freqs, n_out), np.nan + 0j)
    seen = np.zeros(n_freqs, dtype=int)
    for r in results:
        out[r.index] = r.response
        seen[r.index] += 1
    np.testing.assert_array_equal(seen, 1)  # every frequency exactly once
    return out


def write_matlab_v73(path, variables):
    """A MATLAB v7.3 file as MATLAB writes it: 512-byte user block, MATLAB_class attributes,
    column-major arrays (so HDF5 holds the transpose), complex as compound (real, imag),
    sparse as a group with data/ir/jc and MATLAB_sparse = number of rows, [] as MATLAB_empty."""
    cplx = np.dtype([("real", "<f8"), ("imag", "<f8")])
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if sp.issparse(value):
                A = sp.csc_matrix(value)
                g = f.create_group(name)
                g.attrs["MATLAB_class"] = np.bytes_("double")
                g.attrs["MATLAB_sparse"] = np.uint64(A.shape[0])
                g.create_dataset("jc", data=A.indptr.astype(np.uint64))
                if A.nnz:
                    g.create_dataset("ir", data=A.indices.astype(np.uint64))
                    if np.iscomplexobj(A.data):
                        data = np.empty(A.nnz, cplx)
                        data["real"], data["imag"] = A.data.real, A.data.imag
                        g.create_dataset("data", data=data)
                    else:
                        g.create_dataset("data", data=A.data.astype(np.float64))
                continue
            a = np.asarray(value)
            a = a.reshape(1, 1) if a.ndim == 0 else (a.reshape(-1, 1) if a.ndim == 1 else a)
            if a.size == 0:
                ds = f.create_dataset(name, data=np.array(a.shape, dtype=np.uint64))
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            elif np.iscomplexobj(a):
                data = np.empty(a.T.shape, cplx)
                data["real"], data["imag"] = a.T.real, a.T.imag
                ds = f.create_dataset(name, data=data)
            else:
                ds = f.create_dataset(name, data=np.ascontiguousarray(a.T))
            ds.attrs["MATLAB_class"] = np.bytes_("int64" if a.dtype.kind == "i" else "double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Nov 26 00:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM")


def write_matlab_v73_sparse(path, name, n_rows, jc, ir, data, **dense):
    """A MATLAB v7.3 file with one sparse variable written from raw ``jc``/``ir``/``data``
    arrays exactly as given (unchecked: for crafted files), plus dense variables."""
    write_matlab_v73(path, dense)
    with h5py.File(path, "a") as f:
        g = f.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("double")
        g.attrs["MATLAB_sparse"] = n_rows
        g.create_dataset("jc", data=jc)
        if ir is not None:
            g.create_dataset("ir", data=ir)
            g.create_dataset("data", data=data)


def vtu_field_data(path) -> dict:
    """The VTK ``FieldData`` arrays of a .vtu file, read with the standard XML parser."""
    import xml.etree.ElementTree as ET

    grid = ET.parse(path).getroot().find("UnstructuredGrid")
    block = grid.find("FieldData") if grid is not None else None
    if block is None:
        return {}
    return {a.get("Name"): np.array(a.text.split(), dtype=float) for a in block.findall("DataArray")}
