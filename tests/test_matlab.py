"""MATLAB adapters: the .m files run in real GNU Octave, and the Python bridge with MATLAB's argument types.

Octave runs as an ``octave-cli`` subprocess (each start costs ~0.3-1 s, so the checks are
batched per Octave call). MATLAB itself is not available here: the ``py.`` route is tested
from Python with exactly the argument types MATLAB sends (memoryviews, array.array,
lists, int64 scalars, 1-based indices), and the MATLAB v7.3 layout with a file written by
h5py following MATLAB's layout.
"""

from __future__ import annotations

import array
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import femfreq
from helpers import write_matlab_v73
from femfreq import matlab
from femfreq.mesh import read_poly, read_triangle_mesh, triangulate, write_triangle_mesh
from femfreq.model import Model, fixed_dofs_from, select_nodes

ROOT = Path(__file__).resolve().parents[1]
MATLAB_DIR = ROOT / "matlab"
OCTAVE = shutil.which("octave-cli") or shutil.which("octave")
needs_octave = pytest.mark.skipif(
    OCTAVE is None, reason="GNU Octave is not installed (apt-get install octave): the .m files are not tested"
)
needs_cli_solve = pytest.mark.skipif(
    not hasattr(femfreq, "solve"), reason="femfreq.solve is not exported yet: `femfreq sweep --matrices` cannot run"
)


