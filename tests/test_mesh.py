"""Geometry and mesh: Triangle file I/O, meshing, edges, export, bad input, the satellite."""

import dataclasses
import re
import tomllib
from pathlib import Path

import meshio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from femfreq._cli.main import main
from femfreq.mesh import (
    Mesh,
    Poly,
    ReadError,
    check_switches,
    mesh_levels,
    read_ele,
    read_node,
    read_poly,
    read_triangle_mesh,
    refine,
    triangulate,
    write_mesh,
    write_poly,
    write_triangle_mesh,
)

MODELS = Path(__file__).resolve().parents[1] / "models"
SATELLITE = MODELS / "satellite.poly"

# A 4 x 4 square with a 2 x 2 square hole, 1-based, markers, a region; written by hand.
SQUARE_WITH_HOLE = """\
# square with a hole
8 2 1 1     # vertices, dimension, attributes, markers

1  0 0  0.5  1
2  4 0  0.5  1
3  4 4  0.5  1
4  0 4  0.5  1
5  1 1  0.0  3   # the hole
6  3 1  0.0  3
7  3 3  0.0  3
8  1 3  0.0  3
8 1
1 1 2 1
2 2 3 1
3 3 4 1
4 4 1 2
5 5 6 3
6 6 7 3
7 7 8 3
8 8 5 3
1
1 2.0 2.0
1
1 0.5 0.5 7 0.3
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _edges_by_python(triangles):
    """Unique undirected edges and how many triangles use each, counted with a dict (independent)."""
    count = {}
    for a, b, c in triangles.tolist():
        for u, v in ((a, b), (b, c), (c, a)):
            key = (min(u, v), max(u, v))
            count[key] = count.get(key, 0) + 1
    return count


def _shoelace(xy):
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.fixture
def square_hole(tmp_path):
    return read_poly(_write(tmp_path, "sq.poly", SQUARE_WITH_HOLE))


@pytest.fixture(scope="module")
def satellite():
    return read_poly(SATELLITE)


@pytest.fixture(scope="module")
def satellite_levels():
    with open(MODELS / "satellite.toml", "rb") as fh:
        return tomllib.load(fh)["mesh"]["levels"]


# --------------------------------------------------------------------------- .poly


def test_read_poly_fields(square_hole):
    p = square_hole
    assert p.vertices.dtype == np.float64 and p.vertices.flags.c_contiguous
    assert p.segments.dtype == np.int64
    np.testing.assert_array_equal(p.vertices[4], [1, 1])
    np.testing.assert_array_equal(p.segments[0], [0, 1])  # 1-based file -> 0-based
    np.testing.assert_array_equal(p.segment_markers, [1, 1, 1, 2, 3, 3, 3, 3])
    np.testing.assert_array_equal(p.vertex_markers, [1, 1, 1, 1, 3, 3, 3, 3])
    np.testing.assert_array_equal(p.vertex_attributes[:, 0], [0.5] * 4 + [0.0] * 4)
    np.testing.assert_array_equal(p.holes, [[2.0, 2.0]])
    np.testing.assert_array_equal(p.regions, [[0.5, 0.5, 7, 0.3]])


def test_poly_zero_based_equals_one_based(tmp_path, square_hole):
    zero = "\n".join(
        "4 2 0 0|0 0 0|1 4 0|2 4 4|3 0 4|4 0|0 0 1|1 1 2|2 2 3|3 3 0|0".split("|")
    )
    p = read_poly(_write(tmp_path, "z.poly", zero))
    np.testing.assert_array_equal(p.segments, square_hole.segments[:4])
    np.testing.assert_array_equal(p.vertices, square_hole.vertices[:4])


def test_poly_round_trip(tmp_path, square_hole):
    write_poly(tmp_path / "out.poly", square_hole)
    back = read_poly(tmp_path / "out.poly")
    for name in ("vertices", "segments", "holes", "regions", "vertex_markers", "segment_markers", "vertex_attributes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(square_hole, name), err_msg=name)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 12), st.integers(0, 2**31 - 1))
def test_poly_round_trip_random(tmp_path_factory, n, seed):
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    angles += np.arange(n) * 1e-3  # distinct
    xy = np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(0.1, 1e3) + rng.normal(size=2) * 1e3
    seg = np.column_stack([np.arange(n), (np.arange(n) + 1) % n])
    poly = Poly(xy, seg, vertex_markers=rng.integers(0, 9, n), segment_markers=rng.integers(-3, 9, n))
    path = tmp_path_factory.mktemp("p") / "r.poly"
    write_poly(path, poly)
    back = read_poly(path)
    np.testing.assert_array_equal(back.vertices, poly.vertices)  # repr() round-trips floats exactly
    np.testing.assert_array_equal(back.segments, poly.segments)
    np.testing.assert_array_equal(back.segment_markers, poly.segment_markers)
    np.testing.assert_array_equal(back.vertex_markers, poly.vertex_markers)


def test_poly_vertices_from_sibling_node(tmp_path):
    _write(tmp_path, "part.node", "4 2 0 1\n0 0 0 1\n1 2 0 1\n2 2 1 1\n3 0 1 1\n")
    p = read_poly(_write(tmp_path, "part.poly", "0 2 0 0\n4 0\n0 0 1\n1 1 2\n2 2 3\n3 3 0\n0\n"))
    np.testing.assert_array_equal(p.vertices, [[0, 0], [2, 0], [2, 1], [0, 1]])
    np.testing.assert_array_equal(p.segments[-1], [3, 0])
    assert triangulate(p, "pa0.1").triangle_areas.sum() == pytest.approx(2.0)


# --------------------------------------------------------------------------- .node / .ele


def test_node_ele_round_trip(tmp_path, square_hole):
    mesh = triangulate(square_hole, "pq30a0.2")
    node, ele = write_triangle_mesh(tmp_path / "m", mesh)
    assert node.read_text().splitlines()[1].startswith("1 ")  # 1-based
    back = read_triangle_mesh(node)
    np.testing.assert_array_equal(back.points, mesh.points)
    np.testing.assert_array_equal(back.triangles, mesh.triangles)
    np.testing.assert_array_equal(back.point_markers, mesh.point_markers)


def test_node_ele_zero_based_with_attributes(tmp_path):
    _write(tmp_path, "z.node", "# 0-based, 2 attributes, no markers\n4 2 2 0\n0 0 0 9 9\n1 1 0 9 9\n2 1 1 9 9\n3 0 1 9 9\n")
    _write(tmp_path, "z.ele", "2 3 1\n0 0 1 2 5\n1 0 2 3 5\n")
    points, attrs, markers, base = read_node(tmp_path / "z.node")
    assert base == 0 and attrs.shape == (4, 2) and not markers.any()
    triangles, tattrs = read_ele(tmp_path / "z.ele", 4)
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(tattrs, [[5], [5]])
    mesh = read_triangle_mesh(tmp_path / "z")
    assert mesh.n_points == 4 and len(mesh.edges) == 5


def test_headers_without_marker_counts(tmp_path):
    """Triangle's short headers: rows may carry a marker or not."""
    p = read_poly(_write(tmp_path, "s.poly", "3\n1 0 0 5\n2 1 0 5\n3 0 1 6\n3\n1 1 2 7\n2 2 3 7\n3 3 1 7\n0\n"))
    np.testing.assert_array_equal(p.vertex_markers, [5, 5, 6])
    np.testing.assert_array_equal(p.segment_markers, [7, 7, 7])
    p = read_poly(_write(tmp_path, "t.poly", "3 2\n1 0 0\n2 1 0\n3 0 1\n3\n1 1 2\n2 2 3\n3 3 1\n0\n"))
    assert not p.vertex_markers.any() and not p.segment_markers.any()


