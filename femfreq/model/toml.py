"""Model files: the TOML schema, :func:`load_model` and the shipped models (:func:`models_dir`).

The format is described in ``docs/architecture.md``; errors in a file are
:class:`femfreq.errors.ReadError` naming the file and the line of the key at fault.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
import tomllib
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..errors import ReadError
from ..mesh import mesh_levels, read_poly, read_triangle_mesh
from .model import Damping, LoadHistory, Model
from .selectors import _lost_load, fixed_dofs_from, load_vector, output_dofs_from, select_nodes

__all__ = ["load_model", "models_dir", "shipped_models"]

logger = logging.getLogger(__name__)


def models_dir() -> Path:
    """The folder holding the shipped models (``*.toml`` and their ``*.poly`` meshes).

    An installed wheel carries them as the package data folder ``femfreq/models``
    (found with :mod:`importlib.resources`); a source checkout or an editable install
    (``pip install -e .``) uses the repository's top-level ``models/`` folder.

    Returns
    -------
    pathlib.Path
        The folder; it may not exist if femfreq was installed without its data.
    """
    packaged = importlib.resources.files("femfreq") / "models"
    if isinstance(packaged, Path) and packaged.is_dir():  # not a zipped install
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def shipped_models() -> list[str]:
    """Names of the shipped models (the ``*.toml`` files in :func:`models_dir`)."""
    d = models_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


_SCHEMA = {
    "": {"name", "description", "mesh", "material", "section", "damping", "constraints", "load", "output", "base"},
    "mesh": {"poly", "levels", "default_level", "node", "ele", "line"},
    "mesh.line": {"start", "end", "n"},
    "material": {"E", "rho"},
    "section": {"area", "mass"},
    "damping": {"alpha", "beta", "g"},
    "constraints": {"select", "fix"},
    "load": {"select", "direction", "magnitude", "history", "dt", "n_fft"},
    "output": {"select", "directions"},
    "base": {"direction", "select", "acceleration"},
}

# load_model(**overrides): flat name -> (section, key)
_OVERRIDES = {
    "name": ("", "name"),
    "E": ("material", "E"),
    "rho": ("material", "rho"),
    "area": ("section", "area"),
    "mass": ("section", "mass"),
    "alpha": ("damping", "alpha"),
    "beta": ("damping", "beta"),
    "g": ("damping", "g"),
    "history": ("load", "history"),
    "dt": ("load", "dt"),
    "n_fft": ("load", "n_fft"),
    "magnitude": ("load", "magnitude"),
    "direction": ("load", "direction"),
    "output_directions": ("output", "directions"),
    "base": ("base", "direction"),
}


class _File:
    """One model file: its path and text, to name the line of a key in a ReadError."""

    def __init__(self, path, text):
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key):
        """1-based line of the first ``key =`` (or ``[key]``) in the file, or None."""
        pat = re.compile(rf"(^|[\s{{,.\[])\"?{re.escape(key)}\"?\s*(=|\]|\.)")
        for i, line in enumerate(self.lines, 1):
            code = line.split("#", 1)[0]
            if pat.search(code):
                return i
        return None

    def error(self, msg, key=None):
        """A ReadError (a ValueError) ``path:line: msg`` (line 0 if the key is not found)."""
        line = self.line_of(key) if key else None
        return ReadError(self.path, line or 0, msg)

    def check_keys(self, table, section):
        """ReadError on a key of ``table`` that the schema of ``section`` does not know."""
        if not isinstance(table, dict):
            raise self.error(f"[{section}] must be a table (got {table!r})", section.split(".")[-1] or None)
        unknown = set(table) - _SCHEMA[section]
        if unknown:
            key = sorted(unknown)[0]
            where = f"[{section}]" if section else "the top level"
            raise self.error(
                f"unknown key {key!r} in {where}; allowed: {', '.join(sorted(_SCHEMA[section]))}", key
            )

    def number(self, table, section, key, default=None, *, positive=False, nonneg=False, integer=False):
        """``table[key]`` checked by :mod:`femfreq._validate` (``default`` if absent; None: required)."""
        if key not in table:
            if default is None:
                raise self.error(f"[{section}] needs {key!r}", section)
            return default
        name = f"[{section}] {key}"
        try:
            if integer:
                return v.as_int(name, table[key], minimum=1 if positive else 0 if nonneg else None)
            return v.as_float(name, table[key], positive=positive, nonneg=nonneg)
        except (TypeError, ValueError) as exc:
            raise self.error(str(exc), key) from None

    def call(self, key, func, prefix=""):
        """``func()``; its ValueError/TypeError becomes a ReadError ``prefix + message`` at the line of ``key``."""
        try:
            return func()
        except (ValueError, TypeError) as exc:
            raise self.error(prefix + str(exc), key) from None


def _resolve_model_path(path_or_name) -> Path:
    """The model file: a path, else a shipped model of that name."""
    p = Path(path_or_name)
    if p.suffix == ".toml" or p.exists() or p.parent != Path("."):
        if not p.is_file():
            raise FileNotFoundError(f"model file {str(p)!r} not found")
        return p.resolve()
    shipped = models_dir() / f"{p.name}.toml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"no model file {str(p)!r} and no shipped model of that name (shipped: {', '.join(shipped_models()) or 'none'})"
    )


def load_model(path_or_name, *, level: int | None = None, **overrides) -> Model:
    """Read a model file (TOML) and build the :class:`Model`.

    Parameters
    ----------
    path_or_name : str or Path
        A ``.toml`` file, or the name of a shipped model (``"satellite"``,
        ``"beam"``, ``"rod"``: see :func:`shipped_models`).
    level : int, optional
        Mesh refinement level, 1-based (default: the file's ``default_level``, else 1).
        For a ``[mesh] line`` model, level ``l`` uses ``n * 2**(l - 1)`` rods.
    **overrides
        Replace file values: ``name, E, rho, area, mass ("lumped"|"consistent"),
        alpha, beta, g, history, dt, n_fft, magnitude, direction, output_directions, base``
        (``base``: the direction of a ``[base]`` section, created if the file has none).
        ``None`` values are ignored.

    Returns
    -------
    Model

    Raises
    ------
    FileNotFoundError
        No such file or shipped model.
    ValueError
        (:class:`femfreq.errors.ReadError` for file content) unknown keys, bad values,
        selections that select no node, a ``near`` point farther than its ``tol`` from
        every node, a load that acts only on fixed DOF or on nodes in no rod (or is zero),
        outputs on fixed DOF or on nodes in no rod, a bad level.
    TypeError
        An unknown override.

    Notes
    -----
    The format is described in ``docs/architecture.md``. Paths in the file are
    relative to it. ``area = "reference"`` means ``A = sqrt(2 / n_dof)`` with
    ``n_dof = 2 n_nodes``. A ``[mesh] line = {start, end, n}`` model is a chain
    of ``n`` collinear rods along x or y; as a straight chain has no transverse
    stiffness, the transverse DOF of all its nodes are fixed, leaving the axial
    DOF only.

    A ``near = [x, y]`` selection takes the node nearest to the point, which must lie
    within ``tol`` of it: by default the longest rod of the model, as any point on the
    structure is that close to a node; a point farther off is an error naming the
    distance (give ``tol`` to accept it).
    """
    path = _resolve_model_path(path_or_name)
    f, data = _read(path, overrides)
    if "mesh" not in data:
        raise f.error("the model needs a [mesh] section")
    points, edges, extra_fixed, source, mesh = _build_mesh(f, path.parent, data["mesh"], level)
    E, rho, area, lumped, damping = _material(f, data, n_dof=2 * points.shape[0])
    fixed = f.call("constraints", lambda: fixed_dofs_from(points, data.get("constraints", []), edges=edges))
    fixed = np.union1d(fixed, extra_fixed).astype(np.int64)
    b_full, history = _load(f, data, points, edges, fixed, path.parent)
    base = _base(f, data, points, edges, fixed)
    output_dofs = _outputs(f, data, points, edges, fixed)
    name = data.get("name", path.stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise f.error("name and description must be strings", "name")
    model = Model(
        points=points,
        edges=edges,
        E=E,
        rho=rho,
        area=area,
        lumped=lumped,
        damping=damping,
        fixed_dofs=fixed,
        b_full=b_full,
        output_dofs_full=output_dofs,
        name=name,
        description=description,
        history=history,
        source={"file": str(path), **source},
        mesh=mesh,
        base=base,
    )
    # how to read it again (femfreq.model.recipe.recipe_of); not a field: a replace()d model has none
    shipped = path.parent == models_dir().resolve() and Path(path_or_name).name in (path.stem, path.name)
    object.__setattr__(model, "_loaded_as", (path.stem if shipped else str(path), level, dict(overrides)))
    logger.info("model %s: %d nodes, %d rods, %d free DOF", model.name, model.n_nodes, model.n_rods, model.n_free)
    return model


def _read(path: Path, overrides: dict):
    """The file's tables with the overrides applied, keys checked against the schema -> (_File, data)."""
    text = path.read_text(encoding="utf-8")
    f = _File(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReadError(path, getattr(exc, "lineno", 0) or 0, f"not valid TOML: {exc}") from None
    for key, value in overrides.items():
        if key not in _OVERRIDES:
            raise TypeError(f"unknown override {key!r}; known: {', '.join(sorted(_OVERRIDES))}")
        if value is None:
            continue
        section, k = _OVERRIDES[key]
        (data if not section else data.setdefault(section, {}))[k] = value

    f.check_keys(data, "")
    for section in ("mesh", "material", "section", "damping", "load", "output", "base"):
        if section in data:
            f.check_keys(data[section], section)
    constraints = data.get("constraints", [])
    if not isinstance(constraints, list):
        raise f.error("constraints must be an array of tables [[constraints]]", "constraints")
    for c in constraints:
        f.check_keys(c, "constraints")
        if "select" not in c:
            raise f.error("each [[constraints]] needs 'select'", "constraints")
    return f, data


def _material(f: _File, data: dict, n_dof: int):
    """(E, rho, area, lumped, Damping) from [material], [section] and [damping]."""
    material = data.get("material", {})
    E = f.number(material, "material", "E", positive=True)
    rho = f.number(material, "material", "rho", positive=True)
    section = data.get("section", {})
    area = section.get("area", "reference")
    if area == "reference":
        area = math.sqrt(2.0 / n_dof)
    else:
        area = f.number(section, "section", "area", positive=True)
    mass_kind = section.get("mass", "lumped")
    if mass_kind not in ("lumped", "consistent"):
        raise f.error(f"[section] mass must be 'lumped' or 'consistent' (got {mass_kind!r})", "mass")
    dmp = data.get("damping", {})
    damping = Damping(
        alpha=f.number(dmp, "damping", "alpha", 0.0, nonneg=True),
        beta=f.number(dmp, "damping", "beta", 0.0, nonneg=True),
        g=f.number(dmp, "damping", "g", 0.0, nonneg=True),
    )
    return E, rho, area, mass_kind == "lumped", damping


def _load(f: _File, data: dict, points, edges, fixed, base: Path):
    """(b_full, LoadHistory) from [load], or (None, None) without one; history paths relative to ``base``.

    A ReadError if no part of the load reaches a free DOF (a node in no rod counts as fixed).
    """
    if "load" not in data:
        return None, None
    load = data["load"]
    if "select" not in load:
        raise f.error("[load] needs 'select' (e.g. select = { near = [x, y] })", "load")
    magnitude = f.number(load, "load", "magnitude", 1.0)
    direction = load.get("direction", [0.0, -1.0])
    b_full = f.call("load", lambda: load_vector(points, load["select"], direction, magnitude, edges=edges), "[load] ")
    lost = _lost_load(points, edges, fixed, b_full)
    if lost:
        raise f.error(f"[load] select = {load['select']!r}: {lost}", "load")
    hist = load.get("history", "pyroshock")
    if not isinstance(hist, str):
        raise f.error(f"[load] history must be 'pyroshock' or a file name (got {hist!r})", "history")
    if hist != "pyroshock":
        hp = Path(hist)
        hist = str(hp if hp.is_absolute() else (base / hp).resolve())
    history = LoadHistory(
        history=hist,
        # a history file's dt comes from its time column or from [load] dt, never a default
        dt=f.number(load, "load", "dt", 5e-4, positive=True) if hist == "pyroshock" or "dt" in load else None,
        n_fft=f.number(load, "load", "n_fft", 4096, positive=True, integer=True),
        magnitude=magnitude,
    )
    return b_full, history


def _base(f: _File, data: dict, points, edges, fixed):
    """The :class:`~femfreq.model.base.Base` of a [base] section (None without one)."""
    from .base import Base

    if "base" not in data:
        return None
    table = data["base"]
    if "direction" not in table:
        raise f.error("[base] needs 'direction' (e.g. direction = [0.0, 1.0])", "base")
    nodes = None
    constrained = np.unique(fixed // 2)
    if "select" in table:
        nodes = f.call("base", lambda: select_nodes(points, table["select"], edges=edges), "[base] select: ")
        bad = nodes[~np.isin(nodes, constrained)]
        if bad.size:
            x, y = points[bad[0]]
            raise f.error(f"[base] select = {table['select']!r} takes node {int(bad[0])} ({x:g}, {y:g}), "
                          "which is not constrained; the base must be among the constrained nodes", "select")
    if constrained.size == 0:
        raise f.error("[base] needs constrained nodes to drive; the model has none", "base")
    acceleration = f.number(table, "base", "acceleration", 1.0)
    return f.call("direction", lambda: Base(table["direction"], nodes=nodes, acceleration=acceleration), "[base] ")


def _outputs(f: _File, data: dict, points, edges, fixed):
    """Full output DOF from [output] (None without one); a ReadError if one is fixed or in no rod."""
    if "output" not in data:
        return None
    out = data["output"]
    if "select" not in out:
        raise f.error("[output] needs 'select'", "output")
    directions = out.get("directions", "xy")
    output_dofs = f.call("output", lambda: output_dofs_from(points, out["select"], directions, edges=edges))
    connected = np.zeros(points.shape[0], dtype=bool)
    connected[edges.ravel()] = True
    for bad, why in ((np.isin(output_dofs, fixed), "is fixed"), (~connected[output_dofs // 2], "is on a node in no rod")):
        if bad.any():
            d = int(output_dofs[bad][0])
            raise f.error(
                f"[output] select = {out['select']!r}: output DOF {d} (node {d // 2}, {'xy'[d % 2]}) {why}; "
                "outputs must be free DOF, where the response means something",
                "output",
            )
    return output_dofs


def _build_mesh(f: _File, base: Path, mesh: dict, level):
    """(points, edges, extra fixed DOF, source info, Mesh or None) from a [mesh] table."""
    kinds = [k for k in ("poly", "node", "line") if k in mesh]
    if len(kinds) != 1:
        raise f.error("[mesh] needs exactly one of 'poly' (+ levels), 'node' (+ ele) or 'line'", "mesh")
    kind = kinds[0]
    if level is not None:
        level = v.as_int("level", level, minimum=1)
    default_level = f.number(mesh, "mesh", "default_level", 1, positive=True, integer=True)
    level = default_level if level is None else level
    if kind == "line":
        return _line_mesh(f, mesh["line"], level)
    if kind == "node":
        node = base / mesh["node"]
        ele = base / mesh["ele"] if "ele" in mesh else None
        if "levels" in mesh:
            raise f.error("[mesh] levels only apply to a poly mesh", "levels")
        if level != 1:
            raise ValueError(f"{f.path}: level {level} does not exist (a node/ele mesh has one level)")
        m = read_triangle_mesh(node, ele)
        return m.points, m.edges, np.empty(0, dtype=np.int64), {"mesh": str(node), "level": 1}, m

    levels = mesh.get("levels")
    if not isinstance(levels, list) or not levels or not all(isinstance(s, str) for s in levels):
        raise f.error("[mesh] poly needs levels = [\"<Triangle switches>\", ...]", "levels")
    if level > len(levels):
        raise ValueError(f"{f.path}: level {level} does not exist (the model has levels 1..{len(levels)})")
    poly_path = base / mesh["poly"]
    m = mesh_levels(read_poly(poly_path), levels, level)
    source = {"mesh": str(poly_path), "level": level, "switches": " ".join(levels[:level])}
    return m.points, m.edges, np.empty(0, dtype=np.int64), source, m


def _line_mesh(f: _File, line, level):
    """A ``[mesh] line`` chain of ``n * 2**(level - 1)`` collinear rods; its transverse DOF are fixed."""
    f.check_keys(line, "mesh.line")
    try:
        (x0, y0), (x1, y1) = np.asarray([line["start"], line["end"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise f.error("[mesh] line needs start = [x, y] and end = [x, y]", "line") from None
    n = f.number(line, "mesh.line", "n", positive=True, integer=True) * 2 ** (level - 1)
    if x0 == x1 and y0 == y1:
        raise f.error(f"[mesh] line has zero length (start = end = {[x0, y0]})", "line")
    if y0 == y1:
        transverse = 1
    elif x0 == x1:
        transverse = 0
    else:
        raise f.error("[mesh] line must be parallel to the x or the y axis (its transverse DOF are fixed)", "line")
    t = np.linspace(0.0, 1.0, n + 1)
    points = np.column_stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)])
    edges = np.column_stack([np.arange(n), np.arange(1, n + 1)]).astype(np.int64)
    extra = 2 * np.arange(n + 1, dtype=np.int64) + transverse
    return points, edges, extra, {"mesh": "line", "level": level, "n_rods": n}, None