def _octave(script: str, cwd: Path, timeout: float = 240) -> str:
    """Run an Octave script (with matlab/ on the path) in cwd; return its stdout, fail on error."""
    path = cwd / "octave_test_script.m"
    path.write_text(f"addpath('{MATLAB_DIR}');\n{script}\n", encoding="utf-8")
    proc = subprocess.run(
        [OCTAVE, "--quiet", "--norc", "--no-gui", "--no-history", path.name],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"Octave failed (exit {proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.stdout


def _rel(A, B) -> float:
    """max |A - B| / max |B| for sparse or dense arrays."""
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    B = B.toarray() if sp.issparse(B) else np.asarray(B)
    return float(np.abs(A - B).max() / np.abs(B).max())


@pytest.fixture(scope="module")
def sat_mesh():
    """The satellite outline meshed coarsely (level 1 switches), ~570 nodes."""
    return triangulate(read_poly(ROOT / "models" / "satellite.poly"), "pqa0.8")


def _write_triangle_files(base: Path, points, triangles, *, start, n_attr, markers, comments):
    """Write .node/.ele in another style than femfreq's writer: numbering, attributes, comments."""
    n, t = len(points), len(triangles)
    rng = np.random.default_rng(0)
    lines = ["# written by test_matlab", f"{n} 2 {n_attr} {1 if markers else 0}  # header"]
    for i, (x, y) in enumerate(points):
        row = [str(i + start), repr(float(x)), repr(float(y))] + [f"{a:.3f}" for a in rng.random(n_attr)]
        if markers:
            row.append(str(i % 3))
        lines.append(" ".join(row) + ("   # a vertex" if comments and i % 50 == 0 else ""))
        if comments and i % 97 == 0:
            lines.append("")
    base.with_suffix(".node").write_text("\n".join(lines) + "\n")
    lines = [f"{t} 3 1", "# triangles"]
    for k, tri in enumerate(triangles):
        lines.append(" ".join(str(v) for v in [k + start, *(np.asarray(tri) + start)]) + " 7.5")
    base.with_suffix(".ele").write_text("\n".join(lines) + "\n")


def _dense_rod_assembly(points, edges, E, rho, area, lumped):
    """Full K, M by a per-element loop over dense matrices (an independent reference)."""
    n = 2 * len(points)
    K, M = np.zeros((n, n)), np.zeros((n, n))
    for (i, j) in edges:
        d = points[j] - points[i]
        L = np.hypot(*d)
        c, s = d / L
        T = np.array([[c * c, c * s], [c * s, s * s]])
        k = E * area / L * np.block([[T, -T], [-T, T]])
        m = rho * area * L
        me = np.eye(4) * m / 2 if lumped else m / 6 * np.array(
            [[2, 0, 1, 0], [0, 2, 0, 1], [1, 0, 2, 0], [0, 1, 0, 2]])
        dofs = [2 * i, 2 * i + 1, 2 * j, 2 * j + 1]
        K[np.ix_(dofs, dofs)] += k
        M[np.ix_(dofs, dofs)] += me
    return K, M


# -- the .m model builder against femfreq's Python model ------------------------------------------
@needs_octave
def test_rod_model_m_matches_python_model(tmp_path, sat_mesh):
    rng = np.random.default_rng(1)
    # A: femfreq's own writer (1-based, markers); reference area, lumped mass, adapter ring fixed
    write_triangle_mesh(tmp_path / "a", sat_mesh)
    # B: 0-based, attributes, no markers, comments; per-rod E, consistent mass, box + nodes, y only
    _write_triangle_files(tmp_path / "b", sat_mesh.points, sat_mesh.triangles, start=0, n_attr=2,
                          markers=False, comments=True)
    E_b = rng.uniform(0.5e7, 2e7, len(sat_mesh.edges))
    scipy.io.savemat(tmp_path / "E_b.mat", {"E_b": E_b.reshape(-1, 1)})
    # C: two triangles, 1-based with attributes and markers; x fixed on a line with a tolerance
    square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.5], [0.0, 1.5]])
    _write_triangle_files(tmp_path / "c", square, np.array([[0, 1, 2], [0, 2, 3]]), start=1, n_attr=1,
                          markers=True, comments=False)
    out = _octave(
        """
        [K, M, free, info] = femfreq_rod_model('a.node', '', 1e7, 0.1, 'reference', 'FixLine', [16 2 31 2]);
        edges = info.edges; total_mass = info.total_mass;
        save('-v7', 'out_a.mat', 'K', 'M', 'free', 'edges', 'total_mass');
        load('E_b.mat');
        [K, M, free, info] = femfreq_rod_model('b.node', 'b.ele', E_b, 0.3, 0.02, 'Mass', 'consistent', ...
            'FixBox', [15 1.5 32 2.5; 40 7 45 9], 'FixNodes', [5 9], 'Fix', 'y');
        edges = info.edges;
        save('-v7', 'out_b.mat', 'K', 'M', 'free', 'edges');
        [K, M, free, info] = femfreq_rod_model('c.node', '', 3.0, 2.0, 0.5, 'Mass', 'consistent', ...
            'FixLine', [0 -1e-7 0 1.5], 'LineTol', 1e-6, 'Fix', 'x');
        edges = info.edges;
        save('-v7', 'out_c.mat', 'K', 'M', 'free', 'edges');
        disp('done');
        """,
        tmp_path,
    )
    assert "done" in out

    mesh_b = read_triangle_mesh(tmp_path / "b.node")
    mesh_c = read_triangle_mesh(tmp_path / "c.node")
    n_a = len(sat_mesh.points)
    cases = {
        "a": (sat_mesh, dict(E=1e7, rho=0.1, area=np.sqrt(2.0 / (2 * n_a)), lumped=True),
              [{"select": {"line": [[16, 2], [31, 2]]}, "fix": "xy"}], []),
        "b": (mesh_b, dict(E=E_b, rho=0.3, area=0.02, lumped=False),
              [{"select": {"box": [15, 1.5, 32, 2.5]}, "fix": "y"}, {"select": {"box": [40, 7, 45, 9]}, "fix": "y"}],
              [2 * 4 + 1, 2 * 8 + 1]),
        "c": (mesh_c, dict(E=3.0, rho=2.0, area=0.5, lumped=False),
              [{"select": {"line": [[0, -1e-7], [0, 1.5]], "tol": 1e-6}, "fix": "x"}], []),
    }
    for name, (mesh, props, constraints, extra_fixed) in cases.items():
        got = scipy.io.loadmat(tmp_path / f"out_{name}.mat")
        fixed = np.union1d(fixed_dofs_from(mesh.points, constraints), extra_fixed).astype(np.int64)
        model = Model(points=mesh.points, edges=mesh.edges, fixed_dofs=fixed, **props)
        K, _, M, _ = model.matrices()
        np.testing.assert_array_equal(got["edges"] - 1, mesh.edges, err_msg=name)
        np.testing.assert_array_equal(got["free"].ravel() - 1, model.free_dofs, err_msg=name)
        assert _rel(got["K"], K) <= 1e-12, name
        assert _rel(got["M"], M) <= 1e-12, name
        assert got["K"].shape == (model.n_free, model.n_free)
    total_mass = scipy.io.loadmat(tmp_path / "out_a.mat")["total_mass"].item()
    assert total_mass == pytest.approx(Model(points=sat_mesh.points, edges=sat_mesh.edges, **cases["a"][1]).total_mass,
                                       rel=1e-12)
    # the two-triangle model against a dense per-element loop, independent of femfreq.model.rods
    K_full, M_full = _dense_rod_assembly(mesh_c.points, mesh_c.edges, 3.0, 2.0, 0.5, lumped=False)
    free = np.setdiff1d(np.arange(8), [0, 6])  # x of the nodes on x = 0
    got = scipy.io.loadmat(tmp_path / "out_c.mat")
    np.testing.assert_allclose(got["K"].toarray(), K_full[np.ix_(free, free)], rtol=0, atol=1e-12 * np.abs(K_full).max())
    np.testing.assert_allclose(got["M"].toarray(), M_full[np.ix_(free, free)], rtol=0, atol=1e-12 * np.abs(M_full).max())