def test_regions_without_area(tmp_path):
    p = read_poly(_write(tmp_path, "r.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 0 1\n0 0\n0\n1\n1 0.2 0.2 4\n"))
    np.testing.assert_array_equal(p.regions, [[0.2, 0.2, 4, -1]])


def test_ele_uses_node_numbering(tmp_path):
    """Triangle's rule: the .node's first number sets the base of the .ele's vertex references."""
    _write(tmp_path, "b.node", "3 2 0 0\n1 0 0\n2 1 0\n3 0 1\n")
    _write(tmp_path, "b.ele", "1 3 0\n0 1 2 3\n")  # triangles numbered from 0, vertices from 1
    mesh = read_triangle_mesh(tmp_path / "b.node")
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2]])


# --------------------------------------------------------------------------- bad input

BAD_FILES = [
    # (name, text, regex after "name:line: ")
    ("count.node", "10 2 0 0\n" + "".join(f"{i} {i} 0\n" for i in range(1, 10)), r":10: unexpected end of file.*says 10 vertices, found 9"),
    ("count.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n4 0\n", r":5: .*unexpected end of file.*4 segments, found 0"),
    ("short.poly", "4 2 0 0\n1 0 0\n2 1 0\n3 1 1\n1 0\n1 1 2\n0\n", r":5: vertex 4 of 4 .* must have 3 fields, has 2"),
    ("word.node", "2 2 0 0\n1 0 0\n2 one 0\n", r":3: non-numeric field 'one' in vertex 2"),
    ("under.node", "2 2 0 0\n1 0 0\n2 1_0 0\n", r":3: non-numeric field '1_0' in vertex 2"),
    ("header.node", "two 2 0 0\n", r":1: non-numeric field 'two'"),
    ("nan.node", "2 2 0 0\n1 0 0\n2 nan 0\n", r":3: vertex 2 has a non-finite value"),
    ("inf.poly", "2 2 0 0\n1 0 0\n2 0 -inf\n0 0\n0\n", r":3: vertex 2 has a non-finite value"),
    ("dup.node", "3 2 0 0\n1 0 0\n2 1 1\n\n# again\n3 1.0 1e0\n", r":6: vertex 3 at \[1.0, 1.0\] duplicates vertex 2 on line 3.*zero-length"),
    ("range.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n2 0\n1 1 2\n2 3 4\n0\n", r":7: segment 2 refers to vertices \[3, 4\] outside 1..3"),
    ("zero.poly", "3 2 0 0\n0 0 0\n1 1 0\n2 1 1\n1 0\n0 0 3\n0\n", r":6: segment 1 refers to vertices \[0, 3\] outside 0..2"),
    ("self.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n1 0\n1 2 2\n0\n", r":6: segment 1 joins vertex 2 to itself"),
    ("noholes.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n1 0\n1 1 2\n", r":6: unexpected end of file: expected the hole header"),
    ("number.node", "3 2 0 0\n1 0 0\n2 1 0\n4 1 1\n", r":4: vertex numbered 4; expected 3"),
    ("base.node", "2 2 0 0\n2 0 0\n3 1 0\n", r":2: the first vertex is numbered 2; numbering must start at 0 or 1"),
    ("trail.node", "2 2 0 0\n1 0 0\n2 1 0\n3 1 1\n", r":4: unexpected data after the last section"),
    ("dim.node", "2 3 0 0\n1 0 0 0\n2 1 0 0\n", r":1: dimension must be 2"),
    ("marks.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n1 2\n", r":5: the number of segment markers must be 0 or 1"),
    ("frac.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n1 0\n1 1 2.5\n0\n", r":6: segment 1: .* must be integers"),
    ("region.poly", "3 2 0 0\n1 0 0\n2 1 0\n3 1 1\n0 0\n0\n1\n1 0.5\n", r":8: region 1 of 1 .* must have 5 fields, has 2"),
    ("nonode.poly", "0 2 0 0\n0 0\n0\n", r":1: the .poly lists 0 vertices.*nonode.node, which does not exist"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    reader = read_poly if name.endswith(".poly") else read_node
    with pytest.raises(ReadError, match=re.escape(str(path)) + message) as info:
        reader(path)
    assert info.value.path == str(path) and info.value.line == int(message[1:].split(":")[0])


BAD_ELE = [
    ("range.ele", "2 3 0\n1 1 2 3\n2 1 3 4\n", r":3: triangle 2 refers to vertices \[1, 3, 4\] outside 1..3"),
    ("six.ele", "1 6 0\n1 1 2 3 4 5 6\n", r":1: only 3-node triangles are supported"),
    ("repeat.ele", "1 3 0\n1 1 2 2\n", r":2: triangle 1 repeats a vertex"),
    ("count.ele", "2 3 0\n1 1 2 3\n", r":2: unexpected end of file.*2 triangles, found 1"),
    ("word.ele", "1 3 0\n1 1 two 3\n", r":2: non-numeric field 'two' in triangle 1"),
]


@pytest.mark.parametrize("name, text, message", BAD_ELE, ids=[b[0] for b in BAD_ELE])
def test_bad_ele(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(ReadError, match=re.escape(str(path)) + message):
        read_ele(path, 3)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.poly"):
        read_poly(tmp_path / "nothere.poly")
    _write(tmp_path, "lone.node", "3 2 0 0\n1 0 0\n2 1 0\n3 0 1\n")
    with pytest.raises(FileNotFoundError, match="lone.ele"):
        read_triangle_mesh(tmp_path / "lone.node")


def test_read_error_is_value_error():
    assert issubclass(ReadError, ValueError)


def test_poly_and_mesh_validation():
    with pytest.raises(ValueError, match=r"Poly.segments row 1 = \[2, 3\] refers to a point outside 0..2"):
        Poly([[0, 0], [1, 0], [0, 1]], [[0, 1], [2, 3]])
    with pytest.raises(ValueError, match=r"Poly.vertices must have shape \(n, 2\)"):
        Poly([[0, 0, 0]])
    with pytest.raises(ValueError, match=r"Mesh.points row 1 is not finite"):
        Mesh([[0, 0], [np.nan, 0], [0, 1]], [[0, 1, 2]])
    with pytest.raises(ValueError, match=r"Mesh.triangles row 0 = \[0, 1, 3\] refers to a point outside 0..2"):
        Mesh([[0, 0], [1, 0], [0, 1]], [[0, 1, 3]])
    with pytest.raises(ValueError, match=r"Mesh.triangles row 0 = \[0, 1, 1\] repeats a node"):
        Mesh([[0, 0], [1, 0], [0, 1]], [[0, 1, 1]])
    with pytest.raises(TypeError, match=r"Mesh.triangles must be an integer array"):
        Mesh([[0, 0], [1, 0], [0, 1]], [["a", "b", "c"]])
    with pytest.raises(ValueError, match=r"Mesh.triangles must hold integers"):
        Mesh([[0, 0], [1, 0], [0, 1]], [[0, 1, 2.5]])
    m = Mesh(np.array([[0, 0], [1, 0], [0, 1]], dtype=np.float32), np.array([[0, 1, 2]], dtype=np.int32))
    assert m.points.dtype == np.float64 and m.triangles.dtype == np.int64
    assert m.point_markers.tolist() == [0, 0, 0]


# --------------------------------------------------------------------------- switches


@pytest.mark.parametrize(
    "switches, message",
    [
        ("pxq", r"unknown Triangle switch 'x' in 'pxq'"),
        ("pq30o2", r"switch 'o' in 'pq30o2' is not supported: second-order"),
        ("pq60", r"minimum angle q60 .* may never terminate"),
        ("pa0", r"maximum area a0 in 'pa0' must be positive"),
        ("pa-1", r"switch 'a' in 'pa-1' needs a positive number"),
        ("rpq30", r"switch 'r' in 'rpq30': use refine"),
        ("pV", r"switch 'V' in 'pV' is not supported"),
    ],
)
def test_bad_switches(square_hole, switches, message):
    with pytest.raises(ValueError, match=message):
        triangulate(square_hole, switches)


def test_switches_type_and_accepted():
    with pytest.raises(TypeError, match="must be a string"):
        check_switches(30)
    assert check_switches("-pq33.5a1e-3 A") == "pq33.5a1e-3A"
    assert check_switches("pzq") == "pzq"  # z (0-based) is what the wrapper uses anyway
    assert check_switches("rpq34a0.2", refining=True) == "rpq34a0.2"


def test_triangle_failure_names_switches():
    # a hole point with no segments around it: Triangle eats every triangle
    poly = Poly([[0, 0], [1, 0], [1, 1], [0, 1]], holes=[[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"Triangle produced no triangles .* switches 'pj'"):
        triangulate(poly, "p")


def test_refine_bad_switches(square_hole):
    mesh = triangulate(square_hole, "pq30a0.5")
    with pytest.raises(ValueError, match="unknown Triangle switch 'k'"):
        refine(mesh, "rkq")


# --------------------------------------------------------------------------- meshing and edges


def _check_edges(mesh, n_holes):
    """Euler's formula, sorted unique rows, each interior edge in exactly 2 triangles."""
    edges = mesh.edges
    V, T, E = mesh.n_points, mesh.n_triangles, len(edges)
    assert E == V + T - 1 + n_holes
    assert edges.dtype == np.int64 and np.all(edges[:, 0] < edges[:, 1])
    assert len(np.unique(edges, axis=0)) == E
    count = _edges_by_python(mesh.triangles)
    assert sorted(count) == [tuple(e) for e in edges.tolist()]
    uses = np.array(list(count.values()))
    assert set(uses.tolist()) <= {1, 2}
    boundary = {k for k, c in count.items() if c == 1}
    assert boundary == {tuple(e) for e in mesh.boundary_edges.tolist()}
    # every triangle is used in the right orientation and the nodes are all used
    assert np.all(mesh.triangle_areas > 0)
    assert np.unique(mesh.triangles).size == V


def test_square_with_hole_mesh(square_hole):
    mesh = triangulate(square_hole, "pq30a0.05")
    _check_edges(mesh, n_holes=1)
    assert mesh.triangle_areas.max() <= 0.05 * (1 + 1e-12)
    assert mesh.triangle_areas.sum() == pytest.approx(16 - 4, rel=1e-12)
    # boundary edges lie on the outline or the hole: 4 sides of length 4 and 4 of length 2
    be = mesh.boundary_edges
    length = np.linalg.norm(mesh.points[be[:, 0]] - mesh.points[be[:, 1]], axis=1).sum()
    assert length == pytest.approx(16 + 8)


def test_edges_read_only(square_hole):
    mesh = triangulate(square_hole, "pa1")
    with pytest.raises(ValueError):
        mesh.edges[0, 0] = 5


def test_replace_derives_a_normalised_and_checked_mesh(square_hole):
    mesh = triangulate(square_hole, "pa1")
    bigger = dataclasses.replace(mesh, points=(2 * mesh.points).tolist())
    assert bigger.points.dtype == np.float64 and bigger.points.flags.c_contiguous
    np.testing.assert_array_equal(bigger.edges, mesh.edges)
    np.testing.assert_allclose(bigger.triangle_areas, 4 * mesh.triangle_areas)
    bad = mesh.triangles.copy()
    bad[2, 1] = mesh.n_points
    with pytest.raises(ValueError, match=rf"Mesh.triangles row 2 = .* refers to a point outside 0..{mesh.n_points - 1}"):
        dataclasses.replace(mesh, triangles=bad)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 60), st.integers(0, 2**31 - 1))
def test_euler_on_random_delaunay(n, seed):
    """Delaunay of random points covers their convex hull: a simply connected mesh."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-10, 10, (n, 2))
    pts = np.unique(np.round(pts, 6), axis=0)
    mesh = triangulate(Poly(pts), "")
    _check_edges(mesh, n_holes=0)


def test_vertex_in_hole_is_dropped(square_hole):
    """'j' is always added: a vertex left in a hole would be a node without rods."""
    poly = Poly(
        np.vstack([square_hole.vertices, [[2.0, 2.5]]]), square_hole.segments, holes=square_hole.holes
    )
    mesh = triangulate(poly, "pq30a0.5")
    assert not np.any(np.all(mesh.points == [2.0, 2.5], axis=1))
    assert np.unique(mesh.triangles).size == mesh.n_points


def test_region_area_constraint(square_hole):
    """'a' without a number: the region's max area (0.3) applies; 'A' spreads its attribute."""
    mesh = triangulate(square_hole, "pqa")
    assert mesh.triangle_areas.max() <= 0.3 * (1 + 1e-12)
    coarse = triangulate(square_hole, "pq")
    assert coarse.triangle_areas.max() > 0.3


def test_refine_keeps_domain_and_boundary(square_hole):
    mesh = triangulate(square_hole, "pq30a0.5")
    for switches in ("rpq30a0.05", "q30a0.05"):  # with and without p; r is added if missing
        fine = refine(mesh, switches)
        assert fine.n_points > mesh.n_points
        assert fine.triangle_areas.sum() == pytest.approx(12.0, rel=1e-12)
        assert fine.triangle_areas.max() <= 0.05 * (1 + 1e-12)
        _check_edges(fine, n_holes=1)
        # the original nodes are kept, in order
        np.testing.assert_array_equal(fine.points[: mesh.n_points], mesh.points)


def test_mesh_levels_is_progressive(square_hole):
    levels = ["pa1", "rpq30a0.3", "q30a0.1"]
    expected = refine(refine(triangulate(square_hole, "pa1"), "rpq30a0.3"), "q30a0.1")
    got = mesh_levels(square_hole, levels, 3)
    np.testing.assert_array_equal(got.points, expected.points)
    np.testing.assert_array_equal(got.triangles, expected.triangles)
    assert mesh_levels(square_hole, levels, 1).n_points < mesh_levels(square_hole, levels, 2).n_points


def test_mesh_levels_bad_level(square_hole):
    with pytest.raises(ValueError, match=r"level 4 is out of range: pick 1..3"):
        mesh_levels(square_hole, ["pa1", "a0.5", "a0.2"], 4)
    with pytest.raises(ValueError, match=r"level 0 is out of range"):
        mesh_levels(square_hole, ["pa1"], 0)
    with pytest.raises(TypeError, match="level must be an integer"):
        mesh_levels(square_hole, ["pa1"], 1.0)
    with pytest.raises(TypeError, match="levels must be a list"):
        mesh_levels(square_hole, "pa1", 1)
    with pytest.raises(ValueError, match=r"unknown Triangle switch 'w' in 'a0.1w'"):
        mesh_levels(square_hole, ["pa1", "a0.1w"], 1)  # all levels validated up front


# --------------------------------------------------------------------------- satellite


def test_satellite_geometry(satellite):
    v = satellite.vertices
    assert v[:, 0].min() == pytest.approx(3) and v[:, 0].max() == pytest.approx(44)
    assert v[:, 1].min() == pytest.approx(2) and v[:, 1].max() == pytest.approx(27)
    ring = satellite.segments[satellite.segment_markers == 2]
    np.testing.assert_array_equal(v[ring.ravel()], [[16, 2], [31, 2]])  # one straight segment
    assert len(satellite.holes) == 1


def test_satellite_levels(satellite, satellite_levels):
    counts = []
    for level in (1, 2, 3):
        mesh = mesh_levels(satellite, satellite_levels, level)
        counts.append(mesh.n_points)
        _check_edges(mesh, n_holes=1)
        on_ring = np.isclose(mesh.points[:, 1], 2.0, rtol=0, atol=1e-9)
        x = mesh.points[on_ring, 0]
        assert x.min() == pytest.approx(16) and x.max() == pytest.approx(31)
        assert mesh.point_markers[on_ring].tolist() == [2] * on_ring.sum()  # ring marker carried along
        # the release bolt (load point) is a node at every level
        assert np.any(np.all(mesh.points == [7.6, 16.6], axis=1))
        area = mesh.triangle_areas
        assert area.min() > 0
        assert area.sum() == pytest.approx(_satellite_area(satellite), rel=1e-12)
    assert counts[0] < counts[1] < counts[2]


def _satellite_area(poly):
    """Outline minus the cut-out by the shoelace formula, from the .poly's markers."""
    outline = poly.segments[np.isin(poly.segment_markers, [1, 2])][:, 0]
    cutout = poly.segments[poly.segment_markers == 3][:, 0]
    return _shoelace(poly.vertices[outline]) - _shoelace(poly.vertices[cutout])


def _free_dof(mesh):
    ring = np.isclose(mesh.points[:, 1], 2.0, rtol=0, atol=1e-9)
    return 2 * mesh.n_points - 2 * int(ring.sum())


def test_satellite_level5_dof(satellite, satellite_levels):
    assert _free_dof(mesh_levels(satellite, satellite_levels, 5)) == pytest.approx(150_000, rel=0.1)


def test_satellite_level7_dof(satellite, satellite_levels):
    assert len(satellite_levels) == 7
    assert _free_dof(mesh_levels(satellite, satellite_levels, 7)) == pytest.approx(612_000, rel=0.1)


def test_beam_poly():
    beam = read_poly(MODELS / "beam.poly")
    mesh = triangulate(beam, "pq30a0.05")
    assert mesh.triangle_areas.sum() == pytest.approx(10.0)
    _check_edges(mesh, n_holes=0)


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("suffix", [".vtu", ".xdmf"])
def test_write_mesh_round_trip(tmp_path, square_hole, suffix):
    mesh = triangulate(square_hole, "pq30a0.2")
    rng = np.random.default_rng(1)
    scalar = rng.normal(size=mesh.n_points)
    vector = rng.normal(size=(mesh.n_points, 2))
    path = write_mesh(tmp_path / f"m{suffix}", mesh, {"amp": scalar, "shape": vector})
    back = meshio.read(path)
    np.testing.assert_array_equal(back.points[:, :2], mesh.points)
    np.testing.assert_array_equal(back.points[:, 2], 0.0)
    np.testing.assert_array_equal(back.cells_dict["triangle"], mesh.triangles)
    np.testing.assert_array_equal(back.point_data["amp"], scalar)
    np.testing.assert_array_equal(back.point_data["shape"][:, :2], vector)
    np.testing.assert_array_equal(back.point_data["point_markers"], mesh.point_markers)


def test_write_mesh_bad_data(tmp_path, square_hole):
    mesh = triangulate(square_hole, "pa1")
    with pytest.raises(ValueError, match=rf"point_data\['x'\] must have shape \({mesh.n_points},\)"):
        write_mesh(tmp_path / "m.vtu", mesh, {"x": np.zeros(3)})
    with pytest.raises(TypeError, match=r"point_data\['z'\] is complex"):
        write_mesh(tmp_path / "m.vtu", mesh, {"z": np.zeros(mesh.n_points, complex)})


# --------------------------------------------------------------------------- CLI


def test_cli_mesh_poly(tmp_path, capsys, square_hole):
    src = tmp_path / "sq.poly"
    write_poly(src, square_hole)
    out = tmp_path / "sq.vtu"
    assert main(["mesh", str(src), "--switches", "pq30a0.1", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    mesh = triangulate(square_hole, "pq30a0.1")
    assert f"{mesh.n_points:,} nodes, {mesh.n_triangles:,} triangles, {len(mesh.edges):,} edges" in text
    assert meshio.read(out).points.shape == (mesh.n_points, 3)


def test_cli_mesh_model_level(tmp_path, capsys, satellite, satellite_levels):
    assert main(["mesh", "satellite", "--level", "2", "-o", str(tmp_path / "sat")]) == 0
    text = capsys.readouterr().out
    mesh = mesh_levels(satellite, satellite_levels, 2)
    assert "satellite level 2 " in text and f"{mesh.n_points:,} nodes" in text
    back = read_triangle_mesh(tmp_path / "sat.node")
    np.testing.assert_array_equal(back.triangles, mesh.triangles)
    # a .node/.ele pair in, refined, out as VTU
    assert main(["mesh", str(tmp_path / "sat.node"), "-s", "q30a0.5", "-o", str(tmp_path / "r.vtu")]) == 0
    assert "refined (q30a0.5)" in capsys.readouterr().out


def test_cli_mesh_errors(tmp_path, capsys):
    assert main(["mesh", str(SATELLITE), "--switches", "pq70"]) == 2
    assert "femfreq: error: minimum angle q70" in capsys.readouterr().err
    assert main(["mesh", "satellite", "--level", "9"]) == 2
    assert "level 9 is out of range: pick 1..7" in capsys.readouterr().err
    assert main(["mesh", str(tmp_path / "none.poly")]) == 2
    assert "none.poly" in capsys.readouterr().err
