"""The MATLAB/Octave file route as a user meets it: errors shown, defaults that work in
Octave, the example reproducing the Python satellite run, and the .mat output rules.

Octave runs as a real ``octave-cli`` process and femfreq as a real ``python -m femfreq``.
"""

from __future__ import annotations

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

import femfreq
from femfreq import matlab

ROOT = Path(femfreq.__file__).resolve().parents[1]
MATLAB_DIR = ROOT / "matlab"
OCTAVE = shutil.which("octave-cli") or shutil.which("octave")
needs_octave = pytest.mark.skipif(OCTAVE is None, reason="GNU Octave is not installed: the .m files are not tested")
COMMAND = f'"{sys.executable}" -m femfreq'
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _octave(script: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    path = cwd / "octave_test_script.m"
    path.write_text(f"addpath('{MATLAB_DIR}');\n{script}\n", encoding="utf-8")
    return subprocess.run([OCTAVE, "--quiet", "--norc", "--no-gui", "--no-history", path.name],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def _femfreq(*args, cwd):
    return subprocess.run([sys.executable, "-m", "femfreq", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=ENV, timeout=300)


_SMALL = """
n = 6; K = sparse(diag(1:n) * 100); M = speye(n); b = ones(n, 1);
freqs = [1; 2; 3]; P = 1;
"""


@needs_octave
def test_file_route_error_shows_femfreqs_message(tmp_path):
    """Octave's system() dropped stderr: the error said only 'exit code 2'."""
    r = _octave(_SMALL + f"""
    try
      femfreq_solve(K, [], M, b, freqs, P, 1:n, 'Route', 'file', 'Command', '{COMMAND}', 'Solver', 'pardsio');
    catch err
      printf('caught: %s\\n', err.message);
    end
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"caught: femfreq failed \(exit code 2\): femfreq: error: .*pardsio", r.stdout), r.stdout


@needs_octave
def test_octave_default_route_is_the_file_route(tmp_path):
    """Without 'Route', Octave (no py. interface) used the py route: 'py' undefined."""
    r = _octave(_SMALL + f"""
    X = femfreq_solve(K, [], M, b, freqs, P, [1 2], 'Command', '{COMMAND}', 'Scheduler', 'none');
    printf('X %.12g\\n', real(X(:)));
    """, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    got = np.array([float(x) for x in re.findall(r"X (\S+)", r.stdout)]).reshape(3, 2).T
    w2 = (2 * np.pi * np.array([1.0, 2.0, 3.0])) ** 2
    np.testing.assert_allclose(got, 1.0 / (np.array([[100.0], [200.0]]) - w2), rtol=1e-10)


@needs_octave
def test_write_input_empty_outputs_means_all_dof(tmp_path):
    """femfreq_write_input(..., []) saved an empty output_dofs, which femfreq refused."""
    r = _octave(_SMALL + "femfreq_write_input('in.mat', K, [], M, b, freqs, P, []);", tmp_path)
    assert r.returncode == 0, r.stderr
    inp = matlab.read_mat_input(tmp_path / "in.mat")
    np.testing.assert_array_equal(inp["output_dofs"], np.arange(1, 7))


@needs_octave
def test_example_satellite_reproduces_the_python_run(tmp_path):
    """Same level, load point and direction, history and outputs as `femfreq sweep satellite`,
    and no scratch files in the working folder or in matlab/."""
    before = sorted(p.name for p in MATLAB_DIR.rglob("*"))
    r = _octave(f"""
    level = 1; command = '{COMMAND}'; solve_opts = {{'Scheduler', 'none'}};
    example_satellite;
    save('-v7', 'example.mat', 'X', 'x_t', 'output_dofs', 'freqs');
    """, tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.mat", "octave_test_script.m"]
    assert sorted(p.name for p in MATLAB_DIR.rglob("*")) == before
    got = scipy.io.loadmat(tmp_path / "example.mat")
    model = femfreq.load_model("satellite", level=1)
    ref = femfreq.solve(model, cluster=None, progress=False)
    np.testing.assert_array_equal(got["output_dofs"].ravel() - 1, model.output_dofs)
    np.testing.assert_allclose(got["freqs"].ravel(), ref.freqs_hz, rtol=1e-12)
    scale = np.abs(ref.response).max()
    np.testing.assert_allclose(got["X"], ref.response.T, rtol=1e-8, atol=1e-10 * scale)
    np.testing.assert_allclose(got["x_t"], ref.time_response.T, atol=1e-9 * np.abs(ref.time_response).max())


def _input(path, freqs, **extra):
    n = 4
    data = {"K": sp.csc_matrix(np.diag([400.0, 500, 600, 700])), "M": sp.eye(n, format="csc"),
            "b": np.ones((n, 1)), "freqs": np.asarray(freqs, float).reshape(-1, 1), "P": 1.0}
    data.update(extra)
    scipy.io.savemat(path, data)
    return path


def test_mat_result_on_an_rfft_grid_has_t_and_time_response(tmp_path):
    n_fft, dt = 16, 1e-3
    freqs = np.fft.rfftfreq(n_fft, dt)
    P = np.fft.rfft(np.sin(np.arange(n_fft)))
    _input(tmp_path / "in.mat", freqs, P=P.reshape(-1, 1))
    r = _femfreq("sweep", "--matrices", "in.mat", "-o", "out.mat", "--serial", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = scipy.io.loadmat(tmp_path / "out.mat")
    np.testing.assert_allclose(got["t"].ravel(), np.arange(n_fft) * dt)
    np.testing.assert_allclose(got["time_response"], np.fft.irfft(got["response"], n_fft, axis=1), atol=1e-15)
    # not an rfft grid: no time response invented
    _input(tmp_path / "in2.mat", [1.0, 2.0, 3.0])
    r = _femfreq("sweep", "--matrices", "in2.mat", "-o", "out2.mat", "--serial", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "time_response" not in scipy.io.loadmat(tmp_path / "out2.mat")


def _one_line_error(r, pattern):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), r.stderr


def test_mat_output_never_overwrites_the_input_or_an_existing_file(tmp_path):
    src = _input(tmp_path / "in.mat", [1.0, 2.0])
    original = src.read_bytes()
    for args in (["-o", "in.mat"], ["-o", "in.mat", "--overwrite"], ["-o", "in"], ["-o", str(src.resolve())]):
        r = _femfreq("sweep", "--matrices", "in.mat", *args, "--serial", "--no-progress", cwd=tmp_path)
        _one_line_error(r, r"femfreq: error: -o .*in\.mat would write over the input file in\.mat")
        assert src.read_bytes() == original
    os.link(src, tmp_path / "hardlink.mat")
    r = _femfreq("sweep", "--matrices", "in.mat", "-o", "hardlink.mat", "--overwrite", "--serial", "--no-progress",
                 cwd=tmp_path)
    _one_line_error(r, r"would write over the input file in\.mat")
    # --matrices x.h5 (a v7.3 file) -o x.mat would replace the input with the .h5 result beside x.mat
    shutil.copy(tmp_path / "in.mat", tmp_path / "x.h5")
    r = _femfreq("sweep", "--matrices", "x.h5", "-o", "x.mat", "--serial", "--no-progress", cwd=tmp_path)
    _one_line_error(r, r"-o x\.h5 would write over the input file x\.h5")

    existing = tmp_path / "old.mat"
    existing.write_bytes(b"keep me")
    r = _femfreq("sweep", "--matrices", "in.mat", "-o", "old.mat", "--serial", "--no-progress", cwd=tmp_path)
    _one_line_error(r, r"old\.mat already exists; pass --overwrite to replace it")
    assert existing.read_bytes() == b"keep me" and not (tmp_path / "old.h5").exists()
    r = _femfreq("sweep", "--matrices", "in.mat", "-o", "old.mat", "--overwrite", "--serial", "--no-progress",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "response" in scipy.io.loadmat(existing)


def test_output_that_is_a_directory_is_named_as_such(tmp_path):
    _input(tmp_path / "in.mat", [1.0, 2.0])
    (tmp_path / "res.mat").mkdir()
    r = _femfreq("sweep", "--matrices", "in.mat", "-o", "res.mat", "--serial", "--no-progress", cwd=tmp_path)
    _one_line_error(r, r"-o res\.mat: is a directory; give a file name")
    (tmp_path / "dir.h5").mkdir()
    r = _femfreq("sweep", "rod", "--freqs", "1,2", "-o", "dir.h5", "--serial", "--no-progress", cwd=tmp_path)
    _one_line_error(r, r"-o dir\.h5: is a directory; give a file name")


def test_solve_mat_refuses_to_write_over_its_input(tmp_path):
    src = _input(tmp_path / "in.mat", [1.0])
    with pytest.raises(ValueError, match="would write over the input"):
        matlab.solve_mat(src, tmp_path / "in", cluster=None)


def test_one_minimum_matlab_release_everywhere():
    texts = {p: p.read_text() for p in [*MATLAB_DIR.glob("*.m"), MATLAB_DIR / "README.md", ROOT / "docs" / "matlab.md"]}
    stated = {(p.name, m) for p, t in texts.items() for m in re.findall(r"MATLAB\s+(R20\d\d[ab])\s+or\s+later", t)}
    assert stated and {m for _, m in stated} == {"R2023b"}, stated