@needs_octave
def test_m_files_reject_bad_input(tmp_path, sat_mesh):
    write_triangle_mesh(tmp_path / "a", sat_mesh)
    out = _octave(
        """
        K = speye(3); M = speye(3); C = []; b = ones(3, 1); f = [1 2]; P = 1;
        calls = {@() femfreq_rod_model('a.node', '', 1e7, 0.1, 'reference', 'FixLine', [100 100 101 100]), ...
                 @() femfreq_rod_model('a.node', '', 1e7, 0.1, 'huge'), ...
                 @() femfreq_rod_model('a.node', '', [1 2 3], 0.1, 1), ...
                 @() femfreq_rod_model('a.node', '', 1e7, 0.1, 1, 'Mass', 'heavy'), ...
                 @() femfreq_rod_model('missing.node', '', 1e7, 0.1, 1), ...
                 @() femfreq_rod_model('a.node', '', 1e7, 0.1, 1, 'Colour', 'red'), ...
                 @() femfreq_solve(sparse(3, 4), C, M, b, f, P, 1), ...
                 @() femfreq_solve(K, C, speye(4), b, f, P, 1), ...
                 @() femfreq_solve(K, speye(2), M, b, f, P, 1), ...
                 @() femfreq_solve(K, C, M, ones(4, 1), f, P, 1), ...
                 @() femfreq_solve(K, C, M, b, f, P, []), ...
                 @() femfreq_solve(K, C, M, b, f, P, 1, 'Route', 'pigeon'), ...
                 @() femfreq_solve(K, C, M, b, f, P, 1, 'Colour', 'red'), ...
                 @() femfreq_write_input('x.mat', K, C, M, b, f, P, 1, 'Version', '-v4'), ...
                 @() femfreq_write_input('x.mat', K, C, speye(2), b, f, P, 1), ...
                 @() femfreq_read_result('missing.mat'), ...
                 @() femfreq_solve(K * (1 + 0.1i), C, M, b, f, P, 1)};
        for k = 1:numel(calls)
          try
            calls{k}();
            fprintf('case %d: no error\\n', k);
          catch err
            fprintf('case %d: %s\\n', k, err.message);
          end
        end
        """,
        tmp_path,
    )
    expected = ["selects no node", "must be a number, one per rod, or 'reference'", "one value per rod",
                "'Mass' must be 'lumped' or 'consistent'", "no such file", "unknown option 'Colour'",
                "K must be square (has size 3 x 4)", "M has size 4 x 4 but K has size 3 x 3",
                "C has size 2 x 2 but K has size 3 x 3", "b has 4 values but K is 3 x 3", "output_dofs is empty",
                "Route must be 'py' or 'file'", "unknown option 'Colour'", "Version must be '-v7' or '-v7.3'",
                "K, C and M must have the same size", "missing.mat: no such result file",
                "K, C and M must be real; give structural damping as 'G'"]
    for k, text in enumerate(expected, start=1):
        assert re.search(rf"^case {k}: .*{re.escape(text)}", out, re.M), (k, text, out)


@needs_octave
def test_m_files_name_value_options(tmp_path):
    # the options of all three functions go through matlab/private/parse_options.m
    out = _octave(
        """
        K = speye(3); M = speye(3); C = []; b = ones(3, 1); f = [1 2]; P = 1;
        calls = {@() femfreq_rod_model('a.node', '', 1e7, 0.1, 1, 'Colour', 'red'), ...
                 @() femfreq_rod_model('a.node', '', 1e7, 0.1, 1, 'FixNodes', 1, 'Mass'), ...
                 @() femfreq_rod_model('a.node', '', 1e7, 0.1, 1, 3, 'x'), ...
                 @() femfreq_solve(K, C, M, b, f, P, 1, 'Workers', 2, 'Colour', 'red'), ...
                 @() femfreq_solve(K, C, M, b, f, P, 1, 'route', 'file', 'Workers'), ...
                 @() femfreq_solve(K, C, M, b, f, P, 1, {'Route'}, 'file'), ...
                 @() femfreq_write_input('x.mat', K, C, M, b, f, P, 1, 'Colour', 'red'), ...
                 @() femfreq_write_input('x.mat', K, C, M, b, f, P, 1, 'G')};
        for k = 1:numel(calls)
          try
            calls{k}();
            fprintf('case %d: no error\\n', k);
          catch err
            fprintf('case %d: [%s] %s\\n', k, err.identifier, err.message);
          end
        end
        % names match in any case, the last of a repeated option wins
        femfreq_write_input('ok.mat', K, C, M, b, f, P, 1, 'g', 0.5, 'VERSION', '-v7', 'G', 0.25);
        disp('written');
        """,
        tmp_path,
    )
    expected = [
        ("rod_model", "unknown option 'Colour'; known: Mass, FixNodes, FixBox, FixLine, LineTol, Fix"),
        ("rod_model", "option 'Mass' has no value (options are name/value pairs)"),
        ("rod_model", "option names must be text (got 3 as option name 1); known: Mass,"),
        ("solve", "unknown option 'Colour'; known: Scheduler, HostFile, Workers, Method, Solver, Output, G, "
                  "Route, Command, Version"),
        ("solve", "option 'Workers' has no value (options are name/value pairs)"),
        ("solve", "option names must be text (got a 1x1 cell as option name 1)"),
        ("write_input", "unknown option 'Colour'; known: Version, G"),
        ("write_input", "option 'G' has no value (options are name/value pairs)"),
    ]
    for k, (fn, text) in enumerate(expected, start=1):
        assert re.search(rf"^case {k}: \[femfreq:{fn}:options\] {re.escape(text)}", out, re.M), (k, text, out)
    assert "written" in out
    assert scipy.io.loadmat(tmp_path / "ok.mat")["g"].item() == 0.25


# -- the .mat file route, end to end through Octave --------------------------------------------------
_MAKE_INPUT = """
n = 12;
e = ones(n, 1);
K = 1e3 * spdiags([-e, 4 * e, -1.5 * e], -1:1, n, n);
K(1, n) = 300;                       % not symmetric: a transposed read would show
M = spdiags(1 + (1:n).' / n, 0, n, n) + 0.05 * spdiags([e e], [-2 2], n, n);
C = 0.002 * K + 0.01 * M;
b = (1:n).' / n; b(3) = -2;
freqs = linspace(0, 6, 9).';
P = exp(1i * freqs / 3) .* (1 + freqs / 10);
output_dofs = [3; 7; 12];
g = 0.02;
Xref = zeros(numel(output_dofs), numel(freqs));
for k = 1:numel(freqs)
  w = 2 * pi * freqs(k);
  x = full((1 + 1i * g) * K + 1i * w * C - w ^ 2 * M) \\ (P(k) * b);
  Xref(:, k) = x(output_dofs);
end
save('-v7', 'ref.mat', 'Xref');
femfreq_write_input('in_v7.mat', K, C, M, b, freqs, P, output_dofs, 'G', g);
femfreq_write_input('in_v73.mat', K, C, M, b, freqs, P, output_dofs, 'G', g, 'Version', '-v7.3');
K = full(K); C = full(C); M = full(M);
save('-v7', 'in_dense.mat', 'K', 'C', 'M', 'b', 'freqs', 'P', 'output_dofs', 'g');
save('-hdf5', 'in_dense_h5.mat', 'K', 'C', 'M', 'b', 'freqs', 'P', 'output_dofs', 'g');
disp('written');
"""

_CHECK_RESULTS = """
load('ref.mat');
names = {NAMES};
for k = 1:numel(names)
  R = femfreq_read_result(['out_' names{k} '.mat']);
  err = max(abs(R.response(:) - Xref(:))) / max(abs(Xref(:)));
  same_dofs = isequal(R.output_dofs(:), [3; 7; 12]);
  fprintf('%s err=%.3e dofs=%d size=%dx%d\\n', names{k}, err, same_dofs, size(R.response, 1), size(R.response, 2));
end
"""


@needs_octave
def test_file_route_octave_writes_femfreq_solves_octave_reads(tmp_path):
    assert "written" in _octave(_MAKE_INPUT, tmp_path)
    names = {"v7": "v7", "v73": "octave-hdf5", "dense": "v7", "dense_h5": "octave-hdf5"}
    first = None
    for name, fmt in names.items():
        inp = matlab.read_mat_input(tmp_path / f"in_{name}.mat")
        assert inp["format"] == fmt
        system = inp["system"]
        assert system.n == 12 and system.g == pytest.approx(0.02)
        np.testing.assert_array_equal(inp["output_dofs"], [3, 7, 12])
        if first is None:
            first = system
        else:  # every format gives the same matrices (a transposed dense read would not)
            for A, B in ((system.K, first.K), (system.C, first.C), (system.M, first.M)):
                assert _rel(A, B) < 1e-15
        result = matlab.solve_mat(tmp_path / f"in_{name}.mat", tmp_path / f"out_{name}", cluster=None)
        # femfreq's answer against a dense numpy solve of the matrices read
        w = 2 * np.pi * inp["freqs_hz"]
        for k in (0, 4, 8):
            A = (1 + 0.02j) * system.K.toarray() + 1j * w[k] * system.C.toarray() - w[k] ** 2 * system.M.toarray()
            x = np.linalg.solve(A, inp["load"][k] * system.b)
            np.testing.assert_allclose(result.response[k], x[[2, 6, 11]], rtol=1e-10)
    script = _CHECK_RESULTS.replace("NAMES", ", ".join(f"'{n}'" for n in names))
    out = _octave(script, tmp_path)
    for name in names:
        m = re.search(rf"^{name} err=(\S+) dofs=(\d) size=(\d+)x(\d+)$", out, re.M)
        assert m, out
        assert float(m.group(1)) < 1e-10, out
        assert m.group(2) == "1" and m.groups()[2:] == ("3", "9"), out


def test_read_mat_input_matlab_v73_layout(tmp_path):
    rng = np.random.default_rng(3)
    n = 7
    K = sp.random(n, n, density=0.4, random_state=4, format="csc") + sp.diags(np.arange(1.0, n + 1))
    M = rng.random((n, n)) + n * np.eye(n)  # dense, not symmetric
    b = rng.standard_normal(n)
    freqs = np.array([[0.0, 1.5, 3.0]])  # a row vector
    P = np.array([1 + 2j, -0.5j, 3.0])
    path = tmp_path / "in73.mat"
    write_matlab_v73(path, {"K": K, "C": np.zeros((0, 0)), "M": M, "b": b, "freqs": freqs, "P": P,
                             "output_dofs": np.array([[1.0, 4.0, 7.0]]), "g": 0.01,
                             "notes": np.array([1, 2, 3], dtype=np.int64)})
    inp = matlab.read_mat_input(path)
    s = inp["system"]
    assert inp["format"] == "v7.3"
    np.testing.assert_array_equal(s.K.toarray(), K.toarray())
    np.testing.assert_array_equal(s.M.toarray(), M)
    assert s.C.nnz == 0
    np.testing.assert_array_equal(s.b, b)
    np.testing.assert_array_equal(inp["freqs_hz"], freqs.ravel())
    np.testing.assert_array_equal(inp["load"], P)
    np.testing.assert_array_equal(s.output_dofs, [0, 3, 6])
    assert s.g == 0.01

    bad = tmp_path / "complex_k.mat"
    write_matlab_v73(bad, {"K": sp.csc_matrix(K * (1 + 0.1j)), "M": M, "b": b, "freqs": freqs})
    with pytest.raises(ValueError, match=r"complex_k.mat: K must be real"):
        matlab.read_mat_input(bad)


def _small_system_files(tmp_path, **replace):
    n = 4
    data = {"K": sp.csc_matrix(np.diag([4.0, 5, 6, 7])), "M": sp.eye(n, format="csc"), "b": np.ones((n, 1)),
            "freqs": np.array([[0.0, 1.0]]), "P": np.array([[1.0], [2.0]]), "output_dofs": np.array([[1.0, 2.0]])}
    data.update(replace)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "in.mat"
    scipy.io.savemat(path, data)
    return path


@pytest.mark.parametrize(
    "replace, match",
    [
        ({"M": None}, r"variable 'M' is missing"),
        ({"K": sp.csc_matrix(np.ones((4, 3)))}, r"K must be square \(has size 4 x 3\)"),
        ({"M": sp.eye(5, format="csc")}, r"M has size 5 x 5 but K has size 4 x 4"),
        ({"K": sp.csc_matrix(np.diag([4.0, 5, 6, 7]) * (1 + 1j))}, r"K must be real"),
        ({"b": np.ones(3)}, r"b has 3 values but K is 4 x 4"),
        ({"output_dofs": np.array([[0.0, 1.0]])}, r"looks 0-based"),
        ({"output_dofs": np.array([[5.0]])}, r"index 5 > n = 4"),
        ({"P": np.ones(3)}, r"P has 3 values; expected 2"),
        ({"freqs": np.array([0.0, np.nan])}, r"non-finite value nan"),
        ({"b": np.array([1.0, np.inf, 0, 0])}, r"b has a non-finite value inf"),
    ],
)
def test_read_mat_input_rejects(tmp_path, replace, match):
    with pytest.raises(ValueError, match=match):
        matlab.read_mat_input(_small_system_files(tmp_path, **replace))


def test_read_mat_input_sparse_vectors_and_defaults(tmp_path):
    """b and P saved as sparse (as MATLAB code often makes them); no C, no P, no output_dofs."""
    path = _small_system_files(tmp_path, b=sp.csc_matrix(np.array([[0.0], [2.0], [0.0], [1.0]])), P=None,
                               output_dofs=None)
    inp = matlab.read_mat_input(path)
    np.testing.assert_array_equal(inp["system"].b, [0.0, 2.0, 0.0, 1.0])
    np.testing.assert_array_equal(inp["load"], [1.0, 1.0])  # default P = 1: the FRF
    np.testing.assert_array_equal(inp["output_dofs"], [1, 2, 3, 4])
    assert inp["system"].C.nnz == 0


def test_read_mat_input_missing_file_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.mat: no such .mat file"):
        matlab.read_mat_input(tmp_path / "nope.mat")
    junk = tmp_path / "junk.mat"
    junk.write_text("not a mat file\n")
    with pytest.raises(ValueError, match=r"junk.mat: not a readable .mat file"):
        matlab.read_mat_input(junk)


# -- the py. bridge with the argument types MATLAB sends ---------------------------------------------
def _triplets(A):
    """MATLAB's [i, j, v] = find(A): 1-based, column-major order, as doubles."""
    A = sp.csc_matrix(A)
    A.sort_indices()
    coo = A.tocoo()
    order = np.lexsort((coo.row, coo.col))
    return coo.row[order] + 1.0, coo.col[order] + 1.0, coo.data[order]


def _test_problem(n=6, seed=0):
    rng = np.random.default_rng(seed)
    K = sp.csc_matrix(np.diag(rng.uniform(50, 100, n)) + np.diag(-rng.uniform(1, 5, n - 1), 1)
                      + np.diag(-rng.uniform(1, 5, n - 1), -1))
    M = sp.csc_matrix(np.diag(rng.uniform(1, 2, n)))
    C = 0.01 * K
    b = rng.standard_normal(n) + 0.5j * rng.standard_normal(n)
    freqs = np.linspace(0.0, 2.0, 5)
    P = np.exp(1j * freqs)
    return K, C, M, b, freqs, P


def _dense_reference(K, C, M, b, freqs, P, outputs0, g=0.0):
    X = np.empty((len(outputs0), len(freqs)), complex)
    for k, f in enumerate(freqs):
        w = 2 * np.pi * f
        A = (1 + 1j * g) * K.toarray() + 1j * w * C.toarray() - w**2 * M.toarray()
        X[:, k] = np.linalg.solve(A, P[k] * b)[outputs0]
    return X


def _row(x):
    """A MATLAB 1 x N double as it arrives in Python: a 2-D memoryview."""
    return memoryview(np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(1, -1)))


def test_system_from_triplets_accepts_what_matlab_sends():
    K, C, M, b, _, _ = _test_problem()
    n = K.shape[0]
    Ki, Kj, Kv = _triplets(K)
    Ci, Cj, Cv = _triplets(C)
    Mi, Mj, Mv = _triplets(M)
    variants = [
        # memoryviews of 1 x N rows, int64 size vector (MATLAB's int64(size(K)))
        (_row(Ki), _row(Kj), _row(Kv), _row(Ci), _row(Cj), _row(Cv), _row(Mi), _row(Mj), _row(Mv),
         memoryview(np.array([[n, n]], dtype=np.int64)), _row(b.real), _row([2, 5])),
        # array.array (old MATLAB releases), an int64 scalar, a float n
        (array.array("d", Ki), array.array("d", Kj), array.array("d", Kv), array.array("d", Ci),
         array.array("d", Cj), array.array("d", Cv), array.array("d", Mi), array.array("d", Mj),
         array.array("d", Mv), np.int64(n), array.array("d", b.real), array.array("d", [2.0, 5.0])),
        # lists and tuples, integer indices, a column vector b, a float size
        (list(Ki.astype(int)), tuple(Kj.astype(int)), list(Kv), list(Ci), list(Cj), list(Cv), tuple(Mi), list(Mj),
         tuple(Mv), float(n), memoryview(b.real.reshape(-1, 1).copy()), (2, 5)),
    ]
    for args in variants:
        s = matlab.system_from_triplets(*args, b_im=_row(b.imag), g=np.int64(0))
        assert _rel(s.K, K) == 0 and _rel(s.C, C) == 0 and _rel(s.M, M) == 0
        np.testing.assert_array_equal(s.b, b)
        np.testing.assert_array_equal(s.output_dofs, [1, 4])
    # duplicate triplets are summed, as MATLAB's sparse(i, j, v) does; no C at all
    s = matlab.system_from_triplets([1, 1, 2], [1, 1, 2], [1.0, 2.5, 4.0], None, None, None, [1, 2], [1, 2],
                                    [1.0, 1.0], 2, [1.0, 0.0], 2.0)
    np.testing.assert_array_equal(s.K.toarray(), [[3.5, 0], [0, 4.0]])
    assert s.C.nnz == 0 and s.output_dofs.tolist() == [1]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 30), st.integers(0, 2**31))
def test_triplets_sum_duplicates_like_matlab_sparse(n, nnz, seed):
    """sparse(i, j, v, n, n) semantics: any order, duplicates summed, 1-based in, 0-based inside."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(1, n + 1, nnz), rng.integers(1, n + 1, nnz)
    v = rng.standard_normal(nnz)
    dense = np.zeros((n, n))
    np.add.at(dense, (i - 1, j - 1), v)
    s = matlab.system_from_triplets(_row(i), array.array("d", j), list(v), i, j, np.abs(v), [1], [1], [1.0],
                                    np.int64(n), np.ones(n), [n])
    np.testing.assert_allclose(s.K.toarray(), dense, rtol=1e-15, atol=1e-15)
    assert s.C.nnz <= max(nnz, 1) and np.all(s.C.toarray() >= 0)
    assert s.output_dofs.tolist() == [n - 1]


def test_solve_triplets_matches_dense_solve():
    K, C, M, b, freqs, P = _test_problem()
    Ki, Kj, Kv = _triplets(K)
    Ci, Cj, Cv = _triplets(C)
    Mi, Mj, Mv = _triplets(M)
    expected = _dense_reference(K, C, M, b, freqs, P, [0, 3, 5], g=0.03)
    r = matlab.solve_triplets(_row(Ki), _row(Kj), _row(Kv), _row(Ci), _row(Cj), _row(Cv), _row(Mi), _row(Mj),
                              _row(Mv), memoryview(np.array([[6, 6]], dtype=np.int64)), _row(b.real), _row(freqs),
                              _row(P.real), _row(P.imag), _row([1, 4, 6]), b_im=_row(b.imag), g=0.03,
                              C_size=np.array([6, 6]), M_size=(6, 6), scheduler="none")
    X = r["response_re"] + 1j * r["response_im"]
    assert X.shape == r["shape"] == (3, 5)
    np.testing.assert_allclose(X, expected, rtol=1e-11)
    np.testing.assert_array_equal(r["output_dofs"], [1, 4, 6])
    np.testing.assert_array_equal(r["freqs_hz"], freqs)
    assert np.all(r["rel_residual"] < 1e-12)
    # what femfreq_solve.m asks for: flat column-major array.array and the shape, reshaped by MATLAB
    r2 = matlab.solve_triplets(Ki, Kj, Kv, Ci, Cj, Cv, Mi, Mj, Mv, 6, b.real, freqs, P, None, [1, 4, 6],
                               b_im=b.imag, g=0.03, scheduler="", matlab_arrays=True)
    assert isinstance(r2["response_re"], array.array) and r2["response_re"].typecode == "d"
    shape = r2["shape"]
    X2 = (np.reshape(np.array(r2["response_re"]), shape, order="F")
          + 1j * np.reshape(np.array(r2["response_im"]), shape, order="F"))
    np.testing.assert_allclose(X2, expected, rtol=1e-11)
    assert list(r2["output_dofs"]) == [1.0, 4.0, 6.0]


def test_solve_triplets_on_a_local_dask_cluster():
    K, C, M, b, freqs, P = _test_problem(n=5, seed=2)
    Ki, Kj, Kv = _triplets(K)
    Mi, Mj, Mv = _triplets(M)
    r = matlab.solve_triplets(_row(Ki), _row(Kj), _row(Kv), None, None, None, _row(Mi), _row(Mj), _row(Mv),
                              np.int64(5), _row(b.real), _row(freqs), _row(P.real), _row(P.imag), _row([2, 5]),
                              b_im=_row(b.imag), scheduler="local", n_workers=np.int64(1))
    expected = _dense_reference(K, sp.csc_matrix((5, 5)), M, b, freqs, P, [1, 4])
    np.testing.assert_allclose(r["response_re"] + 1j * r["response_im"], expected, rtol=1e-11)


def _good_args():
    K, C, M, b, freqs, P = _test_problem(n=3)
    Ki, Kj, Kv = _triplets(K)
    Mi, Mj, Mv = _triplets(M)
    return dict(Ki=Ki, Kj=Kj, Kv=Kv, Ci=None, Cj=None, Cv=None, Mi=Mi, Mj=Mj, Mv=Mv, n=3, b=[1.0, 0.0, 0.0],
                freqs_hz=[0.0, 1.0], P_re=[1.0, 1.0], P_im=None, output_dofs=[1, 3])


def _with(**changes):
    args = _good_args()
    for key, value in changes.items():
        args[key] = value(args) if callable(value) else value
    return args


@pytest.mark.parametrize(
    "args, exc, match",
    [
        (_with(n=[3, 4]), ValueError, r"K must be square \(has size 3 x 4\)"),
        (_with(M_size=[4, 4]), ValueError, r"M has size 4 x 4 but K has size 3 x 3"),
        (_with(b=[1.0, 2.0]), ValueError, r"b has 2 values but K is 3 x 3"),
        (_with(Ki=lambda a: a["Ki"] - 1), ValueError, r"K row indices has index 0.*looks 0-based"),
        (_with(Mj=lambda a: a["Mj"] + 1), ValueError, r"M column indices has index 4 > n = 3"),
        (_with(output_dofs=[0, 2]), ValueError, r"output_dofs has index 0.*looks 0-based"),
        (_with(output_dofs=[]), ValueError, r"output_dofs is empty"),
        (_with(output_dofs=memoryview(np.zeros((1, 0)))), ValueError, r"output_dofs is empty"),
        (_with(Kv=lambda a: a["Kv"] * (1 + 0.5j)), ValueError, r"K must be real.*give structural damping as g"),
        (_with(Kv=lambda a: np.where(np.arange(a["Kv"].size) == 2, np.nan, a["Kv"])), ValueError,
         r"K has a non-finite entry nan at row \d, column \d"),
        (_with(b=[1.0, np.inf, 0.0]), ValueError, r"b has a non-finite value inf at position 2"),
        (_with(freqs_hz=[0.0, np.nan]), ValueError, r"freqs_hz has a non-finite value nan"),
        (_with(P_re=[1.0, 2.0, 3.0]), ValueError, r"P has 3 values; expected 2"),
        (_with(P_im=[1.0]), ValueError, r"real part has 2 values but imaginary part has 1"),
        (_with(P_re=[1.0 + 1j, 1.0], P_im=[0.0, 0.0]), ValueError, r"either a complex array or real and imaginary"),
        (_with(Kj=lambda a: a["Kj"][:-1]), ValueError, r"K triplets have different lengths: i 7, j 6, v 7"),
        (_with(Ki=lambda a: a["Ki"] + 0.5), ValueError, r"K row indices must hold integer indices"),
        (_with(Mi=None, Mj=None, Mv=None), ValueError, r"M is empty"),
        (_with(Kv="1 2 3"), TypeError, r"K values must be numeric"),
        (_with(freqs_hz=[]), ValueError, r"freqs_hz is empty"),
    ],
)
def test_solve_triplets_rejects(args, exc, match):
    args = dict(args)
    positional = [args.pop(k) for k in ("Ki", "Kj", "Kv", "Ci", "Cj", "Cv", "Mi", "Mj", "Mv", "n", "b", "freqs_hz",
                                        "P_re", "P_im", "output_dofs")]
    with pytest.raises(exc, match=match):
        matlab.solve_triplets(*positional, scheduler="none", **args)


# -- the .mat result ---------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(0, 2**31))
def test_write_mat_result_round_trip(tmp_path_factory, n_out, F, seed):
    rng = np.random.default_rng(seed)
    result = {
        "freqs_hz": np.sort(rng.uniform(0, 100, F)),
        "response": rng.standard_normal((F, n_out)) + 1j * rng.standard_normal((F, n_out)),
        "rel_residual": rng.uniform(0, 1e-12, F),
        "outputs": {"dof": rng.choice(50, n_out, replace=False)},
    }
    path = matlab.write_mat_result(tmp_path_factory.mktemp("r") / "res", result)
    assert path.suffix == ".mat"
    got = scipy.io.loadmat(path)
    np.testing.assert_array_equal(got["response"], result["response"].T)  # n_out x F, as in MATLAB
    np.testing.assert_array_equal(got["freqs_hz"], result["freqs_hz"].reshape(-1, 1))
    np.testing.assert_array_equal(got["output_dofs"].ravel(), result["outputs"]["dof"] + 1)
    np.testing.assert_array_equal(got["rel_residual"].ravel(), result["rel_residual"])


def test_write_mat_result_rejects_mismatched_response(tmp_path):
    with pytest.raises(ValueError, match=r"response must have shape \(F, n_out\) = \(3, n_out\)"):
        matlab.write_mat_result(tmp_path / "r.mat", {"freqs_hz": [1.0, 2.0, 3.0], "response": np.ones((2, 2))})


# -- femfreq_solve.m's file route and the example script, in Octave ------------------------------------
@needs_octave
@needs_cli_solve
def test_example_satellite_runs_in_octave(tmp_path, sat_mesh):
    write_triangle_mesh(tmp_path / "sat", sat_mesh)
    command = f'"{sys.executable}" -m femfreq'
    out = _octave(
        f"""
        node_file = 'sat.node'; n_fft = 64; route = 'file';
        solve_opts = {{'Scheduler', 'none', 'Command', '{command}'}};
        example_satellite;
        save('-v7', 'example.mat', 'X', 'freqs', 'P', 'output_dofs', 'x_t', 'free');
        try
          femfreq_solve(K, C, M, b, freqs, P, [], 'Route', 'file');
        catch err
          fprintf('empty outputs: %s\\n', err.message);
        end
        """,
        tmp_path,
    )
    assert re.search(r"satellite: \d+ nodes, \d+ rods, \d+ free DOF, 33 frequencies, \d+ outputs", out), out
    assert "empty outputs: output_dofs is empty" in out
    got = scipy.io.loadmat(tmp_path / "example.mat")
    # the same model and sweep in Python
    pts = sat_mesh.points
    fixed = fixed_dofs_from(pts, [{"select": {"line": [[16, 2], [31, 2]]}, "fix": "xy"}])
    b_full = np.zeros(2 * len(pts))
    b_full[2 * select_nodes(pts, {"near": [7.6, 16.6]})[0]] = 1.0  # x, as models/satellite.toml
    model = Model(points=pts, edges=sat_mesh.edges, E=1e7, rho=0.1, area=np.sqrt(2 / (2 * len(pts))),
                  fixed_dofs=fixed, b_full=b_full)
    K, _, M, b = model.matrices()
    np.testing.assert_array_equal(got["free"].ravel() - 1, model.free_dofs)
    out0 = got["output_dofs"].ravel().astype(int) - 1
    plate = select_nodes(pts, {"circle": [23.5, 10.5], "radius": 1.5})
    np.testing.assert_array_equal(out0, model.full_to_free[np.column_stack([2 * plate, 2 * plate + 1]).ravel()])
    ref = femfreq.solve(K, 0.004 * K, M, b, freqs_hz=got["freqs"].ravel(), load=got["P"].ravel(),
                        output_dofs=out0, cluster=None, progress=False)
    np.testing.assert_allclose(got["X"], ref.response.T, rtol=1e-9, atol=1e-12 * np.abs(ref.response).max())
    np.testing.assert_allclose(got["x_t"], np.fft.irfft(ref.response, 64, axis=0).T,
                               atol=1e-9 * np.abs(got["x_t"]).max())


def test_fix_executable_points_dask_workers_at_python_inside_matlab(monkeypatch):
    """Inside MATLAB's in-process Python, sys.executable is MATLAB: spawned workers must run Python."""
    import multiprocessing
    import multiprocessing.spawn as spawn

    before = spawn.get_executable()
    matlab.adapter._fix_executable()  # a normal interpreter: nothing changes
    assert spawn.get_executable() == before
    monkeypatch.setattr(sys, "executable", "/usr/local/MATLAB/R2024b/bin/glnxa64/MATLAB")
    try:
        matlab.adapter._fix_executable()
        exe = Path(os.fsdecode(spawn.get_executable()))
        assert exe.name.startswith("python") and exe.is_file(), exe
    finally:
        multiprocessing.set_executable(before)
